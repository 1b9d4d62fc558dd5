//! idle-shutdown's handler: an invocation → its [`Trigger`] → one sweep (`sweep.rs`, acting through `act.rs`) →
//! the typed [`Outcome`]. A dry run changes nothing and may overlap anything; a real sweep runs alone, under the
//! function's lease.

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::Deadline;
use studio_ops_shared::events::event_id;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::lease::{self, Exclusive};
use studio_ops_shared::publisher::PublishEvents;

use crate::config::Config;
use crate::digest::DigestReport;
use crate::error::HandlerError;
use crate::ledger::SpendReport;
pub use crate::ports::Ports;
use crate::ports::{FailureQueues, SpendLedger, Studio, SweepState};
use crate::report::{FUNCTION_NAME, SweepReport};
use crate::sweep::Sweeper;
use crate::trigger::{DigestRequest, Trigger};
use studio_ops_shared::prices::PriceTable;

/// What one invocation did: its answer, and what a test reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The sweep ran; its report (the counts, the notable apps, the domains that could not be listed).
    Swept(SweepReport),
    /// The spend report asked for (`{"report": "spend"}`): read from the ledger, nothing changed.
    Spend(SpendReport),
    Digest(DigestReport),
    /// Another sweep holds the lease; this one did nothing. Not an error: nothing to retry, the next scheduled sweep
    /// comes soon.
    AlreadyRunning {
        reason: String,
    },
}

impl Outcome {
    /// The report of a sweep that ran.
    pub fn report(&self) -> Option<&SweepReport> {
        match self {
            Outcome::Swept(report) => Some(report),
            Outcome::AlreadyRunning { .. } | Outcome::Spend(_) | Outcome::Digest(_) => None,
        }
    }

    fn already_running() -> Self {
        // The same words as `lease::already_running` (which answers untyped JSON).
        Outcome::AlreadyRunning {
            reason: format!(
                "another {FUNCTION_NAME} run holds the lease; it lapses at that run's deadline at the latest"
            ),
        }
    }
}

pub struct Handler<S, P, I, D, Q> {
    config: Config,
    prices: PriceTable,
    ports: Ports<S, P, I, D, Q>,
}

impl<S, P, I, D, Q> Handler<S, P, I, D, Q>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    pub fn new(config: Config, prices: PriceTable, ports: Ports<S, P, I, D, Q>) -> Self {
        Self {
            config,
            prices,
            ports,
        }
    }

    /// The ports, for tests that look at what the sweep did.
    pub fn ports(&self) -> &Ports<S, P, I, D, Q> {
        &self.ports
    }

    /// One invocation: its trigger's sweep, run alone under the function's lease unless it is a dry run.
    pub async fn handle(&self, event: Value, context: Context) -> Result<Outcome, HandlerError> {
        let trigger = Trigger::parse(&event)?;
        let request = trigger.request();
        let now = Timestamp::now();
        let deadline = Deadline::from_context(&context);
        if let Trigger::SpendReport(spend) = &trigger {
            tracing::info!(event_id = event_id(&event), month = ?spend.month, domain = ?spend.domain_id, "spend report requested");
            return Ok(Outcome::Spend(
                self.sweeper().spend_report(spend, now).await?,
            ));
        }
        if let Trigger::Digest(digest) = &trigger {
            tracing::info!(event_id = event_id(&event), week = ?digest.week, dry_run = digest.dry_run, "weekly digests requested");
            let holder = lease::holder(&context.request_id);
            return Ok(Outcome::Digest(
                self.digests(digest, now, deadline, &holder).await?,
            ));
        }
        tracing::info!(event_id = event_id(&event), dry_run = request.dry_run, domain = ?request.domain_id, user = ?request.user_profile_name, "idle sweep requested");
        if request.dry_run {
            return Ok(Outcome::Swept(self.sweep(&request, now, deadline).await?));
        }
        // Two real sweeps would warn and stop the same apps: the lease lapses at this invocation's deadline.
        let holder = lease::holder(&context.request_id);
        let sweep = || self.sweep(&request, now, deadline);
        match lease::exclusive(
            &self.ports.idempotency,
            &holder,
            deadline.wall_clock(),
            sweep,
        )
        .await?
        {
            Exclusive::Ran(report) => Ok(Outcome::Swept(report)),
            Exclusive::AlreadyRunning => {
                tracing::info!("another sweep holds the lease; this one does nothing");
                Ok(Outcome::already_running())
            }
        }
    }

    /// [`Handler::handle`] with the outcome as the JSON answer Lambda returns.
    pub async fn answer(&self, event: Value, context: Context) -> Result<Value, HandlerError> {
        // Boxed: the invocation's future nests deep (runtime → lease → sweep → act → publish); boxing it keeps the
        // type the runtime sees shallow enough for the compiler's default recursion limit.
        let handled: Pin<Box<dyn Future<Output = _> + Send + '_>> =
            Box::pin(self.handle(event, context));
        let outcome = handled.await?;
        serde_json::to_value(&outcome).map_err(HandlerError::Answer)
    }

    /// One sweep, deciding at `now`, starting no new work after the deadline's cutoff (the configured margin, at
    /// most a quarter of the time the invocation was given).
    pub async fn sweep(
        &self,
        request: &RunRequest,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<SweepReport, HandlerError> {
        self.sweeper().sweep(request, now, deadline).await
    }

    /// The weekly digests as of `now` (the handler's own clock in production; tests give theirs).
    pub async fn digests(
        &self,
        request: &DigestRequest,
        now: Timestamp,
        deadline: Deadline,
        holder: &str,
    ) -> Result<DigestReport, HandlerError> {
        self.sweeper().digests(request, now, deadline, holder).await
    }

    fn sweeper(&self) -> Sweeper<'_, S, P, I, D, Q> {
        Sweeper {
            config: &self.config,
            prices: &self.prices,
            ports: &self.ports,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use studio_ops_shared::ErrorClass;

    use super::*;
    use crate::adapters::memory::*;

    #[tokio::test]
    async fn requests_outside_the_configured_scope_are_refused_without_side_effects() {
        let h = handler(
            FakeStudio::default(),
            &[("STUDIO_OPS_DOMAIN_IDS", "d-studioops0001")],
        );
        let request = RunRequest {
            domain_id: Some("d-other".into()),
            ..RunRequest::default()
        };
        let err = h.sweep(&request, now(), far_deadline()).await.unwrap_err();
        assert_eq!(
            studio_ops_shared::Failure::class(&err),
            ErrorClass::NonRetryable
        );
        assert!(
            err.to_string().contains("outside the configured domains"),
            "{err}"
        );
        assert!(h.ports().studio.calls.lock().unwrap().is_empty());
        assert!(events(&h).is_empty());
        let err = h
            .handle(json!({"dryrun": true}), Context::default())
            .await
            .unwrap_err();
        assert_eq!(
            studio_ops_shared::Failure::class(&err),
            ErrorClass::NonRetryable
        );
    }

    #[tokio::test]
    async fn handle_answers_the_report() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        let out = h
            .handle(fixture("manual-dry-run.json"), Context::default())
            .await
            .unwrap();
        let Outcome::Swept(report) = out else {
            panic!("{out:?}")
        };
        assert!(report.dry_run);
        assert_eq!(report.domains, ["d-studioops0001"]);
        assert_eq!(report.scanned, 1);
        assert_eq!(report.apps[0].outcome, "would-warn");
    }

    #[tokio::test]
    async fn the_answer_is_the_tagged_outcome_and_reads_back() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        let answer = h
            .answer(fixture("manual-dry-run.json"), Context::default())
            .await
            .unwrap();
        assert_eq!(answer["outcome"], "swept");
        assert_eq!(answer["dryRun"], true);
        let outcome: Outcome = serde_json::from_value(answer).unwrap();
        assert_eq!(outcome.report().map(|r| r.scanned), Some(1));
        // The lease's answer keeps the shape (and words) of `lease::already_running`.
        let running = serde_json::to_value(Outcome::already_running()).unwrap();
        assert_eq!(
            running,
            studio_ops_shared::lease::already_running(FUNCTION_NAME)
        );
    }

    #[tokio::test]
    async fn a_manual_dry_run_finishes_within_the_30_s_of_cargo_lambda_watch() {
        // The documented local loop: `cargo lambda invoke idle-shutdown --data-file
        // events/idle-shutdown/manual-dry-run.json` against `cargo lambda watch`, whose deadline is 30 s away, with
        // the configured 30 s margin. It used to fail "not reached before the Lambda deadline".
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "30")]);
        let mut context = Context::default();
        context.deadline =
            (Timestamp::now() + jiff::SignedDuration::from_secs(30)).as_millisecond() as u64;
        let out = h
            .handle(fixture("manual-dry-run.json"), context)
            .await
            .unwrap();
        let report = out.report().unwrap();
        assert!(report.failed_domains.is_empty(), "{report:#?}");
        assert_eq!((report.scanned, report.warned), (1, 1));
    }
}
