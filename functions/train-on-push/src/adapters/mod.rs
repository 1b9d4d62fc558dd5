//! Adapters of train-on-push's ports, one client each: CodeCommit (the repository), SageMaker (training
//! jobs and classic Experiments; the Model Registry), S3 (source archives), MLflow (the runs, over its signed REST
//! API) and DynamoDB (the spend ledger's training lines); `memory` holds the in-memory fakes the unit tests drive
//! the use cases with.

pub mod codecommit;
pub mod dynamodb;
#[cfg(test)]
pub mod memory;
pub mod mlflow;
pub mod s3;
pub mod sagemaker;
