//! Cold init as Lambda sees it: the time from spawning a function process to its first request to the Runtime
//! API (the `next` poll that ends init), served on loopback by a minimal runtime endpoint owned by the
//! measurement, so nothing else runs on the clock. The same harness times the Python floor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::BenchError;

/// How long a process gets to reach its first poll before the run counts as failed.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One program to start cold.
#[derive(Debug, Clone)]
pub struct ColdTarget {
    /// Label in the report (`provision-users`, `python floor (provision-users)`).
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment but `AWS_LAMBDA_RUNTIME_API` (added per run) and `PATH`.
    pub env: BTreeMap<String, String>,
    pub log: PathBuf,
}

/// What one cold start showed.
#[derive(Debug, Clone)]
pub struct ColdRun {
    /// Spawn → the first complete request head at the runtime API.
    pub init: Duration,
    /// The request line of that first request (`GET /2018-06-01/runtime/invocation/next HTTP/1.1`).
    pub request_line: String,
}

/// Starts `target` once and times its first request to a fresh loopback runtime API; the process is killed
/// afterwards (its init is all that is measured).
pub async fn cold_start(target: &ColdTarget) -> Result<ColdRun, BenchError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(BenchError::io("bind the runtime API"))?;
    let addr = listener
        .local_addr()
        .map_err(BenchError::io("runtime API address"))?;
    let log = std::fs::File::create(&target.log)
        .map_err(BenchError::io(format!("create {}", target.log.display())))?;
    let err_log = log
        .try_clone()
        .map_err(BenchError::io(format!("clone {}", target.log.display())))?;
    let mut cmd = tokio::process::Command::new(&target.program);
    cmd.args(&target.args)
        .env_clear()
        .envs(&target.env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err_log))
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(BenchError::io(format!(
        "spawn {}",
        target.program.display()
    )))?;
    // A process that exits during init (bad configuration) fails the run at once, with its log.
    let first = tokio::select! {
        head = tokio::time::timeout(INIT_TIMEOUT, first_request_head(&listener)) => head,
        status = child.wait() => {
            let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            return Err(BenchError::Failed(format!(
                "{} exited during init ({status}); see {}",
                target.label,
                target.log.display()
            )));
        }
    };
    let finished = Instant::now();
    let _ = child.kill().await;
    let head = match first {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(BenchError::Failed(format!(
                "{} made no runtime API request within {INIT_TIMEOUT:?}; see {}",
                target.label,
                target.log.display()
            )));
        }
    };
    let request_line = head.lines().next().unwrap_or_default().to_string();
    if !request_line.starts_with("GET /2018-06-01/runtime/invocation/next") {
        return Err(BenchError::Failed(format!(
            "{}: the first runtime API request was `{request_line}`, not the `next` poll (an init error?); see {}",
            target.label,
            target.log.display()
        )));
    }
    Ok(ColdRun {
        init: finished.duration_since(started),
        request_line,
    })
}

/// Accepts one connection and reads until the end of the request head.
async fn first_request_head(listener: &tokio::net::TcpListener) -> Result<String, BenchError> {
    let (mut stream, _) = listener
        .accept()
        .await
        .map_err(BenchError::io("accept on the runtime API"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(BenchError::io("read the first request"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 64 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Python floor arguments: the boto3 service names of the clients a function builds.
pub fn python_floor_args(script: &Path, services: &[&str]) -> Vec<String> {
    let mut args = vec![script.display().to_string()];
    args.extend(services.iter().map(|s| s.to_string()));
    args
}
