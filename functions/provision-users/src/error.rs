//! What can go wrong in provision-users, and whether Lambda should retry it.

use studio_ops_shared::config::ConfigError;
use studio_ops_shared::events::EventError;
use studio_ops_shared::idempotency::IdempotencyError;
use studio_ops_shared::publisher::PublishError;
use studio_ops_shared::{ErrorClass, Failure};

use crate::reconcile::ObserveError;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The one-reconcile-at-a-time lease could not be read or taken (its table failed).
    #[error("cannot take the reconcile lease: {0}")]
    Lease(#[from] IdempotencyError),
    #[error(
        "no Identity Center group is configured: set {} (the stack's StudioGroupId parameter); nothing was done",
        crate::config::GROUP_IDS
    )]
    NotConfigured,
    #[error(
        "this function manages Studio domain {configured}; the invocation asked for {requested}"
    )]
    WrongDomain {
        requested: String,
        configured: String,
    },
    #[error("reading the groups and the domain failed; nothing was changed")]
    Observe(#[from] ObserveError),
    /// Some actions are left (ResourceInUse, throttling, the deadline): Lambda's retry continues them.
    #[error("reconcile incomplete; the next run continues: {0}")]
    Incomplete(String),
    /// A membership event waited for a running reconcile, which did not finish in time: Lambda's retry applies it.
    #[error("another reconcile holds the lease; this membership event is retried after it")]
    Busy,
    #[error("the reconcile finished but its events were not published")]
    Publish(#[from] PublishError),
    /// The outcome could not be written as JSON (a plain data enum: not expected to happen).
    #[error("the outcome could not be serialized: {0}")]
    Answer(serde_json::Error),
}

impl Failure for HandlerError {
    fn class(&self) -> ErrorClass {
        match self {
            HandlerError::Event(_)
            | HandlerError::Config(_)
            | HandlerError::NotConfigured
            | HandlerError::WrongDomain { .. }
            | HandlerError::Answer(_) => ErrorClass::NonRetryable,
            HandlerError::Observe(e) => e.class(),
            HandlerError::Incomplete(_) | HandlerError::Busy => ErrorClass::Retryable,
            HandlerError::Publish(e) => e.class(),
            HandlerError::Lease(e) => e.class(),
        }
    }
}
