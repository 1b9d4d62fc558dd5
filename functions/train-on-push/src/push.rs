//! The push use case: a push to a watched branch → the models it changed → per model, its manifest checked,
//! its training job planned and started (or a Training Rejected for the committer). Each model is claimed
//! once per commit; one model's failure holds back no other, and the first one is returned at the end so
//! that Lambda retries the event (the models already done are then duplicates).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use studio_ops_shared::events::suite::{SuiteEvent, TrainingRejected, TrainingStarted};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::metrics::{MetricSet, Unit};
use studio_ops_shared::publisher::PublishEvents;
use studio_ops_shared::{AwsCallError, ErrorClass};

use crate::changes::{self, Push};
use crate::config::Config;
use crate::error::HandlerError;
use crate::handler::{Claimed, Outcome, once_typed};
use crate::manifest;
use crate::naming;
use crate::paths;
use crate::plan::{self, Lineage, SourcePackage, TrainingJobSpec};
use crate::ports::{Artifacts, FolderEntry, JobCreation, Ports, SourceRepository, Training};
use crate::sourcedir::{self, SourceFile};
use crate::trigger::RepositoryStateChange;

/// Source files read from the repository at once when packaging script-mode source.
const SOURCE_READS_IN_FLIGHT: usize = 8;

/// What became of one model of a push (what the idempotency store keeps per model and commit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ModelOutcome {
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
    /// Done by an earlier delivery: its answer (None when recorded in an older shape).
    Duplicate {
        previous: Option<Box<ModelOutcome>>,
    },
    /// Another invocation holds this model's claim right now.
    InProgressElsewhere,
}

/// What `launch` found.
enum Launch {
    Created,
    /// A job of that name exists and is the one studio-ops started for this commit and model.
    Ours,
    /// A job of that name exists and is someone else's.
    NotOurs,
}

/// Why one model stops short of a job: a rejection the committer hears about, or a failure Lambda retries.
enum Stop {
    Rejected { line: Option<u32>, reason: String },
    Failed(HandlerError),
}

impl Stop {
    fn rejected(line: Option<u32>, reason: impl Into<String>) -> Self {
        Stop::Rejected {
            line,
            reason: reason.into(),
        }
    }
}

impl From<HandlerError> for Stop {
    fn from(e: HandlerError) -> Self {
        Stop::Failed(e)
    }
}

impl From<AwsCallError> for Stop {
    fn from(e: AwsCallError) -> Self {
        Stop::Failed(e.into())
    }
}

/// The commit's people as the events name them.
struct People {
    author: Option<String>,
    pushed_by: Option<String>,
}

/// The push use case over the ports it needs.
pub struct OnPush<'a, S, T, R, A, P, I> {
    config: &'a Config,
    ports: &'a Ports<S, T, R, A, P, I>,
}

impl<'a, S, T, R, A, P, I> OnPush<'a, S, T, R, A, P, I>
where
    S: SourceRepository,
    T: Training,
    A: Artifacts,
    P: PublishEvents,
    I: IdempotencyStore,
{
    pub fn new(config: &'a Config, ports: &'a Ports<S, T, R, A, P, I>) -> Self {
        Self { config, ports }
    }

    pub async fn run(
        &self,
        change: &RepositoryStateChange,
        until: Timestamp,
    ) -> Result<Outcome, HandlerError> {
        let config = self.config;
        let push = match changes::screen(change, &config.repository_name, &config.branch_patterns) {
            Ok(p) => p,
            Err(why) => {
                tracing::info!(reason = %why, "push ignored");
                return Ok(Outcome::Ignored {
                    reason: why,
                    job: None,
                });
            }
        };
        let commit = self
            .ports
            .source
            .commit(&push.repository, &push.commit_id)
            .await?;
        let directives = changes::directives(&commit.message);
        if directives.skip {
            tracing::info!(commit = %push.commit_id, "commit asks to [skip train]");
            return Ok(Outcome::Skipped {
                reason: "the commit message says [skip train]".to_string(),
                commit: push.commit_id,
            });
        }
        let models = self.models_to_train(&push, &directives).await?;
        let people = People {
            author: commit
                .author_email
                .or(commit.committer_email)
                .or(commit.author_name)
                .or_else(|| push.pushed_by.clone()),
            pushed_by: push.pushed_by.clone(),
        };
        if models.len() > config.max_jobs_per_push {
            return self.refuse_too_many(&push, &people, &models, until).await;
        }
        let models = self.train_each(&push, &people, &models, until).await?;
        Ok(Outcome::Pushed {
            repository: push.repository,
            branch: push.branch,
            commit_id: push.commit_id,
            models,
        })
    }

    /// The model folders that exist at the commit, narrowed to what changed and what the message names.
    async fn models_to_train(
        &self,
        push: &Push,
        directives: &changes::Directives,
    ) -> Result<BTreeSet<String>, HandlerError> {
        let src = &self.ports.source;
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
        Ok(changes::select(
            changed.as_ref(),
            &existing,
            directives,
            self.config.new_branch_policy,
        ))
    }

    /// More models than one push may train: nothing starts, and the committer hears why (once per commit).
    async fn refuse_too_many(
        &self,
        push: &Push,
        people: &People,
        models: &BTreeSet<String>,
        until: Timestamp,
    ) -> Result<Outcome, HandlerError> {
        let root = &self.config.models_root;
        let key = format!("too-many#{}#{}", push.repository, push.commit_id);
        let reason = format!(
            "this push would train {} models ({}); the limit is {} per push (STUDIO_OPS_MAX_JOBS_PER_PUSH). Nothing was started: push fewer model changes at a time, or name models with [train <model>]",
            models.len(),
            models.iter().cloned().collect::<Vec<_>>().join(", "),
            self.config.max_jobs_per_push
        );
        let refused = Outcome::TooManyModels {
            models: models.len(),
            reason: reason.clone(),
        };
        let file = if root.is_empty() { "/" } else { root };
        let event = rejection(push, people, None, file, None, &reason);
        let publisher = &self.ports.publisher;
        let answer = refused.clone();
        once_typed(&self.ports.idempotency, &key, until, || async move {
            publisher.publish(&[event]).await?;
            Ok(answer)
        })
        .await?;
        Ok(refused)
    }

    /// Each model under its own claim; counts what started and what was rejected for the metrics.
    async fn train_each(
        &self,
        push: &Push,
        people: &People,
        models: &BTreeSet<String>,
        until: Timestamp,
    ) -> Result<BTreeMap<String, ModelOutcome>, HandlerError> {
        let mut results = BTreeMap::new();
        let (mut started, mut rejected) = (0.0, 0.0);
        let mut first_error = None;
        for model in models {
            let key = format!("model#{}#{}#{model}", push.repository, push.commit_id);
            let outcome = once_typed(&self.ports.idempotency, &key, until, || {
                self.train_model(push, model, people)
            })
            .await;
            let outcome = match outcome {
                Err(e) => {
                    tracing::error!(model = %model, error = %e, "model not started");
                    first_error.get_or_insert(e);
                    continue;
                }
                Ok(Claimed::Done(o)) => {
                    started += f64::from(u8::from(matches!(o, ModelOutcome::Started { .. })));
                    rejected += f64::from(u8::from(matches!(o, ModelOutcome::Rejected { .. })));
                    o
                }
                Ok(Claimed::Duplicate(previous)) => ModelOutcome::Duplicate {
                    previous: previous.map(Box::new),
                },
                Ok(Claimed::InProgressElsewhere) => ModelOutcome::InProgressElsewhere,
            };
            results.insert(model.clone(), outcome);
        }
        let mut metrics = MetricSet::of(&crate::METRICS);
        metrics.put("TrainingJobsStarted", started, Unit::Count);
        metrics.put("ManifestsRejected", rejected, Unit::Count);
        metrics.emit();
        match first_error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// Reads, checks and starts one model (called at most once per model and commit); a rejection is published.
    async fn train_model(
        &self,
        push: &Push,
        model: &str,
        people: &People,
    ) -> Result<ModelOutcome, HandlerError> {
        let manifest_path = changes::manifest_path(&self.config.models_root, model);
        match self.start(push, model, people, &manifest_path).await {
            Ok(outcome) => Ok(outcome),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::Rejected { line, reason }) => {
                tracing::warn!(model, file = %manifest_path, line, reason = %reason, "manifest rejected");
                let event = rejection(push, people, Some(model), &manifest_path, line, &reason);
                self.ports.publisher.publish(&[event]).await?;
                Ok(ModelOutcome::Rejected {
                    file: manifest_path,
                    line,
                    reason,
                })
            }
        }
    }

    /// Manifest → plan → source archive → job, stopping at the first thing the committer must fix.
    async fn start(
        &self,
        push: &Push,
        model: &str,
        people: &People,
        manifest_path: &str,
    ) -> Result<ModelOutcome, Stop> {
        let repo = &push.repository;
        let Some(bytes) = self
            .ports
            .source
            .file(repo, &push.commit_id, manifest_path)
            .await?
        else {
            tracing::info!(model, path = %manifest_path, "no manifest: not a model");
            return Ok(ModelOutcome::NotAModel);
        };
        if let Some(problem) = changes::folder_problem(model) {
            return Err(Stop::rejected(None, problem));
        }
        let manifest = manifest::parse(&bytes, &self.config.policy)
            .map_err(|r| Stop::rejected(r.line, r.reason))?;
        let folder = paths::join(&self.config.models_root, model);
        let target = plan::Target {
            push,
            model,
            folder: &folder,
            author: people.author.as_deref(),
        };
        let spec = plan::training_job(&target, &manifest, &self.config.deployment);
        let archive = match &spec.source {
            Some(source) => Some(self.package(push, source, &spec.name).await?),
            None => None,
        };
        let outcome = match self.launch(&spec, push, archive).await {
            Ok(Launch::Created) => ModelOutcome::Started {
                job: spec.name.clone(),
            },
            Ok(Launch::Ours) => ModelOutcome::AlreadyStarted {
                job: spec.name.clone(),
            },
            Ok(Launch::NotOurs) => {
                return Err(Stop::rejected(
                    None,
                    format!(
                        "a training job named {} already exists and was not started by studio-ops for commit {}; rename the model folder or ask an administrator",
                        spec.name,
                        naming::job_commit(&push.commit_id)
                    ),
                ));
            }
            // SageMaker or S3 refused for good (a quota, a permission, a value it does not accept): retrying the
            // event cannot help, so the committer hears why instead.
            Err(HandlerError::Aws(e)) if e.class == ErrorClass::NonRetryable => {
                return Err(Stop::rejected(
                    None,
                    format!("the job could not be started: {e}"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        // Published on a replay too: we only get here when no earlier attempt completed, so the event may be missing.
        self.ports
            .publisher
            .publish(&[started_event(&spec, push, people)])
            .await
            .map_err(HandlerError::from)?;
        Ok(outcome)
    }

    /// The script-mode source at the commit as a `sourcedir.tar.gz`.
    async fn package(
        &self,
        push: &Push,
        source: &SourcePackage,
        job: &str,
    ) -> Result<Vec<u8>, Stop> {
        let listed = self.list_source(push, source).await?;
        let files = self.read_source(push, source, listed).await?;
        sourcedir::tar_gz(&files).map_err(|e| {
            Stop::Failed(HandlerError::Archive {
                job: job.to_string(),
                message: e.to_string(),
            })
        })
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

    /// Every file under the script-mode source folder at the commit (path, path inside the archive,
    /// executable), within the configured count.
    async fn list_source(
        &self,
        push: &Push,
        source: &SourcePackage,
    ) -> Result<Vec<(String, String, bool)>, Stop> {
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
                return Err(Stop::rejected(
                    source.source_dir_line,
                    format!("source_dir has more than {} folders", limits.max_files),
                ));
            }
            let Some(entries) = self
                .ports
                .source
                .folder(&push.repository, &push.commit_id, &folder)
                .await?
            else {
                return Err(Stop::rejected(
                    source.source_dir_line.or(source.entry_point_line),
                    format!("source folder {folder} does not exist at this commit"),
                ));
            };
            for entry in entries {
                match entry {
                    FolderEntry::Folder { path } => pending.push(path),
                    FolderEntry::Other { path, what } => {
                        return Err(Stop::rejected(
                            source.source_dir_line,
                            format!(
                                "{path} is a {what}; script-mode source may hold regular files only"
                            ),
                        ));
                    }
                    FolderEntry::File { path, executable } => {
                        if listed.len() >= limits.max_files {
                            return Err(Stop::rejected(
                                source.source_dir_line,
                                format!(
                                    "source_dir has more than {} files (STUDIO_OPS_SOURCE_MAX_FILES); keep data out of the repository",
                                    limits.max_files
                                ),
                            ));
                        }
                        if let Some(relative) = path.strip_prefix(&prefix).map(str::to_string) {
                            listed.push((path, relative, executable));
                        }
                    }
                }
            }
        }
        Ok(listed)
    }

    /// Reads the listed files a few at a time, stopping at the size bound; the entry point must be among them.
    async fn read_source(
        &self,
        push: &Push,
        source: &SourcePackage,
        listed: Vec<(String, String, bool)>,
    ) -> Result<Vec<SourceFile>, Stop> {
        let limits = self.config.source_limits;
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
                return Err(Stop::rejected(
                    source.source_dir_line,
                    format!(
                        "source_dir holds more than {} bytes (STUDIO_OPS_SOURCE_MAX_BYTES); keep data out of the repository",
                        limits.max_bytes
                    ),
                ));
            }
            files.push(file);
        }
        if !files.iter().any(|f| f.path == source.entry_point) {
            let folder = if source.folder.is_empty() {
                "/"
            } else {
                &source.folder
            };
            return Err(Stop::rejected(
                source.entry_point_line,
                format!(
                    "entry_point {} is not in {folder} at this commit",
                    source.entry_point
                ),
            ));
        }
        Ok(files)
    }
}

/// A Training Rejected for a model (or, with no model, for the whole push).
fn rejection(
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
