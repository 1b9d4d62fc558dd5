//! `make bench` driver: measures the release bootstraps (size, cold init against the Python floor, warm overhead,
//! peak RSS) and the sweep and reconcile at scale in the local world, then writes `target/bench/results.json` and
//! `target/bench/results.md`. Run through `scripts/bench.sh`, which builds the release binaries first.
//!
//! Options: `--only size,cold,warm,sweep,org,reconcile` (`org`: the organisation workload of issue 14, 20,000 apps), `--cold-runs N` (default 30), `--warm N` (200),
//! `--sweep-runs N` (3), `--python-sweep-runs N` (1: a sequential sweep takes minutes; 0 skips it),
//! `--reconcile-runs N` (2), `--out DIR` (target/bench), `--env K=V` (extra function environment, for experiments).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use studio_ops_tests::bench::cold::{ColdTarget, cold_start, python_floor_args};
use studio_ops_tests::bench::report::{ColdResult, Results, SizeResult};
use studio_ops_tests::bench::warm::{WarmEvent, function_env};
use studio_ops_tests::bench::{
    BenchError, Machine, Summary, package, peer_script, scale, venv_python, warm,
};
use studio_ops_tests::moto::{workspace_root, world_dir};
use studio_ops_tests::runtime_api::{function_binary, lambda_env};
use studio_ops_tests::world::{FUNCTIONS, World, WorldConfig};

struct Options {
    stages: Vec<String>,
    cold_runs: usize,
    warm_invocations: usize,
    sweep_runs: usize,
    python_sweep_runs: usize,
    reconcile_runs: usize,
    /// `--env K=V`: extra environment for every function process (experiments).
    extra_env: BTreeMap<String, String>,
    out: PathBuf,
}

const STAGES: &[&str] = &["size", "cold", "warm", "sweep", "org", "reconcile"];

fn options() -> Result<Options, String> {
    let mut o = Options {
        stages: STAGES.iter().map(|s| s.to_string()).collect(),
        cold_runs: 30,
        warm_invocations: 200,
        sweep_runs: 3,
        python_sweep_runs: 1,
        reconcile_runs: 2,
        extra_env: BTreeMap::new(),
        out: workspace_root().join("target").join("bench"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |v: String, name: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{name} expects a number, got {v:?}"))
        };
        match a.as_str() {
            "--only" => {
                o.stages = value("--only")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                if let Some(bad) = o.stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
                    return Err(format!("unknown stage {bad:?}; stages are {STAGES:?}"));
                }
            }
            "--cold-runs" => o.cold_runs = number(value(&a)?, &a)?.max(1),
            "--warm" => o.warm_invocations = number(value(&a)?, &a)?.max(1),
            "--sweep-runs" => o.sweep_runs = number(value(&a)?, &a)?.max(1),
            "--python-sweep-runs" => o.python_sweep_runs = number(value(&a)?, &a)?,
            "--reconcile-runs" => o.reconcile_runs = number(value(&a)?, &a)?.max(1),
            "--out" => o.out = PathBuf::from(value(&a)?),
            "--env" => {
                let kv = value(&a)?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--env expects K=V, got {kv:?}"))?;
                o.extra_env.insert(k.to_string(), v.to_string());
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(o)
}

/// The boto3 service names of the AWS clients a function builds, read from its sources (SDK crates it names,
/// and the shared adapters it uses).
fn python_clients(function: &str) -> Vec<String> {
    let dir = workspace_root()
        .join("functions")
        .join(function)
        .join("src");
    let mut text = String::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut services = Vec::new();
    for (marker, service) in [
        ("aws_sdk_sagemaker", "sagemaker"),
        ("aws_sdk_identitystore", "identitystore"),
        ("aws_sdk_codecommit", "codecommit"),
        ("aws_sdk_s3", "s3"),
        ("aws_sdk_sns", "sns"),
        ("aws_sdk_sqs", "sqs"),
        ("aws_sdk_eventbridge", "events"),
        ("EventBridgePublisher", "events"),
        ("aws_sdk_dynamodb", "dynamodb"),
        ("DynamoIdempotencyStore", "dynamodb"),
    ] {
        if text.contains(marker) && !services.contains(&service.to_string()) {
            services.push(service.to_string());
        }
    }
    services
}

/// Every fixture of a function, as warm events.
fn fixtures_of(function: &str) -> Vec<WarmEvent> {
    let dir = workspace_root().join("events").join(function);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|p| {
            let payload: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            Some(WarmEvent {
                label: p.file_name()?.to_string_lossy().into_owned(),
                payload,
            })
        })
        .collect()
}

/// Configuration a function must have to start at all, where the template's default is empty (a group id).
fn cold_env_overrides(function: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if function == "provision-users" {
        env.insert(
            "STUDIO_OPS_PROVISION_GROUP_IDS".into(),
            "9a6763d7-0001-70f0-3861-d4cfe87e1540".into(),
        );
    }
    env
}

fn stage_sizes(results: &mut Results, out: &Path) {
    for f in FUNCTIONS {
        let bin = function_binary(f);
        let zip = out.join("zips").join(format!("{f}.zip"));
        match package::package(&bin, &zip) {
            Ok(size) => results.sizes.push(SizeResult {
                function: f.to_string(),
                size,
                zip: zip.display().to_string(),
            }),
            Err(e) => results
                .errors
                .push(format!("size of {f}: {}: {e}", bin.display())),
        }
    }
}

async fn stage_cold(
    results: &mut Results,
    world: &World,
    runs: usize,
    extra_env: &BTreeMap<String, String>,
    out: &Path,
) -> Result<(), BenchError> {
    const WARMUP: usize = 2;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(BenchError::io("create the log folder"))?;
    let python = venv_python();
    let script = peer_script("cold_floor.py");
    for f in FUNCTIONS {
        let mut env = function_env(world, f, world.moto().url(), world.sim().url())?;
        env.extend(cold_env_overrides(f));
        env.extend(extra_env.clone());
        env.extend(lambda_env(
            f,
            "127.0.0.1:9"
                .parse()
                .map_err(|_| BenchError::Failed("addr".into()))?,
        ));
        env.remove("AWS_LAMBDA_RUNTIME_API");
        let clients = python_clients(f);
        let client_refs: Vec<&str> = clients.iter().map(String::as_str).collect();
        let rust = ColdTarget {
            label: f.to_string(),
            program: function_binary(f),
            args: Vec::new(),
            env: env.clone(),
            log: logs.join(format!("cold-{f}.log")),
        };
        let py = ColdTarget {
            label: format!("python floor ({f})"),
            program: python.clone(),
            args: python_floor_args(&script, &client_refs),
            env,
            log: logs.join(format!("cold-python-{f}.log")),
        };
        let mut rust_ms = Vec::new();
        let mut py_ms = Vec::new();
        for n in 0..runs + WARMUP {
            let r = cold_start(&rust).await?;
            let p = cold_start(&py).await?;
            if n >= WARMUP {
                rust_ms.push(r.init.as_secs_f64() * 1e3);
                py_ms.push(p.init.as_secs_f64() * 1e3);
            }
        }
        let rust_ms = Summary::of(&rust_ms);
        let python_floor_ms = Summary::of(&py_ms);
        let ratio = if rust_ms.median > 0.0 {
            python_floor_ms.median / rust_ms.median
        } else {
            0.0
        };
        println!(
            "  cold {f}: Rust median {:.2} ms (p90 {:.2}), Python floor median {:.0} ms → {ratio:.0}×",
            rust_ms.median, rust_ms.p90, python_floor_ms.median
        );
        results.cold.push(ColdResult {
            function: f.to_string(),
            rust_ms,
            python_floor_ms,
            ratio_median: ratio,
            python_clients: clients,
            warmup_runs_discarded: WARMUP,
        });
    }
    Ok(())
}

/// What a function needs in the world to do real work on each warm invocation, the events to send it, and the
/// environment it gets on top of the template's.
type WarmSetup = (
    Vec<WarmEvent>,
    BTreeMap<String, String>,
    std::time::Duration,
);

async fn warm_setup(world: &World, function: &str) -> Result<WarmSetup, BenchError> {
    let mut env = BTreeMap::new();
    let run = |label: &str| WarmEvent {
        label: label.to_string(),
        payload: serde_json::json!({}),
    };
    match function {
        "idle-shutdown" => {
            let now = jiff::Timestamp::now();
            let small = scale::SweepScale {
                user_profiles: 8,
                spaces: 8,
                apps: 20,
                ..scale::SweepScale::default()
            };
            let mut seed = scale::seed_request(&world.names.domain_id, &small, now);
            scale::decorate_for_sweep(&mut seed, now);
            seed.domains.clear();
            world.sim().admin().seed(&seed).await?;
            env.insert(
                "STUDIO_OPS_DOMAIN_IDS".into(),
                world.names.domain_id.clone(),
            );
            env.insert(
                "STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND".into(),
                "100".into(),
            );
            env.insert("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_BURST".into(), "100".into());
            Ok((
                vec![run("sweep of a 20-app domain")],
                env,
                std::time::Duration::from_millis(400),
            ))
        }
        "provision-users" => {
            let (group, _) = scale::seed_identity(world.moto_sdk(), "warm-team", 20).await?;
            env.insert("STUDIO_OPS_PROVISION_GROUP_IDS".into(), group);
            env.insert(
                "STUDIO_OPS_IDENTITY_STORE_ID".into(),
                scale::IDENTITY_STORE.into(),
            );
            env.insert(
                "STUDIO_OPS_PROVISION_SAGEMAKER_CALLS_PER_SECOND".into(),
                "1000".into(),
            );
            Ok((
                vec![run("reconcile of a 20-member group")],
                env,
                std::time::Duration::from_millis(50),
            ))
        }
        other => Ok((fixtures_of(other), env, std::time::Duration::ZERO)),
    }
}

async fn stage_warm(
    results: &mut Results,
    world: &World,
    invocations: usize,
    extra_env: &BTreeMap<String, String>,
    out: &Path,
) -> Result<(), BenchError> {
    let logs = out.join("logs");
    for f in FUNCTIONS {
        let (events, mut env, pause) = warm_setup(world, f).await?;
        env.extend(extra_env.clone());
        let spec = warm::WarmSpec {
            events,
            env,
            invocations,
            pause,
        };
        let r = warm::measure(world, f, &function_binary(f), &spec, &logs).await?;
        println!(
            "  warm {f}: overhead p50 {:.2} ms p99 {:.2} ms, peak RSS {:.1} MB, outcomes {:?}",
            r.overhead_ms.median,
            r.overhead_ms.p99,
            r.peak_rss_bytes as f64 / 1048576.0,
            r.outcomes
        );
        results.warm.push(r);
    }
    Ok(())
}

async fn run(opts: &Options, results: &mut Results) -> Result<(), BenchError> {
    let wants = |s: &str| opts.stages.iter().any(|x| x == s);
    std::fs::create_dir_all(&opts.out).map_err(BenchError::io("create the output folder"))?;
    if wants("size") {
        println!("measuring bootstrap sizes…");
        stage_sizes(results, &opts.out);
    }
    if wants("cold") || wants("warm") {
        let world =
            World::start(studio_ops_tests::bench::world_config(WorldConfig::default())).await?;
        if wants("cold") {
            println!(
                "measuring cold init ({} runs per function + the Python floor)…",
                opts.cold_runs
            );
            if let Err(e) =
                stage_cold(results, &world, opts.cold_runs, &opts.extra_env, &opts.out).await
            {
                results.errors.push(format!("cold init: {e}"));
            }
        }
        if wants("warm") {
            println!(
                "measuring warm invocations ({} per function)…",
                opts.warm_invocations
            );
            if let Err(e) = stage_warm(
                results,
                &world,
                opts.warm_invocations,
                &opts.extra_env,
                &opts.out,
            )
            .await
            {
                results.errors.push(format!("warm invocations: {e}"));
            }
        }
        world.stop().await;
    }
    if wants("sweep") {
        println!("idle sweep at scale…");
        if let Err(e) = scale::run_sweeps(
            results,
            opts.sweep_runs,
            opts.python_sweep_runs,
            &opts.extra_env,
            &opts.out,
        )
        .await
        {
            results.errors.push(format!("idle sweep: {e}"));
        }
    }
    if wants("org") {
        println!("idle sweep, organisation workload…");
        if let Err(e) =
            studio_ops_tests::bench::org::run_org(results, &opts.extra_env, &opts.out).await
        {
            results.errors.push(format!("organisation workload: {e}"));
        }
    }
    if wants("reconcile") {
        println!("reconcile at scale…");
        if let Err(e) = scale::run_reconciles(results, opts.reconcile_runs, &opts.out).await {
            results.errors.push(format!("reconcile: {e}"));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("studio-bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut results = Results {
        started_at: jiff::Timestamp::now().to_string(),
        machine: Machine::describe(&venv_python()),
        build: std::fs::read_to_string(opts.out.join("build.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null),
        ..Results::default()
    };
    results.notes.push(format!(
        "Function binaries: {} (world logs under {}).",
        function_binary("<function>").display(),
        world_dir().display()
    ));
    let outcome = tokio::select! {
        r = run(&opts, &mut results) => r,
        _ = tokio::signal::ctrl_c() => Err(BenchError::Failed("interrupted".into())),
    };
    if let Err(e) = outcome {
        results.errors.push(e.to_string());
    }
    results.seconds = started.elapsed().as_secs_f64();
    results.check_targets();
    let md = results.markdown();
    let json = serde_json::to_string_pretty(&results).unwrap_or_default();
    let written = std::fs::write(opts.out.join("results.json"), json)
        .and_then(|_| std::fs::write(opts.out.join("results.md"), &md));
    println!("\n{md}");
    match written {
        Ok(()) => println!(
            "results written to {} and results.md",
            opts.out.join("results.json").display()
        ),
        Err(e) => eprintln!("cannot write the results: {e}"),
    }
    if results.errors.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
