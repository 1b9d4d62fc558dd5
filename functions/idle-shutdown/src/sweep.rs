//! One sweep: the domains in scope; per domain its state (`state.rs`: one query) and every app of it, screened on
//! the listing alone, kept on the state alone while its last reading says it cannot be idle yet, else read with
//! bounded concurrency (DescribeApp; the app's tags and the owner's facts only where a warning or a stop is in view,
//! each profile and domain read once per sweep), decided by the decision table and acted on (`act`). Apps the last
//! sweep did not reach go first. A second pass at half the concurrency takes apps whose reading was throttled.
//! State changes are written in batches as they come; the apps not reached are recorded per domain. Every running
//! billable app listed, examined or not, is metered into the spend ledger (`ledger.rs`). Finally the report, its
//! metrics and the `Idle Sweep Completed` summary. No new work starts past the cutoff before the Lambda
//! deadline: what is left is reported as not reached. Every app ends in the report; none is left half-done.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use futures::stream::BoxStream;
use jiff::Timestamp;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::events::suite::{AppStopped, SuiteEvent};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::names::is_domain_id;
use studio_ops_shared::publisher::PublishEvents;
use studio_ops_shared::{AwsCallError, Deadline, ErrorClass};
use tokio::sync::OnceCell;

use crate::act::After;
use crate::budget::Notices;
use crate::config::Config;
use crate::decision::{
    Action, AppFacts, AppListing, AppOwner, BUILTIN_IDLE_APP_TYPES, Decision, IdleSettings,
    OwnerFacts, Tags, WARNING_TAG, builtin_idle_minutes, decide, screen, short,
};
use crate::error::HandlerError;
use crate::ledger::{Account, Usage, meterable};
use crate::ports::{
    AppDescription, FailureQueues, Ports, SpaceDescription, SpendLedger, Studio, SweepState,
};
use crate::report::{AppOutcome, AppResult, DomainFailure, SweepReport};
use crate::state::{
    AppState, DomainState, SAVE_BATCH, StateChange, examination_order, key_hash, next_unreached,
    quiet, state_key,
};
use crate::weekly::Lag;
use studio_ops_shared::prices::PriceTable;

/// What a sweep works with: the configuration, the price table and the ports.
pub(crate) struct Sweeper<'a, S, P, I, D, Q> {
    pub(crate) config: &'a Config,
    pub(crate) prices: &'a PriceTable,
    pub(crate) ports: &'a Ports<S, P, I, D, Q>,
}

/// A user profile's tags and built-in idle settings, fetched once per sweep.
#[derive(Debug, Clone)]
pub(crate) struct ProfileFacts {
    pub(crate) tags: Tags,
    idle: IdleSettings,
}

/// A domain's apps for the sweep: those the last sweeps did not reach (with the number of sweeps each has waited),
/// then the rest.
struct DomainListing<'a> {
    first: Vec<(u32, AppListing)>,
    rest: BoxStream<'a, AppListing>,
}

impl DomainListing<'_> {
    fn empty() -> Self {
        Self {
            first: Vec::new(),
            rest: futures::stream::empty().boxed(),
        }
    }
}

/// A shared space's description and tags, fetched once per sweep.
#[derive(Debug, Clone)]
struct SpaceFacts {
    described: SpaceDescription,
    tags: Tags,
}

/// A domain's month as the sweep read it, once, when the meter first needed it (`None`: it could not be read).
pub(crate) type MonthOfDomain = Option<Arc<MonthRecords>>;

/// A domain's month in the ledger as the sweep found it: the records by key, the budget notices by account key.
#[derive(Debug, Default)]
pub(crate) struct MonthRecords {
    pub(crate) records: HashMap<String, Usage>,
    pub(crate) notices: BTreeMap<String, Notices>,
}

/// What a domain's budgets are checked on after metering: the month's records as they now stand and the running
/// billable apps with their accounts and prices.
pub(crate) struct DomainSpend {
    pub(crate) domain: String,
    pub(crate) records: HashMap<String, Usage>,
    pub(crate) notices: BTreeMap<String, Notices>,
    pub(crate) running: Vec<(AppListing, Account, Option<f64>)>,
}

/// The state of one sweep.
pub(crate) struct Run {
    /// The time decisions are made at.
    pub(crate) now: Timestamp,
    /// The invocation's deadline: what a warning claim lapses with.
    pub(crate) deadline: Deadline,
    /// The point after which no new work starts: the deadline less the configured margin (at most a quarter of the
    /// time the invocation was given, so that a short deadline still leaves time to work).
    pub(crate) cutoff: Timestamp,
    pub(crate) dry_run: bool,
    /// The per-sweep caches: each profile, each space and each domain's idle settings are read at most once per
    /// sweep (the request budget: owner facts at most once per candidate owner).
    profiles: Mutex<HashMap<String, Arc<OnceCell<ProfileFacts>>>>,
    spaces: Mutex<HashMap<String, Arc<OnceCell<SpaceFacts>>>>,
    domain_idle: Mutex<HashMap<String, Arc<OnceCell<IdleSettings>>>>,
    /// Each domain's state as the sweep found it.
    pub(crate) states: Mutex<HashMap<String, Arc<DomainState>>>,
    /// Each domain's apps as listed (fingerprints), for the record of the apps not reached.
    listed: Mutex<HashMap<String, HashSet<u64>>>,
    /// State changes not yet written, per domain (written 25 at a time).
    pending: Mutex<HashMap<String, Vec<StateChange>>>,
    /// State changes that could not be written.
    state_writes_failed: AtomicU32,
    /// Each domain's spend records of the month as the sweep found them, by key (`None`: they could not be read).
    pub(crate) ledgers: Mutex<HashMap<String, Arc<OnceCell<MonthOfDomain>>>>,
    /// Where the listing sends each running billable app for the meter (`meter.rs`), until the listing is done.
    meter_tx: Mutex<Option<UnboundedSender<AppListing>>>,
}

/// The once-per-sweep cell of `key` in `cells`.
pub(crate) fn cell<T>(
    cells: &Mutex<HashMap<String, Arc<OnceCell<T>>>>,
    key: String,
) -> Arc<OnceCell<T>> {
    let mut cells = lock(cells);
    cells.entry(key).or_default().clone()
}

/// A lock that a panicking holder cannot poison for the rest of the sweep.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Run {
    fn new(now: Timestamp, deadline: Deadline, margin: Duration, dry_run: bool) -> Self {
        Self {
            now,
            deadline,
            cutoff: deadline.stop_at(margin),
            dry_run,
            profiles: Mutex::new(HashMap::new()),
            spaces: Mutex::new(HashMap::new()),
            domain_idle: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
            listed: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            state_writes_failed: AtomicU32::new(0),
            ledgers: Mutex::new(HashMap::new()),
            meter_tx: Mutex::new(None),
        }
    }

    fn remaining(&self) -> Option<Duration> {
        let left = self.cutoff.duration_since(Timestamp::now());
        Duration::try_from(left).ok().filter(|d| !d.is_zero())
    }

    fn state_of(&self, domain: &str) -> Arc<DomainState> {
        lock(&self.states).get(domain).cloned().unwrap_or_default()
    }
}

/// Where one app's processing ended: with a result (and the `App Stopped` event of an app this sweep stopped whose
/// notice could not be published at once, for the end of the sweep to try again), or with its reading failed, which
/// changed nothing and may be tried again.
enum Processed {
    Done(AppResult, Option<Box<AppStopped>>),
    ReadFailed(AppListing, AwsCallError),
}

/// What reading one app produced.
enum Examined {
    /// Kept on the state alone: its last reading says it cannot be idle before this time.
    Quiet(Timestamp),
    Gone,
    NotInService(String),
    Decided(Box<Decided>),
}

/// An app read in full and decided on: what acting on it needs.
pub(crate) struct Decided {
    pub(crate) description: AppDescription,
    pub(crate) facts: AppFacts,
    pub(crate) owner: Option<OwnerFacts>,
    pub(crate) decision: Decision,
    /// What the state remembered of the app before this sweep.
    pub(crate) previous: Option<AppState>,
}

/// Every app's result folded into the report as it arrives (nothing per app is kept but what the report lists),
/// the apps to read again, the stop notices still to publish and the apps not reached per domain.
pub(crate) struct Tally {
    pub(crate) report: SweepReport,
    retry: Vec<AppListing>,
    stopped: Vec<AppStopped>,
    not_reached: HashMap<String, Vec<u64>>,
}

impl Tally {
    fn add(&mut self, result: AppResult, event: Option<Box<AppStopped>>) {
        log_result(&result);
        if result.outcome == AppOutcome::NotReached {
            self.not_reached
                .entry(result.app.domain_id.clone())
                .or_default()
                .push(key_hash(&state_key(&result.app)));
        }
        self.report.add(&result);
        self.stopped.extend(event.map(|e| *e));
    }

    fn take(&mut self, processed: Processed, retry: bool) {
        match processed {
            Processed::Done(result, event) => self.add(result, event),
            Processed::ReadFailed(app, e) if retry && e.class == ErrorClass::Retryable => {
                self.retry.push(app)
            }
            Processed::ReadFailed(app, e) => self.add(read_failed(app, &e), None),
        }
    }
}

impl<S, P, I, D, Q> Sweeper<'_, S, P, I, D, Q>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    /// One sweep, deciding at `now`, starting no new work after the deadline's cutoff.
    pub(crate) async fn sweep(
        &self,
        request: &RunRequest,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<SweepReport, HandlerError> {
        let dry_run = request.dry_run || self.config.dry_run;
        let run = Run::new(now, deadline, self.config.deadline_margin, dry_run);
        let domains = self.domains(request).await?;
        let failed_domains = Mutex::new(Vec::new());
        let mut tally = Tally {
            report: SweepReport::new(run.dry_run, run.now, domains.clone(), Vec::new()),
            retry: Vec::new(),
            stopped: Vec::new(),
            not_reached: HashMap::new(),
        };
        // The meter writes the ledger while the passes examine apps: it ends when the listing is done and the apps
        // it was sent are metered.
        let (listed, to_meter) = futures::channel::mpsc::unbounded();
        *lock(&run.meter_tx) = Some(listed);
        let passes = async {
            self.first_pass(&domains, request, &run, &failed_domains, &mut tally)
                .await;
            lock(&run.meter_tx).take();
            self.second_pass(&run, &mut tally).await;
        };
        let ((), metered) = tokio::join!(passes, self.meter(&run, to_meter));
        tally.report.metered = metered.apps;
        tally.report.ledger_writes = metered.writes;
        tally.report.ledger_writes_failed = metered.writes_failed;
        tally.report.month_to_date_usd = metered.month_to_date_usd;
        tally.report.metered_usd = metered.metered_usd;
        self.keep_budgets(
            &run,
            &mut tally,
            metered.spends,
            request.user_profile_name.as_deref(),
        )
        .await;
        tally.report.failed_domains = failed_domains
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        self.finish_state(&domains, request, &run, &mut tally).await;
        let Tally {
            mut report,
            stopped,
            ..
        } = tally;
        report.finish();
        summarize(&report);
        if !run.dry_run {
            report.metrics().emit();
            self.keep_lag(&report, &run).await;
        }
        self.publish(&report, stopped).await?;
        all_domains_failed(&report)?;
        Ok(report)
    }

    /// A sweep that could not keep up is kept for the team digest (one small write, only then).
    async fn keep_lag(&self, report: &SweepReport, run: &Run) {
        let lag = Lag {
            at: run.now.as_second(),
            not_reached: report.not_reached,
            behind: report.apps_behind,
            failed_domains: report.failed_domains.len() as u32,
        };
        if lag.not_reached + lag.behind + lag.failed_domains == 0 {
            return;
        }
        if let Err(e) = self.ports.state.record_lag(&lag).await {
            tracing::warn!(error = %e, "the sweep's lag is not kept for the team digest");
        }
    }

    /// Apps are screened and processed while the next ListApps page is read.
    async fn first_pass(
        &self,
        domains: &[String],
        request: &RunRequest,
        run: &Run,
        failed_domains: &Mutex<Vec<DomainFailure>>,
        tally: &mut Tally,
    ) {
        let policy = &self.config.policy;
        let mut processed = self
            .listing(domains, request, run, failed_domains)
            .map(|app| async move {
                match screen(&app, policy) {
                    Some(skip) => Processed::Done(
                        AppResult::new(
                            app,
                            AppOutcome::Skipped(skip.key()),
                            "screen",
                            skip.to_string(),
                        ),
                        None,
                    ),
                    None => self.process(app, run).await,
                }
            })
            .buffer_unordered(self.config.concurrency);
        while let Some(p) = processed.next().await {
            tally.take(p, true);
        }
    }

    /// Apps whose reading was throttled or hit a server fault get one more pass once the burst has passed, at half
    /// the concurrency, so that the same unlucky apps are not left out sweep after sweep.
    async fn second_pass(&self, run: &Run, tally: &mut Tally) {
        let retry = std::mem::take(&mut tally.retry);
        let concurrency = (self.config.concurrency / 2).max(1);
        let mut processed = futures::stream::iter(retry)
            .map(|app| self.process(app, run))
            .buffer_unordered(concurrency);
        while let Some(p) = processed.next().await {
            tally.take(p, false);
        }
    }

    /// Records, per domain of a full sweep, the apps it did not reach (for the next sweep to take first), then writes
    /// every state change still pending. A dry run writes nothing.
    async fn finish_state(
        &self,
        domains: &[String],
        request: &RunRequest,
        run: &Run,
        tally: &mut Tally,
    ) {
        let mut worst = 0;
        let mut behind = 0;
        for domain in domains {
            let Some(before) = lock(&run.states).get(domain).cloned() else {
                continue; // its state could not be read: nothing of it was swept
            };
            let complete = !tally
                .report
                .failed_domains
                .iter()
                .any(|f| &f.domain_id == domain);
            let listed = lock(&run.listed).remove(domain).unwrap_or_default();
            let not_reached = tally.not_reached.remove(domain).unwrap_or_default();
            let next = next_unreached(&before.unreached, &not_reached, &listed, complete);
            worst = worst.max(next.values().copied().max().unwrap_or(0));
            behind += next.values().filter(|n| **n >= 2).count() as u32;
            // A sweep limited to one user sees only part of the domain: it leaves the record alone.
            if request.user_profile_name.is_none() && next != before.unreached && !run.dry_run {
                self.remember(run, domain, StateChange::Unreached(next))
                    .await;
            }
        }
        tally.report.apps_not_examined_for_sweeps = worst;
        tally.report.apps_behind = behind;
        let pending: Vec<(String, Vec<StateChange>)> = lock(&run.pending).drain().collect();
        for (domain, changes) in pending {
            self.save(run, &domain, changes).await;
        }
        tally.report.state_writes_failed = run.state_writes_failed.load(Ordering::SeqCst);
    }

    /// Queues a state change; a full batch is written at once.
    pub(crate) async fn remember(&self, run: &Run, domain: &str, change: StateChange) {
        if run.dry_run {
            return;
        }
        let batch = {
            let mut pending = lock(&run.pending);
            let queue = pending.entry(domain.to_string()).or_default();
            queue.push(change);
            if queue.len() < SAVE_BATCH {
                return;
            }
            std::mem::take(queue)
        };
        self.save(run, domain, batch).await;
    }

    async fn save(&self, run: &Run, domain: &str, changes: Vec<StateChange>) {
        if changes.is_empty() {
            return;
        }
        if let Err(e) = self.ports.state.save(domain, &changes).await {
            // Nothing is lost for good: a warning's claim is in the idempotency table (the next sweep restores it
            // without warning twice), a reading is taken again, an unreached app is reached in the usual order.
            tracing::warn!(domain_id = domain, changes = changes.len(), error = %e, "sweep state not written");
            run.state_writes_failed
                .fetch_add(changes.len() as u32, Ordering::SeqCst);
        }
    }

    /// Publishes the stop notices that could not go out at once, then the summary.
    async fn publish(
        &self,
        report: &SweepReport,
        stopped: Vec<AppStopped>,
    ) -> Result<(), HandlerError> {
        let mut events: Vec<SuiteEvent> = stopped.into_iter().map(SuiteEvent::from).collect();
        events.push(report.summary_event().into());
        if let Err(e) = self.ports.publisher.publish(&events).await {
            for event in &events {
                tracing::error!(detail_type = event.detail_type(), detail = %event.detail(), "suite event not published");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The domains this sweep covers: the request's (within the configured scope), the configured ones, or all.
    pub(crate) async fn domains(&self, request: &RunRequest) -> Result<Vec<String>, HandlerError> {
        let configured = &self.config.domain_ids;
        if let Some(user) = &request.user_profile_name
            && user.trim().is_empty()
        {
            return Err(HandlerError::Request("userProfileName is empty".into()));
        }
        match &request.domain_id {
            Some(d) if !is_domain_id(d) => Err(HandlerError::Request(format!(
                "domainId {d:?} is not a domain id"
            ))),
            Some(d) if !configured.is_empty() && !configured.contains(d) => {
                Err(HandlerError::Request(format!(
                    "domain {d} is outside the configured domains ({})",
                    configured.join(", ")
                )))
            }
            Some(d) => Ok(vec![d.clone()]),
            None if !configured.is_empty() => Ok(configured.clone()),
            None => self
                .ports
                .studio
                .list_domains()
                .await
                .map_err(HandlerError::ListDomains),
        }
    }

    /// Every app of every domain in examination order (de-duplicated, limited to the requested user). A domain that
    /// cannot be listed, or not before the deadline, or whose state cannot be read, is recorded in `failed`; apps of
    /// pages already read are still swept.
    fn listing<'a>(
        &'a self,
        domains: &'a [String],
        request: &'a RunRequest,
        run: &'a Run,
        failed: &'a Mutex<Vec<DomainFailure>>,
    ) -> BoxStream<'a, AppListing> {
        let mut seen = HashSet::new();
        futures::stream::once(async move {
            // Every domain at once: their states are read and, where the last sweep left apps, listed in full
            // together. Those apps go first, whatever their domain, the longest-waiting first; then the rest of
            // every domain, interleaved, so that no domain waits behind another for the deadline to come.
            let listings = futures::future::join_all(
                domains
                    .iter()
                    .map(|domain| self.domain_listing(domain, request, run, failed)),
            )
            .await;
            let mut first = Vec::new();
            let mut rest = Vec::new();
            for listing in listings {
                first.extend(listing.first);
                rest.push(listing.rest);
            }
            // Stable: equal waits keep their domain's order.
            first.sort_by_key(|(waited, _)| std::cmp::Reverse(*waited));
            futures::stream::iter(first.into_iter().map(|(_, app)| app))
                .chain(futures::stream::select_all(rest))
        })
        .flatten()
        .filter(move |app| std::future::ready(seen.insert(app.key())))
        .boxed()
    }

    /// One domain's apps: as their pages arrive when the last sweep reached every app; otherwise all of them first,
    /// then the ones it did not reach ahead of the rest.
    async fn domain_listing<'a>(
        &'a self,
        domain: &'a str,
        request: &'a RunRequest,
        run: &'a Run,
        failed: &'a Mutex<Vec<DomainFailure>>,
    ) -> DomainListing<'a> {
        let fail = move |error: String| {
            lock(failed).push(DomainFailure {
                domain_id: domain.to_string(),
                error,
            });
        };
        if run.remaining().is_none() {
            fail("not reached before the Lambda deadline".into());
            return DomainListing::empty();
        }
        let state = match self.ports.state.load(domain).await {
            Ok(state) => Arc::new(state),
            Err(e) => {
                tracing::warn!(domain_id = %domain, error = %e, "cannot read the domain's sweep state; its apps are not swept");
                fail(format!("cannot read the sweep state: {e}"));
                return DomainListing::empty();
            }
        };
        lock(&run.states).insert(domain.to_string(), state.clone());
        let space_owners = match &request.user_profile_name {
            None => None,
            Some(_) => match self.ports.studio.list_space_owners(domain).await {
                Ok(owners) => Some(owners),
                Err(e) => {
                    tracing::warn!(domain_id = %domain, error = %e, "cannot list the domain's spaces; its apps are not swept");
                    fail(e.to_string());
                    return DomainListing::empty();
                }
            },
        };
        let user = request.user_profile_name.as_deref();
        let wanted = move |app: &AppListing| match (user, &app.owner) {
            (None, _) => true,
            (Some(user), AppOwner::UserProfile(u)) => u.eq_ignore_ascii_case(user),
            (Some(user), AppOwner::Space(s)) => space_owners
                .as_ref()
                .and_then(|owners| owners.get(&s.to_lowercase()))
                .is_some_and(|o| o.eq_ignore_ascii_case(user)),
        };
        let apps = self
            .ports
            .studio
            .app_pages(domain)
            .filter_map(move |page| {
                let apps = match page {
                    Ok(apps) => {
                        let apps: Vec<AppListing> = apps.into_iter().filter(|a| wanted(a)).collect();
                        lock(&run.listed)
                            .entry(domain.to_string())
                            .or_default()
                            .extend(apps.iter().map(|a| key_hash(&state_key(a))));
                        if let Some(meter) = lock(&run.meter_tx).as_ref() {
                            for app in apps.iter().filter(|a| meterable(a)) {
                                // The meter outlives the listing: a send cannot fail while the sender is here.
                                let _ = meter.unbounded_send(app.clone());
                            }
                        }
                        Some(futures::stream::iter(apps))
                    }
                    Err(e) => {
                        tracing::warn!(domain_id = %domain, error = %e, "cannot list the domain's apps; its remaining apps are not swept");
                        fail(e.to_string());
                        None
                    }
                };
                std::future::ready(apps)
            })
            .flatten();
        if state.unreached.is_empty() {
            return DomainListing {
                first: Vec::new(),
                rest: apps.boxed(),
            };
        }
        // The last sweep left apps unreached: they go first, so every app is examined at least every other sweep.
        let all: Vec<AppListing> = apps.collect().await;
        let mut first = Vec::new();
        let mut rest = Vec::new();
        for app in examination_order(all, &state.unreached) {
            match state.unreached.get(&key_hash(&state_key(&app))) {
                Some(waited) => first.push((*waited, app)),
                None => rest.push(app),
            }
        }
        DomainListing {
            first,
            rest: futures::stream::iter(rest).boxed(),
        }
    }

    /// Reads, decides and acts on one app. Reading may be cut off by the deadline; acting, once begun, finishes.
    async fn process(&self, app: AppListing, run: &Run) -> Processed {
        let done = |result| Processed::Done(result, None);
        let Some(remaining) = run.remaining() else {
            return done(not_reached(
                app,
                "the Lambda deadline came before the app was examined",
            ));
        };
        let decided = match tokio::time::timeout(remaining, self.examine(&app, run)).await {
            Err(_) => {
                return done(not_reached(
                    app,
                    "the Lambda deadline came while the app was examined",
                ));
            }
            Ok(Err(e)) => return Processed::ReadFailed(app, e),
            Ok(Ok(Examined::Quiet(until))) => {
                let reason = format!(
                    "quiet: its last reading shows it cannot be idle before {} (kept without a call)",
                    short(until)
                );
                return done(AppResult::new(
                    app,
                    AppOutcome::Skipped("quiet".into()),
                    "keep",
                    reason,
                ));
            }
            Ok(Ok(Examined::Gone)) => {
                self.forget(&app, run).await;
                let reason = "the app no longer exists";
                return done(AppResult::new(
                    app,
                    AppOutcome::Skipped("already-gone".into()),
                    "examine",
                    reason,
                ));
            }
            Ok(Ok(Examined::NotInService(status))) => {
                let reason =
                    format!("status {status} at DescribeApp: only InService apps are swept");
                let key = format!("status-{}", status.to_lowercase());
                return done(AppResult::new(
                    app,
                    AppOutcome::Skipped(key),
                    "examine",
                    reason,
                ));
            }
            Ok(Ok(Examined::Decided(d))) => *d,
        };
        if run.remaining().is_none() && decided.decision.action != Action::Keep {
            let reason = format!(
                "the Lambda deadline came before acting ({}: {})",
                decided.decision.action.name(),
                decided.decision.explain()
            );
            return done(not_reached(app, reason));
        }
        let facts = decided.facts.clone();
        let previous = decided.previous.clone();
        let arn = decided.description.arn.clone();
        let (mut result, event, after) = self.act(app, decided, run).await;
        self.record(&arn, &facts, previous.as_ref(), &after, run, &mut result)
            .await;
        Processed::Done(result, event.map(Box::new))
    }

    /// Writes what acting changed: the app's new state (its warning, its reading) or its removal; and takes an old
    /// warning tag off an app whose tags were read (the migration from tags to the state table).
    async fn record(
        &self,
        arn: &str,
        facts: &AppFacts,
        previous: Option<&AppState>,
        after: &After,
        run: &Run,
        result: &mut AppResult,
    ) {
        if run.dry_run {
            return;
        }
        let app = &result.app;
        let key = state_key(app);
        match after {
            After::Gone => {
                if previous.is_some() {
                    let domain = app.domain_id.clone();
                    self.remember(run, &domain, StateChange::Delete { key })
                        .await;
                }
                return;
            }
            After::Warning(warning) => {
                let Some(created) = facts.created else {
                    return; // no creation time, no incarnation to remember it by
                };
                let state = AppState {
                    created: created.as_second(),
                    evidence_at: facts.reading_evidence().map(Timestamp::as_second),
                    warning: warning.clone(),
                };
                if previous != Some(&state) {
                    let domain = app.domain_id.clone();
                    self.remember(run, &domain, StateChange::Put { key, state })
                        .await;
                }
            }
        }
        if facts.tags.contains_key(WARNING_TAG)
            && let Err(e) = self.ports.studio.delete_tags(arn, &[WARNING_TAG]).await
        {
            result.reason = format!(
                "{}; the old warning tag could not be removed (the state table holds the warning now): {e}",
                result.reason
            );
        }
    }

    /// An app found gone: its state goes too.
    async fn forget(&self, app: &AppListing, run: &Run) {
        if run
            .state_of(&app.domain_id)
            .apps
            .contains_key(&state_key(app))
        {
            let key = state_key(app);
            self.remember(run, &app.domain_id, StateChange::Delete { key })
                .await;
        }
    }

    async fn examine(&self, app: &AppListing, run: &Run) -> Result<Examined, AwsCallError> {
        let policy = &self.config.policy;
        let state = run.state_of(&app.domain_id);
        let previous = state.app(app).cloned();
        if let Some(until) = quiet(app, previous.as_ref(), policy, run.now) {
            return Ok(Examined::Quiet(until));
        }
        let studio = &self.ports.studio;
        let Some(description) = studio.describe_app(app).await? else {
            return Ok(Examined::Gone);
        };
        if description.status != "InService" {
            return Ok(Examined::NotInService(description.status));
        }
        // The state of an older app of the same name does not apply to this one.
        let previous = previous.filter(|p| {
            description
                .created
                .is_none_or(|c| c.as_second() == p.created)
        });
        let mut facts = AppFacts {
            instance_type: description
                .instance_type
                .clone()
                .or_else(|| app.instance_type.clone()),
            created: description.created,
            last_health_check: description.last_health_check,
            last_user_activity: description.last_user_activity,
            warning: previous
                .as_ref()
                .and_then(|p| p.warning.as_ref())
                .map(|w| w.at),
            tags: Tags::new(),
        };
        let mut decision = decide(&facts, None, policy, run.now);
        let mut owner = None;
        if decision.action == Action::LoadOwnerFacts {
            facts.tags = studio.list_tags(&description.arn).await?;
            let facts_of_owner = self.owner_facts(app, run).await?;
            decision = decide(&facts, Some(&facts_of_owner), policy, run.now);
            owner = Some(facts_of_owner);
        }
        Ok(Examined::Decided(Box::new(Decided {
            description,
            facts,
            owner,
            decision,
            previous,
        })))
    }

    /// The space (settings, owner, tags), the owning user profile's tags and, for apps SageMaker's built-in idle
    /// shutdown covers, whether it governs the app.
    async fn owner_facts(&self, app: &AppListing, run: &Run) -> Result<OwnerFacts, AwsCallError> {
        match &app.owner {
            AppOwner::UserProfile(user) => Ok(OwnerFacts {
                space_tags: None,
                profile_tags: Some(self.profile(&app.domain_id, user, run).await?.tags),
                owner_user_profile: Some(user.clone()),
                builtin_idle_minutes: None,
            }),
            AppOwner::Space(space) => {
                let SpaceFacts {
                    described,
                    tags: space_tags,
                } = self.space(&app.domain_id, space, run).await?;
                let profile = match &described.owner_user_profile {
                    Some(owner) => Some(self.profile(&app.domain_id, owner, run).await?),
                    None => None,
                };
                let builtin = if BUILTIN_IDLE_APP_TYPES.contains(&app.app_type.as_str()) {
                    let domain = self.domain_idle(&app.domain_id, run).await?;
                    builtin_idle_minutes(
                        described.idle_timeout_minutes.get(&app.app_type).copied(),
                        profile
                            .as_ref()
                            .and_then(|p| p.idle.get(&app.app_type).copied()),
                        domain.get(&app.app_type).copied(),
                    )
                } else {
                    None
                };
                Ok(OwnerFacts {
                    space_tags: Some(space_tags),
                    profile_tags: profile.map(|p| p.tags),
                    owner_user_profile: described.owner_user_profile.clone(),
                    builtin_idle_minutes: builtin,
                })
            }
        }
    }

    async fn space(
        &self,
        domain: &str,
        space: &str,
        run: &Run,
    ) -> Result<SpaceFacts, AwsCallError> {
        let studio = &self.ports.studio;
        cell(&run.spaces, format!("{domain}/{}", space.to_lowercase()))
            .get_or_try_init(|| async {
                let described = studio.describe_space(domain, space).await?;
                let tags = studio.list_tags(&described.arn).await?;
                Ok::<_, AwsCallError>(SpaceFacts { described, tags })
            })
            .await
            .cloned()
    }

    pub(crate) async fn profile(
        &self,
        domain: &str,
        user: &str,
        run: &Run,
    ) -> Result<ProfileFacts, AwsCallError> {
        let studio = &self.ports.studio;
        cell(&run.profiles, format!("{domain}/{}", user.to_lowercase()))
            .get_or_try_init(|| async {
                let described = studio.describe_user_profile(domain, user).await?;
                let tags = studio.list_tags(&described.arn).await?;
                Ok::<_, AwsCallError>(ProfileFacts {
                    tags,
                    idle: described.idle,
                })
            })
            .await
            .cloned()
    }

    async fn domain_idle(&self, domain: &str, run: &Run) -> Result<IdleSettings, AwsCallError> {
        let studio = &self.ports.studio;
        cell(&run.domain_idle, domain.to_string())
            .get_or_try_init(|| studio.domain_idle_settings(domain))
            .await
            .cloned()
    }
}

fn read_failed(app: AppListing, e: &AwsCallError) -> AppResult {
    AppResult::new(app, AppOutcome::Failed, "examine", e.to_string())
}

fn not_reached(app: AppListing, reason: impl Into<String>) -> AppResult {
    AppResult::new(app, AppOutcome::NotReached, "none", reason)
}

fn log_result(r: &AppResult) {
    let outcome = match &r.outcome {
        AppOutcome::Skipped(k) => k.as_str(),
        AppOutcome::Warned => "warned",
        AppOutcome::Stopped => "stopped",
        AppOutcome::Failed => "failed",
        AppOutcome::NotReached => "not-reached",
    };
    let (user, space) = (r.app.owner.user_profile(), r.app.owner.space());
    if matches!(r.outcome, AppOutcome::Failed | AppOutcome::NotReached) {
        tracing::warn!(domain_id = %r.app.domain_id, user_profile = ?user, space = ?space, app_type = %r.app.app_type,
            app_name = %r.app.app_name, instance_type = ?r.instance_type, action = %r.action, outcome, reason = %r.reason,
            "idle decision");
    } else {
        tracing::info!(domain_id = %r.app.domain_id, user_profile = ?user, space = ?space, app_type = %r.app.app_type,
            app_name = %r.app.app_name, instance_type = ?r.instance_type, action = %r.action, outcome, reason = %r.reason,
            warning_cleared = r.warning_cleared, "idle decision");
    }
}

/// Logs the report as a whole (each app was logged as its result came).
fn summarize(report: &SweepReport) {
    tracing::info!(
        dry_run = report.dry_run, scanned = report.scanned, examined = report.examined, warned = report.warned,
        stopped = report.stopped, failed = report.failed, not_reached = report.not_reached, skipped = ?report.skipped,
        savings_usd_per_hour = report.estimated_hourly_savings_usd, failed_domains = report.failed_domains.len(),
        apps_behind = report.apps_behind, state_writes_failed = report.state_writes_failed,
        "idle sweep completed"
    );
}

/// A sweep that could list no domain in full is an error for Lambda to retry (its summary is already published).
fn all_domains_failed(report: &SweepReport) -> Result<(), HandlerError> {
    if report.domains.is_empty() || report.failed_domains.len() < report.domains.len() {
        return Ok(());
    }
    let errors: Vec<String> = report
        .failed_domains
        .iter()
        .map(|d| format!("{}: {}", d.domain_id, d.error))
        .collect();
    Err(HandlerError::NoDomainListed(errors.join("; ")))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use jiff::{SignedDuration, Timestamp};
    use studio_ops_shared::events::schedule::RunRequest;
    use studio_ops_shared::events::suite::{AppIdleWarning, SuiteEvent};
    use studio_ops_shared::{Deadline, ErrorClass};

    use crate::adapters::memory::*;
    use crate::decision::{AppOwner, IdleSetting, IdleSettings, WARNING_TAG};
    use crate::ports::SpaceDescription;

    #[tokio::test]
    async fn a_sweep_warns_stops_keeps_and_counts_every_app() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        s.ana_gpu("warned-gpu", Some(120));
        s.add(
            "busy-cpu",
            user("bob"),
            "KernelGateway",
            "InService",
            "ml.t3.medium",
            600,
            Some(5),
        );
        s.add(
            "default",
            user("bob"),
            "JupyterServer",
            "InService",
            "system",
            600,
            None,
        );
        s.add(
            "starting",
            user("bob"),
            "KernelGateway",
            "Pending",
            "ml.t3.medium",
            1,
            None,
        );
        s.warn("warned-gpu", ago(31));
        let h = handler(s, &[]);
        let report = sweep(&h).await;

        assert!(report.is_balanced());
        assert_eq!(report.scanned, 5);
        assert_eq!(
            (
                report.warned,
                report.stopped,
                report.failed,
                report.not_reached
            ),
            (1, 1, 0, 0)
        );
        assert_eq!(
            report.skipped,
            BTreeMap::from([
                ("active".to_string(), 1),
                ("free-app".to_string(), 1),
                ("status-pending".to_string(), 1),
            ])
        );
        assert_eq!(report.estimated_hourly_savings_usd, 1.41);
        let studio = &h.ports().studio;
        assert_eq!(warning_of(&h, "idle-gpu"), Some(now()));
        assert_eq!(
            warning_of(&h, "warned-gpu"),
            None,
            "a stopped app is forgotten"
        );
        assert_eq!(studio.calls_of("DeleteApp"), 1);
        // Tags are read only for the apps a warning or a stop is in view for; none is written.
        assert_eq!(studio.calls_of("ListTags arn:app/"), 2);
        assert_eq!(studio.calls_of("AddTags"), 0);
        // One query of the state and one of the month's spend, one batch write of what changed.
        assert_eq!(h.ports().state.calls_of("Query"), 2);
        assert_eq!(h.ports().state.calls_of("Query spend"), 1);
        assert_eq!(h.ports().state.calls_of("BatchWriteItem"), 1);
        // Screened apps are never described; every described app exactly once.
        assert_eq!(studio.calls_of("DescribeApp"), 3);
        // The owner's profile is looked at once per sweep, only for apps that would be acted on.
        assert_eq!(studio.calls_of("DescribeUserProfile ana"), 1);
        assert_eq!(studio.calls_of("DescribeUserProfile bob"), 0);

        let published = events(&h);
        let kinds: Vec<&str> = published.iter().map(SuiteEvent::detail_type).collect();
        assert_eq!(
            kinds,
            vec!["App Idle Warning", "App Stopped", "Idle Sweep Completed"]
        );
        let SuiteEvent::AppIdleWarning(w) = &published[0] else {
            panic!()
        };
        assert_eq!(
            (w.user_profile_name.as_deref(), w.app_name.as_str()),
            (Some("ana"), "idle-gpu")
        );
        assert_eq!(w.stops_at, "2026-11-24T21:30:00Z");
        assert_eq!(w.idle_minutes, 90);
        assert!(
            w.reason.contains("idle 90 min >= 60 min limit for ml.g*"),
            "{}",
            w.reason
        );
        let SuiteEvent::AppStopped(st) = &published[1] else {
            panic!()
        };
        assert_eq!(
            (st.app_name.as_str(), st.hourly_cost_usd),
            ("warned-gpu", Some(1.41))
        );
        let SuiteEvent::IdleSweepCompleted(sum) = &published[2] else {
            panic!()
        };
        assert_eq!((sum.scanned, sum.warned, sum.stopped), (5, 1, 1));
    }

    #[tokio::test]
    async fn one_failing_app_never_stops_the_others() {
        let mut s = FakeStudio::default();
        for i in 0..6 {
            s.add(
                &format!("gpu-{i}"),
                user("ana"),
                "KernelGateway",
                "InService",
                "ml.g5.xlarge",
                600,
                Some(90),
            );
        }
        s.failing_describe.insert("gpu-3".into());
        let h = handler(s, &[("STUDIO_OPS_IDLE_CONCURRENCY", "2")]);
        let report = sweep(&h).await;
        assert_eq!((report.scanned, report.warned, report.failed), (6, 5, 1));
        let failed = report.apps.iter().find(|a| a.outcome == "failed").unwrap();
        assert_eq!(failed.app_name, "gpu-3");
        assert!(
            failed.reason.contains("ThrottlingException"),
            "{}",
            failed.reason
        );
        // It had its second chance after the others.
        assert_eq!(h.ports().studio.calls_of("DescribeApp gpu-3"), 2);
    }

    #[tokio::test]
    async fn an_app_throttled_in_the_first_pass_is_done_in_the_second() {
        let mut s = FakeStudio::default();
        for i in 0..4 {
            s.add(
                &format!("gpu-{i}"),
                user("ana"),
                "KernelGateway",
                "InService",
                "ml.g5.xlarge",
                600,
                Some(90),
            );
        }
        s.throttled_describe
            .lock()
            .unwrap()
            .insert("gpu-1".into(), 1);
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        assert_eq!((report.warned, report.failed), (4, 0));
        assert_eq!(h.ports().studio.calls_of("DescribeApp gpu-1"), 2);
    }

    /// A deadline `left_ms` from now of an invocation that was given `given_secs` in all (it has been running for
    /// the difference): the margin it keeps is the configured one, or a quarter of `given_secs` if less.
    fn deadline_in(left_ms: u64, given_secs: u64) -> Deadline {
        let at = Timestamp::now() + SignedDuration::from_millis(left_ms as i64);
        let started = at - SignedDuration::from_secs(given_secs as i64);
        Deadline::from_millis(at.as_millisecond() as u64, started)
    }

    #[tokio::test]
    async fn an_app_in_use_is_kept_on_its_last_reading_without_a_call() {
        let mut s = FakeStudio::default();
        s.ana_gpu("busy", Some(5));
        let h = handler(s, &[]);
        assert_eq!(sweep(&h).await.skipped.get("active"), Some(&1));
        assert_eq!(h.ports().studio.calls_of("DescribeApp"), 1);
        // 20 minutes later it cannot be idle yet (60 min limit after the activity 5 min before the first sweep).
        let later = now() + SignedDuration::from_mins(20);
        let report = h
            .sweep(&RunRequest::default(), later, far_deadline())
            .await
            .unwrap();
        assert_eq!(
            (report.examined, report.skipped.get("quiet")),
            (1, Some(&1))
        );
        assert_eq!(h.ports().studio.calls_of("DescribeApp"), 1, "no new call");
        assert!(
            report.apps.is_empty(),
            "kept quietly: not listed one by one"
        );
        // Once its quiet period is over, it is read again.
        let much_later = now() + SignedDuration::from_mins(56);
        h.sweep(&RunRequest::default(), much_later, far_deadline())
            .await
            .unwrap();
        assert_eq!(h.ports().studio.calls_of("DescribeApp"), 2);
    }

    #[tokio::test]
    async fn an_old_warning_tag_is_honoured_once_and_removed() {
        let mut s = FakeStudio::default();
        s.ana_gpu("tagged-due", Some(120));
        s.ana_gpu("tagged-waiting", Some(120));
        s.tag("arn:app/tagged-due", WARNING_TAG, &ago(31).to_string());
        s.tag("arn:app/tagged-waiting", WARNING_TAG, &ago(10).to_string());
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        // The due one is stopped on its old warning; the other waits out its grace without a second warning.
        assert_eq!((report.stopped, report.warned), (1, 0));
        assert_eq!(report.skipped.get("awaiting-grace"), Some(&1));
        assert!(
            events(&h)
                .iter()
                .all(|e| !matches!(e, SuiteEvent::AppIdleWarning(_)))
        );
        assert_eq!(warning_of(&h, "tagged-waiting"), Some(ago(10)));
        assert!(
            h.ports()
                .studio
                .tags_of("arn:app/tagged-waiting")
                .is_empty()
        );
        assert_eq!(
            h.ports().studio.calls_of("DeleteTags"),
            1,
            "the stopped app's tag went with it"
        );
        // From now on the state holds it: the tag is neither read nor needed.
        let later = now() + SignedDuration::from_mins(25);
        let report = h
            .sweep(&RunRequest::default(), later, far_deadline())
            .await
            .unwrap();
        assert_eq!(report.warned, 0);
        assert_eq!(h.ports().studio.calls_of("DeleteApp tagged-waiting"), 1);
    }

    #[tokio::test]
    async fn a_sweep_cut_short_is_continued_first_by_the_next() {
        let mut s = FakeStudio::default();
        // Idle and warned 5 minutes ago: each sweep reads them (DescribeApp) and lets their grace run.
        for name in ["app-1", "app-2", "app-3", "app-4"] {
            s.ana_gpu(name, Some(90));
            s.warn(name, ago(5));
        }
        s.describe_delay = Some(Duration::from_millis(1_000));
        let h = handler(
            s,
            &[
                ("STUDIO_OPS_IDLE_CONCURRENCY", "1"),
                ("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "5"),
            ],
        );
        // Two readings fit before the cutoff, 2.5 s away.
        let report = h
            .sweep(&RunRequest::default(), now(), deadline_in(7_500, 900))
            .await
            .unwrap();
        assert_eq!((report.examined, report.not_reached), (2, 2), "{report:#?}");
        assert_eq!(report.apps_not_examined_for_sweeps, 1);
        let recorded = h.ports().state.domains.lock().unwrap()["d-test"]
            .unreached
            .len();
        assert_eq!(recorded, 2);
        // The next sweep, as short, reads the two it missed first.
        h.ports().studio.calls.lock().unwrap().clear();
        let report = h
            .sweep(&RunRequest::default(), now(), deadline_in(7_500, 900))
            .await
            .unwrap();
        assert_eq!((report.examined, report.not_reached), (2, 2), "{report:#?}");
        let described: Vec<String> = h
            .ports()
            .studio
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("DescribeApp"))
            .cloned()
            .collect();
        // (app-1's reading starts too, and is cut off by the cutoff.)
        assert_eq!(described[..2], ["DescribeApp app-3", "DescribeApp app-4"]);
        // Two of four a sweep is half: no app waits two sweeps.
        assert_eq!(report.apps_not_examined_for_sweeps, 1);
        assert_eq!(report.apps_behind, 0);
    }

    #[tokio::test]
    async fn no_domain_waits_behind_another_for_the_deadline() {
        let mut s = FakeStudio::default();
        for (name, domain) in [
            ("a-1", "d-one"),
            ("a-2", "d-one"),
            ("b-1", "d-two"),
            ("b-2", "d-two"),
        ] {
            s.ana_gpu(name, Some(90));
            s.warn(name, ago(5));
            s.move_to(name, domain);
        }
        s.describe_delay = Some(Duration::from_millis(1_000));
        let h = handler(
            s,
            &[
                ("STUDIO_OPS_DOMAIN_IDS", "d-one,d-two"),
                ("STUDIO_OPS_IDLE_CONCURRENCY", "1"),
                ("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "5"),
            ],
        );
        let described = || -> Vec<String> {
            let calls = std::mem::take(&mut *h.ports().studio.calls.lock().unwrap());
            calls
                .into_iter()
                .filter_map(|c| c.strip_prefix("DescribeApp ").map(str::to_string))
                .collect()
        };
        // Two readings fit before the cutoff: half of the apps of the two domains together.
        let report = h
            .sweep(&RunRequest::default(), now(), deadline_in(7_500, 900))
            .await
            .unwrap();
        assert_eq!((report.examined, report.not_reached), (2, 2), "{report:#?}");
        let first: BTreeSet<String> = described()[..2].iter().cloned().collect();
        // The next sweep takes the two left over first, whichever domain they are in (with the domains in turn,
        // the first domain's apps would be read again and the second's never).
        let report = h
            .sweep(&RunRequest::default(), now(), deadline_in(7_500, 900))
            .await
            .unwrap();
        let second: BTreeSet<String> = described()[..2].iter().cloned().collect();
        assert!(first.is_disjoint(&second), "{first:?} then {second:?}");
        assert_eq!(first.len() + second.len(), 4);
        assert_eq!(report.apps_behind, 0, "{report:#?}");
    }

    #[tokio::test]
    async fn a_domain_whose_state_cannot_be_read_is_not_swept() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        h.ports()
            .state
            .fail_load
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let err = h
            .sweep(&RunRequest::default(), now(), far_deadline())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot read the sweep state"),
            "{err}"
        );
        assert_eq!(h.ports().studio.calls_of("DescribeApp"), 0);
        assert!(
            events(&h)
                .iter()
                .all(|e| !matches!(e, SuiteEvent::AppIdleWarning(_)))
        );
    }

    #[tokio::test]
    async fn state_that_cannot_be_written_is_counted_and_the_warning_is_not_sent_twice() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        h.ports()
            .state
            .fail_save
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let report = sweep(&h).await;
        assert_eq!((report.warned, report.state_writes_failed), (1, 1));
        h.ports()
            .state
            .fail_save
            .store(false, std::sync::atomic::Ordering::SeqCst);
        events(&h);
        let report = sweep(&h).await;
        assert_eq!(
            (report.warned, report.skipped.get("already-warned")),
            (0, Some(&1))
        );
        assert!(
            events(&h)
                .iter()
                .all(|e| !matches!(e, SuiteEvent::AppIdleWarning(_)))
        );
        assert_eq!(warning_of(&h, "idle-gpu"), Some(now()));
    }

    #[tokio::test]
    async fn a_short_deadline_still_leaves_time_for_a_small_sweep() {
        // `cargo lambda watch` gives 30 s: the configured 30 s margin would leave nothing, a quarter (7.5 s) is kept.
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        s.describe_delay = Some(Duration::from_millis(50));
        let h = handler(s, &[("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "30")]);
        let request = RunRequest {
            dry_run: true,
            ..RunRequest::default()
        };
        let report = h
            .sweep(&request, now(), Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap();
        assert!(report.failed_domains.is_empty(), "{report:#?}");
        assert_eq!(
            (report.scanned, report.warned, report.not_reached),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn work_past_the_deadline_is_reported_not_started() {
        let mut s = FakeStudio::default();
        s.ana_gpu("gpu", Some(90));
        s.add(
            "default",
            user("ana"),
            "JupyterServer",
            "InService",
            "system",
            600,
            None,
        );
        let h = handler(s, &[("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "30")]);
        // An invocation given 15 minutes with 20 s left: inside the 30 s margin, the listing is skipped and the
        // domain reported.
        let err = h
            .sweep(&RunRequest::default(), now(), deadline_in(20_000, 900))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("not reached before the Lambda deadline"),
            "{err}"
        );
        assert_eq!(h.ports().studio.calls_of("DescribeApp"), 0);
        let SuiteEvent::IdleSweepCompleted(sum) = &events(&h)[0] else {
            panic!()
        };
        assert_eq!(sum.failed_domains, vec!["d-test"]);
        // The team digest hears of it.
        let lags = h.ports().state.lags.lock().unwrap().clone();
        assert_eq!(
            lags.values().map(|l| l.failed_domains).collect::<Vec<_>>(),
            [1]
        );
    }

    #[tokio::test]
    async fn an_app_whose_reading_outlasts_the_deadline_is_not_reached() {
        let mut s = FakeStudio::default();
        s.ana_gpu("slow-gpu", Some(90));
        s.describe_delay = Some(Duration::from_secs(5));
        let h = handler(s, &[("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "5")]);
        let report = h
            .sweep(&RunRequest::default(), now(), deadline_in(6_500, 900))
            .await
            .unwrap();
        assert_eq!(
            (report.scanned, report.not_reached, report.warned),
            (1, 1, 0)
        );
        assert!(
            report.apps[0].reason.contains("deadline"),
            "{}",
            report.apps[0].reason
        );
        assert!(h.ports().studio.tags_of("arn:app/slow-gpu").is_empty());
    }

    #[tokio::test]
    async fn dry_run_changes_nothing_and_publishes_only_the_summary() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        s.ana_gpu("warned-gpu", Some(120));
        s.add(
            "back",
            user("ana"),
            "KernelGateway",
            "InService",
            "ml.t3.medium",
            600,
            Some(2),
        );
        s.warn("warned-gpu", ago(31));
        s.warn("back", ago(31));
        let h = handler(s, &[]);
        let request = RunRequest {
            dry_run: true,
            ..RunRequest::default()
        };
        let report = h.sweep(&request, now(), far_deadline()).await.unwrap();
        assert!(report.dry_run);
        assert_eq!(
            (report.warned, report.stopped, report.warnings_cleared),
            (1, 1, 1)
        );
        assert_eq!(report.estimated_hourly_savings_usd, 1.41);
        let outcomes: Vec<&str> = report.apps.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            vec!["would-clear-warning (active)", "would-warn", "would-stop"]
        );
        for op in ["AddTags", "DeleteTags", "DeleteApp"] {
            assert_eq!(h.ports().studio.calls_of(op), 0, "{op}");
        }
        assert_eq!(h.ports().state.calls_of("BatchWriteItem"), 0);
        let published = events(&h);
        assert_eq!(published.len(), 1);
        assert!(matches!(&published[0], SuiteEvent::IdleSweepCompleted(s) if s.dry_run));
    }

    #[tokio::test]
    async fn report_only_mode_from_configuration() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[("STUDIO_OPS_IDLE_DRY_RUN", "true")]);
        let report = sweep(&h).await;
        assert!(report.dry_run);
        assert_eq!(h.ports().studio.calls_of("AddTags"), 0);
    }

    #[tokio::test]
    async fn a_listing_that_fails_midway_sweeps_the_pages_read_and_reports_the_domain() {
        let mut s = stoppable(&["gpu-1", "gpu-2", "gpu-3", "gpu-4"]);
        s.fail_second_page = true;
        let h = handler(s, &[("STUDIO_OPS_DOMAIN_IDS", "d-test")]);
        let err = h
            .sweep(&RunRequest::default(), now(), far_deadline())
            .await
            .unwrap_err();
        // The only domain was not listed in full: Lambda retries, and the retry finds the first page's apps gone.
        assert_eq!(
            studio_ops_shared::Failure::class(&err),
            ErrorClass::Retryable
        );
        assert!(err.to_string().contains("Rate exceeded"), "{err}");
        assert_eq!(h.ports().studio.calls_of("DeleteApp"), 2);
        let published = events(&h);
        let summary = published
            .iter()
            .find_map(|e| match e {
                SuiteEvent::IdleSweepCompleted(s) => Some(s.clone()),
                _ => None,
            })
            .expect("the summary of what was swept is published");
        assert_eq!((summary.scanned, summary.stopped), (2, 2), "{summary:#?}");
        assert_eq!(summary.failed_domains, ["d-test"]);
        assert_eq!(
            published
                .iter()
                .filter(|e| matches!(e, SuiteEvent::AppStopped(_)))
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn space_apps_use_the_space_owner_and_builtin_idle_settings() {
        let mut s = FakeStudio::default();
        let space = |name: &str| AppOwner::Space(name.into());
        s.add(
            "lab",
            space("ana-lab"),
            "JupyterLab",
            "InService",
            "ml.g5.xlarge",
            600,
            Some(90),
        );
        s.add(
            "editor",
            space("auto-off"),
            "CodeEditor",
            "InService",
            "ml.g5.xlarge",
            600,
            Some(90),
        );
        s.add(
            "rstudio",
            space("r-space"),
            "RSessionGateway",
            "InService",
            "ml.g5.xlarge",
            600,
            Some(90),
        );
        s.spaces.insert(
            "ana-lab".into(),
            SpaceDescription {
                arn: "arn:space/ana-lab".into(),
                owner_user_profile: Some("ana".into()),
                idle_timeout_minutes: BTreeMap::new(),
            },
        );
        s.spaces.insert(
            "auto-off".into(),
            SpaceDescription {
                arn: "arn:space/auto-off".into(),
                owner_user_profile: None,
                idle_timeout_minutes: BTreeMap::from([("CodeEditor".to_string(), 60)]),
            },
        );
        // The domain enables built-in idle shutdown for Code Editor only.
        s.domain_idle = IdleSettings::from([
            (
                "CodeEditor".to_string(),
                IdleSetting {
                    enabled: Some(true),
                    timeout_minutes: Some(120),
                },
            ),
            (
                "JupyterLab".to_string(),
                IdleSetting {
                    enabled: Some(false),
                    timeout_minutes: None,
                },
            ),
        ]);
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        assert_eq!(report.warned, 2);
        assert_eq!(report.skipped.get("builtin-idle-shutdown"), Some(&1));
        let builtin = report.apps.iter().all(|a| a.app_name != "editor");
        assert!(builtin, "the built-in app is counted, not listed");
        let warnings: Vec<AppIdleWarning> = events(&h)
            .into_iter()
            .filter_map(|e| match e {
                SuiteEvent::AppIdleWarning(w) => Some(w),
                _ => None,
            })
            .collect();
        let lab = warnings.iter().find(|w| w.app_name == "lab").unwrap();
        assert_eq!(
            (lab.space_name.as_deref(), lab.user_profile_name.as_deref()),
            (Some("ana-lab"), Some("ana"))
        );
        // The domain's settings are read once per sweep, and only for app types they cover.
        assert_eq!(h.ports().studio.calls_of("DescribeDomain"), 1);
    }

    #[tokio::test]
    async fn owner_facts_are_read_once_per_owner_per_sweep() {
        let mut s = FakeStudio::default();
        let space = |name: &str| AppOwner::Space(name.into());
        for name in ["one", "two"] {
            s.add(
                name,
                space("team"),
                "KernelGateway",
                "InService",
                "ml.g5.xlarge",
                600,
                Some(90),
            );
        }
        s.add(
            "own",
            user("ana"),
            "KernelGateway",
            "InService",
            "ml.g5.xlarge",
            600,
            Some(90),
        );
        s.spaces.insert(
            "team".into(),
            SpaceDescription {
                arn: "arn:space/team".into(),
                owner_user_profile: Some("ana".into()),
                idle_timeout_minutes: BTreeMap::new(),
            },
        );
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        assert_eq!(report.warned, 3, "{report:#?}");
        let studio = &h.ports().studio;
        // The space and its owner's profile once each, though three candidates lead to them.
        assert_eq!(studio.calls_of("DescribeSpace"), 1);
        assert_eq!(studio.calls_of("DescribeUserProfile"), 1);
        // Each candidate's own tags, then the space's and the profile's.
        assert_eq!(studio.calls_of("ListTags"), 3 + 2);
    }

    #[tokio::test]
    async fn a_user_limited_sweep_covers_the_users_apps_and_private_spaces() {
        let mut s = FakeStudio::default();
        s.add(
            "ana-kg",
            user("Ana"),
            "KernelGateway",
            "InService",
            "ml.t3.medium",
            10,
            None,
        );
        s.add(
            "bob-kg",
            user("bob"),
            "KernelGateway",
            "InService",
            "ml.t3.medium",
            10,
            None,
        );
        s.add(
            "lab",
            AppOwner::Space("ana-lab".into()),
            "JupyterLab",
            "InService",
            "ml.t3.medium",
            10,
            None,
        );
        s.add(
            "shared",
            AppOwner::Space("team".into()),
            "JupyterLab",
            "InService",
            "ml.t3.medium",
            10,
            None,
        );
        s.space_owners.insert("ana-lab".into(), "ana".into());
        let h = handler(s, &[]);
        let request = RunRequest {
            user_profile_name: Some("ana".into()),
            dry_run: true,
            ..RunRequest::default()
        };
        let report = h.sweep(&request, now(), far_deadline()).await.unwrap();
        assert_eq!(report.scanned, 2);
        assert_eq!(h.ports().studio.calls_of("DescribeApp"), 2);
    }
}
