//! The benchmark's results: one serializable record (`target/bench/results.json`) and its Markdown rendering
//! (`target/bench/results.md`), with the targets checked against the medians.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::cost::CostFigures;
use super::org::OrgSweep;
use super::package::PackageSize;
use super::scale::{ReconcileResult, SweepComparison};
use super::warm::WarmResult;
use super::{Machine, Summary};

/// Cold init of one function against the Python floor, measured interleaved in the same run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ColdResult {
    pub function: String,
    pub rust_ms: Summary,
    pub python_floor_ms: Summary,
    /// Python median / Rust median.
    pub ratio_median: f64,
    /// The boto3 clients the floor creates (the same AWS clients the function builds).
    pub python_clients: Vec<String>,
    pub warmup_runs_discarded: usize,
}

/// One size figure per function.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub function: String,
    #[serde(flatten)]
    pub size: PackageSize,
    pub zip: String,
}

/// A target of the issue and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    pub started_at: String,
    pub seconds: f64,
    pub machine: Machine,
    /// Build facts written by `scripts/bench.sh` (`target/bench/build.json`), if present.
    pub build: Value,
    pub sizes: Vec<SizeResult>,
    pub cold: Vec<ColdResult>,
    pub warm: Vec<WarmResult>,
    pub sweep: Option<SweepComparison>,
    /// Issue 14: 20,000 apps over five domains, sweeps cut short by their deadline.
    pub org_sweep: Option<OrgSweep>,
    /// The Python peers of the 2,000-app sweep (the concurrent one in steady state).
    pub peer_concurrent: Option<PeerFigures>,
    pub peer_sequential: Option<PeerFigures>,
    /// What a sweep costs on Lambda, per implementation.
    pub cost: Option<CostFigures>,
    pub reconcile: Vec<ReconcileResult>,
    pub targets: Vec<TargetCheck>,
    pub notes: Vec<String>,
    /// Stages that could not run, with the reason.
    pub errors: Vec<String>,
}

/// One Python peer's figures at 2,000 apps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerFigures {
    pub implementation: String,
    /// Median wall time.
    pub wall_s: f64,
    pub wall: Summary,
    pub requests_per_app: f64,
    pub cpu_s: f64,
    pub peak_rss_bytes: u64,
}

/// Issue 14's baseline: the 2,000-app sweep's median wall time before the sweep state (issue 13's closing note).
pub const SWEEP_WALL_BEFORE_S: f64 = 19.4;

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Results {
    /// Checks the targets against what was measured.
    pub fn check_targets(&mut self) {
        let mut t = Vec::new();
        for c in &self.cold {
            t.push(TargetCheck {
                target: format!("{}: cold init median ≤ 10 ms", c.function),
                measured: format!("{} ms", ms(c.rust_ms.median)),
                met: c.rust_ms.median <= 10.0,
            });
            t.push(TargetCheck {
                target: format!("{}: ≥ 40× faster than the Python floor", c.function),
                measured: format!("{:.1}×", c.ratio_median),
                met: c.ratio_median >= 40.0,
            });
        }
        for w in &self.warm {
            t.push(TargetCheck {
                target: format!("{}: peak RSS ≤ 24 MB", w.function),
                measured: mb(w.peak_rss_bytes),
                met: w.peak_rss_bytes > 0 && w.peak_rss_bytes <= 24 * 1024 * 1024,
            });
        }
        for s in &self.sizes {
            t.push(TargetCheck {
                target: format!("{}: zipped bootstrap ≤ 8 MB", s.function),
                measured: mb(s.size.zipped_bytes),
                met: s.size.zipped_bytes <= 8 * 1024 * 1024,
            });
        }
        if let Some(s) = &self.sweep {
            let r = &s.rust;
            t.push(TargetCheck {
                target: "idle sweep, steady state: ≤ 1.6 SageMaker requests per app".into(),
                measured: format!("{:.2}", r.requests_per_app_median),
                met: !r.runs.is_empty() && r.requests_per_app_median <= 1.6,
            });
            t.push(TargetCheck {
                target: "idle sweep, steady state: ≤ 0.5 ListTags per app".into(),
                measured: format!("{:.2}", r.list_tags_per_app_median),
                met: !r.runs.is_empty() && r.list_tags_per_app_median <= 0.5,
            });
            t.push(TargetCheck {
                target: format!(
                    "idle sweep, steady state: wall ≤ 0.7 × {SWEEP_WALL_BEFORE_S} s (median)"
                ),
                measured: format!("{:.2} s", r.wall_s.median),
                met: !r.runs.is_empty() && r.wall_s.median <= 0.7 * SWEEP_WALL_BEFORE_S,
            });
            t.push(TargetCheck {
                target:
                    "idle sweep: within the request budget derived from the seed (every run, Rust)"
                        .into(),
                measured: format!(
                    "{} + {} runs over",
                    s.rust_first.runs_over_budget, r.runs_over_budget
                ),
                met: s.rust_first.runs_over_budget == 0 && r.runs_over_budget == 0,
            });
            t.push(TargetCheck {
                target: "idle sweep: peak RSS ≤ 24 MB at 2,000 apps".into(),
                measured: mb(r.peak_rss_max_bytes.max(s.rust_first.peak_rss_max_bytes)),
                met: r.peak_rss_max_bytes > 0
                    && r.peak_rss_max_bytes.max(s.rust_first.peak_rss_max_bytes)
                        <= 24 * 1024 * 1024,
            });
            t.push(TargetCheck {
                target: "idle sweep: no slower than the concurrent boto3 peer (steady state)"
                    .into(),
                measured: format!(
                    "{:.2} s vs {:.2} s",
                    r.wall_s.median, s.python_concurrent.wall_s.median
                ),
                met: !s.python_concurrent.runs.is_empty()
                    && r.wall_s.median <= s.python_concurrent.wall_s.median,
            });
            t.push(TargetCheck {
                target: "idle sweep: throughput ≥ 90 % of the rate floor".into(),
                measured: format!("{:.0} %", s.rust.floor_share_median * 100.0),
                met: s.rust.floor_share_median >= 0.9,
            });
            t.push(TargetCheck {
                target: "idle sweep: 0 throttles surfaced, 0 apps missed".into(),
                measured: format!(
                    "{} surfaced, {} missed",
                    s.rust.throttles_surfaced_max, s.rust.apps_missed_max
                ),
                met: s.rust.throttles_surfaced_max == 0 && s.rust.apps_missed_max == 0,
            });
        }
        if let Some(c) = &self.cost {
            t.push(TargetCheck {
                target: "Lambda cost: ≥ 5× fewer billed GB-s per sweep than the concurrent peer"
                    .into(),
                measured: format!(
                    "{:.3} vs {:.3} GB-s ({:.1}×)",
                    c.rust_gb_s_per_sweep, c.python_gb_s_per_sweep, c.ratio
                ),
                met: c.ratio >= 5.0,
            });
        }
        if let Some(o) = &self.org_sweep {
            t.push(TargetCheck {
                target: "organisation workload: every app examined, none twice before all once"
                    .into(),
                measured: format!(
                    "{} sweeps, {} never examined, {} twice",
                    o.sweeps_needed, o.never_examined, o.examined_twice_before_all
                ),
                met: o.sweeps_needed > 0
                    && o.never_examined == 0
                    && o.examined_twice_before_all == 0,
            });
            t.push(TargetCheck {
                target: "organisation workload: ≤ 1.6 requests and ≤ 0.5 ListTags per app".into(),
                measured: format!("{:.2} and {:.2}", o.requests_per_app, o.list_tags_per_app),
                met: o.requests_per_app <= 1.6 && o.list_tags_per_app <= 0.5,
            });
            t.push(TargetCheck {
                target: "organisation workload: peak RSS ≤ 64 MB".into(),
                measured: mb(o.peak_rss_bytes),
                met: o.peak_rss_bytes > 0 && o.peak_rss_bytes <= 64 * 1024 * 1024,
            });
        }
        self.targets = t;
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# studio-ops benchmark\n");
        let _ = writeln!(
            md,
            "Machine: {}. Release profile: `{}`. Run started {} and took {:.0} s.\n",
            self.machine.one_line(),
            self.machine.release_profile,
            self.started_at,
            self.seconds
        );
        if !self.build.is_null() {
            let _ = writeln!(md, "Build: `{}`\n", self.build);
        }
        if !self.cold.is_empty() {
            let _ = writeln!(
                md,
                "## Cold init (spawn → first Runtime API request, ms)\n\nInterleaved runs of the release bootstrap and of the Python floor (`tests/bench/cold_floor.py`: import boto3 + the same clients), warm page cache.\n"
            );
            let _ = writeln!(
                md,
                "| function | runs | Rust median | Rust p90 | Rust min–max | Python floor median | Python p90 | Python min–max | ratio (median) | boto3 clients |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
            for c in &self.cold {
                let _ = writeln!(
                    md,
                    "| {} | {} + {} | {} | {} | {}–{} | {} | {} | {}–{} | **{:.0}×** | {} |",
                    c.function,
                    c.rust_ms.runs,
                    c.python_floor_ms.runs,
                    ms(c.rust_ms.median),
                    ms(c.rust_ms.p90),
                    ms(c.rust_ms.min),
                    ms(c.rust_ms.max),
                    ms(c.python_floor_ms.median),
                    ms(c.python_floor_ms.p90),
                    ms(c.python_floor_ms.min),
                    ms(c.python_floor_ms.max),
                    c.ratio_median,
                    c.python_clients.join(", ")
                );
            }
            md.push('\n');
        }
        if !self.warm.is_empty() {
            let _ = writeln!(
                md,
                "## Warm invocations and memory\n\nOverhead = invocation time at the Runtime API minus the time at least one AWS call was in flight (timing proxies in front of moto and the simulator; simulator latency 0).\n"
            );
            let _ = writeln!(
                md,
                "| function | invocations | overhead p50 | overhead p99 | end-to-end p50 | end-to-end p99 | AWS calls / inv. | first invocation (overhead) | outcomes | RSS after init | peak RSS |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
            for w in &self.warm {
                let outcomes = w
                    .outcomes
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(
                    md,
                    "| {} | {} | {} ms | {} ms | {} ms | {} ms | {:.1} | {} ms ({} ms) | {} | {} | **{}** |",
                    w.function,
                    w.overhead_ms.runs,
                    ms(w.overhead_ms.median),
                    ms(w.overhead_ms.p99),
                    ms(w.end_to_end_ms.median),
                    ms(w.end_to_end_ms.p99),
                    w.aws_calls_per_invocation,
                    ms(w.first_invocation_ms),
                    ms(w.first_invocation_overhead_ms),
                    outcomes,
                    mb(w.rss_after_init_bytes),
                    mb(w.peak_rss_bytes)
                );
            }
            md.push('\n');
        }
        if !self.sizes.is_empty() {
            let _ = writeln!(md, "## Bootstrap size\n");
            let _ = writeln!(md, "| function | raw | zipped (deflate 6) |");
            let _ = writeln!(md, "|---|---|---|");
            for s in &self.sizes {
                let _ = writeln!(
                    md,
                    "| {} | {} | **{}** |",
                    s.function,
                    mb(s.size.raw_bytes),
                    mb(s.size.zipped_bytes)
                );
            }
            md.push('\n');
        }
        if let Some(s) = &self.sweep {
            md.push_str(&s.markdown());
        }
        if let Some(c) = &self.cost {
            md.push_str(&c.markdown());
        }
        if let Some(o) = &self.org_sweep {
            md.push_str(&o.markdown());
        }
        if !self.reconcile.is_empty() {
            let _ = writeln!(md, "## Reconcile at scale (provision-users)\n");
            let _ = writeln!(
                md,
                "| scenario | runs | wall median | min–max | created | deprovisioned | API calls | throttles seen | outcome |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
            for r in &self.reconcile {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.2} s | {:.2}–{:.2} s | {} | {} | {} | {} | {} |",
                    r.scenario,
                    r.wall_s.runs,
                    r.wall_s.median,
                    r.wall_s.min,
                    r.wall_s.max,
                    r.created,
                    r.deprovisioned,
                    r.api_calls,
                    r.throttled,
                    r.outcome
                );
            }
            md.push('\n');
        }
        if !self.targets.is_empty() {
            let _ = writeln!(md, "## Targets (issues 8 and 14)\n");
            let _ = writeln!(md, "| target | measured | met |");
            let _ = writeln!(md, "|---|---|---|");
            for t in &self.targets {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    t.target,
                    t.measured,
                    if t.met { "yes" } else { "**no**" }
                );
            }
            md.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(md, "- {n}");
        }
        for e in &self.errors {
            let _ = writeln!(md, "- **not measured**: {e}");
        }
        md
    }
}
