//! What can go wrong in train-on-push, and whether Lambda should retry it.

use studio_ops_shared::config::ConfigError;
use studio_ops_shared::events::EventError;
use studio_ops_shared::{ErrorClass, Failure};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Failure for HandlerError {
    fn class(&self) -> ErrorClass {
        match self {
            HandlerError::Event(_) | HandlerError::Config(_) => ErrorClass::NonRetryable,
        }
    }
}
