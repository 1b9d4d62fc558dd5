//! notify: turns model-registry changes and the suite's own events into readable, filterable SNS alerts.

use futures::FutureExt;
use notify::adapters::{SageMakerRegistry, SnsAlertPublisher};
use notify::config::Config;
use notify::error::HandlerError;
use notify::handler::{Handler, Ports};
use studio_ops_shared::config::{Env, ProcessEnv};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::{aws, lambda, telemetry};

/// The idempotency store's namespace: notify's keys never collide with another function's.
const IDEMPOTENCY_NAMESPACE: &str = "notify";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env(&Env::new(&ProcessEnv)).map_err(lambda::init_failed)?;
    let sdk = aws::load_sdk_config(&config.suite.aws).await;
    let ports = Ports {
        publisher: SnsAlertPublisher::new(aws_sdk_sns::Client::new(&sdk), &config.topic_arn),
        registry: SageMakerRegistry::new(aws_sdk_sagemaker::Client::new(&sdk)),
        store: DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.suite.idempotency_table,
            IDEMPOTENCY_NAMESPACE,
            config.dedup_window,
        ),
    };
    let region = sdk.region().map(|r| r.to_string());
    let handler = Handler::new(config, ports, region);
    // A combinator rather than an `async` block: one more generator around the handler's pushes the layout
    // computation over rustc's default recursion limit.
    lambda::serve(|event, context| {
        handler
            .handle(event, context)
            .map(|outcome| Ok::<_, HandlerError>(serde_json::to_value(outcome?)?))
    })
    .await
}
