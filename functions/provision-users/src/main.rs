//! provision-users: makes the Studio domain's user profiles follow the configured Identity Center group(s).

use futures::FutureExt;
use provision_users::adapters::identitystore::IdentityStore;
use provision_users::adapters::sagemaker::SageMakerStudio;
use provision_users::config;
use provision_users::error::HandlerError;
use provision_users::handler::{Handler, Ports};
use studio_ops_shared::config::{Env, ProcessEnv};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::publisher::EventBridgePublisher;
use studio_ops_shared::{aws, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::Config::from_env(&Env::new(&ProcessEnv)).map_err(lambda::init_failed)?;
    let sdk = aws::load_sdk_config(&config.suite.aws).await;
    // SageMaker is where a reconcile meets throttling: its calls wait it out (more attempts, longer backoff), and
    // their retry quota is this function's own and refills with time.
    let sagemaker = aws_sdk_sagemaker::config::Builder::from(&sdk)
        .retry_config(aws::throttled_retry_config(&config.suite.aws))
        .retry_partition(aws::retry_partition("provision-users-sagemaker"))
        .build();
    let ports = Ports {
        identity: IdentityStore::new(
            aws_sdk_identitystore::Client::new(&sdk),
            &config.identity_store_id,
        ),
        studio: SageMakerStudio::new(
            aws_sdk_sagemaker::Client::from_conf(sagemaker),
            &config.domain_id,
            config.sagemaker_calls_per_second,
        ),
        publisher: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            &config.suite.event_bus_name,
        ),
        // Only the lease lives in the suite's table for this function (its grant is scoped to that one item).
        lease: DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.suite.idempotency_table,
            provision_users::FUNCTION_NAME,
            config.suite.idempotency_ttl,
        ),
    };
    let handler = &Handler::new(config, ports);
    // `map`, not an `async` block: one less level of nested futures for the compiler to lay out.
    lambda::serve(move |event, context| {
        handler
            .handle(event, context)
            .map(|outcome| serde_json::to_value(outcome?).map_err(HandlerError::Answer))
    })
    .await
}
