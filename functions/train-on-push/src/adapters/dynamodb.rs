//! The spend ledger port over DynamoDB: a finished job's record in the suite's spend table, in the one format and
//! with the one conditional put of `studio_ops_shared::spend` (idle-shutdown writes the Studio apps' records there).

use studio_ops_shared::AwsCallError;
use studio_ops_shared::spend::{Usage, put_usage};

use crate::ports::SpendLedger;

pub struct DynamoSpendLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSpendLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl SpendLedger for DynamoSpendLedger {
    async fn record(&self, usage: &Usage) -> Result<bool, AwsCallError> {
        put_usage(&self.client, &self.table, usage).await
    }
}
