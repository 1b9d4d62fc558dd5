//! The cost rules (pure): the worst case a planned job can bill, and which models of a push may start under the
//! administrator's ceilings — one per job, one for all of a push's jobs together; and what a finished job cost, as
//! the spend ledger records it.
//!
//! Worst case = instance count × the longest time SageMaker can bill (`MaxRuntimeInSeconds`) × the on-demand
//! training price of the instance type (`studio_ops_shared::prices`, component Training). A managed spot job is
//! held to the same figure: its `MaxWaitTimeInSeconds` also counts the time spent waiting for capacity, which is
//! not billed, and spot never costs more than on-demand. An instance type with no known price is refused or
//! allowed per setting, never guessed.

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use studio_ops_shared::names::{MAX_NAME_LEN, NameStyle, is_valid_name, slug};
use studio_ops_shared::prices::{PriceTable, round_usd};
use studio_ops_shared::spend::{Account, KIND_TRAINING_JOB, Usage, month_of};

use crate::plan::TrainingJobSpec;

pub const MAX_JOB_COST_USD: &str = "STUDIO_OPS_MAX_JOB_COST_USD";
pub const MAX_PUSH_COST_USD: &str = "STUDIO_OPS_MAX_PUSH_COST_USD";
pub const UNKNOWN_TRAINING_PRICE: &str = "STUDIO_OPS_UNKNOWN_TRAINING_PRICE";

/// What to do with an instance type the price table does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownPrice {
    /// Reject the model: nobody can say what it may cost.
    Refuse,
    /// Let it start; it counts nothing towards the push's ceiling and its alert says the cost is unknown.
    Allow,
}

impl FromStr for UnknownPrice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "refuse" => Ok(UnknownPrice::Refuse),
            "allow" => Ok(UnknownPrice::Allow),
            other => Err(format!("{other:?} is neither refuse nor allow")),
        }
    }
}

/// The administrator's ceilings, in USD.
#[derive(Debug, Clone, PartialEq)]
pub struct CostGuard {
    pub max_job_usd: f64,
    pub max_push_usd: f64,
    pub unknown_price: UnknownPrice,
    /// On-demand training prices of the region the jobs run in.
    pub prices: PriceTable,
}

/// The worst case of one planned job.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub instance_type: String,
    pub instance_count: u32,
    /// The longest time SageMaker may bill per instance.
    pub max_billable_seconds: u32,
    /// The hourly price and where it came from (None: unknown).
    pub price: Option<(f64, String)>,
}

impl Estimate {
    pub fn of(spec: &TrainingJobSpec, prices: &PriceTable) -> Self {
        Self {
            instance_type: spec.instance_type.clone(),
            instance_count: spec.instance_count,
            max_billable_seconds: spec.max_runtime_seconds,
            price: prices
                .price(&spec.instance_type)
                .map(|p| (p.usd_per_hour, p.source.clone())),
        }
    }

    /// The worst case in USD (rounded for display), None when the price is unknown.
    pub fn max_usd(&self) -> Option<f64> {
        self.price.as_ref().map(|(usd_per_hour, _)| {
            round_usd(
                f64::from(self.instance_count) * f64::from(self.max_billable_seconds) / 3600.0
                    * usd_per_hour,
            )
        })
    }

    /// How the figure is made, e.g. `2 x ml.g5.xlarge x 24 h at $1.408/h = $67.58`.
    pub fn basis(&self) -> String {
        let hours = hours(self.max_billable_seconds);
        match (&self.price, self.max_usd()) {
            (Some((usd_per_hour, source)), Some(usd)) => format!(
                "{} x {} x {hours} at ${usd_per_hour}/h (price source {source}) = ${usd:.2}",
                self.instance_count, self.instance_type
            ),
            _ => format!(
                "{} x {} x {hours} at an unknown price (no training price for {})",
                self.instance_count, self.instance_type, self.instance_type
            ),
        }
    }
}

fn hours(seconds: u32) -> String {
    let h = f64::from(seconds) / 3600.0;
    if h.fract() == 0.0 {
        format!("{h} h")
    } else {
        format!("{:.2} h", h)
    }
}

/// Each model's verdict: `Ok` may start, `Err` is the rejection the committer reads (figure and ceiling).
///
/// Models are taken in name order, so a replayed push decides the same way. A model above the per-job ceiling
/// (or of unknown price, when refused) is rejected and counts nothing. The others are admitted while their sum
/// stays within the per-push ceiling; the first that would cross it, and every later one that would too, is
/// rejected as the push's excess. A later, cheaper model that still fits is admitted.
pub fn judge(
    estimates: &BTreeMap<String, Estimate>,
    guard: &CostGuard,
) -> BTreeMap<String, Result<(), String>> {
    let mut admitted: Vec<(&str, f64)> = Vec::new();
    let mut total = 0.0;
    let mut verdicts = BTreeMap::new();
    for (model, estimate) in estimates {
        let verdict = match estimate.max_usd() {
            None if guard.unknown_price == UnknownPrice::Refuse => Err(format!(
                "the worst-case cost cannot be estimated: {}. Choose an instance type with a training price, or ask an administrator to add it (STUDIO_OPS_TRAINING_PRICES_USD_PER_HOUR)",
                estimate.basis()
            )),
            None => Ok(()),
            Some(usd) if usd > guard.max_job_usd => Err(format!(
                "the job could cost up to ${usd:.2} ({}), above the per-job ceiling of ${:.2} ({MAX_JOB_COST_USD}). Lower max_runtime_minutes, instance_count or the instance type",
                estimate.basis(),
                guard.max_job_usd
            )),
            Some(usd) if round_usd(total + usd) > guard.max_push_usd => Err(format!(
                "the job could cost up to ${usd:.2} ({}); with the push's other jobs ({}) that is ${:.2}, above the per-push ceiling of ${:.2} ({MAX_PUSH_COST_USD}). Push this model on its own, or lower its max_runtime_minutes",
                estimate.basis(),
                if admitted.is_empty() {
                    "none".to_string()
                } else {
                    admitted
                        .iter()
                        .map(|(m, u)| format!("{m} ${u:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                round_usd(total + usd),
                guard.max_push_usd
            )),
            Some(usd) => {
                total = round_usd(total + usd);
                admitted.push((model.as_str(), usd));
                Ok(())
            }
        };
        verdicts.insert(model.clone(), verdict);
    }
    verdicts
}

/// What a finished job billed, as it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Billed {
    pub job: String,
    pub instance_type: String,
    pub instance_count: u32,
    /// `BillableTimeInSeconds`: per instance.
    pub billable_seconds: u32,
    /// `TrainingEndTime` (else the time the end was handled), seconds since the epoch.
    pub ended: i64,
}

/// The profile names a commit author's profile may have: the author (a user name or e-mail) named as
/// provision-users names profiles, in either style (`studio_ops_shared::names::slug`), valid names only.
pub fn profile_candidates(author: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for style in [NameStyle::Full, NameStyle::LocalPart] {
        let name = slug(author, style, MAX_NAME_LEN);
        if is_valid_name(&name) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The ledger record of a finished job (kind `training-job`, keyed by the job, in the month it ended): billed
/// seconds x instance count, at the training price (unpriced: hours only, never guessed). One record per job, so a
/// replay writes the same record again, which the ledger's conditional put turns away.
pub fn training_spend(
    domain_id: &str,
    account: Account,
    billed: &Billed,
    prices: &PriceTable,
) -> Usage {
    let seconds = i64::from(billed.billable_seconds) * i64::from(billed.instance_count.max(1));
    let end = Timestamp::from_second(billed.ended).unwrap_or(Timestamp::UNIX_EPOCH);
    let day = end.to_zoned_datetime(TimeZone::UTC).date().to_string();
    Usage {
        domain_id: domain_id.to_string(),
        month: month_of(end),
        key: format!("training#{}", billed.job),
        kind: KIND_TRAINING_JOB.to_string(),
        account,
        space: None,
        app_type: "TrainingJob".to_string(),
        app_name: billed.job.clone(),
        instance_type: billed.instance_type.clone(),
        created: billed.ended - i64::from(billed.billable_seconds),
        until: billed.ended,
        seconds,
        days: BTreeMap::from([(day, seconds)]),
        usd_per_hour: prices.hourly(&billed.instance_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(job: f64, push: f64, unknown: UnknownPrice) -> CostGuard {
        CostGuard {
            max_job_usd: job,
            max_push_usd: push,
            unknown_price: unknown,
            prices: PriceTable::from_prices(
                "us-east-1",
                &[("ml.m5.xlarge", 0.25), ("ml.g5.xlarge", 1.5)],
            ),
        }
    }

    fn estimate(g: &CostGuard, instance_type: &str, count: u32, seconds: u32) -> Estimate {
        Estimate {
            instance_type: instance_type.to_string(),
            instance_count: count,
            max_billable_seconds: seconds,
            price: g
                .prices
                .price(instance_type)
                .map(|p| (p.usd_per_hour, p.source.clone())),
        }
    }

    fn one(g: &CostGuard, e: Estimate) -> Result<(), String> {
        let verdicts = judge(&BTreeMap::from([("m".to_string(), e)]), g);
        verdicts["m"].clone()
    }

    #[test]
    fn the_worst_case_is_count_times_runtime_times_price() {
        let g = guard(100.0, 100.0, UnknownPrice::Refuse);
        let e = estimate(&g, "ml.g5.xlarge", 2, 36_000);
        assert_eq!(e.max_usd(), Some(30.0));
        assert_eq!(
            e.basis(),
            "2 x ml.g5.xlarge x 10 h at $1.5/h (price source configuration) = $30.00"
        );
        assert_eq!(estimate(&g, "ml.m5.xlarge", 1, 5400).max_usd(), Some(0.375));
    }

    #[test]
    fn per_job_ceiling_at_below_and_above() {
        // 2 x 1.5 x 10 h = $30.
        let e = |g: &CostGuard| estimate(g, "ml.g5.xlarge", 2, 36_000);
        let at = guard(30.0, 1000.0, UnknownPrice::Refuse);
        assert_eq!(one(&at, e(&at)), Ok(()));
        let above = guard(40.0, 1000.0, UnknownPrice::Refuse);
        assert_eq!(one(&above, e(&above)), Ok(()));
        let below = guard(29.99, 1000.0, UnknownPrice::Refuse);
        let why = one(&below, e(&below)).unwrap_err();
        assert!(
            why.contains("$30.00")
                && why.contains("$29.99")
                && why.contains(MAX_JOB_COST_USD)
                // The manifest's own field names, so that the committer knows what to change.
                && why.contains("max_runtime_minutes")
                && why.contains("instance_count"),
            "{why}"
        );
    }

    #[test]
    fn per_push_ceiling_rejects_the_excess_in_name_order() {
        // a: $30, b: $30, c: $2.50, d: $30 against a push ceiling of $62.50.
        let g = guard(100.0, 62.5, UnknownPrice::Refuse);
        let estimates = BTreeMap::from([
            ("a".to_string(), estimate(&g, "ml.g5.xlarge", 2, 36_000)),
            ("b".to_string(), estimate(&g, "ml.g5.xlarge", 2, 36_000)),
            ("c".to_string(), estimate(&g, "ml.m5.xlarge", 1, 36_000)),
            ("d".to_string(), estimate(&g, "ml.g5.xlarge", 2, 36_000)),
        ]);
        let v = judge(&estimates, &g);
        assert_eq!(v["a"], Ok(()));
        assert_eq!(v["b"], Ok(()));
        // Exactly at the ceiling: $62.50.
        assert_eq!(v["c"], Ok(()));
        let why = v["d"].clone().unwrap_err();
        assert!(
            why.contains("$92.50")
                && why.contains("$62.50")
                && why.contains("a $30.00, b $30.00, c $2.50"),
            "{why}"
        );
        // One cent less and c is the excess too, while a smaller later job still fits.
        let tight = guard(100.0, 62.49, UnknownPrice::Refuse);
        let v = judge(&estimates, &tight);
        assert!(v["c"].is_err() && v["d"].is_err());
    }

    #[test]
    fn a_model_over_the_job_ceiling_counts_nothing_towards_the_push() {
        let g = guard(20.0, 30.0, UnknownPrice::Refuse);
        let estimates = BTreeMap::from([
            ("big".to_string(), estimate(&g, "ml.g5.xlarge", 2, 36_000)),
            ("small".to_string(), estimate(&g, "ml.g5.xlarge", 1, 36_000)),
        ]);
        let v = judge(&estimates, &g);
        assert!(v["big"].clone().unwrap_err().contains("per-job"));
        assert_eq!(v["small"], Ok(()));
    }

    #[test]
    fn an_unknown_price_is_refused_or_allowed_per_setting_never_guessed() {
        let refuse = guard(100.0, 100.0, UnknownPrice::Refuse);
        let e = estimate(&refuse, "ml.p4d.24xlarge", 1, 3600);
        assert_eq!(e.max_usd(), None);
        let why = one(&refuse, e.clone()).unwrap_err();
        assert!(
            why.contains("ml.p4d.24xlarge")
                && why.contains("STUDIO_OPS_TRAINING_PRICES_USD_PER_HOUR"),
            "{why}"
        );
        let allow = guard(100.0, 100.0, UnknownPrice::Allow);
        assert_eq!(one(&allow, e), Ok(()));
        assert_eq!("ALLOW".parse::<UnknownPrice>(), Ok(UnknownPrice::Allow));
        assert!("maybe".parse::<UnknownPrice>().is_err());
    }

    #[test]
    fn a_finished_job_is_one_training_record_priced_per_instance_second() {
        let g = guard(100.0, 100.0, UnknownPrice::Refuse);
        let billed = Billed {
            job: "churn-xgboost-abc1234".into(),
            instance_type: "ml.g5.xlarge".into(),
            instance_count: 2,
            billable_seconds: 1800,
            ended: 1_764_950_400, // 2025-12-05T16:00:00Z
        };
        let u = training_spend("d-1", Account::User("ana-silva".into()), &billed, &g.prices);
        assert_eq!(u.kind, KIND_TRAINING_JOB);
        assert_eq!(u.key, "training#churn-xgboost-abc1234");
        assert_eq!(u.month, "2025-12");
        assert_eq!(u.seconds, 3600);
        assert_eq!(u.days["2025-12-05"], 3600);
        assert_eq!(u.usd(), Some(1.5));
        let unknown = Billed {
            instance_type: "ml.g6.xlarge".into(),
            ..billed
        };
        let u = training_spend("d-1", Account::Repository("r".into()), &unknown, &g.prices);
        assert_eq!((u.usd_per_hour, u.usd()), (None, None));
    }

    #[test]
    fn an_author_maps_to_profile_names_in_both_styles() {
        assert_eq!(
            profile_candidates("ana.silva@example.com"),
            ["ana-silva-example-com", "ana-silva"]
        );
        assert_eq!(profile_candidates("ana"), ["ana"]);
        assert!(profile_candidates("@@@").is_empty());
    }
}
