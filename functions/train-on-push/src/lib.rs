//! train-on-push: a push starts training for the models it changed; a finished job becomes a registered model version.
//!
//! The path of a push: `events/train-on-push/codecommit-*.json` → `trigger` (typed event) →
//! `handler::Handler::handle` → `push` (the use case; rules: `changes` which models, `manifest` is it
//! acceptable, `plan` the request, `cost` may it start) → `ports` → `adapters` (CodeCommit, S3, SageMaker). The path of a finished
//! job: `events/train-on-push/sagemaker-training-job-*.json` → `trigger` → `handler` → `registration` (rules:
//! `plan::Lineage`, `plan::model_package`) → `ports::ModelRegistry` → `adapters::sagemaker`.

pub mod adapters;
pub mod approval;
pub mod catchup;
pub mod changes;
pub mod config;
pub mod cost;
pub mod error;
pub mod handler;
pub mod images;
pub mod manifest;
pub mod naming;
pub mod paths;
pub mod plan;
pub mod ports;
pub mod push;
pub mod range;
pub mod registration;
pub mod sourcedir;
pub mod trigger;

/// Every metric train-on-push emits (the dashboard reads only these).
pub const METRICS: studio_ops_shared::metrics::Catalogue = studio_ops_shared::metrics::Catalogue {
    function: "train-on-push",
    metrics: &[
        "TrainingJobsStarted",
        "ManifestsRejected",
        "ModelsRegistered",
        "TrainingJobsFailed",
        studio_ops_shared::metrics::RUN_COMPLETED,
        "PushesCaughtUp",
        "ModelsApprovedOnMerge",
    ],
};
