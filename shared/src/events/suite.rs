//! The suite's own events on its custom bus (source `studio-ops`): one detail-type per fact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, from_value};

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
}

macro_rules! suite_events {
    ($($variant:ident => $detail_type:literal),* $(,)?) => {
        /// Every fact the suite publishes.
        #[derive(Debug, Clone, PartialEq)]
        pub enum SuiteEvent {
            $($variant($variant),)*
        }

        /// Every detail-type the suite publishes (for the notify rule and its tests).
        pub const DETAIL_TYPES: &[&str] = &[$($detail_type,)*];

        impl SuiteEvent {
            pub fn detail_type(&self) -> &'static str {
                match self {
                    $(SuiteEvent::$variant(_) => $detail_type,)*
                }
            }

            pub fn detail(&self) -> Value {
                match self {
                    // Serializing these plain structs cannot fail; Null is never reached.
                    $(SuiteEvent::$variant(d) => serde_json::to_value(d).unwrap_or(Value::Null),)*
                }
            }

            /// Reads a suite event from its detail-type and detail.
            pub fn from_parts(detail_type: &str, detail: &Value) -> Result<Self, EventError> {
                match detail_type {
                    $($detail_type => from_value(detail_type, detail).map(SuiteEvent::$variant),)*
                    other => Err(EventError::new(
                        "studio-ops",
                        "detail-type",
                        format!("unknown studio-ops detail-type {other:?}"),
                    )),
                }
            }
        }

        impl SuiteEvent {
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
                            p => format!("detail.{p}"),
                        };
                    }
                    e
                })
            }
        }

        $(impl From<$variant> for SuiteEvent {
            fn from(d: $variant) -> Self {
                SuiteEvent::$variant(d)
            }
        })*
    };
}

suite_events! {
    UserProvisioned => "User Provisioned",
    UserDeprovisioned => "User Deprovisioned",
    ProvisioningBlocked => "Provisioning Blocked",
    ProvisioningFailed => "Provisioning Failed",
    AppIdleWarning => "App Idle Warning",
    AppStopped => "App Stopped",
    IdleSweepCompleted => "Idle Sweep Completed",
    TrainingStarted => "Training Started",
    TrainingRejected => "Training Rejected",
    TrainingFailed => "Training Failed",
    ModelRegistered => "Model Registered",
}

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
        }
        .into();
        assert_eq!(e.detail_type(), "Training Started");
        let back = SuiteEvent::from_parts(e.detail_type(), &e.detail()).unwrap();
        assert_eq!(back, e);
        assert_eq!(DETAIL_TYPES.len(), 11);
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
