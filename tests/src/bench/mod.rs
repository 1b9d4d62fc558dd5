//! `make bench`: the measurements behind the suite's speed and cost claims — cold init against the Python/boto3
//! floor, warm handler overhead, peak memory, bootstrap size, the idle sweep and the reconcile at scale — with the
//! statistics, the machine description and the JSON/Markdown report they end up in.

pub mod cold;
pub mod cost;
pub mod org;
pub mod package;
pub mod proxy;
pub mod report;
pub mod rss;
pub mod scale;
pub mod warm;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Anything that stops a measurement.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    World(#[from] crate::world::WorldError),
    #[error("function host: {0}")]
    Host(#[from] crate::runtime_api::HostError),
    #[error("simulator admin: {0}")]
    Admin(#[from] crate::sim::admin::AdminError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}

/// Order statistics of a sample, in milliseconds (or whatever unit the caller fed in).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub runs: usize,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `values` (which need not be sorted); all zero for an empty sample.
    pub fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Summary::default();
        }
        let rank = |p: f64| {
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Summary {
            runs: v.len(),
            median,
            p90: rank(0.90),
            p99: rank(0.99),
            min: v[0],
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }

    /// Milliseconds of each duration.
    pub fn of_durations(values: &[Duration]) -> Summary {
        let ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Summary::of(&ms)
    }
}

/// What the numbers were measured on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_mb: u64,
    pub kernel: String,
    pub rustc: String,
    pub python: String,
    pub boto3: String,
    pub release_profile: String,
}

impl Machine {
    /// Reads /proc, `rustc -V`, the venv's Python and boto3, and the workspace's `[profile.release]`.
    pub fn describe(python: &std::path::Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_mb = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let run = |program: &std::path::Path, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .ok()
                .map(|o| {
                    let text = if o.stdout.is_empty() {
                        o.stderr
                    } else {
                        o.stdout
                    };
                    String::from_utf8_lossy(&text).trim().to_string()
                })
                .unwrap_or_else(|| "unknown".into())
        };
        let manifest = std::fs::read_to_string(crate::moto::workspace_root().join("Cargo.toml"))
            .unwrap_or_default();
        let release_profile = manifest
            .split("[profile.release]")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| !l.trim_start().starts_with('['))
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mb,
            kernel: run(std::path::Path::new("uname"), &["-sr"]),
            rustc: run(std::path::Path::new("rustc"), &["-V"]),
            python: run(python, &["-V"]),
            boto3: run(python, &["-c", "import boto3; print(boto3.__version__)"]),
            release_profile,
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} ({} cores, {} MB), {}, {}, {} + boto3 {}",
            self.cpu, self.cores, self.memory_mb, self.kernel, self.rustc, self.python, self.boto3
        )
    }
}

/// Values for template references the local world does not create itself (roles, network outputs, keys), so
/// that `World::start` can resolve every function's environment: each unresolved `!GetAtt`/`!Ref` gets a
/// well-formed placeholder. Empty once the world knows them all; pass the result as `WorldConfig::values`.
pub fn placeholder_values() -> std::collections::HashMap<String, String> {
    use crate::template::{self, TemplateError};
    let mut placeholders = std::collections::HashMap::new();
    let Ok(text) = template::read_template_text(&crate::moto::workspace_root()) else {
        return placeholders;
    };
    let mut known: std::collections::HashMap<String, String> = template::parameter_defaults(&text)
        .map(|d| d.into_iter().collect())
        .unwrap_or_default();
    // What `World::start` supplies itself.
    for k in [
        "SuiteEventBus",
        "SuiteEventBus.Name",
        "SuiteEventBus.Arn",
        "IdempotencyTable",
        "IdleStateTable",
        "SpendTable",
        "FailedInvocationQueue",
        "DeliveryDeadLetterQueue",
        "TeamTopic",
        "TeamTopic.TopicArn",
        "DataBucket",
    ] {
        known.insert(k.to_string(), format!("world-{k}"));
    }
    for _ in 0..200 {
        match template::parse(&text, &known) {
            Err(TemplateError::Unresolved { reference, .. }) if !known.contains_key(&reference) => {
                let value = placeholder_for(&reference);
                known.insert(reference.clone(), value.clone());
                placeholders.insert(reference, value);
            }
            _ => break,
        }
    }
    placeholders
}

fn placeholder_for(reference: &str) -> String {
    let (resource, attribute) = reference.split_once('.').unwrap_or((reference, ""));
    let lower = attribute.to_ascii_lowercase();
    if lower == "domainid" {
        // The domain `World::start` seeds in the simulator.
        "d-studioops0001".into()
    } else if lower == "domainarn" {
        "arn:aws:sagemaker:us-east-1:123456789012:domain/d-studioops0001".into()
    } else if lower.contains("subnet") {
        "subnet-0a000000000000001,subnet-0a000000000000002".into()
    } else if lower.contains("securitygroup") {
        "sg-0a000000000000001".into()
    } else if resource.ends_with("Role") {
        format!("arn:aws:iam::123456789012:role/studio-ops-{resource}")
    } else if resource.ends_with("Key") {
        format!(
            "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-{:0>12}",
            resource.len()
        )
    } else if lower == "arn" {
        format!("arn:aws:sqs:us-east-1:123456789012:{resource}")
    } else {
        resource.to_string()
    }
}

/// A `WorldConfig` with [`placeholder_values`] filled in.
pub fn world_config(mut cfg: crate::world::WorldConfig) -> crate::world::WorldConfig {
    for (k, v) in placeholder_values() {
        cfg.values.entry(k).or_insert(v);
    }
    cfg
}

/// The Python of the project venv (`$STUDIO_OPS_VENV/bin/python`).
pub fn venv_python() -> PathBuf {
    crate::moto::venv_dir().join("bin").join("python")
}

/// `tests/bench/<file>`, the Python peer's scripts.
pub fn peer_script(file: &str) -> PathBuf {
    crate::moto::workspace_root()
        .join("tests")
        .join("bench")
        .join(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values);
        assert_eq!(s.runs, 100);
        assert_eq!(s.median, 50.5);
        assert_eq!(s.p90, 90.0);
        assert_eq!(s.p99, 99.0);
        assert_eq!((s.min, s.max), (1.0, 100.0));
        let odd = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.p90), (2.0, 3.0));
        assert_eq!(Summary::of(&[]), Summary::default());
    }
}
