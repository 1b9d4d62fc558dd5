//! The ports the use cases work through — the repository (CodeCommit), training (SageMaker training jobs
//! and Experiments), the Model Registry, and artifact storage (S3) — with the plain types they exchange.
//! Adapters in `adapters/` implement them over one SDK client each (`adapters::memory` holds the in-memory
//! fakes). A failed call is always an [`AwsCallError`]; "not there" and "exists already" are domain answers
//! (`Option`, [`JobCreation`]).

use std::collections::BTreeMap;
use std::future::Future;

use studio_ops_shared::AwsCallError;
use studio_ops_shared::spend::Usage;

use crate::plan::{ModelPackageSpec, TrainingJobSpec};

/// Everything the use cases talk to: the ports of this crate plus the suite's publisher and idempotency store
/// (`studio_ops_shared`). `tracker` is None when runs are tracked in classic Experiments.
pub struct Ports<S, T, R, A, P, I, K, L, W> {
    pub source: S,
    pub training: T,
    pub registry: R,
    pub artifacts: A,
    pub publisher: P,
    pub idempotency: I,
    pub tracker: Option<K>,
    /// The spend ledger the finished jobs' cost goes to (`None`: not recorded).
    pub ledger: Option<L>,
    /// What train-on-push remembers between invocations: each branch's last evaluated head, the trees trained.
    pub state: W,
}

/// A commit's message and people.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitInfo {
    pub message: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub committer_email: Option<String>,
    /// The parents' commit ids (none for a root commit, two or more for a merge).
    pub parents: Vec<String>,
    /// When it was committed (the committer's date), seconds since the epoch, if CodeCommit says.
    pub committed_at: Option<i64>,
}

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderEntry {
    /// A file: its path from the repository root and whether it is executable.
    File { path: String, executable: bool },
    /// A sub-folder: its path from the repository root and its Git tree id (same id, same files).
    Folder {
        path: String,
        tree_id: Option<String>,
    },
    /// A symbolic link or a submodule: never packaged.
    Other { path: String, what: &'static str },
}

/// Read access to the team's repository at a given commit.
pub trait SourceRepository: Send + Sync {
    fn commit(
        &self,
        repository: &str,
        commit_id: &str,
    ) -> impl Future<Output = Result<CommitInfo, AwsCallError>> + Send;

    /// Paths (before or after) of every file that differs between `before` and `after` under `folder`
    /// (`GetDifferences`, all pages). Empty when `folder` exists in neither commit.
    fn changed_paths(
        &self,
        repository: &str,
        before: &str,
        after: &str,
        folder: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;

    /// The entries of a folder at a commit, or None if there is no such folder.
    fn folder(
        &self,
        repository: &str,
        commit_id: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<FolderEntry>>, AwsCallError>> + Send;

    /// A file's bytes at a commit, or None if there is no such file.
    fn file(
        &self,
        repository: &str,
        commit_id: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, AwsCallError>> + Send;

    /// Every branch of the repository (`ListBranches`, all pages).
    fn branches(
        &self,
        repository: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;

    /// The branch's head commit, or None if there is no such branch (`GetBranch`).
    fn head(
        &self,
        repository: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;

    /// A pull request as CodeCommit keeps it, or None if there is no such pull request (`GetPullRequest`).
    fn pull_request(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<PullRequest>, AwsCallError>> + Send;
}

/// A pull request (`GetPullRequest`): its title and its target in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullRequest {
    pub id: String,
    pub title: String,
    /// `OPEN` or `CLOSED`.
    pub status: String,
    pub targets: Vec<PullRequestTarget>,
}

/// One target of a pull request (`PullRequestTarget`), with its merge metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullRequestTarget {
    pub repository: String,
    /// `refs/heads/<branch>`.
    pub source_reference: String,
    pub destination_reference: String,
    pub source_commit: Option<String>,
    pub destination_commit: Option<String>,
    pub merge_base: Option<String>,
    pub merged: bool,
    /// The ARN of who merged it (`mergeMetadata.mergedBy`).
    pub merged_by: Option<String>,
    pub merge_commit: Option<String>,
}

/// What train-on-push remembers between invocations (the suite's table, `train-on-push#…` items without expiry).
pub trait PushState: Send + Sync {
    /// The last head of `branch` whose push was evaluated in full (every model it changed trained or rejected).
    fn evaluated(
        &self,
        repository: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;

    /// Moves the branch's evaluated head from `from` to `to`; false, changing nothing, when the record holds anything
    /// else (an invocation that read the same record moved it first). `from` None (a new branch, or a branch deleted
    /// and created again) sets it whatever it held.
    fn advance(
        &self,
        repository: &str,
        branch: &str,
        from: Option<&str>,
        to: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;

    /// When the catch-up first recorded the repository's heads (its starting point), if it has.
    fn watching_since(
        &self,
        repository: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;

    /// Records the starting point unless there is one; false when there was.
    fn start_watching(
        &self,
        repository: &str,
        at: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;

    /// The job that trained a model from this tree of its folder, if one did.
    fn trained_tree(
        &self,
        repository: &str,
        model: &str,
        tree_id: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;

    /// Records that `job` trains the model from this tree (the latest job started for the tree replaces the last).
    fn record_tree(
        &self,
        repository: &str,
        model: &str,
        tree_id: &str,
        job: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// What `create_training_job` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCreation {
    Created {
        arn: String,
    },
    /// A job of that name exists already (`ResourceInUse`).
    AlreadyExists,
}

/// What a training job looks like now (the parts the handler reads).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobDescription {
    pub arn: String,
    pub status: String,
    pub model_artifacts: Option<String>,
    pub training_image: Option<String>,
    pub final_metrics: BTreeMap<String, f64>,
    pub failure_reason: Option<String>,
    pub instance_type: Option<String>,
    pub instance_count: u32,
    /// `BillableTimeInSeconds`: wall-clock seconds billed per instance (spot: after the savings).
    pub billable_seconds: Option<u32>,
    /// `TrainingStartTime` / `TrainingEndTime`, seconds since the epoch.
    pub started: Option<i64>,
    pub ended: Option<i64>,
}

/// SageMaker training jobs and the Experiments they report to.
pub trait Training: Send + Sync {
    /// Creates the experiment unless it exists.
    fn ensure_experiment(
        &self,
        name: &str,
        description: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    /// Creates the trial (a run) in the experiment unless it exists.
    fn ensure_trial(
        &self,
        trial: &str,
        experiment: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    fn create_training_job(
        &self,
        spec: &TrainingJobSpec,
    ) -> impl Future<Output = Result<JobCreation, AwsCallError>> + Send;

    fn describe_training_job(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<JobDescription>, AwsCallError>> + Send;

    /// Whether the domain has a user profile of this name (whom a job's spend is billed to).
    fn user_profile_exists(
        &self,
        domain_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;

    /// Every tag of a resource (all pages).
    fn tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsCallError>> + Send;
}

/// A registered model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub arn: String,
    pub version: Option<i32>,
}

/// A version as the group's listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    pub arn: String,
    pub version: Option<i32>,
    /// `PendingManualApproval`, `Approved` or `Rejected`.
    pub status: String,
    /// The training job it was registered from (read from the description's marker), if it is one of ours.
    pub job: Option<String>,
}

/// What a version serves, and its tags (which only studio-ops can set with a `studio-ops:` key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionDetail {
    pub image: Option<String>,
    pub model_data_url: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The SageMaker Model Registry.
pub trait ModelRegistry: Send + Sync {
    /// The group's newest versions, newest first (at most [`crate::approval::MAX_VERSIONS`]); empty when there is
    /// no such group.
    fn versions(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<VersionSummary>, AwsCallError>> + Send;

    /// What a version serves and its tags (DescribeModelPackage, ListTags); None when it no longer exists.
    fn version_detail(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Option<VersionDetail>, AwsCallError>> + Send;

    /// Sets the version `Approved` with the description (`UpdateModelPackage`).
    fn approve(
        &self,
        arn: &str,
        description: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    /// Creates the model package group unless it exists.
    fn ensure_group(
        &self,
        name: &str,
        description: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    /// The version of `group` whose description contains `marker`, if one was registered already.
    fn find_version(
        &self,
        group: &str,
        marker: &str,
    ) -> impl Future<Output = Result<Option<ModelVersion>, AwsCallError>> + Send;

    fn create_version(
        &self,
        spec: &ModelPackageSpec,
    ) -> impl Future<Output = Result<ModelVersion, AwsCallError>> + Send;
}

/// A run to open (or find) in the experiment tracker: one per training job.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    pub experiment: String,
    /// The training job's name: the run's name and the key that finds it again.
    pub run_name: String,
    /// Milliseconds since the epoch.
    pub start_ms: i64,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// A run as the tracker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedRun {
    pub experiment_id: String,
    pub run_id: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Finished,
    Failed,
    Killed,
}

/// What closes a run: its status, end, final metrics and extra tags.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub run_id: String,
    pub status: RunStatus,
    pub end_ms: i64,
    pub metrics: Vec<(String, f64)>,
    pub tags: Vec<(String, String)>,
}

/// The experiment tracker (SageMaker managed MLflow): runs are recorded by studio-ops itself, because the
/// built-in containers have no MLflow client and network-isolated jobs cannot reach the server.
pub trait RunTracker: Send + Sync {
    /// The run named `run.run_name` in `run.experiment`, created (with the experiment, params and tags) unless
    /// it exists.
    fn open_run(
        &self,
        run: &RunStart,
    ) -> impl Future<Output = Result<TrackedRun, AwsCallError>> + Send;

    /// Logs the final metrics and tags and sets the run's status and end time (again, harmlessly, on a replay).
    fn close_run(&self, end: &RunEnd) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// The suite's spend ledger (`studio_ops_shared::spend`), where a finished job's cost is recorded.
pub trait SpendLedger: Send + Sync {
    /// Writes the record unless the ledger holds it already (`false` then).
    fn record(&self, usage: &Usage) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// Object storage for what training reads besides data (the packaged source).
pub trait Artifacts: Send + Sync {
    /// Writes `bytes` to `s3_uri`, encrypted with `kms_key_id` when given (else SSE-S3).
    fn put(
        &self,
        s3_uri: &str,
        bytes: Vec<u8>,
        content_type: &str,
        kms_key_id: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}
