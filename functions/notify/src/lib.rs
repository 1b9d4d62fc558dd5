//! notify: turns model-registry changes and the suite's own events into readable, filterable SNS alerts.
//!
//! Path of a trigger: fixture (`events/notify/`) → `trigger` (typed event, one `Trigger`) → `handler` (`policy`:
//! alert or skip and the dedup key; the idempotency claim) → `alert`, the use case (enrich through
//! `ports::ModelRegistry`, `model_package` / `suite_alerts` say it, `render` makes the SNS message, publish
//! through `ports::AlertPublisher`) → `adapters/` (`sagemaker`, `sns`; `memory` holds the fakes).

pub mod adapters;
pub mod alert;
pub mod chat;
pub mod config;
pub mod content;
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
pub mod trigger;

/// Every metric notify emits (the dashboard reads only these).
pub const METRICS: studio_ops_shared::metrics::Catalogue = studio_ops_shared::metrics::Catalogue {
    function: "notify",
    metrics: &["AlertsPublished", "DuplicatesDropped", "AlertsSkipped"],
};
