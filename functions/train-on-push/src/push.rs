//! The push use case: a push to a watched branch → the models it changed → per model, its manifest checked,
//! its training job planned and started (or a Training Rejected for the committer). Each model is claimed
//! once per commit; one model's failure holds back no other, and the first one is returned at the end so
//! that Lambda retries the event (the models already done are then duplicates). A model whose folder is the very
//! tree an earlier job trained from (a merge into another branch, a cherry-pick) is not trained again. Once every
//! model of the push is evaluated, the branch's evaluated head moves to the commit (the catch-up reads it).

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
use crate::cost::{self, Estimate};
use crate::error::HandlerError;
use crate::handler::{Claimed, Outcome, once_typed};
use crate::manifest;
use crate::naming;
use crate::naming::tag;
use crate::paths;
use crate::plan::{self, Lineage, SourcePackage, Tracking, TrainingJobSpec};
use crate::ports::{
    Artifacts, FolderEntry, JobCreation, Ports, PushState, RunStart, RunTracker, SourceRepository,
    SpendLedger, Training,
};
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
    /// The model's folder is the very tree `job` trained from (on this or another branch): not trained again.
    SameTree {
        job: String,
    },
    /// Done by an earlier delivery: its answer (None when recorded in an older shape).
    Duplicate {
        previous: Option<Box<ModelOutcome>>,
    },
    /// Another invocation holds this model's claim right now.
    InProgressElsewhere,
}

/// A model of the push, checked before anything starts.
enum Checked {
    /// The folder holds no manifest (or was deleted).
    NotAModel,
    /// Trained from this very tree already, by `job`.
    SameTree { job: String },
    /// The manifest, the folder or the cost guard refuses it: the committer hears why.
    Rejected { line: Option<u32>, reason: String },
    /// Planned and within the cost guard.
    Ready {
        spec: Box<TrainingJobSpec>,
        estimate: Estimate,
        /// The model folder's tree, recorded once the job starts.
        tree: Option<String>,
    },
}

/// A model the push selected: its folder's tree (Git's id for its files) and whether the commit message asked for it
/// by name (then it is trained even from a tree trained before, e.g. to retrain on new data).
#[derive(Debug, Clone, Default)]
pub struct Selected {
    pub tree: Option<String>,
    pub named: bool,
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
pub struct OnPush<'a, S, T, R, A, P, I, K, L, W> {
    config: &'a Config,
    ports: &'a Ports<S, T, R, A, P, I, K, L, W>,
}

impl<'a, S, T, R, A, P, I, K, L, W> OnPush<'a, S, T, R, A, P, I, K, L, W>
where
    S: SourceRepository,
    T: Training,
    A: Artifacts,
    P: PublishEvents,
    I: IdempotencyStore,
    K: RunTracker,
    L: SpendLedger,
    W: PushState,
{
    pub fn new(config: &'a Config, ports: &'a Ports<S, T, R, A, P, I, K, L, W>) -> Self {
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
        let outcome = self.evaluate(&push, until).await?;
        if evaluated_in_full(&outcome) {
            self.advance(&push).await?;
        }
        Ok(outcome)
    }

    /// The branch's evaluated head moves from the push's previous tip to its commit. When the record holds another
    /// commit (a push was missed, or arrived out of order) it stays: the catch-up evaluates from there, and what this
    /// push did is then found done (same job names, same claims).
    async fn advance(&self, push: &Push) -> Result<(), HandlerError> {
        let state = &self.ports.state;
        let moved = state
            .advance(
                &push.repository,
                &push.branch,
                push.before.as_deref(),
                &push.commit_id,
            )
            .await?;
        if moved {
            tracing::info!(branch = %push.branch, head = %push.commit_id, "evaluated head moved");
        } else {
            let recorded = state.evaluated(&push.repository, &push.branch).await?;
            tracing::info!(
                branch = %push.branch, head = %push.commit_id, recorded = ?recorded,
                "evaluated head left for the catch-up"
            );
        }
        Ok(())
    }

    async fn evaluate(&self, push: &Push, until: Timestamp) -> Result<Outcome, HandlerError> {
        let config = self.config;
        let push = push.clone();
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
        let names: BTreeSet<String> = models.keys().cloned().collect();
        let people = People {
            author: commit
                .author_email
                .or(commit.committer_email)
                .or(commit.author_name)
                .or_else(|| push.pushed_by.clone()),
            pushed_by: push.pushed_by.clone(),
        };
        if models.len() > config.max_jobs_per_push {
            return self.refuse_too_many(&push, &people, &names, until).await;
        }
        let checked = self.check_all(&push, &people, &models).await?;
        let models = self.train_each(&push, &people, checked, until).await?;
        Ok(Outcome::Pushed {
            repository: push.repository,
            branch: push.branch,
            commit_id: push.commit_id,
            models,
        })
    }

    /// The model folders that exist at the commit, narrowed to what changed and what the message names, with their
    /// trees.
    async fn models_to_train(
        &self,
        push: &Push,
        directives: &changes::Directives,
    ) -> Result<BTreeMap<String, Selected>, HandlerError> {
        let src = &self.ports.source;
        let root = &self.config.models_root;
        let trees: BTreeMap<String, Option<String>> = src
            .folder(&push.repository, &push.commit_id, root)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e {
                FolderEntry::Folder { path, tree_id } => {
                    path.rsplit('/').next().map(|m| (m.to_string(), tree_id))
                }
                _ => None,
            })
            .collect();
        let existing: BTreeSet<String> = trees.keys().cloned().collect();
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
        let chosen = changes::select(
            changed.as_ref(),
            &existing,
            directives,
            self.config.new_branch_policy,
        );
        Ok(chosen
            .into_iter()
            .map(|model| {
                let selected = Selected {
                    tree: trees.get(&model).cloned().flatten(),
                    named: directives.all || directives.models.contains(&model),
                };
                (model, selected)
            })
            .collect())
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
        checked: BTreeMap<String, Checked>,
        until: Timestamp,
    ) -> Result<BTreeMap<String, ModelOutcome>, HandlerError> {
        let mut results = BTreeMap::new();
        let (mut started, mut rejected) = (0.0, 0.0);
        let mut first_error = None;
        for (model, checked) in checked {
            let key = format!("model#{}#{}#{model}", push.repository, push.commit_id);
            let outcome = once_typed(&self.ports.idempotency, &key, until, || {
                self.train_model(push, &model, people, checked)
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

    /// Every model's manifest read, checked and planned before anything starts, then the plans held to the cost
    /// guard together (the per-push ceiling needs them all). Deterministic, so a replay decides the same.
    async fn check_all(
        &self,
        push: &Push,
        people: &People,
        models: &BTreeMap<String, Selected>,
    ) -> Result<BTreeMap<String, Checked>, HandlerError> {
        let mut checked = BTreeMap::new();
        for (model, selected) in models {
            checked.insert(
                model.clone(),
                self.check(push, model, selected, people).await?,
            );
        }
        let estimates: BTreeMap<String, Estimate> = checked
            .iter()
            .filter_map(|(model, c)| match c {
                Checked::Ready { estimate, .. } => Some((model.clone(), estimate.clone())),
                _ => None,
            })
            .collect();
        for (model, verdict) in cost::judge(&estimates, &self.config.cost_guard) {
            if let Err(reason) = verdict {
                tracing::warn!(model = %model, reason = %reason, "refused by the cost guard");
                checked.insert(model, Checked::Rejected { line: None, reason });
            }
        }
        Ok(checked)
    }

    /// One model's manifest read, checked and planned: nothing is written or started here.
    async fn check(
        &self,
        push: &Push,
        model: &str,
        selected: &Selected,
        people: &People,
    ) -> Result<Checked, HandlerError> {
        let manifest_path = changes::manifest_path(&self.config.models_root, model);
        let Some(bytes) = self
            .ports
            .source
            .file(&push.repository, &push.commit_id, &manifest_path)
            .await?
        else {
            tracing::info!(model, path = %manifest_path, "no manifest: not a model");
            return Ok(Checked::NotAModel);
        };
        if let Some(problem) = changes::folder_problem(model) {
            return Ok(Checked::Rejected {
                line: None,
                reason: problem,
            });
        }
        let manifest = match manifest::parse(&bytes, &self.config.policy) {
            Ok(m) => m,
            Err(r) => {
                return Ok(Checked::Rejected {
                    line: r.line,
                    reason: r.reason,
                });
            }
        };
        let folder = paths::join(&self.config.models_root, model);
        let target = plan::Target {
            push,
            model,
            folder: &folder,
            author: people.author.as_deref(),
        };
        let spec = plan::training_job(&target, &manifest, &self.config.deployment);
        if let Some(job) = self
            .trained_before(push, model, selected, &spec.name)
            .await?
        {
            tracing::info!(model, job = %job, "the same tree was trained before");
            return Ok(Checked::SameTree { job });
        }
        let estimate = Estimate::of(&spec, &self.config.cost_guard.prices);
        Ok(Checked::Ready {
            spec: Box::new(spec),
            estimate,
            tree: selected.tree.clone(),
        })
    }

    /// The job that trained this very tree of the model's folder, when one did under another name and did not fail
    /// or stop (then this push trains it again). A model the message names is always trained.
    async fn trained_before(
        &self,
        push: &Push,
        model: &str,
        selected: &Selected,
        job_name: &str,
    ) -> Result<Option<String>, HandlerError> {
        let Some(tree) = selected.tree.as_deref().filter(|_| !selected.named) else {
            return Ok(None);
        };
        let state = &self.ports.state;
        let Some(job) = state.trained_tree(&push.repository, model, tree).await? else {
            return Ok(None);
        };
        if job == job_name {
            return Ok(None);
        }
        let described = self.ports.training.describe_training_job(&job).await?;
        Ok(described
            .filter(|d| !matches!(d.status.as_str(), "Failed" | "Stopped"))
            .map(|_| job))
    }

    /// Starts one checked model (called at most once per model and commit); a rejection is published.
    async fn train_model(
        &self,
        push: &Push,
        model: &str,
        people: &People,
        checked: Checked,
    ) -> Result<ModelOutcome, HandlerError> {
        let manifest_path = changes::manifest_path(&self.config.models_root, model);
        let stop = match checked {
            Checked::NotAModel => return Ok(ModelOutcome::NotAModel),
            Checked::SameTree { job } => return Ok(ModelOutcome::SameTree { job }),
            Checked::Rejected { line, reason } => Stop::Rejected { line, reason },
            Checked::Ready {
                spec,
                estimate,
                tree,
            } => match self.start(push, people, &spec, &estimate).await {
                Ok(outcome) => {
                    if let Some(tree) = tree {
                        self.ports
                            .state
                            .record_tree(&push.repository, model, &tree, &spec.name)
                            .await?;
                    }
                    return Ok(outcome);
                }
                Err(stop) => stop,
            },
        };
        match stop {
            Stop::Failed(e) => Err(e),
            Stop::Rejected { line, reason } => {
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

    /// Source archive → job, stopping at the first thing the committer must fix.
    async fn start(
        &self,
        push: &Push,
        people: &People,
        spec: &TrainingJobSpec,
        estimate: &Estimate,
    ) -> Result<ModelOutcome, Stop> {
        let archive = match &spec.source {
            Some(source) => Some(self.package(push, source, &spec.name).await?),
            None => None,
        };
        let outcome = match self.launch(spec, push, archive).await {
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
            .publish(&[started_event(spec, estimate, push, people)])
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
        let mut spec = spec.clone();
        match (&spec.tracking, &self.ports.tracker) {
            // The run opens before the job, so the job carries its id (a replay finds the same run by name).
            (Tracking::Mlflow { .. }, Some(tracker)) => {
                let manifest = changes::manifest_path(&self.config.models_root, &spec.model);
                let run = tracker.open_run(&run_start(&spec, push, &manifest)).await?;
                tracing::info!(job = %spec.name, run = %run.run_id, "MLflow run open");
                spec.tags.push((tag::MLFLOW_RUN_ID.to_string(), run.run_id));
                spec.tags
                    .push((tag::MLFLOW_EXPERIMENT_ID.to_string(), run.experiment_id));
            }
            (Tracking::Mlflow { .. }, None) => {
                tracing::warn!(job = %spec.name, "MLflow tracking without a tracker: no run recorded");
            }
            (Tracking::Classic, _) => {
                training
                    .ensure_experiment(&spec.experiment, &spec.experiment_description)
                    .await?;
                training.ensure_trial(&spec.trial, &spec.experiment).await?;
            }
        }
        let spec = &spec;
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
                    FolderEntry::Folder { path, .. } => pending.push(path),
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

/// The job's run as MLflow records it: named like the job, params = hyperparameters and resources, tags = where
/// the code came from.
fn run_start(spec: &TrainingJobSpec, push: &Push, manifest: &str) -> RunStart {
    let mut params: Vec<(String, String)> = spec
        .hyperparameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params.extend([
        (
            "sagemaker.instance_type".to_string(),
            spec.instance_type.clone(),
        ),
        (
            "sagemaker.instance_count".to_string(),
            spec.instance_count.to_string(),
        ),
        ("sagemaker.image".to_string(), spec.training_image.clone()),
        (
            "sagemaker.spot".to_string(),
            spec.spot.is_some().to_string(),
        ),
    ]);
    let mut tags = vec![
        ("studio-ops.model".to_string(), spec.model.clone()),
        ("studio-ops.repository".to_string(), push.repository.clone()),
        ("studio-ops.branch".to_string(), push.branch.clone()),
        ("studio-ops.commit".to_string(), push.commit_id.clone()),
        ("studio-ops.manifest".to_string(), manifest.to_string()),
        (
            "mlflow.source.git.commit".to_string(),
            push.commit_id.clone(),
        ),
        ("mlflow.source.git.branch".to_string(), push.branch.clone()),
    ];
    if let Some(source) = &spec.source {
        tags.push(("studio-ops.source".to_string(), source.folder.clone()));
    }
    tags.extend(spec.tags.iter().filter_map(|(k, v)| match k.as_str() {
        tag::AUTHOR => Some(("studio-ops.author".to_string(), v.clone())),
        tag::KIND => Some(("studio-ops.kind".to_string(), v.clone())),
        _ => None,
    }));
    RunStart {
        experiment: spec.experiment.clone(),
        run_name: spec.name.clone(),
        start_ms: jiff::Timestamp::now().as_millisecond(),
        params,
        tags,
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

fn started_event(
    spec: &TrainingJobSpec,
    estimate: &Estimate,
    push: &Push,
    people: &People,
) -> SuiteEvent {
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
        max_cost_usd: estimate.max_usd(),
        cost_basis: Some(estimate.basis()),
    }
    .into()
}

#[cfg(test)]
mod tests;

/// Whether every model of the push came to an answer (trained, found trained, rejected, skipped): then the branch's
/// evaluated head may move past the commit. A model another invocation is still working on holds it back.
fn evaluated_in_full(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Skipped { .. } | Outcome::TooManyModels { .. } => true,
        Outcome::Pushed { models, .. } => !models
            .values()
            .any(|m| matches!(m, ModelOutcome::InProgressElsewhere)),
        _ => false,
    }
}
