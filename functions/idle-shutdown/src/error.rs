//! What can go wrong in idle-shutdown as a whole, and whether Lambda should retry it. One app's failure is not here:
//! it is counted in the sweep report and never stops the other apps.

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
    /// The one-sweep-at-a-time lease could not be read or taken (its table failed).
    #[error("cannot take the sweep lease: {0}")]
    Lease(#[from] IdempotencyError),
    /// The manual request asks for something outside the configured scope.
    #[error("invalid sweep request: {0}")]
    Request(String),
    /// The domains to sweep could not be listed, so nothing was swept.
    #[error("cannot list the Studio domains to sweep: {0}")]
    ListDomains(#[source] AwsCallError),
    /// No domain could be listed in full. Apps of the pages that were read have been swept; a retry sweeps the rest.
    #[error("no domain could be listed in full: {0}")]
    NoDomainListed(String),
    /// The sweep ran (see the logged report), but its events could not be published.
    #[error("sweep events not published: {0}")]
    Publish(#[from] PublishError),
    /// Some of the week's digests could not be published; a retry sends only those.
    #[error("{0}")]
    DigestsNotSent(String),
    /// No domain's spend ledger could be read for a spend report.
    #[error("{0}")]
    Ledger(String),
    /// The outcome could not be written as JSON (a bug: every field of it is plain data).
    #[error("cannot write the sweep's answer: {0}")]
    Answer(#[source] serde_json::Error),
}

impl Failure for HandlerError {
    fn class(&self) -> ErrorClass {
        match self {
            HandlerError::Event(_)
            | HandlerError::Config(_)
            | HandlerError::Request(_)
            | HandlerError::Answer(_) => ErrorClass::NonRetryable,
            HandlerError::ListDomains(e) => e.class(),
            HandlerError::NoDomainListed(_)
            | HandlerError::Ledger(_)
            | HandlerError::DigestsNotSent(_) => ErrorClass::Retryable,
            HandlerError::Publish(e) => e.class(),
            HandlerError::Lease(e) => e.class(),
        }
    }
}
