//! The run tracker over SageMaker managed MLflow's REST API (MLflow 2.0 endpoints: experiments get-by-name and
//! create, runs search, create, log-batch and update), each request signed with SigV4 for the service
//! `sagemaker-mlflow` and addressed to the tracking server by the `x-mlflow-sm-tracking-server-arn` header — what
//! the aws/sagemaker-mlflow plugin does (docs/train-on-push.md, "Experiment tracking"). The endpoint is the regional
//! `https://<region>.experiments.sagemaker.aws`, reached from the VPC through the `aws.sagemaker.<region>.experiments`
//! interface endpoint. In the local world it is a real MLflow server on loopback, which ignores the signature.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};
use studio_ops_shared::{AwsCallError, ErrorClass};

use crate::ports::{RunEnd, RunStart, RunStatus, RunTracker, TrackedRun};

/// The SigV4 service name of SageMaker managed MLflow (aws/sagemaker-mlflow `auth.py`).
pub const SIGNING_NAME: &str = "sagemaker-mlflow";
/// The header that names the tracking server (aws/sagemaker-mlflow request header provider).
pub const SERVER_HEADER: &str = "x-mlflow-sm-tracking-server-arn";
/// The tag that finds a job's run again (a replay, the job's end).
pub const JOB_TAG: &str = "studio-ops.training-job";
/// What one log-batch request carries at most (MLflow takes 100 params, 100 tags and 1000 metrics).
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_METRICS_PER_BATCH: usize = 100;
/// MLflow refuses longer param values (6000 on current servers; 500 on older ones, so stay under that).
const MAX_PARAM_VALUE: usize = 500;

/// The regional endpoint of SageMaker managed MLflow tracking servers.
pub fn regional_endpoint(region: &str) -> String {
    format!("https://{region}.experiments.sagemaker.aws")
}

#[derive(Clone)]
pub struct MlflowTracker {
    http: reqwest::Client,
    endpoint: String,
    server_arn: String,
    region: String,
    credentials: SharedCredentialsProvider,
}

/// A failed MLflow call: the error code MLflow answered (`RESOURCE_DOES_NOT_EXIST` …) when it answered one.
fn failure(operation: &'static str, status: u16, body: &str) -> AwsCallError {
    let code = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.get("error_code")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let class = if status == 429 || status >= 500 {
        ErrorClass::Retryable
    } else {
        ErrorClass::NonRetryable
    };
    let mut excerpt: String = body.chars().take(300).collect();
    if excerpt.is_empty() {
        excerpt = format!("HTTP {status}");
    }
    AwsCallError {
        operation,
        class,
        code,
        message: format!("MLflow answered HTTP {status}: {excerpt}"),
    }
}

fn transport(operation: &'static str, e: impl std::fmt::Display) -> AwsCallError {
    AwsCallError::other(operation, ErrorClass::Retryable, e.to_string())
}

fn internal(operation: &'static str, e: impl std::fmt::Display) -> AwsCallError {
    AwsCallError::other(operation, ErrorClass::NonRetryable, e.to_string())
}

fn key_values(pairs: &[(String, String)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

impl MlflowTracker {
    /// `endpoint`: the regional endpoint ([`regional_endpoint`]) or an override; `trust`: the PEM roots HTTPS
    /// trusts (the Amazon Trust Services roots).
    pub fn new(
        endpoint: &str,
        server_arn: &str,
        region: &str,
        credentials: SharedCredentialsProvider,
        trust: &[u8],
    ) -> Result<Self, reqwest::Error> {
        let roots = reqwest::Certificate::from_pem_bundle(trust)?;
        let http = reqwest::Client::builder()
            .tls_certs_only(roots)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            server_arn: server_arn.to_string(),
            region: region.to_string(),
            credentials,
        })
    }

    /// One signed call: `GET` with a query, or `POST` with a JSON body.
    async fn call(
        &self,
        operation: &'static str,
        path: &str,
        query: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, AwsCallError> {
        let mut url = format!("{}/api/2.0/mlflow/{path}", self.endpoint);
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        let (method, bytes) = match body {
            Some(b) => (
                "POST",
                serde_json::to_vec(b).map_err(|e| internal(operation, e))?,
            ),
            None => ("GET", Vec::new()),
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json")
            .header(SERVER_HEADER, &self.server_arn)
            .body(bytes)
            .map_err(|e| internal(operation, e))?;
        self.sign(operation, &mut request).await?;
        let request = reqwest::Request::try_from(request).map_err(|e| internal(operation, e))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport(operation, e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| transport(operation, e))?;
        if !(200..300).contains(&status) {
            return Err(failure(operation, status, &text));
        }
        serde_json::from_str(&text)
            .map_err(|e| AwsCallError::malformed(operation, &format!("a JSON answer ({e})")))
    }

    /// SigV4 for `sagemaker-mlflow`, with the body's SHA-256 in `x-amz-content-sha256` as the plugin sends it.
    async fn sign(
        &self,
        operation: &'static str,
        request: &mut http::Request<Vec<u8>>,
    ) -> Result<(), AwsCallError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| transport(operation, format!("no credentials to sign with: {e}")))?;
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| internal(operation, e))?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.uri().to_string(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| internal(operation, e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| internal(operation, e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// The experiment's id, created unless it exists (a concurrent creation is read back).
    async fn experiment_id(&self, name: &str) -> Result<String, AwsCallError> {
        if let Some(id) = self.find_experiment(name).await? {
            return Ok(id);
        }
        let created = self
            .call(
                "CreateExperiment",
                "experiments/create",
                None,
                Some(&json!({"name": name, "tags": [{"key": "studio-ops.managed-by", "value": "studio-ops"}]})),
            )
            .await;
        match created {
            Ok(v) => id_of("CreateExperiment", &v, "/experiment_id"),
            Err(e) if e.is("RESOURCE_ALREADY_EXISTS") => {
                self.find_experiment(name).await?.ok_or_else(|| {
                    AwsCallError::malformed("GetExperimentByName", "the experiment that exists")
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn find_experiment(&self, name: &str) -> Result<Option<String>, AwsCallError> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("experiment_name", name)
            .finish();
        match self
            .call(
                "GetExperimentByName",
                "experiments/get-by-name",
                Some(&query),
                None,
            )
            .await
        {
            Ok(v) => id_of("GetExperimentByName", &v, "/experiment/experiment_id").map(Some),
            Err(e) if e.is("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The run this job opened before, if any (found by its job tag; a deleted run is not found, so a new one
    /// records the job).
    async fn find_run(
        &self,
        experiment_id: &str,
        job: &str,
    ) -> Result<Option<String>, AwsCallError> {
        let found = self
            .call(
                "SearchRuns",
                "runs/search",
                None,
                Some(&json!({
                    "experiment_ids": [experiment_id],
                    "filter": format!("tags.`{JOB_TAG}` = '{}'", job.replace('\'', "")),
                    "run_view_type": "ACTIVE_ONLY",
                    "max_results": 1,
                })),
            )
            .await?;
        match found.pointer("/runs/0/info/run_id") {
            None => Ok(None),
            Some(id) => id
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| AwsCallError::malformed("SearchRuns", "a run id")),
        }
    }

    /// Params and tags in batches within MLflow's per-request limits.
    async fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        tags: &[(String, String)],
        metrics: &[Value],
    ) -> Result<(), AwsCallError> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.clone(), v.chars().take(MAX_PARAM_VALUE).collect()))
            .collect();
        let mut params = params.chunks(MAX_PARAMS_PER_BATCH);
        let mut tags = tags.chunks(MAX_TAGS_PER_BATCH);
        let mut metrics = metrics.chunks(MAX_METRICS_PER_BATCH);
        loop {
            let (p, t, m) = (params.next(), tags.next(), metrics.next());
            if p.is_none() && t.is_none() && m.is_none() {
                return Ok(());
            }
            self.call(
                "LogBatch",
                "runs/log-batch",
                None,
                Some(&json!({
                    "run_id": run_id,
                    "params": key_values(p.unwrap_or_default()),
                    "tags": key_values(t.unwrap_or_default()),
                    "metrics": m.unwrap_or_default(),
                })),
            )
            .await?;
        }
    }
}

fn id_of(operation: &'static str, v: &Value, pointer: &str) -> Result<String, AwsCallError> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AwsCallError::malformed(operation, pointer))
}

impl RunTracker for MlflowTracker {
    async fn open_run(&self, run: &RunStart) -> Result<TrackedRun, AwsCallError> {
        let experiment_id = self.experiment_id(&run.experiment).await?;
        if let Some(run_id) = self.find_run(&experiment_id, &run.run_name).await? {
            return Ok(TrackedRun {
                experiment_id,
                run_id,
            });
        }
        let mut tags = key_values(&run.tags);
        tags.push(json!({"key": JOB_TAG, "value": run.run_name}));
        let created = self
            .call(
                "CreateRun",
                "runs/create",
                None,
                Some(&json!({
                    "experiment_id": experiment_id,
                    "run_name": run.run_name,
                    "start_time": run.start_ms,
                    "tags": tags,
                })),
            )
            .await?;
        let run_id = id_of("CreateRun", &created, "/run/info/run_id")?;
        self.log_batch(&run_id, &run.params, &[], &[]).await?;
        Ok(TrackedRun {
            experiment_id,
            run_id,
        })
    }

    async fn close_run(&self, end: &RunEnd) -> Result<(), AwsCallError> {
        let metrics: Vec<Value> = end
            .metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| json!({"key": k, "value": v, "timestamp": end.end_ms, "step": 0}))
            .collect();
        self.log_batch(&end.run_id, &[], &end.tags, &metrics)
            .await?;
        let status = match end.status {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        };
        self.call(
            "UpdateRun",
            "runs/update",
            None,
            Some(&json!({"run_id": end.run_id, "status": status, "end_time": end.end_ms})),
        )
        .await?;
        Ok(())
    }
}
