//! The ports the handler works through — the repository (CodeCommit), training (SageMaker training jobs
//! and Experiments), the Model Registry, and artifact storage (S3) — with the plain types they exchange.
//! Adapters in `adapters/` implement them over one SDK client each; unit tests use in-memory fakes.

use std::collections::BTreeMap;
use std::future::Future;

use studio_ops_shared::{ErrorClass, Failure};

use crate::plan::{ModelPackageSpec, TrainingJobSpec};

/// A failed call on a port: which operation, whether retrying can help, and what the service said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct PortError {
    pub operation: &'static str,
    pub class: ErrorClass,
    pub message: String,
}

impl PortError {
    pub fn new(operation: &'static str, class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            operation,
            class,
            message: message.into(),
        }
    }
}

impl Failure for PortError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// A commit's message and people.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitInfo {
    pub message: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub committer_email: Option<String>,
}

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderEntry {
    /// A file: its path from the repository root and whether it is executable.
    File { path: String, executable: bool },
    /// A sub-folder: its path from the repository root.
    Folder { path: String },
    /// A symbolic link or a submodule: never packaged.
    Other { path: String, what: &'static str },
}

/// Read access to the team's repository at a given commit.
pub trait SourceRepository: Send + Sync {
    fn commit(
        &self,
        repository: &str,
        commit_id: &str,
    ) -> impl Future<Output = Result<CommitInfo, PortError>> + Send;

    /// Paths (before or after) of every file that differs between `before` and `after` under `folder`
    /// (`GetDifferences`, all pages). Empty when `folder` exists in neither commit.
    fn changed_paths(
        &self,
        repository: &str,
        before: &str,
        after: &str,
        folder: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    /// The entries of a folder at a commit, or None if there is no such folder.
    fn folder(
        &self,
        repository: &str,
        commit_id: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<FolderEntry>>, PortError>> + Send;

    /// A file's bytes at a commit, or None if there is no such file.
    fn file(
        &self,
        repository: &str,
        commit_id: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PortError>> + Send;
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
}

/// SageMaker training jobs and the Experiments they report to.
pub trait Training: Send + Sync {
    /// Creates the experiment unless it exists.
    fn ensure_experiment(
        &self,
        name: &str,
        description: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Creates the trial (a run) in the experiment unless it exists.
    fn ensure_trial(
        &self,
        trial: &str,
        experiment: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    fn create_training_job(
        &self,
        spec: &TrainingJobSpec,
    ) -> impl Future<Output = Result<JobCreation, PortError>> + Send;

    fn describe_training_job(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<JobDescription>, PortError>> + Send;

    /// Every tag of a resource (all pages).
    fn tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, PortError>> + Send;
}

/// A registered model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub arn: String,
    pub version: Option<i32>,
}

/// The SageMaker Model Registry.
pub trait ModelRegistry: Send + Sync {
    /// Creates the model package group unless it exists.
    fn ensure_group(
        &self,
        name: &str,
        description: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The version of `group` whose description contains `marker`, if one was registered already.
    fn find_version(
        &self,
        group: &str,
        marker: &str,
    ) -> impl Future<Output = Result<Option<ModelVersion>, PortError>> + Send;

    fn create_version(
        &self,
        spec: &ModelPackageSpec,
    ) -> impl Future<Output = Result<ModelVersion, PortError>> + Send;
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
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
