//! provision-users handler: a membership event, the daily schedule or a manual invoke → (unless the event is
//! about another group) one reconcile at a time (the lease) → the reconcile use case → a typed [`Outcome`].

use std::time::Duration;

use jiff::Timestamp;
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::Deadline;
use studio_ops_shared::events::event_id;
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::lease::{self, Exclusive};
use studio_ops_shared::publisher::PublishEvents;

use crate::FUNCTION_NAME;
use crate::brake::BrakeAnswer;
use crate::config::Config;
use crate::error::HandlerError;
use crate::plan::Plan;
use crate::ports::{IdentityPort, StudioPort};
use crate::reconcile::{Ended, Reconciler, Report, Request};
use crate::trigger::{Scope, Trigger, parse_trigger, scope};

/// What an invocation answers (a failure is a `HandlerError` instead).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Outcome {
    /// The event is not this function's business (another group or store, a failed call): no AWS call made.
    Ignored { reason: String },
    /// Another reconcile holds the lease and does the same work.
    AlreadyRunning { reason: String },
    /// A preview: what a reconcile would do, and whether the brake would stop it.
    DryRun {
        domain_id: String,
        summary: String,
        brake: BrakeAnswer,
        plan: Plan,
    },
    /// The brake stopped the reconcile; nothing was changed.
    Blocked {
        domain_id: String,
        reason: String,
        summary: String,
        plan: Plan,
    },
    /// The plan was carried out completely.
    Reconciled {
        domain_id: String,
        summary: String,
        plan: Plan,
        /// Boxed: the report is the largest part of any answer.
        report: Box<Report>,
    },
}

/// The adapters the handler works through, built once in `main` (or pointed at the local world in tests).
pub struct Ports<I, S, P, L> {
    pub identity: I,
    pub studio: S,
    pub publisher: P,
    /// The one-reconcile-at-a-time lease (the suite's table, item `provision-users#lease`).
    pub lease: L,
}

pub struct Handler<I, S, P, L> {
    config: Config,
    ports: Ports<I, S, P, L>,
}

/// How long a membership event waits at most for a running reconcile to finish before Lambda's retry takes over
/// (capped further by half of the invocation's remaining time, so that the reconcile still fits).
const LEASE_WAIT: Duration = Duration::from_secs(120);
const LEASE_POLL: Duration = Duration::from_secs(2);
const LAPSES: &str = "it lapses at that run's deadline at the latest";

impl<I: IdentityPort, S: StudioPort, P: PublishEvents, L: IdempotencyStore> Handler<I, S, P, L> {
    pub fn new(config: Config, ports: Ports<I, S, P, L>) -> Self {
        Self { config, ports }
    }

    /// The adapters (tests read what a recording publisher holds).
    pub fn ports(&self) -> &Ports<I, S, P, L> {
        &self.ports
    }

    pub async fn handle(&self, event: Value, context: Context) -> Result<Outcome, HandlerError> {
        let deadline = Deadline::from_context(&context);
        // Boxed: under the Lambda runtime, the lease, the reconcile and the SDK's own futures nest deeper than rustc
        // lays out by default (its limit of 128; measured over 134). The box cuts the nesting where the old
        // `recursion_limit` raised the limit.
        Box::pin(self.handle_until(event, context.request_id, deadline)).await
    }

    /// `handle` with the deadline already read (tests give one the Lambda context cannot express).
    pub async fn handle_until(
        &self,
        event: Value,
        request_id: String,
        deadline: Deadline,
    ) -> Result<Outcome, HandlerError> {
        let trigger = parse_trigger(&event)?;
        let id = event_id(&event);
        let request = match scope(&trigger, &self.config)? {
            Scope::Ignore(reason) => {
                tracing::info!(event_id = %id, reason = %reason, "event acknowledged and ignored");
                return Ok(Outcome::Ignored { reason });
            }
            Scope::Reconcile(request) => request,
        };
        tracing::info!(event_id = %id, trigger = ?trigger, request = ?request, "reconcile requested");
        let run = || self.reconcile(&request, deadline);
        if request.dry_run {
            // A preview changes nothing: it needs no lease.
            return run().await;
        }
        // One reconcile at a time (two would race on one profile): the lease lapses at this deadline.
        let (until, holder) = (deadline.wall_clock(), lease::holder(&request_id));
        let lease = &self.ports.lease;
        let ran = match trigger {
            // A membership change must be applied after a running reconcile, not dropped: wait for it.
            Trigger::Membership(_) => {
                let give_up = Timestamp::now() + LEASE_WAIT.min(deadline.remaining() / 2);
                lease::exclusive_after_wait(lease, &holder, until, give_up, LEASE_POLL, run).await?
            }
            Trigger::Run(_) => lease::exclusive(lease, &holder, until, run).await?,
        };
        match (ran, trigger) {
            (Exclusive::Ran(outcome), _) => Ok(outcome),
            (Exclusive::AlreadyRunning, Trigger::Membership(_)) => Err(HandlerError::Busy),
            (Exclusive::AlreadyRunning, Trigger::Run(_)) => {
                tracing::info!(event_id = %id, "another reconcile holds the lease; this run does nothing");
                let reason = format!("another {FUNCTION_NAME} run holds the lease; {LAPSES}");
                Ok(Outcome::AlreadyRunning { reason })
            }
        }
    }

    /// Runs the use case, emits its metrics, and turns how it ended into the outcome.
    async fn reconcile(
        &self,
        request: &Request,
        deadline: Deadline,
    ) -> Result<Outcome, HandlerError> {
        let (identity, studio) = (&self.ports.identity, &self.ports.studio);
        let reconciler = Reconciler::new(identity, studio, &self.config, deadline);
        let run = reconciler.run(&self.ports.publisher, request).await?;
        if let Some(metrics) = run.metrics(request.only_profile.is_none()) {
            metrics.emit();
        }
        let domain_id = self.config.domain_id.clone();
        match run.ended {
            Ended::Preview { plan, verdict } => Ok(Outcome::DryRun {
                domain_id,
                summary: plan.summary(),
                brake: verdict.into(),
                plan,
            }),
            Ended::Blocked { plan, reason } => Ok(Outcome::Blocked {
                domain_id,
                reason,
                summary: plan.summary(),
                plan,
            }),
            Ended::Applied {
                plan,
                report,
                published,
                ..
            } => {
                published?;
                if !report.is_complete() {
                    return Err(HandlerError::Incomplete(report.summary()));
                }
                Ok(Outcome::Reconciled {
                    domain_id,
                    summary: report.summary(),
                    plan,
                    report: Box::new(report),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use serde_json::json;
    use studio_ops_shared::events::suite::SuiteEvent;
    use studio_ops_shared::idempotency::MemoryIdempotencyStore;
    use studio_ops_shared::publisher::RecordingPublisher;
    use studio_ops_shared::{ErrorClass, Failure};

    use crate::adapters::memory::{DS, FakeIdentity, FakeStudio, config, fixture};

    fn handler(
        identity: FakeIdentity,
        studio: FakeStudio,
        extra: &[(&str, &str)],
    ) -> Handler<FakeIdentity, FakeStudio, RecordingPublisher, MemoryIdempotencyStore> {
        Handler::new(
            config(extra),
            Ports {
                identity,
                studio,
                publisher: RecordingPublisher::default(),
                lease: MemoryIdempotencyStore::default(),
            },
        )
    }

    fn event_with_group(name: &str, group: &str) -> Value {
        let mut e = fixture(name);
        e["detail"]["requestParameters"]["groupId"] = json!(group);
        e
    }

    #[tokio::test]
    async fn other_group_events_make_no_calls() {
        let h = handler(FakeIdentity::default(), FakeStudio::default(), &[]);
        let out = h
            .handle(
                fixture("identitystore-create-group-membership-other-group.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Ignored { .. }), "{out:?}");
        assert_eq!(h.ports.identity.calls.load(Ordering::SeqCst), 0);
        assert_eq!(h.ports.studio.reads.load(Ordering::SeqCst), 0);
        assert!(h.ports.publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn dry_run_returns_the_plan_and_changes_nothing() {
        let identity = FakeIdentity {
            members: vec!["u1".into()],
            names: [("u1".to_string(), "ana@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::with_managed(&[("bob", "u2")]), &[]);
        let out = h
            .handle(fixture("manual-dry-run.json"), Context::default())
            .await
            .unwrap();
        let Outcome::DryRun {
            summary,
            plan,
            brake,
            ..
        } = out
        else {
            panic!("{out:?}")
        };
        assert_eq!(
            summary,
            "1 to create, 0 to update, 0 private spaces to create, 1 to deprovision, 0 skipped, 0 unchanged, 1 managed"
        );
        assert_eq!(plan.create[0].profile_name, "ana-example-com");
        assert_eq!(plan.deprovision[0].profile_name, "bob");
        // 1 of 1 managed profiles is 100 %, but a single deprovision always passes the share rule.
        assert!(!brake.blocked);
        assert_eq!(h.ports.studio.writes.load(Ordering::SeqCst), 0);
        assert!(h.ports.publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn reconcile_creates_deprovisions_and_publishes() {
        let identity = FakeIdentity {
            members: vec!["u1".into(), "u3".into()],
            names: [("u1".to_string(), "ana@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::with_managed(&[("bob", "u2")]), &[]);
        let out = h
            .handle(
                event_with_group("sso-directory-add-member-to-group.json", DS),
                Context::default(),
            )
            .await
            .unwrap();
        let Outcome::Reconciled { plan, .. } = out else {
            panic!("{out:?}")
        };
        assert_eq!(h.ports.studio.names(), vec!["ana-example-com".to_string()]);
        let events = h.ports.publisher.taken();
        let types: Vec<&str> = events.iter().map(SuiteEvent::detail_type).collect();
        assert_eq!(types, vec!["User Provisioned", "User Deprovisioned"]);
        let SuiteEvent::UserProvisioned(p) = &events[0] else {
            panic!()
        };
        assert_eq!(p.user_name, "ana@example.com");
        assert_eq!(p.group_name.as_deref(), Some("data-science"));
        // u3 has no user in the identity store: skipped with a reason.
        assert_eq!(plan.skipped[0].subject, "u3");
        // Again: nothing to do, nothing published.
        let out = h
            .handle(fixture("scheduled-event.json"), Context::default())
            .await
            .unwrap();
        let Outcome::Reconciled { report, .. } = out else {
            panic!("{out:?}")
        };
        assert_eq!(report.provisioned, vec![]);
        assert!(h.ports.publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn the_brake_blocks_everything_and_says_why() {
        let managed: Vec<(String, String)> = (0..5)
            .map(|i| (format!("user-{i}"), format!("u{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = managed
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let identity = FakeIdentity {
            // Three of five left (60 %) and somebody new arrived: nothing at all happens.
            members: vec!["u0".into(), "u1".into(), "new".into()],
            names: [("new".to_string(), "new@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::with_managed(&refs), &[]);
        let out = h
            .handle(fixture("scheduled-event.json"), Context::default())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Blocked { .. }), "{out:?}");
        assert_eq!(h.ports.studio.writes.load(Ordering::SeqCst), 0);
        let events = h.ports.publisher.taken();
        let [SuiteEvent::ProvisioningBlocked(b)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(b.would_deprovision, 3);
        assert_eq!(b.managed_profiles, 5);
        assert_eq!(
            b.reason,
            "would deprovision 3 of 5 managed profiles (60%), above the 20% brake"
        );
        assert_eq!(b.profiles, vec!["user-2", "user-3", "user-4"]);
        // The admin approves one by naming it: the brake does not apply to a targeted run.
        let out = h
            .handle(json!({"userProfileName": "user-3"}), Context::default())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Reconciled { .. }), "{out:?}");
        assert_eq!(
            h.ports.studio.names(),
            vec!["user-0", "user-1", "user-2", "user-4"]
        );
    }

    #[tokio::test]
    async fn no_time_left_means_not_reached_and_a_retryable_error() {
        let identity = FakeIdentity {
            members: vec!["u1".into()],
            names: [("u1".to_string(), "ana@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::default(), &[]);
        // 5 s left of the 2 minutes given (a short deadline keeps only a quarter as margin: see reconcile's tests).
        let now = Timestamp::now();
        let at = (now + Duration::from_secs(5)).as_millisecond() as u64;
        let deadline = Deadline::from_millis(at, now - Duration::from_secs(115));
        let err = h
            .handle_until(fixture("scheduled-event.json"), String::new(), deadline)
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(err.to_string().contains("1 not reached"), "{err}");
        assert_eq!(h.ports.studio.writes.load(Ordering::SeqCst), 0);
    }
}
