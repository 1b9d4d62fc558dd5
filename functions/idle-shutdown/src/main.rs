//! idle-shutdown: finds idle billable Studio apps, warns their owners, stops them and reports the money saved.

use idle_shutdown::adapters::dynamodb::DynamoTables;
use idle_shutdown::adapters::sagemaker::SageMakerStudio;
use idle_shutdown::adapters::sqs::SqsQueues;
use idle_shutdown::handler::{Handler, Ports};
use idle_shutdown::{config, report};
use studio_ops_shared::config::{Env, ProcessEnv};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::prices::{Component, PriceTable};
use studio_ops_shared::publisher::EventBridgePublisher;
use studio_ops_shared::{aws, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::Config::from_env(&Env::new(&ProcessEnv)).map_err(lambda::init_failed)?;
    let sdk = aws::load_sdk_config(&config.suite.aws).await;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let prices = PriceTable::for_region(Component::Studio, &region, &config.price_overrides)
        .map_err(lambda::init_failed)?;
    tracing::info!(region, known_prices = prices.len(), "price table loaded");
    let ports = Ports {
        studio: SageMakerStudio::new(aws_sdk_sagemaker::Client::new(&sdk), config.rate_limit),
        publisher: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            &config.suite.event_bus_name,
        ),
        state: DynamoTables::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.state_table,
            &config.spend_table,
        ),
        idempotency: DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.suite.idempotency_table,
            report::FUNCTION_NAME,
            config.suite.idempotency_ttl,
        ),
        queues: SqsQueues::new(aws_sdk_sqs::Client::new(&sdk)),
    };
    let handler = Handler::new(config, prices, ports);
    lambda::serve(|event, context| handler.answer(event, context)).await
}
