//! One sweep: the domains in scope, every app of them as its ListApps page arrives (screened on the listing alone,
//! then read with bounded concurrency: DescribeApp, its tags, and the owner's facts only where the decision needs
//! them, each profile and domain read once per sweep), a second pass at half the concurrency for apps whose reading
//! was throttled, the decision table, then `act` on each app; finally the report, its metrics and the
//! `Idle Sweep Completed` summary. No new work starts past the cutoff before the Lambda deadline: what is left is
//! reported as not reached. Every app ends in the report; none is left half-done.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::Timestamp;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::events::suite::{AppStopped, SuiteEvent};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::names::is_domain_id;
use studio_ops_shared::publisher::PublishEvents;
use studio_ops_shared::{AwsCallError, Deadline, ErrorClass};
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::decision::{
    Action, AppFacts, AppListing, AppOwner, BUILTIN_IDLE_APP_TYPES, Decision, IdleSettings,
    OwnerFacts, Tags, builtin_idle_minutes, decide, screen,
};
use crate::error::HandlerError;
use crate::ports::{AppDescription, Ports, Studio};
use crate::prices::PriceTable;
use crate::report::{AppOutcome, AppResult, DomainFailure, SweepReport};

/// What a sweep works with: the configuration, the price table and the ports.
pub(crate) struct Sweeper<'a, S, P, I> {
    pub(crate) config: &'a Config,
    pub(crate) prices: &'a PriceTable,
    pub(crate) ports: &'a Ports<S, P, I>,
}

/// A user profile's tags and built-in idle settings, fetched once per sweep.
#[derive(Debug, Clone)]
struct ProfileFacts {
    tags: Tags,
    idle: IdleSettings,
}

/// The state of one sweep.
pub(crate) struct Run {
    /// The time decisions are made at.
    pub(crate) now: Timestamp,
    /// The invocation's deadline: what a warning claim lapses with.
    pub(crate) deadline: Deadline,
    /// The point after which no new work starts: the deadline less the configured margin (at most a quarter of the
    /// time the invocation was given, so that a short deadline still leaves time to work).
    cutoff: Timestamp,
    pub(crate) dry_run: bool,
    /// The per-sweep caches: each profile and each domain's idle settings are read at most once per sweep.
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
    fn new(now: Timestamp, deadline: Deadline, margin: Duration, dry_run: bool) -> Self {
        Self {
            now,
            deadline,
            cutoff: deadline.stop_at(margin),
            dry_run,
            profiles: Mutex::new(HashMap::new()),
            domain_idle: Mutex::new(HashMap::new()),
        }
    }

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
    ReadFailed(AppListing, AwsCallError),
}

/// What reading one app produced.
enum Examined {
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
}

impl<S, P, I> Sweeper<'_, S, P, I>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
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
        let first_pass = self
            .first_pass(&domains, request, &run, &failed_domains)
            .await;
        let failed_domains = failed_domains
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let (results, stopped) = self.second_pass(first_pass, &run).await;
        let report = summarize(&run, domains, failed_domains, &results);
        if !run.dry_run {
            report.metrics().emit();
        }
        self.publish(&report, stopped).await?;
        all_domains_failed(&report)?;
        Ok(report)
    }

    /// Apps are screened and processed while the next ListApps page is read.
    async fn first_pass(
        &self,
        domains: &[String],
        request: &RunRequest,
        run: &Run,
        failed_domains: &Mutex<Vec<DomainFailure>>,
    ) -> Vec<Processed> {
        let policy = &self.config.policy;
        self.listing(domains, request, run, failed_domains)
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
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await
    }

    /// Apps whose reading was throttled or hit a server fault get one more pass once the burst has passed, at half
    /// the concurrency, so that the same unlucky apps are not left out sweep after sweep. Returns every app's result
    /// (sorted) and the `App Stopped` notices still to publish.
    async fn second_pass(
        &self,
        first_pass: Vec<Processed>,
        run: &Run,
    ) -> (Vec<AppResult>, Vec<AppStopped>) {
        let mut results = Vec::with_capacity(first_pass.len());
        let mut stopped = Vec::new();
        let mut retry = Vec::new();
        for processed in first_pass {
            match processed {
                Processed::Done(result, event) => {
                    results.push(result);
                    stopped.extend(event.map(|e| *e));
                }
                Processed::ReadFailed(app, e) if e.class == ErrorClass::Retryable => {
                    retry.push(app)
                }
                Processed::ReadFailed(app, e) => results.push(read_failed(app, &e)),
            }
        }
        let concurrency = (self.config.concurrency / 2).max(1);
        for processed in self.process_all(retry, concurrency, run).await {
            match processed {
                Processed::Done(result, event) => {
                    results.push(result);
                    stopped.extend(event.map(|e| *e));
                }
                Processed::ReadFailed(app, e) => results.push(read_failed(app, &e)),
            }
        }
        results.sort_by_key(|r| r.app.key());
        (results, stopped)
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
        let (result, event) = self.act(app, decided, run).await;
        Processed::Done(result, event.map(Box::new))
    }

    async fn examine(&self, app: &AppListing, run: &Run) -> Result<Examined, AwsCallError> {
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
    async fn owner_facts(&self, app: &AppListing, run: &Run) -> Result<OwnerFacts, AwsCallError> {
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

/// The report of every app's result, logged app by app and as a whole.
fn summarize(
    run: &Run,
    domains: Vec<String>,
    failed_domains: Vec<DomainFailure>,
    results: &[AppResult],
) -> SweepReport {
    let mut report = SweepReport::new(run.dry_run, run.now, domains, failed_domains);
    for r in results {
        log_result(r);
        report.add(r);
    }
    debug_assert!(report.is_balanced());
    tracing::info!(
        dry_run = report.dry_run, scanned = report.scanned, warned = report.warned, stopped = report.stopped,
        failed = report.failed, not_reached = report.not_reached, skipped = ?report.skipped,
        savings_usd_per_hour = report.estimated_hourly_savings_usd, failed_domains = report.failed_domains.len(),
        "idle sweep completed"
    );
    report
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
    use std::collections::BTreeMap;
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
        let studio = &h.ports().studio;
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
            assert_eq!(h.ports().studio.calls_of(op), 0, "{op}");
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
