//! provision-users: makes the Studio domain's user profiles follow the configured Identity Center group(s).
// The release build (MIR inlining) nests the handler's futures deeper than rustc's default layout depth of 128.
#![recursion_limit = "256"]

use provision_users::config;
use provision_users::handler::{Handler, Ports};
use provision_users::identity::IdentityStore;
use provision_users::studio::SageMakerStudio;
use studio_ops_shared::config::{Env, ProcessEnv};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::publisher::EventBridgePublisher;
use studio_ops_shared::{aws, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::Config::from_env(&Env::new(&ProcessEnv)).map_err(lambda::init_failed)?;
    let sdk = aws::load_sdk_config(&config.suite.aws).await;
    let ports = Ports {
        identity: IdentityStore::new(
            aws_sdk_identitystore::Client::new(&sdk),
            &config.identity_store_id,
        ),
        studio: SageMakerStudio::new(
            aws_sdk_sagemaker::Client::new(&sdk),
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
    let handler = Handler::new(config, ports);
    lambda::serve(|event, context| handler.handle(event, context)).await
}
