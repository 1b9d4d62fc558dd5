//! The suite's own events on its custom bus (source `studio-ops`): one detail-type per fact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EventError;

/// The `source` of every event the suite publishes (custom sources must not start with `aws.`).
pub const SOURCE: &str = "studio-ops";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserProvisioned {
    pub domain_id: String,
    pub user_profile_name: String,
    pub user_name: String,
    pub user_id: String,
    pub group_id: String,
    #[serde(default)]
    pub private_space: Option<String>,
    /// The group's display name (or its configured label), for people.
    #[serde(default)]
    pub group_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserDeprovisioned {
    pub domain_id: String,
    pub user_profile_name: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub apps_deleted: u32,
    #[serde(default)]
    pub spaces_deleted: u32,
    /// The Identity Center user name the profile signed in with.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The user's directory on the domain's EFS volume, which deprovisioning keeps.
    #[serde(default)]
    pub home_efs_file_system_uid: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningBlocked {
    pub domain_id: String,
    pub would_deprovision: u32,
    pub managed_profiles: u32,
    pub reason: String,
    #[serde(default)]
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningFailed {
    pub domain_id: String,
    #[serde(default)]
    pub user_profile_name: Option<String>,
    pub action: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppIdleWarning {
    pub domain_id: String,
    /// The user profile concerned (the owner of the app or of its private space).
    #[serde(default)]
    pub user_profile_name: Option<String>,
    #[serde(default)]
    pub space_name: Option<String>,
    pub app_type: String,
    pub app_name: String,
    pub instance_type: String,
    pub idle_minutes: u64,
    pub stops_at: String,
    pub reason: String,
    #[serde(default)]
    pub hourly_cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppStopped {
    pub domain_id: String,
    #[serde(default)]
    pub user_profile_name: Option<String>,
    #[serde(default)]
    pub space_name: Option<String>,
    pub app_type: String,
    pub app_name: String,
    pub instance_type: String,
    pub idle_minutes: u64,
    pub reason: String,
    #[serde(default)]
    pub hourly_cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdleSweepCompleted {
    pub dry_run: bool,
    pub scanned: u32,
    #[serde(default)]
    pub skipped: BTreeMap<String, u32>,
    pub warned: u32,
    pub stopped: u32,
    pub failed: u32,
    #[serde(default)]
    pub not_reached: u32,
    pub estimated_hourly_savings_usd: f64,
    /// Instance types of warned or stopped apps missing from the price table (their savings count zero).
    #[serde(default)]
    pub unpriced_instance_types: Vec<String>,
    /// Domains whose apps could not be listed in full (only the apps of pages read are in `scanned`).
    #[serde(default)]
    pub failed_domains: Vec<String>,
    /// Apps decided on (from a reading or the sweep state); absent from older senders.
    #[serde(default)]
    pub examined: u32,
    /// The longest run of sweeps some app has now gone without being examined (2 or more: the sweep cannot keep up).
    #[serde(default)]
    pub apps_not_examined_for_sweeps: u32,
    /// Apps not examined for two sweeps or more in a row.
    #[serde(default)]
    pub apps_behind: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrainingStarted {
    pub model: String,
    pub training_job_name: String,
    pub instance_type: String,
    pub instance_count: u32,
    pub repository: String,
    pub branch: String,
    pub commit_id: String,
    /// The commit's author (e-mail when known).
    #[serde(default)]
    pub author: Option<String>,
    /// The Experiments experiment the run belongs to (the trial is named like the job).
    #[serde(default)]
    pub experiment: Option<String>,
    /// The training image.
    #[serde(default)]
    pub image: Option<String>,
    /// Whether managed spot training was asked for.
    #[serde(default)]
    pub spot: bool,
    /// The cost guard's worst case for the job in USD; None when the instance type has no known price (and the
    /// administrator allows unknown prices).
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// How that worst case is made: count x instance type x hours at the hourly price, with the price's source.
    #[serde(default)]
    pub cost_basis: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRejected {
    pub repository: String,
    pub branch: String,
    pub commit_id: String,
    /// The file at fault (a manifest, or the models folder when a push changes too many models).
    pub file: String,
    #[serde(default)]
    pub line: Option<u32>,
    pub reason: String,
    /// Whom the rejection is addressed to: the commit's author (e-mail when known).
    #[serde(default)]
    pub author: Option<String>,
    /// The model concerned, when the rejection is about one model.
    #[serde(default)]
    pub model: Option<String>,
    /// Who pushed (the session name of the pusher's role, e.g. an SSO user's e-mail).
    #[serde(default)]
    pub pushed_by: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrainingFailed {
    pub model: String,
    pub training_job_name: String,
    /// `Failed` or `Stopped`.
    pub status: String,
    pub failure_reason: String,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelRegistered {
    pub model: String,
    pub model_package_group_name: String,
    pub model_package_arn: String,
    pub training_job_name: String,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The version number in the group.
    #[serde(default)]
    pub model_package_version: Option<i32>,
    /// Always `PendingManualApproval` when studio-ops registers a version.
    #[serde(default)]
    pub approval_status: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    /// The MLflow run that trained the version, and its page in the tracking server's UI (when known).
    #[serde(default)]
    pub mlflow_run_id: Option<String>,
    #[serde(default)]
    pub mlflow_run_url: Option<String>,
}

/// A team shared space a group declares is ready: created, or given its changed settings (provision-users).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SharedSpaceReady {
    pub domain_id: String,
    pub space_name: String,
    /// `JupyterLab` or `CodeEditor`.
    pub app_type: String,
    pub group_id: String,
    /// The group's label or display name, when known.
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
    /// `created` or `updated`.
    pub change: String,
}

/// A team shared space no group declares any more was removed, its apps first (provision-users).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SharedSpaceRemoved {
    pub domain_id: String,
    pub space_name: String,
    pub group_id: String,
    #[serde(default)]
    pub apps_deleted: u32,
}

/// The hourly catch-up found a branch ahead of the last push train-on-push evaluated (a push event CodeCommit
/// delivered late or never) and trained what it left behind.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PushCaughtUp {
    pub repository: String,
    pub branch: String,
    /// The head evaluated before; None for a branch created since the catch-up's starting point.
    #[serde(default)]
    pub from_commit: Option<String>,
    /// The branch's head, now evaluated.
    pub to_commit: String,
    /// The jobs started for the models the missed pushes changed.
    #[serde(default)]
    pub started: Vec<String>,
    /// The models whose manifests were refused (each refusal also went to its committer as Training Rejected).
    #[serde(default)]
    pub rejected: Vec<String>,
    /// The head commit's author (e-mail when known).
    #[serde(default)]
    pub author: Option<String>,
}

/// A user's (or a shared space's) spend against its monthly budget (idle-shutdown, docs/cost.md): `approaching`
/// (the warning threshold crossed), `exceeded` (the budget reached: the running apps stop at `stopsAt` unless an
/// admin raises the budget or grants an extension), `enforced` (apps stopped for the budget).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetAlert {
    pub domain_id: String,
    /// `approaching`, `exceeded` or `enforced`.
    pub level: String,
    /// The user profile the budget belongs to (absent for a shared space's budget).
    #[serde(default)]
    pub user_profile_name: Option<String>,
    /// The shared space the budget belongs to, if it is a space's.
    #[serde(default)]
    pub space_name: Option<String>,
    /// `2026-12`.
    pub month: String,
    pub budget_usd: f64,
    pub spent_usd: f64,
    /// Spent so far plus what the running apps cost until the month ends, if they keep running.
    pub projected_usd: f64,
    /// What the running apps cost per hour.
    #[serde(default)]
    pub hourly_cost_usd: f64,
    /// `exceeded`: when the running apps are stopped.
    #[serde(default)]
    pub stops_at: Option<String>,
    /// `enforced`: the apps stopped (`JupyterLab default`, ...).
    #[serde(default)]
    pub stopped_apps: Vec<String>,
    pub reason: String,
}

/// One line of a spend breakdown.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpendLine {
    pub name: String,
    pub hours: f64,
    pub usd: f64,
}

/// An app the sweep stopped, in a digest.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoppedApp {
    /// `JupyterLab default` or `JupyterLab default (space team-lab)`.
    pub app: String,
    pub instance_type: String,
    /// `idle` or `budget`.
    pub cause: String,
    pub at: String,
    pub idle_minutes: u64,
    /// What the stop saved (see docs/cost.md, "Savings"); absent when the type is unpriced.
    #[serde(default)]
    pub saved_usd: Option<f64>,
}

/// A user's week of Studio: what it cost, what the sweep stopped and saved, where the month's budget stands. Sent
/// by idle-shutdown's weekly digest, once per user and week.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpendDigest {
    pub domain_id: String,
    pub user_profile_name: String,
    /// `2026-W49`.
    pub week: String,
    /// The week's first and last day (UTC).
    pub from: String,
    pub to: String,
    pub hours: f64,
    pub usd: f64,
    #[serde(default)]
    pub unpriced_hours: f64,
    #[serde(default)]
    pub by_kind: Vec<SpendLine>,
    #[serde(default)]
    pub by_app_type: Vec<SpendLine>,
    #[serde(default)]
    pub by_instance_type: Vec<SpendLine>,
    #[serde(default)]
    pub stopped: Vec<StoppedApp>,
    /// Stops not listed in `stopped`.
    #[serde(default)]
    pub stopped_omitted: u32,
    /// All the week's stops, listed or not: for idling, and for the budget.
    #[serde(default)]
    pub idle_stops: u32,
    #[serde(default)]
    pub budget_stops: u32,
    pub saved_usd: f64,
    /// The month of `to`, and what it has cost so far.
    pub month: String,
    pub month_to_date_usd: f64,
    /// The month's budget, when one applies and is known.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// Month to date plus the week's daily average for the days left.
    pub projected_usd: f64,
    /// `no-budget`, `within`, `approaching`, `exceeded`, `set-by-group`.
    pub budget_status: String,
}

/// One account's spend in the team digest.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountSpend {
    pub domain_id: String,
    /// `user/ana` or `space/team-lab`.
    pub account: String,
    pub hours: f64,
    pub usd: f64,
}

/// An account whose apps the sweep stopped for idling.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdleOffender {
    pub domain_id: String,
    pub account: String,
    pub idle_stops: u32,
    pub saved_usd: f64,
}

/// The admins' week: spend, savings, who spent and who idled most, what the price table lacks, whether the sweep
/// kept up and what failed. Sent once per week.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TeamDigest {
    pub week: String,
    pub from: String,
    pub to: String,
    pub domains: Vec<String>,
    /// Domains whose ledger could not be read (left out of the figures).
    #[serde(default)]
    pub failed_domains: Vec<String>,
    pub hours: f64,
    pub usd: f64,
    pub saved_usd: f64,
    /// Apps stopped in the week, idle or for a budget; of them, for a budget:
    pub apps_stopped: u32,
    #[serde(default)]
    pub apps_stopped_for_budget: u32,
    pub accounts: u32,
    #[serde(default)]
    pub top_spenders: Vec<AccountSpend>,
    #[serde(default)]
    pub top_idle: Vec<IdleOffender>,
    #[serde(default)]
    pub unpriced_instance_types: Vec<SpendLine>,
    /// Sweeps that left apps for the next one, had apps two sweeps behind, or could not list a domain.
    pub sweeps_behind: u32,
    #[serde(default)]
    pub most_apps_not_reached: u32,
    /// Events a function gave up on after its retries, waiting in the failed-invocation queue (`None`: not read).
    #[serde(default)]
    pub failed_invocations: Option<u32>,
    /// Events EventBridge could not deliver, waiting in its dead-letter queue (`None`: not read).
    #[serde(default)]
    pub undelivered_events: Option<u32>,
    /// User digests sent with this one.
    pub user_digests: u32,
}

/// Every fact the suite publishes. Its serde form is the EventBridge envelope's pair: the variant is the
/// `detail-type`, its fields the `detail` (serde's adjacently tagged representation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum SuiteEvent {
    #[serde(rename = "User Provisioned")]
    UserProvisioned(UserProvisioned),
    #[serde(rename = "User Deprovisioned")]
    UserDeprovisioned(UserDeprovisioned),
    #[serde(rename = "Provisioning Blocked")]
    ProvisioningBlocked(ProvisioningBlocked),
    #[serde(rename = "Provisioning Failed")]
    ProvisioningFailed(ProvisioningFailed),
    #[serde(rename = "Shared Space Ready")]
    SharedSpaceReady(SharedSpaceReady),
    #[serde(rename = "Shared Space Removed")]
    SharedSpaceRemoved(SharedSpaceRemoved),
    #[serde(rename = "App Idle Warning")]
    AppIdleWarning(AppIdleWarning),
    #[serde(rename = "App Stopped")]
    AppStopped(AppStopped),
    #[serde(rename = "Idle Sweep Completed")]
    IdleSweepCompleted(IdleSweepCompleted),
    #[serde(rename = "Training Started")]
    TrainingStarted(TrainingStarted),
    #[serde(rename = "Training Rejected")]
    TrainingRejected(TrainingRejected),
    #[serde(rename = "Training Failed")]
    TrainingFailed(TrainingFailed),
    #[serde(rename = "Model Registered")]
    ModelRegistered(ModelRegistered),
    #[serde(rename = "Push Caught Up")]
    PushCaughtUp(PushCaughtUp),
    #[serde(rename = "Budget Alert")]
    BudgetAlert(BudgetAlert),
    #[serde(rename = "Spend Digest")]
    SpendDigest(SpendDigest),
    #[serde(rename = "Team Digest")]
    TeamDigest(TeamDigest),
}

/// Every detail-type the suite publishes (for the notify rule and its tests); a test checks it against the enum.
pub const DETAIL_TYPES: &[&str] = &[
    "User Provisioned",
    "User Deprovisioned",
    "Provisioning Blocked",
    "Provisioning Failed",
    "Shared Space Ready",
    "Shared Space Removed",
    "App Idle Warning",
    "App Stopped",
    "Idle Sweep Completed",
    "Training Started",
    "Training Rejected",
    "Training Failed",
    "Model Registered",
    "Push Caught Up",
    "Budget Alert",
    "Spend Digest",
    "Team Digest",
];

impl SuiteEvent {
    /// The event's detail-type (serde's tag for the variant).
    pub fn detail_type(&self) -> &'static str {
        match self {
            SuiteEvent::UserProvisioned(_) => "User Provisioned",
            SuiteEvent::UserDeprovisioned(_) => "User Deprovisioned",
            SuiteEvent::ProvisioningBlocked(_) => "Provisioning Blocked",
            SuiteEvent::ProvisioningFailed(_) => "Provisioning Failed",
            SuiteEvent::SharedSpaceReady(_) => "Shared Space Ready",
            SuiteEvent::SharedSpaceRemoved(_) => "Shared Space Removed",
            SuiteEvent::AppIdleWarning(_) => "App Idle Warning",
            SuiteEvent::AppStopped(_) => "App Stopped",
            SuiteEvent::IdleSweepCompleted(_) => "Idle Sweep Completed",
            SuiteEvent::TrainingStarted(_) => "Training Started",
            SuiteEvent::TrainingRejected(_) => "Training Rejected",
            SuiteEvent::TrainingFailed(_) => "Training Failed",
            SuiteEvent::ModelRegistered(_) => "Model Registered",
            SuiteEvent::PushCaughtUp(_) => "Push Caught Up",
            SuiteEvent::BudgetAlert(_) => "Budget Alert",
            SuiteEvent::SpendDigest(_) => "Spend Digest",
            SuiteEvent::TeamDigest(_) => "Team Digest",
        }
    }

    /// The event's detail (serde's content for the variant).
    pub fn detail(&self) -> Value {
        // Serializing these plain structs cannot fail; Null is never reached.
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("detail").map(Value::take))
            .unwrap_or(Value::Null)
    }

    /// Reads a suite event from its detail-type and detail; error paths are relative to the detail.
    pub fn from_parts(detail_type: &str, detail: &Value) -> Result<Self, EventError> {
        if !DETAIL_TYPES.contains(&detail_type) {
            return Err(EventError::new(
                SOURCE,
                "detail-type",
                format!("unknown studio-ops detail-type {detail_type:?}"),
            ));
        }
        // The tag first, so that serde reads the detail straight into its type and the error path is kept
        // (a `Value` map would hand them over sorted, the detail first).
        let pairs = [
            ("detail-type", Value::String(detail_type.to_string())),
            ("detail", detail.clone()),
        ];
        let event: SuiteEvent =
            serde_path_to_error::deserialize(serde::de::value::MapDeserializer::<
                _,
                serde_json::Error,
            >::new(pairs.into_iter()))
            .map_err(|e| {
                let path = e.path().to_string();
                let path = match path.as_str() {
                    "detail-type" => path,
                    "detail" => ".".to_string(),
                    // `detail.field` or, for a detail that is an array, `detail[0]`.
                    p => {
                        let rest = p.strip_prefix("detail").unwrap_or(p);
                        rest.strip_prefix('.').unwrap_or(rest).to_string()
                    }
                };
                EventError::new(detail_type, &path, e.into_inner().to_string())
            })?;
        // The same refusal as every other event: a struct is never read from an array by position.
        if let Some(path) = super::array_read_as_object(detail, &event.detail(), String::new()) {
            let path = if path.is_empty() { "." } else { path.as_str() };
            return Err(EventError::new(
                detail_type,
                path,
                "expected an object, found an array",
            ));
        }
        Ok(event)
    }

    /// Reads a suite event from a full EventBridge envelope; error paths are from the envelope's root.
    pub fn from_envelope(event: &Value) -> Result<Self, EventError> {
        if !event.is_object() {
            return Err(EventError::new(
                SOURCE,
                ".",
                "expected an EventBridge event (a JSON object)",
            ));
        }
        let detail_type = super::detail_type(event)
            .ok_or_else(|| EventError::new(SOURCE, "detail-type", "missing field"))?;
        let detail = event
            .get("detail")
            .ok_or_else(|| EventError::new(detail_type, ".", "missing field `detail`"))?;
        Self::from_parts(detail_type, detail).map_err(|mut e| {
            if e.path != "detail-type" {
                e.path = match e.path.as_str() {
                    "." => "detail".to_string(),
                    p if p.starts_with('[') => format!("detail{p}"),
                    p => format!("detail.{p}"),
                };
            }
            e
        })
    }
}

/// `UserProvisioned { .. }.into()` and the like.
macro_rules! from_detail {
    ($($variant:ident),* $(,)?) => {
        $(impl From<$variant> for SuiteEvent {
            fn from(d: $variant) -> Self {
                SuiteEvent::$variant(d)
            }
        })*
    };
}

from_detail!(
    UserProvisioned,
    UserDeprovisioned,
    ProvisioningBlocked,
    ProvisioningFailed,
    AppIdleWarning,
    AppStopped,
    IdleSweepCompleted,
    TrainingStarted,
    TrainingRejected,
    TrainingFailed,
    ModelRegistered,
    BudgetAlert,
    SpendDigest,
    TeamDigest,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_detail_type_and_detail() {
        let e: SuiteEvent = TrainingStarted {
            model: "churn-xgboost".into(),
            training_job_name: "churn-xgboost-abc1234".into(),
            instance_type: "ml.m5.xlarge".into(),
            instance_count: 1,
            repository: "sagemaker-repository".into(),
            branch: "main".into(),
            commit_id: "abc1234".into(),
            author: Some("ana".into()),
            experiment: Some("churn-xgboost".into()),
            image: None,
            spot: false,
            max_cost_usd: Some(5.52),
            cost_basis: None,
        }
        .into();
        assert_eq!(e.detail_type(), "Training Started");
        let back = SuiteEvent::from_parts(e.detail_type(), &e.detail()).unwrap();
        assert_eq!(back, e);
        assert_eq!(DETAIL_TYPES.len(), 17);
    }

    /// Every suite fixture in events/notify: the serde tag, `detail_type()` and `DETAIL_TYPES` name each event alike.
    #[test]
    fn detail_types_agree_with_the_serde_tags_for_every_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/notify");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("events/notify") {
            let path = entry.expect("fixture").path();
            if !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("studio-ops-"))
            {
                continue;
            }
            let envelope: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
            let event = SuiteEvent::from_envelope(&envelope).expect("a suite event");
            let tagged = serde_json::to_value(&event).expect("serializes");
            assert_eq!(
                tagged["detail-type"],
                event.detail_type(),
                "{}",
                path.display()
            );
            assert_eq!(
                envelope["detail-type"],
                event.detail_type(),
                "{}",
                path.display()
            );
            assert_eq!(tagged["detail"], event.detail());
            seen.push(event.detail_type());
        }
        seen.sort_unstable();
        let mut all = DETAIL_TYPES.to_vec();
        all.sort_unstable();
        assert_eq!(
            seen, all,
            "one fixture per detail-type, and DETAIL_TYPES lists them all"
        );
    }

    #[test]
    fn a_field_error_keeps_its_path_and_an_array_is_never_read_as_a_struct() {
        let err = SuiteEvent::from_parts(
            "App Stopped",
            &serde_json::json!({"domainId": "d-a", "appType": "JupyterLab", "appName": "default",
                "instanceType": "ml.t3.medium", "idleMinutes": "long", "reason": "idle"}),
        )
        .unwrap_err();
        assert_eq!(err.path, "idleMinutes");
        let err = SuiteEvent::from_parts(
            "App Stopped",
            &serde_json::json!([
                "d-a",
                null,
                null,
                "JupyterLab",
                "default",
                "ml.t3.medium",
                5,
                "idle"
            ]),
        )
        .unwrap_err();
        assert_eq!(err.path, ".");
        // An array whose element does not fit the struct's first field: the path points at that element, in the
        // detail and in the whole event.
        let err =
            SuiteEvent::from_parts("App Idle Warning", &serde_json::json!([null])).unwrap_err();
        assert_eq!(err.path, "[0]");
        let event = serde_json::json!({"version": "0", "id": "x", "source": "studio-ops",
            "detail-type": "App Idle Warning", "account": "1", "region": "us-east-1",
            "time": "2026-11-24T21:15:00Z", "resources": [], "detail": [null]});
        let err = SuiteEvent::from_envelope(&event).unwrap_err();
        assert_eq!(err.path, "detail[0]");
    }

    #[test]
    fn an_envelope_that_is_not_an_object_is_refused_at_the_root() {
        for v in [
            serde_json::json!(["App Stopped"]),
            serde_json::json!("x"),
            Value::Null,
        ] {
            let err = SuiteEvent::from_envelope(&v).unwrap_err();
            assert_eq!(err.path, ".", "{v}");
            assert!(err.reason.contains("JSON object"), "{err}");
        }
    }

    #[test]
    fn unknown_detail_type_and_missing_field() {
        assert_eq!(
            SuiteEvent::from_parts("Coffee Made", &Value::Null)
                .unwrap_err()
                .path,
            "detail-type"
        );
        let err = SuiteEvent::from_parts("App Stopped", &serde_json::json!({"domainId": "d"}))
            .unwrap_err();
        assert!(err.reason.contains("missing field"), "{}", err.reason);
    }
}
