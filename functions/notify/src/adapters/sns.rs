//! The team's topic over `aws-sdk-sns`: one `Publish` per alert with `MessageStructure=json` and the
//! filter attributes. The SDK's standard retry mode retries throttling and 5xx before an error surfaces.

use aws_sdk_sns::types::MessageAttributeValue;
use studio_ops_shared::{AwsCall, AwsCallError, ErrorClass};

use crate::ports::AlertPublisher;
use crate::render::OutgoingMessage;

#[derive(Clone)]
pub struct SnsAlertPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlertPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl AlertPublisher for SnsAlertPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<String, AwsCallError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&message.subject)
            .message_structure("json")
            .message(message.sns_message());
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AwsCallError {
                    operation: "Publish",
                    class: ErrorClass::NonRetryable,
                    code: None,
                    message: format!("attribute {name}: {e}"),
                })?;
            request = request.message_attributes(*name, attribute);
        }
        let out = request.send().await.call("Publish")?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
