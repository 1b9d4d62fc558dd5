//! notify handler: a model-package state change or a suite event → a decision → at most one alert on the
//! team's topic, deduplicated with the idempotency store.

use jiff::Timestamp;
use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::sagemaker::{self, ModelPackageStateChange};
use studio_ops_shared::events::suite::{self, SuiteEvent};
use studio_ops_shared::events::{EventError, detail_type, event_id, parse_envelope};
use studio_ops_shared::idempotency::{Claim, IdempotencyStore, claim_expiry};
use studio_ops_shared::metrics::{MetricSet, Unit};

use crate::alert::{Alert, EventType};
use crate::config::Config;
use crate::context::AlertContext;
use crate::error::HandlerError;
use crate::model_package::{self, Enrichment};
use crate::policy::{self, Decision};
use crate::ports::{AlertPublisher, ModelRegistry};
use crate::render;
use crate::suite_alerts;

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

/// The alert a trigger becomes (pure: the registry's answers come in `enrichment`).
pub fn alert_for(trigger: &Trigger, enrichment: &Enrichment, ctx: &AlertContext) -> Alert {
    match trigger {
        Trigger::ModelPackage(change) => {
            model_package::alert(change, policy::package_change(change), enrichment, ctx)
        }
        Trigger::Suite(event) => suite_alerts::alert(event, ctx),
    }
}

/// The adapters the handler talks through (built once in `main`).
pub struct Ports<P, R, S> {
    pub publisher: P,
    pub registry: R,
    pub store: S,
}

/// What one invocation did (returned to Lambda and logged).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Published {
        event_type: EventType,
        message_id: String,
    },
    /// The same change was already alerted.
    Duplicate { event_type: EventType },
    /// Another invocation holds the same change right now; it will send it (or release it on failure).
    InProgressElsewhere { event_type: EventType },
    Skipped {
        event_type: EventType,
        reason: String,
    },
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Published {
                event_type,
                message_id,
            } => {
                json!({"outcome": "published", "eventType": event_type.slug(), "messageId": message_id})
            }
            Outcome::Duplicate { event_type } => {
                json!({"outcome": "duplicate", "eventType": event_type.slug()})
            }
            Outcome::InProgressElsewhere { event_type } => {
                json!({"outcome": "in-progress-elsewhere", "eventType": event_type.slug()})
            }
            Outcome::Skipped { event_type, reason } => {
                json!({"outcome": "skipped", "eventType": event_type.slug(), "reason": reason})
            }
        }
    }

    fn metric(&self) -> &'static str {
        match self {
            Outcome::Published { .. } => "AlertsPublished",
            Outcome::Duplicate { .. } | Outcome::InProgressElsewhere { .. } => "DuplicatesDropped",
            Outcome::Skipped { .. } => "AlertsSkipped",
        }
    }
}

pub struct Handler<P, R, S> {
    config: Config,
    ports: Ports<P, R, S>,
    /// The function's own region, for links when an event names none.
    region: Option<String>,
}

impl<P: AlertPublisher, R: ModelRegistry, S: IdempotencyStore> Handler<P, R, S> {
    pub fn new(config: Config, ports: Ports<P, R, S>, region: Option<String>) -> Self {
        Self {
            config,
            ports,
            region,
        }
    }

    pub async fn handle(&self, event: Value, context: Context) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event)?;
        let decision = match &trigger {
            Trigger::ModelPackage(change) => policy::decide_model_package(change, &self.config),
            Trigger::Suite(e) => policy::decide_suite(e, &self.config),
        };
        let ctx = AlertContext::from_envelope(
            &event,
            self.region.as_deref(),
            self.config.domain_id.as_deref(),
        );
        let outcome = match decision {
            Decision::Skip { event_type, reason } => Outcome::Skipped { event_type, reason },
            Decision::Alert { event_type, key } => {
                let until = claim_expiry(context.deadline());
                self.alert_once(&trigger, event_type, &key, &ctx, until)
                    .await?
            }
        };
        tracing::info!(
            event_id = event_id(&event),
            outcome = %outcome.to_json(),
            "notify handled event"
        );
        let mut metrics = MetricSet::for_function("notify");
        metrics.put(outcome.metric(), 1.0, Unit::Count);
        metrics.emit();
        Ok(outcome.to_json())
    }

    /// Claims `key`, builds and publishes the alert, and marks it sent; a failed publish gives the claim
    /// back so that Lambda's retry (or a DLQ redrive) sends it.
    async fn alert_once(
        &self,
        trigger: &Trigger,
        event_type: EventType,
        key: &str,
        ctx: &AlertContext,
        until: Timestamp,
    ) -> Result<Outcome, HandlerError> {
        match self.ports.store.claim(key, until).await? {
            Claim::AlreadyCompleted(_) => return Ok(Outcome::Duplicate { event_type }),
            Claim::InProgress => return Ok(Outcome::InProgressElsewhere { event_type }),
            Claim::Acquired => {}
        }
        let enrichment = match trigger {
            Trigger::ModelPackage(change) => self.enrich(change).await,
            Trigger::Suite(_) => Enrichment::default(),
        };
        let alert = alert_for(trigger, &enrichment, ctx);
        let message = render::render(&alert, &self.config.subject_prefix);
        match self.ports.publisher.publish(&message).await {
            Ok(message_id) => {
                let record = json!({"messageId": message_id, "eventType": event_type.slug()});
                if let Err(e) = self.ports.store.complete(key, &record).await {
                    // The alert is out: failing now would make Lambda send it again once the claim expires.
                    tracing::warn!(key, error = %e, "alert sent but its idempotency record was not completed");
                }
                Ok(Outcome::Published {
                    event_type,
                    message_id,
                })
            }
            Err(e) => {
                if let Err(release) = self.ports.store.release(key).await {
                    tracing::warn!(key, error = %release, "could not release the claim; it expires with the deadline");
                }
                Err(e.into())
            }
        }
    }

    /// Registry details and the approved version to compare with; failures leave the alert with what the
    /// event carries and a note saying so.
    async fn enrich(&self, change: &ModelPackageStateChange) -> Enrichment {
        let arn = &change.model_package_arn;
        let mut enrichment = Enrichment::default();
        match self.ports.registry.describe(arn).await {
            Ok(d) => enrichment.described = Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "model package details unavailable");
                enrichment.problem = Some(e.to_string());
            }
        }
        let group = enrichment
            .described
            .as_ref()
            .and_then(|d| d.group.clone())
            .or_else(|| model_package::group_of(change));
        if let Some(group) = group {
            match self.ports.registry.latest_approved(&group, arn).await {
                Ok(b) => enrichment.baseline = b,
                Err(e) => {
                    tracing::warn!(error = %e, "approved version to compare with unavailable");
                    enrichment.problem.get_or_insert(e.to_string());
                }
            }
        }
        enrichment
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use studio_ops_shared::ErrorClass;
    use studio_ops_shared::Failure;
    use studio_ops_shared::config::{EVENT_BUS_NAME, Env, IDEMPOTENCY_TABLE};
    use studio_ops_shared::idempotency::MemoryIdempotencyStore;

    use super::*;
    use crate::config::{self, Config};
    use crate::error::{PublishError, RegistryError};
    use crate::model_package::PackageDetails;
    use crate::render::OutgoingMessage;

    /// Records what would be published; fails the first `failures` publishes.
    #[derive(Default)]
    struct FakeTopic {
        sent: Mutex<Vec<OutgoingMessage>>,
        failures: AtomicUsize,
    }

    impl AlertPublisher for FakeTopic {
        async fn publish(&self, message: &OutgoingMessage) -> Result<String, PublishError> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(PublishError {
                    topic: "t".into(),
                    code: Some("Throttled".into()),
                    message: "Throttled: rate exceeded".into(),
                });
            }
            let mut sent = self.sent.lock().unwrap();
            sent.push(message.clone());
            Ok(format!("m-{}", sent.len()))
        }
    }

    /// A registry holding described packages; `down` makes every call fail.
    #[derive(Default)]
    struct FakeRegistry {
        packages: BTreeMap<String, PackageDetails>,
        down: bool,
        calls: AtomicUsize,
    }

    impl ModelRegistry for FakeRegistry {
        async fn describe(&self, arn: &str) -> Result<PackageDetails, RegistryError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down {
                return Err(RegistryError {
                    operation: "DescribeModelPackage",
                    target: arn.into(),
                    message: "ThrottlingException: slow down".into(),
                });
            }
            self.packages
                .get(arn)
                .cloned()
                .ok_or_else(|| RegistryError {
                    operation: "DescribeModelPackage",
                    target: arn.into(),
                    message: "ValidationException: not found".into(),
                })
        }

        async fn latest_approved(
            &self,
            group: &str,
            excluding: &str,
        ) -> Result<Option<PackageDetails>, RegistryError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down {
                return Err(RegistryError {
                    operation: "ListModelPackages",
                    target: group.into(),
                    message: "ThrottlingException: slow down".into(),
                });
            }
            Ok(self
                .packages
                .values()
                .filter(|p| p.group.as_deref() == Some(group))
                .filter(|p| p.approval_status.as_deref() == Some("Approved") && p.arn != excluding)
                .max_by_key(|p| p.version)
                .cloned())
        }
    }

    const V3: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/3";
    const V2: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/2";

    fn registry() -> FakeRegistry {
        let v2 = PackageDetails {
            arn: V2.into(),
            group: Some("churn-xgboost".into()),
            version: Some(2),
            approval_status: Some("Approved".into()),
            metrics: BTreeMap::from([
                ("validation:auc".to_string(), 0.898),
                ("train:auc".to_string(), 0.951),
            ]),
            ..Default::default()
        };
        let v3 = PackageDetails {
            arn: V3.into(),
            group: Some("churn-xgboost".into()),
            version: Some(3),
            description: Some("churn-xgboost trained from commit f485fcc".into()),
            ..Default::default()
        };
        FakeRegistry {
            packages: BTreeMap::from([(V2.to_string(), v2), (V3.to_string(), v3)]),
            ..Default::default()
        }
    }

    fn config(extra: &[(&'static str, &'static str)]) -> Config {
        let mut vars: std::collections::HashMap<&str, &str> = [
            (EVENT_BUS_NAME, "studio-ops"),
            (IDEMPOTENCY_TABLE, "idem"),
            (
                config::ALERT_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:studio-ops-alerts",
            ),
            (config::DOMAIN_ID, "d-studioops0001"),
        ]
        .into_iter()
        .collect();
        vars.extend(extra.iter().copied());
        Config::from_env(&Env::new(&vars)).unwrap()
    }

    type TestHandler = Handler<FakeTopic, FakeRegistry, MemoryIdempotencyStore>;

    fn handler_with(config: Config, registry: FakeRegistry) -> TestHandler {
        Handler::new(
            config,
            Ports {
                publisher: FakeTopic::default(),
                registry,
                store: MemoryIdempotencyStore::default(),
            },
            Some("us-east-1".into()),
        )
    }

    fn handler() -> TestHandler {
        handler_with(config(&[]), registry())
    }

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

    fn fixture(name: &str) -> Value {
        fixtures()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
            .1
    }

    fn sent(h: &TestHandler) -> Vec<OutgoingMessage> {
        h.ports.publisher.sent.lock().unwrap().clone()
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
        let mut e = fixture("studio-ops-app-stopped.json");
        e["detail"]["idleMinutes"] = json!("long");
        let err = parse_trigger(&e).unwrap_err();
        assert_eq!(err.path, "detail.idleMinutes");
    }

    #[tokio::test]
    async fn every_fixture_alerts_once_however_often_it_arrives() {
        let h = handler();
        for (name, event) in fixtures() {
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(h.handle(event.clone(), Context::default()).await.unwrap());
            }
            assert_eq!(outcomes[0]["outcome"], "published", "{name}");
            assert_eq!(outcomes[1]["outcome"], "duplicate", "{name}");
            assert_eq!(outcomes[2]["outcome"], "duplicate", "{name}");
        }
        let messages = sent(&h);
        assert_eq!(messages.len(), 14);
        let mut types: Vec<&str> = messages
            .iter()
            .map(|m| m.attribute("event_type").unwrap())
            .collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), 14, "one message per kind: {types:?}");
    }

    #[tokio::test]
    async fn pending_approved_rejected_of_one_package_are_three_alerts() {
        let h = handler();
        for name in [
            "sagemaker-model-package-pending.json",
            "sagemaker-model-package-approved.json",
            "sagemaker-model-package-rejected.json",
        ] {
            h.handle(fixture(name), Context::default()).await.unwrap();
            h.handle(fixture(name), Context::default()).await.unwrap();
        }
        let types: Vec<String> = sent(&h)
            .iter()
            .map(|m| m.attribute("event_type").unwrap().to_string())
            .collect();
        assert_eq!(
            types,
            vec![
                "model-package-pending",
                "model-package-approved",
                "model-package-rejected"
            ]
        );
    }

    #[tokio::test]
    async fn model_package_alert_is_enriched_and_compared() {
        let h = handler();
        h.handle(
            fixture("sagemaker-model-package-approved.json"),
            Context::default(),
        )
        .await
        .unwrap();
        let m = &sent(&h)[0];
        assert_eq!(
            m.subject,
            "[studio-ops] churn-xgboost v3 approved by marta-ruiz"
        );
        assert!(m.text.contains("churn-xgboost trained from commit f485fcc"));
        assert!(m.text.contains("Metrics (change vs. approved v2)"));
        assert!(m.text.contains("+0.014"), "{}", m.text);
        assert_eq!(
            m.document["details"]["metricDeltas"]["validation:auc"],
            json!(0.014)
        );
        assert_eq!(m.document["details"]["enrichment"], "complete");
        assert_eq!(m.attribute("user"), Some("ana.silva@example.com"));
        assert_eq!(m.attribute("model_group"), Some("churn-xgboost"));
        assert_eq!(m.attribute("domain"), Some("d-studioops0001"));
        assert_eq!(m.attribute("severity"), Some("info"));
    }

    #[tokio::test]
    async fn registry_outage_still_alerts_with_what_the_event_carries() {
        let h = handler_with(
            config(&[]),
            FakeRegistry {
                down: true,
                ..Default::default()
            },
        );
        let out = h
            .handle(
                fixture("sagemaker-model-package-pending.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(out["outcome"], "published");
        let m = &sent(&h)[0];
        assert!(m.text.contains("registry details unavailable"));
        assert!(m.text.contains("0.912"), "event metrics still shown");
        assert!(
            m.document["details"]["enrichment"]
                .as_str()
                .unwrap()
                .starts_with("event only:")
        );
    }

    #[tokio::test]
    async fn failed_publish_is_retryable_and_the_retry_sends() {
        let h = handler();
        h.ports.publisher.failures.store(1, Ordering::SeqCst);
        let event = fixture("studio-ops-app-idle-warning.json");
        let err = h
            .handle(event.clone(), Context::default())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(err.to_string().contains("Throttled"), "{err}");
        assert!(sent(&h).is_empty());
        let out = h.handle(event.clone(), Context::default()).await.unwrap();
        assert_eq!(out["outcome"], "published");
        let out = h.handle(event, Context::default()).await.unwrap();
        assert_eq!(out["outcome"], "duplicate");
        assert_eq!(sent(&h).len(), 1);
    }

    #[tokio::test]
    async fn duplicates_cost_no_registry_calls() {
        let h = handler();
        let event = fixture("sagemaker-model-package-pending.json");
        h.handle(event.clone(), Context::default()).await.unwrap();
        let calls = h.ports.registry.calls.load(Ordering::SeqCst);
        h.handle(event, Context::default()).await.unwrap();
        assert_eq!(h.ports.registry.calls.load(Ordering::SeqCst), calls);
    }

    #[tokio::test]
    async fn configured_kinds_groups_and_mutes_are_skipped_without_side_effects() {
        let h = handler_with(
            config(&[
                (config::MODEL_PACKAGE_ALERTS, "approved"),
                (config::MUTED_EVENTS, "training-started"),
            ]),
            registry(),
        );
        let pending = h
            .handle(
                fixture("sagemaker-model-package-pending.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(pending["outcome"], "skipped");
        let started = h
            .handle(
                fixture("studio-ops-training-started.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(started["outcome"], "skipped");
        assert_eq!(started["reason"], "training-started is muted");
        assert!(sent(&h).is_empty());
        assert_eq!(h.ports.registry.calls.load(Ordering::SeqCst), 0);

        let other_group = handler_with(
            config(&[(config::MODEL_PACKAGE_GROUPS, "demand-arima")]),
            registry(),
        );
        let out = other_group
            .handle(
                fixture("sagemaker-model-package-approved.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(out["outcome"], "skipped");
    }

    #[tokio::test]
    async fn registration_in_progress_is_an_other_change_and_off_by_default() {
        let h = handler();
        let mut event = fixture("sagemaker-model-package-pending.json");
        event["detail"]["ModelPackageStatus"] = json!("InProgress");
        let out = h.handle(event.clone(), Context::default()).await.unwrap();
        assert_eq!(out["outcome"], "skipped");
        assert_eq!(out["eventType"], "model-package-status-changed");

        let h = handler_with(
            config(&[(config::MODEL_PACKAGE_ALERTS, "other")]),
            registry(),
        );
        let out = h.handle(event, Context::default()).await.unwrap();
        assert_eq!(out["outcome"], "published");
        assert_eq!(
            sent(&h)[0].subject,
            "[studio-ops] churn-xgboost v3 is InProgress"
        );
    }

    #[tokio::test]
    async fn quiet_sweeps_are_skipped_unless_asked_for() {
        let mut event = fixture("studio-ops-idle-sweep-completed.json");
        event["detail"]["warned"] = json!(0);
        event["detail"]["stopped"] = json!(0);
        let out = handler()
            .handle(event.clone(), Context::default())
            .await
            .unwrap();
        assert_eq!(out["outcome"], "skipped");
        let loud = handler_with(config(&[(config::QUIET_SWEEPS, "true")]), registry());
        let out = loud.handle(event, Context::default()).await.unwrap();
        assert_eq!(out["outcome"], "published");
    }

    #[tokio::test]
    async fn a_changed_fact_is_a_new_alert() {
        let h = handler();
        let event = fixture("studio-ops-app-idle-warning.json");
        let mut later = event.clone();
        later["detail"]["stopsAt"] = json!("2026-11-25T09:00:00Z");
        h.handle(event, Context::default()).await.unwrap();
        let out = h.handle(later, Context::default()).await.unwrap();
        assert_eq!(out["outcome"], "published");
        assert_eq!(sent(&h).len(), 2);
    }

    #[tokio::test]
    async fn malformed_and_foreign_events_are_non_retryable_with_no_side_effect() {
        let h = handler();
        let mut e = fixture("sagemaker-model-package-approved.json");
        e["detail"]["ModelPackageStatus"] = json!(7);
        let err = h.handle(e, Context::default()).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::NonRetryable);
        assert!(
            err.to_string().contains("detail.ModelPackageStatus"),
            "{err}"
        );
        let err = h
            .handle(
                json!({"source": "aws.s3", "detail-type": "Object Created"}),
                Context::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::NonRetryable);
        assert!(sent(&h).is_empty());
    }

    #[tokio::test]
    async fn hostile_fields_cannot_break_subject_or_attributes() {
        let h = handler();
        let mut e = fixture("studio-ops-app-idle-warning.json");
        e["detail"]["userProfileName"] = json!("ana\r\nX-Injected: yes\u{202E}");
        e["detail"]["appType"] = json!(format!("Jupyter\n{}", "A".repeat(500)));
        e["detail"]["domainId"] = json!("\n\t ");
        h.handle(e, Context::default()).await.unwrap();
        let m = &sent(&h)[0];
        assert!(m.subject.len() < 100 && m.subject.is_ascii());
        assert!(!m.subject.contains(['\r', '\n']));
        assert_eq!(m.attribute("user"), Some("ana X-Injected: yes"));
        assert_eq!(
            m.attribute("domain"),
            Some("d-studioops0001"),
            "empty domain falls back to the configured one"
        );
        assert!(m.attributes.iter().all(|(_, v)| !v.is_empty()));
        assert!(!m.text.contains("\r\nX-Injected"));
    }
}
