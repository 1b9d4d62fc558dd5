//! The suite's own small test harness: categories of cases run in order, each case counted as tried and passed,
//! a failure recorded with its reason instead of stopping the category, and one summary line per category at the
//! end of the run (plus a libtest-style `test result:` line so `scripts/run-tests.sh` counts the cases).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;

/// The cases of one category.
#[derive(Debug, Default)]
pub struct Category {
    pub name: String,
    pub tried: usize,
    pub passed: usize,
    pub failures: Vec<String>,
}

impl Category {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// Records one case.
    pub fn record(&mut self, case: &str, outcome: Result<(), String>) {
        self.tried += 1;
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => {
                println!("    FAILED {}: {case}: {why}", self.name);
                self.failures.push(format!("{case}: {why}"));
            }
        }
    }

    /// Records `n` cases that all passed (property tests count every generated input).
    pub fn record_many(&mut self, n: usize) {
        self.tried += n;
        self.passed += n;
    }

    /// Runs one async case, turning a panic into a failure.
    pub async fn case<F>(&mut self, case: &str, body: F)
    where
        F: Future<Output = Result<(), String>>,
    {
        let outcome = match AssertUnwindSafe(body).catch_unwind().await {
            Ok(r) => r,
            Err(panic) => Err(format!("panicked: {}", panic_text(&panic))),
        };
        self.record(case, outcome);
    }
}

pub fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// A category body: gets its [`Category`] to fill.
pub type Body = fn(&mut Category) -> std::pin::Pin<Box<dyn Future<Output = ()> + '_>>;

/// Runs the categories whose name contains the command-line filter (if any), prints the summary and exits
/// non-zero when a case failed.
pub fn run(categories: &[(&str, Body)]) -> std::process::ExitCode {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let started = Instant::now();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut done = Vec::new();
    let mut filtered = 0;
    for (name, body) in categories {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            filtered += 1;
            continue;
        }
        println!("resilience: running {name}…");
        let mut category = Category::new(name);
        let t = Instant::now();
        let outcome = runtime.block_on(AssertUnwindSafe(body(&mut category)).catch_unwind());
        if let Err(panic) = outcome {
            category.record("(category set-up)", Err(panic_text(&panic)));
        }
        println!(
            "resilience: {name} done in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        done.push(category);
    }
    println!();
    for c in &done {
        println!(
            "resilience: {}: {} tried, {} passed",
            c.name, c.tried, c.passed
        );
    }
    // Each category counts as one test in the workspace's totals; its cases are in the lines above.
    let failed = done.iter().filter(|c| c.tried != c.passed).count();
    let passed = done.len() - failed;
    for c in &done {
        for f in &c.failures {
            println!("  failed in {}: {f}", c.name);
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {:.2}s\n",
        if failed == 0 { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
