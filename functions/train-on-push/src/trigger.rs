//! The events train-on-push is invoked with, and only it: CodeCommit's "Repository State Change" (a push),
//! SageMaker's "Training Job State Change" (a job finished) and the catch-up schedule (EventBridge Scheduler's input
//! `{"catchUp": true}`, or a classic `Scheduled Event`), read into one [`Trigger`]. Unknown fields are tolerated; a missing or mistyped required field is a NonRetryable
//! [`EventError`] naming its JSON path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::events::schedule;
use studio_ops_shared::events::time::LenientTime;
use studio_ops_shared::events::{EventError, detail_type, parse_envelope};

/// CodeCommit's detail-type for a branch or tag created, updated or deleted.
pub const PUSH_DETAIL_TYPE: &str = "CodeCommit Repository State Change";
/// CodeCommit's detail-type for a pull request created, updated, closed or merged.
pub const PULL_REQUEST_DETAIL_TYPE: &str = "CodeCommit Pull Request State Change";
/// SageMaker's detail-type for a training job's status change.
pub const TRAINING_JOB_DETAIL_TYPE: &str = "SageMaker Training Job State Change";

/// What the function was invoked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Push(RepositoryStateChange),
    TrainingJob(TrainingJobStateChange),
    /// The catch-up schedule: compare each watched branch's head with the last one evaluated.
    CatchUp,
    /// A pull request changed: merged into the protected branch, it approves the models it trained.
    PullRequest(PullRequestStateChange),
}

/// Reads an invocation's event by its `detail-type`; anything else is a NonRetryable error.
pub fn parse_trigger(event: &Value) -> Result<Trigger, EventError> {
    if let Some(flag) = event.get("catchUp") {
        return match (flag, event.as_object().map(|o| o.len())) {
            (Value::Bool(true), Some(1)) => Ok(Trigger::CatchUp),
            _ => Err(EventError::new(
                "catch-up request",
                "catchUp",
                "expected exactly {\"catchUp\": true}",
            )),
        };
    }
    match detail_type(event) {
        Some(PUSH_DETAIL_TYPE) => parse_envelope::<RepositoryStateChange>(PUSH_DETAIL_TYPE, event)
            .map(|e| Trigger::Push(e.detail)),
        Some(TRAINING_JOB_DETAIL_TYPE) => {
            parse_envelope::<TrainingJobStateChange>(TRAINING_JOB_DETAIL_TYPE, event)
                .map(|e| Trigger::TrainingJob(e.detail))
        }
        Some(schedule::DETAIL_TYPE) => Ok(Trigger::CatchUp),
        Some(PULL_REQUEST_DETAIL_TYPE) => {
            parse_envelope::<PullRequestStateChange>(PULL_REQUEST_DETAIL_TYPE, event)
                .map(|e| Trigger::PullRequest(e.detail))
        }
        other => Err(EventError::new(
            "train-on-push",
            "detail-type",
            format!(
                "expected a CodeCommit push or pull request, a training-job state change or the catch-up schedule, got {other:?}"
            ),
        )),
    }
}

/// "CodeCommit Repository State Change": a branch or tag was created, updated or deleted.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStateChange {
    /// `referenceCreated`, `referenceUpdated` or `referenceDeleted`.
    pub event: String,
    pub repository_name: String,
    #[serde(default)]
    pub repository_id: Option<String>,
    /// `branch` or `tag`.
    pub reference_type: String,
    pub reference_name: String,
    #[serde(default)]
    pub reference_full_name: Option<String>,
    /// The new tip (absent on deletes).
    #[serde(default)]
    pub commit_id: Option<String>,
    /// The previous tip (absent on a new branch).
    #[serde(default)]
    pub old_commit_id: Option<String>,
    #[serde(default)]
    pub caller_user_arn: Option<String>,
}

impl RepositoryStateChange {
    pub fn is_branch_push(&self) -> bool {
        self.reference_type == "branch"
            && matches!(self.event.as_str(), "referenceCreated" | "referenceUpdated")
    }

    pub fn is_new_branch(&self) -> bool {
        self.event == "referenceCreated" || self.old_commit_id.is_none()
    }
}

/// "CodeCommit Pull Request State Change" (`pullRequestCreated`, `pullRequestSourceBranchUpdated`,
/// `pullRequestStatusChanged`, `pullRequestMergeStatusUpdated`, ...): the pull request at the change. CodeCommit
/// writes `isMerged` as the text `True`/`False` and carries no merge base (GetPullRequest does).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestStateChange {
    pub event: String,
    pub pull_request_id: String,
    pub repository_names: Vec<String>,
    /// `refs/heads/<branch>`.
    pub source_reference: String,
    pub destination_reference: String,
    #[serde(default)]
    pub source_commit: Option<String>,
    #[serde(default)]
    pub destination_commit: Option<String>,
    /// `True` or `False`.
    #[serde(default)]
    pub is_merged: Option<String>,
    /// `Open` or `Closed`.
    #[serde(default)]
    pub pull_request_status: Option<String>,
    #[serde(default)]
    pub merge_option: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Who made the change: for a merge, who merged (an SSO user's session name, or the Studio role's).
    #[serde(default)]
    pub caller_user_arn: Option<String>,
    #[serde(default)]
    pub revision_id: Option<String>,
}

impl PullRequestStateChange {
    /// Whether the event says the pull request is merged.
    pub fn says_merged(&self) -> bool {
        self.is_merged
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("true"))
    }
}

/// "SageMaker Training Job State Change": the job's description at the change.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TrainingJobStateChange {
    pub training_job_name: String,
    pub training_job_arn: String,
    /// InProgress | Completed | Failed | Stopping | Stopped
    pub training_job_status: String,
    #[serde(default)]
    pub secondary_status: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub model_artifacts: Option<ModelArtifacts>,
    #[serde(default)]
    pub final_metric_data_list: Option<Vec<MetricDatum>>,
    #[serde(default)]
    pub algorithm_specification: Option<Value>,
    #[serde(default)]
    pub hyper_parameters: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub last_modified_time: Option<LenientTime>,
    #[serde(default)]
    pub training_end_time: Option<LenientTime>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ModelArtifacts {
    #[serde(rename = "S3ModelArtifacts")]
    pub s3_model_artifacts: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDatum {
    pub metric_name: String,
    pub value: f64,
    #[serde(default)]
    pub timestamp: Option<LenientTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/train-on-push/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn fixtures_parse() {
        let Trigger::Push(p) =
            parse_trigger(&fixture("codecommit-reference-updated.json")).unwrap()
        else {
            panic!("not a push")
        };
        assert!(p.is_branch_push() && !p.is_new_branch());
        let Trigger::Push(p) =
            parse_trigger(&fixture("codecommit-reference-created.json")).unwrap()
        else {
            panic!("not a push")
        };
        assert!(p.is_new_branch());
        let Trigger::TrainingJob(j) =
            parse_trigger(&fixture("sagemaker-training-job-completed.json")).unwrap()
        else {
            panic!("not a training job")
        };
        assert_eq!(j.final_metric_data_list.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn the_catch_up_schedule_and_nothing_like_it() {
        assert_eq!(
            parse_trigger(&fixture("scheduler-catch-up.json")).unwrap(),
            Trigger::CatchUp
        );
        let classic = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(parse_trigger(&classic).unwrap(), Trigger::CatchUp);
        for bad in [
            serde_json::json!({"catchUp": false}),
            serde_json::json!({"catchUp": "yes"}),
            serde_json::json!({"catchUp": true, "dryrun": true}),
        ] {
            let err = parse_trigger(&bad).unwrap_err();
            assert_eq!(err.path, "catchUp", "{bad}");
        }
    }

    #[test]
    fn every_pull_request_fixture_parses_and_only_the_merge_says_merged() {
        let mut merged = Vec::new();
        for name in [
            "codecommit-pull-request-created.json",
            "codecommit-pull-request-source-branch-updated.json",
            "codecommit-pull-request-closed.json",
            "codecommit-pull-request-merged.json",
        ] {
            let Trigger::PullRequest(pr) = parse_trigger(&fixture(name)).unwrap() else {
                panic!("{name} is not a pull request")
            };
            assert_eq!(pr.destination_reference, "refs/heads/main", "{name}");
            if pr.says_merged() {
                merged.push(pr.event);
            }
        }
        assert_eq!(merged, vec!["pullRequestMergeStatusUpdated"]);
        let mut bad = fixture("codecommit-pull-request-merged.json");
        bad["detail"]
            .as_object_mut()
            .map(|d| d.remove("pullRequestId"));
        let err = parse_trigger(&bad).unwrap_err();
        assert!(err.to_string().contains("pullRequestId"), "{err}");
    }

    #[test]
    fn other_detail_types_are_refused_by_name() {
        let err = parse_trigger(&serde_json::json!({"detail-type": "Coffee"})).unwrap_err();
        assert_eq!(err.path, "detail-type");
        assert!(err.reason.contains("\"Coffee\""), "{err}");
    }
}
