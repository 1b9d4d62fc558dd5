//! Adapters of train-on-push's ports, one SDK client each: CodeCommit (the repository), SageMaker (training
//! jobs and Experiments; the Model Registry) and S3 (source archives); `memory` holds the in-memory fakes the
//! unit tests drive the use cases with.

pub mod codecommit;
#[cfg(test)]
pub mod memory;
pub mod s3;
pub mod sagemaker;
