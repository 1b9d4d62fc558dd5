//! train-on-push handler: a push → training jobs; a finished training job → a model version.

use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::codecommit::{self, RepositoryStateChange};
use studio_ops_shared::events::sagemaker::{self, TrainingJobStateChange};
use studio_ops_shared::events::{EventError, detail_type, event_id, parse_envelope};

use crate::config::Config;
use crate::error::HandlerError;

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Push(RepositoryStateChange),
    TrainingJob(TrainingJobStateChange),
}

pub fn parse_trigger(event: &Value) -> Result<Trigger, EventError> {
    match detail_type(event) {
        Some(codecommit::DETAIL_TYPE) => {
            parse_envelope::<RepositoryStateChange>(codecommit::DETAIL_TYPE, event)
                .map(|e| Trigger::Push(e.detail))
        }
        Some(sagemaker::TRAINING_JOB_DETAIL_TYPE) => {
            parse_envelope::<TrainingJobStateChange>(sagemaker::TRAINING_JOB_DETAIL_TYPE, event)
                .map(|e| Trigger::TrainingJob(e.detail))
        }
        other => Err(EventError::new(
            "train-on-push",
            "detail-type",
            format!("expected a CodeCommit push or a training-job state change, got {other:?}"),
        )),
    }
}

pub struct Handler {
    config: Config,
}

impl Handler {
    pub fn new(config: Config, _sdk: &aws_config::SdkConfig) -> Self {
        Self { config }
    }

    pub async fn handle(&self, event: Value, _context: Context) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event)?;
        let summary = match &trigger {
            Trigger::Push(p) => {
                json!({"push": {"repository": p.repository_name, "branch": p.reference_name, "commitId": p.commit_id}})
            }
            Trigger::TrainingJob(j) => {
                json!({"trainingJob": {"name": j.training_job_name, "status": j.training_job_status}})
            }
        };
        tracing::info!(event_id = event_id(&event), repository = %self.config.repository_name, trigger = %summary, "train-on-push invoked");
        Ok(json!({"function": "train-on-push", "trigger": summary}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/train-on-push/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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
        assert_eq!(j.training_job_status, "Completed");
        assert_eq!(j.final_metric_data_list.as_ref().map(Vec::len), Some(2));
        let Trigger::TrainingJob(j) =
            parse_trigger(&fixture("sagemaker-training-job-failed.json")).unwrap()
        else {
            panic!("not a training job")
        };
        assert!(j.failure_reason.is_some());
    }

    #[test]
    fn malformed_push_names_the_field() {
        let mut e = fixture("codecommit-reference-updated.json");
        e["detail"]
            .as_object_mut()
            .unwrap()
            .remove("repositoryName");
        let err = parse_trigger(&e).unwrap_err();
        assert_eq!(err.path, "detail");
        assert!(err.reason.contains("repositoryName"));
    }
}
