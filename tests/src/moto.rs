//! Launches moto (`moto_server` from the project venv) on a free loopback port for the local
//! AWS world, and builds hermetic SDK configurations pointed at local endpoints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sagemaker::config::{Credentials, SharedCredentialsProvider};
use tokio::process::{Child, Command};

/// How long moto gets to answer its first request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors starting moto.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server not found at {0} (create the venv: make venv, or set STUDIO_OPS_VENV)")]
    NotInstalled(PathBuf),
    #[error("cannot pick a free loopback port: {0}")]
    Port(std::io::Error),
    #[error("cannot create the log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot spawn moto_server: {0}")]
    Spawn(std::io::Error),
    #[error("moto_server exited before it was ready ({status}); see {log}")]
    Exited { status: String, log: PathBuf },
    #[error("moto_server did not answer within {0:?}; see {1}")]
    Timeout(Duration, PathBuf),
    #[error("cannot build an HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// The project venv: `$STUDIO_OPS_VENV`, else `<workspace>/.venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("STUDIO_OPS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join(".venv"),
    }
}

/// `<target>/world`, where the local world keeps its logs (`$CARGO_TARGET_DIR` is honoured).
pub fn world_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if !t.is_empty() => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                workspace_root().join(t)
            }
        }
        _ => workspace_root().join("target"),
    };
    target.join("world")
}

/// Picks a free loopback port (bind to port 0, read it, release it).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// A running moto server; dropping it kills the process.
#[derive(Debug)]
pub struct Moto {
    url: String,
    log: PathBuf,
    child: Child,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` and waits until it answers HTTP.
    pub async fn start() -> Result<Moto, MotoError> {
        let bin = venv_dir().join("bin").join("moto_server");
        if !bin.is_file() {
            return Err(MotoError::NotInstalled(bin));
        }
        let port = free_port().map_err(MotoError::Port)?;
        let dir = world_dir();
        std::fs::create_dir_all(&dir).map_err(|source| MotoError::Log {
            path: dir.clone(),
            source,
        })?;
        let log = dir.join(format!("moto-{port}.log"));
        let out = std::fs::File::create(&log).map_err(|source| MotoError::Log {
            path: log.clone(),
            source,
        })?;
        let err = out.try_clone().map_err(|source| MotoError::Log {
            path: log.clone(),
            source,
        })?;
        let child = Command::new(&bin)
            .arg("-H")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(MotoError::Spawn)?;
        let mut moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
        };
        moto.wait_ready().await?;
        Ok(moto)
    }

    async fn wait_ready(&mut self) -> Result<(), MotoError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let probe = format!("{}/moto-api/", self.url);
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(MotoError::Exited {
                    status: status.to_string(),
                    log: self.log.clone(),
                });
            }
            if http.get(&probe).send().await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(MotoError::Timeout(STARTUP_TIMEOUT, self.log.clone()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The file moto's output goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Wipes all of moto's state (`POST /moto-api/reset`).
    pub async fn reset(&self) -> Result<(), MotoError> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        http.post(format!("{}/moto-api/reset", self.url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A hermetic SDK configuration for a local endpoint: static credentials `test`/`test`, region
/// `us-east-1`, standard retry (3 attempts), nothing read from the environment or profiles.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    local_sdk_config_with_retry(endpoint, RetryConfig::standard()).await
}

/// [`local_sdk_config`] with a caller-chosen retry configuration.
pub async fn local_sdk_config_with_retry(endpoint: &str, retry: RetryConfig) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "studio-ops-local",
        )))
        .endpoint_url(endpoint)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .build()
}
