//! Acting on one decided app: keep it, clear its warning, let its grace run, warn its owner (the warn protocol) or
//! stop it (announcing the stop as it happens), and say what the sweep state should remember of it afterwards. A
//! dry run decides the same and changes nothing. Acting, once begun, finishes: its result always ends in the report.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use studio_ops_shared::events::suite::{AppIdleWarning, AppStopped, SuiteEvent};
use studio_ops_shared::idempotency::{Claim, IdempotencyStore};
use studio_ops_shared::publisher::PublishEvents;

use crate::decision::{Action, AppFacts, AppListing, Decision, OwnerFacts, short};
use crate::ledger::Account;
use crate::ports::{DeleteOutcome, FailureQueues, SpendLedger, StopApps, SweepState, Tagging};
use crate::report::{AppOutcome, AppResult};
use crate::state::Warning;
use crate::sweep::{Decided, Run, Sweeper};
use crate::weekly::Stop;

/// What the sweep state should hold of an app once it has been acted on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum After {
    /// Stopped (or found deleted): nothing to remember.
    Gone,
    /// Still there, with this warning outstanding (or none).
    Warning(Option<Warning>),
}

/// What the idempotency store keeps of a sent warning: when it went out, so that an overlapping sweep (or one whose
/// state write failed) restores the warning with the same time instead of sending a second warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WarningSent {
    warned_at: String,
}

impl<S, P, I, D, Q> Sweeper<'_, S, P, I, D, Q>
where
    S: Tagging + StopApps,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    /// Carries out `decided`'s action on `app`; returns its result, the `App Stopped` notice of a stop that could
    /// not be published at once (the end of the sweep tries again) and what the state should remember.
    pub(crate) async fn act(
        &self,
        app: AppListing,
        decided: Decided,
        run: &Run,
    ) -> (AppResult, Option<AppStopped>, After) {
        let Decided {
            description,
            facts,
            owner,
            decision,
            previous,
        } = decided;
        let explain = decision.explain();
        let mut result = self.result_of(app, &facts, &decision, explain.clone());
        let arn = description.arn.as_str();
        // The warning as it stood: the state's (with its episode), else an old tag's.
        let standing = previous
            .and_then(|p| p.warning)
            .filter(|w| Some(w.at) == facts.warning);
        let as_before = |at: Timestamp| {
            After::Warning(Some(
                standing.clone().unwrap_or(Warning { at, episode: None }),
            ))
        };
        let after = match &decision.action {
            Action::Keep => {
                result.outcome = AppOutcome::Skipped(decision.reason.key().to_string());
                After::Warning(None)
            }
            Action::ClearWarning => {
                // The warning lives in the state table: dropping it from there is the clearing.
                result.outcome = AppOutcome::Skipped(decision.reason.key().to_string());
                result.warning_cleared = true;
                After::Warning(None)
            }
            Action::AwaitGrace {
                stops_at,
                warned_at,
            } => {
                result.outcome = AppOutcome::Skipped("awaiting-grace".into());
                result.reason = format!("{explain}; warned, stops at {}", short(*stops_at));
                as_before(*warned_at)
            }
            Action::Warn { stops_at, episode } => {
                if run.dry_run {
                    result.outcome = AppOutcome::Warned;
                    After::Warning(None)
                } else {
                    let event = idle_warning(&result, &facts, owner.as_ref(), &decision, *stops_at);
                    let created = facts.created.map_or(0, |c| c.as_second());
                    let key = format!("warning/{arn}/{created}/{episode}");
                    let (outcome, sent, note) = self.warn(&key, event, run).await;
                    result.outcome = outcome;
                    if let Some(note) = note {
                        result.reason = format!("{explain}; {note}");
                    }
                    match sent {
                        Some(at) => After::Warning(Some(Warning {
                            at,
                            episode: Some(episode.clone()),
                        })),
                        None => After::Warning(standing.clone()),
                    }
                }
            }
            Action::Stop { warned_at } => {
                result.reason = format!("{explain}; warned at {}", short(*warned_at));
                if !run.dry_run {
                    let (result, notice, gone) = self.stop(result, owner.as_ref(), &decision).await;
                    let after = if gone {
                        After::Gone
                    } else {
                        as_before(*warned_at)
                    };
                    return (result, notice, after);
                }
                result.outcome = AppOutcome::Stopped;
                as_before(*warned_at)
            }
            Action::LoadOwnerFacts => {
                result.reason =
                    format!("{explain}; the owner's facts were not loaded (internal error)");
                After::Warning(standing.clone())
            }
        };
        (result, None, after)
    }

    /// The result as it stands before acting: failed until an action says otherwise, priced and with its idle time.
    fn result_of(
        &self,
        app: AppListing,
        facts: &AppFacts,
        decision: &Decision,
        explain: String,
    ) -> AppResult {
        let mut result = AppResult::new(app, AppOutcome::Failed, decision.action.name(), explain);
        result.instance_type = facts.instance_type.clone();
        result.hourly_cost_usd = facts
            .instance_type
            .as_deref()
            .and_then(|t| self.prices.hourly(t));
        result.idle_minutes = Some(decision.idle_minutes());
        result
    }

    /// Stops the app and announces it at once, so that the owner hears of it even if this invocation dies later; a
    /// notice that cannot go out now goes with the sweep summary.
    async fn stop(
        &self,
        mut result: AppResult,
        owner: Option<&OwnerFacts>,
        decision: &Decision,
    ) -> (AppResult, Option<AppStopped>, bool) {
        match self.ports.studio.delete_app(&result.app).await {
            Ok(DeleteOutcome::Deleted) => {
                result.outcome = AppOutcome::Stopped;
                let event = app_stopped(&result, owner, decision);
                self.keep_stop(&event, result.hourly_cost_usd, "idle").await;
                let notice = [SuiteEvent::from(event.clone())];
                if let Err(e) = self.ports.publisher.publish(&notice).await {
                    tracing::warn!(app = %result.app.app_name, error = %e, "App Stopped not published; retried with the sweep summary");
                    return (result, Some(event), true);
                }
                return (result, None, true);
            }
            Ok(DeleteOutcome::AlreadyGone) => {
                result.outcome = AppOutcome::Skipped("already-gone".into());
                result.reason = format!("{}; DeleteApp: already deleted", result.reason);
                return (result, None, true);
            }
            Ok(DeleteOutcome::InUse(message)) => {
                result.outcome = AppOutcome::Skipped("delete-in-use".into());
                result.reason = format!(
                    "{}; DeleteApp: {message}; the next sweep retries",
                    result.reason
                );
            }
            Err(e) => result.reason = format!("{}; {e}", result.reason),
        }
        (result, None, false)
    }

    /// Warns once per idle spell even when sweeps overlap: the idempotency store elects one invocation, which
    /// publishes the warning before the state records it, so no app is ever stopped without a published warning.
    /// Returns the outcome, when the warning went out (this sweep or before) and a note for the reason.
    async fn warn(
        &self,
        key: &str,
        event: AppIdleWarning,
        run: &Run,
    ) -> (AppOutcome, Option<Timestamp>, Option<String>) {
        let claim = match self
            .ports
            .idempotency
            .claim(key, run.deadline.wall_clock())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return (
                    AppOutcome::Failed,
                    None,
                    Some(format!("cannot claim the warning: {e}")),
                );
            }
        };
        match claim {
            Claim::InProgress => (
                AppOutcome::Skipped("warning-in-progress-elsewhere".into()),
                None,
                Some("another sweep is warning this app".into()),
            ),
            Claim::AlreadyCompleted(previous) => {
                // Sent before (by an overlapping sweep, or one whose state write failed): the state gets its time
                // back, nothing is sent again. A record that does not read as a sent warning (another shape, or
                // none) still means "sent": its time is unknown, so it gets this sweep's.
                let sent_at = previous
                    .as_ref()
                    .and_then(|v| WarningSent::deserialize(v).ok())
                    .and_then(|w| w.warned_at.parse::<Timestamp>().ok())
                    .unwrap_or(run.now);
                (
                    AppOutcome::Skipped("already-warned".into()),
                    Some(sent_at),
                    Some(format!("warning already sent at {}", short(sent_at))),
                )
            }
            Claim::Acquired => self.send_warning(key, event, run.now).await,
        }
    }

    /// This sweep holds the warning's claim: publish, then record it as sent (the state records it after).
    async fn send_warning(
        &self,
        key: &str,
        event: AppIdleWarning,
        now: Timestamp,
    ) -> (AppOutcome, Option<Timestamp>, Option<String>) {
        let store = &self.ports.idempotency;
        if let Err(e) = self.ports.publisher.publish(&[event.into()]).await {
            if let Err(release) = store.release(key).await {
                tracing::warn!(key, error = %release, "cannot release the warning claim; it expires with the deadline");
            }
            return (
                AppOutcome::Failed,
                None,
                Some(format!("warning not published, app left untouched: {e}")),
            );
        }
        let sent = WarningSent {
            warned_at: short(now),
        };
        let recorded = match serde_json::to_value(&sent) {
            Ok(record) => store
                .complete(key, &record)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = recorded {
            tracing::warn!(key, error = %e, "warning sent but not recorded as sent");
        }
        (AppOutcome::Warned, Some(now), None)
    }

    /// Keeps a stop for the weekly digests; a stop not kept is logged and missing from them, nothing else.
    pub(crate) async fn keep_stop(
        &self,
        stopped: &AppStopped,
        usd_per_hour: Option<f64>,
        cause: &str,
    ) {
        let stop = Stop {
            domain_id: stopped.domain_id.clone(),
            account: match (&stopped.user_profile_name, &stopped.space_name) {
                (Some(user), _) => Account::User(user.clone()),
                (None, space) => Account::Space(space.clone().unwrap_or_default()),
            },
            space: stopped.space_name.clone(),
            app_type: stopped.app_type.clone(),
            app_name: stopped.app_name.clone(),
            instance_type: stopped.instance_type.clone(),
            usd_per_hour,
            at: Timestamp::now().as_second(),
            cause: cause.to_string(),
            idle_minutes: stopped.idle_minutes,
        };
        if let Err(e) = self.ports.state.record_stop(&stop).await {
            tracing::warn!(app = %stop.app_name, error = %e, "the stop is not kept for the weekly digest");
        }
    }
}

/// The `App Idle Warning` of an app about to be warned.
fn idle_warning(
    result: &AppResult,
    facts: &AppFacts,
    owner: Option<&OwnerFacts>,
    decision: &Decision,
    stops_at: Timestamp,
) -> AppIdleWarning {
    AppIdleWarning {
        domain_id: result.app.domain_id.clone(),
        user_profile_name: owner.and_then(|o| o.owner_user_profile.clone()),
        space_name: result.app.owner.space().map(str::to_string),
        app_type: result.app.app_type.clone(),
        app_name: result.app.app_name.clone(),
        instance_type: facts
            .instance_type
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        idle_minutes: decision.idle_minutes(),
        stops_at: short(stops_at),
        reason: result.reason.clone(),
        hourly_cost_usd: result.hourly_cost_usd,
    }
}

/// The `App Stopped` notice of an app this sweep stopped.
fn app_stopped(result: &AppResult, owner: Option<&OwnerFacts>, decision: &Decision) -> AppStopped {
    AppStopped {
        domain_id: result.app.domain_id.clone(),
        user_profile_name: owner.and_then(|o| o.owner_user_profile.clone()),
        space_name: result.app.owner.space().map(str::to_string),
        app_type: result.app.app_type.clone(),
        app_name: result.app.app_name.clone(),
        instance_type: result
            .instance_type
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        idle_minutes: decision.idle_minutes(),
        reason: result.reason.clone(),
        hourly_cost_usd: result.hourly_cost_usd,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use jiff::SignedDuration;
    use studio_ops_shared::events::schedule::RunRequest;
    use studio_ops_shared::events::suite::SuiteEvent;

    use jiff::Timestamp;
    use studio_ops_shared::idempotency::{Claim, IdempotencyStore};

    use crate::adapters::memory::*;
    use crate::decision::KEEP_ALIVE_TAG;
    use crate::ports::DeleteOutcome;

    #[tokio::test]
    async fn resumed_activity_and_keep_alive_clear_the_warning() {
        let mut s = FakeStudio::default();
        s.ana_gpu("back-at-work", Some(3));
        s.ana_gpu("kept", Some(300));
        s.warn("back-at-work", ago(20));
        s.warn("kept", ago(20));
        s.tag(
            "arn:user-profile/ana",
            KEEP_ALIVE_TAG,
            &(now() + SignedDuration::from_hours(3)).to_string(),
        );
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        assert_eq!(report.warnings_cleared, 1);
        assert_eq!(report.skipped.get("active"), Some(&1));
        // During the grace nothing more is read: the warned app just waits...
        assert_eq!(report.skipped.get("awaiting-grace"), Some(&1));
        assert_eq!(h.ports().studio.calls_of("ListTags"), 0);
        assert_eq!(warning_of(&h, "back-at-work"), None);
        // ... and when it is due, the stop decides on fresh tags: the keep-alive set meanwhile holds it.
        let due = now() + SignedDuration::from_mins(15);
        let report = h
            .sweep(&RunRequest::default(), due, far_deadline())
            .await
            .unwrap();
        assert_eq!(report.warnings_cleared, 1);
        assert_eq!(report.skipped.get("keep-alive"), Some(&1));
        assert_eq!(warning_of(&h, "kept"), None);
        assert_eq!(h.ports().studio.calls_of("DeleteApp"), 0);
        // Clearing is a state write, not a tag call.
        assert_eq!(h.ports().studio.calls_of("DeleteTags"), 0);
    }

    #[tokio::test]
    async fn an_unpublished_warning_leaves_no_state_and_the_next_sweep_warns() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        h.ports()
            .publisher
            .fail_warnings
            .store(true, Ordering::SeqCst);
        let report = sweep(&h).await;
        assert_eq!((report.warned, report.failed), (0, 1));
        assert!(
            report.apps[0].reason.contains("warning not published"),
            "{}",
            report.apps[0].reason
        );
        assert_eq!(warning_of(&h, "idle-gpu"), None);

        h.ports()
            .publisher
            .fail_warnings
            .store(false, Ordering::SeqCst);
        let report = sweep(&h).await;
        assert_eq!(report.warned, 1);
        assert_eq!(warning_of(&h, "idle-gpu"), Some(now()));
        // No tag is written: the alert is the user's trace of the warning.
        assert_eq!(h.ports().studio.calls_of("AddTags"), 0);
    }

    #[tokio::test]
    async fn a_warning_already_sent_is_not_sent_again_but_its_state_is_restored() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        assert_eq!(sweep(&h).await.warned, 1);
        // The state got lost (say, its write failed after the warning went out): no second warning, same time.
        h.ports().state.domains.lock().unwrap().clear();
        events(&h);
        let later = now() + SignedDuration::from_mins(10);
        let report = h
            .sweep(&RunRequest::default(), later, far_deadline())
            .await
            .unwrap();
        assert_eq!(
            (report.warned, report.skipped.get("already-warned")),
            (0, Some(&1))
        );
        assert_eq!(warning_of(&h, "idle-gpu"), Some(now()));
        assert!(
            !events(&h)
                .iter()
                .any(|e| matches!(e, SuiteEvent::AppIdleWarning(_)))
        );
    }

    #[tokio::test]
    async fn delete_conflicts_are_not_counted_as_stops() {
        let mut s = FakeStudio::default();
        s.ana_gpu("gone", Some(120));
        s.ana_gpu("busy", Some(120));
        for app in ["gone", "busy"] {
            s.warn(app, ago(31));
        }
        s.delete_outcomes
            .insert("gone".into(), DeleteOutcome::AlreadyGone);
        s.delete_outcomes.insert(
            "busy".into(),
            DeleteOutcome::InUse("App is Deleting".into()),
        );
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        assert_eq!(report.stopped, 0);
        assert_eq!(report.estimated_hourly_savings_usd, 0.0);
        assert_eq!(report.skipped.get("already-gone"), Some(&1));
        assert_eq!(report.skipped.get("delete-in-use"), Some(&1));
        assert_eq!(events(&h).len(), 1, "only the summary");
    }

    #[tokio::test]
    async fn a_stop_is_announced_as_it_happens_before_the_summary() {
        let h = handler(stoppable(&["gpu-1", "gpu-2"]), &[]);
        let report = sweep(&h).await;
        assert_eq!(report.stopped, 2);
        let published = events(&h);
        let kinds: Vec<&str> = published.iter().map(SuiteEvent::detail_type).collect();
        assert_eq!(
            kinds,
            ["App Stopped", "App Stopped", "Idle Sweep Completed"],
            "each stop is published on its own, then the summary"
        );
        assert_eq!(
            *h.ports().publisher.batch_sizes.lock().unwrap(),
            [1, 1, 1],
            "one publish per stop, as it happens, not a batch at the end"
        );
        // Each stop is kept for the weekly digests, with what it costs per hour.
        let stops = h.ports().state.stops.lock().unwrap().clone();
        assert_eq!(stops.len(), 2);
        assert!(
            stops
                .values()
                .all(|s| s.cause == "idle" && s.usd_per_hour.is_some() && s.idle_minutes > 0),
            "{stops:?}"
        );
        assert!(
            h.ports().state.lags.lock().unwrap().is_empty(),
            "a sweep that kept up leaves no lag record"
        );
    }

    #[tokio::test]
    async fn a_stop_notice_that_cannot_go_out_at_once_goes_with_the_summary() {
        let h = handler(stoppable(&["gpu-1", "gpu-2"]), &[]);
        h.ports()
            .publisher
            .fail_stop_notices
            .store(true, Ordering::SeqCst);
        let report = sweep(&h).await;
        assert_eq!(report.stopped, 2);
        let published = events(&h);
        let mut stopped: Vec<String> = published
            .iter()
            .filter_map(|e| match e {
                SuiteEvent::AppStopped(s) => Some(s.app_name.clone()),
                _ => None,
            })
            .collect();
        stopped.sort();
        assert_eq!(stopped, ["gpu-1", "gpu-2"], "each notice exactly once");
        assert_eq!(
            published.last().map(SuiteEvent::detail_type),
            Some("Idle Sweep Completed")
        );
    }

    /// A store whose every warning was completed before, with a record this version does not write.
    struct LegacyRecords;

    impl IdempotencyStore for LegacyRecords {
        async fn claim(
            &self,
            _key: &str,
            _until: Timestamp,
        ) -> Result<Claim, studio_ops_shared::idempotency::IdempotencyError> {
            Ok(Claim::AlreadyCompleted(Some(
                serde_json::json!({"sentAt": "2026-11-24T20:00:00Z"}),
            )))
        }
        async fn complete(
            &self,
            _key: &str,
            _result: &serde_json::Value,
        ) -> Result<(), studio_ops_shared::idempotency::IdempotencyError> {
            Ok(())
        }
        async fn release(
            &self,
            _key: &str,
        ) -> Result<(), studio_ops_shared::idempotency::IdempotencyError> {
            Ok(())
        }
        async fn claim_for(
            &self,
            key: &str,
            until: Timestamp,
            _holder: &str,
        ) -> Result<Claim, studio_ops_shared::idempotency::IdempotencyError> {
            self.claim(key, until).await
        }
        async fn release_for(
            &self,
            _key: &str,
            _holder: &str,
        ) -> Result<(), studio_ops_shared::idempotency::IdempotencyError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_warning_record_of_another_shape_still_counts_as_sent() {
        // A record an older version stored, that no longer reads as `WarningSent`: the warning went out, so it is
        // not sent again; its time is unknown, so the restored tag carries this sweep's.
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = crate::handler::Handler::new(
            config(&[]),
            studio_ops_shared::prices::PriceTable::from_prices(
                "us-east-1",
                &[("ml.g5.xlarge", 1.41)],
            ),
            crate::ports::Ports {
                studio: s,
                publisher: FlakyPublisher::default(),
                idempotency: LegacyRecords,
                state: MemoryState::default(),
                queues: FakeQueues::default(),
            },
        );
        let report = h
            .sweep(&RunRequest::default(), now(), far_deadline())
            .await
            .unwrap();
        assert_eq!(
            (report.warned, report.skipped.get("already-warned")),
            (0, Some(&1))
        );
        let (listing, _) = &h.ports().studio.apps[0];
        let state = h.ports().state.app(listing).unwrap();
        assert_eq!(state.warning.map(|w| w.at), Some(now()));
        assert!(
            h.ports()
                .publisher
                .inner
                .taken()
                .iter()
                .all(|e| !matches!(e, SuiteEvent::AppIdleWarning(_)))
        );
    }
}
