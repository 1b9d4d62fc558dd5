//! A real MLflow tracking server on loopback (`mlflow server` from the pinned `.venv/mlflow`, SQLite store and
//! artifacts in a temporary folder) standing in for SageMaker managed MLflow, plus a reader of its REST API, so that
//! tests read back what train-on-push recorded from the server itself. It does not check SigV4 signatures or
//! `sagemaker-mlflow:*` permissions: the IAM replay and docs/train-on-push.md cover those.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::moto::{free_port, venv_dir, world_dir};

/// The tracking server's ARN the local world's stack stands in for.
pub const SERVER_ARN: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/studio-ops-mlflow";
/// Alembic migrates the SQLite store at start: several seconds on 2 cores.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error("mlflow not found at {0} (create the venvs: make venv)")]
    NotInstalled(PathBuf),
    #[error("mlflow server: {0}")]
    Io(#[from] std::io::Error),
    #[error("mlflow server exited before it was ready ({0}); see {1}")]
    Exited(String, PathBuf),
    #[error("mlflow server did not answer within {0:?}; see {1}")]
    Timeout(Duration, PathBuf),
    #[error("MLflow REST: {0}")]
    Http(#[from] reqwest::Error),
    #[error("MLflow REST {0}: {1}")]
    Answer(String, String),
}

/// A running MLflow server; dropping it kills its process group (the server and its uvicorn worker).
pub struct MlflowServer {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl MlflowServer {
    pub async fn start() -> Result<Self, MlflowError> {
        let bin = venv_dir().join("mlflow").join("bin").join("mlflow");
        if !bin.is_file() {
            return Err(MlflowError::NotInstalled(bin));
        }
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        std::fs::create_dir_all(world_dir())?;
        let log = world_dir().join(format!("mlflow-{port}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(&bin)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                dir.path().join("mlflow.db").display()
            ))
            .arg("--default-artifact-root")
            .arg(dir.path().join("artifacts"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut server = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
            http,
        };
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(MlflowError::Exited(status.to_string(), log));
            }
            let health = server
                .http
                .get(format!("{}/health", server.url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(MlflowError::Timeout(STARTUP_TIMEOUT, log));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call(
        &self,
        path: &str,
        body: Option<Value>,
        query: &[(&str, &str)],
    ) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.url);
        let request = match body {
            Some(b) => self.http.post(url).json(&b),
            None => {
                let url = reqwest::Url::parse_with_params(&url, query)
                    .map_err(|e| MlflowError::Answer(path.to_string(), e.to_string()))?;
                self.http.get(url)
            }
        };
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(MlflowError::Answer(format!("{path} {status}"), text));
        }
        serde_json::from_str(&text)
            .map_err(|e| MlflowError::Answer(path.to_string(), e.to_string()))
    }

    /// Every run of an experiment (deleted ones too), as MLflow answers them; empty when there is no experiment.
    pub async fn runs(&self, experiment: &str) -> Result<Vec<Value>, MlflowError> {
        let found = self
            .call(
                "experiments/get-by-name",
                None,
                &[("experiment_name", experiment)],
            )
            .await;
        let id = match found {
            Ok(v) => v["experiment"]["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Err(MlflowError::Answer(_, text)) if text.contains("RESOURCE_DOES_NOT_EXIST") => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let v = self
            .call(
                "runs/search",
                Some(json!({"experiment_ids": [id], "run_view_type": "ALL", "max_results": 1000})),
                &[],
            )
            .await?;
        Ok(v["runs"].as_array().cloned().unwrap_or_default())
    }
}

/// A run's tag, param or metric by key (`data.tags` / `data.params` / `data.metrics`).
pub fn entry<'a>(run: &'a Value, kind: &str, key: &str) -> Option<&'a Value> {
    run["data"][kind]
        .as_array()?
        .iter()
        .find(|e| e["key"] == key)
        .map(|e| &e["value"])
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The uvicorn worker is a child of the server: end the whole group, not only the server.
        // `--` so that the negative id is read as a process group, never as an option; never a group below 2.
        if let Some(pid) = self.child.id().filter(|pid| *pid > 1) {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
