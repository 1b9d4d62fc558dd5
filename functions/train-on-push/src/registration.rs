//! The registration use case: a training job of ours that finished → a model version pending manual approval
//! in the Model Registry (Model Registered), or, for a failed or stopped job, a Training Failed. Each job
//! outcome is claimed once; the registry's description marker and the client token back that up when the
//! claim has expired.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;
use studio_ops_shared::events::suite::{ModelRegistered, TrainingFailed};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::metrics::{MetricSet, Unit};
use studio_ops_shared::publisher::PublishEvents;

use crate::config::Config;
use crate::cost::{self, Billed};
use crate::error::HandlerError;
use crate::handler::{Claimed, Outcome, once_typed};
use crate::naming;
use crate::plan::{self, Lineage, ModelPackageSpec};
use crate::ports::{
    JobDescription, ModelRegistry, ModelVersion, Ports, RunEnd, RunStatus, RunTracker, SpendLedger,
    Training,
};
use crate::trigger::TrainingJobStateChange;
use studio_ops_shared::ErrorClass;
use studio_ops_shared::spend::Account;

/// What a finished job left to register: where the model is, its final metrics and the image it trained with.
struct Trained {
    artifacts: Option<String>,
    metrics: BTreeMap<String, f64>,
    training_image: Option<String>,
    billable_seconds: Option<u32>,
    description: Option<JobDescription>,
}

/// The registration use case over the ports it needs.
pub struct OnTrainingJob<'a, S, T, R, A, P, I, K, L, W> {
    config: &'a Config,
    ports: &'a Ports<S, T, R, A, P, I, K, L, W>,
}

impl<'a, S, T, R, A, P, I, K, L, W> OnTrainingJob<'a, S, T, R, A, P, I, K, L, W>
where
    T: Training,
    R: ModelRegistry,
    P: PublishEvents,
    I: IdempotencyStore,
    K: RunTracker,
    L: SpendLedger,
{
    pub fn new(config: &'a Config, ports: &'a Ports<S, T, R, A, P, I, K, L, W>) -> Self {
        Self { config, ports }
    }

    pub async fn run(
        &self,
        job: &TrainingJobStateChange,
        until: Timestamp,
    ) -> Result<Outcome, HandlerError> {
        let name = &job.training_job_name;
        let status = job.training_job_status.as_str();
        if !matches!(status, "Completed" | "Failed" | "Stopped") {
            return Ok(Outcome::Ignored {
                reason: format!("status {status}"),
                job: Some(name.clone()),
            });
        }
        let tags = match job.tags.as_ref().filter(|t| !t.is_empty()) {
            Some(t) => t.clone(),
            // Older events and some deliveries carry no tags: ask SageMaker.
            None => self.ports.training.tags(&job.training_job_arn).await?,
        };
        let Some(lineage) = Lineage::from_tags(&tags) else {
            tracing::info!(job = %name, "not a studio-ops training job");
            return Ok(Outcome::Ignored {
                reason: "not started by studio-ops".to_string(),
                job: Some(name.clone()),
            });
        };
        let idempotency = &self.ports.idempotency;
        let claimed = if status == "Completed" {
            let key = format!("register#{}", job.training_job_arn);
            once_typed(idempotency, &key, until, || self.register(job, &lineage)).await?
        } else {
            let key = format!("failed#{}", job.training_job_arn);
            once_typed(idempotency, &key, until, || {
                self.report_failure(job, &lineage)
            })
            .await?
        };
        Ok(match claimed {
            Claimed::Done(outcome) => {
                emit_metrics(&outcome);
                outcome
            }
            Claimed::Duplicate(previous) => Outcome::Duplicate {
                job: name.clone(),
                previous: previous.map(Box::new),
            },
            Claimed::InProgressElsewhere => Outcome::InProgressElsewhere { job: name.clone() },
        })
    }

    /// Plans the version, makes sure it exists once, and announces it.
    async fn register(
        &self,
        job: &TrainingJobStateChange,
        lineage: &Lineage,
    ) -> Result<Outcome, HandlerError> {
        let name = &job.training_job_name;
        let trained = self.trained(job).await?;
        let artifacts = trained
            .artifacts
            .ok_or_else(|| HandlerError::NoArtifacts { job: name.clone() })?;
        let ui = self
            .config
            .mlflow
            .as_ref()
            .and_then(|m| m.ui_url.as_deref());
        let spec = plan::model_package(
            lineage,
            name,
            &job.training_job_arn,
            &artifacts,
            trained.training_image.as_deref(),
            &trained.metrics,
            ui,
        )
        .map_err(|message| HandlerError::Unregistrable {
            job: name.clone(),
            message,
        })?;
        let version = self.ensure_version(name, &spec).await?;
        tracing::info!(job = %name, arn = %version.arn, "model registered");
        let mut closing = vec![
            ("studio-ops.model-artifacts".to_string(), artifacts.clone()),
            (
                "studio-ops.model-package-arn".to_string(),
                version.arn.clone(),
            ),
        ];
        if let Some(seconds) = trained.billable_seconds {
            closing.push((
                "studio-ops.billable-seconds".to_string(),
                seconds.to_string(),
            ));
        }
        self.close_run(lineage, RunStatus::Finished, &trained.metrics, closing)
            .await?;
        self.record_spend(job, lineage, trained.description.as_ref())
            .await?;
        self.ports
            .publisher
            .publish(&[ModelRegistered {
                model: lineage.model.clone(),
                model_package_group_name: spec.group.clone(),
                model_package_arn: version.arn.clone(),
                training_job_name: name.clone(),
                commit_id: Some(lineage.commit_id.clone()),
                author: lineage.author.clone(),
                metrics: trained.metrics,
                model_package_version: version.version,
                approval_status: Some("PendingManualApproval".to_string()),
                repository: Some(lineage.repository.clone()),
                mlflow_run_id: spec.customer_metadata.get(plan::MLFLOW_RUN_ID).cloned(),
                mlflow_run_url: spec.customer_metadata.get(plan::MLFLOW_RUN_URL).cloned(),
            }
            .into()])
            .await?;
        Ok(Outcome::Registered {
            model_package_arn: version.arn,
            job: name.clone(),
        })
    }

    /// What the event says the job left, with the job's description filling in what it leaves out.
    async fn trained(&self, job: &TrainingJobStateChange) -> Result<Trained, HandlerError> {
        let mut trained = Trained {
            artifacts: job
                .model_artifacts
                .as_ref()
                .map(|a| a.s3_model_artifacts.clone()),
            metrics: job
                .final_metric_data_list
                .iter()
                .flatten()
                .map(|m| (m.metric_name.clone(), m.value))
                .collect(),
            training_image: job
                .algorithm_specification
                .as_ref()
                .and_then(|a| a.get("TrainingImage"))
                .and_then(Value::as_str)
                .map(str::to_string),
            billable_seconds: None,
            description: None,
        };
        // The event carries no billable time (and sometimes no artifacts): the description has both.
        if let Some(d) = self
            .ports
            .training
            .describe_training_job(&job.training_job_name)
            .await?
        {
            trained.artifacts = trained.artifacts.or(d.model_artifacts.clone());
            if trained.metrics.is_empty() {
                trained.metrics = d.final_metrics.clone();
            }
            trained.training_image = trained.training_image.or(d.training_image.clone());
            trained.billable_seconds = trained.billable_seconds.or(d.billable_seconds);
            trained.description = Some(d);
        }
        Ok(trained)
    }

    /// The group, then the version: found by the job's marker if an earlier attempt registered it, else created.
    async fn ensure_version(
        &self,
        job: &str,
        spec: &ModelPackageSpec,
    ) -> Result<ModelVersion, HandlerError> {
        let registry = &self.ports.registry;
        registry
            .ensure_group(&spec.group, &spec.group_description, &spec.tags)
            .await?;
        let marker = naming::registration_marker(job);
        Ok(match registry.find_version(&spec.group, &marker).await? {
            Some(v) => {
                tracing::info!(job, arn = %v.arn, "model version exists already");
                v
            }
            None => registry.create_version(spec).await?,
        })
    }

    async fn report_failure(
        &self,
        job: &TrainingJobStateChange,
        lineage: &Lineage,
    ) -> Result<Outcome, HandlerError> {
        let reason = job.failure_reason.clone().unwrap_or_else(|| {
            if job.training_job_status == "Stopped" {
                format!(
                    "the job was stopped ({})",
                    job.secondary_status.as_deref().unwrap_or("no reason given")
                )
            } else {
                "SageMaker gave no failure reason".to_string()
            }
        });
        let status = if job.training_job_status == "Stopped" {
            RunStatus::Killed
        } else {
            RunStatus::Failed
        };
        let closing = vec![("studio-ops.failure-reason".to_string(), reason.clone())];
        let metrics: BTreeMap<String, f64> = job
            .final_metric_data_list
            .iter()
            .flatten()
            .map(|m| (m.metric_name.clone(), m.value))
            .collect();
        self.close_run(lineage, status, &metrics, closing).await?;
        let description = self
            .ports
            .training
            .describe_training_job(&job.training_job_name)
            .await?;
        self.record_spend(job, lineage, description.as_ref())
            .await?;
        self.ports
            .publisher
            .publish(&[TrainingFailed {
                model: lineage.model.clone(),
                training_job_name: job.training_job_name.clone(),
                status: job.training_job_status.clone(),
                failure_reason: reason.clone(),
                commit_id: Some(lineage.commit_id.clone()),
                author: lineage.author.clone(),
                repository: Some(lineage.repository.clone()),
                branch: lineage.branch.clone(),
            }
            .into()])
            .await?;
        Ok(Outcome::FailureReported {
            job: job.training_job_name.clone(),
            status: job.training_job_status.clone(),
            reason,
        })
    }
}

impl<S, T, R, A, P, I, K, L, W> OnTrainingJob<'_, S, T, R, A, P, I, K, L, W>
where
    T: Training,
    K: RunTracker,
    L: SpendLedger,
{
    /// Records what the job cost in the spend ledger (kind `training-job`), billed to the commit author's profile
    /// when one of the names the author maps to is a profile of the domain, else to the repository. The caller's
    /// claim makes it once per job; the ledger's conditional put backs that up.
    async fn record_spend(
        &self,
        job: &TrainingJobStateChange,
        lineage: &Lineage,
        description: Option<&JobDescription>,
    ) -> Result<(), HandlerError> {
        let (Some(settings), Some(ledger)) = (&self.config.spend, &self.ports.ledger) else {
            return Ok(());
        };
        let Some(d) = description else {
            tracing::warn!(job = %job.training_job_name, "no description: its spend is not recorded");
            return Ok(());
        };
        // The end as SageMaker gives it (never this invocation's clock: a replay must write the same record, in the
        // same month).
        let ended = d.ended.or_else(|| {
            job.training_end_time
                .as_ref()
                .or(job.last_modified_time.as_ref())
                .map(|t| t.0.as_second())
        });
        let (Some(instance_type), Some(billable_seconds), Some(ended)) =
            (&d.instance_type, d.billable_seconds, ended)
        else {
            tracing::warn!(job = %job.training_job_name, "no billable time, instance type or end: spend not recorded");
            return Ok(());
        };
        let mut account = Account::Repository(lineage.repository.clone());
        for name in lineage
            .author
            .as_deref()
            .map(cost::profile_candidates)
            .unwrap_or_default()
        {
            if self
                .ports
                .training
                .user_profile_exists(&settings.domain_id, &name)
                .await?
            {
                account = Account::User(name);
                break;
            }
        }
        let billed = Billed {
            job: job.training_job_name.clone(),
            instance_type: instance_type.clone(),
            instance_count: d.instance_count,
            billable_seconds,
            ended,
        };
        let usage = cost::training_spend(
            &settings.domain_id,
            account,
            &billed,
            &self.config.cost_guard.prices,
        );
        let written = ledger.record(&usage).await?;
        tracing::info!(job = %billed.job, account = %usage.account.key(), usd = ?usage.usd(), written, "training spend");
        Ok(())
    }

    /// Closes the job's MLflow run, if it has one and MLflow is configured (a replay closes it again, harmlessly).
    async fn close_run(
        &self,
        lineage: &Lineage,
        status: RunStatus,
        metrics: &BTreeMap<String, f64>,
        tags: Vec<(String, String)>,
    ) -> Result<(), HandlerError> {
        let (Some(tracker), Some((_, run_id))) = (&self.ports.tracker, &lineage.mlflow_run) else {
            return Ok(());
        };
        let closed = tracker
            .close_run(&RunEnd {
                run_id: run_id.clone(),
                status,
                end_ms: Timestamp::now().as_millisecond(),
                metrics: metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                tags,
            })
            .await;
        match closed {
            Ok(()) => Ok(()),
            // MLflow refused for good (the run was deleted, a value it does not take): the version and the alert
            // matter more than the run's close, so go on; a passing failure is retried with the event.
            Err(e) if e.class == ErrorClass::NonRetryable => {
                tracing::warn!(run = %run_id, error = %e, "MLflow run not closed");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a finished job did, for the suite's one metrics view: a version registered, or a failure reported.
/// Duplicates emit nothing, so each job counts once.
fn emit_metrics(outcome: &Outcome) {
    let (name, counted) = match outcome {
        Outcome::Registered { .. } => ("ModelsRegistered", 1.0),
        Outcome::FailureReported { .. } => ("TrainingJobsFailed", 1.0),
        _ => return,
    };
    let mut metrics = MetricSet::of(&crate::METRICS);
    metrics.put(name, counted, Unit::Count);
    metrics.emit();
}

#[cfg(test)]
mod tests;
