//! notify: turns model-registry changes and the suite's own events into readable, filterable SNS alerts.
//!
//! Path of a trigger: fixture (`events/notify/`) → `handler::parse_trigger` → `policy` (alert or skip, dedup
//! key) → `model_package` / `suite_alerts` (what the alert says) → `render` (SNS message) → `ports`.

pub mod adapters;
pub mod alert;
pub mod config;
pub mod context;
pub mod error;
pub mod handler;
pub mod links;
pub mod model_package;
pub mod policy;
pub mod ports;
pub mod render;
pub mod sanitize;
pub mod suite_alerts;
