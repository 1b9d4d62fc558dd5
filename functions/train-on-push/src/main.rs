//! train-on-push: a push starts training for the models it changed; a finished job becomes a registered model version.

use studio_ops_shared::config::{Env, ProcessEnv};
use studio_ops_shared::{aws, lambda, telemetry};
use train_on_push::{config, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::Config::from_env(&Env::new(&ProcessEnv)).map_err(lambda::init_failed)?;
    let sdk = aws::load_sdk_config(&config.suite.aws).await;
    let handler = handler::Handler::new(config, &sdk);
    lambda::serve(|event, context| handler.handle(event, context)).await
}
