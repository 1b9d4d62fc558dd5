//! The Lambda entry point every function shares: runs a handler on the runtime, logs each outcome with the
//! event id, and turns a failure into a `Diagnostic` whose `error_type` says Retryable or NonRetryable.

use std::future::Future;

use lambda_runtime::{Context, LambdaEvent, service_fn};
use serde_json::Value;

use crate::error::{ErrorClass, Failure, diagnostic, error_chain};
use crate::events::event_id;

/// Serves `handler` until the runtime stops. A NonRetryable failure is logged at `error` with the event id
/// so that it can be found (and, after Lambda's bounded async retries, in the on-failure destination).
pub async fn serve<F, Fut, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Value, Context) -> Fut,
    Fut: Future<Output = Result<Value, E>>,
    E: Failure,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        let id = event_id(&payload).to_string();
        match handler(payload, context).await {
            Ok(outcome) => Ok(outcome),
            Err(err) => {
                let class = err.class();
                let message = error_chain(&err);
                match class {
                    ErrorClass::NonRetryable => {
                        tracing::error!(event_id = %id, error_type = class.as_str(), error = %message, "event rejected; retrying cannot help")
                    }
                    ErrorClass::Retryable => {
                        tracing::warn!(event_id = %id, error_type = class.as_str(), error = %message, "event failed; Lambda will retry")
                    }
                }
                Err(diagnostic(&err))
            }
        }
    }))
    .await
}

/// Logs a configuration failure at cold start in the same JSON form and returns it for `main` to exit with.
pub fn init_failed(err: impl std::error::Error + Send + Sync + 'static) -> lambda_runtime::Error {
    tracing::error!(error = %error_chain(&err), "initialisation failed");
    Box::new(err)
}
