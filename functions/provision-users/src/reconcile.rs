//! The reconcile: reads the configured groups and the domain through the ports, plans (`plan.rs`), and carries
//! the plan out with bounded concurrency inside the invocation's deadline — creating profiles (and private
//! spaces), updating settings, and deprovisioning (apps, then private spaces, then the profile).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use serde::Serialize;
use studio_ops_shared::events::suite::{
    ProvisioningFailed, SuiteEvent, UserDeprovisioned, UserProvisioned,
};
use studio_ops_shared::{ErrorClass, Failure};
use tokio::time::Instant;

use crate::config::Config;
use crate::plan::{
    self, CreateProfile, CreateSpace, Deprovision, ExistingProfile, MANAGED_BY, Member, Observed,
    Plan, PlanInput, TAG_GROUP_ID, TAG_MANAGED_BY, TAG_PROFILE, TAG_SETTINGS, TAG_USER_ID,
    UpdateProfile,
};
use crate::ports::{
    AppOwner, AppRef, Change, Created, IdentityPort, NewProfile, NewSpace, PortError,
    RESOURCE_NOT_FOUND, SpaceSummary, StudioPort,
};
use crate::settings::GroupSettings;

/// Time kept free at the end of an invocation to publish events and answer.
pub const FINISH_MARGIN: Duration = Duration::from_secs(10);
/// No action is started with less than this left before the deadline.
pub const START_MARGIN: Duration = Duration::from_secs(20);
/// Without a deadline from the runtime, assume Lambda's maximum.
const NO_DEADLINE: Duration = Duration::from_secs(900);
/// Polling while waiting for apps, spaces and profiles to settle.
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(5);
/// At most this many individual Provisioning Failed events per run; the rest are summed up in one.
const MAX_FAILURE_EVENTS: usize = 10;

/// When the invocation must have answered.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// From the Lambda context (`deadline` is milliseconds since the epoch; 0 when unknown).
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        if context.deadline == 0 {
            return Self::after(NO_DEADLINE);
        }
        let left = context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Self::after(left)
    }

    pub fn after(left: Duration) -> Self {
        Self {
            at: Instant::now() + left,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The deadline on the wall clock (what a lease that lapses with this invocation stores).
    pub fn wall_clock(&self) -> jiff::Timestamp {
        jiff::Timestamp::now() + self.remaining()
    }

    /// The moment work must stop so that there is time to publish and answer.
    fn hard_stop(&self) -> Instant {
        self.at.checked_sub(FINISH_MARGIN).unwrap_or(self.at)
    }
}

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
    Port(#[from] PortError),
}

impl Failure for ObserveError {
    fn class(&self) -> ErrorClass {
        match self {
            ObserveError::GroupNotFound { .. } | ObserveError::DomainNotFound(_) => {
                ErrorClass::NonRetryable
            }
            ObserveError::Deadline => ErrorClass::Retryable,
            ObserveError::Port(e) => e.class,
        }
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
}

/// Something that could not be done in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Updated {
    pub profile_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceCreated {
    pub profile_name: String,
    pub space_name: String,
}

/// The result of one action.
#[derive(Debug, Clone, PartialEq)]
enum ActionResult {
    Provisioned(UserProvisioned, Option<Problem>),
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub provisioned: Vec<UserProvisioned>,
    pub updated: Vec<Updated>,
    pub spaces_created: Vec<SpaceCreated>,
    pub deprovisioned: Vec<UserDeprovisioned>,
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
}

impl Action<'_> {
    fn subject_and_name(&self) -> (&str, &'static str) {
        match self {
            Action::Create(c) => (&c.profile_name, "create profile"),
            Action::Update(u) => (&u.profile_name, "update profile"),
            Action::Space(s) => (&s.profile_name, "create private space"),
            Action::Deprovision(d) => (&d.profile_name, "deprovision"),
        }
    }
}

/// A PortError as a result: transient ones are retried later, the rest need a person.
fn from_port(subject: &str, action: &str, e: &PortError) -> ActionResult {
    let p = problem(subject, action, e.to_string());
    match e.class {
        ErrorClass::Retryable => ActionResult::RetryLater(p),
        ErrorClass::NonRetryable => ActionResult::Failed(p),
    }
}

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

    /// Reads the members of the configured groups and the domain's profiles and spaces.
    pub async fn observe(&self) -> Result<Observation, ObserveError> {
        tokio::time::timeout_at(self.deadline.hard_stop(), self.read_state())
            .await
            .unwrap_or(Err(ObserveError::Deadline))
    }

    async fn read_state(&self) -> Result<Observation, ObserveError> {
        if !self.studio.domain_exists().await? {
            return Err(ObserveError::DomainNotFound(self.config.domain_id.clone()));
        }
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
        let members = plan::desired_members(&groups);

        let summaries = self.studio.list_profiles().await?;
        let mut profiles: Vec<ExistingProfile> = stream::iter(summaries)
            .map(|s| self.read_profile(s.name))
            .buffer_unordered(self.config.concurrency)
            .try_filter_map(|p| async move { Ok(p) })
            .try_collect()
            .await?;
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        let observed = Observed {
            profiles,
            spaces: self.studio.list_spaces().await?,
        };

        let to_resolve = plan::users_to_resolve(&members, &observed);
        let user_names: HashMap<String, String> = stream::iter(to_resolve)
            .map(|id| async move {
                let name = self.identity.user_name(&id).await?;
                Ok::<_, PortError>(name.map(|n| (id, n)))
            })
            .buffer_unordered(self.config.concurrency)
            .try_filter_map(|p| async move { Ok(p) })
            .try_collect()
            .await?;
        Ok(Observation {
            members,
            observed,
            user_names,
            group_names,
        })
    }

    /// One profile with its tags; `None` if it vanished while we looked.
    async fn read_profile(&self, name: String) -> Result<Option<ExistingProfile>, PortError> {
        let Some(d) = self.studio.describe_profile(&name).await? else {
            return Ok(None);
        };
        let tags = match self.studio.list_tags(&d.arn).await {
            Ok(t) => t,
            Err(e) if e.code.as_deref() == Some(RESOURCE_NOT_FOUND) => return Ok(None),
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
        plan::plan(&PlanInput {
            members: &obs.members,
            user_names: &obs.user_names,
            observed: &obs.observed,
            groups: &self.config.groups,
            style: self.config.name_style,
            grace: self.config.grace,
            now,
        })
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
            .collect();
        let results: Vec<ActionResult> = stream::iter(actions)
            .map(|a| self.run(a, obs))
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

    async fn run(&self, action: Action<'_>, obs: &Observation) -> ActionResult {
        let (subject, name) = action.subject_and_name();
        if self.deadline.remaining() < START_MARGIN {
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
            }
        };
        match tokio::time::timeout_at(self.deadline.hard_stop(), work).await {
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
        let tags: BTreeMap<String, String> = [
            (TAG_MANAGED_BY, MANAGED_BY.to_string()),
            (TAG_USER_ID, c.user_id.clone()),
            (TAG_GROUP_ID, c.group_id.clone()),
            (TAG_SETTINGS, group.profile.fingerprint()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let new = NewProfile {
            name: c.profile_name.clone(),
            sso_user_name: c.user_name.clone(),
            settings: group.profile.clone(),
            tags,
        };
        match self.studio.create_profile(&new).await {
            Ok(Created::Created) => {}
            Ok(Created::AlreadyExists) => return self.claim_existing(c).await,
            Err(e) => return from_port(&c.profile_name, ACTION, &e),
        }
        let mut private_space = None;
        let mut space_problem = None;
        if let Some(space) = &c.private_space {
            match self
                .ensure_space(&c.profile_name, space, &c.user_id, group)
                .await
            {
                Ok(()) => private_space = Some(space.clone()),
                Err(reason) => {
                    space_problem = Some(problem(&c.profile_name, "create private space", reason))
                }
            }
        }
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
            Ok::<_, PortError>(tags.get(TAG_USER_ID).cloned())
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
            Err(e) => from_port(&c.profile_name, ACTION, &e),
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
            Err(e) => return from_port(&u.profile_name, ACTION, &e),
        }
        let tags: BTreeMap<String, String> = [
            (TAG_GROUP_ID.to_string(), u.group_id.clone()),
            (TAG_SETTINGS.to_string(), group.profile.fingerprint()),
        ]
        .into();
        if let Err(e) = self.studio.add_tags(&u.arn, &tags).await {
            return from_port(&u.profile_name, ACTION, &e);
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

    async fn deprovision(&self, d: &Deprovision, spaces: &[SpaceSummary]) -> ActionResult {
        const ACTION: &str = "deprovision";
        match self.try_deprovision(d, spaces).await {
            Ok(r) => r,
            Err(e) => from_port(&d.profile_name, ACTION, &e),
        }
    }

    /// Apps first (the user's and their private spaces'), then the private spaces, then the profile.
    /// Shared spaces the user owns are team property: they stop the deprovision and are reported.
    async fn try_deprovision(
        &self,
        d: &Deprovision,
        spaces: &[SpaceSummary],
    ) -> Result<ActionResult, PortError> {
        const ACTION: &str = "deprovision";
        let profile = d.profile_name.as_str();
        let (private, shared): (Vec<&SpaceSummary>, Vec<&SpaceSummary>) = spaces
            .iter()
            .filter(|s| s.is_owned_by(profile))
            .partition(|s| s.is_private());

        let mut apps = self
            .studio
            .list_apps(&AppOwner::User(profile.to_string()))
            .await?;
        for s in &private {
            apps.extend(
                self.studio
                    .list_apps(&AppOwner::Space(s.name.clone()))
                    .await?,
            );
        }
        let apps_deleted = match self.delete_apps(apps).await? {
            Ok(n) => n,
            Err(reason) => return Ok(ActionResult::RetryLater(problem(profile, ACTION, reason))),
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

        let mut spaces_deleted = 0;
        for s in &private {
            match self.studio.delete_space(&s.name).await? {
                Change::Accepted => spaces_deleted += 1,
                Change::AlreadyGone => {}
                Change::Busy(why) => {
                    return Ok(ActionResult::RetryLater(problem(
                        profile,
                        ACTION,
                        format!("space {}: {why}", s.name),
                    )));
                }
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
            return Ok(ActionResult::RetryLater(problem(
                profile,
                ACTION,
                format!(
                    "private space(s) {} still being deleted after {}s",
                    names.join(", "),
                    self.config.app_delete_wait.as_secs()
                ),
            )));
        }

        match self.studio.delete_profile(profile).await? {
            Change::Accepted | Change::AlreadyGone => {}
            Change::Busy(why) => {
                return Ok(ActionResult::RetryLater(problem(profile, ACTION, why)));
            }
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

    /// Deletes every app that is not gone yet and waits (bounded) until all are gone. Pending apps are
    /// deleted once they are up. `Ok(Err(reason))` when the wait ran out.
    async fn delete_apps(&self, apps: Vec<AppRef>) -> Result<Result<u32, String>, PortError> {
        let until = self.wait_limit(self.config.app_delete_wait);
        let mut requested: HashSet<String> = HashSet::new();
        let mut pending: Vec<AppRef> = apps.into_iter().filter(|a| a.status != "Deleted").collect();
        let mut delay = FIRST_POLL;
        loop {
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
            let mut refreshed = Vec::new();
            for mut app in waiting {
                match self.studio.describe_app(&app).await? {
                    None => {}
                    Some(s) if s == "Deleted" => {}
                    Some(s) => {
                        app.status = s;
                        refreshed.push(app);
                    }
                }
            }
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

    fn wait_limit(&self, limit: Duration) -> Instant {
        (Instant::now() + limit).min(self.deadline.hard_stop())
    }

    /// Polls `check` with backoff until it says true or `limit` (or the deadline) is reached.
    async fn wait_until<F, Fut>(&self, limit: Duration, mut check: F) -> Result<bool, PortError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, PortError>>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn port_errors_split_by_class() {
        let e = PortError {
            operation: "CreateUserProfile",
            class: ErrorClass::Retryable,
            code: Some("ThrottlingException".into()),
            message: "slow down".into(),
        };
        assert!(matches!(
            from_port("a", "x", &e),
            ActionResult::RetryLater(_)
        ));
        let e = PortError {
            class: ErrorClass::NonRetryable,
            ..e
        };
        assert!(matches!(from_port("a", "x", &e), ActionResult::Failed(_)));
    }

    #[test]
    fn deadline_from_context() {
        let mut ctx = lambda_runtime::Context::default();
        assert!(Deadline::from_context(&ctx).remaining() > Duration::from_secs(800));
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        ctx.deadline = in_a_minute
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = Deadline::from_context(&ctx).remaining();
        assert!(
            left <= Duration::from_secs(60) && left > Duration::from_secs(55),
            "{left:?}"
        );
        ctx.deadline = 1;
        assert_eq!(Deadline::from_context(&ctx).remaining(), Duration::ZERO);
    }
}
