//! What can go wrong in train-on-push, and whether Lambda should retry it. A rejected manifest is not an
//! error (it is published as Training Rejected); these are failures of the event, the configuration or AWS.

use studio_ops_shared::config::ConfigError;
use studio_ops_shared::events::EventError;
use studio_ops_shared::idempotency::IdempotencyError;
use studio_ops_shared::publisher::PublishError;
use studio_ops_shared::{AwsCallError, ErrorClass, Failure};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A failed AWS call of a port.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// A completed job of ours that SageMaker says has no model artifacts: nothing to register.
    #[error("training job {job} completed without model artifacts; nothing to register")]
    NoArtifacts { job: String },
    #[error("training job {job} cannot be registered: {message}")]
    Unregistrable { job: String, message: String },
    #[error("cannot build the source archive of {job}: {message}")]
    Archive { job: String, message: String },
    /// The event says a pull request was merged and CodeCommit does not show it (yet): Lambda's retry asks again,
    /// and the claim is not spent on a reading that may only be late.
    #[error("pull request {id}: the event says merged, GetPullRequest does not show it merged yet")]
    MergeNotVisible { id: String },
    /// An answer that cannot be written to or read back from the idempotency store as JSON.
    #[error("cannot record the outcome: {0}")]
    Record(serde_json::Error),
}

impl Failure for HandlerError {
    fn class(&self) -> ErrorClass {
        match self {
            HandlerError::Event(_) | HandlerError::Config(_) => ErrorClass::NonRetryable,
            HandlerError::Aws(e) => e.class(),
            HandlerError::Publish(e) => e.class(),
            HandlerError::Idempotency(e) => e.class(),
            HandlerError::MergeNotVisible { .. } => ErrorClass::Retryable,
            HandlerError::NoArtifacts { .. }
            | HandlerError::Unregistrable { .. }
            | HandlerError::Archive { .. }
            | HandlerError::Record(_) => ErrorClass::NonRetryable,
        }
    }
}
