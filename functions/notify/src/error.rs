//! What can go wrong in notify, and whether Lambda should retry it.

use studio_ops_shared::config::ConfigError;
use studio_ops_shared::events::EventError;
use studio_ops_shared::idempotency::IdempotencyError;
use studio_ops_shared::{ErrorClass, Failure};

/// The topic did not take the message after the SDK's own retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("publishing to {topic} failed: {message}")]
pub struct PublishError {
    pub topic: String,
    /// The AWS error code when the service answered, e.g. `NotFound`, `Throttled`.
    pub code: Option<String>,
    pub message: String,
}

/// A model-registry read failed (the alert is still sent, with what the event carries).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} {target}: {message}")]
pub struct RegistryError {
    pub operation: &'static str,
    pub target: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The alert was not delivered; the claim was released so that the retry (or a DLQ redrive) sends it.
    #[error("alert not delivered: {0}")]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
}

impl Failure for HandlerError {
    fn class(&self) -> ErrorClass {
        match self {
            HandlerError::Event(_) | HandlerError::Config(_) => ErrorClass::NonRetryable,
            // The event is fine; whatever stopped SNS (throttling, an outage, a missing topic or permission
            // being fixed) is outside it, so the same event must be tried again rather than dropped.
            HandlerError::Publish(_) => ErrorClass::Retryable,
            HandlerError::Idempotency(e) => e.class(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_failures_are_retryable_and_say_why() {
        let e = HandlerError::from(PublishError {
            topic: "arn:aws:sns:us-east-1:123456789012:t".into(),
            code: Some("NotFound".into()),
            message: "NotFound: Topic does not exist".into(),
        });
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert_eq!(
            studio_ops_shared::error::diagnostic(&e).error_message,
            "alert not delivered: publishing to arn:aws:sns:us-east-1:123456789012:t failed: NotFound: Topic does not exist"
        );
        let bad = HandlerError::from(EventError::new("x", "detail", "missing"));
        assert_eq!(bad.class(), ErrorClass::NonRetryable);
    }
}
