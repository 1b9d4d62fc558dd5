//! `studio-sim`: runs the Studio/CodeCommit simulator as a standalone loopback server.
//!
//! ```text
//! studio-sim [--port N] [--moto-url URL] [--git-root DIR] [--seed N] [--region R] [--knobs JSON]
//! ```
//! Prints exactly one line, `studio-sim listening on http://127.0.0.1:PORT`, once ready, and
//! exits cleanly on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use studio_ops_tests::sim::{self, Knobs, SimConfig};

const USAGE: &str = "usage: studio-sim [--port N (0 = free port)] [--moto-url URL] \
[--git-root DIR] [--seed N] [--region REGION] [--knobs JSON]";

fn parse_args() -> Result<SimConfig, String> {
    let mut cfg = SimConfig {
        git_root: studio_ops_tests::moto::world_dir().join("git"),
        ..SimConfig::default()
    };
    let mut git_root_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--port" => {
                let port: u16 = value
                    .parse()
                    .map_err(|_| format!("--port: not a port: {value}"))?;
                cfg.bind = SocketAddr::from(([127, 0, 0, 1], port));
            }
            "--moto-url" => cfg.moto_url = Some(value),
            "--git-root" => {
                cfg.git_root = PathBuf::from(value);
                git_root_given = true;
            }
            "--seed" => {
                cfg.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: not a number: {value}"))?;
            }
            "--region" => cfg.region = value,
            "--knobs" => {
                cfg.knobs =
                    serde_json::from_str::<Knobs>(&value).map_err(|e| format!("--knobs: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !git_root_given {
        std::fs::create_dir_all(&cfg.git_root)
            .map_err(|e| format!("cannot create {}: {e}", cfg.git_root.display()))?;
    }
    Ok(cfg)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let handle = match sim::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("studio-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "studio-sim listening on {}", handle.url());
        let _ = out.flush();
    }
    wait_for_signal().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}
