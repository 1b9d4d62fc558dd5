//! What two or more studio-ops functions need: configuration, telemetry, error classification, AWS
//! clients, typed trigger events, the suite's own events and their publisher, the idempotency store, the one-run-at-a-time lease and per-operation rate limits.

pub mod aws;
pub mod config;
pub mod deadline;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lambda;
pub mod lease;
pub mod metrics;
pub mod names;
pub mod prices;
pub mod publisher;
pub mod sagemaker;
pub mod spend;
pub mod telemetry;
pub mod throttle;

pub use deadline::Deadline;
pub use error::{AwsCall, AwsCallError, ErrorClass, Failure};
