//! Error classification shared by every function: Retryable or NonRetryable, and the Lambda `Diagnostic` it becomes.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

/// Whether retrying the same event can succeed. Lambda retries (and then dead-letters) only
/// failures; the class tells operators and the DLQ redrive which ones are worth another go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A transient cause (throttling, a 5xx, a timeout, a resource busy): the same event may succeed later.
    Retryable,
    /// The event or the configuration is wrong: retrying cannot help.
    NonRetryable,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "Retryable",
            ErrorClass::NonRetryable => "NonRetryable",
        }
    }
}

/// Implemented by every function's error enum.
pub trait Failure: std::error::Error {
    fn class(&self) -> ErrorClass;
}

/// The `Diagnostic` Lambda reports: `error_type` is `Retryable` or `NonRetryable`, the message the
/// error's full chain of causes.
pub fn diagnostic<E: Failure>(err: &E) -> Diagnostic {
    Diagnostic {
        error_type: err.class().as_str().to_string(),
        error_message: error_chain(err),
    }
}

/// `err: cause: cause` — Display of an error and all its sources.
pub fn error_chain(err: &(dyn std::error::Error + '_)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Error codes AWS services use for throttling and transient trouble.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionConflictException",
];

/// How an SDK call failed, once the SDK's own retries are spent.
pub fn classify_sdk_error<E, R>(err: &SdkError<E, R>) -> ErrorClass
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorClass::Retryable
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if TRANSIENT_CODES.contains(&code) {
                ErrorClass::Retryable
            } else {
                ErrorClass::NonRetryable
            }
        }
        SdkError::ConstructionFailure(_) => ErrorClass::NonRetryable,
        _ => ErrorClass::Retryable,
    }
}

/// The AWS error code of an SDK error, if the service returned one.
pub fn sdk_error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// A readable one-line description of an SDK error: the service code and message when there is one.
pub fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("UnknownError"),
                e.message().unwrap_or("no message")
            )
        }
        other => error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Sample {
        #[error("event is malformed")]
        Bad(#[source] std::io::Error),
        #[error("busy")]
        Busy,
    }

    impl Failure for Sample {
        fn class(&self) -> ErrorClass {
            match self {
                Sample::Bad(_) => ErrorClass::NonRetryable,
                Sample::Busy => ErrorClass::Retryable,
            }
        }
    }

    #[test]
    fn diagnostic_carries_class_and_cause_chain() {
        let d = diagnostic(&Sample::Bad(std::io::Error::other(
            "detail.commitId missing",
        )));
        assert_eq!(d.error_type, "NonRetryable");
        assert_eq!(
            d.error_message,
            "event is malformed: detail.commitId missing"
        );
        assert_eq!(diagnostic(&Sample::Busy).error_type, "Retryable");
    }
}
