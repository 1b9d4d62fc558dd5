//! Test and benchmark knobs of the simulator (latency, per-operation token-bucket rate limits,
//! injected faults, lifecycle delays, health-check behaviour) and the per-operation call
//! statistics; all randomness comes from one seeded RNG so runs are reproducible.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::protocol::AwsError;

/// A token bucket: `burst` tokens of capacity refilled at `rps` tokens per second.
/// `{"rps": 0, "burst": 0}` throttles every call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Refill rate in requests per second.
    pub rps: f64,
    /// Bucket capacity (and the number of tokens the bucket starts with).
    pub burst: f64,
}

/// Everything tunable at run time. Operation keys are the operation part of `X-Amz-Target`
/// (e.g. `ListApps`, `GetFile`); the key `*` in `rate_limits` applies to every operation
/// without its own entry (each operation still gets its own bucket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// Latency added to every AWS call, in milliseconds.
    pub latency_ms: u64,
    /// Extra uniformly random latency in `0..=latency_jitter_ms` (seeded RNG).
    pub latency_jitter_ms: u64,
    /// Per-operation latency overriding `latency_ms`.
    pub op_latency_ms: BTreeMap<String, u64>,
    /// Per-operation token buckets answering `ThrottlingException` when empty.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// Probability in `0..=1` that a call answers a 500 `InternalFailure` or a 503
    /// `ServiceUnavailable` (seeded RNG).
    pub fault_rate: f64,
    /// Per-operation fault probability overriding `fault_rate`.
    pub op_fault_rate: BTreeMap<String, f64>,
    /// The next N AWS calls fail deterministically, alternating 500 and 503.
    pub fail_next: u32,
    /// How long a new app stays `Pending` before it is `InService`.
    pub app_pending_ms: u64,
    /// How long a deleted app stays `Deleting` before it is `Deleted`.
    pub app_deleting_ms: u64,
    /// How long a deleted user profile stays `Deleting` before it is gone.
    pub user_profile_deleting_ms: u64,
    /// How long a deleted space stays `Deleting` before it is gone.
    pub space_deleting_ms: u64,
    /// Automatic control-plane health checks of `InService` apps every N ms (0 = none; the
    /// timestamps then only move through `/_sim/activity`).
    pub health_check_interval_ms: u64,
    /// The real control plane's behaviour: a health check also sets
    /// `LastUserActivityTimestamp` to the health-check time.
    pub health_check_sets_activity: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            latency_jitter_ms: 0,
            op_latency_ms: BTreeMap::new(),
            rate_limits: BTreeMap::new(),
            fault_rate: 0.0,
            op_fault_rate: BTreeMap::new(),
            fail_next: 0,
            app_pending_ms: 0,
            app_deleting_ms: 0,
            user_profile_deleting_ms: 0,
            space_deleting_ms: 0,
            health_check_interval_ms: 0,
            health_check_sets_activity: true,
        }
    }
}

/// A partial update of [`Knobs`]: members present replace the current value (maps are
/// replaced whole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnobsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_jitter_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_latency_ms: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<BTreeMap<String, RateLimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_fault_rate: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_next: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_pending_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_deleting_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_profile_deleting_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_deleting_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_interval_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_sets_activity: Option<bool>,
}

impl Knobs {
    /// Applies a patch in place.
    pub fn apply(&mut self, p: KnobsPatch) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = p.$f { self.$f = v; } )* };
        }
        set!(
            latency_ms,
            latency_jitter_ms,
            op_latency_ms,
            rate_limits,
            fault_rate,
            op_fault_rate,
            fail_next,
            app_pending_ms,
            app_deleting_ms,
            user_profile_deleting_ms,
            space_deleting_ms,
            health_check_interval_ms,
            health_check_sets_activity
        );
    }

    /// Checks values that would make no sense (negative rates, probabilities outside 0..=1).
    pub fn validate(&self) -> Result<(), String> {
        let prob = |p: f64| (0.0..=1.0).contains(&p);
        if !prob(self.fault_rate) || !self.op_fault_rate.values().all(|p| prob(*p)) {
            return Err("fault rates must be within 0..=1".to_owned());
        }
        for (op, rl) in &self.rate_limits {
            if !(rl.rps.is_finite() && rl.rps >= 0.0 && rl.burst.is_finite() && rl.burst >= 0.0) {
                return Err(format!(
                    "rate limit for {op} must have rps >= 0 and burst >= 0"
                ));
            }
        }
        Ok(())
    }
}

/// Call statistics, per operation name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Every AWS call received (including throttled, faulted and forwarded ones).
    pub calls: BTreeMap<String, u64>,
    /// Calls answered `ThrottlingException` by the rate limiter.
    pub throttled: BTreeMap<String, u64>,
    /// Calls answered with an injected 5xx fault.
    pub faults: BTreeMap<String, u64>,
    /// Total injected faults.
    pub faults_injected: u64,
    /// Calls forwarded to moto, per operation.
    pub forwarded_ops: BTreeMap<String, u64>,
    /// Total calls forwarded to moto.
    pub forwarded: u64,
    /// Error answers by error code (including throttling and faults).
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    /// Calls received for one operation.
    pub fn calls_of(&self, op: &str) -> u64 {
        self.calls.get(op).copied().unwrap_or(0)
    }

    /// Throttled calls for one operation.
    pub fn throttled_of(&self, op: &str) -> u64 {
        self.throttled.get(op).copied().unwrap_or(0)
    }

    /// Total calls received.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Total throttled calls.
    pub fn total_throttled(&self) -> u64 {
        self.throttled.values().sum()
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// What the governor decided for one call.
#[derive(Debug)]
pub struct Admission {
    /// Latency to add before answering.
    pub delay: Duration,
    /// `Some` if the call must be answered with this error instead of being executed.
    pub reject: Option<AwsError>,
}

/// Run-time state of the knobs: buckets, the seeded RNG and statistics.
#[derive(Debug)]
pub struct Governor {
    knobs: Knobs,
    initial: Knobs,
    seed: u64,
    rng: StdRng,
    buckets: HashMap<String, Bucket>,
    fault_counter: u64,
    stats: Stats,
}

impl Governor {
    /// A governor with the given knobs and RNG seed.
    pub fn new(knobs: Knobs, seed: u64) -> Self {
        Self {
            initial: knobs.clone(),
            knobs,
            seed,
            rng: StdRng::seed_from_u64(seed ^ 0x6b6e_6f62),
            buckets: HashMap::new(),
            fault_counter: 0,
            stats: Stats::default(),
        }
    }

    /// The knobs in force.
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// Applies a patch; buckets restart full when rate limits change.
    pub fn patch(&mut self, p: KnobsPatch) -> Result<Knobs, String> {
        let mut next = self.knobs.clone();
        let limits_changed = p.rate_limits.is_some();
        next.apply(p);
        next.validate()?;
        self.knobs = next;
        if limits_changed {
            self.buckets.clear();
        }
        Ok(self.knobs.clone())
    }

    /// Back to the knobs given at start, a fresh RNG and empty statistics.
    pub fn reset(&mut self) {
        *self = Self::new(self.initial.clone(), self.seed);
    }

    /// Statistics so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Zeroes the statistics.
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    /// Counts a forwarded call.
    pub fn record_forward(&mut self, op: &str) {
        self.stats.forwarded += 1;
        *self.stats.forwarded_ops.entry(op.to_owned()).or_default() += 1;
    }

    /// Counts an error answer by code.
    pub fn record_error(&mut self, code: &str) {
        *self.stats.errors.entry(code.to_owned()).or_default() += 1;
    }

    /// Decides latency, throttling and faults for one incoming call of `op`.
    pub fn admit(&mut self, op: &str, now: Instant) -> Admission {
        *self.stats.calls.entry(op.to_owned()).or_default() += 1;
        let base = self
            .knobs
            .op_latency_ms
            .get(op)
            .copied()
            .unwrap_or(self.knobs.latency_ms);
        let jitter = if self.knobs.latency_jitter_ms > 0 {
            self.rng.random_range(0..=self.knobs.latency_jitter_ms)
        } else {
            0
        };
        let delay = Duration::from_millis(base.saturating_add(jitter));

        let limit = self
            .knobs
            .rate_limits
            .get(op)
            .or_else(|| self.knobs.rate_limits.get("*"))
            .copied();
        if let Some(rl) = limit {
            let b = self.buckets.entry(op.to_owned()).or_insert(Bucket {
                tokens: rl.burst,
                last: now,
            });
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rl.rps).min(rl.burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
            } else {
                *self.stats.throttled.entry(op.to_owned()).or_default() += 1;
                self.record_error("ThrottlingException");
                return Admission {
                    delay,
                    reject: Some(AwsError::throttling()),
                };
            }
        }

        let fault = if self.knobs.fail_next > 0 {
            self.knobs.fail_next -= 1;
            true
        } else {
            let p = self
                .knobs
                .op_fault_rate
                .get(op)
                .copied()
                .unwrap_or(self.knobs.fault_rate);
            p > 0.0 && self.rng.random::<f64>() < p
        };
        if fault {
            self.fault_counter += 1;
            let err = if self.fault_counter % 2 == 1 {
                AwsError::internal("We encountered an internal error. Please try again.")
            } else {
                AwsError::unavailable()
            };
            *self.stats.faults.entry(op.to_owned()).or_default() += 1;
            self.stats.faults_injected += 1;
            self.record_error(&err.code);
            return Admission {
                delay,
                reject: Some(err),
            };
        }
        Admission {
            delay,
            reject: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_throttles_then_refills() {
        let mut k = Knobs::default();
        k.rate_limits.insert(
            "ListApps".into(),
            RateLimit {
                rps: 10.0,
                burst: 2.0,
            },
        );
        let mut g = Governor::new(k, 1);
        let t0 = Instant::now();
        assert!(g.admit("ListApps", t0).reject.is_none());
        assert!(g.admit("ListApps", t0).reject.is_none());
        assert!(g.admit("ListApps", t0).reject.is_some());
        assert!(g.admit("DescribeApp", t0).reject.is_none());
        assert!(
            g.admit("ListApps", t0 + Duration::from_millis(150))
                .reject
                .is_none()
        );
        assert_eq!(g.stats().throttled_of("ListApps"), 1);
        assert_eq!(g.stats().calls_of("ListApps"), 4);
    }

    #[test]
    fn faults_are_deterministic_per_seed() {
        let k = Knobs {
            fault_rate: 0.3,
            ..Knobs::default()
        };
        let run = |seed| {
            let mut g = Governor::new(k.clone(), seed);
            let t = Instant::now();
            (0..100)
                .map(|_| g.admit("X", t).reject.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let n = run(7).iter().filter(|f| **f).count();
        assert!((10..60).contains(&n));
    }

    #[test]
    fn fail_next_alternates() {
        let k = Knobs {
            fail_next: 2,
            ..Knobs::default()
        };
        let mut g = Governor::new(k, 1);
        let t = Instant::now();
        let a = g.admit("X", t).reject.map(|e| e.status.as_u16());
        let b = g.admit("X", t).reject.map(|e| e.status.as_u16());
        let c = g.admit("X", t).reject.map(|e| e.status.as_u16());
        assert_eq!((a, b, c), (Some(500), Some(503), None));
    }
}
