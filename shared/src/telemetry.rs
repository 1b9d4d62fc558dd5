//! Structured JSON logs for CloudWatch (the Lambda request id on every line via the runtime's span) and the
//! process-wide subscriber set-up.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the JSON subscriber once per process. Level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
/// controls) or `RUST_LOG`, default `info`. Every line is one JSON object with `timestamp`, `level`,
/// `message` (flattened fields) and the current span, whose `requestId` the Lambda runtime sets per invocation.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string())
        .to_ascii_lowercase();
    let filter = EnvFilter::builder()
        .parse(&level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(FmtSpan::NONE)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}
