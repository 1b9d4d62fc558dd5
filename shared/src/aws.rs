//! One `SdkConfig` for every AWS client of a function, built once in `main`: standard retries, bounded timeouts,
//! and the endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) that point the suite at the local world.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

use crate::config::AwsClientSettings;

/// Loads region, credentials and endpoint overrides from the environment (as every AWS SDK does) and
/// applies the suite's retry and timeout policy.
pub async fn load_sdk_config(settings: &AwsClientSettings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings))
        .load()
        .await
}

pub fn retry_config(settings: &AwsClientSettings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}

pub fn timeout_config(settings: &AwsClientSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_follows_settings() {
        let s = AwsClientSettings {
            max_attempts: 7,
            operation_timeout: Duration::from_secs(12),
            attempt_timeout: Duration::from_secs(4),
        };
        assert_eq!(retry_config(&s).max_attempts(), 7);
        let t = timeout_config(&s);
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(12)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(4)));
    }
}
