//! notify: turns model-registry changes and the suite's own events into readable, filterable SNS alerts.

pub mod config;
pub mod error;
pub mod handler;
