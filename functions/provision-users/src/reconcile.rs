//! The reconcile, provision-users' one use case: read the configured groups and the domain through the ports,
//! plan (`plan.rs`), judge the plan with the brake (`brake.rs`), and carry it out with bounded concurrency inside
//! the invocation's deadline — creating profiles (and private spaces), updating settings, and deprovisioning
//! (apps, then private spaces, then the profile) — then publish what was done as suite events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::events::suite::{
    ProvisioningBlocked, ProvisioningFailed, SharedSpaceReady, SharedSpaceRemoved, SuiteEvent,
    UserDeprovisioned, UserProvisioned,
};
use studio_ops_shared::metrics::{MetricSet, RUN_COMPLETED, Unit};
use studio_ops_shared::publisher::{PublishError, PublishEvents};
use studio_ops_shared::{AwsCallError, Deadline, ErrorClass, Failure};
use tokio::time::Instant;

use crate::brake::Verdict;
use crate::config::Config;
use crate::error::HandlerError;
use crate::plan::{
    self, CreateProfile, CreateSpace, Deprovision, ExistingProfile, MANAGED_BY, Member, Observed,
    Plan, PlanInput, TAG_GROUP_ID, TAG_MANAGED_BY, TAG_PROFILE, TAG_SETTINGS, TAG_USER_ID,
    UpdateProfile,
};
use crate::ports::{
    AppOwner, AppRef, Change, Created, IdentityPort, NewProfile, NewSpace, RESOURCE_NOT_FOUND,
    SpaceSummary, StudioPort,
};
use crate::settings::GroupSettings;
use crate::shared_spaces::{
    self, CreateSharedSpace, ExistingSharedSpace, RemoveSharedSpace, UpdateSharedSpace,
};

/// Time wanted free at the end of an invocation to publish events and answer (a short deadline keeps less:
/// [`Deadline::margin`] takes at most a quarter of the time given).
pub const FINISH_MARGIN: Duration = Duration::from_secs(10);
/// No action is started with less than this left before the deadline (capped the same way).
pub const START_MARGIN: Duration = Duration::from_secs(20);
/// Polling while waiting for apps, spaces and profiles to settle.
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(5);
/// At most this many individual Provisioning Failed events per run; the rest are summed up in one.
const MAX_FAILURE_EVENTS: usize = 10;

/// Reading the state failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("configured group {group_id} does not exist in identity store {identity_store_id}")]
    GroupNotFound {
        group_id: String,
        identity_store_id: String,
    },
    #[error("the Studio domain {0} does not exist")]
    DomainNotFound(String),
    #[error("reading the state did not finish before the invocation's deadline")]
    Deadline,
    #[error(transparent)]
    Call(#[from] AwsCallError),
}

impl Failure for ObserveError {
    fn class(&self) -> ErrorClass {
        match self {
            ObserveError::GroupNotFound { .. } | ObserveError::DomainNotFound(_) => {
                ErrorClass::NonRetryable
            }
            ObserveError::Deadline => ErrorClass::Retryable,
            ObserveError::Call(e) => e.class,
        }
    }
}

/// What a reconcile is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Plan and answer the plan; change nothing, publish nothing.
    pub dry_run: bool,
    /// Only this profile (an admin's decision: the brake does not apply).
    pub only_profile: Option<String>,
}

/// How a reconcile ended (the handler turns it into the invocation's outcome). One per invocation: the size of
/// its largest variant costs nothing worth a box.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Ended {
    /// A dry run: the plan and what the brake would say.
    Preview { plan: Plan, verdict: Verdict },
    /// The brake stopped the plan; Provisioning Blocked is published.
    Blocked { plan: Plan, reason: String },
    /// The plan was carried out (in `took`); `published` says whether its events went out.
    Applied {
        plan: Plan,
        report: Report,
        published: Result<(), PublishError>,
        took: Duration,
    },
}

/// A reconcile that got as far as a plan.
#[derive(Debug)]
pub struct Reconciliation {
    /// Members of the configured groups.
    pub members: usize,
    pub ended: Ended,
}

impl Reconciliation {
    /// The metrics of a reconcile that decided something (a preview has none). `full`: it covered the whole group
    /// (not one profile), so its completion is the heartbeat.
    pub fn metrics(&self, full: bool) -> Option<MetricSet> {
        let count = |n: usize| n as f64;
        let plan = match &self.ended {
            Ended::Preview { .. } => return None,
            Ended::Blocked { plan, .. } | Ended::Applied { plan, .. } => plan,
        };
        let mut metrics = MetricSet::of(&crate::METRICS);
        metrics.put("Members", count(self.members), Unit::Count);
        let managed = f64::from(plan.managed_profiles);
        metrics.put("ManagedProfiles", managed, Unit::Count);
        let Ended::Applied { report, took, .. } = &self.ended else {
            metrics.put("ReconcileBlocked", 1.0, Unit::Count);
            // Blocked by the brake: profiles no longer follow the group until an admin looks, so no heartbeat.
            if full {
                metrics.put(RUN_COMPLETED, 0.0, Unit::Count);
            }
            return Some(metrics);
        };
        if full {
            metrics.put(RUN_COMPLETED, 1.0, Unit::Count);
        }
        let left = report.retry_later.len() + report.not_reached.len();
        metrics.put(
            "ProfilesCreated",
            count(report.provisioned.len()),
            Unit::Count,
        );
        metrics.put("ProfilesUpdated", count(report.updated.len()), Unit::Count);
        metrics.put(
            "ProfilesDeprovisioned",
            count(report.deprovisioned.len()),
            Unit::Count,
        );
        metrics.put("ActionsFailed", count(report.failed.len()), Unit::Count);
        metrics.put("ActionsLeftForRetry", count(left), Unit::Count);
        metrics.put("ReconcileMs", took.as_millis() as f64, Unit::Milliseconds);
        Some(metrics)
    }
}

/// Desired and actual state, as read.
#[derive(Debug, Clone)]
pub struct Observation {
    pub members: Vec<Member>,
    pub observed: Observed,
    /// User names of the members that have no profile yet.
    pub user_names: HashMap<String, String>,
    /// Display names of the configured groups.
    pub group_names: HashMap<String, String>,
    /// The domain's shared spaces with their tags (the team spaces among them carry provision-users' mark).
    pub shared_spaces: Vec<ExistingSharedSpace>,
}

/// Something that could not be done in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub subject: String,
    pub action: String,
    pub reason: String,
}

fn problem(subject: &str, action: &str, reason: impl Into<String>) -> Problem {
    Problem {
        subject: subject.to_string(),
        action: action.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Updated {
    pub profile_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceCreated {
    pub profile_name: String,
    pub space_name: String,
}

/// The result of one action.
#[derive(Debug, Clone, PartialEq)]
enum ActionResult {
    Provisioned(UserProvisioned, Option<Problem>),
    SharedSpaceReady(SharedSpaceReady),
    SharedSpaceRemoved(SharedSpaceRemoved),
    Updated(Updated),
    SpaceCreated(SpaceCreated),
    Deprovisioned(UserDeprovisioned),
    /// Done by someone else (a concurrent run) or no longer needed.
    AlreadyDone(Problem),
    /// Transient: the next run (or Lambda's retry) does it.
    RetryLater(Problem),
    /// Needs a person; published as Provisioning Failed.
    Failed(Problem),
    /// Not started: too little time left.
    NotReached(Problem),
}

/// What a reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub provisioned: Vec<UserProvisioned>,
    pub updated: Vec<Updated>,
    pub spaces_created: Vec<SpaceCreated>,
    pub deprovisioned: Vec<UserDeprovisioned>,
    #[serde(default)]
    pub shared_spaces_ready: Vec<SharedSpaceReady>,
    #[serde(default)]
    pub shared_spaces_removed: Vec<SharedSpaceRemoved>,
    pub already_done: Vec<Problem>,
    pub retry_later: Vec<Problem>,
    pub failed: Vec<Problem>,
    pub not_reached: Vec<Problem>,
}

impl Report {
    fn add(&mut self, r: ActionResult) {
        match r {
            ActionResult::Provisioned(e, space) => {
                self.provisioned.push(e);
                self.retry_later.extend(space);
            }
            ActionResult::Updated(u) => self.updated.push(u),
            ActionResult::SharedSpaceReady(e) => self.shared_spaces_ready.push(e),
            ActionResult::SharedSpaceRemoved(e) => self.shared_spaces_removed.push(e),
            ActionResult::SpaceCreated(s) => self.spaces_created.push(s),
            ActionResult::Deprovisioned(e) => self.deprovisioned.push(e),
            ActionResult::AlreadyDone(p) => self.already_done.push(p),
            ActionResult::RetryLater(p) => self.retry_later.push(p),
            ActionResult::Failed(p) => self.failed.push(p),
            ActionResult::NotReached(p) => self.not_reached.push(p),
        }
    }

    fn sort(&mut self) {
        self.provisioned
            .sort_by(|a, b| a.user_profile_name.cmp(&b.user_profile_name));
        self.updated
            .sort_by(|a, b| a.profile_name.cmp(&b.profile_name));
        self.spaces_created
            .sort_by(|a, b| a.profile_name.cmp(&b.profile_name));
        self.deprovisioned
            .sort_by(|a, b| a.user_profile_name.cmp(&b.user_profile_name));
        self.shared_spaces_ready
            .sort_by(|a, b| a.space_name.cmp(&b.space_name));
        self.shared_spaces_removed
            .sort_by(|a, b| a.space_name.cmp(&b.space_name));
        for list in [
            &mut self.already_done,
            &mut self.retry_later,
            &mut self.failed,
            &mut self.not_reached,
        ] {
            list.sort_by(|a, b| (&a.subject, &a.action).cmp(&(&b.subject, &b.action)));
        }
    }

    /// Whether everything planned is done (or needs a person): nothing is left for a retry.
    pub fn is_complete(&self) -> bool {
        self.retry_later.is_empty() && self.not_reached.is_empty()
    }

    /// The suite events this report publishes.
    pub fn events(&self, domain_id: &str) -> Vec<SuiteEvent> {
        let mut out: Vec<SuiteEvent> = Vec::new();
        out.extend(self.provisioned.iter().cloned().map(SuiteEvent::from));
        out.extend(self.deprovisioned.iter().cloned().map(SuiteEvent::from));
        out.extend(
            self.shared_spaces_ready
                .iter()
                .cloned()
                .map(SuiteEvent::SharedSpaceReady),
        );
        out.extend(
            self.shared_spaces_removed
                .iter()
                .cloned()
                .map(SuiteEvent::SharedSpaceRemoved),
        );
        for p in self.failed.iter().take(MAX_FAILURE_EVENTS) {
            out.push(
                ProvisioningFailed {
                    domain_id: domain_id.to_string(),
                    user_profile_name: Some(p.subject.clone()),
                    action: p.action.clone(),
                    reason: p.reason.clone(),
                }
                .into(),
            );
        }
        if self.failed.len() > MAX_FAILURE_EVENTS {
            let rest = &self.failed[MAX_FAILURE_EVENTS..];
            out.push(
                ProvisioningFailed {
                    domain_id: domain_id.to_string(),
                    user_profile_name: None,
                    action: "several".to_string(),
                    reason: format!(
                        "{} more failures, e.g. {}: {}",
                        rest.len(),
                        rest[0].subject,
                        rest[0].reason
                    ),
                }
                .into(),
            );
        }
        out
    }

    /// One line for logs and errors.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} provisioned, {} updated, {} spaces created, {} deprovisioned, {} failed, {} to retry, {} not reached",
            self.provisioned.len(),
            self.updated.len(),
            self.spaces_created.len(),
            self.deprovisioned.len(),
            self.failed.len(),
            self.retry_later.len(),
            self.not_reached.len()
        );
        if !self.shared_spaces_ready.is_empty() || !self.shared_spaces_removed.is_empty() {
            s.push_str(&format!(
                ", {} shared spaces ready, {} removed",
                self.shared_spaces_ready.len(),
                self.shared_spaces_removed.len()
            ));
        }
        if let Some(p) = self.retry_later.first().or(self.not_reached.first()) {
            s.push_str(&format!(" (e.g. {} {}: {})", p.action, p.subject, p.reason));
        }
        s
    }
}

/// The plan's actions, run one stream with bounded concurrency.
enum Action<'p> {
    Create(&'p CreateProfile),
    Update(&'p UpdateProfile),
    Space(&'p CreateSpace),
    Deprovision(&'p Deprovision),
    CreateShared(&'p CreateSharedSpace),
    UpdateShared(&'p UpdateSharedSpace),
    RemoveShared(&'p RemoveSharedSpace),
}

impl Action<'_> {
    fn subject_and_name(&self) -> (&str, &'static str) {
        match self {
            Action::Create(c) => (&c.profile_name, "create profile"),
            Action::Update(u) => (&u.profile_name, "update profile"),
            Action::Space(s) => (&s.profile_name, "create private space"),
            Action::Deprovision(d) => (&d.profile_name, "deprovision"),
            Action::CreateShared(c) => (&c.spec.name, "create shared space"),
            Action::UpdateShared(u) => (&u.spec.name, "update shared space"),
            Action::RemoveShared(r) => (&r.name, "remove shared space"),
        }
    }
}

/// A failed AWS call as a result: transient ones are retried later, the rest need a person.
fn from_call(subject: &str, action: &str, e: &AwsCallError) -> ActionResult {
    let p = problem(subject, action, e.to_string());
    match e.class {
        ErrorClass::Retryable => ActionResult::RetryLater(p),
        ErrorClass::NonRetryable => ActionResult::Failed(p),
    }
}

/// `Ok(Err(reason))`: the step could not finish now (busy, still deleting); the next run continues.
type Step<T> = Result<Result<T, String>, AwsCallError>;

pub struct Reconciler<'a, I, S> {
    identity: &'a I,
    studio: &'a S,
    config: &'a Config,
    deadline: Deadline,
}

impl<'a, I: IdentityPort, S: StudioPort> Reconciler<'a, I, S> {
    pub fn new(identity: &'a I, studio: &'a S, config: &'a Config, deadline: Deadline) -> Self {
        Self {
            identity,
            studio,
            config,
            deadline,
        }
    }

    /// The whole reconcile: observe, plan, judge, then preview, stop at the brake, or apply and publish.
    pub async fn run<P: PublishEvents>(
        &self,
        publisher: &P,
        request: &Request,
    ) -> Result<Reconciliation, HandlerError> {
        let started = std::time::Instant::now();
        let observation = match self.observe().await {
            Ok(o) => o,
            Err(e) => {
                let e = self.report_observe_failure(publisher, request.dry_run, e);
                return Err(e.await.into());
            }
        };
        let mut plan = self.plan(&observation, Timestamp::now());
        if let Some(p) = &request.only_profile {
            plan = plan.restrict_to(p);
        }
        let verdict = self.verdict(&plan, request.only_profile.is_some());
        log_plan(&observation, &plan, &verdict);
        let members = observation.members.len();
        let ended = match verdict {
            verdict if request.dry_run => Ended::Preview { plan, verdict },
            Verdict::Blocked { reason } => {
                self.publish_blocked(publisher, &plan, &reason).await?;
                Ended::Blocked { plan, reason }
            }
            Verdict::Proceed => {
                let report = self.apply(&plan, &observation).await;
                let took = started.elapsed();
                let published = self.publish_report(publisher, &report).await;
                Ended::Applied {
                    plan,
                    report,
                    published,
                    took,
                }
            }
        };
        Ok(Reconciliation { members, ended })
    }

    /// A failure to observe that a retry cannot fix is also published (Provisioning Failed), unless in a preview.
    async fn report_observe_failure<P: PublishEvents>(
        &self,
        publisher: &P,
        dry_run: bool,
        e: ObserveError,
    ) -> ObserveError {
        // A transient failure is Lambda's to retry; anything else needs a person.
        if e.class() == ErrorClass::NonRetryable && !dry_run {
            let failed: SuiteEvent = ProvisioningFailed {
                domain_id: self.config.domain_id.clone(),
                user_profile_name: None,
                action: "read groups and profiles".into(),
                reason: e.to_string(),
            }
            .into();
            if let Err(p) = publisher.publish(&[failed]).await {
                tracing::error!(error = %p, "could not publish Provisioning Failed");
            }
        }
        e
    }

    /// An admin naming one profile has decided: the brake guards only unattended runs.
    fn verdict(&self, plan: &Plan, targeted: bool) -> Verdict {
        if targeted {
            return Verdict::Proceed;
        }
        let count = u32::try_from(plan.deprovision.len()).unwrap_or(u32::MAX);
        match self.config.brake.check(count, plan.managed_profiles) {
            Verdict::Proceed => {
                let shared = &plan.shared_spaces;
                let removals = u32::try_from(shared.remove.len()).unwrap_or(u32::MAX);
                self.config
                    .brake
                    .check_shared_spaces(removals, shared.managed)
            }
            blocked => blocked,
        }
    }

    async fn publish_blocked<P: PublishEvents>(
        &self,
        publisher: &P,
        plan: &Plan,
        reason: &str,
    ) -> Result<(), PublishError> {
        tracing::warn!(reason = %reason, "reconcile blocked by the safety brake; nothing changed");
        let blocked: SuiteEvent = ProvisioningBlocked {
            domain_id: self.config.domain_id.clone(),
            would_deprovision: u32::try_from(plan.deprovision.len()).unwrap_or(u32::MAX),
            managed_profiles: plan.managed_profiles,
            reason: reason.to_string(),
            profiles: plan
                .deprovision
                .iter()
                .map(|d| d.profile_name.clone())
                .collect(),
        }
        .into();
        publisher.publish(&[blocked]).await
    }

    /// Publishes what the report did. The changes are made and will not be made again: if publishing fails,
    /// the facts are kept in the log at least.
    async fn publish_report<P: PublishEvents>(
        &self,
        publisher: &P,
        report: &Report,
    ) -> Result<(), PublishError> {
        let events = report.events(&self.config.domain_id);
        tracing::info!(summary = %report.summary(), events = events.len(), "reconcile applied");
        let result = publisher.publish(&events).await;
        if let Err(e) = &result {
            let details: Vec<Value> = events
                .iter()
                .map(|e| serde_json::json!({"detail-type": e.detail_type(), "detail": e.detail()}))
                .collect();
            let details = Value::Array(details);
            tracing::error!(error = %e, events = %details, "suite events not published");
        }
        result
    }

    /// Reads the members of the configured groups and the domain's profiles and spaces, within the working time.
    pub fn observe(&self) -> impl Future<Output = Result<Observation, ObserveError>> + '_ {
        let reading = tokio::time::timeout(
            self.deadline.working_time_left(FINISH_MARGIN),
            self.read_state(),
        );
        reading.map(|r| r.unwrap_or(Err(ObserveError::Deadline)))
    }

    async fn read_state(&self) -> Result<Observation, ObserveError> {
        if !self.studio.domain_exists().await? {
            return Err(ObserveError::DomainNotFound(self.config.domain_id.clone()));
        }
        let (members, group_names) = self.read_groups().await?;
        let observed = Observed {
            profiles: self.read_profiles().await?,
            spaces: self.studio.list_spaces().await?,
        };
        let shared_spaces = self.read_shared_spaces(&observed.spaces).await?;
        let user_names = self
            .resolve_user_names(plan::users_to_resolve(&members, &observed))
            .await?;
        Ok(Observation {
            members,
            observed,
            user_names,
            group_names,
            shared_spaces,
        })
    }

    /// Every shared space with its ARN, app type and tags (a space that vanished meanwhile is left out).
    async fn read_shared_spaces(
        &self,
        spaces: &[SpaceSummary],
    ) -> Result<Vec<ExistingSharedSpace>, AwsCallError> {
        let shared = spaces
            .iter()
            .filter(|s| !s.is_private())
            .map(|s| s.name.clone());
        let mut out: Vec<ExistingSharedSpace> = stream::iter(shared)
            .map(|name| async move {
                let Some(d) = self.studio.describe_space(&name).await? else {
                    return Ok(None);
                };
                let Some(arn) = d.arn.clone() else {
                    return Ok(None);
                };
                let tags = match self.studio.list_tags(&arn).await {
                    Ok(t) => t,
                    Err(e) if e.is(RESOURCE_NOT_FOUND) => return Ok(None),
                    Err(e) => return Err(e),
                };
                Ok(Some(ExistingSharedSpace {
                    name: d.name,
                    arn,
                    status: d.status,
                    app_type: d.app_type,
                    ebs_size_gb: d.ebs_size_gb,
                    tags,
                }))
            })
            .buffer_unordered(self.config.concurrency)
            .try_filter_map(|s| async move { Ok(s) })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The members of the configured groups (priority order) and the groups' display names.
    async fn read_groups(&self) -> Result<(Vec<Member>, HashMap<String, String>), ObserveError> {
        let mut groups = Vec::new();
        let mut group_names = HashMap::new();
        for g in self.config.groups.groups() {
            let name = self
                .identity
                .group_name(&g.group_id)
                .await?
                .ok_or_else(|| ObserveError::GroupNotFound {
                    group_id: g.group_id.clone(),
                    identity_store_id: self.config.identity_store_id.clone(),
                })?;
            group_names.insert(g.group_id.clone(), name);
            groups.push((
                g.group_id.clone(),
                self.identity.group_member_ids(&g.group_id).await?,
            ));
        }
        Ok((plan::desired_members(&groups), group_names))
    }

    /// Every profile of the domain with its tags, by name.
    async fn read_profiles(&self) -> Result<Vec<ExistingProfile>, AwsCallError> {
        let summaries = self.studio.list_profiles().await?;
        let mut profiles: Vec<ExistingProfile> = stream::iter(summaries)
            .map(|s| self.read_profile(s.name))
            .buffer_unordered(self.config.concurrency)
            .try_filter_map(|p| async move { Ok(p) })
            .try_collect()
            .await?;
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(profiles)
    }

    /// The user names of these user ids (users that no longer exist are left out).
    async fn resolve_user_names(
        &self,
        user_ids: Vec<String>,
    ) -> Result<HashMap<String, String>, AwsCallError> {
        stream::iter(user_ids)
            .map(|id| async move {
                let name = self.identity.user_name(&id).await?;
                Ok::<_, AwsCallError>(name.map(|n| (id, n)))
            })
            .buffer_unordered(self.config.concurrency)
            .try_filter_map(|p| async move { Ok(p) })
            .try_collect()
            .await
    }

    /// One profile with its tags; `None` if it vanished while we looked.
    async fn read_profile(&self, name: String) -> Result<Option<ExistingProfile>, AwsCallError> {
        let Some(d) = self.studio.describe_profile(&name).await? else {
            return Ok(None);
        };
        let tags = match self.studio.list_tags(&d.arn).await {
            Ok(t) => t,
            Err(e) if e.is(RESOURCE_NOT_FOUND) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ExistingProfile {
            name: d.name,
            arn: d.arn,
            status: d.status,
            created: d.created,
            sso_user_value: d.sso_user_value,
            home_efs_uid: d.home_efs_uid,
            tags,
        }))
    }

    /// The plan for what was observed.
    pub fn plan(&self, obs: &Observation, now: Timestamp) -> Plan {
        let taken: Vec<String> = obs.observed.spaces.iter().map(|s| s.name.clone()).collect();
        let mut plan = plan::plan(&PlanInput {
            members: &obs.members,
            user_names: &obs.user_names,
            observed: &obs.observed,
            groups: &self.config.groups,
            style: self.config.name_style,
            grace: self.config.grace,
            now,
        });
        plan.shared_spaces = Box::new(shared_spaces::plan(
            &self.config.groups,
            &obs.shared_spaces,
            &taken,
        ));
        plan
    }

    /// Carries the plan out. Every action is idempotent: running the same plan twice converges.
    pub async fn apply(&self, plan: &Plan, obs: &Observation) -> Report {
        let actions: Vec<Action<'_>> = plan
            .create
            .iter()
            .map(Action::Create)
            .chain(plan.update.iter().map(Action::Update))
            .chain(plan.create_space.iter().map(Action::Space))
            .chain(plan.deprovision.iter().map(Action::Deprovision))
            .chain(plan.shared_spaces.create.iter().map(Action::CreateShared))
            .chain(plan.shared_spaces.update.iter().map(Action::UpdateShared))
            .chain(plan.shared_spaces.remove.iter().map(Action::RemoveShared))
            .collect();
        let results: Vec<ActionResult> = stream::iter(actions)
            .map(|a| self.run_action(a, obs))
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let mut report = Report::default();
        for r in results {
            report.add(r);
        }
        report.sort();
        report
    }

    async fn run_action(&self, action: Action<'_>, obs: &Observation) -> ActionResult {
        let (subject, name) = action.subject_and_name();
        if !self.deadline.may_start(START_MARGIN) {
            return ActionResult::NotReached(problem(
                subject,
                name,
                "too little time left in this invocation; the next run does it",
            ));
        }
        let work = async {
            match action {
                Action::Create(c) => self.create(c, obs).await,
                Action::Update(u) => self.update(u).await,
                Action::Space(s) => self.space(s).await,
                Action::Deprovision(d) => self.deprovision(d, &obs.observed.spaces).await,
                Action::CreateShared(c) => self.create_shared(c, obs).await,
                Action::UpdateShared(u) => self.update_shared(u, obs).await,
                Action::RemoveShared(r) => self.remove_shared(r).await,
            }
        };
        match tokio::time::timeout(self.deadline.working_time_left(FINISH_MARGIN), work).await {
            Ok(r) => r,
            Err(_) => ActionResult::RetryLater(problem(
                subject,
                name,
                "cut off by the invocation deadline; the next run continues",
            )),
        }
    }

    fn group(&self, group_id: &str) -> Option<&'a GroupSettings> {
        self.config.groups.get(group_id)
    }

    fn group_label(&self, group_id: &str, obs: &Observation) -> Option<String> {
        self.group(group_id)
            .and_then(|g| g.label.clone())
            .or_else(|| obs.group_names.get(group_id).cloned())
    }

    async fn create(&self, c: &CreateProfile, obs: &Observation) -> ActionResult {
        const ACTION: &str = "create profile";
        let Some(group) = self.group(&c.group_id) else {
            return ActionResult::Failed(problem(&c.profile_name, ACTION, "group not configured"));
        };
        let new = NewProfile {
            name: c.profile_name.clone(),
            sso_user_name: c.user_name.clone(),
            settings: group.profile.clone(),
            tags: profile_tags(c, group),
        };
        match self.studio.create_profile(&new).await {
            Ok(Created::Created) => {}
            Ok(Created::AlreadyExists) => return self.claim_existing(c).await,
            Err(e) => return from_call(&c.profile_name, ACTION, &e),
        }
        let (private_space, space_problem) = match &c.private_space {
            None => (None, None),
            Some(space) => match self
                .ensure_space(&c.profile_name, space, &c.user_id, group)
                .await
            {
                Ok(()) => (Some(space.clone()), None),
                Err(reason) => (
                    None,
                    Some(problem(&c.profile_name, "create private space", reason)),
                ),
            },
        };
        tracing::info!(profile = %c.profile_name, user_id = %c.user_id, group_id = %c.group_id, "user profile created");
        ActionResult::Provisioned(
            UserProvisioned {
                domain_id: self.config.domain_id.clone(),
                user_profile_name: c.profile_name.clone(),
                user_name: c.user_name.clone(),
                user_id: c.user_id.clone(),
                group_id: c.group_id.clone(),
                private_space,
                group_name: self.group_label(&c.group_id, obs),
            },
            space_problem,
        )
    }

    /// CreateUserProfile said the name exists: ours (a concurrent run made it) or somebody else's.
    async fn claim_existing(&self, c: &CreateProfile) -> ActionResult {
        const ACTION: &str = "create profile";
        let owner = async {
            let Some(d) = self.studio.describe_profile(&c.profile_name).await? else {
                return Ok(None);
            };
            let tags = self.studio.list_tags(&d.arn).await?;
            Ok::<_, AwsCallError>(tags.get(TAG_USER_ID).cloned())
        };
        match owner.await {
            Ok(Some(user)) if user == c.user_id => ActionResult::AlreadyDone(problem(
                &c.profile_name,
                ACTION,
                "created by a concurrent run",
            )),
            Ok(_) => ActionResult::RetryLater(problem(
                &c.profile_name,
                ACTION,
                "the name was taken by another profile meanwhile; the next run picks another name",
            )),
            Err(e) => from_call(&c.profile_name, ACTION, &e),
        }
    }

    async fn update(&self, u: &UpdateProfile) -> ActionResult {
        const ACTION: &str = "update profile";
        let Some(group) = self.group(&u.group_id) else {
            return ActionResult::Failed(problem(&u.profile_name, ACTION, "group not configured"));
        };
        match self
            .studio
            .update_profile(&u.profile_name, &group.profile)
            .await
        {
            Ok(Change::Accepted) => {}
            Ok(Change::AlreadyGone) => {
                return ActionResult::AlreadyDone(problem(
                    &u.profile_name,
                    ACTION,
                    "the profile no longer exists",
                ));
            }
            Ok(Change::Busy(why)) => {
                return ActionResult::RetryLater(problem(&u.profile_name, ACTION, why));
            }
            Err(e) => return from_call(&u.profile_name, ACTION, &e),
        }
        let tags: BTreeMap<String, String> = [
            (TAG_GROUP_ID.to_string(), u.group_id.clone()),
            (TAG_SETTINGS.to_string(), group.profile.fingerprint()),
        ]
        .into();
        if let Err(e) = self.studio.add_tags(&u.arn, &tags).await {
            return from_call(&u.profile_name, ACTION, &e);
        }
        tracing::info!(profile = %u.profile_name, reason = %u.reason, "user profile updated");
        ActionResult::Updated(Updated {
            profile_name: u.profile_name.clone(),
            reason: u.reason.clone(),
        })
    }

    async fn space(&self, s: &CreateSpace) -> ActionResult {
        const ACTION: &str = "create private space";
        let Some(group) = self.group(&s.group_id) else {
            return ActionResult::Failed(problem(&s.profile_name, ACTION, "group not configured"));
        };
        match self
            .ensure_space(&s.profile_name, &s.space_name, &s.user_id, group)
            .await
        {
            Ok(()) => ActionResult::SpaceCreated(SpaceCreated {
                profile_name: s.profile_name.clone(),
                space_name: s.space_name.clone(),
            }),
            Err(reason) => ActionResult::RetryLater(problem(&s.profile_name, ACTION, reason)),
        }
    }

    /// Creates the profile's private JupyterLab space once the profile is InService.
    async fn ensure_space(
        &self,
        profile: &str,
        space: &str,
        user_id: &str,
        group: &GroupSettings,
    ) -> Result<(), String> {
        let ready = self
            .wait_until(self.config.app_delete_wait, || async {
                Ok(self
                    .studio
                    .describe_profile(profile)
                    .await?
                    .is_some_and(|p| p.status == "InService"))
            })
            .await
            .map_err(|e| e.to_string())?;
        if !ready {
            return Err(format!(
                "profile {profile} is not InService yet; the next run creates the space"
            ));
        }
        let new = NewSpace {
            name: space.to_string(),
            owner: profile.to_string(),
            display_name: format!("{profile} (private)"),
            instance_type: group.profile.default_instance_type.clone(),
            tags: [
                (TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                (TAG_USER_ID.to_string(), user_id.to_string()),
                (TAG_PROFILE.to_string(), profile.to_string()),
            ]
            .into(),
        };
        match self.studio.create_space(&new).await {
            Ok(Created::Created) => Ok(()),
            Ok(Created::AlreadyExists) => match self.studio.describe_space(space).await {
                Ok(Some(s)) if s.is_owned_by(profile) => Ok(()),
                Ok(_) => Err(format!("space name {space} is taken by another space")),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    fn space_ready(
        &self,
        group_id: &str,
        spec: &crate::settings::SharedSpaceSpec,
        change: &str,
        obs: &Observation,
    ) -> SharedSpaceReady {
        SharedSpaceReady {
            domain_id: self.config.domain_id.clone(),
            space_name: spec.name.clone(),
            app_type: spec.app_type.as_str().to_string(),
            group_id: group_id.to_string(),
            group_name: self.group_label(group_id, obs),
            instance_type: spec.default_instance_type.clone(),
            change: change.to_string(),
        }
    }

    /// A declared team space, created shared, with the mark, its group and its settings' fingerprint.
    async fn create_shared(&self, c: &CreateSharedSpace, obs: &Observation) -> ActionResult {
        const ACTION: &str = "create shared space";
        let tags = shared_spaces::tags(&c.group_id, &c.spec);
        match self.studio.create_shared_space(&c.spec, &tags).await {
            Ok(Created::Created) => {
                tracing::info!(space = %c.spec.name, group = %c.group_id, "team shared space created");
                ActionResult::SharedSpaceReady(self.space_ready(
                    &c.group_id,
                    &c.spec,
                    "created",
                    obs,
                ))
            }
            // A concurrent run created it (the next run sees it, marked, and leaves it).
            Ok(Created::AlreadyExists) => ActionResult::AlreadyDone(problem(
                &c.spec.name,
                ACTION,
                "exists already (a concurrent run)",
            )),
            Err(e) => from_call(&c.spec.name, ACTION, &e),
        }
    }

    /// New declared settings, then the marks that record them (a failure between the two only repeats the update).
    async fn update_shared(&self, u: &UpdateSharedSpace, obs: &Observation) -> ActionResult {
        const ACTION: &str = "update shared space";
        let updated = match self.studio.update_shared_space(&u.spec).await {
            Ok(c) => c,
            Err(e) => return from_call(&u.spec.name, ACTION, &e),
        };
        match updated {
            Change::Accepted => {}
            Change::AlreadyGone => {
                return ActionResult::AlreadyDone(problem(&u.spec.name, ACTION, "gone meanwhile"));
            }
            Change::Busy(why) => {
                return ActionResult::RetryLater(problem(&u.spec.name, ACTION, why));
            }
        }
        if let Err(e) = self
            .studio
            .add_tags(&u.arn, &shared_spaces::tags(&u.group_id, &u.spec))
            .await
        {
            return from_call(&u.spec.name, ACTION, &e);
        }
        tracing::info!(space = %u.spec.name, reason = %u.reason, "team shared space updated");
        ActionResult::SharedSpaceReady(self.space_ready(&u.group_id, &u.spec, "updated", obs))
    }

    /// A team space no group declares: its apps first, then the space; busy → the next run.
    async fn remove_shared(&self, r: &RemoveSharedSpace) -> ActionResult {
        const ACTION: &str = "remove shared space";
        let step = async {
            let apps = self
                .studio
                .list_apps(&AppOwner::Space(r.name.clone()))
                .await?;
            let apps_deleted = match self.delete_apps(apps).await? {
                Ok(n) => n,
                Err(reason) => return Ok(Err(reason)),
            };
            match self.studio.delete_space(&r.name).await? {
                Change::Accepted | Change::AlreadyGone => Ok(Ok(apps_deleted)),
                Change::Busy(why) => Ok(Err(why)),
            }
        };
        let done: Step<u32> = step.await;
        match done {
            Ok(Ok(apps_deleted)) => {
                tracing::info!(space = %r.name, apps_deleted, "team shared space removed");
                ActionResult::SharedSpaceRemoved(SharedSpaceRemoved {
                    domain_id: self.config.domain_id.clone(),
                    space_name: r.name.clone(),
                    group_id: r.group_id.clone(),
                    apps_deleted,
                })
            }
            Ok(Err(reason)) => ActionResult::RetryLater(problem(&r.name, ACTION, reason)),
            Err(e) => from_call(&r.name, ACTION, &e),
        }
    }

    async fn deprovision(&self, d: &Deprovision, spaces: &[SpaceSummary]) -> ActionResult {
        const ACTION: &str = "deprovision";
        match self.try_deprovision(d, spaces).await {
            Ok(r) => r,
            Err(e) => from_call(&d.profile_name, ACTION, &e),
        }
    }

    /// Apps first (the user's and their private spaces'), then the private spaces, then the profile.
    /// Shared spaces the user owns are team property: they stop the deprovision and are reported.
    async fn try_deprovision(
        &self,
        d: &Deprovision,
        spaces: &[SpaceSummary],
    ) -> Result<ActionResult, AwsCallError> {
        const ACTION: &str = "deprovision";
        let profile = d.profile_name.as_str();
        let (private, shared): (Vec<&SpaceSummary>, Vec<&SpaceSummary>) = spaces
            .iter()
            .filter(|s| s.is_owned_by(profile))
            .partition(|s| s.is_private());
        let later = |reason: String| Ok(ActionResult::RetryLater(problem(profile, ACTION, reason)));

        let apps_deleted = match self.delete_user_apps(profile, &private).await? {
            Ok(n) => n,
            Err(reason) => return later(reason),
        };
        if !shared.is_empty() {
            let names: Vec<&str> = shared.iter().map(|s| s.name.as_str()).collect();
            return Ok(ActionResult::Failed(problem(
                profile,
                ACTION,
                format!(
                    "owns shared space(s) {}: transfer their ownership or delete them; the user's apps are stopped and the next run deletes the profile",
                    names.join(", ")
                ),
            )));
        }
        let spaces_deleted = match self.delete_private_spaces(&private).await? {
            Ok(n) => n,
            Err(reason) => return later(reason),
        };
        match self.studio.delete_profile(profile).await? {
            Change::Accepted | Change::AlreadyGone => {}
            Change::Busy(why) => return later(why),
        }
        tracing::info!(
            profile,
            apps_deleted,
            spaces_deleted,
            "user profile deprovisioned"
        );
        Ok(ActionResult::Deprovisioned(UserDeprovisioned {
            domain_id: self.config.domain_id.clone(),
            user_profile_name: profile.to_string(),
            user_id: d.user_id.clone(),
            apps_deleted,
            spaces_deleted,
            user_name: d.user_name.clone(),
            home_efs_file_system_uid: d.home_efs_uid.clone(),
        }))
    }

    /// Deletes the apps of the profile and of its private spaces, and waits until they are gone.
    async fn delete_user_apps(&self, profile: &str, private: &[&SpaceSummary]) -> Step<u32> {
        let mut apps = self
            .studio
            .list_apps(&AppOwner::User(profile.to_string()))
            .await?;
        for s in private {
            apps.extend(
                self.studio
                    .list_apps(&AppOwner::Space(s.name.clone()))
                    .await?,
            );
        }
        self.delete_apps(apps).await
    }

    /// Deletes the private spaces and waits (bounded) until they are gone; answers how many were deleted.
    async fn delete_private_spaces(&self, private: &[&SpaceSummary]) -> Step<u32> {
        let mut spaces_deleted = 0;
        for s in private {
            match self.studio.delete_space(&s.name).await? {
                Change::Accepted => spaces_deleted += 1,
                Change::AlreadyGone => {}
                Change::Busy(why) => return Ok(Err(format!("space {}: {why}", s.name))),
            }
        }
        let names: Vec<String> = private.iter().map(|s| s.name.clone()).collect();
        let gone = self
            .wait_until(self.config.app_delete_wait, || async {
                for n in &names {
                    if self.studio.describe_space(n).await?.is_some() {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
            .await?;
        if !gone {
            return Ok(Err(format!(
                "private space(s) {} still being deleted after {}s",
                names.join(", "),
                self.config.app_delete_wait.as_secs()
            )));
        }
        Ok(Ok(spaces_deleted))
    }

    /// Deletes every app that is not gone yet and waits (bounded) until all are gone. Pending apps are
    /// deleted once they are up. `Ok(Err(reason))` when the wait ran out.
    async fn delete_apps(&self, apps: Vec<AppRef>) -> Step<u32> {
        let until = self.wait_limit(self.config.app_delete_wait);
        let mut requested: HashSet<String> = HashSet::new();
        let mut pending: Vec<AppRef> = apps.into_iter().filter(|a| a.status != "Deleted").collect();
        let mut delay = FIRST_POLL;
        loop {
            let waiting = self.request_deletes(pending, &mut requested).await?;
            let refreshed = self.still_there(waiting).await?;
            if refreshed.is_empty() {
                return Ok(Ok(u32::try_from(requested.len()).unwrap_or(u32::MAX)));
            }
            if Instant::now() + delay > until {
                let names: Vec<String> = refreshed
                    .iter()
                    .map(|a| format!("{a} ({})", a.status))
                    .collect();
                return Ok(Err(format!(
                    "{} app(s) not gone after {}s: {}",
                    refreshed.len(),
                    self.config.app_delete_wait.as_secs(),
                    names.join(", ")
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
            pending = refreshed;
        }
    }

    /// Asks to delete the apps that are up (InService or Failed); answers the apps to look at again.
    async fn request_deletes(
        &self,
        pending: Vec<AppRef>,
        requested: &mut HashSet<String>,
    ) -> Result<Vec<AppRef>, AwsCallError> {
        let mut waiting = Vec::new();
        for mut app in pending {
            match app.status.as_str() {
                "Deleted" => {}
                "InService" | "Failed" => match self.studio.delete_app(&app).await? {
                    Change::Accepted => {
                        requested.insert(app.to_string());
                        app.status = "Deleting".into();
                        waiting.push(app);
                    }
                    Change::AlreadyGone => {}
                    Change::Busy(_) => waiting.push(app),
                },
                // Pending, Deleting, or a status we do not know: look again.
                _ => waiting.push(app),
            }
        }
        Ok(waiting)
    }

    /// The apps that still exist, with their current status.
    async fn still_there(&self, apps: Vec<AppRef>) -> Result<Vec<AppRef>, AwsCallError> {
        let mut refreshed = Vec::new();
        for mut app in apps {
            match self.studio.describe_app(&app).await? {
                None => {}
                Some(s) if s == "Deleted" => {}
                Some(s) => {
                    app.status = s;
                    refreshed.push(app);
                }
            }
        }
        Ok(refreshed)
    }

    /// When a wait of `limit` must end: at the limit, or earlier where the invocation's working time ends.
    fn wait_limit(&self, limit: Duration) -> Instant {
        Instant::now() + limit.min(self.deadline.working_time_left(FINISH_MARGIN))
    }

    /// Polls `check` with backoff until it says true or `limit` (or the deadline) is reached.
    async fn wait_until<F, Fut>(&self, limit: Duration, mut check: F) -> Result<bool, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, AwsCallError>>,
    {
        let until = self.wait_limit(limit);
        let mut delay = FIRST_POLL;
        loop {
            if check().await? {
                return Ok(true);
            }
            if Instant::now() + delay > until {
                return Ok(false);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }
}

/// The tags a new profile carries: who it is for, which group, and the settings it was made with.
fn profile_tags(c: &CreateProfile, group: &GroupSettings) -> BTreeMap<String, String> {
    [
        (TAG_MANAGED_BY, MANAGED_BY.to_string()),
        (TAG_USER_ID, c.user_id.clone()),
        (TAG_GROUP_ID, c.group_id.clone()),
        (TAG_SETTINGS, group.profile.fingerprint()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn log_plan(observation: &Observation, plan: &Plan, verdict: &Verdict) {
    tracing::info!(
        members = observation.members.len(),
        managed_profiles = plan.managed_profiles,
        create = plan.create.len(),
        update = plan.update.len(),
        create_space = plan.create_space.len(),
        deprovision = plan.deprovision.len(),
        skipped = plan.skipped.len(),
        unchanged = plan.unchanged,
        brake = ?verdict,
        "plan"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_applied_reconcile_beats_the_heart_and_a_blocked_one_does_not() {
        let applied = Reconciliation {
            members: 3,
            ended: Ended::Applied {
                plan: Plan::default(),
                report: Report::default(),
                published: Ok(()),
                took: Duration::from_millis(5),
            },
        };
        let emf = applied.metrics(true).unwrap().to_emf(0);
        assert_eq!(emf[RUN_COMPLETED], 1.0);
        let targeted = applied.metrics(false).unwrap().to_emf(0);
        assert!(
            targeted.get(RUN_COMPLETED).is_none(),
            "one profile is not the group"
        );
        let blocked = Reconciliation {
            members: 3,
            ended: Ended::Blocked {
                plan: Plan::default(),
                reason: "brake".into(),
            },
        };
        assert_eq!(blocked.metrics(true).unwrap().to_emf(0)[RUN_COMPLETED], 0.0);
    }

    fn p(subject: &str) -> Problem {
        problem(subject, "create profile", "ValidationException: bad role")
    }

    #[test]
    fn failure_events_are_capped_with_a_summary() {
        let report = Report {
            failed: (0..13).map(|i| p(&format!("user-{i:02}"))).collect(),
            ..Report::default()
        };
        let events = report.events("d-1");
        assert_eq!(events.len(), MAX_FAILURE_EVENTS + 1);
        let SuiteEvent::ProvisioningFailed(last) = events.last().unwrap() else {
            panic!("{events:?}")
        };
        assert_eq!(last.user_profile_name, None);
        assert!(
            last.reason.starts_with("3 more failures, e.g. user-10"),
            "{}",
            last.reason
        );
        assert!(report.is_complete());
    }

    #[test]
    fn retry_and_not_reached_make_a_report_incomplete() {
        let mut r = Report::default();
        r.add(ActionResult::NotReached(p("a")));
        assert!(!r.is_complete());
        assert!(
            r.summary().contains("1 not reached (e.g. create profile a"),
            "{}",
            r.summary()
        );
        let mut r = Report::default();
        r.add(ActionResult::Provisioned(
            UserProvisioned {
                domain_id: "d".into(),
                user_profile_name: "a".into(),
                user_name: "a".into(),
                user_id: "u".into(),
                group_id: "g".into(),
                private_space: None,
                group_name: None,
            },
            Some(p("a")),
        ));
        assert_eq!(r.provisioned.len(), 1);
        assert!(!r.is_complete());
    }

    #[test]
    fn failed_calls_split_by_class() {
        let e = AwsCallError::service("CreateUserProfile", "ThrottlingException", "slow down");
        assert_eq!(e.class, ErrorClass::Retryable);
        assert!(matches!(
            from_call("a", "x", &e),
            ActionResult::RetryLater(_)
        ));
        let e = AwsCallError {
            class: ErrorClass::NonRetryable,
            ..e
        };
        assert!(matches!(from_call("a", "x", &e), ActionResult::Failed(_)));
    }

    #[test]
    fn the_margins_are_kept_whole_on_long_deadlines_and_leave_work_time_on_short_ones() {
        // Whole milliseconds, as the Lambda context gives them.
        let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
        let ms = |d: Duration| (now + d).as_millisecond() as u64;
        // Lambda's 15 minutes: both margins whole, as before the shared deadline.
        let long = Deadline::from_millis(ms(Duration::from_secs(900)), now);
        assert_eq!(long.margin(START_MARGIN), START_MARGIN);
        assert_eq!(long.margin(FINISH_MARGIN), FINISH_MARGIN);
        assert!(long.may_start(START_MARGIN));
        // `cargo lambda watch` gives 30 s: a fixed 20 s start margin would leave 10 s; a quarter (7.5 s) is kept.
        let short = Deadline::from_millis(ms(Duration::from_secs(30)), now);
        assert_eq!(short.margin(START_MARGIN), Duration::from_millis(7_500));
        assert!(short.may_start(START_MARGIN));
        // 5 s left of 2 minutes given: no action starts.
        let late =
            Deadline::from_millis(ms(Duration::from_secs(5)), now - Duration::from_secs(115));
        assert!(!late.may_start(START_MARGIN));
        assert_eq!(late.working_time_left(FINISH_MARGIN), Duration::ZERO);
    }
}
