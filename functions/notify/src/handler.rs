//! notify handler: a model-package state change or a suite event → one alert on the team's topic.

use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::sagemaker::{self, ModelPackageStateChange};
use studio_ops_shared::events::suite::{self, SuiteEvent};
use studio_ops_shared::events::{EventError, detail_type, event_id, parse_envelope};

use crate::config::Config;
use crate::error::HandlerError;

// One trigger per invocation: its size does not matter, boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    ModelPackage(ModelPackageStateChange),
    Suite(SuiteEvent),
}

pub fn parse_trigger(event: &Value) -> Result<Trigger, EventError> {
    let source = event.get("source").and_then(Value::as_str);
    match (source, detail_type(event)) {
        (Some("aws.sagemaker"), Some(sagemaker::MODEL_PACKAGE_DETAIL_TYPE)) => {
            parse_envelope::<ModelPackageStateChange>(sagemaker::MODEL_PACKAGE_DETAIL_TYPE, event)
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

pub struct Handler {
    config: Config,
}

impl Handler {
    pub fn new(config: Config, _sdk: &aws_config::SdkConfig) -> Self {
        Self { config }
    }

    pub async fn handle(&self, event: Value, _context: Context) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event)?;
        let kind = match &trigger {
            Trigger::ModelPackage(p) => format!(
                "model package {} {:?}",
                p.model_package_arn, p.model_approval_status
            ),
            Trigger::Suite(e) => e.detail_type().to_string(),
        };
        tracing::info!(event_id = event_id(&event), bus = %self.config.suite.event_bus_name, kind = %kind, "notify invoked");
        Ok(json!({"function": "notify", "event": kind}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<(String, Value)> {
        let dir = format!("{}/../../events/notify", env!("CARGO_MANIFEST_DIR"));
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                (p.file_name().unwrap().to_string_lossy().to_string(), v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn every_fixture_parses() {
        let all = fixtures();
        assert_eq!(all.len(), 3 + suite::DETAIL_TYPES.len());
        for (name, event) in all {
            let t = parse_trigger(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.starts_with("sagemaker-") {
                assert!(matches!(t, Trigger::ModelPackage(_)), "{name}");
            } else {
                assert!(matches!(t, Trigger::Suite(_)), "{name}");
            }
        }
    }

    #[test]
    fn malformed_suite_event_names_the_field() {
        let mut e = fixtures()
            .into_iter()
            .find(|(n, _)| n == "studio-ops-app-stopped.json")
            .unwrap()
            .1;
        e["detail"]["idleMinutes"] = json!("long");
        let err = parse_trigger(&e).unwrap_err();
        assert_eq!(err.path, "detail.idleMinutes");
    }
}
