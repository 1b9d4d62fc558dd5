//! Adapters of train-on-push's ports, one SDK client each: CodeCommit (the repository), SageMaker (training
//! jobs and Experiments; the Model Registry) and S3 (source archives).

pub mod codecommit;
pub mod s3;
pub mod sagemaker;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use studio_ops_shared::error::{classify_sdk_error, describe_sdk_error, sdk_error_code};

use crate::ports::PortError;

/// A port error from an SDK error, classified Retryable/NonRetryable.
fn port_error<E, R>(operation: &'static str, e: &SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    PortError::new(operation, classify_sdk_error(e), describe_sdk_error(e))
}

/// The service's error code, if the call reached the service.
fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    sdk_error_code(e)
}

/// The service's error message, if any.
fn message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> &str {
    match e {
        SdkError::ServiceError(s) => s.err().message().unwrap_or_default(),
        _ => "",
    }
}
