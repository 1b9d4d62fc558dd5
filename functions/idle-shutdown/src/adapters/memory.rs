//! The in-memory fakes of the ports, for the crate's unit tests: a Studio with apps, tags, spaces, planted failures
//! and delays and a call log, and a publisher that fails on demand. Also the fixed clock the tests decide at.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::publisher::{PublishError, PublishEvents, RecordingPublisher};
use studio_ops_shared::{AwsCallError, ErrorClass};

use studio_ops_shared::Deadline;
use studio_ops_shared::config::Env;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::idempotency::MemoryIdempotencyStore;

use crate::budget::{Notice, Notices};
use crate::config::Config;
use crate::decision::{AppListing, AppOwner, IdleSettings, Tags};
use crate::handler::Handler;
use crate::ledger::{Account, Usage, supersedes};
use crate::ports::{
    AppDescription, DeleteOutcome, FailureQueues, ListApps, MonthLedger, Ports, ProfileDescription,
    ReadOwners, SpaceDescription, SpendLedger, StopApps, SweepState, Tagging,
};
use crate::report::SweepReport;
use crate::state::{AppState, DomainState, StateChange, Warning, state_key};
use crate::weekly::{Lag, Stop};
use studio_ops_shared::prices::PriceTable;

/// The time the unit tests decide at.
pub(crate) const NOW: &str = "2026-11-24T21:00:00Z";

pub(crate) fn now() -> Timestamp {
    NOW.parse().expect("NOW is a timestamp")
}

/// `minutes` before [`now`].
pub(crate) fn ago(minutes: i64) -> Timestamp {
    now() - SignedDuration::from_mins(minutes)
}

/// An app owned by user profile `name`.
pub(crate) fn user(name: &str) -> AppOwner {
    AppOwner::UserProfile(name.into())
}

/// An in-memory Studio: apps, tags per ARN, spaces, per-app failures and delays, and a call log.
#[derive(Default)]
pub(crate) struct FakeStudio {
    pub(crate) apps: Vec<(AppListing, AppDescription)>,
    pub(crate) spaces: HashMap<String, SpaceDescription>,
    pub(crate) domain_idle: IdleSettings,
    pub(crate) space_owners: BTreeMap<String, String>,
    pub(crate) tags: Mutex<HashMap<String, Tags>>,
    pub(crate) failing_describe: HashSet<String>,
    /// Apps whose DescribeApp is throttled this many more times.
    pub(crate) throttled_describe: Mutex<HashMap<String, u32>>,
    pub(crate) delete_outcomes: HashMap<String, DeleteOutcome>,
    pub(crate) describe_delay: Option<Duration>,
    pub(crate) fail_second_page: bool,
    pub(crate) calls: Mutex<Vec<String>>,
    /// Warnings the sweep state holds when the handler is built (see [`handler`]).
    pub(crate) warnings: Vec<(AppListing, Timestamp)>,
}

impl FakeStudio {
    /// Seeds Ana's InService `ml.g5.xlarge` KernelGateway app, created 600 minutes ago.
    pub(crate) fn ana_gpu(&mut self, name: &str, activity: Option<i64>) {
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
    pub(crate) fn add(
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
            created: Some(ago(created)),
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

    /// Moves app `name` to another domain.
    pub(crate) fn move_to(&mut self, name: &str, domain_id: &str) {
        for (l, _) in self.apps.iter_mut().filter(|(l, _)| l.app_name == name) {
            l.domain_id = domain_id.into();
        }
    }

    /// A warning sent at `at` for app `name`, as the sweep state will hold it.
    pub(crate) fn warn(&mut self, name: &str, at: Timestamp) {
        let listing = self
            .apps
            .iter()
            .find(|(l, _)| l.app_name == name)
            .map(|(l, _)| l.clone())
            .expect("warn an app that was added");
        self.warnings.push((listing, at));
    }

    pub(crate) fn tag(&self, arn: &str, key: &str, value: &str) {
        self.tags
            .lock()
            .unwrap()
            .entry(arn.into())
            .or_default()
            .insert(key.into(), value.into());
    }

    pub(crate) fn tags_of(&self, arn: &str) -> Tags {
        self.tags
            .lock()
            .unwrap()
            .get(arn)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn calls_of(&self, op: &str) -> usize {
        count_calls(&self.calls, op)
    }

    pub(crate) fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl ListApps for FakeStudio {
    async fn list_domains(&self) -> Result<Vec<String>, AwsCallError> {
        self.log("ListDomains".into());
        Ok(vec!["d-test".into()])
    }

    /// Two pages (the apps split in half), or a failing second page when `fail_second_page` is set.
    fn app_pages<'a>(
        &'a self,
        domain_id: &'a str,
    ) -> impl futures::Stream<Item = Result<Vec<AppListing>, AwsCallError>> + Send + 'a {
        self.log(format!("ListApps {domain_id}"));
        let all: Vec<AppListing> = self
            .apps
            .iter()
            // The apps of the default domain `d-test` are listed in whichever domain is asked for; an app moved to
            // another domain (`move_to`) only in that one.
            .filter(|(l, _)| l.domain_id == domain_id || l.domain_id == "d-test")
            .map(|(l, _)| l.clone())
            .collect();
        let (first, second) = all.split_at(all.len() / 2);
        let second = if self.fail_second_page {
            Err(AwsCallError::service(
                "ListApps",
                "ThrottlingException",
                "Rate exceeded",
            ))
        } else {
            Ok(second.to_vec())
        };
        futures::stream::iter([Ok(first.to_vec()), second])
    }

    async fn list_space_owners(
        &self,
        _domain_id: &str,
    ) -> Result<BTreeMap<String, String>, AwsCallError> {
        self.log("ListSpaces".into());
        Ok(self.space_owners.clone())
    }

    async fn describe_app(&self, app: &AppListing) -> Result<Option<AppDescription>, AwsCallError> {
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
            return Err(AwsCallError::service(
                "DescribeApp",
                "ThrottlingException",
                "Rate exceeded",
            ));
        }
        Ok(self
            .apps
            .iter()
            .find(|(l, _)| l.app_name == app.app_name)
            .map(|(_, d)| d.clone()))
    }
}

impl ReadOwners for FakeStudio {
    async fn describe_space(
        &self,
        _domain_id: &str,
        space_name: &str,
    ) -> Result<SpaceDescription, AwsCallError> {
        self.log(format!("DescribeSpace {space_name}"));
        Ok(self.spaces.get(space_name).cloned().unwrap_or_default())
    }

    async fn domain_idle_settings(&self, domain_id: &str) -> Result<IdleSettings, AwsCallError> {
        self.log(format!("DescribeDomain {domain_id}"));
        Ok(self.domain_idle.clone())
    }

    async fn describe_user_profile(
        &self,
        _domain_id: &str,
        user: &str,
    ) -> Result<ProfileDescription, AwsCallError> {
        self.log(format!("DescribeUserProfile {user}"));
        Ok(ProfileDescription {
            arn: format!("arn:user-profile/{user}"),
            idle: IdleSettings::new(),
        })
    }
}

impl Tagging for FakeStudio {
    async fn list_tags(&self, arn: &str) -> Result<Tags, AwsCallError> {
        self.log(format!("ListTags {arn}"));
        Ok(self.tags_of(arn))
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> Result<(), AwsCallError> {
        self.log(format!("AddTags {arn}"));
        self.tags
            .lock()
            .unwrap()
            .entry(arn.into())
            .or_default()
            .extend(tags.clone());
        Ok(())
    }

    async fn delete_tags(&self, arn: &str, keys: &[&str]) -> Result<(), AwsCallError> {
        self.log(format!("DeleteTags {arn}"));
        if let Some(t) = self.tags.lock().unwrap().get_mut(arn) {
            t.retain(|k, _| !keys.contains(&k.as_str()));
        }
        Ok(())
    }
}

impl StopApps for FakeStudio {
    async fn delete_app(&self, app: &AppListing) -> Result<DeleteOutcome, AwsCallError> {
        self.log(format!("DeleteApp {}", app.app_name));
        Ok(self
            .delete_outcomes
            .get(&app.app_name)
            .cloned()
            .unwrap_or(DeleteOutcome::Deleted))
    }
}

/// An in-memory sweep state: per domain, app items and the record of unreached apps; a call log, and failures on
/// demand.
#[derive(Default)]
pub(crate) struct MemoryState {
    pub(crate) domains: Mutex<HashMap<String, DomainState>>,
    pub(crate) calls: Mutex<Vec<String>>,
    pub(crate) fail_load: AtomicBool,
    pub(crate) fail_save: AtomicBool,
    /// The spend ledger: (month, domain, key) → record, replaced only under `ledger::supersedes`, as the DynamoDB
    /// adapter's conditional put does.
    pub(crate) ledger: Mutex<BTreeMap<(String, String, String), Usage>>,
    /// The budget notices: (month, domain, account key) → notices.
    pub(crate) notices: Mutex<BTreeMap<(String, String, String), Notices>>,
    /// The apps stopped, by (domain, key): a put of the same key replaces, as DynamoDB's does.
    pub(crate) stops: Mutex<BTreeMap<(String, String), Stop>>,
    /// The sweeps that could not keep up, by time.
    pub(crate) lags: Mutex<BTreeMap<i64, Lag>>,
    pub(crate) fail_ledger: AtomicBool,
    /// Fails only the query of the lag records (the rest of the ledger reads).
    pub(crate) fail_lags: AtomicBool,
}

impl MemoryState {
    /// The state of app `name` of Ana's apps in `d-test` (as the fake Studio lists it).
    pub(crate) fn app(&self, listing: &AppListing) -> Option<AppState> {
        self.domains
            .lock()
            .unwrap()
            .get(&listing.domain_id)
            .and_then(|d| d.apps.get(&state_key(listing)).cloned())
    }

    /// Plants a warning sent at `at` for `listing` (created as the listing says).
    pub(crate) fn warn(&self, listing: &AppListing, at: Timestamp) {
        let mut domains = self.domains.lock().unwrap();
        let apps = &mut domains.entry(listing.domain_id.clone()).or_default().apps;
        apps.insert(
            state_key(listing),
            AppState {
                created: listing.created.map_or(0, |c| c.as_second()),
                evidence_at: None,
                warning: Some(Warning { at, episode: None }),
            },
        );
    }

    pub(crate) fn calls_of(&self, op: &str) -> usize {
        count_calls(&self.calls, op)
    }
}

impl SweepState for MemoryState {
    async fn load(&self, domain_id: &str) -> Result<DomainState, AwsCallError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("Query {domain_id}"));
        if self.fail_load.load(Ordering::SeqCst) {
            return Err(AwsCallError::service(
                "Query",
                "ProvisionedThroughputExceededException",
                "Throughput exceeds the current capacity",
            ));
        }
        Ok(self
            .domains
            .lock()
            .unwrap()
            .get(domain_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn save(&self, domain_id: &str, changes: &[StateChange]) -> Result<(), AwsCallError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("BatchWriteItem {domain_id} {}", changes.len()));
        assert!(
            changes.len() <= 25,
            "one batch write holds at most 25 items"
        );
        planted_failure(&self.fail_save, "BatchWriteItem")?;
        let mut domains = self.domains.lock().unwrap();
        let domain = domains.entry(domain_id.to_string()).or_default();
        for change in changes {
            match change {
                StateChange::Put { key, state } => {
                    domain.apps.insert(key.clone(), state.clone());
                }
                StateChange::Delete { key } => {
                    domain.apps.remove(key);
                }
                StateChange::Unreached(u) => domain.unreached = u.clone(),
            }
        }
        Ok(())
    }
}

impl MemoryState {
    /// Every record of the ledger.
    pub(crate) fn records(&self) -> Vec<Usage> {
        self.ledger.lock().unwrap().values().cloned().collect()
    }
}

impl SpendLedger for MemoryState {
    async fn record_stop(&self, stop: &Stop) -> Result<(), AwsCallError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("PutItem stop {}", stop.app_name));
        planted_failure(&self.fail_ledger, "PutItem")?;
        self.stops
            .lock()
            .unwrap()
            .insert((stop.domain_id.clone(), stop.key()), stop.clone());
        Ok(())
    }

    async fn stops(&self, domain_id: &str, month: &str) -> Result<Vec<Stop>, AwsCallError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("Query stops {domain_id} {month}"));
        planted_failure(&self.fail_ledger, "Query")?;
        Ok(self
            .stops
            .lock()
            .unwrap()
            .iter()
            .filter(|((d, _), s)| d == domain_id && s.month() == month)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn record_lag(&self, lag: &Lag) -> Result<(), AwsCallError> {
        self.calls.lock().unwrap().push("PutItem lag".to_string());
        planted_failure(&self.fail_ledger, "PutItem")?;
        self.lags.lock().unwrap().insert(lag.at, lag.clone());
        Ok(())
    }

    async fn lags(&self, month: &str) -> Result<Vec<Lag>, AwsCallError> {
        planted_failure(&self.fail_ledger, "Query")?;
        planted_failure(&self.fail_lags, "Query")?;
        Ok(self
            .lags
            .lock()
            .unwrap()
            .values()
            .filter(|l| l.month() == month)
            .cloned()
            .collect())
    }

    async fn month(
        &self,
        domain_id: &str,
        month: &str,
        days: bool,
    ) -> Result<MonthLedger, AwsCallError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("Query spend {domain_id} {month}"));
        planted_failure(&self.fail_ledger, "Query")?;
        let usages = self
            .ledger
            .lock()
            .unwrap()
            .iter()
            .filter(|((m, d, _), _)| m == month && d == domain_id)
            .map(|(_, u)| {
                let mut u = u.clone();
                if !days {
                    u.days.clear();
                }
                u
            })
            .collect();
        let notices = self
            .notices
            .lock()
            .unwrap()
            .iter()
            .filter(|((m, d, _), _)| m == month && d == domain_id)
            .map(|((_, _, a), n)| (a.clone(), n.clone()))
            .collect();
        Ok(MonthLedger { usages, notices })
    }

    async fn claim_notice(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> Result<bool, AwsCallError> {
        self.calls.lock().unwrap().push(format!(
            "UpdateItem notice {} {}",
            account.key(),
            notice.level()
        ));
        planted_failure(&self.fail_ledger, "UpdateItem")?;
        let mut notices = self.notices.lock().unwrap();
        let held = notices
            .entry((month.to_string(), domain_id.to_string(), account.key()))
            .or_default();
        let slot = held.slot(notice);
        if slot.is_some() {
            return Ok(false);
        }
        *slot = Some(at);
        Ok(true)
    }

    async fn release_notice(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> Result<(), AwsCallError> {
        let mut notices = self.notices.lock().unwrap();
        if let Some(held) =
            notices.get_mut(&(month.to_string(), domain_id.to_string(), account.key()))
        {
            let slot = held.slot(notice);
            if *slot == Some(at) {
                *slot = None;
            }
        }
        Ok(())
    }

    async fn record(&self, usage: &Usage) -> Result<bool, AwsCallError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("PutItem spend {}", usage.key));
        planted_failure(&self.fail_ledger, "PutItem")?;
        let mut ledger = self.ledger.lock().unwrap();
        let key = (
            usage.month.clone(),
            usage.domain_id.clone(),
            usage.key.clone(),
        );
        if !supersedes(usage, ledger.get(&key)) {
            return Ok(false);
        }
        ledger.insert(key, usage.clone());
        Ok(true)
    }
}

/// The server error a fake answers while `flag` is set (the next sweep's call succeeds once it is cleared).
fn planted_failure(flag: &AtomicBool, operation: &'static str) -> Result<(), AwsCallError> {
    if flag.load(Ordering::SeqCst) {
        return Err(AwsCallError::service(
            operation,
            "InternalServerError",
            "try again",
        ));
    }
    Ok(())
}

/// Fails every publish that carries an `App Idle Warning` while `fail_warnings` is set, and every publish made
/// only of `App Stopped` notices while `fail_stop_notices` is set.
#[derive(Default)]
pub(crate) struct FlakyPublisher {
    pub(crate) fail_warnings: AtomicBool,
    pub(crate) fail_stop_notices: AtomicBool,
    pub(crate) fail_budget_alerts: AtomicBool,
    pub(crate) fail_team_digest: AtomicBool,
    /// The number of events of each publish that went through, in order.
    pub(crate) batch_sizes: Mutex<Vec<usize>>,
    pub(crate) inner: RecordingPublisher,
}

impl PublishEvents for FlakyPublisher {
    async fn publish(&self, events: &[SuiteEvent]) -> Result<(), PublishError> {
        let warning = events
            .iter()
            .any(|e| matches!(e, SuiteEvent::AppIdleWarning(_)));
        let only_stops = events
            .iter()
            .all(|e| matches!(e, SuiteEvent::AppStopped(_)));
        let budget = events
            .iter()
            .any(|e| matches!(e, SuiteEvent::BudgetAlert(_)));
        let team_digest = events
            .iter()
            .any(|e| matches!(e, SuiteEvent::TeamDigest(_)));
        if (team_digest && self.fail_team_digest.load(Ordering::SeqCst))
            || (warning && self.fail_warnings.load(Ordering::SeqCst))
            || (only_stops && self.fail_stop_notices.load(Ordering::SeqCst))
            || (budget && self.fail_budget_alerts.load(Ordering::SeqCst))
        {
            return Err(PublishError::Call(AwsCallError::other(
                "PutEvents",
                ErrorClass::Retryable,
                "ServiceUnavailable",
            )));
        }
        if let Ok(mut sizes) = self.batch_sizes.lock() {
            sizes.push(events.len());
        }
        self.inner.publish(events).await
    }
}

/// The configuration of the suite's required variables plus `extra`.
pub(crate) fn config(extra: &[(&'static str, &'static str)]) -> Config {
    let mut vars: HashMap<&str, &str> = HashMap::from([
        ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
        ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
        ("STUDIO_OPS_IDLE_STATE_TABLE", "idle-state"),
        ("STUDIO_OPS_SPEND_TABLE", "spend"),
    ]);
    vars.extend(extra.iter().copied());
    Config::from_env(&Env::new(&vars)).expect("test configuration")
}

/// The handler over the fakes.
pub(crate) type TestHandler =
    Handler<FakeStudio, FlakyPublisher, MemoryIdempotencyStore, MemoryState, FakeQueues>;

/// The failure queues: URL → messages waiting; an unknown URL fails as SQS's `QueueDoesNotExist` would.
#[derive(Default)]
pub(crate) struct FakeQueues {
    pub(crate) waiting: Mutex<BTreeMap<String, u32>>,
}

impl FailureQueues for FakeQueues {
    async fn waiting(&self, queue_url: &str) -> Result<u32, AwsCallError> {
        self.waiting
            .lock()
            .unwrap()
            .get(queue_url)
            .copied()
            .ok_or_else(|| {
                AwsCallError::service(
                    "GetQueueAttributes",
                    "AWS.SimpleQueueService.NonExistentQueue",
                    "The specified queue does not exist",
                )
            })
    }
}

/// A handler over `studio`, a publisher that works until told otherwise and an in-memory idempotency store.
pub(crate) fn handler(
    mut studio: FakeStudio,
    extra: &[(&'static str, &'static str)],
) -> TestHandler {
    let state = MemoryState::default();
    for (listing, at) in std::mem::take(&mut studio.warnings) {
        state.warn(&listing, at);
    }
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
            queues: FakeQueues::default(),
            state,
        },
    )
}

/// The warning the sweep state holds for app `name`, if any.
pub(crate) fn warning_of(h: &TestHandler, name: &str) -> Option<Timestamp> {
    let (listing, _) = h
        .ports()
        .studio
        .apps
        .iter()
        .find(|(l, _)| l.app_name == name)?;
    h.ports().state.app(listing)?.warning.map(|w| w.at)
}

/// The events published so far (taken: the next call sees only later ones).
pub(crate) fn events(h: &TestHandler) -> Vec<SuiteEvent> {
    h.ports().publisher.inner.taken()
}

/// A deadline ten minutes away, given as much: no margin question arises.
pub(crate) fn far_deadline() -> Deadline {
    Deadline::after(Duration::from_secs(600))
}

/// A full sweep now, far from the deadline, that must succeed.
pub(crate) async fn sweep(h: &TestHandler) -> SweepReport {
    h.sweep(&RunRequest::default(), now(), far_deadline())
        .await
        .expect("the sweep succeeds")
}

/// Ana's GPU apps `names`, idle 120 minutes and warned 31 minutes ago: stopped by the next real sweep.
pub(crate) fn stoppable(names: &[&str]) -> FakeStudio {
    let mut s = FakeStudio::default();
    for app in names {
        s.ana_gpu(app, Some(120));
        s.warn(app, ago(31));
    }
    s
}

/// An invocation fixture of `events/idle-shutdown/`, as `cargo lambda invoke --data-file` sends it.
pub(crate) fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../events/idle-shutdown/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// How many logged calls start with `op` (`"DescribeApp"`, or `"DescribeApp gpu"` for one app): both fakes log
/// their calls the same way.
fn count_calls(calls: &Mutex<Vec<String>>, op: &str) -> usize {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with(op))
        .count()
}

/// The spend tests' studio (`spend.rs`, `digest.rs`): Ana's GPU app (2 h), Bob's CPU app in his private space
/// (1 h), a shared space's app of an unpriced type (30 min), and a stopped app that costs nothing.
pub(crate) fn spend_studio() -> FakeStudio {
    let mut s = FakeStudio::default();
    s.add(
        "gpu",
        user("ana"),
        "JupyterLab",
        "InService",
        "ml.g5.xlarge",
        120,
        Some(1),
    );
    let private = AppOwner::Space("bob-private".into());
    s.add(
        "cpu",
        private,
        "CodeEditor",
        "InService",
        "ml.t3.medium",
        60,
        Some(1),
    );
    let shared = AppOwner::Space("team-lab".into());
    s.add(
        "big",
        shared,
        "JupyterLab",
        "InService",
        "ml.p5.48xlarge",
        30,
        Some(1),
    );
    s.add(
        "old",
        user("ana"),
        "JupyterLab",
        "Deleted",
        "ml.g5.xlarge",
        600,
        None,
    );
    s.space_owners = [("bob-private".to_string(), "bob".to_string())].into();
    s
}
