//! The DynamoDB ports: the spend ledger (a finished job's record in the suite's spend table, in the one format and
//! with the one conditional put of `studio_ops_shared::spend`; idle-shutdown writes the Studio apps' records there)
//! and the push state (each branch's last evaluated head, the catch-up's starting point, the trees trained).

use std::collections::HashMap;

use jiff::Timestamp;
use studio_ops_shared::spend::{Usage, conditional, put_usage, s, string};
use studio_ops_shared::{AwsCall, AwsCallError};

use crate::ports::{PushState, SpendLedger};

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

/// The push state over DynamoDB: items of the suite's idempotency table under `train-on-push#head#…`,
/// `train-on-push#catchup#…` and `train-on-push#tree#…`, without `expiration` (they are the function's memory, not
/// claims). Every write is conditional, so two invocations never move a record past each other.
pub struct DynamoPushState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPushState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn read(&self, id: String, attribute: &str) -> Result<Option<String>, AwsCallError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            // The head must be the one the last write left: a stale read would re-evaluate a range, never skip one,
            // but a strong read costs nothing here.
            .consistent_read(true)
            .send()
            .await
            .call("GetItem")?;
        Ok(out
            .item()
            .and_then(|item| string(item, attribute))
            .map(str::to_string))
    }

    async fn put_new(&self, id: String, attributes: &[(&str, &str)]) -> Result<bool, AwsCallError> {
        let mut item = HashMap::from([("id".to_string(), s(id))]);
        for (name, value) in attributes {
            item.insert((*name).to_string(), s(*value));
        }
        item.insert("at".to_string(), s(Timestamp::now().to_string()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        conditional(result, "PutItem")
    }
}

/// The items' ids: the function's namespace, what the item is, then the names it belongs to.
pub fn head_id(repository: &str, branch: &str) -> String {
    format!("train-on-push#head#{repository}#{branch}")
}

pub fn catchup_id(repository: &str) -> String {
    format!("train-on-push#catchup#{repository}")
}

pub fn tree_id(repository: &str, model: &str, tree: &str) -> String {
    format!("train-on-push#tree#{repository}#{model}#{tree}")
}

impl PushState for DynamoPushState {
    async fn evaluated(
        &self,
        repository: &str,
        branch: &str,
    ) -> Result<Option<String>, AwsCallError> {
        self.read(head_id(repository, branch), "head").await
    }

    async fn advance(
        &self,
        repository: &str,
        branch: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, AwsCallError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(head_id(repository, branch)))
            .item("head", s(to))
            .item("at", s(Timestamp::now().to_string()));
        let request = match from {
            // A branch (re)created: its head is the start, whatever an earlier branch of that name left.
            None => request,
            // Through a name placeholder, as the suite writes every attribute in an expression.
            Some(from) => request
                .condition_expression("#head = :from")
                .expression_attribute_names("#head", "head")
                .expression_attribute_values(":from", s(from)),
        };
        conditional(request.send().await, "PutItem")
    }

    async fn watching_since(&self, repository: &str) -> Result<Option<String>, AwsCallError> {
        self.read(catchup_id(repository), "startedAt").await
    }

    async fn start_watching(&self, repository: &str, at: &str) -> Result<bool, AwsCallError> {
        self.put_new(catchup_id(repository), &[("startedAt", at)])
            .await
    }

    async fn trained_tree(
        &self,
        repository: &str,
        model: &str,
        tree: &str,
    ) -> Result<Option<String>, AwsCallError> {
        self.read(tree_id(repository, model, tree), "job").await
    }

    async fn record_tree(
        &self,
        repository: &str,
        model: &str,
        tree: &str,
        job: &str,
    ) -> Result<(), AwsCallError> {
        // The latest job started for the tree wins: after a failed one, the job that trains the tree again is the
        // one a later push (or a merge's approval) must find.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", s(tree_id(repository, model, tree)))
            .item("job", s(job))
            .item("at", s(Timestamp::now().to_string()))
            .send()
            .await
            .call("PutItem")
            .map(|_| ())
    }
}
