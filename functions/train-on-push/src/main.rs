//! train-on-push: a push starts training for the models it changed; a finished job becomes a registered model version.

// The handler's future (a catch-up holding a push's) is deeper than the compiler's default layout depth.
#![recursion_limit = "256"]

use studio_ops_shared::config::{ConfigError, Env, ProcessEnv};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::publisher::EventBridgePublisher;
use studio_ops_shared::{aws, lambda, telemetry};
use train_on_push::adapters::codecommit::CodeCommitSource;
use train_on_push::adapters::dynamodb::{DynamoPushState, DynamoSpendLedger};
use train_on_push::adapters::mlflow::MlflowTracker;
use train_on_push::adapters::s3::S3Artifacts;
use train_on_push::adapters::sagemaker::{SageMakerRegistry, SageMakerTraining};
use train_on_push::config::Config;
use train_on_push::error::HandlerError;
use train_on_push::handler::{Handler, Ports};

/// The idempotency store's namespace for this function.
const NAMESPACE: &str = "train-on-push";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let env = Env::new(&ProcessEnv);
    // The region decides the built-in images; Lambda always sets AWS_REGION.
    let suite_aws = studio_ops_shared::config::SuiteConfig::from_env(&env)
        .map_err(lambda::init_failed)?
        .aws;
    let sdk = aws::load_sdk_config(&suite_aws).await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| ConfigError::Missing {
            var: "AWS_REGION".to_string(),
            expected: "the region the function runs in".to_string(),
        })
        .map_err(lambda::init_failed)?;
    let config = Config::from_env(&env, &region).map_err(lambda::init_failed)?;
    let sagemaker = aws_sdk_sagemaker::Client::new(&sdk);
    // Runs are recorded in MLflow with the function's own credentials, signed like the SDK's calls.
    let tracker = match (&config.mlflow, sdk.credentials_provider()) {
        (Some(m), Some(credentials)) => Some(
            MlflowTracker::new(
                &m.endpoint,
                &m.server_arn,
                &region,
                credentials,
                aws::AMAZON_TRUST_SERVICES_ROOTS,
            )
            .map_err(lambda::init_failed)?,
        ),
        (Some(_), None) => {
            return Err(lambda::init_failed(ConfigError::Missing {
                var: "AWS_ACCESS_KEY_ID".to_string(),
                expected: "credentials to sign MLflow requests with".to_string(),
            }));
        }
        (None, _) => None,
    };
    let ports = Ports {
        source: CodeCommitSource::new(aws_sdk_codecommit::Client::new(&sdk)),
        training: SageMakerTraining::new(sagemaker.clone()),
        registry: SageMakerRegistry::new(sagemaker),
        artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(&sdk)),
        publisher: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            config.suite.event_bus_name.clone(),
        ),
        idempotency: DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.suite.idempotency_table.clone(),
            NAMESPACE,
            config.suite.idempotency_ttl,
        ),
        tracker,
        ledger: config
            .spend
            .as_ref()
            .map(|s| DynamoSpendLedger::new(aws_sdk_dynamodb::Client::new(&sdk), s.table.clone())),
        state: DynamoPushState::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.suite.idempotency_table.clone(),
        ),
    };
    let handler = Handler::new(config, ports);
    let handler = &handler;
    // The runtime answers JSON: the typed outcome, serialized.
    lambda::serve(|event, context| async move {
        let outcome = handler.handle(event, context).await?;
        serde_json::to_value(outcome).map_err(HandlerError::Record)
    })
    .await
}
