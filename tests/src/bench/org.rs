//! The organisation workload of `make bench` (issue 14): 20,000 apps over five domains (the benchmark's mix of
//! types, states and activity), the simulator at 100 requests/s per operation with 50 ms latency, and each sweep
//! given 60 s, so that one invocation cannot finish. Consecutive sweeps run until every InService billable app has
//! been examined. What the function asked of SageMaker is read where it arrived: per operation from the simulator's
//! own counters, per app from the `DescribeApp` requests a timing proxy saw (an app is examined when it is
//! described: from an empty state no app can be kept on its state alone before its first reading). DynamoDB
//! requests are counted by a proxy in front of moto.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::BenchError;
use super::proxy::{Call, TimingProxy};
use super::scale::{SweepScale, billable_keys, seed_request, sweep_knobs};

/// The workload: domains × apps per domain.
pub const DOMAINS: usize = 5;
pub const APPS_PER_DOMAIN: usize = 4_000;
/// The time each sweep is given (the Lambda deadline the host passes).
pub const SWEEP_BUDGET_S: u64 = 60;
/// A run that has not examined every app after this many sweeps is reported as such.
const MAX_SWEEPS: usize = 16;

/// One sweep of the organisation workload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrgSweepRun {
    pub wall_s: f64,
    /// Apps the sweep reported as examined (decided on, from a reading or its state).
    pub examined: u32,
    /// Distinct apps it described.
    pub described: usize,
    pub not_reached: u32,
    pub apps_behind: u32,
    pub sagemaker: BTreeMap<String, u64>,
    pub dynamodb: BTreeMap<String, u64>,
    pub throttled: u64,
    pub throttles_surfaced: u64,
    /// The function process's peak resident set so far.
    pub peak_rss_bytes: u64,
    pub outcome: String,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrgSweep {
    pub domains: usize,
    pub apps: usize,
    /// InService billable apps: the apps every sweep must examine.
    pub billable_in_service: usize,
    pub sweep_budget_s: u64,
    pub sweeps: Vec<OrgSweepRun>,
    /// Sweeps until every InService billable app had been examined (0: never within the run).
    pub sweeps_needed: usize,
    pub never_examined: usize,
    /// Apps examined in two sweeps before every app had been examined once (must be 0).
    pub examined_twice_before_all: usize,
    /// SageMaker requests of the sweeps needed, per app of the workload.
    pub requests_per_app: f64,
    pub list_tags_per_app: f64,
    pub peak_rss_bytes: u64,
}

impl OrgSweep {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## Organisation workload\n");
        let _ = writeln!(
            md,
            "{} apps over {} domains ({} InService and billable), 100 requests/s per operation, 50 ms per call, each sweep given {} s; an app counts as examined when the function described it and did not record it as not reached. In the local world moto (DynamoDB, EventBridge) answers a few dozen writes a second on this machine, and every warning costs three of them (claim, event, completion), so a sweep here examines far fewer apps than SageMaker's rate would allow. Sweeps until every app was examined: **{}**; apps never examined: **{}**; apps examined twice before all were examined once: **{}**; SageMaker requests per app over those sweeps: **{:.2}** (`ListTags` {:.2}); peak RSS {:.1} MB.\n",
            self.apps,
            self.domains,
            self.billable_in_service,
            self.sweep_budget_s,
            self.sweeps_needed,
            self.never_examined,
            self.examined_twice_before_all,
            self.requests_per_app,
            self.list_tags_per_app,
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0)
        );
        let _ = writeln!(
            md,
            "| sweep | wall | examined | described | not reached | behind | SageMaker requests | per app examined | DynamoDB requests | throttles seen / surfaced | peak RSS | outcome |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (i, s) in self.sweeps.iter().enumerate() {
            let total: u64 = s.sagemaker.values().sum();
            let per = if s.examined > 0 {
                total as f64 / f64::from(s.examined)
            } else {
                0.0
            };
            let list = |m: &BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                md,
                "| {} | {:.1} s | {} | {} | {} | {} | {} ({}) | {:.2} | {} | {} / {} | {:.1} MB | {} |",
                i + 1,
                s.wall_s,
                s.examined,
                s.described,
                s.not_reached,
                s.apps_behind,
                total,
                list(&s.sagemaker),
                per,
                list(&s.dynamodb),
                s.throttled,
                s.throttles_surfaced,
                s.peak_rss_bytes as f64 / (1024.0 * 1024.0),
                s.outcome
            );
        }
        md
    }
}

/// The app a `DescribeApp` request names, as `domain/user|space/<name>/<type>/<app>` (lower-cased).
fn described_app(call: &Call) -> Option<String> {
    if call.target.as_deref() != Some("SageMaker.DescribeApp") || call.status != 200 {
        return None;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Req {
        domain_id: String,
        user_profile_name: Option<String>,
        space_name: Option<String>,
        app_type: String,
        app_name: String,
    }
    let r: Req = serde_json::from_slice(&call.body).ok()?;
    let owner = match (r.space_name, r.user_profile_name) {
        (Some(s), _) => format!("space/{s}"),
        (None, Some(u)) => format!("user/{u}"),
        (None, None) => return None,
    };
    Some(format!("{}/{owner}/{}/{}", r.domain_id, r.app_type, r.app_name).to_lowercase())
}

/// The fingerprint the function records an app under, from a key of [`described_app`] (`domain/owner/type/app`).
fn hash_of(key: &str) -> (String, u64) {
    let (domain, app) = key.split_once('/').unwrap_or(("", key));
    (
        domain.to_string(),
        idle_shutdown::state::key_hash(&format!("app#{app}")),
    )
}

/// The apps each domain's sweep state records as not reached.
async fn unreached_after(
    world: &crate::world::World,
    domains: &[String],
) -> Result<BTreeSet<(String, u64)>, BenchError> {
    use idle_shutdown::ports::SweepState;
    let store = crate::sweep_state::store(world);
    let mut out = BTreeSet::new();
    for d in domains {
        let state = store
            .load(d)
            .await
            .map_err(|e| BenchError::Failed(format!("read the sweep state of {d}: {e}")))?;
        out.extend(state.unreached.keys().map(|h| (d.to_lowercase(), *h)));
    }
    Ok(out)
}

/// DynamoDB requests among `calls`, by operation.
pub fn dynamodb_requests(calls: &[Call]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in calls {
        if let Some(op) = c
            .target
            .as_deref()
            .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
        {
            *out.entry(op.to_string()).or_default() += 1;
        }
    }
    out
}

/// Coverage of consecutive sweeps, each the apps it examined in the order it examined them (each once): the sweeps
/// needed until every app in `all` was examined (0 if never), the apps never examined, and the apps examined a
/// second time before every app had been examined once.
pub fn coverage(all: &BTreeSet<String>, sweeps: &[Vec<String>]) -> (usize, usize, usize) {
    let mut seen: BTreeSet<&String> = BTreeSet::new();
    let mut twice = BTreeSet::new();
    for (i, examined) in sweeps.iter().enumerate() {
        for app in examined.iter().filter(|a| all.contains(*a)) {
            if !seen.insert(app) {
                twice.insert(app.clone());
            }
            if seen.len() == all.len() {
                return (i + 1, 0, twice.len());
            }
        }
    }
    (0, all.len() - seen.len(), twice.len())
}

/// The apps described among `calls`, in the order the requests arrived, each once (an SDK retry of a throttled
/// request is the same examination).
fn described_in_order(calls: &[Call]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    calls
        .iter()
        .filter_map(described_app)
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

/// Runs the organisation workload and records it in `results.org_sweep`.
pub async fn run_org(
    results: &mut super::report::Results,
    extra_env: &BTreeMap<String, String>,
    out: &std::path::Path,
) -> Result<(), BenchError> {
    let scale = SweepScale {
        user_profiles: 1_600,
        spaces: 1_600,
        apps: APPS_PER_DOMAIN,
        ..SweepScale::default()
    };
    let world =
        crate::world::World::start(super::world_config(crate::world::WorldConfig::default()))
            .await?;
    let admin = world.sim().admin();
    // The seed brings its own domains (the world's first one among them).
    admin.reset().await?;
    let domains: Vec<String> = (1..=DOMAINS)
        .map(|i| format!("d-studioops{i:04}"))
        .collect();
    let now = jiff::Timestamp::now();
    let mut all = BTreeSet::new();
    let mut apps = 0;
    for d in &domains {
        let seed = seed_request(d, &scale, now);
        apps += seed.apps.len();
        all.extend(billable_keys(&seed));
        admin.seed(&seed).await?;
    }
    admin.set_knobs(&sweep_knobs(&scale)).await?;

    let sim_proxy = TimingProxy::start(world.sim().url()).await?;
    let moto_proxy = TimingProxy::start(world.moto().url()).await?;
    let mut env =
        super::warm::function_env(&world, "idle-shutdown", moto_proxy.url(), sim_proxy.url())?;
    env.insert("STUDIO_OPS_DOMAIN_IDS".into(), domains.join(","));
    for (k, v) in super::scale::SWEEP_FUNCTION_ENV {
        env.insert((*k).into(), (*v).into());
    }
    env.extend(extra_env.clone());
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(BenchError::io("create the log folder"))?;
    let binary = crate::runtime_api::function_binary("idle-shutdown");
    let host = super::warm::host(
        "idle-shutdown",
        &binary,
        env,
        std::time::Duration::from_secs(SWEEP_BUDGET_S),
        &logs,
    )
    .await?;

    let mut runs = Vec::new();
    let mut examined_sets = Vec::new();
    let (mut sm_seen, mut ddb_seen) = (0, 0);
    let mut peak = 0;
    for n in 0..MAX_SWEEPS {
        admin.reset_stats().await?;
        let started = std::time::Instant::now();
        let inv = host.invoke(serde_json::json!({})).await?;
        let wall = started.elapsed().as_secs_f64();
        let stats = admin.stats().await?;
        let sm_calls = sim_proxy.calls();
        let ddb_calls = moto_proxy.calls();
        let described = described_in_order(&sm_calls[sm_seen..]);
        // A reading the deadline cut off is no examination: the function records such an app as not reached.
        let unreached = unreached_after(&world, &domains).await?;
        let examined: Vec<String> = described
            .iter()
            .filter(|key| !unreached.contains(&hash_of(key)))
            .cloned()
            .collect();
        let dynamodb = dynamodb_requests(&ddb_calls[ddb_seen..]);
        (sm_seen, ddb_seen) = (sm_calls.len(), ddb_calls.len());
        let rss = super::rss::children_running(&binary)
            .into_iter()
            .filter_map(|pid| super::rss::status_bytes(pid, "VmHWM"))
            .max()
            .unwrap_or(0);
        peak = peak.max(rss);
        let report = inv
            .outcome
            .response()
            .and_then(|answer| idle_shutdown::handler::Outcome::deserialize(answer).ok())
            .and_then(|outcome| outcome.report().cloned())
            .unwrap_or_default();
        let run = OrgSweepRun {
            wall_s: wall,
            examined: report.examined,
            described: described.len(),
            not_reached: report.not_reached,
            apps_behind: report.apps_behind,
            sagemaker: stats.calls.clone(),
            dynamodb,
            throttled: stats.total_throttled(),
            throttles_surfaced: report
                .apps
                .iter()
                .filter(|a| a.outcome == "failed" && a.reason.contains("Throttl"))
                .count() as u64,
            peak_rss_bytes: rss,
            outcome: match &inv.outcome {
                crate::runtime_api::Outcome::Response(_) => format!(
                    "scanned {}, warned {}, stopped {}, failed {}",
                    report.scanned, report.warned, report.stopped, report.failed
                ),
                other => format!("{other:?}"),
            },
        };
        println!(
            "  org sweep {}: {:.1} s, examined {}, described {}, not reached {}, {} SageMaker requests, RSS {:.1} MB",
            n + 1,
            run.wall_s,
            run.examined,
            run.described,
            run.not_reached,
            stats.total_calls(),
            rss as f64 / (1024.0 * 1024.0)
        );
        runs.push(run);
        examined_sets.push(examined);
        if coverage(&all, &examined_sets).0 > 0 {
            break;
        }
    }
    host.stop().await;
    world.stop().await;

    let (needed, never, twice) = coverage(&all, &examined_sets);
    let counted = if needed > 0 { needed } else { runs.len() };
    let requests: u64 = runs[..counted]
        .iter()
        .map(|r| r.sagemaker.values().sum::<u64>())
        .sum();
    let list_tags: u64 = runs[..counted]
        .iter()
        .map(|r| r.sagemaker.get("ListTags").copied().unwrap_or(0))
        .sum();
    results.org_sweep = Some(OrgSweep {
        domains: DOMAINS,
        apps,
        billable_in_service: all.len(),
        sweep_budget_s: SWEEP_BUDGET_S,
        sweeps_needed: needed,
        never_examined: never,
        examined_twice_before_all: twice,
        requests_per_app: requests as f64 / apps.max(1) as f64,
        list_tags_per_app: list_tags as f64 / apps.max(1) as f64,
        peak_rss_bytes: peak,
        sweeps: runs,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn coverage_counts_sweeps_gaps_and_repeats() {
        let all: BTreeSet<String> = list(&["a", "b", "c", "d"]).into_iter().collect();
        // The apps left over first, then the rest: covered in two sweeps, nothing twice before that.
        assert_eq!(
            coverage(&all, &[list(&["a", "b"]), list(&["c", "d", "a"])]),
            (2, 0, 0)
        );
        // Starting again from the first page: a is examined again before c and d were examined once.
        assert_eq!(
            coverage(&all, &[list(&["a", "b"]), list(&["a", "c", "d"])]),
            (2, 0, 1)
        );
        // Never complete: d was never examined.
        assert_eq!(
            coverage(&all, &[list(&["a"]), list(&["b", "c"])]),
            (0, 1, 0)
        );
    }
}
