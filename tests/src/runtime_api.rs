//! A loopback Lambda Runtime API (the protocol `lambda_runtime` speaks to AWS): hosts a function binary as real
//! Lambda processes, hands them invocations and collects their responses and errors.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler returned this JSON.
    Response(Value),
    /// The handler failed; `error_type` is `Retryable` / `NonRetryable` for studio-ops functions.
    Error {
        error_type: String,
        error_message: String,
    },
    /// No answer before the function timeout (crash, hang).
    TimedOut,
}

impl Outcome {
    pub fn response(&self) -> Option<&Value> {
        match self {
            Outcome::Response(v) => Some(v),
            _ => None,
        }
    }

    pub fn error_type(&self) -> Option<&str> {
        match self {
            Outcome::Error { error_type, .. } => Some(error_type),
            _ => None,
        }
    }
}

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub request_id: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "function binary {0} not found; build it first (`cargo build --workspace --bins`, done by `make test`)"
    )]
    MissingBinary(PathBuf),
    #[error("cannot bind the runtime API: {0}")]
    Bind(std::io::Error),
    #[error("cannot spawn {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the runtime API of {0} is closed")]
    Closed(String),
}

struct Pending {
    request_id: String,
    payload: Value,
    deadline_ms: u64,
    reply: oneshot::Sender<Outcome>,
}

struct ApiState {
    function_arn: String,
    queue: Mutex<mpsc::Receiver<Pending>>,
    in_flight: std::sync::Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_errors: std::sync::Mutex<Vec<String>>,
    polls: std::sync::Mutex<Vec<Instant>>,
}

/// How to run a function binary.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    /// The complete environment of the process (nothing is inherited but `PATH`).
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub processes: usize,
    pub log_dir: PathBuf,
}

/// A function hosted behind its own runtime API, with its processes.
pub struct FunctionHost {
    name: String,
    addr: SocketAddr,
    timeout: Duration,
    sender: mpsc::Sender<Pending>,
    state: Arc<ApiState>,
    children: Vec<Child>,
    server: tokio::task::JoinHandle<()>,
    next_id: std::sync::atomic::AtomicU64,
}

impl FunctionHost {
    /// Starts the runtime API and `spec.processes` processes of the binary.
    pub async fn start(spec: FunctionSpec) -> Result<Self, HostError> {
        if !spec.binary.is_file() {
            return Err(HostError::MissingBinary(spec.binary));
        }
        let (sender, receiver) = mpsc::channel(1024);
        let state = Arc::new(ApiState {
            function_arn: format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                spec.name
            ),
            queue: Mutex::new(receiver),
            in_flight: std::sync::Mutex::new(HashMap::new()),
            init_errors: std::sync::Mutex::new(Vec::new()),
            polls: std::sync::Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(HostError::Bind)?;
        let addr = listener.local_addr().map_err(HostError::Bind)?;
        let server = tokio::spawn(serve(listener, state.clone()));
        let mut host = Self {
            name: spec.name.clone(),
            addr,
            timeout: spec.timeout,
            sender,
            state,
            children: Vec::new(),
            server,
            next_id: std::sync::atomic::AtomicU64::new(1),
        };
        for n in 0..spec.processes.max(1) {
            host.spawn_process(&spec, n)?;
        }
        Ok(host)
    }

    fn spawn_process(&mut self, spec: &FunctionSpec, n: usize) -> Result<(), HostError> {
        std::fs::create_dir_all(&spec.log_dir).map_err(|source| HostError::Log {
            path: spec.log_dir.clone(),
            source,
        })?;
        let log_path = spec.log_dir.join(format!("{}-{n}.log", spec.name));
        let log = std::fs::File::create(&log_path).map_err(|source| HostError::Log {
            path: log_path.clone(),
            source,
        })?;
        let err_log = log.try_clone().map_err(|source| HostError::Log {
            path: log_path.clone(),
            source,
        })?;
        let mut cmd = Command::new(&spec.binary);
        cmd.env_clear()
            .envs(lambda_env(&spec.name, self.addr))
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let child = cmd.spawn().map_err(|source| HostError::Spawn {
            bin: spec.binary.clone(),
            source,
        })?;
        self.children.push(child);
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The runtime API address (`AWS_LAMBDA_RUNTIME_API`).
    pub fn runtime_api(&self) -> SocketAddr {
        self.addr
    }

    /// When each `next` poll arrived (the first per process marks the end of its cold start).
    pub fn poll_times(&self) -> Vec<Instant> {
        self.state
            .polls
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Init errors the processes reported.
    pub fn init_errors(&self) -> Vec<String> {
        self.state
            .init_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Invokes the function with `payload` and waits for the outcome (at most the function timeout).
    pub async fn invoke(&self, payload: Value) -> Result<Invocation, HostError> {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("{}-{n:06}-{:08x}", self.name, rand::random::<u32>());
        let (reply, answer) = oneshot::channel();
        let started = Instant::now();
        let deadline_ms = (jiff::Timestamp::now() + self.timeout).as_millisecond() as u64;
        self.sender
            .send(Pending {
                request_id: request_id.clone(),
                payload,
                deadline_ms,
                reply,
            })
            .await
            .map_err(|_| HostError::Closed(self.name.clone()))?;
        let outcome =
            match tokio::time::timeout(self.timeout + Duration::from_secs(2), answer).await {
                Ok(Ok(outcome)) => outcome,
                _ => Outcome::TimedOut,
            };
        Ok(Invocation {
            function: self.name.clone(),
            request_id,
            outcome,
            duration: started.elapsed(),
        })
    }

    /// Stops the processes and the API.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        self.server.abort();
    }
}

impl Drop for FunctionHost {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
        self.server.abort();
    }
}

/// The variables Lambda sets for every function process.
pub fn lambda_env(name: &str, api: SocketAddr) -> BTreeMap<String, String> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_string()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(state);
    let _ = axum::serve(listener, app).await;
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    if let Ok(mut polls) = state.polls.lock() {
        polls.push(Instant::now());
    }
    let pending = {
        let mut queue = state.queue.lock().await;
        queue.recv().await
    };
    let Some(p) = pending else {
        return StatusCode::GONE.into_response();
    };
    if let Ok(mut in_flight) = state.in_flight.lock() {
        in_flight.insert(p.request_id.clone(), p.reply);
    }
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &p.request_id);
    put("lambda-runtime-deadline-ms", &p.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &state.function_arn);
    put(
        "lambda-runtime-trace-id",
        &format!("Root=1-00000000-{:024x};Sampled=0", rand::random::<u64>()),
    );
    put("content-type", "application/json");
    (StatusCode::OK, headers, p.payload.to_string()).into_response()
}

fn finish(state: &ApiState, id: &str, outcome: Outcome) -> StatusCode {
    let reply = state.in_flight.lock().ok().and_then(|mut m| m.remove(id));
    match reply {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(state): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&state, &id, Outcome::Response(value))
}

async fn error(
    State(state): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    finish(
        &state,
        &id,
        Outcome::Error {
            error_type: text("errorType"),
            error_message: text("errorMessage"),
        },
    )
}

async fn init_error(State(state): State<Arc<ApiState>>, body: Bytes) -> StatusCode {
    if let Ok(mut e) = state.init_errors.lock() {
        e.push(String::from_utf8_lossy(&body).into_owned());
    }
    StatusCode::ACCEPTED
}

/// `target/debug/<name>` (honouring `CARGO_TARGET_DIR`), where `cargo build --workspace --bins` puts function binaries.
pub fn function_binary(name: &str) -> PathBuf {
    let target = crate::moto::world_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let profile = std::env::var("STUDIO_OPS_FUNCTION_PROFILE").unwrap_or_else(|_| "debug".into());
    target.join(profile).join(name)
}
