//! Warm invocations and peak memory: one function process hosted behind the loopback Runtime API with its AWS
//! endpoints behind timing proxies; the handler's own overhead per event is the invocation time minus the time
//! at least one AWS call was in flight. The process's high-water RSS is read after the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::proxy::{TimingProxy, calls_within, time_in_calls};
use super::rss::{children_running, status_bytes};
use super::{BenchError, Summary};
use crate::runtime_api::{FunctionHost, FunctionSpec, Outcome};
use crate::world::{World, aws_env};

/// The warm figures of one function.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmResult {
    pub function: String,
    /// Handler overhead per invocation (ms): invocation time minus time waiting for AWS.
    pub overhead_ms: Summary,
    /// Whole invocation as the runtime API sees it (ms), AWS time included.
    pub end_to_end_ms: Summary,
    /// The first invocation of the process (ms): lazy start-up work (HTTP client, TLS set-up) shows here.
    pub first_invocation_ms: f64,
    pub first_invocation_overhead_ms: f64,
    pub aws_calls_per_invocation: f64,
    /// `ok`, `error:<type>`, `timed-out` counts over the measured invocations.
    pub outcomes: BTreeMap<String, usize>,
    /// VmHWM right after init (before the first invocation) and after every invocation.
    pub rss_after_init_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Which events were cycled through.
    pub events: Vec<String>,
    /// Pause between invocations (ms).
    pub pause_ms: u64,
    /// Environment set on top of the template's.
    pub env: BTreeMap<String, String>,
}

/// One event of a warm run: a label and the payload (its `id`, if any, is made unique per invocation so that
/// idempotency does not turn repeats into no-ops).
#[derive(Debug, Clone)]
pub struct WarmEvent {
    pub label: String,
    pub payload: Value,
}

/// The environment a hosted function gets in the world, with AWS endpoints replaced by `moto_url`/`sim_url`.
pub fn function_env(
    world: &World,
    function: &str,
    moto_url: &str,
    sim_url: &str,
) -> Result<BTreeMap<String, String>, BenchError> {
    let spec = world
        .template
        .functions
        .iter()
        .find(|f| f.name == function)
        .ok_or_else(|| BenchError::Failed(format!("no function {function} in the template")))?;
    let mut env = spec.env.clone();
    env.extend(aws_env(moto_url, sim_url));
    Ok(env)
}

/// Hosts `binary` as `function` with the given environment (one process) and waits for its first poll.
pub async fn host(
    function: &str,
    binary: &Path,
    env: BTreeMap<String, String>,
    timeout: Duration,
    log_dir: &Path,
) -> Result<FunctionHost, BenchError> {
    let host = FunctionHost::start(FunctionSpec {
        name: function.to_string(),
        binary: binary.to_path_buf(),
        env,
        timeout,
        processes: 1,
        log_dir: log_dir.to_path_buf(),
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while host.poll_times().is_empty() {
        if !host.init_errors().is_empty() {
            return Err(BenchError::Failed(format!(
                "{function} failed to initialise: {:?}",
                host.init_errors()
            )));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "{function} did not poll the runtime API within 30 s; see {}",
                log_dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(host)
}

fn outcome_key(o: &Outcome) -> String {
    match o {
        Outcome::Response(_) => "ok".into(),
        Outcome::Error { error_type, .. } => format!("error:{error_type}"),
        Outcome::TimedOut => "timed-out".into(),
    }
}

/// A fresh `id` for an envelope (other payloads are returned as they are).
pub fn with_fresh_id(payload: &Value, n: usize) -> Value {
    let mut p = payload.clone();
    if let Some(obj) = p.as_object_mut()
        && obj.contains_key("id")
    {
        obj.insert(
            "id".into(),
            Value::String(format!("bench-{n:06}-{:08x}", rand::random::<u32>())),
        );
    }
    p
}

/// What a warm run sends: the events cycled through, the environment on top of the template's, how many
/// invocations and the pause before each.
#[derive(Debug, Clone)]
pub struct WarmSpec {
    pub events: Vec<WarmEvent>,
    pub env: BTreeMap<String, String>,
    pub invocations: usize,
    pub pause: Duration,
}

/// Runs `spec.invocations` warm invocations of `function` (cycling through the events) after one first invocation.
pub async fn measure(
    world: &World,
    function: &str,
    binary: &Path,
    spec: &WarmSpec,
    log_dir: &Path,
) -> Result<WarmResult, BenchError> {
    let (events, extra_env, invocations, pause) =
        (&spec.events, &spec.env, spec.invocations, spec.pause);
    if events.is_empty() {
        return Err(BenchError::Failed(format!("no warm events for {function}")));
    }
    let moto_proxy = TimingProxy::start(world.moto().url()).await?;
    let sim_proxy = TimingProxy::start(world.sim().url()).await?;
    let mut env = function_env(world, function, moto_proxy.url(), sim_proxy.url())?;
    env.extend(extra_env.clone());
    let host = host(function, binary, env, Duration::from_secs(60), log_dir).await?;
    let canonical: PathBuf = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.into());
    let pid = children_running(&canonical)
        .first()
        .copied()
        .ok_or_else(|| BenchError::Failed(format!("cannot find the {function} process")))?;
    let rss_after_init = status_bytes(pid, "VmHWM").unwrap_or(0);

    let aws_busy = |from: Instant, to: Instant| {
        let (m, s) = (moto_proxy.calls(), sim_proxy.calls());
        let mut all = m;
        all.extend(s);
        (time_in_calls(&all, from, to), calls_within(&all, from, to))
    };

    let mut result = WarmResult {
        function: function.to_string(),
        rss_after_init_bytes: rss_after_init,
        events: events.iter().map(|e| e.label.clone()).collect(),
        pause_ms: pause.as_millis() as u64,
        env: extra_env.clone(),
        ..WarmResult::default()
    };

    let first = with_fresh_id(&events[0].payload, 0);
    let t0 = Instant::now();
    let inv = host.invoke(first).await?;
    let t1 = Instant::now();
    let (busy, _) = aws_busy(t0, t1);
    result.first_invocation_ms = inv.duration.as_secs_f64() * 1e3;
    result.first_invocation_overhead_ms = (inv.duration.saturating_sub(busy)).as_secs_f64() * 1e3;

    let mut overhead = Vec::with_capacity(invocations);
    let mut e2e = Vec::with_capacity(invocations);
    let mut calls = 0usize;
    for n in 0..invocations {
        // Events arrive spaced out in production; the pause lets a function's own rate limiter refill, so that
        // waiting for it is not counted as handler overhead.
        tokio::time::sleep(pause).await;
        let event = &events[n % events.len()];
        let payload = with_fresh_id(&event.payload, n + 1);
        let from = Instant::now();
        let inv = host.invoke(payload).await?;
        let to = Instant::now();
        let (busy, count) = aws_busy(from, to);
        calls += count;
        *result
            .outcomes
            .entry(outcome_key(&inv.outcome))
            .or_default() += 1;
        e2e.push(inv.duration);
        overhead.push(inv.duration.saturating_sub(busy));
    }
    result.overhead_ms = Summary::of_durations(&overhead);
    result.end_to_end_ms = Summary::of_durations(&e2e);
    result.aws_calls_per_invocation = calls as f64 / invocations.max(1) as f64;
    result.peak_rss_bytes = status_bytes(pid, "VmHWM").unwrap_or(0);
    host.stop().await;
    Ok(result)
}
