//! idle-shutdown handler: a scheduled or manual invocation → one sweep. Lists the apps of each domain, screens them,
//! describes the rest with bounded concurrency, runs the decision table, then warns, stops or keeps each app (a
//! warning or a stop is announced as it happens) and publishes one `Idle Sweep Completed` summary. Every app ends in
//! the report; none is left half-done.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::ErrorClass;
use studio_ops_shared::events::event_id;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::events::suite::{AppIdleWarning, AppStopped, SuiteEvent};
use studio_ops_shared::idempotency::{Claim, IdempotencyStore};
use studio_ops_shared::lease::{self, Exclusive};
use studio_ops_shared::publisher::PublishEvents;
use tokio::sync::OnceCell;

use crate::config::{Config, is_domain_id};
use crate::decision::{
    Action, AppFacts, AppListing, AppOwner, BUILTIN_IDLE_APP_TYPES, Decision, IdleSettings,
    OwnerFacts, Tags, WARNING_TAG, builtin_idle_minutes, decide, screen, short,
};
use crate::error::HandlerError;
use crate::prices::PriceTable;
use crate::report::{AppResult, DomainFailure, Outcome, SweepReport};
use crate::studio::{AppDescription, DeleteOutcome, Studio, StudioError};

/// When the runtime gives no deadline (local invocations), assume Lambda's maximum.
const FALLBACK_BUDGET: SignedDuration = SignedDuration::from_mins(15);

/// The adapters the handler talks through; built once in `main` (or by tests, pointed at the local world).
pub struct Ports<S, P, I> {
    pub studio: S,
    pub publisher: P,
    pub idempotency: I,
}

pub struct Handler<S, P, I> {
    config: Config,
    prices: PriceTable,
    ports: Ports<S, P, I>,
}

/// A user profile's tags and built-in idle settings, fetched once per sweep.
#[derive(Debug, Clone)]
struct ProfileFacts {
    tags: Tags,
    idle: IdleSettings,
}

/// The state of one sweep.
struct Run {
    /// The time decisions are made at.
    now: Timestamp,
    /// The invocation's deadline (wall clock) and the point after which no new work starts.
    deadline: Timestamp,
    cutoff: Timestamp,
    dry_run: bool,
    profiles: Mutex<HashMap<String, Arc<OnceCell<ProfileFacts>>>>,
    domain_idle: Mutex<HashMap<String, Arc<OnceCell<IdleSettings>>>>,
}

/// The once-per-sweep cell of `key` in `cells`.
fn cell<T>(cells: &Mutex<HashMap<String, Arc<OnceCell<T>>>>, key: String) -> Arc<OnceCell<T>> {
    let mut cells = cells
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cells.entry(key).or_default().clone()
}

impl Run {
    fn remaining(&self) -> Option<Duration> {
        let left = self.cutoff.duration_since(Timestamp::now());
        Duration::try_from(left).ok().filter(|d| !d.is_zero())
    }
}

/// Where one app's processing ended: with a result (and the `App Stopped` event of an app this sweep stopped whose
/// notice could not be published at once, for the end of the sweep to try again), or with its reading failed, which
/// changed nothing and may be tried again.
enum Processed {
    Done(AppResult, Option<Box<AppStopped>>),
    ReadFailed(AppListing, StudioError),
}

/// What reading one app produced.
enum Examined {
    Gone,
    NotInService(String),
    Decided(Box<Decided>),
}

struct Decided {
    description: AppDescription,
    facts: AppFacts,
    owner: Option<OwnerFacts>,
    decision: Decision,
}

impl<S, P, I> Handler<S, P, I>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
{
    pub fn new(config: Config, prices: PriceTable, ports: Ports<S, P, I>) -> Self {
        Self {
            config,
            prices,
            ports,
        }
    }

    pub async fn handle(&self, event: Value, context: Context) -> Result<Value, HandlerError> {
        let request = RunRequest::from_invocation(&event)?;
        let now = Timestamp::now();
        let deadline = deadline_of(&context, now);
        tracing::info!(event_id = event_id(&event), dry_run = request.dry_run, domain = ?request.domain_id, user = ?request.user_profile_name, "idle sweep requested");
        // A dry run changes nothing and may overlap anything; a real sweep runs alone (two would warn and stop
        // the same apps): it holds the function's lease, which lapses at this invocation's deadline.
        let report = if request.dry_run {
            self.sweep(&request, now, deadline).await?
        } else {
            let holder = lease::holder(&context.request_id);
            match lease::exclusive(&self.ports.idempotency, &holder, deadline, || {
                self.sweep(&request, now, deadline)
            })
            .await?
            {
                Exclusive::Ran(report) => report,
                Exclusive::AlreadyRunning => {
                    tracing::info!("another sweep holds the lease; this one does nothing");
                    // Not an error: nothing to retry, the next scheduled sweep comes soon.
                    return Ok(lease::already_running(crate::report::FUNCTION_NAME));
                }
            }
        };
        Ok(serde_json::to_value(&report).unwrap_or_else(|e| json!({"error": e.to_string()})))
    }

    /// One sweep, deciding at `now`, starting no new work after `deadline` minus the configured margin.
    pub async fn sweep(
        &self,
        request: &RunRequest,
        now: Timestamp,
        deadline: Timestamp,
    ) -> Result<SweepReport, HandlerError> {
        let run = Run {
            now,
            deadline,
            cutoff: deadline
                - SignedDuration::try_from(self.config.deadline_margin)
                    .unwrap_or(SignedDuration::ZERO),
            dry_run: request.dry_run || self.config.dry_run,
            profiles: Mutex::new(HashMap::new()),
            domain_idle: Mutex::new(HashMap::new()),
        };
        let domains = self.domains(request).await?;
        let failed_domains = Mutex::new(Vec::new());
        let policy = &self.config.policy;
        let run = &run;
        // Apps are screened and processed while the next ListApps page is read.
        let first_pass: Vec<Processed> = self
            .listing(&domains, request, run, &failed_domains)
            .map(|app| async move {
                match screen(&app, policy) {
                    Some(skip) => Processed::Done(
                        AppResult::new(
                            app,
                            Outcome::Skipped(skip.key()),
                            "screen",
                            skip.to_string(),
                        ),
                        None,
                    ),
                    None => self.process(app, run).await,
                }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let failed_domains = failed_domains
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());

        let mut results = Vec::with_capacity(first_pass.len());
        let mut stopped_events = Vec::new();
        let mut retry = Vec::new();
        for processed in first_pass {
            match processed {
                Processed::Done(result, event) => {
                    results.push(result);
                    stopped_events.extend(event);
                }
                Processed::ReadFailed(app, e) if e.class == ErrorClass::Retryable => {
                    retry.push(app)
                }
                Processed::ReadFailed(app, e) => results.push(read_failed(app, &e)),
            }
        }
        // Apps whose reading was throttled or hit a server fault get one more pass once the burst has passed,
        // at half the concurrency, so that the same unlucky apps are not left out sweep after sweep.
        let second_pass = (self.config.concurrency / 2).max(1);
        for processed in self.process_all(retry, second_pass, run).await {
            match processed {
                Processed::Done(result, event) => {
                    results.push(result);
                    stopped_events.extend(event);
                }
                Processed::ReadFailed(app, e) => results.push(read_failed(app, &e)),
            }
        }
        results.sort_by_key(|r| r.app.key());

        let mut report = SweepReport::new(run.dry_run, now, domains.clone(), failed_domains);
        for r in &results {
            log_result(r);
            report.add(r);
        }
        debug_assert!(report.is_balanced());

        let mut events: Vec<SuiteEvent> = stopped_events
            .into_iter()
            .map(|e| SuiteEvent::from(*e))
            .collect();
        events.push(report.summary_event().into());
        if !run.dry_run {
            report.metrics().emit();
        }
        tracing::info!(
            dry_run = report.dry_run, scanned = report.scanned, warned = report.warned, stopped = report.stopped,
            failed = report.failed, not_reached = report.not_reached, skipped = ?report.skipped,
            savings_usd_per_hour = report.estimated_hourly_savings_usd, failed_domains = report.failed_domains.len(),
            "idle sweep completed"
        );
        if let Err(e) = self.ports.publisher.publish(&events).await {
            for event in &events {
                tracing::error!(detail_type = event.detail_type(), detail = %event.detail(), "suite event not published");
            }
            return Err(e.into());
        }
        if !domains.is_empty() && report.failed_domains.len() == domains.len() {
            let errors: Vec<String> = report
                .failed_domains
                .iter()
                .map(|d| format!("{}: {}", d.domain_id, d.error))
                .collect();
            return Err(HandlerError::NoDomainListed(errors.join("; ")));
        }
        Ok(report)
    }

    /// The domains this sweep covers: the request's (within the configured scope), the configured ones, or all.
    async fn domains(&self, request: &RunRequest) -> Result<Vec<String>, HandlerError> {
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

    /// Every app of every domain as its ListApps page arrives (de-duplicated, limited to the requested user). A domain
    /// that cannot be listed, or not before the deadline, is recorded in `failed`; apps of pages already read are
    /// still swept.
    fn listing<'a>(
        &'a self,
        domains: &'a [String],
        request: &'a RunRequest,
        run: &'a Run,
        failed: &'a Mutex<Vec<DomainFailure>>,
    ) -> BoxStream<'a, AppListing> {
        let mut seen = HashSet::new();
        futures::stream::iter(domains)
            .then(move |domain| self.domain_listing(domain, request, run, failed))
            .flatten()
            .filter(move |app| std::future::ready(seen.insert(app.key())))
            .boxed()
    }

    async fn domain_listing<'a>(
        &'a self,
        domain: &'a str,
        request: &'a RunRequest,
        run: &'a Run,
        failed: &'a Mutex<Vec<DomainFailure>>,
    ) -> BoxStream<'a, AppListing> {
        let fail = move |error: String| {
            if let Ok(mut f) = failed.lock() {
                f.push(DomainFailure {
                    domain_id: domain.to_string(),
                    error,
                });
            }
        };
        if run.remaining().is_none() {
            fail("not reached before the Lambda deadline".into());
            return futures::stream::empty().boxed();
        }
        let space_owners = match &request.user_profile_name {
            None => None,
            Some(_) => match self.ports.studio.list_space_owners(domain).await {
                Ok(owners) => Some(owners),
                Err(e) => {
                    tracing::warn!(domain_id = %domain, error = %e, "cannot list the domain's spaces; its apps are not swept");
                    fail(e.to_string());
                    return futures::stream::empty().boxed();
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
        self.ports
            .studio
            .app_pages(domain)
            .filter_map(move |page| {
                let apps = match page {
                    Ok(apps) => Some(futures::stream::iter(
                        apps.into_iter().filter(|a| wanted(a)).collect::<Vec<_>>(),
                    )),
                    Err(e) => {
                        tracing::warn!(domain_id = %domain, error = %e, "cannot list the domain's apps; its remaining apps are not swept");
                        fail(e.to_string());
                        None
                    }
                };
                std::future::ready(apps)
            })
            .flatten()
            .boxed()
    }

    async fn process_all(
        &self,
        apps: Vec<AppListing>,
        concurrency: usize,
        run: &Run,
    ) -> Vec<Processed> {
        futures::stream::iter(apps)
            .map(|app| self.process(app, run))
            .buffer_unordered(concurrency)
            .collect()
            .await
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
            Ok(Ok(Examined::Gone)) => {
                let reason = "the app no longer exists";
                return done(AppResult::new(
                    app,
                    Outcome::Skipped("already-gone".into()),
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
                    Outcome::Skipped(key),
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
        let (result, event) = self.act(app, decided, run).await;
        Processed::Done(result, event.map(Box::new))
    }

    async fn examine(&self, app: &AppListing, run: &Run) -> Result<Examined, StudioError> {
        let studio = &self.ports.studio;
        let Some(description) = studio.describe_app(app).await? else {
            return Ok(Examined::Gone);
        };
        if description.status != "InService" {
            return Ok(Examined::NotInService(description.status));
        }
        let tags = studio.list_tags(&description.arn).await?;
        let facts = AppFacts {
            instance_type: description
                .instance_type
                .clone()
                .or_else(|| app.instance_type.clone()),
            created: description.created,
            last_health_check: description.last_health_check,
            last_user_activity: description.last_user_activity,
            tags,
        };
        let policy = &self.config.policy;
        let mut decision = decide(&facts, None, policy, run.now);
        let mut owner = None;
        if decision.action == Action::LoadOwnerFacts {
            let facts_of_owner = self.owner_facts(app, run).await?;
            decision = decide(&facts, Some(&facts_of_owner), policy, run.now);
            owner = Some(facts_of_owner);
        }
        Ok(Examined::Decided(Box::new(Decided {
            description,
            facts,
            owner,
            decision,
        })))
    }

    /// The space (settings, owner, tags), the owning user profile's tags and, for apps SageMaker's built-in idle
    /// shutdown covers, whether it governs the app.
    async fn owner_facts(&self, app: &AppListing, run: &Run) -> Result<OwnerFacts, StudioError> {
        match &app.owner {
            AppOwner::UserProfile(user) => Ok(OwnerFacts {
                space_tags: None,
                profile_tags: Some(self.profile(&app.domain_id, user, run).await?.tags),
                owner_user_profile: Some(user.clone()),
                builtin_idle_minutes: None,
            }),
            AppOwner::Space(space) => {
                let studio = &self.ports.studio;
                let described = studio.describe_space(&app.domain_id, space).await?;
                let space_tags = studio.list_tags(&described.arn).await?;
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

    async fn profile(
        &self,
        domain: &str,
        user: &str,
        run: &Run,
    ) -> Result<ProfileFacts, StudioError> {
        let studio = &self.ports.studio;
        cell(&run.profiles, format!("{domain}/{}", user.to_lowercase()))
            .get_or_try_init(|| async {
                let described = studio.describe_user_profile(domain, user).await?;
                let tags = studio.list_tags(&described.arn).await?;
                Ok::<_, StudioError>(ProfileFacts {
                    tags,
                    idle: described.idle,
                })
            })
            .await
            .cloned()
    }

    async fn domain_idle(&self, domain: &str, run: &Run) -> Result<IdleSettings, StudioError> {
        let studio = &self.ports.studio;
        cell(&run.domain_idle, domain.to_string())
            .get_or_try_init(|| studio.domain_idle_settings(domain))
            .await
            .cloned()
    }

    async fn act(
        &self,
        app: AppListing,
        decided: Decided,
        run: &Run,
    ) -> (AppResult, Option<AppStopped>) {
        let Decided {
            description,
            facts,
            owner,
            decision,
        } = decided;
        let explain = decision.explain();
        let mut result = AppResult::new(
            app,
            Outcome::Failed,
            decision.action.name(),
            explain.clone(),
        );
        result.instance_type = facts.instance_type.clone();
        result.hourly_cost_usd = facts
            .instance_type
            .as_deref()
            .and_then(|t| self.prices.hourly(t));
        result.idle_minutes = Some(decision.idle_minutes());
        let keep_key = decision.reason.key().to_string();
        let studio = &self.ports.studio;
        let arn = description.arn.as_str();

        match &decision.action {
            Action::Keep => result.outcome = Outcome::Skipped(keep_key),
            Action::ClearWarning => {
                if run.dry_run {
                    result.outcome = Outcome::Skipped(keep_key);
                    result.warning_cleared = true;
                } else {
                    match studio.delete_tags(arn, &[WARNING_TAG]).await {
                        Ok(()) => {
                            result.outcome = Outcome::Skipped(keep_key);
                            result.warning_cleared = true;
                        }
                        Err(e) => {
                            result.reason =
                                format!("{explain}; could not remove the warning tag: {e}")
                        }
                    }
                }
            }
            Action::AwaitGrace { stops_at, .. } => {
                result.outcome = Outcome::Skipped("awaiting-grace".into());
                result.reason = format!("{explain}; warned, stops at {}", short(*stops_at));
            }
            Action::Warn { stops_at, episode } => {
                let event = AppIdleWarning {
                    domain_id: result.app.domain_id.clone(),
                    user_profile_name: owner.as_ref().and_then(|o| o.owner_user_profile.clone()),
                    space_name: result.app.owner.space().map(str::to_string),
                    app_type: result.app.app_type.clone(),
                    app_name: result.app.app_name.clone(),
                    instance_type: facts
                        .instance_type
                        .clone()
                        .unwrap_or_else(|| "unknown".into()),
                    idle_minutes: decision.idle_minutes(),
                    stops_at: short(*stops_at),
                    reason: explain.clone(),
                    hourly_cost_usd: result.hourly_cost_usd,
                };
                if run.dry_run {
                    result.outcome = Outcome::Warned;
                } else {
                    let created = facts.created.map_or(0, |c| c.as_second());
                    let key = format!("warning/{arn}/{created}/{episode}");
                    let (outcome, note) = self.warn(arn, &key, event, run).await;
                    result.outcome = outcome;
                    if let Some(note) = note {
                        result.reason = format!("{explain}; {note}");
                    }
                }
            }
            Action::Stop { warned_at } => {
                result.reason = format!("{explain}; warned at {}", short(*warned_at));
                if run.dry_run {
                    result.outcome = Outcome::Stopped;
                } else {
                    match studio.delete_app(&result.app).await {
                        Ok(DeleteOutcome::Deleted) => {
                            result.outcome = Outcome::Stopped;
                            let event = AppStopped {
                                domain_id: result.app.domain_id.clone(),
                                user_profile_name: owner
                                    .as_ref()
                                    .and_then(|o| o.owner_user_profile.clone()),
                                space_name: result.app.owner.space().map(str::to_string),
                                app_type: result.app.app_type.clone(),
                                app_name: result.app.app_name.clone(),
                                instance_type: facts
                                    .instance_type
                                    .clone()
                                    .unwrap_or_else(|| "unknown".into()),
                                idle_minutes: decision.idle_minutes(),
                                reason: result.reason.clone(),
                                hourly_cost_usd: result.hourly_cost_usd,
                            };
                            // Announced now, so that the owner hears of it even if this invocation dies later;
                            // a notice that cannot go out now goes with the sweep summary.
                            let notice = [SuiteEvent::from(event.clone())];
                            if let Err(e) = self.ports.publisher.publish(&notice).await {
                                tracing::warn!(app = %result.app.app_name, error = %e, "App Stopped not published; retried with the sweep summary");
                                return (result, Some(event));
                            }
                            return (result, None);
                        }
                        Ok(DeleteOutcome::AlreadyGone) => {
                            result.outcome = Outcome::Skipped("already-gone".into());
                            result.reason =
                                format!("{}; DeleteApp: already deleted", result.reason);
                        }
                        Ok(DeleteOutcome::InUse(message)) => {
                            result.outcome = Outcome::Skipped("delete-in-use".into());
                            result.reason = format!(
                                "{}; DeleteApp: {message}; the next sweep retries",
                                result.reason
                            );
                        }
                        Err(e) => result.reason = format!("{}; {e}", result.reason),
                    }
                }
            }
            Action::LoadOwnerFacts => {
                result.reason =
                    format!("{explain}; the owner's facts were not loaded (internal error)");
            }
        }
        (result, None)
    }

    /// Warns once per idle spell even when sweeps overlap: the idempotency store elects one invocation, which
    /// publishes the warning before it writes the warning tag, so no app is ever stopped without a published warning.
    async fn warn(
        &self,
        arn: &str,
        key: &str,
        event: AppIdleWarning,
        run: &Run,
    ) -> (Outcome, Option<String>) {
        let store = &self.ports.idempotency;
        let studio = &self.ports.studio;
        let warned_at = short(run.now);
        let claim = match store.claim(key, run.deadline).await {
            Ok(c) => c,
            Err(e) => {
                return (
                    Outcome::Failed,
                    Some(format!("cannot claim the warning: {e}")),
                );
            }
        };
        match claim {
            Claim::InProgress => (
                Outcome::Skipped("warning-in-progress-elsewhere".into()),
                Some("another sweep is warning this app".into()),
            ),
            Claim::AlreadyCompleted(previous) => {
                // Sent before (by an overlapping sweep, or one whose tag write failed): restore the tag, do not re-send.
                let sent_at = previous
                    .as_ref()
                    .and_then(|v| v.get("warnedAt"))
                    .and_then(Value::as_str)
                    .map_or(warned_at, str::to_string);
                let tags = Tags::from([(WARNING_TAG.to_string(), sent_at.clone())]);
                match studio.add_tags(arn, &tags).await {
                    Ok(()) => (
                        Outcome::Skipped("already-warned".into()),
                        Some(format!("warning already sent at {sent_at}")),
                    ),
                    Err(e) => (
                        Outcome::Failed,
                        Some(format!("cannot restore the warning tag: {e}")),
                    ),
                }
            }
            Claim::Acquired => {
                if let Err(e) = self.ports.publisher.publish(&[event.into()]).await {
                    if let Err(release) = store.release(key).await {
                        tracing::warn!(key, error = %release, "cannot release the warning claim; it expires with the deadline");
                    }
                    return (
                        Outcome::Failed,
                        Some(format!("warning not published, app left untouched: {e}")),
                    );
                }
                if let Err(e) = store.complete(key, &json!({ "warnedAt": warned_at })).await {
                    tracing::warn!(key, error = %e, "warning sent but not recorded as sent");
                }
                let tags = Tags::from([(WARNING_TAG.to_string(), warned_at)]);
                match studio.add_tags(arn, &tags).await {
                    Ok(()) => (Outcome::Warned, None),
                    Err(e) => (
                        Outcome::Failed,
                        Some(format!(
                            "warning sent, but the tag was not written (the next sweep writes it): {e}"
                        )),
                    ),
                }
            }
        }
    }
}

fn read_failed(app: AppListing, e: &StudioError) -> AppResult {
    AppResult::new(app, Outcome::Failed, "examine", e.to_string())
}

fn not_reached(app: AppListing, reason: impl Into<String>) -> AppResult {
    AppResult::new(app, Outcome::NotReached, "none", reason)
}

fn deadline_of(context: &Context, now: Timestamp) -> Timestamp {
    i64::try_from(context.deadline)
        .ok()
        .filter(|ms| *ms > 0)
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(now + FALLBACK_BUDGET)
}

fn log_result(r: &AppResult) {
    let outcome = match &r.outcome {
        Outcome::Skipped(k) => k.as_str(),
        Outcome::Warned => "warned",
        Outcome::Stopped => "stopped",
        Outcome::Failed => "failed",
        Outcome::NotReached => "not-reached",
    };
    let (user, space) = (r.app.owner.user_profile(), r.app.owner.space());
    if matches!(r.outcome, Outcome::Failed | Outcome::NotReached) {
        tracing::warn!(domain_id = %r.app.domain_id, user_profile = ?user, space = ?space, app_type = %r.app.app_type,
            app_name = %r.app.app_name, instance_type = ?r.instance_type, action = %r.action, outcome, reason = %r.reason,
            "idle decision");
    } else {
        tracing::info!(domain_id = %r.app.domain_id, user_profile = ?user, space = ?space, app_type = %r.app.app_type,
            app_name = %r.app.app_name, instance_type = ?r.instance_type, action = %r.action, outcome, reason = %r.reason,
            warning_cleared = r.warning_cleared, "idle decision");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::IdleSetting;
    use crate::decision::KEEP_ALIVE_TAG;
    use crate::studio::{ProfileDescription, SpaceDescription};
    use std::collections::{BTreeMap, HashSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use studio_ops_shared::ErrorClass;
    use studio_ops_shared::config::Env;
    use studio_ops_shared::idempotency::MemoryIdempotencyStore;
    use studio_ops_shared::publisher::{PublishError, RecordingPublisher};

    const NOW: &str = "2026-11-24T21:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn ago(minutes: i64) -> Timestamp {
        now() - SignedDuration::from_mins(minutes)
    }

    fn far_deadline() -> Timestamp {
        Timestamp::now() + SignedDuration::from_mins(10)
    }

    /// An in-memory Studio: apps, tags per ARN, spaces, per-app failures and delays, and a call log.
    #[derive(Default)]
    struct FakeStudio {
        apps: Vec<(AppListing, AppDescription)>,
        spaces: HashMap<String, SpaceDescription>,
        domain_idle: IdleSettings,
        space_owners: BTreeMap<String, String>,
        tags: Mutex<HashMap<String, Tags>>,
        failing_describe: HashSet<String>,
        /// Apps whose DescribeApp is throttled this many more times.
        throttled_describe: Mutex<HashMap<String, u32>>,
        delete_outcomes: HashMap<String, DeleteOutcome>,
        describe_delay: Option<Duration>,
        fail_second_page: bool,
        calls: Mutex<Vec<String>>,
    }

    impl FakeStudio {
        /// Seeds Ana's InService `ml.g5.xlarge` KernelGateway app, created 600 minutes ago.
        fn ana_gpu(&mut self, name: &str, activity: Option<i64>) {
            self.add(
                name,
                user("ana"),
                "KernelGateway",
                "InService",
                "ml.g5.xlarge",
                600,
                activity,
            );
        }

        /// Seeds one app: created `created` minutes ago, last real activity `activity` minutes ago.
        #[allow(clippy::too_many_arguments)]
        fn add(
            &mut self,
            name: &str,
            owner: AppOwner,
            app_type: &str,
            status: &str,
            instance: &str,
            created: i64,
            activity: Option<i64>,
        ) {
            let listing = AppListing {
                domain_id: "d-test".into(),
                owner,
                app_type: app_type.into(),
                app_name: name.into(),
                status: status.into(),
                instance_type: Some(instance.into()),
            };
            let description = AppDescription {
                arn: format!("arn:app/{name}"),
                status: status.into(),
                instance_type: Some(instance.into()),
                created: Some(ago(created)),
                last_health_check: Some(ago(1)),
                last_user_activity: activity.map(ago),
            };
            self.apps.push((listing, description));
        }

        fn tag(&self, arn: &str, key: &str, value: &str) {
            self.tags
                .lock()
                .unwrap()
                .entry(arn.into())
                .or_default()
                .insert(key.into(), value.into());
        }

        fn tags_of(&self, arn: &str) -> Tags {
            self.tags
                .lock()
                .unwrap()
                .get(arn)
                .cloned()
                .unwrap_or_default()
        }

        fn calls_of(&self, op: &str) -> usize {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.starts_with(op))
                .count()
        }

        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl Studio for FakeStudio {
        async fn list_domains(&self) -> Result<Vec<String>, StudioError> {
            self.log("ListDomains".into());
            Ok(vec!["d-test".into()])
        }

        /// Two pages (the apps split in half), or a failing second page when `fail_second_page` is set.
        fn app_pages<'a>(
            &'a self,
            domain_id: &'a str,
        ) -> impl futures::Stream<Item = Result<Vec<AppListing>, StudioError>> + Send + 'a {
            self.log(format!("ListApps {domain_id}"));
            let all: Vec<AppListing> = self.apps.iter().map(|(l, _)| l.clone()).collect();
            let (first, second) = all.split_at(all.len() / 2);
            let second = if self.fail_second_page {
                Err(StudioError {
                    operation: "ListApps",
                    class: ErrorClass::Retryable,
                    code: Some("ThrottlingException".into()),
                    message: "Rate exceeded".into(),
                })
            } else {
                Ok(second.to_vec())
            };
            futures::stream::iter([Ok(first.to_vec()), second])
        }

        async fn list_space_owners(
            &self,
            _domain_id: &str,
        ) -> Result<BTreeMap<String, String>, StudioError> {
            self.log("ListSpaces".into());
            Ok(self.space_owners.clone())
        }

        async fn describe_app(
            &self,
            app: &AppListing,
        ) -> Result<Option<AppDescription>, StudioError> {
            self.log(format!("DescribeApp {}", app.app_name));
            if let Some(d) = self.describe_delay {
                tokio::time::sleep(d).await;
            }
            let throttled = {
                let mut left = self.throttled_describe.lock().unwrap();
                match left.get_mut(&app.app_name) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                }
            };
            if throttled || self.failing_describe.contains(&app.app_name) {
                return Err(StudioError {
                    operation: "DescribeApp",
                    class: ErrorClass::Retryable,
                    code: Some("ThrottlingException".into()),
                    message: "ThrottlingException: Rate exceeded".into(),
                });
            }
            Ok(self
                .apps
                .iter()
                .find(|(l, _)| l.app_name == app.app_name)
                .map(|(_, d)| d.clone()))
        }

        async fn describe_space(
            &self,
            _domain_id: &str,
            space_name: &str,
        ) -> Result<SpaceDescription, StudioError> {
            self.log(format!("DescribeSpace {space_name}"));
            Ok(self.spaces.get(space_name).cloned().unwrap_or_default())
        }

        async fn domain_idle_settings(&self, domain_id: &str) -> Result<IdleSettings, StudioError> {
            self.log(format!("DescribeDomain {domain_id}"));
            Ok(self.domain_idle.clone())
        }

        async fn describe_user_profile(
            &self,
            _domain_id: &str,
            user: &str,
        ) -> Result<ProfileDescription, StudioError> {
            self.log(format!("DescribeUserProfile {user}"));
            Ok(ProfileDescription {
                arn: format!("arn:user-profile/{user}"),
                idle: IdleSettings::new(),
            })
        }

        async fn list_tags(&self, arn: &str) -> Result<Tags, StudioError> {
            self.log(format!("ListTags {arn}"));
            Ok(self.tags_of(arn))
        }

        async fn add_tags(&self, arn: &str, tags: &Tags) -> Result<(), StudioError> {
            self.log(format!("AddTags {arn}"));
            self.tags
                .lock()
                .unwrap()
                .entry(arn.into())
                .or_default()
                .extend(tags.clone());
            Ok(())
        }

        async fn delete_tags(&self, arn: &str, keys: &[&str]) -> Result<(), StudioError> {
            self.log(format!("DeleteTags {arn}"));
            if let Some(t) = self.tags.lock().unwrap().get_mut(arn) {
                t.retain(|k, _| !keys.contains(&k.as_str()));
            }
            Ok(())
        }

        async fn delete_app(&self, app: &AppListing) -> Result<DeleteOutcome, StudioError> {
            self.log(format!("DeleteApp {}", app.app_name));
            Ok(self
                .delete_outcomes
                .get(&app.app_name)
                .cloned()
                .unwrap_or(DeleteOutcome::Deleted))
        }
    }

    /// Fails every publish that carries an `App Idle Warning` while `fail_warnings` is set, and every publish made
    /// only of `App Stopped` notices while `fail_stop_notices` is set.
    #[derive(Default)]
    struct FlakyPublisher {
        fail_warnings: AtomicBool,
        fail_stop_notices: AtomicBool,
        /// The number of events of each publish that went through, in order.
        batch_sizes: Mutex<Vec<usize>>,
        inner: RecordingPublisher,
    }

    impl PublishEvents for FlakyPublisher {
        async fn publish(&self, events: &[SuiteEvent]) -> Result<(), PublishError> {
            let warning = events
                .iter()
                .any(|e| matches!(e, SuiteEvent::AppIdleWarning(_)));
            let only_stops = events
                .iter()
                .all(|e| matches!(e, SuiteEvent::AppStopped(_)));
            if (warning && self.fail_warnings.load(Ordering::SeqCst))
                || (only_stops && self.fail_stop_notices.load(Ordering::SeqCst))
            {
                return Err(PublishError::Call {
                    class: ErrorClass::Retryable,
                    message: "ServiceUnavailable".into(),
                });
            }
            if let Ok(mut sizes) = self.batch_sizes.lock() {
                sizes.push(events.len());
            }
            self.inner.publish(events).await
        }
    }

    fn config(extra: &[(&'static str, &'static str)]) -> Config {
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
            ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
        ]);
        vars.extend(extra.iter().copied());
        Config::from_env(&Env::new(&vars)).unwrap()
    }

    type TestHandler = Handler<FakeStudio, FlakyPublisher, MemoryIdempotencyStore>;

    fn handler(studio: FakeStudio, extra: &[(&'static str, &'static str)]) -> TestHandler {
        Handler::new(
            config(extra),
            PriceTable::from_prices(
                "us-east-1",
                &[("ml.g5.xlarge", 1.41), ("ml.t3.medium", 0.05)],
            ),
            Ports {
                studio,
                publisher: FlakyPublisher::default(),
                idempotency: MemoryIdempotencyStore::default(),
            },
        )
    }

    fn user(name: &str) -> AppOwner {
        AppOwner::UserProfile(name.into())
    }

    fn events(h: &TestHandler) -> Vec<SuiteEvent> {
        h.ports.publisher.inner.taken()
    }

    /// A full sweep now, far from the deadline, that must succeed.
    async fn sweep(h: &TestHandler) -> SweepReport {
        h.sweep(&RunRequest::default(), now(), far_deadline())
            .await
            .unwrap()
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/idle-shutdown/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn fixtures_parse() {
        assert!(
            !RunRequest::from_invocation(&fixture("scheduled-event.json"))
                .unwrap()
                .dry_run
        );
        let manual = RunRequest::from_invocation(&fixture("manual-dry-run.json")).unwrap();
        assert!(manual.dry_run);
        assert_eq!(manual.domain_id.as_deref(), Some("d-studioops0001"));
        let user = RunRequest::from_invocation(&fixture("manual-user-dry-run.json")).unwrap();
        assert_eq!(user.user_profile_name.as_deref(), Some("ana"));
        assert!(
            RunRequest::from_invocation(&fixture("scheduler-input.json")).unwrap()
                == RunRequest::default()
        );
    }

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
        s.tag("arn:app/warned-gpu", WARNING_TAG, &ago(31).to_string());
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
        let studio = &h.ports.studio;
        assert_eq!(
            studio
                .tags_of("arn:app/idle-gpu")
                .get(WARNING_TAG)
                .map(String::as_str),
            Some("2026-11-24T21:00:00Z")
        );
        assert_eq!(studio.calls_of("DeleteApp"), 1);
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
    async fn resumed_activity_and_keep_alive_clear_the_warning() {
        let mut s = FakeStudio::default();
        s.ana_gpu("back-at-work", Some(3));
        s.ana_gpu("kept", Some(300));
        s.tag("arn:app/back-at-work", WARNING_TAG, &ago(20).to_string());
        s.tag("arn:app/kept", WARNING_TAG, &ago(20).to_string());
        s.tag(
            "arn:user-profile/ana",
            KEEP_ALIVE_TAG,
            &(now() + SignedDuration::from_hours(3)).to_string(),
        );
        let h = handler(s, &[]);
        let report = sweep(&h).await;
        assert_eq!(report.warnings_cleared, 2);
        assert_eq!(report.skipped.get("active"), Some(&1));
        assert_eq!(report.skipped.get("keep-alive"), Some(&1));
        assert!(h.ports.studio.tags_of("arn:app/back-at-work").is_empty());
        assert!(h.ports.studio.tags_of("arn:app/kept").is_empty());
        assert_eq!(h.ports.studio.calls_of("DeleteApp"), 0);
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
        assert_eq!(h.ports.studio.calls_of("DescribeApp gpu-3"), 2);
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
        assert_eq!(h.ports.studio.calls_of("DescribeApp gpu-1"), 2);
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
        // 20 s left is inside the 30 s margin: the listing is skipped, the domain reported.
        let err = h
            .sweep(
                &RunRequest::default(),
                now(),
                Timestamp::now() + SignedDuration::from_secs(20),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("not reached before the Lambda deadline"),
            "{err}"
        );
        assert_eq!(h.ports.studio.calls_of("DescribeApp"), 0);
        let SuiteEvent::IdleSweepCompleted(sum) = &events(&h)[0] else {
            panic!()
        };
        assert_eq!(sum.failed_domains, vec!["d-test"]);
    }

    #[tokio::test]
    async fn an_app_whose_reading_outlasts_the_deadline_is_not_reached() {
        let mut s = FakeStudio::default();
        s.ana_gpu("slow-gpu", Some(90));
        s.describe_delay = Some(Duration::from_secs(5));
        let h = handler(s, &[("STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS", "5")]);
        let report = h
            .sweep(
                &RunRequest::default(),
                now(),
                Timestamp::now() + SignedDuration::from_millis(6_500),
            )
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
        assert!(h.ports.studio.tags_of("arn:app/slow-gpu").is_empty());
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
        s.tag("arn:app/warned-gpu", WARNING_TAG, &ago(31).to_string());
        s.tag("arn:app/back", WARNING_TAG, &ago(31).to_string());
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
            assert_eq!(h.ports.studio.calls_of(op), 0, "{op}");
        }
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
        assert_eq!(h.ports.studio.calls_of("AddTags"), 0);
    }

    #[tokio::test]
    async fn an_unpublished_warning_leaves_the_app_untagged_and_the_next_sweep_warns() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        h.ports
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
        assert!(h.ports.studio.tags_of("arn:app/idle-gpu").is_empty());

        h.ports
            .publisher
            .fail_warnings
            .store(false, Ordering::SeqCst);
        let report = sweep(&h).await;
        assert_eq!(report.warned, 1);
        assert!(
            h.ports
                .studio
                .tags_of("arn:app/idle-gpu")
                .contains_key(WARNING_TAG)
        );
    }

    #[tokio::test]
    async fn a_warning_already_sent_is_not_sent_again_but_its_tag_is_restored() {
        let mut s = FakeStudio::default();
        s.ana_gpu("idle-gpu", Some(90));
        let h = handler(s, &[]);
        assert_eq!(sweep(&h).await.warned, 1);
        // The tag got lost (say, its write failed after the warning went out): no second warning, same time.
        h.ports.studio.tags.lock().unwrap().clear();
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
        assert_eq!(
            h.ports
                .studio
                .tags_of("arn:app/idle-gpu")
                .get(WARNING_TAG)
                .map(String::as_str),
            Some("2026-11-24T21:00:00Z")
        );
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
            s.tag(&format!("arn:app/{app}"), WARNING_TAG, &ago(31).to_string());
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

    fn stoppable(names: &[&str]) -> FakeStudio {
        let mut s = FakeStudio::default();
        for app in names {
            s.ana_gpu(app, Some(120));
            s.tag(&format!("arn:app/{app}"), WARNING_TAG, &ago(31).to_string());
        }
        s
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
        assert_eq!(h.ports.studio.calls_of("DeleteApp"), 2);
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
            *h.ports.publisher.batch_sizes.lock().unwrap(),
            [1, 1, 1],
            "one publish per stop, as it happens, not a batch at the end"
        );
    }

    #[tokio::test]
    async fn a_stop_notice_that_cannot_go_out_at_once_goes_with_the_summary() {
        let h = handler(stoppable(&["gpu-1", "gpu-2"]), &[]);
        h.ports
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
        assert_eq!(h.ports.studio.calls_of("DescribeDomain"), 1);
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
        assert_eq!(h.ports.studio.calls_of("DescribeApp"), 2);
    }

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
        assert!(h.ports.studio.calls.lock().unwrap().is_empty());
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
        assert_eq!(out["dryRun"], true);
        assert_eq!(out["domains"], json!(["d-studioops0001"]));
        assert_eq!(out["scanned"], 1);
        assert_eq!(out["apps"][0]["outcome"], "would-warn");
    }
}
