//! One `SdkConfig` for every AWS client of a function, built once in `main`: standard retries, bounded timeouts,
//! the endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) that point the suite at the local world,
//! and an HTTPS client that trusts the Amazon Trust Services roots only.
//!
//! Why not the platform's trust store: the SDK's default client reads and parses every certificate the system
//! has at cold start (the bundle, and on Debian-like images each file of `/etc/ssl/certs` again), which was more
//! than half of a function's cold init (`make bench`: 7.6–9.1 ms → 3.5–4.8 ms). The functions only ever talk to
//! AWS endpoints (public or VPC interface endpoints), all of which chain to these five roots, so trusting
//! nothing else is also the least privilege for TLS.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sagemaker::config::retry::{RetryPartition, TokenBucket};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::Duration;

use crate::config::AwsClientSettings;

/// Loads region, credentials and endpoint overrides from the environment (as every AWS SDK does) and
/// applies the suite's retry and timeout policy.
pub async fn load_sdk_config(settings: &AwsClientSettings) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings));
    match aws_https_client() {
        Some(client) => loader.http_client(client),
        None => loader,
    }
    .load()
    .await
}

/// Amazon Root CA 1–4 and Starfield Services Root CA G2 (https://www.amazontrust.com/repository/).
pub const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("tls/amazon-trust-services.pem");

/// The SDK's default HTTPS client (rustls with aws-lc, proxy settings from the environment) trusting only
/// [`AMAZON_TRUST_SERVICES_ROOTS`]; `None` (the SDK default) if the TLS context cannot be built.
pub fn aws_https_client() -> Option<SharedHttpClient> {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS);
    let context = TlsContext::builder().with_trust_store(trust).build().ok()?;
    Some(
        Builder::new().build_with_connector_fn(move |settings, runtime_components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = runtime_components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}

/// The SDK's standard retry mode is the suite's one retry layer: `max_attempts` tries per call, exponential
/// backoff with jitter (100 ms doubling to 5 s), and the retry quota of the client's retry partition (a token
/// bucket: each retry takes tokens, a retry that succeeds gives them back, a first-try success adds one; an empty
/// bucket stops retrying at once). Functions do not retry AWS calls again on top of this.
pub fn retry_config(settings: &AwsClientSettings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}

/// Attempts per call for a client that must wait out throttling (see [`throttled_retry_config`]).
pub const THROTTLED_MAX_ATTEMPTS: u32 = 10;

/// The standard retry policy for a client whose calls must wait out sustained throttling rather than fail: a bulk
/// run (provision-users' reconcile of a whole group) meets SageMaker's per-API quotas, which Studio's console and the
/// other functions share, so a call can be throttled five times in a row. Ten attempts (at least; more if configured)
/// with a backoff from 250 ms doubling to 4 s wait up to about 24 s, inside the call's operation timeout; this
/// replaces provision-users' former second retry loop (four more rounds of the SDK's attempts).
pub fn throttled_retry_config(settings: &AwsClientSettings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(settings.max_attempts.max(THROTTLED_MAX_ATTEMPTS))
        .with_initial_backoff(Duration::from_millis(250))
        .with_max_backoff(Duration::from_secs(4))
}

/// Tokens a function's retry partition regains each second with no call succeeding.
pub const RETRY_REFILL_PER_SECOND: f32 = 10.0;

/// A retry partition of a function's own for one service, whose retry quota refills with time.
///
/// Clients share the token bucket of their partition, by default one per service for the whole process, which
/// regains a token only when a call succeeds at its first try. Under sustained throttling few do: once empty, the
/// bucket lets every call of the warm process fail on its first throttle, for the rest of that invocation and
/// the next ones (what provision-users once answered with a second retry loop of its own). A bucket that also
/// refills with time gives the service time to recover (the 500-token capacity and the per-retry costs stay the
/// SDK's defaults; 10 tokens a second pay for two throttled retries a second when the bucket is empty).
///
/// smithy-rs API: `aws_smithy_runtime::client::retries::{RetryPartition::custom(name).token_bucket(..).build(),
/// TokenBucket::builder().refill_rate(..).build()}` (re-exported as `aws_sdk_<service>::config::retry`), set on a
/// client with its config builder's `retry_partition(..)`: the partition is per client, `SdkConfig` has none
/// (<https://docs.rs/aws-smithy-runtime/latest/aws_smithy_runtime/client/retries/struct.RetryPartition.html>).
pub fn retry_partition(name: &'static str) -> RetryPartition {
    RetryPartition::custom(name)
        .token_bucket(
            TokenBucket::builder()
                .refill_rate(RETRY_REFILL_PER_SECOND)
                .build(),
        )
        .build()
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
    use sha2::{Digest, Sha256};

    /// The published SHA-256 fingerprints of the five roots, in file order.
    const FINGERPRINTS: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
    ];

    fn base64_decode(text: &str) -> Vec<u8> {
        use base64::Engine;
        let clean: String = text.split_ascii_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .unwrap()
    }

    #[test]
    fn trust_store_is_exactly_the_amazon_trust_services_roots() {
        let text = std::str::from_utf8(AMAZON_TRUST_SERVICES_ROOTS).unwrap();
        let ders: Vec<Vec<u8>> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| base64_decode(block.split("-----END CERTIFICATE-----").next().unwrap()))
            .collect();
        let found: Vec<String> = ders
            .iter()
            .map(|d| hex::encode(Sha256::digest(d)))
            .collect();
        assert_eq!(found, FINGERPRINTS);
    }

    #[tokio::test]
    async fn the_client_builds_its_tls_context_and_reports_connection_errors() {
        // Building the connector parses the roots (the SDK panics on a malformed one); a refused connection must
        // then be an ordinary dispatch error.
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(aws_https_client().unwrap())
            .credentials_provider(aws_sdk_eventbridge::config::SharedCredentialsProvider::new(
                aws_sdk_eventbridge::config::Credentials::new("a", "b", None, None, "test"),
            ))
            .endpoint_url("https://127.0.0.1:9")
            .retry_config(RetryConfig::disabled())
            .build();
        let err = aws_sdk_eventbridge::Client::new(&sdk)
            .list_event_buses()
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                aws_smithy_runtime_api::client::result::SdkError::DispatchFailure(_)
            ),
            "{err:?}"
        );
    }

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
