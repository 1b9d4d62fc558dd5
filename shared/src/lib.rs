//! What two or more studio-ops functions need: configuration, telemetry, error classification, AWS
//! clients, typed trigger events, the suite's own events and their publisher, and the idempotency store.

pub mod aws;
pub mod config;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lambda;
pub mod metrics;
pub mod publisher;
pub mod telemetry;

pub use error::{ErrorClass, Failure};
