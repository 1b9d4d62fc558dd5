//! provision-users: makes the Studio domain's user profiles follow the configured Identity Center group(s).

use provision_users::{config, handler};
use studio_ops_shared::config::{Env, ProcessEnv};
use studio_ops_shared::{aws, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = config::Config::from_env(&Env::new(&ProcessEnv)).map_err(lambda::init_failed)?;
    let sdk = aws::load_sdk_config(&config.suite.aws).await;
    let handler = handler::Handler::new(config, &sdk);
    lambda::serve(|event, context| handler.handle(event, context)).await
}
