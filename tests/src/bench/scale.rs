//! Work at scale against the simulator: the idle sweep over a seeded domain (800 user profiles, 800 spaces,
//! 2,000 apps of mixed types, states and activity, 50 ms per call, 100 requests/s per operation) run by the
//! release idle-shutdown bootstrap and by the sequential Python boto3 peer, and the provision-users reconcile.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::Summary;
use crate::sim::admin::{SeedApp, SeedDomain, SeedRequest, SeedSpace, SeedUserProfile};
use crate::sim::{KnobsPatch, RateLimit, Stats};

/// The shape of the seeded world.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SweepScale {
    pub user_profiles: usize,
    pub spaces: usize,
    pub apps: usize,
    pub latency_ms: u64,
    pub rate_per_operation: f64,
    pub burst: f64,
}

impl Default for SweepScale {
    fn default() -> Self {
        Self {
            user_profiles: 800,
            spaces: 800,
            apps: 2_000,
            latency_ms: 50,
            rate_per_operation: 100.0,
            burst: 10.0,
        }
    }
}

/// The tag that exempts an app from the sweep (idle-shutdown's default).
pub const EXEMPT_TAG: (&str, &str) = ("studio-ops:idle-shutdown", "exempt");

const INSTANCE_TYPES: &[&str] = &[
    "ml.t3.medium",
    "ml.m5.large",
    "ml.g4dn.xlarge",
    "ml.c5.xlarge",
];
/// Minutes since the last user activity, cycled over the apps.
const ACTIVITY_AGES_MIN: &[i64] = &[5, 45, 120, 300, 4_320];
/// Every 20 apps: one Pending, one Failed, one Deleted, one Deleting, the rest InService.
fn status_of(k: usize) -> &'static str {
    match k % 20 {
        0 => "Pending",
        1 => "Failed",
        2 => "Deleted",
        3 => "Deleting",
        _ => "InService",
    }
}

/// The seed: profiles `user-NNNN`, private spaces `space-NNNN` owned by them, and apps — one JupyterLab or
/// CodeEditor per space, then KernelGateway apps of the profiles, the rest classic JupyterServer (free) apps.
pub fn seed_request(domain_id: &str, scale: &SweepScale, now: Timestamp) -> SeedRequest {
    let mut req = SeedRequest {
        domains: vec![SeedDomain {
            domain_id: Some(domain_id.to_string()),
            domain_name: "studio-ops".into(),
            auth_mode: Some("SSO".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let profile = |i: usize| format!("user-{i:04}");
    for i in 0..scale.user_profiles {
        req.user_profiles.push(SeedUserProfile {
            domain_id: domain_id.into(),
            user_profile_name: profile(i),
            creation_time: Some(now - SignedDuration::from_hours(24 * 30)),
            ..Default::default()
        });
    }
    for i in 0..scale.spaces {
        req.spaces.push(SeedSpace {
            domain_id: domain_id.into(),
            space_name: format!("space-{i:04}"),
            owner_user_profile_name: Some(profile(i % scale.user_profiles.max(1))),
            sharing_type: Some("Private".into()),
            app_type: Some(
                if i % 2 == 0 {
                    "JupyterLab"
                } else {
                    "CodeEditor"
                }
                .into(),
            ),
            creation_time: Some(now - SignedDuration::from_hours(24 * 30)),
            ..Default::default()
        });
    }
    let gateways = (scale.apps.saturating_sub(scale.spaces)) * 2 / 3;
    for k in 0..scale.apps {
        let (user, space, app_type, app_name) = if k < scale.spaces {
            let t = if k % 2 == 0 {
                "JupyterLab"
            } else {
                "CodeEditor"
            };
            (
                None,
                Some(format!("space-{k:04}")),
                t,
                "default".to_string(),
            )
        } else if k < scale.spaces + gateways {
            let j = k - scale.spaces;
            (
                Some(profile(j % scale.user_profiles.max(1))),
                None,
                "KernelGateway",
                format!("datascience-1-0-{j:04}"),
            )
        } else {
            let j = k - scale.spaces - gateways;
            (
                Some(profile(j % scale.user_profiles.max(1))),
                None,
                "JupyterServer",
                "default".to_string(),
            )
        };
        let instance = if app_type == "JupyterServer" {
            "system".to_string()
        } else {
            INSTANCE_TYPES[k % INSTANCE_TYPES.len()].to_string()
        };
        let created = if k % 3 == 0 {
            now - SignedDuration::from_hours(96)
        } else {
            now - SignedDuration::from_hours(10)
        };
        let age = ACTIVITY_AGES_MIN[k % ACTIVITY_AGES_MIN.len()];
        let last_activity = (now - SignedDuration::from_mins(age)).max(created);
        let mut tags = BTreeMap::new();
        if k % 50 == 17 {
            tags.insert(EXEMPT_TAG.0.to_string(), EXEMPT_TAG.1.to_string());
        }
        req.apps.push(SeedApp {
            domain_id: domain_id.into(),
            user_profile_name: user,
            space_name: space,
            app_type: app_type.into(),
            app_name: Some(app_name),
            status: Some(status_of(k).into()),
            creation_time: Some(created),
            last_health_check: Some(now - SignedDuration::from_mins(1)),
            last_user_activity: Some(last_activity),
            instance_type: Some(instance),
            tags,
            ..Default::default()
        });
    }
    req
}

/// The simulator knobs of the sweep benchmark.
pub fn sweep_knobs(scale: &SweepScale) -> KnobsPatch {
    let mut limits = BTreeMap::new();
    limits.insert(
        "*".to_string(),
        RateLimit {
            rps: scale.rate_per_operation,
            burst: scale.burst,
        },
    );
    KnobsPatch {
        latency_ms: Some(scale.latency_ms),
        rate_limits: Some(limits),
        // Only the seeded timestamps say who is idle.
        health_check_interval_ms: Some(0),
        ..Default::default()
    }
}

/// The least time the calls of a run can take under the per-operation rate limit: the busiest operation's admitted
/// calls beyond the initial burst, at the refill rate. A throttled call took no token, so it does not count.
pub fn rate_floor_seconds(stats: &Stats, scale: &SweepScale) -> f64 {
    stats
        .calls
        .iter()
        .map(|(op, &n)| {
            let admitted = n.saturating_sub(stats.throttled_of(op)) as f64;
            (admitted - scale.burst).max(0.0) / scale.rate_per_operation
        })
        .fold(0.0, f64::max)
}

/// One sweep run, by either implementation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepRun {
    pub wall_s: f64,
    /// Apps in the world (all listed).
    pub apps: usize,
    /// SageMaker requests by operation, as the simulator counted them.
    pub calls: BTreeMap<String, u64>,
    /// DynamoDB requests by operation (the sweep state; the Rust function's idempotency claims too).
    pub dynamodb: BTreeMap<String, u64>,
    pub throttled: u64,
    pub faults: u64,
    pub rate_floor_s: f64,
    /// Apps the sweep should have stopped or warned (by the shared decision) but did not, plus apps it failed on or
    /// did not reach.
    pub apps_missed: usize,
    /// Failures the sweep reported that came from throttling (retries exhausted).
    pub throttles_surfaced: u64,
    pub stopped: usize,
    pub warned: usize,
    /// CPU seconds of the sweep (the Rust function: its process during the invocation; Python: the whole process).
    pub cpu_s: f64,
    /// Peak resident set of the process so far.
    pub peak_rss_bytes: u64,
    /// Operations above the request budget derived from the seed (`request_budget`), as `op: made > allowed`.
    pub over_budget: Vec<String>,
    /// Running billable apps the sweep metered into the spend ledger, and the ledger puts it made (Rust only).
    pub metered: u32,
    pub ledger_writes: u32,
    pub outcome: String,
}

impl SweepRun {
    pub fn requests(&self) -> u64 {
        self.calls.values().sum()
    }

    pub fn requests_per_app(&self) -> f64 {
        self.requests() as f64 / self.apps.max(1) as f64
    }

    pub fn list_tags_per_app(&self) -> f64 {
        self.calls.get("ListTags").copied().unwrap_or(0) as f64 / self.apps.max(1) as f64
    }

    /// Spend-ledger writes per app in the world (all listed), and per running billable app (the metered ones).
    pub fn ledger_writes_per_app(&self) -> f64 {
        f64::from(self.ledger_writes) / self.apps.max(1) as f64
    }

    pub fn ledger_writes_per_metered_app(&self) -> f64 {
        f64::from(self.ledger_writes) / f64::from(self.metered.max(1))
    }
}

/// The runs of one implementation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepSeries {
    pub implementation: String,
    pub runs: Vec<SweepRun>,
    pub wall_s: Summary,
    pub floor_share_median: f64,
    pub throttles_seen_median: f64,
    pub throttles_surfaced_max: u64,
    pub apps_missed_max: usize,
    pub requests_per_app_median: f64,
    pub list_tags_per_app_median: f64,
    pub ledger_writes_per_app_median: f64,
    pub ledger_writes_per_metered_app_median: f64,
    pub cpu_s_median: f64,
    pub peak_rss_max_bytes: u64,
    /// Runs with an operation above the request budget.
    pub runs_over_budget: usize,
}

impl SweepSeries {
    pub fn new(implementation: &str, runs: Vec<SweepRun>) -> Self {
        let median = |f: &dyn Fn(&SweepRun) -> f64| {
            let v: Vec<f64> = runs.iter().map(f).collect();
            Summary::of(&v).median
        };
        let walls: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
        Self {
            implementation: implementation.to_string(),
            wall_s: Summary::of(&walls),
            floor_share_median: median(&|r| {
                if r.wall_s > 0.0 {
                    r.rate_floor_s / r.wall_s
                } else {
                    0.0
                }
            }),
            throttles_seen_median: median(&|r| r.throttled as f64),
            throttles_surfaced_max: runs.iter().map(|r| r.throttles_surfaced).max().unwrap_or(0),
            apps_missed_max: runs.iter().map(|r| r.apps_missed).max().unwrap_or(0),
            requests_per_app_median: median(&SweepRun::requests_per_app),
            list_tags_per_app_median: median(&SweepRun::list_tags_per_app),
            ledger_writes_per_app_median: median(&SweepRun::ledger_writes_per_app),
            ledger_writes_per_metered_app_median: median(&SweepRun::ledger_writes_per_metered_app),
            cpu_s_median: median(&|r| r.cpu_s),
            peak_rss_max_bytes: runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0),
            runs_over_budget: runs.iter().filter(|r| !r.over_budget.is_empty()).count(),
            runs,
        }
    }
}

/// The Rust sweep against the Python peers on the same seeded world and knobs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepComparison {
    pub scale: Option<SweepScale>,
    /// The first sweep on an empty state table (it also migrates the old warning tags).
    pub rust_first: SweepSeries,
    /// The steady state: the third of three consecutive sweeps, the clock advanced between them.
    pub rust: SweepSeries,
    /// The sequential boto3 peer (its one kind of sweep: tags, no state table).
    pub python: SweepSeries,
    /// The concurrent boto3 peer with the Rust function's plan, steady state as for Rust.
    pub python_concurrent: SweepSeries,
    /// Sequential Python / Rust's first sweep, wall time medians.
    pub ratio_median: f64,
    /// Concurrent Python / Rust, steady state, wall time medians.
    pub ratio_concurrent_median: f64,
    /// Whether the first sweeps of all three stopped and warned exactly the same apps.
    pub same_decisions: bool,
    /// The weekly digest over the ledger the Rust sweeps wrote, once per run.
    pub digests: Vec<DigestRun>,
}

impl SweepComparison {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## Idle sweep at scale\n");
        if let Some(s) = &self.scale {
            let _ = writeln!(
                md,
                "{} user profiles, {} spaces, {} apps (mixed types, states, activity; old warning tags on some idle apps, exemptions on apps, spaces and profiles); {} ms per call; {} requests/s per operation (burst {}). Each run starts from the same seed and an empty sweep-state table. *First*: the first sweep (it migrates the old warning tags). *Steady*: the third of three consecutive sweeps, the sweep state moved 15 and then 16 minutes into the past between them (the demo's way of letting time pass), so the third stops what the first warned. Rate floor: the busiest operation's admitted calls (throttled answers take no token) beyond the burst, at the per-operation rate; share of floor = floor / wall time. Budget: the request budget derived from the seed (`request_budget`), per operation.\n",
                s.user_profiles, s.spaces, s.apps, s.latency_ms, s.rate_per_operation, s.burst
            );
        }
        let _ = writeln!(
            md,
            "| implementation | runs | wall median | min–max | rate floor | share of floor | requests / app | ListTags / app | CPU | peak RSS | throttles seen (median) | surfaced | apps missed | over budget | stopped | warned | SageMaker requests (last run) | DynamoDB requests (last run) |"
        );
        let _ = writeln!(
            md,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for s in [
            &self.rust_first,
            &self.rust,
            &self.python,
            &self.python_concurrent,
        ] {
            let last = s.runs.last().cloned().unwrap_or_default();
            let list = |m: &BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} s | {:.2}–{:.2} s | {:.2} s | {:.0} % | {:.2} | {:.2} | {:.2} s | {:.1} MB | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.implementation,
                s.wall_s.runs,
                s.wall_s.median,
                s.wall_s.min,
                s.wall_s.max,
                last.rate_floor_s,
                s.floor_share_median * 100.0,
                s.requests_per_app_median,
                s.list_tags_per_app_median,
                s.cpu_s_median,
                s.peak_rss_max_bytes as f64 / (1024.0 * 1024.0),
                s.throttles_seen_median,
                s.throttles_surfaced_max,
                s.apps_missed_max,
                if last.over_budget.is_empty() {
                    format!("{} runs", s.runs_over_budget)
                } else {
                    format!(
                        "{} runs: {}",
                        s.runs_over_budget,
                        last.over_budget.join(", ")
                    )
                },
                last.stopped,
                last.warned,
                list(&last.calls),
                list(&last.dynamodb)
            );
        }
        let _ = writeln!(
            md,
            "\nSequential Python / Rust's first sweep, wall time medians: **{:.1}×**. Concurrent Python / Rust, steady state: **{:.2}×**. Same apps stopped and warned by all three on the first sweep: {}.\n",
            self.ratio_median,
            self.ratio_concurrent_median,
            if self.same_decisions { "yes" } else { "**no**" }
        );
        let _ = writeln!(
            md,
            "Spend ledger (the Rust function and the concurrent peer meter it alike; the sequential peer does not): Rust's first sweep {:.2} writes per app ({:.2} per running billable app), steady state {:.2} per app ({:.2} per running billable app); the DynamoDB column above holds them (`PutItem`) with the sweep state's `Query`/`BatchWriteItem` and the lease's claims. docs/cost.md turns them into dollars.\n",
            self.rust_first.ledger_writes_per_app_median,
            self.rust_first.ledger_writes_per_metered_app_median,
            self.rust.ledger_writes_per_app_median,
            self.rust.ledger_writes_per_metered_app_median,
        );
        if !self.digests.is_empty() {
            let mut walls: Vec<f64> = self.digests.iter().map(|d| d.wall_s).collect();
            walls.sort_by(f64::total_cmp);
            let last = &self.digests[self.digests.len() - 1];
            let _ = writeln!(
                md,
                "Weekly digest (Rust, dry run over the ledger the sweeps wrote): median {:.2} s over {} runs, {} user digests, DynamoDB requests {:?} (last run), peak RSS {:.1} MB.\n",
                walls[walls.len() / 2],
                walls.len(),
                last.user_digests,
                last.dynamodb,
                self.digests
                    .iter()
                    .map(|d| d.peak_rss_bytes)
                    .max()
                    .unwrap_or(0) as f64
                    / 1e6
            );
        }
        md
    }
}

/// One reconcile scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileResult {
    pub scenario: String,
    pub wall_s: Summary,
    pub created: usize,
    pub deprovisioned: usize,
    pub api_calls: u64,
    pub throttled: u64,
    pub outcome: String,
}

/// The tag idle-shutdown writes when it warns (and reads to stop after the grace period).
pub const WARNING_TAG: &str = "studio-ops:idle-warning-at";

/// A stable key of an app: `user/<profile>/<type>/<name>` or `space/<space>/<type>/<name>`.
fn app_key(user: Option<&str>, space: Option<&str>, app_type: &str, app_name: &str) -> String {
    match (space, user) {
        (Some(s), _) => format!("space/{s}/{app_type}/{app_name}"),
        (None, Some(u)) => format!("user/{u}/{app_type}/{app_name}"),
        (None, None) => format!("?/{app_type}/{app_name}"),
    }
}

/// What a correct sweep does to the seeded world, by the idle rules both implementations follow (accelerated
/// instances 60 min with a 24 h cap, others 180 min; exempt tags on app, space or profile; warn, then stop
/// once a valid warning is older than the 30 min grace).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Expected {
    pub stop: std::collections::BTreeSet<String>,
    pub warn: std::collections::BTreeSet<String>,
}

/// An InService billable app past its idle limit (or its cap): the apps whose tags, and whose owners' facts, a
/// sweep must read.
struct Candidate<'a> {
    app: &'a SeedApp,
    key: String,
    created: Timestamp,
    evidence: Timestamp,
    cap_hit: bool,
}

/// The idle candidates of a seed at `now`, by the benchmark's idle rules.
fn candidates(req: &SeedRequest, now: Timestamp) -> impl Iterator<Item = Candidate<'_>> {
    req.apps.iter().filter_map(move |a| {
        let instance = a.instance_type.as_deref().unwrap_or("unknown");
        if !billable_in_service(a) {
            return None;
        }
        let accelerated = ["ml.g", "ml.p", "ml.trn", "ml.inf"]
            .iter()
            .any(|p| instance.starts_with(p));
        let (limit, cap) = if accelerated {
            (60, Some(24 * 60))
        } else {
            (180, None)
        };
        let created = a.creation_time?;
        let evidence = match (a.last_user_activity, a.last_health_check) {
            (Some(ua), hc) if Some(ua) != hc && ua > created => ua,
            _ => created,
        };
        let cap_hit =
            cap.is_some_and(|c| now.duration_since(created) >= SignedDuration::from_mins(c));
        let idle_hit = now.duration_since(evidence) >= SignedDuration::from_mins(limit);
        (cap_hit || idle_hit).then(|| Candidate {
            app: a,
            key: app_key(
                a.user_profile_name.as_deref(),
                a.space_name.as_deref(),
                &a.app_type,
                a.app_name.as_deref().unwrap_or("default"),
            ),
            created,
            evidence,
            cap_hit,
        })
    })
}

/// The keys of the seed's idle candidates at `now` (`user/<profile>/<type>/<name>` or `space/...`).
pub fn idle_candidates(req: &SeedRequest, now: Timestamp) -> std::collections::BTreeSet<String> {
    candidates(req, now).map(|c| c.key).collect()
}

/// The InService billable apps of a seed, as `domain/user|space/<name>/<type>/<app>` (lower-cased).
pub fn billable_keys(req: &SeedRequest) -> Vec<String> {
    req.apps
        .iter()
        .filter(|a| billable_in_service(a))
        .map(|a| {
            let owner = match (&a.space_name, &a.user_profile_name) {
                (Some(s), _) => format!("space/{s}"),
                (None, Some(u)) => format!("user/{u}"),
                (None, None) => "?".to_string(),
            };
            format!(
                "{}/{owner}/{}/{}",
                a.domain_id,
                a.app_type,
                a.app_name.as_deref().unwrap_or("default")
            )
            .to_lowercase()
        })
        .collect()
}

/// An app a sweep must describe: InService and billable (not the free JupyterServer on its system instance).
fn billable_in_service(a: &SeedApp) -> bool {
    a.app_type != "JupyterServer"
        && a.instance_type.as_deref() != Some("system")
        && a.status.as_deref() == Some("InService")
}

pub fn expected_actions(req: &SeedRequest, now: Timestamp) -> Expected {
    let exempt = |tags: &BTreeMap<String, String>| {
        tags.get(EXEMPT_TAG.0).map(String::as_str) == Some(EXEMPT_TAG.1)
    };
    let exempt_profiles: std::collections::BTreeSet<&str> = req
        .user_profiles
        .iter()
        .filter(|p| exempt(&p.tags))
        .map(|p| p.user_profile_name.as_str())
        .collect();
    let spaces: BTreeMap<&str, &SeedSpace> = req
        .spaces
        .iter()
        .map(|s| (s.space_name.as_str(), s))
        .collect();
    let mut out = Expected::default();
    for c in candidates(req, now) {
        let a = c.app;
        if exempt(&a.tags) {
            continue;
        }
        let owner_profile = match (&a.space_name, &a.user_profile_name) {
            (Some(s), _) => {
                let Some(space) = spaces.get(s.as_str()) else {
                    continue;
                };
                if exempt(&space.tags) {
                    continue;
                }
                space.owner_user_profile_name.clone()
            }
            (None, u) => u.clone(),
        };
        if owner_profile
            .as_deref()
            .is_some_and(|p| exempt_profiles.contains(p))
        {
            continue;
        }
        let warned_at = a
            .tags
            .get(WARNING_TAG)
            .and_then(|t| t.parse::<Timestamp>().ok());
        let valid = warned_at.filter(|w| {
            *w >= c.created
                && (c.cap_hit || *w >= c.evidence)
                && *w <= now + SignedDuration::from_mins(5)
        });
        match valid {
            Some(w) if now >= w + SignedDuration::from_mins(30) => {
                out.stop.insert(c.key);
            }
            Some(_) => {}
            None => {
                out.warn.insert(c.key);
            }
        }
    }
    out
}

/// The most SageMaker requests of each operation a sweep of the seeded world may make (issue 14's budget): the
/// `ListApps` pages, one `DescribeApp` per InService billable app, one `ListTags` per idle candidate, the owner
/// facts (description and tags) at most once per candidate owner, one `DeleteApp` per stop, the domain's idle
/// settings once, a `DeleteTags` per candidate still carrying the old warning tag (the migration), and the spaces'
/// listing of each domain with running space apps (the spend meter's owners). No other operation: no `AddTags`.
pub fn request_budget(req: &SeedRequest, now: Timestamp, page_size: u64) -> BTreeMap<String, u64> {
    let mut listed: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &req.apps {
        *listed.entry(a.domain_id.as_str()).or_default() += 1;
    }
    let spaces: BTreeMap<&str, &SeedSpace> = req
        .spaces
        .iter()
        .map(|s| (s.space_name.as_str(), s))
        .collect();
    let mut candidate_apps = 0;
    let mut legacy = 0;
    let mut owner_spaces = std::collections::BTreeSet::new();
    let mut owner_profiles = std::collections::BTreeSet::new();
    for c in candidates(req, now) {
        candidate_apps += 1;
        if c.app.tags.contains_key(WARNING_TAG) {
            legacy += 1;
        }
        let domain = c.app.domain_id.as_str();
        match (&c.app.space_name, &c.app.user_profile_name) {
            (Some(s), _) => {
                owner_spaces.insert((domain, s.to_lowercase()));
                if let Some(owner) = spaces
                    .get(s.as_str())
                    .and_then(|sp| sp.owner_user_profile_name.as_deref())
                {
                    owner_profiles.insert((domain, owner.to_lowercase()));
                }
            }
            (None, Some(u)) => {
                owner_profiles.insert((domain, u.to_lowercase()));
            }
            (None, None) => {}
        }
    }
    let owners = (owner_spaces.len() + owner_profiles.len()) as u64;
    // The meter bills a private space's apps to its owner: one ListSpaces listing per domain with running space apps.
    let mut spaces_per_domain: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &req.spaces {
        *spaces_per_domain.entry(s.domain_id.as_str()).or_default() += 1;
    }
    let list_spaces: u64 = req
        .apps
        .iter()
        .filter(|a| a.space_name.is_some() && billable_in_service(a))
        .map(|a| a.domain_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|d| spaces_per_domain.get(d).copied().unwrap_or(0) / page_size.max(1) + 1)
        .sum();
    let budget = [
        (
            "ListApps",
            listed.values().map(|n| n / page_size.max(1) + 1).sum(),
        ),
        (
            "DescribeApp",
            req.apps.iter().filter(|a| billable_in_service(a)).count() as u64,
        ),
        ("ListTags", candidate_apps + owners),
        ("DescribeSpace", owner_spaces.len() as u64),
        ("DescribeUserProfile", owner_profiles.len() as u64),
        ("DescribeDomain", listed.len() as u64),
        ("ListSpaces", list_spaces),
        ("DeleteApp", expected_actions(req, now).stop.len() as u64),
        ("DeleteTags", legacy),
    ];
    budget
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The operations of `calls` beyond `budget` (an operation absent from the budget may not be called at all), as
/// `operation: made > allowed` lines.
pub fn over_budget(calls: &BTreeMap<String, u64>, budget: &BTreeMap<String, u64>) -> Vec<String> {
    calls
        .iter()
        .filter_map(|(op, &made)| {
            let allowed = budget.get(op).copied().unwrap_or(0);
            (made > allowed).then(|| format!("{op}: {made} > {allowed}"))
        })
        .collect()
}

/// What the simulator's state shows a sweep did: apps now deleting or deleted, and apps newly warned (`warned`
/// says whether the implementation recorded a warning of an app during this sweep: the Rust function in its sweep
/// state, the Python peers in a tag).
fn observed_actions(
    before: &SeedRequest,
    after: &crate::sim::admin::StateDump,
    warned: impl Fn(&crate::sim::admin::AppState) -> bool,
) -> Expected {
    let mut seeded_running = std::collections::BTreeSet::new();
    for a in &before.apps {
        let key = app_key(
            a.user_profile_name.as_deref(),
            a.space_name.as_deref(),
            &a.app_type,
            a.app_name.as_deref().unwrap_or("default"),
        );
        if a.status.as_deref() == Some("InService") {
            seeded_running.insert(key);
        }
    }
    let mut out = Expected::default();
    for a in &after.apps {
        let key = app_key(
            a.user_profile_name.as_deref(),
            a.space_name.as_deref(),
            &a.app_type,
            &a.app_name,
        );
        if seeded_running.contains(&key) && matches!(a.status.as_str(), "Deleting" | "Deleted") {
            out.stop.insert(key.clone());
        }
        if warned(a) {
            out.warn.insert(key);
        }
    }
    out
}

/// Apps the Python peers warned: a warning tag the seed did not carry.
fn tagged_since_seed(before: &SeedRequest) -> impl Fn(&crate::sim::admin::AppState) -> bool {
    let seeded: std::collections::BTreeSet<String> = before
        .apps
        .iter()
        .filter(|a| a.tags.contains_key(WARNING_TAG))
        .map(|a| {
            app_key(
                a.user_profile_name.as_deref(),
                a.space_name.as_deref(),
                &a.app_type,
                a.app_name.as_deref().unwrap_or("default"),
            )
        })
        .collect();
    move |a| {
        let key = app_key(
            a.user_profile_name.as_deref(),
            a.space_name.as_deref(),
            &a.app_type,
            &a.app_name,
        );
        a.tags.contains_key(WARNING_TAG) && !seeded.contains(&key)
    }
}

/// Apps the Rust function warned at or after `since`, by its sweep state.
async fn recorded_since(
    world: &crate::world::World,
    after: &crate::sim::admin::StateDump,
    since: Timestamp,
) -> Result<impl Fn(&crate::sim::admin::AppState) -> bool + use<>, super::BenchError> {
    let warnings = crate::sweep_state::warnings(world, &after.apps)
        .await
        .map_err(|e| super::BenchError::Failed(format!("read the sweep state: {e}")))?;
    // The table keeps whole seconds.
    let since = since.as_second();
    Ok(move |a: &crate::sim::admin::AppState| {
        warnings
            .get(&crate::sweep_state::key_of(a))
            .is_some_and(|w| w.as_second() >= since)
    })
}

fn missed(expected: &Expected, observed: &Expected) -> usize {
    expected.stop.difference(&observed.stop).count()
        + expected.warn.difference(&observed.warn).count()
}

/// Seeds the sweep world afresh and sets its knobs; returns the seed and the time decisions are judged at.
async fn reseed(
    world: &crate::world::World,
    domain_id: &str,
    scale: &SweepScale,
) -> Result<(SeedRequest, Timestamp), super::BenchError> {
    let admin = world.sim().admin();
    admin.reset().await?;
    // A reseeded world starts without the last seed's sweep history.
    crate::sweep_state::clear(world, domain_id)
        .await
        .map_err(|e| super::BenchError::Failed(format!("clear the sweep state: {e}")))?;
    let now = Timestamp::now();
    let mut req = seed_request(domain_id, scale, now);
    decorate_for_sweep(&mut req, now);
    admin.seed(&req).await?;
    admin.set_knobs(&sweep_knobs(scale)).await?;
    admin.reset_stats().await?;
    Ok((req, now))
}

/// Warning tags (older than the grace period) on some idle apps so that the sweep stops as well as warns, and
/// exempt tags on a few spaces and profiles so that owner facts matter.
pub fn decorate_for_sweep(req: &mut SeedRequest, now: Timestamp) {
    for (k, a) in req.apps.iter_mut().enumerate() {
        let age = ACTIVITY_AGES_MIN[k % ACTIVITY_AGES_MIN.len()];
        if age >= 300 && k % 2 == 0 {
            a.tags.insert(
                WARNING_TAG.to_string(),
                (now - SignedDuration::from_mins(60)).to_string(),
            );
        }
    }
    for (i, s) in req.spaces.iter_mut().enumerate() {
        if i % 61 == 7 {
            s.tags
                .insert(EXEMPT_TAG.0.to_string(), EXEMPT_TAG.1.to_string());
        }
    }
    for (i, p) in req.user_profiles.iter_mut().enumerate() {
        if i % 97 == 5 {
            p.tags
                .insert(EXEMPT_TAG.0.to_string(), EXEMPT_TAG.1.to_string());
        }
    }
}

/// The idle-shutdown settings of the benchmark: the template's, with the client-side SageMaker limit at its
/// maximum (100 calls/s) and wide concurrency so the simulator's limits, not the defaults, are what is measured.
pub const SWEEP_FUNCTION_ENV: &[(&str, &str)] = &[
    ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND", "100"),
    ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_BURST", "10"),
    ("STUDIO_OPS_IDLE_CONCURRENCY", "32"),
];

/// Minutes the sweep state is moved into the past between the sweeps of a steady-state run: the first warns, the
/// second finds those warnings in their grace period, the third (31 minutes after the first) stops them.
const STEADY_STEPS_MIN: [i64; 2] = [15, 16];

/// The seed as the world stands before the steady-state sweep: what the first sweep stopped is gone, its warnings
/// (shown as warning tags 31 minutes old, which is what the function's state holds) are due, the old tags were
/// migrated. `request_budget` and `expected_actions` read it like any seed.
fn steady_seed(seed: &SeedRequest, first: &Expected, now: Timestamp) -> SeedRequest {
    let mut steady = seed.clone();
    for a in &mut steady.apps {
        let key = app_key(
            a.user_profile_name.as_deref(),
            a.space_name.as_deref(),
            &a.app_type,
            a.app_name.as_deref().unwrap_or("default"),
        );
        a.tags.remove(WARNING_TAG);
        if first.stop.contains(&key) {
            a.status = Some("Deleted".into());
        } else if first.warn.contains(&key) {
            a.tags.insert(
                WARNING_TAG.to_string(),
                (now - SignedDuration::from_mins(31)).to_string(),
            );
        }
    }
    steady
}

/// The request budget of the steady-state sweep: as the seed derives it, with no migration left to do.
fn steady_budget(steady: &SeedRequest, now: Timestamp) -> BTreeMap<String, u64> {
    let mut budget = request_budget(steady, now, LIST_APPS_PAGE);
    budget.insert("DeleteTags".into(), 0);
    budget
}

/// The requests the simulator admitted, by operation: a throttled answer is the SDK retrying the same request (the
/// plan asked once), so the budget counts what got through.
fn admitted(stats: &Stats) -> BTreeMap<String, u64> {
    stats
        .calls
        .iter()
        .map(|(op, n)| (op.clone(), n.saturating_sub(stats.throttled_of(op))))
        .collect()
}

/// The `MaxResults` both implementations ask `ListApps` for.
const LIST_APPS_PAGE: u64 = 100;

/// What one hosted Rust sweep is measured with.
struct RustSweep<'a> {
    world: &'a crate::world::World,
    host: &'a crate::runtime_api::FunctionHost,
    binary: &'a std::path::Path,
    moto_proxy: &'a super::proxy::TimingProxy,
    scale: &'a SweepScale,
}

/// One weekly-digest run (dry run: it reads and computes everything a real run does and sends nothing, so that
/// every bench run measures the same work) over the ledger the sweeps wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DigestRun {
    pub wall_s: f64,
    /// DynamoDB requests by operation.
    pub dynamodb: BTreeMap<String, u64>,
    pub user_digests: u32,
    pub peak_rss_bytes: u64,
}

impl RustSweep<'_> {
    async fn digest(&self) -> Result<DigestRun, super::BenchError> {
        let pid = super::rss::children_running(self.binary).first().copied();
        let ddb_before = self.moto_proxy.calls().len();
        let week = idle_shutdown::weekly::Week::last_before(
            Timestamp::now() + SignedDuration::from_hours(7 * 24),
        )
        .id();
        let started = std::time::Instant::now();
        let inv = self
            .host
            .invoke(serde_json::json!({"digest": "weekly", "week": week, "dryRun": true}))
            .await?;
        let wall = started.elapsed().as_secs_f64();
        let answer = inv.outcome.response().cloned().unwrap_or_default();
        Ok(DigestRun {
            wall_s: wall,
            dynamodb: super::org::dynamodb_requests(&self.moto_proxy.calls()[ddb_before..]),
            user_digests: answer["sent"].as_u64().unwrap_or(0) as u32,
            peak_rss_bytes: pid
                .and_then(|p| super::rss::status_bytes(p, "VmHWM"))
                .unwrap_or(0),
        })
    }

    /// One invocation; `expected` is what the seed `before` says it must do, `budget` what it may ask.
    async fn run(
        &self,
        before: &SeedRequest,
        expected: &Expected,
        budget: &BTreeMap<String, u64>,
    ) -> Result<SweepRun, super::BenchError> {
        let admin = self.world.sim().admin();
        admin.reset_stats().await?;
        let pid = super::rss::children_running(self.binary).first().copied();
        let cpu_before = pid.and_then(super::rss::cpu_seconds).unwrap_or(0.0);
        let ddb_before = self.moto_proxy.calls().len();
        let started_at = Timestamp::now();
        let started = std::time::Instant::now();
        let inv = self.host.invoke(serde_json::json!({})).await?;
        let wall = started.elapsed().as_secs_f64();
        let cpu_after = pid.and_then(super::rss::cpu_seconds).unwrap_or(0.0);
        let rss = pid
            .and_then(|p| super::rss::status_bytes(p, "VmHWM"))
            .unwrap_or(0);
        let dynamodb = super::org::dynamodb_requests(&self.moto_proxy.calls()[ddb_before..]);
        let stats = admin.stats().await?;
        let state = admin.state().await?;
        let observed = observed_actions(
            before,
            &state,
            recorded_since(self.world, &state, started_at).await?,
        );
        // The sweep's typed answer; an error (or an already-running answer) counts as an empty report.
        let report = inv
            .outcome
            .response()
            .and_then(|answer| idle_shutdown::handler::Outcome::deserialize(answer).ok())
            .and_then(|outcome| outcome.report().cloned())
            .unwrap_or_default();
        Ok(SweepRun {
            wall_s: wall,
            apps: before.apps.len(),
            rate_floor_s: rate_floor_seconds(&stats, self.scale),
            over_budget: over_budget(&admitted(&stats), budget),
            calls: stats.calls.clone(),
            dynamodb,
            throttled: stats.total_throttled(),
            faults: stats.faults_injected,
            apps_missed: missed(expected, &observed)
                + (report.not_reached + report.failed) as usize,
            throttles_surfaced: report
                .apps
                .iter()
                .filter(|a| a.outcome == "failed" && a.reason.contains("Throttl"))
                .count() as u64,
            stopped: observed.stop.len(),
            warned: observed.warn.len(),
            metered: report.metered,
            ledger_writes: report.ledger_writes,
            cpu_s: cpu_after - cpu_before,
            peak_rss_bytes: rss,
            outcome: match &inv.outcome {
                crate::runtime_api::Outcome::Response(_) => format!(
                    "ok: scanned {}, examined {}, warned {}, stopped {}, failed {}, not reached {}",
                    report.scanned,
                    report.examined,
                    report.warned,
                    report.stopped,
                    report.failed,
                    report.not_reached
                ),
                other => format!("{other:?}"),
            },
        })
    }
}

/// One run of a Python peer (`script` with `args`), measured like the Rust sweep.
#[allow(clippy::too_many_arguments)]
async fn python_sweep(
    world: &crate::world::World,
    script: &str,
    args: &[String],
    before: &SeedRequest,
    expected: &Expected,
    budget: &BTreeMap<String, u64>,
    scale: &SweepScale,
    state_table: bool,
) -> Result<SweepRun, super::BenchError> {
    use super::BenchError;
    let admin = world.sim().admin();
    admin.reset_stats().await?;
    let started_at = Timestamp::now();
    let started = std::time::Instant::now();
    let output = tokio::process::Command::new(super::venv_python())
        .arg(super::peer_script(script))
        .args(args)
        .env_clear()
        .envs(crate::world::aws_env(world.moto().url(), world.sim().url()))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .await
        .map_err(BenchError::io("run a Python sweep"))?;
    let wall = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(BenchError::Failed(format!(
            "the Python sweep {script} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let stats = admin.stats().await?;
    let state = admin.state().await?;
    let observed = if state_table {
        observed_actions(
            before,
            &state,
            recorded_since(world, &state, started_at).await?,
        )
    } else {
        observed_actions(before, &state, tagged_since_seed(before))
    };
    let failures = answer
        .get("failed")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let dynamodb: BTreeMap<String, u64> = answer
        .get("dynamodb_requests")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let ledger_writes = dynamodb.get("PutItem").copied().unwrap_or(0) as u32;
    Ok(SweepRun {
        wall_s: wall,
        apps: before.apps.len(),
        rate_floor_s: rate_floor_seconds(&stats, scale),
        over_budget: over_budget(&admitted(&stats), budget),
        calls: stats.calls.clone(),
        dynamodb,
        // The concurrent peer meters the ledger like the Rust function; the sequential one does not.
        metered: answer
            .get("metered")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as u32,
        ledger_writes,
        throttled: stats.total_throttled(),
        faults: stats.faults_injected,
        apps_missed: missed(expected, &observed) + failures.len(),
        throttles_surfaced: failures
            .iter()
            .filter(|f| f.to_string().contains("Throttl"))
            .count() as u64,
        stopped: observed.stop.len(),
        warned: observed.warn.len(),
        cpu_s: answer
            .get("cpu_s")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
        peak_rss_bytes: answer
            .get("peak_rss_bytes")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        outcome: format!("ok: {} failed", failures.len()),
    })
}

fn print_run(label: &str, n: usize, run: &SweepRun) {
    println!(
        "  {label} {}: {:.2} s (floor {:.2} s), {} requests ({:.2}/app, ListTags {:.2}/app), {} throttled, missed {}, CPU {:.2} s, RSS {:.1} MB, over budget {:?}; {}",
        n + 1,
        run.wall_s,
        run.rate_floor_s,
        run.requests(),
        run.requests_per_app(),
        run.list_tags_per_app(),
        run.throttled,
        run.apps_missed,
        run.cpu_s,
        run.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        run.over_budget,
        run.outcome
    );
}

/// Runs the idle sweep at scale with the three implementations.
pub async fn run_sweeps(
    results: &mut super::report::Results,
    runs: usize,
    python_runs: usize,
    extra_env: &BTreeMap<String, String>,
    out: &std::path::Path,
) -> Result<(), super::BenchError> {
    use super::BenchError;
    let scale = SweepScale::default();
    let world =
        crate::world::World::start(super::world_config(crate::world::WorldConfig::default()))
            .await?;
    let domain = world.names.domain_id.clone();
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(BenchError::io("create the log folder"))?;

    // The function's moto traffic (its state table, claims and events) through a proxy that counts it.
    let moto_proxy = super::proxy::TimingProxy::start(world.moto().url()).await?;
    let mut env =
        super::warm::function_env(&world, "idle-shutdown", moto_proxy.url(), world.sim().url())?;
    env.insert("STUDIO_OPS_DOMAIN_IDS".into(), domain.clone());
    for (k, v) in SWEEP_FUNCTION_ENV {
        env.insert((*k).into(), (*v).into());
    }
    env.extend(extra_env.clone());
    let binary = crate::runtime_api::function_binary("idle-shutdown");
    let host = super::warm::host(
        "idle-shutdown",
        &binary,
        env,
        std::time::Duration::from_secs(300),
        &logs,
    )
    .await?;
    let rust = RustSweep {
        world: &world,
        host: &host,
        binary: &binary,
        moto_proxy: &moto_proxy,
        scale: &scale,
    };
    let shift = |mins: i64| {
        let world = &world;
        let domain = domain.clone();
        async move {
            crate::sweep_state::shift(world, &domain, SignedDuration::from_mins(mins))
                .await
                .map_err(|e| BenchError::Failed(format!("move the sweep state: {e}")))
        }
    };

    let (mut rust_first, mut rust_steady, mut first_observed) = (Vec::new(), Vec::new(), None);
    let mut digests = Vec::new();
    for n in 0..runs {
        world.empty_queues().await?;
        let (seed, now) = reseed(&world, &domain, &scale).await?;
        let expected = expected_actions(&seed, now);
        let first = rust
            .run(
                &seed,
                &expected,
                &request_budget(&seed, now, LIST_APPS_PAGE),
            )
            .await?;
        print_run("rust first sweep", n, &first);
        let steady = steady_seed(&seed, &expected, now);
        let steady_expected = expected_actions(&steady, now);
        let budget = steady_budget(&steady, now);
        first_observed.get_or_insert((first.stopped, first.warned));
        rust_first.push(first);
        shift(STEADY_STEPS_MIN[0]).await?;
        let second = rust.run(&steady, &Expected::default(), &budget).await?;
        print_run("rust second sweep", n, &second);
        shift(STEADY_STEPS_MIN[1]).await?;
        let third = rust.run(&steady, &steady_expected, &budget).await?;
        print_run("rust steady sweep", n, &third);
        rust_steady.push(third);
        let digest = rust.digest().await?;
        println!(
            "    rust weekly digest (dry run) #{n}: {:.2} s, {} user digests, DynamoDB {:?}, peak RSS {:.1} MB",
            digest.wall_s,
            digest.user_digests,
            digest.dynamodb,
            digest.peak_rss_bytes as f64 / 1e6
        );
        digests.push(digest);
    }
    host.stop().await;

    let args = |extra: &[&str]| -> Vec<String> {
        std::iter::once(domain.clone())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let concurrency = SWEEP_FUNCTION_ENV
        .iter()
        .find(|(k, _)| *k == "STUDIO_OPS_IDLE_CONCURRENCY")
        .map_or("32", |(_, v)| *v);
    let (rate, burst) = (
        scale.rate_per_operation.to_string(),
        scale.burst.to_string(),
    );
    let mut same = true;
    let mut py_concurrent = Vec::new();
    for n in 0..runs {
        world.empty_queues().await?;
        let (seed, now) = reseed(&world, &domain, &scale).await?;
        let expected = expected_actions(&seed, now);
        let peer_args = args(&[
            &world.names.idle_state_table,
            concurrency,
            &rate,
            &burst,
            &world.names.spend_table,
        ]);
        let first = python_sweep(
            &world,
            "idle_sweep_concurrent.py",
            &peer_args,
            &seed,
            &expected,
            &request_budget(&seed, now, LIST_APPS_PAGE),
            &scale,
            true,
        )
        .await?;
        print_run("python concurrent first sweep", n, &first);
        same &= first.apps_missed == 0 && first_observed == Some((first.stopped, first.warned));
        let steady = steady_seed(&seed, &expected, now);
        let steady_expected = expected_actions(&steady, now);
        let budget = steady_budget(&steady, now);
        shift(STEADY_STEPS_MIN[0]).await?;
        let second = python_sweep(
            &world,
            "idle_sweep_concurrent.py",
            &peer_args,
            &steady,
            &Expected::default(),
            &budget,
            &scale,
            true,
        )
        .await?;
        print_run("python concurrent second sweep", n, &second);
        shift(STEADY_STEPS_MIN[1]).await?;
        let third = python_sweep(
            &world,
            "idle_sweep_concurrent.py",
            &peer_args,
            &steady,
            &steady_expected,
            &budget,
            &scale,
            true,
        )
        .await?;
        print_run("python concurrent steady sweep", n, &third);
        py_concurrent.push(third);
    }

    let mut py_sequential = Vec::new();
    for n in 0..python_runs {
        world.empty_queues().await?;
        let (seed, now) = reseed(&world, &domain, &scale).await?;
        let expected = expected_actions(&seed, now);
        let run = python_sweep(
            &world,
            "idle_sweep.py",
            &args(&[]),
            &seed,
            &expected,
            &request_budget(&seed, now, LIST_APPS_PAGE),
            &scale,
            false,
        )
        .await?;
        print_run("python sequential sweep", n, &run);
        same &= run.apps_missed == 0 && first_observed == Some((run.stopped, run.warned));
        py_sequential.push(run);
    }
    world.stop().await;

    let rust_first = SweepSeries::new(
        "Rust idle-shutdown, first sweep (release bootstrap)",
        rust_first,
    );
    let rust = SweepSeries::new(
        "Rust idle-shutdown, steady state (release bootstrap)",
        rust_steady,
    );
    let python = SweepSeries::new("Python boto3, sequential (tags)", py_sequential);
    let python_concurrent = SweepSeries::new(
        "Python boto3, concurrent (the Rust plan), steady state",
        py_concurrent,
    );
    let ratio = |a: &SweepSeries, b: &SweepSeries| {
        if b.wall_s.median > 0.0 {
            a.wall_s.median / b.wall_s.median
        } else {
            0.0
        }
    };
    let peer = |s: &SweepSeries| super::report::PeerFigures {
        implementation: s.implementation.clone(),
        wall_s: s.wall_s.median,
        wall: s.wall_s.clone(),
        requests_per_app: s.requests_per_app_median,
        cpu_s: s.cpu_s_median,
        peak_rss_bytes: s.peak_rss_max_bytes,
    };
    results.peer_concurrent = Some(peer(&python_concurrent));
    results.peer_sequential = (!python.runs.is_empty()).then(|| peer(&python));
    let sizing = |s: &SweepSeries| {
        super::cost::size(
            &s.implementation,
            s.wall_s.median,
            s.cpu_s_median,
            s.peak_rss_max_bytes,
        )
    };
    let mut others = vec![sizing(&rust_first)];
    if !python.runs.is_empty() {
        others.push(sizing(&python));
    }
    results.cost = Some(super::cost::CostFigures::new(
        sizing(&rust),
        sizing(&python_concurrent),
        others,
    ));
    results.sweep = Some(SweepComparison {
        scale: Some(scale),
        ratio_median: ratio(&python, &rust_first),
        ratio_concurrent_median: ratio(&python_concurrent, &rust),
        same_decisions: same,
        digests,
        rust_first,
        rust,
        python,
        python_concurrent,
    });
    results.notes.push(format!(
        "Idle sweep settings: the template's environment plus {}.",
        SWEEP_FUNCTION_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(extra_env.clone())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// The identity store the template names (`IdentityStoreId`'s default) and moto serves.
pub const IDENTITY_STORE: &str = "d-9067000000";

/// Creates a group of `members` users in moto's identity store (a few requests at a time) and returns its id and
/// the `(user name, user id)` of every member.
pub async fn seed_identity(
    sdk: &aws_config::SdkConfig,
    group_name: &str,
    members: usize,
) -> Result<(String, Vec<(String, String)>), super::BenchError> {
    use futures::StreamExt;
    let ids = aws_sdk_identitystore::Client::new(sdk);
    let fail = |what: &str, e: String| super::BenchError::Failed(format!("{what}: {e}"));
    let group = ids
        .create_group()
        .identity_store_id(IDENTITY_STORE)
        .display_name(group_name)
        .send()
        .await
        .map_err(|e| fail("CreateGroup", studio_ops_shared::error::error_chain(&e)))?
        .group_id()
        .to_string();
    let users: Vec<Result<(String, String), super::BenchError>> = futures::stream::iter(0..members)
        .map(|i| {
            let ids = ids.clone();
            let group = group.clone();
            async move {
                let name = format!("{group_name}-user{i:04}@example.com");
                let user = ids
                    .create_user()
                    .identity_store_id(IDENTITY_STORE)
                    .user_name(&name)
                    .display_name(&name)
                    .name(
                        aws_sdk_identitystore::types::Name::builder()
                            .given_name("Bench")
                            .family_name(format!("User{i:04}"))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| fail("CreateUser", studio_ops_shared::error::error_chain(&e)))?
                    .user_id()
                    .to_string();
                ids.create_group_membership()
                    .identity_store_id(IDENTITY_STORE)
                    .group_id(&group)
                    .member_id(aws_sdk_identitystore::types::MemberId::UserId(user.clone()))
                    .send()
                    .await
                    .map_err(|e| {
                        fail(
                            "CreateGroupMembership",
                            studio_ops_shared::error::error_chain(&e),
                        )
                    })?;
                Ok((name, user))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let users = users.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((group, users))
}

/// Runs the reconcile scenarios: a 1,000-member group against an empty domain, and against a domain whose
/// 1,100 managed profiles include 100 of users who left (so 100 deprovisions).
pub async fn run_reconciles(
    results: &mut super::report::Results,
    runs: usize,
    out: &std::path::Path,
) -> Result<(), super::BenchError> {
    use super::BenchError;
    use provision_users::plan::{MANAGED_BY, TAG_GROUP_ID, TAG_MANAGED_BY, TAG_USER_ID};
    let scale = SweepScale::default();
    let world =
        crate::world::World::start(super::world_config(crate::world::WorldConfig::default()))
            .await?;
    let admin = world.sim().admin();
    let domain = world.names.domain_id.clone();
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(BenchError::io("create the log folder"))?;
    println!("  seeding a 1,000-member group in moto's identity store…");
    let (group, members) = seed_identity(world.moto_sdk(), "bench-data-science", 1_000).await?;

    let mut env = super::warm::function_env(
        &world,
        "provision-users",
        world.moto().url(),
        world.sim().url(),
    )?;
    env.insert("STUDIO_OPS_PROVISION_GROUP_IDS".into(), group.clone());
    env.insert("STUDIO_OPS_IDENTITY_STORE_ID".into(), IDENTITY_STORE.into());
    env.insert("STUDIO_OPS_DOMAIN_ID".into(), domain.clone());
    // The brake's default (10 at once) would block the 100 deprovisions the scenario is about.
    env.insert("STUDIO_OPS_DEPROVISION_MAX_COUNT".into(), "100".into());
    let binary = crate::runtime_api::function_binary("provision-users");
    let host = super::warm::host(
        "provision-users",
        &binary,
        env.clone(),
        std::time::Duration::from_secs(900),
        &logs,
    )
    .await?;

    let knobs = sweep_knobs(&scale);
    let _ = &members;
    let base = |now: Timestamp| {
        SeedRequest {
            domains: vec![SeedDomain {
                domain_id: Some(domain.clone()),
                domain_name: "studio-ops".into(),
                auth_mode: Some("SSO".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
        .with_time(now)
    };
    for scenario in [
        "1,000 members, empty domain",
        "1,000 members, 100 to deprovision",
    ] {
        let mut walls = Vec::new();
        let mut last = ReconcileResult {
            scenario: scenario.to_string(),
            ..Default::default()
        };
        for n in 0..runs {
            world.empty_queues().await?;
            admin.reset().await?;
            let now = Timestamp::now();
            admin.seed(&base(now)).await?;
            let deprovisioning = scenario.contains("deprovision");
            if deprovisioning {
                // Everyone already provisioned (an earlier reconcile, at full speed), plus 100 managed profiles of
                // users who left the group a month ago.
                host.invoke(serde_json::json!({})).await?;
                let leavers: Vec<SeedUserProfile> = (0..100)
                    .map(|i| SeedUserProfile {
                        domain_id: domain.clone(),
                        user_profile_name: format!("left-user{i:03}"),
                        creation_time: Some(now - SignedDuration::from_hours(24 * 30)),
                        tags: [
                            (TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                            (
                                TAG_USER_ID.to_string(),
                                format!("00000000-0000-0000-0000-{i:012}"),
                            ),
                            (TAG_GROUP_ID.to_string(), group.clone()),
                        ]
                        .into_iter()
                        .collect(),
                        ..Default::default()
                    })
                    .collect();
                admin
                    .seed(&SeedRequest {
                        user_profiles: leavers,
                        ..Default::default()
                    })
                    .await?;
            }
            admin.set_knobs(&knobs).await?;
            admin.reset_stats().await?;
            let live = |s: &crate::sim::admin::StateDump| -> std::collections::BTreeSet<String> {
                s.user_profiles
                    .iter()
                    .filter(|p| p.status != "Deleting" && p.status != "Deleted")
                    .map(|p| p.user_profile_name.clone())
                    .collect()
            };
            let before = live(&admin.state().await?);
            let started = std::time::Instant::now();
            let inv = host.invoke(serde_json::json!({})).await?;
            let wall = started.elapsed().as_secs_f64();
            let stats = admin.stats().await?;
            let after = live(&admin.state().await?);
            let created = after.difference(&before).count();
            let deprovisioned = before.difference(&after).count();
            walls.push(wall);
            last = ReconcileResult {
                scenario: scenario.to_string(),
                wall_s: Summary::default(),
                created,
                deprovisioned,
                api_calls: stats.total_calls(),
                throttled: stats.total_throttled(),
                outcome: match &inv.outcome {
                    crate::runtime_api::Outcome::Response(_) => "ok".to_string(),
                    other => format!("{other:?}").chars().take(300).collect(),
                },
            };
            println!(
                "  reconcile ({scenario}) run {}: {wall:.2} s, {created} created, {deprovisioned} deprovisioned, {} calls, {} throttled",
                n + 1,
                last.api_calls,
                last.throttled
            );
            let (want_created, want_gone) = if deprovisioning {
                (0, 100)
            } else {
                (members.len(), 0)
            };
            if created != want_created || deprovisioned != want_gone {
                results.errors.push(format!(
                    "reconcile ({scenario}) run {}: created {created} (expected {want_created}), deprovisioned {deprovisioned} (expected {want_gone}): {:?}",
                    n + 1,
                    inv.outcome
                ));
            }
        }
        last.wall_s = Summary::of(&walls);
        results.reconcile.push(last);
    }
    host.stop().await;
    world.stop().await;
    results.notes.push(
        "Reconcile settings: the template's environment (20 SageMaker calls/s, concurrency 8) with STUDIO_OPS_DEPROVISION_MAX_COUNT=100; simulator at 50 ms per call and 100 requests/s per operation.".into(),
    );
    Ok(())
}

trait WithTime {
    fn with_time(self, now: Timestamp) -> Self;
}

impl WithTime for SeedRequest {
    fn with_time(mut self, now: Timestamp) -> Self {
        for d in &mut self.domains {
            d.creation_time
                .get_or_insert(now - SignedDuration::from_hours(24 * 90));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_has_the_advertised_shape() {
        let scale = SweepScale::default();
        let now = Timestamp::now();
        let req = seed_request("d-bench0000001", &scale, now);
        assert_eq!(req.user_profiles.len(), 800);
        assert_eq!(req.spaces.len(), 800);
        assert_eq!(req.apps.len(), 2_000);
        let count = |t: &str| req.apps.iter().filter(|a| a.app_type == t).count();
        assert_eq!(count("JupyterLab") + count("CodeEditor"), 800);
        assert_eq!(count("KernelGateway"), 800);
        assert_eq!(count("JupyterServer"), 400);
        let in_service = req
            .apps
            .iter()
            .filter(|a| a.status.as_deref() == Some("InService"))
            .count();
        assert_eq!(in_service, 1_600);
        assert!(req.apps.iter().any(|a| !a.tags.is_empty()));
    }

    #[test]
    fn floor_is_the_busiest_operation_beyond_the_burst() {
        let scale = SweepScale::default();
        let mut stats = Stats::default();
        stats.calls.insert("ListApps".into(), 30);
        stats.calls.insert("DescribeApp".into(), 1_610);
        assert!((rate_floor_seconds(&stats, &scale) - 16.0).abs() < 1e-9);
        // Throttled answers took no token: 1,710 calls of which 100 throttled are the same 1,610 admitted.
        stats.calls.insert("DescribeApp".into(), 1_710);
        stats.throttled.insert("DescribeApp".into(), 100);
        assert!((rate_floor_seconds(&stats, &scale) - 16.0).abs() < 1e-9);
    }
}
