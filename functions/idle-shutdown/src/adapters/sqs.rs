//! The suite's failure queues over `aws-sdk-sqs`: one `GetQueueAttributes` per queue, asking only for
//! `ApproximateNumberOfMessages` (the visible messages an admin has to read and redrive).

use aws_sdk_sqs::types::QueueAttributeName;
use studio_ops_shared::error::AwsCall;
use studio_ops_shared::{AwsCallError, ErrorClass};

use crate::ports::FailureQueues;

pub struct SqsQueues {
    client: aws_sdk_sqs::Client,
}

impl SqsQueues {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        Self { client }
    }
}

impl FailureQueues for SqsQueues {
    async fn waiting(&self, queue_url: &str) -> Result<u32, AwsCallError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .call("GetQueueAttributes")?;
        let value = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse::<u32>().ok());
        value.ok_or_else(|| {
            AwsCallError::other(
                "GetQueueAttributes",
                ErrorClass::NonRetryable,
                "the answer has no ApproximateNumberOfMessages",
            )
        })
    }
}
