//! train-on-push: a push starts training for the models it changed; a finished job becomes a registered model version.
//!
//! The path of a push: `events/train-on-push/codecommit-*.json` → `handler::Handler::handle` →
//! `changes` (which models) → `manifest` (is it acceptable) → `plan` (the request) → `ports` (CodeCommit,
//! S3, SageMaker). The path of a finished job: `events/train-on-push/sagemaker-training-job-*.json` →
//! `handler` → `plan::Lineage`/`plan::model_package` → `ports::ModelRegistry`.

pub mod adapters;
pub mod changes;
pub mod config;
pub mod error;
pub mod handler;
pub mod images;
pub mod manifest;
pub mod naming;
pub mod paths;
pub mod plan;
pub mod ports;
pub mod sourcedir;
