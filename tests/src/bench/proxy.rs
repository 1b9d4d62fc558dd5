//! A timing (and, for the resilience suite, fault-injecting) reverse proxy on loopback: a function's AWS endpoint
//! points here, every call is forwarded to the real local endpoint (moto or the simulator) and its wall-clock
//! interval recorded, so that the time a handler spends waiting for AWS can be taken out of its invocation time.
//! With a [`FaultPlan`] it answers a seeded share of AWS JSON calls with `ThrottlingException` or a 5xx instead.
//! Each call keeps what identifies the request (method, path, target, body) and the answer's status, which is what
//! the IAM replay test (`tests/tests/iam.rs`) evaluates against the functions' roles.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::BenchError;

const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// One forwarded call.
#[derive(Debug, Clone)]
pub struct Call {
    pub started: Instant,
    pub finished: Instant,
    /// `X-Amz-Target`, else the method and path.
    pub operation: String,
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// `X-Amz-Target` (AWS JSON protocols), if any.
    pub target: Option<String>,
    pub body: Bytes,
    /// The upstream's HTTP status (0 when it could not be reached or the call was answered by the fault plan).
    pub status: u16,
}

/// Which share of AWS JSON calls (those with `X-Amz-Target`) is answered with an injected error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// `ThrottlingException` (HTTP 400), as the simulator's own rate limiter answers.
    pub throttle: f64,
    /// HTTP 500 `InternalFailure` or 503 `ServiceUnavailable`, alternating.
    pub server_error: f64,
    pub seed: u64,
}

/// What the fault plan did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedFaults {
    pub throttled: u64,
    pub server_errors: u64,
    pub forwarded: u64,
}

struct FaultState {
    plan: FaultPlan,
    rng: rand::rngs::StdRng,
    counts: InjectedFaults,
}

struct Shared {
    upstream: OnceLock<String>,
    http: reqwest::Client,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Option<FaultState>>,
}

/// A running proxy; dropping it stops it.
pub struct TimingProxy {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TimingProxy {
    pub async fn start(upstream: &str) -> Result<TimingProxy, BenchError> {
        let proxy = Self::start_deferred(None).await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// A proxy whose upstream is set later ([`TimingProxy::set_upstream`]): its URL can go into a function's
    /// environment before the endpoint it fronts exists. Calls made before then are answered 503.
    pub async fn start_deferred(faults: Option<FaultPlan>) -> Result<TimingProxy, BenchError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(BenchError::io("bind the timing proxy"))?;
        let addr = listener
            .local_addr()
            .map_err(BenchError::io("timing proxy address"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| BenchError::Failed(format!("proxy HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            upstream: OnceLock::new(),
            http,
            calls: Mutex::new(Vec::new()),
            faults: Mutex::new(faults.map(|plan| FaultState {
                rng: rand::SeedableRng::seed_from_u64(plan.seed),
                plan,
                counts: InjectedFaults::default(),
            })),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TimingProxy {
            url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sets where calls go (once; later calls are ignored).
    pub fn set_upstream(&self, upstream: &str) {
        let _ = self
            .shared
            .upstream
            .set(upstream.trim_end_matches('/').to_string());
    }

    /// Changes the fault plan (`None` stops injecting); counts are kept.
    pub fn set_faults(&self, plan: Option<FaultPlan>) {
        if let Ok(mut f) = self.shared.faults.lock() {
            let counts = f.as_ref().map(|s| s.counts).unwrap_or_default();
            *f = plan.map(|plan| FaultState {
                rng: rand::SeedableRng::seed_from_u64(plan.seed),
                plan,
                counts,
            });
        }
    }

    /// What was injected so far (zero without a plan).
    pub fn injected(&self) -> InjectedFaults {
        self.shared
            .faults
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(|s| s.counts))
            .unwrap_or_default()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared
            .calls
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

impl Drop for TimingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let operation = target
        .clone()
        .unwrap_or_else(|| format!("{method} {}", uri.path()));
    if headers.contains_key("x-amz-target")
        && let Some(injected) = inject(&sh)
    {
        return injected.into_response();
    }
    let Some(upstream) = sh.upstream.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(m) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut req = sh
        .http
        .request(m, format!("{upstream}{path}"))
        .body(body.clone());
    let mut status = 0;
    for (k, v) in &headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let answer = match req.send().await {
        Ok(resp) => {
            status = resp.status().as_u16();
            let mut out_headers = HeaderMap::new();
            for (k, v) in resp.headers() {
                if HOP_BY_HOP.contains(&k.as_str()) {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(k.as_str().as_bytes()),
                    axum::http::HeaderValue::from_bytes(v.as_bytes()),
                ) {
                    out_headers.append(name, value);
                }
            }
            match resp.bytes().await {
                Ok(bytes) => {
                    let mut r = Response::new(Body::from(bytes));
                    *r.status_mut() =
                        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                    r.headers_mut().extend(out_headers);
                    r
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    };
    if let Ok(mut calls) = sh.calls.lock() {
        calls.push(Call {
            started,
            finished: Instant::now(),
            operation,
            method: method.to_string(),
            path: path.to_string(),
            target,
            body,
            status,
        });
    }
    answer
}

/// Draws the fault plan's dice for one call.
fn inject(sh: &Shared) -> Option<crate::sim::protocol::AwsError> {
    use rand::Rng;
    let mut guard = sh.faults.lock().ok()?;
    let state = guard.as_mut()?;
    let roll: f64 = state.rng.random();
    if roll < state.plan.throttle {
        state.counts.throttled += 1;
        return Some(crate::sim::protocol::AwsError::throttling());
    }
    if roll < state.plan.throttle + state.plan.server_error {
        state.counts.server_errors += 1;
        return Some(if state.counts.server_errors % 2 == 1 {
            crate::sim::protocol::AwsError::internal(
                "We encountered an internal error. Please try again.",
            )
        } else {
            crate::sim::protocol::AwsError::unavailable()
        });
    }
    state.counts.forwarded += 1;
    None
}

/// How long at least one call was in flight within `[from, to]` (the union of the calls' intervals, clipped):
/// concurrent calls are not counted twice.
pub fn time_in_calls(calls: &[Call], from: Instant, to: Instant) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = calls
        .iter()
        .map(|c| (c.started.max(from), c.finished.min(to)))
        .filter(|(s, e)| s < e)
        .collect();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (s, e) in spans {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

/// Calls that started within `[from, to]`.
pub fn calls_within(calls: &[Call], from: Instant, to: Instant) -> usize {
    calls
        .iter()
        .filter(|c| c.started >= from && c.started <= to)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(t0: Instant, from_ms: u64, to_ms: u64) -> Call {
        Call {
            started: t0 + Duration::from_millis(from_ms),
            finished: t0 + Duration::from_millis(to_ms),
            operation: "X".into(),
            method: "POST".into(),
            path: "/".into(),
            target: None,
            body: Bytes::new(),
            status: 200,
        }
    }

    #[test]
    fn overlapping_calls_count_once_and_are_clipped() {
        let t0 = Instant::now();
        let calls = [
            call(t0, 10, 20),
            call(t0, 15, 30),
            call(t0, 40, 50),
            call(t0, 95, 120),
        ];
        let busy = time_in_calls(&calls, t0, t0 + Duration::from_millis(100));
        assert_eq!(busy, Duration::from_millis(20 + 10 + 5));
        assert_eq!(calls_within(&calls, t0, t0 + Duration::from_millis(100)), 4);
        assert_eq!(
            time_in_calls(
                &calls,
                t0 + Duration::from_millis(60),
                t0 + Duration::from_millis(90)
            ),
            Duration::ZERO
        );
    }
}
