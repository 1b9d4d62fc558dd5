//! What notify is invoked with, typed: SageMaker's "Model Package State Change" (an event only notify reads, so
//! it lives here rather than in `shared/`) and the suite's own events (`shared`, since three functions publish
//! them), parsed into one [`Trigger`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::events::suite::{self, SuiteEvent};
use studio_ops_shared::events::time::LenientTime;
use studio_ops_shared::events::{EventError, detail_type, parse_envelope};

pub const MODEL_PACKAGE_DETAIL_TYPE: &str = "SageMaker Model Package State Change";
/// The `source` SageMaker's own events carry.
const SAGEMAKER_SOURCE: &str = "aws.sagemaker";

/// The `detail` of SageMaker's "Model Package State Change" event.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ModelPackageStateChange {
    pub model_package_arn: String,
    #[serde(default)]
    pub model_package_group_name: Option<String>,
    #[serde(default)]
    pub model_package_version: Option<u64>,
    /// Pending | InProgress | Completed | Failed | Deleting
    pub model_package_status: String,
    /// Approved | Rejected | PendingManualApproval (absent for unversioned packages)
    #[serde(default)]
    pub model_approval_status: Option<String>,
    #[serde(default)]
    pub approval_description: Option<String>,
    #[serde(default)]
    pub creation_time: Option<LenientTime>,
    #[serde(default)]
    pub last_modified_time: Option<LenientTime>,
    #[serde(default)]
    pub metadata_properties: Option<Value>,
    #[serde(default)]
    pub customer_metadata_properties: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub model_metrics: Option<Value>,
    #[serde(default)]
    pub inference_specification: Option<Value>,
    #[serde(default)]
    pub last_modified_by: Option<Value>,
}

/// One invocation's event.
// One trigger per invocation: its size does not matter, boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    ModelPackage(ModelPackageStateChange),
    Suite(SuiteEvent),
}

/// Reads an EventBridge envelope into a [`Trigger`]; anything else is a NonRetryable [`EventError`] naming the
/// offending field.
pub fn parse(event: &Value) -> Result<Trigger, EventError> {
    let source = event.get("source").and_then(Value::as_str);
    match (source, detail_type(event)) {
        (Some(SAGEMAKER_SOURCE), Some(MODEL_PACKAGE_DETAIL_TYPE)) => {
            parse_envelope::<ModelPackageStateChange>(MODEL_PACKAGE_DETAIL_TYPE, event)
                .map(|e| Trigger::ModelPackage(e.detail))
        }
        (Some(suite::SOURCE), Some(_)) => SuiteEvent::from_envelope(event).map(Trigger::Suite),
        (source, dt) => Err(EventError::new(
            "notify",
            "source",
            format!(
                "expected a SageMaker model-package change or a studio-ops event, got source {source:?} detail-type {dt:?}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::fixtures::{fixture, fixtures};

    #[test]
    fn every_fixture_parses() {
        let all = fixtures();
        assert_eq!(all.len(), 3 + suite::DETAIL_TYPES.len());
        for (name, event) in all {
            let t = parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.starts_with("sagemaker-") {
                assert!(matches!(t, Trigger::ModelPackage(_)), "{name}");
            } else {
                assert!(matches!(t, Trigger::Suite(_)), "{name}");
            }
        }
    }

    #[test]
    fn malformed_suite_event_names_the_field() {
        let mut e = fixture("studio-ops-app-stopped.json");
        e["detail"]["idleMinutes"] = json!("long");
        let err = parse(&e).unwrap_err();
        assert_eq!(err.path, "detail.idleMinutes");
    }

    #[test]
    fn a_model_package_change_is_read_from_the_sagemaker_envelope() {
        let event = fixture("sagemaker-model-package-approved.json");
        let Trigger::ModelPackage(change) = parse(&event).unwrap() else {
            panic!("a model-package change");
        };
        assert_eq!(change.model_approval_status.as_deref(), Some("Approved"));
        let mut foreign = event.clone();
        foreign["source"] = json!("aws.s3");
        assert_eq!(parse(&foreign).unwrap_err().path, "source");
    }
}
