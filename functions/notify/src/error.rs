//! What can go wrong in notify, and whether Lambda should retry it.

use studio_ops_shared::config::ConfigError;
use studio_ops_shared::events::EventError;
use studio_ops_shared::idempotency::IdempotencyError;
use studio_ops_shared::{AwsCallError, ErrorClass, Failure};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The alert was not delivered; the claim was released so that the retry (or a DLQ redrive) sends it. The
    /// topic is named because a missing topic or permission is the usual cause an operator has to fix.
    #[error("alert not delivered: publishing to {topic} failed: {}", error.message)]
    Publish { topic: String, error: AwsCallError },
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The outcome could not be written as the invocation's JSON answer.
    #[error("the invocation's answer could not be written: {0}")]
    Answer(#[from] serde_json::Error),
}

impl Failure for HandlerError {
    fn class(&self) -> ErrorClass {
        match self {
            HandlerError::Event(_) | HandlerError::Config(_) | HandlerError::Answer(_) => {
                ErrorClass::NonRetryable
            }
            // The event is fine; whatever stopped SNS (throttling, an outage, a missing topic or permission
            // being fixed) is outside it, so the same event must be tried again rather than dropped, whatever
            // class the call's error has on its own.
            HandlerError::Publish { .. } => ErrorClass::Retryable,
            HandlerError::Idempotency(e) => e.class(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_failures_are_retryable_and_say_why() {
        let e = HandlerError::Publish {
            topic: "arn:aws:sns:us-east-1:123456789012:t".into(),
            error: AwsCallError::service("Publish", "NotFound", "Topic does not exist"),
        };
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert_eq!(
            studio_ops_shared::error::diagnostic(&e).error_message,
            "alert not delivered: publishing to arn:aws:sns:us-east-1:123456789012:t failed: NotFound: Topic does not exist"
        );
        let bad = HandlerError::from(EventError::new("x", "detail", "missing"));
        assert_eq!(bad.class(), ErrorClass::NonRetryable);
    }
}
