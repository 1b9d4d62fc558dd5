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

/// A failed AWS call, once the SDK's own retries are spent: the one error type every port method returns.
/// `operation` is the API's name (`DescribeApp`), `code` the service's error code when it sent one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct AwsCallError {
    pub operation: &'static str,
    pub class: ErrorClass,
    pub code: Option<String>,
    pub message: String,
}

impl AwsCallError {
    /// The one conversion from an SDK error: classified, with the service's code and message.
    pub fn from_sdk<E, R>(operation: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self {
            operation,
            class: classify_sdk_error(err),
            code: sdk_error_code(err).map(str::to_string),
            message: describe_sdk_error(err),
        }
    }

    /// A service error with a code (what the in-memory fakes answer, and what a test plants).
    pub fn service(operation: &'static str, code: &str, message: impl Into<String>) -> Self {
        let class = if TRANSIENT_CODES.contains(&code) {
            ErrorClass::Retryable
        } else {
            ErrorClass::NonRetryable
        };
        Self {
            operation,
            class,
            code: Some(code.to_string()),
            message: format!("{code}: {}", message.into()),
        }
    }

    /// A failure with no service code (a fake's planted failure, a poisoned lock), classified by the caller.
    pub fn other(operation: &'static str, class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            operation,
            class,
            code: None,
            message: message.into(),
        }
    }

    /// An answer that lacks what the API promises: retrying the same call cannot help.
    pub fn malformed(operation: &'static str, what: &str) -> Self {
        Self {
            operation,
            class: ErrorClass::NonRetryable,
            code: None,
            message: format!("the answer lacks {what}"),
        }
    }

    /// `Ok(None)` when the resource does not exist (`ResourceNotFound`), the error otherwise: what a describe
    /// answers through a port (`.or_else(AwsCallError::absent)?`).
    pub fn absent<T>(self) -> Result<Option<T>, AwsCallError> {
        if self.is("ResourceNotFound") {
            Ok(None)
        } else {
            Err(self)
        }
    }

    /// Whether the service answered with this error code.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl Failure for AwsCallError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// `….send().await.call("DescribeApp")?`: an SDK result with its error turned into an [`AwsCallError`].
pub trait AwsCall<T> {
    fn call(self, operation: &'static str) -> Result<T, AwsCallError>;
}

impl<T, E, R> AwsCall<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    fn call(self, operation: &'static str) -> Result<T, AwsCallError> {
        self.map_err(|e| AwsCallError::from_sdk(operation, &e))
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

    #[test]
    fn aws_call_errors_keep_operation_code_and_class() {
        let throttled = AwsCallError::service("ListTags", "ThrottlingException", "Rate exceeded");
        assert_eq!(throttled.class(), ErrorClass::Retryable);
        assert!(throttled.is("ThrottlingException"));
        assert_eq!(
            throttled.to_string(),
            "ListTags failed: ThrottlingException: Rate exceeded"
        );
        let missing = AwsCallError::service("DescribeApp", "ResourceNotFound", "no such app");
        assert_eq!(missing.class(), ErrorClass::NonRetryable);
        assert!(!missing.is("ThrottlingException"));
        assert_eq!(missing.clone().absent::<()>(), Ok(None));
        assert_eq!(throttled.clone().absent::<()>(), Err(throttled.clone()));
        let lacking = AwsCallError::malformed("DescribeApp", "AppArn");
        assert_eq!(lacking.code, None);
        assert_eq!(
            lacking.to_string(),
            "DescribeApp failed: the answer lacks AppArn"
        );
    }
}
