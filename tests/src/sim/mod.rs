//! The Studio/CodeCommit simulator: a loopback HTTP server speaking AWS JSON 1.1 so the real
//! `aws-sdk-sagemaker` and `aws-sdk-codecommit` clients talk to it unchanged. It holds Studio
//! state (domains, user profiles, spaces, apps, tags) in memory, answers CodeCommit reads from
//! real git repositories, forwards every other SageMaker operation to moto, and offers knobs
//! (latency, throttling, faults, lifecycle delays) plus an admin API under `/_sim/`.

pub mod admin;
pub mod codecommit;
pub mod knobs;
pub mod protocol;
pub mod sagemaker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Json, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use admin::AdminClient;
pub use knobs::{Knobs, KnobsPatch, RateLimit, Stats};

use admin::{ActivityRequest, SeedRequest};
use codecommit::CodeCommit;
use knobs::Governor;
use protocol::{AwsError, Input, ok_response};
use sagemaker::{Outcome, World};

/// The account id in every ARN the simulator makes.
pub const ACCOUNT_ID: &str = "123456789012";

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Loopback address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where unimplemented SageMaker operations go (e.g. `http://127.0.0.1:5000`).
    pub moto_url: Option<String>,
    /// Directory of bare repositories `<name>.git` for CodeCommit.
    pub git_root: PathBuf,
    /// Seed of every random choice (ids, jitter, faults).
    pub seed: u64,
    /// Region in ARNs and URLs.
    pub region: String,
    /// Account in ARNs.
    pub account_id: String,
    /// Knobs in force at start (and after `/_sim/reset`).
    pub knobs: Knobs,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            moto_url: None,
            git_root: std::env::temp_dir(),
            seed: 42,
            region: "us-east-1".to_owned(),
            account_id: ACCOUNT_ID.to_owned(),
            knobs: Knobs::default(),
        }
    }
}

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulator binds loopback addresses only, not {0}")]
    NotLoopback(SocketAddr),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("git root {0} is not a directory")]
    GitRoot(PathBuf),
    #[error("invalid knobs: {0}")]
    Knobs(String),
    #[error("cannot build the forwarding HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

struct Shared {
    world: Mutex<World>,
    gov: Mutex<Governor>,
    codecommit: CodeCommit,
    moto_url: Option<String>,
    http: reqwest::Client,
    /// What moto drops from a training job, by job name: its `MlflowConfig` and when it was created.
    training: Mutex<BTreeMap<String, TrainingExtras>>,
    /// The tags each model package was created with, by ARN: moto keeps none for model packages, and ListTags is how
    /// train-on-push tells its own versions (`studio-ops:*` tags users cannot set) from a user's.
    package_tags: Mutex<BTreeMap<String, Value>>,
}

/// What SageMaker describes of a training job and moto does not.
#[derive(Debug, Clone)]
struct TrainingExtras {
    mlflow_config: Option<Value>,
    created: i64,
}

/// How long a training job of the local world bills: moto finishes jobs at once, SageMaker's would have run.
pub const TRAINING_BILLABLE_SECONDS: i64 = 900;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running simulator; dropping it shuts the server down.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL for the SDK clients.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A typed admin client for this simulator.
    pub fn admin(&self) -> AdminClient {
        AdminClient::new(&self.url)
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the simulator on a loopback port.
pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
    if !cfg.bind.ip().is_loopback() {
        return Err(SimError::NotLoopback(cfg.bind));
    }
    if !cfg.git_root.is_dir() {
        return Err(SimError::GitRoot(cfg.git_root));
    }
    cfg.knobs.validate().map_err(SimError::Knobs)?;
    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .map_err(|source| SimError::Bind {
            addr: cfg.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: cfg.bind,
        source,
    })?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let shared = Arc::new(Shared {
        world: Mutex::new(World::new(&cfg.region, &cfg.account_id, cfg.seed)),
        gov: Mutex::new(Governor::new(cfg.knobs.clone(), cfg.seed)),
        codecommit: CodeCommit::new(&cfg.git_root, &cfg.region, &cfg.account_id),
        moto_url: cfg.moto_url.map(|u| u.trim_end_matches('/').to_owned()),
        http,
        training: Mutex::new(BTreeMap::new()),
        package_tags: Mutex::new(BTreeMap::new()),
    });
    let app = router(shared);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "studio-sim server stopped with an error");
        }
    });
    Ok(SimHandle {
        addr,
        url: format!("http://{addr}"),
        shutdown: Some(tx),
        task: Some(task),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/knobs", get(get_knobs).post(post_knobs))
        .route("/_sim/seed", post(post_seed))
        .route("/_sim/activity", post(post_activity))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/stats/reset", post(post_stats_reset))
        .route("/_sim/state", get(get_state))
        .route("/_sim/reset", post(post_reset))
        .fallback(aws_entry)
        .layer(DefaultBodyLimit::max(512 * 1024 * 1024))
        .with_state(shared)
}

// ----- AWS protocol entry -----

async fn aws_entry(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(target) = target else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "not an AWS JSON request (no X-Amz-Target) nor an admin path" })),
        )
            .into_response();
    };
    let (service, op) = target.split_once('.').unwrap_or(("", target.as_str()));
    let (service, op) = (service.to_owned(), op.to_owned());

    let admission = lock(&sh.gov).admit(&op, tokio::time::Instant::now());
    if !admission.delay.is_zero() {
        tokio::time::sleep(admission.delay).await;
    }
    if let Some(e) = admission.reject {
        return e.into_response();
    }

    let result: Result<Response, AwsError> = match service.as_str() {
        "SageMaker" => sagemaker_call(&sh, &op, &target, &method, &uri, &headers, body).await,
        "CodeCommit_20150413" => match Input::parse(&body) {
            Ok(input) => sh
                .codecommit
                .call(&op, &input)
                .await
                .map(|v| ok_response(&v)),
            Err(e) => Err(e),
        },
        _ => Err(AwsError::unknown_operation(&target)),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            lock(&sh.gov).record_error(&e.code);
            e.into_response()
        }
    }
}

async fn sagemaker_call(
    sh: &Shared,
    op: &str,
    target: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, AwsError> {
    let input = Input::parse(&body)?;
    let outcome = {
        let knobs = lock(&sh.gov).knobs().clone();
        lock(&sh.world).call(op, &input, &knobs, Timestamp::now())
    };
    match outcome {
        Outcome::Done(r) => r.map(|v| ok_response(&v)),
        Outcome::Forward => {
            let Some(moto) = &sh.moto_url else {
                return Err(AwsError::unknown_operation(target));
            };
            lock(&sh.gov).record_forward(op);
            if op == "CreateTrainingJob"
                && let Some(name) = input.value("TrainingJobName").and_then(Value::as_str)
            {
                let extras = TrainingExtras {
                    mlflow_config: input.value("MlflowConfig").cloned(),
                    created: Timestamp::now().as_second(),
                };
                lock(&sh.training).entry(name.to_string()).or_insert(extras);
            }
            if op == "ListTags"
                && let Some(arn) = input.value("ResourceArn").and_then(Value::as_str)
                && arn.contains(":model-package/")
            {
                let tags = lock(&sh.package_tags).get(arn).cloned();
                return Ok(ok_response(
                    &json!({ "Tags": tags.unwrap_or_else(|| json!([])) }),
                ));
            }
            let tags = input.value("Tags").cloned();
            let response = forward(sh, moto, method, uri, headers, body).await?;
            if !response.status().is_success() {
                return Ok(response);
            }
            match op {
                "DescribeTrainingJob" => complete_training_job(sh, response).await,
                "CreateModelPackage" => remember_package_tags(sh, response, tags).await,
                _ => Ok(response),
            }
        }
    }
}

/// Keeps the tags a model package was created with (moto's answer passes through unchanged).
async fn remember_package_tags(
    sh: &Shared,
    response: Response,
    tags: Option<Value>,
) -> Result<Response, AwsError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| AwsError::internal(format!("reading moto's answer failed: {e}")))?;
    if let Some(arn) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["ModelPackageArn"].as_str().map(str::to_string))
    {
        lock(&sh.package_tags).insert(arn, tags.unwrap_or_else(|| json!([])));
    }
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

/// moto's DescribeTrainingJob with what SageMaker also answers: the `MlflowConfig` the job was created with,
/// and for a finished job its start, end and `BillableTimeInSeconds` ([`TRAINING_BILLABLE_SECONDS`]).
async fn complete_training_job(sh: &Shared, response: Response) -> Result<Response, AwsError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| AwsError::internal(format!("reading moto's answer failed: {e}")))?;
    let Ok(mut job) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, axum::body::Body::from(bytes)));
    };
    let name = job["TrainingJobName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let extras = lock(&sh.training).get(&name).cloned();
    if let (Some(extras), Some(obj)) = (extras, job.as_object_mut()) {
        if let Some(config) = extras.mlflow_config {
            obj.insert("MlflowConfig".into(), config);
        }
        let finished = matches!(
            obj.get("TrainingJobStatus").and_then(Value::as_str),
            Some("Completed" | "Failed" | "Stopped")
        );
        if finished && !obj.contains_key("BillableTimeInSeconds") {
            let start = extras.created;
            obj.insert("TrainingStartTime".into(), json!(start));
            obj.insert(
                "TrainingEndTime".into(),
                json!(start + TRAINING_BILLABLE_SECONDS),
            );
            obj.insert(
                "TrainingTimeInSeconds".into(),
                json!(TRAINING_BILLABLE_SECONDS),
            );
            obj.insert(
                "BillableTimeInSeconds".into(),
                json!(TRAINING_BILLABLE_SECONDS),
            );
        }
    }
    let body = serde_json::to_vec(&job).map_err(|e| AwsError::internal(e.to_string()))?;
    let mut parts = parts;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, axum::body::Body::from(body)))
}

const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

async fn forward(
    sh: &Shared,
    moto: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, AwsError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{moto}{path}");
    let m = reqwest::Method::from_bytes(method.as_str().as_bytes())
        .map_err(|e| AwsError::internal(format!("bad method: {e}")))?;
    let mut req = sh.http.request(m, &url).body(body);
    for (k, v) in headers {
        if HOP_BY_HOP.contains(&k.as_str()) {
            continue;
        }
        req = req.header(k.as_str(), v.as_bytes());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| AwsError::internal(format!("forwarding to moto failed: {e}")))?;
    let status = StatusCode::from_u16(resp.status().as_u16())
        .map_err(|e| AwsError::internal(format!("moto answered a bad status: {e}")))?;
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if HOP_BY_HOP.contains(&k.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(val)) = (
            HeaderName::from_bytes(k.as_str().as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            out_headers.append(name, val);
        }
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| AwsError::internal(format!("reading moto's answer failed: {e}")))?;
    let mut r = (status, bytes.to_vec()).into_response();
    r.headers_mut().extend(out_headers);
    Ok(r)
}

// ----- admin -----

fn admin_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

async fn get_knobs(State(sh): State<Arc<Shared>>) -> Response {
    Json(lock(&sh.gov).knobs().clone()).into_response()
}

async fn post_knobs(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: KnobsPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("bad knobs: {e}")),
    };
    match lock(&sh.gov).patch(patch) {
        Ok(k) => Json(k).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn post_seed(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: SeedRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("bad seed request: {e}")),
    };
    match lock(&sh.world).seed(req, Timestamp::now()) {
        Ok(r) => Json(r).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn post_activity(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: ActivityRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("bad activity: {e}")),
    };
    let knobs = lock(&sh.gov).knobs().clone();
    match lock(&sh.world).activity(&req, &knobs, Timestamp::now()) {
        Ok(a) => Json(a).into_response(),
        Err(e) => admin_error(StatusCode::NOT_FOUND, e),
    }
}

async fn get_stats(State(sh): State<Arc<Shared>>) -> Response {
    Json(lock(&sh.gov).stats().clone()).into_response()
}

async fn post_stats_reset(State(sh): State<Arc<Shared>>) -> Response {
    let mut g = lock(&sh.gov);
    g.reset_stats();
    Json(g.stats().clone()).into_response()
}

async fn get_state(State(sh): State<Arc<Shared>>) -> Response {
    let knobs = lock(&sh.gov).knobs().clone();
    let dump = lock(&sh.world).dump(&knobs, Timestamp::now());
    Json(dump).into_response()
}

async fn post_reset(State(sh): State<Arc<Shared>>) -> Response {
    lock(&sh.world).reset();
    lock(&sh.gov).reset();
    Json(Value::Object(serde_json::Map::new())).into_response()
}
