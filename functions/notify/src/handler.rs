//! notify's handler: parse the trigger → ask the policy whether it alerts and under which key → claim the key
//! once (the idempotency store) → the `alert` use case → a typed [`Outcome`], logged and counted in metrics.

use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::Deadline;
use studio_ops_shared::events::event_id;
use studio_ops_shared::idempotency::{Claim, IdempotencyStore};
use studio_ops_shared::metrics::{MetricSet, Unit};

use crate::alert::{self, Channels};
use crate::config::Config;
use crate::content::EventType;
use crate::context::AlertContext;
use crate::error::HandlerError;
use crate::policy::{self, Decision};
use crate::ports::{AlertPublisher, ModelRegistry};
use crate::trigger::{self, Trigger};

/// The adapters the handler talks through (built once in `main`).
pub struct Ports<P, R, S> {
    pub publisher: P,
    pub registry: R,
    pub store: S,
}

/// What one invocation did: returned to Lambda (`{"outcome": "published", "eventType": ..., "messageId": ...}`),
/// logged, and stored as the idempotency record of a published alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
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

    pub async fn handle(&self, event: Value, context: Context) -> Result<Outcome, HandlerError> {
        let trigger = trigger::parse(&event)?;
        let decision = match &trigger {
            Trigger::ModelPackage(change) => policy::decide_model_package(change, &self.config),
            Trigger::Suite(e) => policy::decide_suite(e, &self.config),
        };
        let outcome = match decision {
            Decision::Skip { event_type, reason } => Outcome::Skipped { event_type, reason },
            Decision::Alert { event_type, key } => {
                let ctx = AlertContext::from_envelope(
                    &event,
                    self.region.as_deref(),
                    self.config.domain_id.as_deref(),
                );
                let deadline = Deadline::from_context(&context);
                self.alert_once(&trigger, event_type, &key, &ctx, deadline)
                    .await?
            }
        };
        tracing::info!(event_id = event_id(&event), outcome = ?outcome, "notify handled event");
        let mut metrics = MetricSet::of(&crate::METRICS);
        metrics.put(outcome.metric(), 1.0, Unit::Count);
        metrics.emit();
        Ok(outcome)
    }

    /// Claims `key` until the invocation's deadline (a crashed holder's claim lapses then), runs the use case,
    /// and records the outcome; a failed publish gives the claim back so that Lambda's retry (or a DLQ
    /// redrive) sends it. A duplicate never reads the stored record (records written before the typed
    /// `Outcome` have another shape): the claim alone says the alert went out.
    async fn alert_once(
        &self,
        trigger: &Trigger,
        event_type: EventType,
        key: &str,
        ctx: &AlertContext,
        deadline: Deadline,
    ) -> Result<Outcome, HandlerError> {
        let store = &self.ports.store;
        match store.claim(key, deadline.wall_clock()).await? {
            Claim::AlreadyCompleted(_) => return Ok(Outcome::Duplicate { event_type }),
            Claim::InProgress => return Ok(Outcome::InProgressElsewhere { event_type }),
            Claim::Acquired => {}
        }
        let channels = Channels {
            publisher: &self.ports.publisher,
            registry: &self.ports.registry,
        };
        match alert::send(channels, trigger, ctx, &self.config.subject_prefix).await {
            Ok(message_id) => {
                let outcome = Outcome::Published {
                    event_type,
                    message_id,
                };
                // Unlike `idempotency::once`, a failed completion is only logged: the alert is out, and failing
                // now would make Lambda send it again once the claim lapses.
                let record = serde_json::to_value(&outcome).unwrap_or_default();
                if let Err(e) = store.complete(key, &record).await {
                    tracing::warn!(key, error = %e, "alert sent but its idempotency record was not completed");
                }
                Ok(outcome)
            }
            Err(error) => {
                if let Err(release) = store.release(key).await {
                    tracing::warn!(key, error = %release, "could not release the claim; it expires with the deadline");
                }
                Err(HandlerError::Publish {
                    topic: self.config.topic_arn.clone(),
                    error,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use studio_ops_shared::ErrorClass;
    use studio_ops_shared::Failure;
    use studio_ops_shared::config::{EVENT_BUS_NAME, Env, IDEMPOTENCY_TABLE};
    use studio_ops_shared::idempotency::MemoryIdempotencyStore;

    use super::*;
    use crate::adapters::memory::fixtures::{fixture, fixtures};
    use crate::adapters::memory::{MemoryRegistry, MemoryTopic};
    use crate::config::{self, Config};
    use crate::model_package::PackageDetails;
    use crate::render::OutgoingMessage;

    const V3: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/3";
    const V2: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/2";

    fn registry() -> MemoryRegistry {
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
        MemoryRegistry::with([v2, v3])
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

    type TestHandler = Handler<MemoryTopic, MemoryRegistry, MemoryIdempotencyStore>;

    fn handler_with(config: Config, registry: MemoryRegistry) -> TestHandler {
        Handler::new(
            config,
            Ports {
                publisher: MemoryTopic::default(),
                registry,
                store: MemoryIdempotencyStore::default(),
            },
            Some("us-east-1".into()),
        )
    }

    fn handler() -> TestHandler {
        handler_with(config(&[]), registry())
    }

    fn sent(h: &TestHandler) -> Vec<OutgoingMessage> {
        h.ports.publisher.sent()
    }

    #[test]
    fn the_outcome_answers_in_the_json_shape_lambda_returned_before() {
        let published = Outcome::Published {
            event_type: EventType::AppStopped,
            message_id: "m-1".into(),
        };
        assert_eq!(
            serde_json::to_value(&published).unwrap(),
            json!({"outcome": "published", "eventType": "app-stopped", "messageId": "m-1"})
        );
        let skipped = Outcome::Skipped {
            event_type: EventType::IdleSweepCompleted,
            reason: "quiet".into(),
        };
        assert_eq!(
            serde_json::to_value(&skipped).unwrap(),
            json!({"outcome": "skipped", "eventType": "idle-sweep-completed", "reason": "quiet"})
        );
        let elsewhere = Outcome::InProgressElsewhere {
            event_type: EventType::AppStopped,
        };
        assert_eq!(
            serde_json::to_value(&elsewhere).unwrap()["outcome"],
            "in-progress-elsewhere"
        );
        for out in [published, skipped, elsewhere] {
            let back: Outcome =
                serde_json::from_value(serde_json::to_value(&out).unwrap()).unwrap();
            assert_eq!(back, out);
        }
    }

    #[tokio::test]
    async fn a_record_stored_in_the_old_shape_is_still_a_duplicate() {
        let h = handler();
        let event = fixture("studio-ops-app-stopped.json");
        let Ok(Trigger::Suite(e)) = trigger::parse(&event) else {
            panic!("a suite event");
        };
        let Decision::Alert { key, .. } = policy::decide_suite(&e, &h.config) else {
            panic!("alerts");
        };
        let until = jiff::Timestamp::now() + std::time::Duration::from_secs(60);
        assert_eq!(
            h.ports.store.claim(&key, until).await.unwrap(),
            Claim::Acquired
        );
        let old = json!({"messageId": "m-0", "eventType": "app-stopped"});
        h.ports.store.complete(&key, &old).await.unwrap();
        let out = h.handle(event, Context::default()).await.unwrap();
        assert_eq!(
            out,
            Outcome::Duplicate {
                event_type: EventType::AppStopped
            }
        );
        assert!(sent(&h).is_empty());
    }

    #[tokio::test]
    async fn every_fixture_alerts_once_however_often_it_arrives() {
        let h = handler();
        for (name, event) in fixtures() {
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(h.handle(event.clone(), Context::default()).await.unwrap());
            }
            assert!(matches!(outcomes[0], Outcome::Published { .. }), "{name}");
            assert!(matches!(outcomes[1], Outcome::Duplicate { .. }), "{name}");
            assert!(matches!(outcomes[2], Outcome::Duplicate { .. }), "{name}");
        }
        let messages = sent(&h);
        assert_eq!(messages.len(), 20);
        let mut types: Vec<&str> = messages
            .iter()
            .map(|m| m.attribute("event_type").unwrap())
            .collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), 20, "one message per kind: {types:?}");
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
        let h = handler_with(config(&[]), MemoryRegistry::down());
        let out = h
            .handle(
                fixture("sagemaker-model-package-pending.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Published { .. }), "{out:?}");
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
        h.ports.publisher.fail_next(1);
        let event = fixture("studio-ops-app-idle-warning.json");
        let err = h
            .handle(event.clone(), Context::default())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(err.to_string().contains("Throttled"), "{err}");
        assert!(sent(&h).is_empty());
        let out = h.handle(event.clone(), Context::default()).await.unwrap();
        assert!(matches!(out, Outcome::Published { .. }), "{out:?}");
        let out = h.handle(event, Context::default()).await.unwrap();
        assert!(matches!(out, Outcome::Duplicate { .. }), "{out:?}");
        assert_eq!(sent(&h).len(), 1);
    }

    #[tokio::test]
    async fn duplicates_cost_no_registry_calls() {
        let h = handler();
        let event = fixture("sagemaker-model-package-pending.json");
        h.handle(event.clone(), Context::default()).await.unwrap();
        let calls = h.ports.registry.calls();
        h.handle(event, Context::default()).await.unwrap();
        assert_eq!(h.ports.registry.calls(), calls);
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
        assert!(matches!(pending, Outcome::Skipped { .. }), "{pending:?}");
        let started = h
            .handle(
                fixture("studio-ops-training-started.json"),
                Context::default(),
            )
            .await
            .unwrap();
        let Outcome::Skipped { reason, .. } = started else {
            panic!("skipped: {started:?}");
        };
        assert_eq!(reason, "training-started is muted");
        assert!(sent(&h).is_empty());
        assert_eq!(h.ports.registry.calls(), 0);

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
        assert!(matches!(out, Outcome::Skipped { .. }), "{out:?}");
    }

    #[tokio::test]
    async fn registration_in_progress_is_an_other_change_and_off_by_default() {
        let h = handler();
        let mut event = fixture("sagemaker-model-package-pending.json");
        event["detail"]["ModelPackageStatus"] = json!("InProgress");
        let out = h.handle(event.clone(), Context::default()).await.unwrap();
        assert_eq!(
            out,
            Outcome::Skipped {
                event_type: EventType::ModelPackageStatusChanged,
                reason: "other changes do not alert (approval \"PendingManualApproval\", status InProgress)"
                    .into()
            }
        );

        let h = handler_with(
            config(&[(config::MODEL_PACKAGE_ALERTS, "other")]),
            registry(),
        );
        let out = h.handle(event, Context::default()).await.unwrap();
        assert!(matches!(out, Outcome::Published { .. }), "{out:?}");
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
        assert!(matches!(out, Outcome::Skipped { .. }), "{out:?}");
        let loud = handler_with(config(&[(config::QUIET_SWEEPS, "true")]), registry());
        let out = loud.handle(event, Context::default()).await.unwrap();
        assert!(matches!(out, Outcome::Published { .. }), "{out:?}");
    }

    #[tokio::test]
    async fn a_changed_fact_is_a_new_alert() {
        let h = handler();
        let event = fixture("studio-ops-app-idle-warning.json");
        let mut later = event.clone();
        later["detail"]["stopsAt"] = json!("2026-11-25T09:00:00Z");
        h.handle(event, Context::default()).await.unwrap();
        let out = h.handle(later, Context::default()).await.unwrap();
        assert!(matches!(out, Outcome::Published { .. }), "{out:?}");
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
