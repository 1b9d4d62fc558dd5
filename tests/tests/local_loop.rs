//! The newcomer's local loop, as README.md shows it: `make world` (the world and its `lambda.env`), then
//! `cargo lambda watch --env-file …` and `cargo lambda invoke <function> --data-file events/<function>/<fixture>.json`
//! — run for real with the pinned cargo-lambda from the venv, one documented fixture per function. The emulator
//! gives each invocation its own short deadline (not Lambda's 15 minutes): every function must still answer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use studio_ops_tests::world::{World, WorldConfig, env_file_text, newcomer_env};
use tokio::process::Command;

/// The fixtures the docs show, one per function, and the schedule's for the two whose dry runs emit no metrics.
const LOOP: &[(&str, &str)] = &[
    ("idle-shutdown", "manual-dry-run.json"),
    ("provision-users", "manual-dry-run.json"),
    // A dry run emits no metrics (it must not count on the dashboard); the schedule's run does.
    ("idle-shutdown", "scheduled-event.json"),
    ("provision-users", "scheduled-event.json"),
    ("notify", "studio-ops-app-stopped.json"),
    ("train-on-push", "sagemaker-training-job-completed.json"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo_lambda() -> PathBuf {
    let venv = std::env::var_os("STUDIO_OPS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"));
    venv.join("bin/cargo-lambda")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Stops the emulator and the function processes it started (its whole process group).
struct Emulator(tokio::process::Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_answers_its_documented_fixture_through_cargo_lambda() {
    let world = World::start(WorldConfig::default()).await.expect("world");
    let env = newcomer_env(&world)
        .await
        .expect("one set of variables serves all four functions");
    assert!(
        env.get("STUDIO_OPS_IDLE_LIMITS")
            .is_some_and(|v| v.starts_with("[{")),
        "the JSON variable that a pasted export line used to mangle is in the file"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join("lambda.env");
    std::fs::write(&env_file, env_file_text(&env).expect("env file")).expect("write env file");

    let log_path = dir.path().join("watch.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port().to_string();
    let mut watch = Command::new(cargo_lambda());
    watch
        .current_dir(root())
        .args([
            "lambda",
            "watch",
            "--quiet",
            "--ignore-changes",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(&port)
        .arg("--env-file")
        .arg(&env_file)
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log))
        .process_group(0);
    let emulator = Emulator(watch.spawn().expect("cargo lambda watch starts"));

    for (function, fixture) in LOOP {
        let data = root().join("events").join(function).join(fixture);
        let mut answer = None;
        // The emulator needs a moment to listen, and builds (here: finds up to date) a function on first call.
        for _ in 0..60 {
            let out = Command::new(cargo_lambda())
                .current_dir(root())
                .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P"])
                .arg(&port)
                .arg("--data-file")
                .arg(&data)
                .args(["--output-format", "json"])
                .output()
                .await
                .expect("cargo lambda invoke runs");
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            if out.status.success() {
                answer = Some(stdout);
                break;
            }
            if !stderr.contains("onnection refused") && !stderr.contains("error sending request") {
                panic!(
                    "{function} {fixture}: cargo lambda invoke failed\nstdout: {stdout}\nstderr: {stderr}"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let answer = answer.unwrap_or_else(|| panic!("{function}: the emulator never answered"));
        let value: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{function}: answer is not JSON ({e}): {answer}"));
        // Every function answers one typed outcome, tagged by `outcome`.
        assert!(
            value.get("outcome").is_some_and(Value::is_string),
            "{function} {fixture}: the answer is not a typed outcome: {value}"
        );
    }
    drop(emulator);
    world.stop().await;

    // Every function wrote its metrics (EMF lines on stdout) to the one namespace under the one dimension, so that
    // one CloudWatch view shows all four.
    let log = std::fs::read_to_string(&log_path).expect("watch log");
    let emitted = metric_sets(&log);
    for (function, _) in LOOP {
        let sets: Vec<_> = emitted.iter().filter(|m| m.function == *function).collect();
        assert!(
            !sets.is_empty(),
            "{function} emitted no metrics; it emitted: {emitted:?}"
        );
        for set in sets {
            assert_eq!(set.namespace, "StudioOps", "{set:?}");
            assert_eq!(
                set.dimensions,
                vec![vec!["Function".to_string()]],
                "{set:?}"
            );
        }
    }
    assert!(
        emitted.iter().all(|m| m.namespace == "StudioOps"),
        "a metric set outside the suite's namespace: {emitted:?}"
    );
}

/// One EMF document as CloudWatch reads it.
#[derive(Debug)]
struct MetricSet {
    namespace: String,
    dimensions: Vec<Vec<String>>,
    function: String,
}

/// The EMF documents among the log's lines (other JSON log lines have no `_aws` key).
fn metric_sets(log: &str) -> Vec<MetricSet> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter_map(|doc| {
            let cw = doc.pointer("/_aws/CloudWatchMetrics/0")?;
            let dimensions = serde_json::from_value(cw.get("Dimensions")?.clone()).ok()?;
            // The dimension's value, whatever the dimension is called: a set under another name is reported too.
            let function = doc
                .get("Function")
                .or_else(|| doc.get("function"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Some(MetricSet {
                namespace: cw.get("Namespace")?.as_str()?.to_string(),
                dimensions,
                function,
            })
        })
        .collect()
}
