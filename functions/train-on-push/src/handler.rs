//! train-on-push handler: a push → a training job per changed model (or a Training Rejected per bad
//! manifest); a finished training job of ours → a PendingManualApproval model version (or Training Failed).
//! Each model of a push and each job outcome is done at most once (idempotency store), and SageMaker's own
//! guards (a deterministic job name, a model package client token) back that up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use futures::StreamExt;
use jiff::Timestamp;
use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::ErrorClass;
use studio_ops_shared::events::codecommit::{self, RepositoryStateChange};
use studio_ops_shared::events::sagemaker::{self, TrainingJobStateChange};
use studio_ops_shared::events::suite::{
    ModelRegistered, SuiteEvent, TrainingFailed, TrainingRejected, TrainingStarted,
};
use studio_ops_shared::events::{EventError, detail_type, event_id, parse_envelope};
use studio_ops_shared::idempotency::{IdempotencyStore, Once, claim_expiry, once};
use studio_ops_shared::metrics::{MetricSet, Unit};
use studio_ops_shared::publisher::PublishEvents;

use crate::changes::{self, Push};
use crate::config::Config;
use crate::error::HandlerError;
use crate::manifest;
use crate::naming;
use crate::paths;
use crate::plan::{self, Lineage, TrainingJobSpec};
use crate::ports::{
    Artifacts, FolderEntry, JobCreation, ModelRegistry, SourceRepository, Training,
};
use crate::sourcedir::{self, SourceFile};

/// Source files read from the repository at once when packaging script-mode source.
const SOURCE_READS_IN_FLIGHT: usize = 8;

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

/// Everything the handler talks to.
pub struct Ports<S, T, R, A, P, I> {
    pub source: S,
    pub training: T,
    pub registry: R,
    pub artifacts: A,
    pub publisher: P,
    pub idempotency: I,
}

pub struct Handler<S, T, R, A, P, I> {
    config: Config,
    ports: Ports<S, T, R, A, P, I>,
}

/// What became of one model of a push.
#[derive(Debug, Clone, PartialEq)]
enum ModelOutcome {
    Started {
        job: String,
    },
    /// The job existed already and is ours (a replayed push, or the same commit on another branch).
    AlreadyStarted {
        job: String,
    },
    Rejected {
        file: String,
        line: Option<u32>,
        reason: String,
    },
    /// The folder holds no manifest (or was deleted): not a model.
    NotAModel,
}

impl ModelOutcome {
    fn to_json(&self) -> Value {
        match self {
            ModelOutcome::Started { job } => json!({"started": job}),
            ModelOutcome::AlreadyStarted { job } => json!({"alreadyStarted": job}),
            ModelOutcome::Rejected { file, line, reason } => {
                json!({"rejected": {"file": file, "line": line, "reason": reason}})
            }
            ModelOutcome::NotAModel => json!({"notAModel": true}),
        }
    }
}

/// What `launch` found.
enum Launch {
    Created,
    /// A job of that name exists and is the one studio-ops started for this commit and model.
    Ours,
    /// A job of that name exists and is someone else's.
    NotOurs,
}

/// Why the source of a script-mode model cannot be packaged: a rejection for the committer.
struct SourceProblem {
    line: Option<u32>,
    reason: String,
}

/// The commit's people as the events name them.
struct People {
    author: Option<String>,
    pushed_by: Option<String>,
}

impl<S, T, R, A, P, I> Handler<S, T, R, A, P, I>
where
    S: SourceRepository,
    T: Training,
    R: ModelRegistry,
    A: Artifacts,
    P: PublishEvents,
    I: IdempotencyStore,
{
    pub fn new(config: Config, ports: Ports<S, T, R, A, P, I>) -> Self {
        Self { config, ports }
    }

    pub async fn handle(&self, event: Value, context: Context) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event)?;
        let deadline = UNIX_EPOCH + Duration::from_millis(context.deadline);
        let until = claim_expiry(deadline);
        let id = event_id(&event).to_string();
        let outcome = match trigger {
            Trigger::Push(change) => self.on_push(&change, until).await?,
            Trigger::TrainingJob(job) => self.on_training_job(&job, until).await?,
        };
        tracing::info!(event_id = %id, outcome = %outcome, "train-on-push done");
        Ok(outcome)
    }

    // ----- a push -----

    async fn on_push(
        &self,
        change: &RepositoryStateChange,
        until: Timestamp,
    ) -> Result<Value, HandlerError> {
        let push = match changes::screen(
            change,
            &self.config.repository_name,
            &self.config.branch_patterns,
        ) {
            Ok(p) => p,
            Err(why) => {
                tracing::info!(reason = %why, "push ignored");
                return Ok(json!({"ignored": why}));
            }
        };
        let src = &self.ports.source;
        let commit = src.commit(&push.repository, &push.commit_id).await?;
        let directives = changes::directives(&commit.message);
        if directives.skip {
            tracing::info!(commit = %push.commit_id, "commit asks to [skip train]");
            return Ok(
                json!({"skipped": "the commit message says [skip train]", "commit": push.commit_id}),
            );
        }
        let root = &self.config.models_root;
        let existing: BTreeSet<String> = src
            .folder(&push.repository, &push.commit_id, root)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e {
                FolderEntry::Folder { path } => path.rsplit('/').next().map(str::to_string),
                _ => None,
            })
            .collect();
        let changed = match &push.before {
            Some(before) => Some(changes::changed_models(
                src.changed_paths(&push.repository, before, &push.commit_id, root)
                    .await?
                    .iter()
                    .map(String::as_str),
                root,
            )),
            None => None,
        };
        let models = changes::select(
            changed.as_ref(),
            &existing,
            &directives,
            self.config.new_branch_policy,
        );
        let people = People {
            author: commit
                .author_email
                .clone()
                .or_else(|| commit.committer_email.clone())
                .or_else(|| commit.author_name.clone())
                .or_else(|| push.pushed_by.clone()),
            pushed_by: push.pushed_by.clone(),
        };

        if models.len() > self.config.max_jobs_per_push {
            let key = format!("too-many#{}#{}", push.repository, push.commit_id);
            let reason = format!(
                "this push would train {} models ({}); the limit is {} per push (STUDIO_OPS_MAX_JOBS_PER_PUSH). Nothing was started: push fewer model changes at a time, or name models with [train <model>]",
                models.len(),
                models.iter().cloned().collect::<Vec<_>>().join(", "),
                self.config.max_jobs_per_push
            );
            let event = self.rejection(
                &push,
                &people,
                None,
                if root.is_empty() { "/" } else { root },
                None,
                &reason,
            );
            let publisher = &self.ports.publisher;
            once(&self.ports.idempotency, &key, until, || async move {
                publisher.publish(&[event]).await?;
                Ok::<_, HandlerError>(json!({"rejected": reason}))
            })
            .await?;
            return Ok(json!({"rejected": "too many models", "models": models.len()}));
        }

        let mut results = serde_json::Map::new();
        let mut metrics = MetricSet::for_function("train-on-push");
        let (mut started, mut rejected) = (0.0, 0.0);
        // One model's failure does not hold back the others; the first failure is returned at the end so that
        // Lambda retries the event (the models already done are then duplicates).
        let mut first_error = None;
        for model in &models {
            let key = format!("model#{}#{}#{model}", push.repository, push.commit_id);
            let outcome = once(&self.ports.idempotency, &key, until, || async {
                let outcome = self.train_model(&push, model, &people).await?;
                Ok::<_, HandlerError>(outcome.to_json())
            })
            .await;
            let value = match outcome {
                Err(e) => {
                    tracing::error!(model = %model, error = %e, "model not started");
                    let v = json!({"error": e.to_string()});
                    first_error.get_or_insert(e);
                    v
                }
                Ok(Once::Done(v)) => {
                    started += f64::from(u8::from(v.get("started").is_some()));
                    rejected += f64::from(u8::from(v.get("rejected").is_some()));
                    v
                }
                Ok(Once::Duplicate(previous)) => json!({"duplicate": previous}),
                Ok(Once::InProgressElsewhere) => json!({"inProgressElsewhere": true}),
            };
            results.insert(model.clone(), value);
        }
        metrics.put("TrainingJobsStarted", started, Unit::Count);
        metrics.put("ManifestsRejected", rejected, Unit::Count);
        metrics.emit();
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(json!({
            "push": {"repository": push.repository, "branch": push.branch, "commitId": push.commit_id},
            "models": results,
        }))
    }

    fn rejection(
        &self,
        push: &Push,
        people: &People,
        model: Option<&str>,
        file: &str,
        line: Option<u32>,
        reason: &str,
    ) -> SuiteEvent {
        TrainingRejected {
            repository: push.repository.clone(),
            branch: push.branch.clone(),
            commit_id: push.commit_id.clone(),
            file: file.to_string(),
            line,
            reason: reason.to_string(),
            author: people.author.clone(),
            model: model.map(str::to_string),
            pushed_by: people.pushed_by.clone(),
        }
        .into()
    }

    async fn reject(
        &self,
        push: &Push,
        people: &People,
        model: &str,
        file: &str,
        line: Option<u32>,
        reason: String,
    ) -> Result<ModelOutcome, HandlerError> {
        tracing::warn!(model, file, line, reason = %reason, "manifest rejected");
        self.ports
            .publisher
            .publish(&[self.rejection(push, people, Some(model), file, line, &reason)])
            .await?;
        Ok(ModelOutcome::Rejected {
            file: file.to_string(),
            line,
            reason,
        })
    }

    /// Reads, checks and starts one model (called at most once per model and commit).
    async fn train_model(
        &self,
        push: &Push,
        model: &str,
        people: &People,
    ) -> Result<ModelOutcome, HandlerError> {
        let root = &self.config.models_root;
        let manifest_path = changes::manifest_path(root, model);
        let Some(bytes) = self
            .ports
            .source
            .file(&push.repository, &push.commit_id, &manifest_path)
            .await?
        else {
            tracing::info!(model, path = %manifest_path, "no manifest: not a model");
            return Ok(ModelOutcome::NotAModel);
        };
        if let Some(problem) = changes::folder_problem(model) {
            return self
                .reject(push, people, model, &manifest_path, None, problem)
                .await;
        }
        let manifest = match manifest::parse(&bytes, &self.config.policy) {
            Ok(m) => m,
            Err(r) => {
                return self
                    .reject(push, people, model, &manifest_path, r.line, r.reason)
                    .await;
            }
        };
        let folder = paths::join(root, model);
        let target = plan::Target {
            push,
            model,
            folder: &folder,
            author: people.author.as_deref(),
        };
        let spec = plan::training_job(&target, &manifest, &self.config.deployment);

        let archive = if let Some(source) = &spec.source {
            let files = match self.collect_source(push, source).await? {
                Ok(files) => files,
                Err(p) => {
                    return self
                        .reject(push, people, model, &manifest_path, p.line, p.reason)
                        .await;
                }
            };
            let archive = sourcedir::tar_gz(&files).map_err(|e| HandlerError::Archive {
                job: spec.name.clone(),
                message: e.to_string(),
            })?;
            Some(archive)
        } else {
            None
        };

        let outcome = match self.launch(&spec, push, archive).await {
            Ok(Launch::Created) => ModelOutcome::Started {
                job: spec.name.clone(),
            },
            Ok(Launch::Ours) => ModelOutcome::AlreadyStarted {
                job: spec.name.clone(),
            },
            Ok(Launch::NotOurs) => {
                let reason = format!(
                    "a training job named {} already exists and was not started by studio-ops for commit {}; rename the model folder or ask an administrator",
                    spec.name,
                    naming::short_commit(&push.commit_id)
                );
                return self
                    .reject(push, people, model, &manifest_path, None, reason)
                    .await;
            }
            // SageMaker or S3 refused for good (a quota, a permission, a value it does not accept): retrying the
            // event cannot help, so the committer hears why instead.
            Err(HandlerError::Port(e)) if e.class == ErrorClass::NonRetryable => {
                let reason = format!("the job could not be started: {e}");
                return self
                    .reject(push, people, model, &manifest_path, None, reason)
                    .await;
            }
            Err(e) => return Err(e),
        };
        // Published on a replay too: we only get here when no earlier attempt completed, so the event may be missing.
        self.ports
            .publisher
            .publish(&[started_event(&spec, push, people)])
            .await?;
        Ok(outcome)
    }

    /// Uploads the source archive (script mode), wires the experiment and trial, and creates the job.
    async fn launch(
        &self,
        spec: &TrainingJobSpec,
        push: &Push,
        archive: Option<Vec<u8>>,
    ) -> Result<Launch, HandlerError> {
        if let (Some(source), Some(archive)) = (&spec.source, archive) {
            self.ports
                .artifacts
                .put(
                    &source.s3_uri,
                    archive,
                    "application/gzip",
                    self.config.deployment.output_kms_key.as_deref(),
                )
                .await?;
        }
        let training = &self.ports.training;
        training
            .ensure_experiment(&spec.experiment, &spec.experiment_description)
            .await?;
        training.ensure_trial(&spec.trial, &spec.experiment).await?;
        match training.create_training_job(spec).await? {
            JobCreation::Created { arn } => {
                tracing::info!(job = %spec.name, arn = %arn, "training job started");
                Ok(Launch::Created)
            }
            JobCreation::AlreadyExists if self.is_ours(spec, push).await? => {
                tracing::info!(job = %spec.name, "training job exists already and is ours");
                Ok(Launch::Ours)
            }
            JobCreation::AlreadyExists => Ok(Launch::NotOurs),
        }
    }

    /// Whether an existing job of the planned name is the one studio-ops started for this commit and model.
    async fn is_ours(&self, spec: &TrainingJobSpec, push: &Push) -> Result<bool, HandlerError> {
        let Some(job) = self
            .ports
            .training
            .describe_training_job(&spec.name)
            .await?
        else {
            return Ok(false);
        };
        let tags = self.ports.training.tags(&job.arn).await?;
        Ok(Lineage::from_tags(&tags).is_some_and(|l| {
            l.model == spec.model && l.commit_id == naming::tag_value(&push.commit_id)
        }))
    }

    /// Every file under the script-mode source folder at the commit, within the configured bounds.
    async fn collect_source(
        &self,
        push: &Push,
        source: &plan::SourcePackage,
    ) -> Result<Result<Vec<SourceFile>, SourceProblem>, HandlerError> {
        let limits = self.config.source_limits;
        let mut listed = Vec::new();
        let mut pending = vec![source.folder.clone()];
        let prefix = if source.folder.is_empty() {
            String::new()
        } else {
            format!("{}/", source.folder)
        };
        let mut folders_seen = 0usize;
        while let Some(folder) = pending.pop() {
            folders_seen += 1;
            if folders_seen > limits.max_files {
                return Ok(Err(SourceProblem {
                    line: source.source_dir_line,
                    reason: format!("source_dir has more than {} folders", limits.max_files),
                }));
            }
            let Some(entries) = self
                .ports
                .source
                .folder(&push.repository, &push.commit_id, &folder)
                .await?
            else {
                return Ok(Err(SourceProblem {
                    line: source.source_dir_line.or(source.entry_point_line),
                    reason: format!("source folder {folder} does not exist at this commit"),
                }));
            };
            for entry in entries {
                match entry {
                    FolderEntry::Folder { path } => pending.push(path),
                    FolderEntry::Other { path, what } => {
                        return Ok(Err(SourceProblem {
                            line: source.source_dir_line,
                            reason: format!(
                                "{path} is a {what}; script-mode source may hold regular files only"
                            ),
                        }));
                    }
                    FolderEntry::File { path, executable } => {
                        if listed.len() >= limits.max_files {
                            return Ok(Err(SourceProblem {
                                line: source.source_dir_line,
                                reason: format!(
                                    "source_dir has more than {} files (STUDIO_OPS_SOURCE_MAX_FILES); keep data out of the repository",
                                    limits.max_files
                                ),
                            }));
                        }
                        if let Some(relative) = path.strip_prefix(&prefix).map(str::to_string) {
                            listed.push((path, relative, executable));
                        }
                    }
                }
            }
        }
        // Read the files a few at a time, stopping at the size bound.
        let mut reads = futures::stream::iter(listed.into_iter().map(
            |(path, relative, executable)| async move {
                self.ports
                    .source
                    .file(&push.repository, &push.commit_id, &path)
                    .await
                    .map(|bytes| {
                        bytes.map(|bytes| SourceFile {
                            path: relative,
                            bytes,
                            executable,
                        })
                    })
            },
        ))
        .buffered(SOURCE_READS_IN_FLIGHT);
        let mut files = Vec::new();
        let mut total = 0usize;
        while let Some(read) = reads.next().await {
            let Some(file) = read? else { continue };
            total += file.bytes.len();
            if total > limits.max_bytes {
                return Ok(Err(SourceProblem {
                    line: source.source_dir_line,
                    reason: format!(
                        "source_dir holds more than {} bytes (STUDIO_OPS_SOURCE_MAX_BYTES); keep data out of the repository",
                        limits.max_bytes
                    ),
                }));
            }
            files.push(file);
        }
        if !files.iter().any(|f| f.path == source.entry_point) {
            return Ok(Err(SourceProblem {
                line: source.entry_point_line,
                reason: format!(
                    "entry_point {} is not in {} at this commit",
                    source.entry_point,
                    if source.folder.is_empty() {
                        "/"
                    } else {
                        &source.folder
                    }
                ),
            }));
        }
        Ok(Ok(files))
    }

    // ----- a training job changed state -----

    async fn on_training_job(
        &self,
        job: &TrainingJobStateChange,
        until: Timestamp,
    ) -> Result<Value, HandlerError> {
        let status = job.training_job_status.as_str();
        if !matches!(status, "Completed" | "Failed" | "Stopped") {
            return Ok(json!({"ignored": format!("status {status}")}));
        }
        let tags = match job.tags.as_ref().filter(|t| !t.is_empty()) {
            Some(t) => t.clone(),
            // Older events and some deliveries carry no tags: ask SageMaker.
            None => self.ports.training.tags(&job.training_job_arn).await?,
        };
        let Some(lineage) = Lineage::from_tags(&tags) else {
            tracing::info!(job = %job.training_job_name, "not a studio-ops training job");
            return Ok(
                json!({"ignored": "not started by studio-ops", "job": job.training_job_name}),
            );
        };
        let name = &job.training_job_name;
        let result = if status == "Completed" {
            let key = format!("register#{}", job.training_job_arn);
            once(&self.ports.idempotency, &key, until, || {
                self.register(job, &lineage)
            })
            .await?
        } else {
            let key = format!("failed#{}", job.training_job_arn);
            once(&self.ports.idempotency, &key, until, || {
                self.report_failure(job, &lineage)
            })
            .await?
        };
        Ok(match result {
            Once::Done(v) => v,
            Once::Duplicate(previous) => json!({"duplicate": previous, "job": name}),
            Once::InProgressElsewhere => json!({"inProgressElsewhere": true, "job": name}),
        })
    }

    async fn register(
        &self,
        job: &TrainingJobStateChange,
        lineage: &Lineage,
    ) -> Result<Value, HandlerError> {
        let name = &job.training_job_name;
        let mut artifacts = job
            .model_artifacts
            .as_ref()
            .map(|a| a.s3_model_artifacts.clone());
        let mut metrics: BTreeMap<String, f64> = job
            .final_metric_data_list
            .iter()
            .flatten()
            .map(|m| (m.metric_name.clone(), m.value))
            .collect();
        let mut training_image = job
            .algorithm_specification
            .as_ref()
            .and_then(|a| a.get("TrainingImage"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if artifacts.is_none() {
            // The event left them out: the job description has them.
            if let Some(d) = self.ports.training.describe_training_job(name).await? {
                artifacts = d.model_artifacts;
                if metrics.is_empty() {
                    metrics = d.final_metrics;
                }
                training_image = training_image.or(d.training_image);
            }
        }
        let artifacts = artifacts.ok_or_else(|| HandlerError::NoArtifacts { job: name.clone() })?;
        let spec = plan::model_package(
            lineage,
            name,
            &job.training_job_arn,
            &artifacts,
            training_image.as_deref(),
            &metrics,
        )
        .map_err(|message| HandlerError::Unregistrable {
            job: name.clone(),
            message,
        })?;
        let registry = &self.ports.registry;
        registry
            .ensure_group(&spec.group, &spec.group_description, &spec.tags)
            .await?;
        let marker = naming::registration_marker(name);
        let version = match registry.find_version(&spec.group, &marker).await? {
            Some(v) => {
                tracing::info!(job = %name, arn = %v.arn, "model version exists already");
                v
            }
            None => registry.create_version(&spec).await?,
        };
        tracing::info!(job = %name, arn = %version.arn, "model registered");
        self.ports
            .publisher
            .publish(&[ModelRegistered {
                model: lineage.model.clone(),
                model_package_group_name: spec.group.clone(),
                model_package_arn: version.arn.clone(),
                training_job_name: name.clone(),
                commit_id: Some(lineage.commit_id.clone()),
                author: lineage.author.clone(),
                metrics,
                model_package_version: version.version,
                approval_status: Some("PendingManualApproval".to_string()),
                repository: Some(lineage.repository.clone()),
            }
            .into()])
            .await?;
        Ok(json!({"registered": version.arn, "job": name}))
    }

    async fn report_failure(
        &self,
        job: &TrainingJobStateChange,
        lineage: &Lineage,
    ) -> Result<Value, HandlerError> {
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
        Ok(
            json!({"failed": job.training_job_name, "status": job.training_job_status, "reason": reason}),
        )
    }
}

fn started_event(spec: &TrainingJobSpec, push: &Push, people: &People) -> SuiteEvent {
    TrainingStarted {
        model: spec.model.clone(),
        training_job_name: spec.name.clone(),
        instance_type: spec.instance_type.clone(),
        instance_count: spec.instance_count,
        repository: push.repository.clone(),
        branch: push.branch.clone(),
        commit_id: push.commit_id.clone(),
        author: people.author.clone(),
        experiment: Some(spec.experiment.clone()),
        image: Some(spec.training_image.clone()),
        spot: spec.spot.is_some(),
    }
    .into()
}

#[cfg(test)]
mod tests;
