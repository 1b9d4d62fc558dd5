//! The sweep report: every scanned app lands in exactly one bucket (skipped by reason, warned, stopped, failed or not
//! reached), and the report becomes the invocation's answer, the `Idle Sweep Completed` event and the EMF metrics.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use studio_ops_shared::events::suite::IdleSweepCompleted;
use studio_ops_shared::metrics::{MetricSet, RUN_COMPLETED, Unit};

use crate::decision::AppListing;
use studio_ops_shared::prices::round_usd;

/// The function's name: the value of its metrics' `Function` dimension.
pub const FUNCTION_NAME: &str = "idle-shutdown";

/// Where one app ended up.
#[derive(Debug, Clone, PartialEq)]
pub enum AppOutcome {
    /// Left running; the key says why (e.g. `active`, `status-pending`, `already-gone`).
    Skipped(String),
    Warned,
    Stopped,
    Failed,
    /// The deadline came before the app was looked at (or before its action could start).
    NotReached,
}

/// One app's result.
#[derive(Debug, Clone, PartialEq)]
pub struct AppResult {
    pub app: AppListing,
    pub outcome: AppOutcome,
    /// The decision's action (`keep`, `warn`, `stop`, ...) or `screen` when the listing alone decided.
    pub action: String,
    /// The reason, with evidence and limit, or the error.
    pub reason: String,
    pub instance_type: Option<String>,
    pub hourly_cost_usd: Option<f64>,
    pub idle_minutes: Option<u64>,
    /// A warning tag was removed (or would be, in a dry run).
    pub warning_cleared: bool,
}

impl AppResult {
    pub fn new(
        app: AppListing,
        outcome: AppOutcome,
        action: &str,
        reason: impl Into<String>,
    ) -> Self {
        let instance_type = app.instance_type.clone();
        Self {
            app,
            outcome,
            action: action.to_string(),
            reason: reason.into(),
            instance_type,
            hourly_cost_usd: None,
            idle_minutes: None,
            warning_cleared: false,
        }
    }

    /// Apps worth listing one by one in the report (everything but the quietly kept).
    fn is_notable(&self) -> bool {
        self.warning_cleared
            || !matches!(&self.outcome, AppOutcome::Skipped(k) if k != "awaiting-grace" && k != "delete-in-use")
    }
}

/// A domain whose apps could not be listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainFailure {
    pub domain_id: String,
    pub error: String,
}

/// One app in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppLine {
    pub domain_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_profile_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_name: Option<String>,
    pub app_type: String,
    pub app_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// `warned`, `stopped`, `failed`, `not-reached`, `awaiting-grace`, `warning-cleared (...)`; `would-warn`,
    /// `would-stop`, `would-clear-warning (...)` in a dry run.
    pub outcome: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_minutes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly_cost_usd: Option<f64>,
}

/// One account's standing against its budget, and what the sweep did about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetLine {
    pub domain_id: String,
    /// `user/ana` or `space/team-lab`.
    pub account: String,
    pub budget_usd: f64,
    pub spent_usd: f64,
    pub projected_usd: f64,
    pub percent: f64,
    /// `approaching-notice`, `exceeded-notice`, `grace`, `stopped`, `extended`, `notice-sent-before`, `failed`;
    /// `would-...` in a dry run or in the budgets' dry-run mode.
    pub step: String,
    /// Until when (the grace period's or the extension's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Apps stopped (or that would be) for the budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    pub reason: String,
}

/// The answer of one invocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub dry_run: bool,
    pub now: String,
    pub domains: Vec<String>,
    pub failed_domains: Vec<DomainFailure>,
    pub scanned: u32,
    pub skipped: BTreeMap<String, u32>,
    pub warned: u32,
    pub stopped: u32,
    pub failed: u32,
    pub not_reached: u32,
    /// Apps past the listing's screen that this sweep decided on, from a reading or from the state alone.
    #[serde(default)]
    pub examined: u32,
    /// The longest run of consecutive sweeps, this one included, that some app went without being examined (0: every
    /// app was reached). 2 or more means the sweep cannot keep up: raise the call rate or the schedule interval.
    #[serde(default)]
    pub apps_not_examined_for_sweeps: u32,
    /// Apps not examined for two sweeps or more in a row.
    #[serde(default)]
    pub apps_behind: u32,
    /// State changes (warnings, readings, the record of unreached apps) that could not be written.
    #[serde(default)]
    pub state_writes_failed: u32,
    pub warnings_cleared: u32,
    /// What the stopped apps cost per hour (would cost, in a dry run); apps of unpriced types count zero.
    pub estimated_hourly_savings_usd: f64,
    /// Instance types of warned or stopped apps that the price table does not know.
    pub unpriced_instance_types: BTreeSet<String>,
    /// Running billable apps whose run time this sweep metered into the spend ledger (`ledger.rs`).
    #[serde(default)]
    pub metered: u32,
    /// Ledger records written (an app's current month; its earlier months once, when first seen in a month).
    #[serde(default)]
    pub ledger_writes: u32,
    /// Ledger records not written (the next sweep writes them: the records are absolute, nothing is lost).
    #[serde(default)]
    pub ledger_writes_failed: u32,
    /// What the metered apps cost this month so far, in the domains swept (priced hours only).
    #[serde(default)]
    pub month_to_date_usd: f64,
    /// What this sweep's ledger writes added to the month's dollars (summed per day: the spend per day).
    #[serde(default)]
    pub metered_usd: f64,
    /// The accounts at or past their budget's notice threshold, with what was done (budgets on).
    #[serde(default)]
    pub budgets: Vec<BudgetLine>,
    /// Budget lines left out of `budgets` to keep the answer small ([`MAX_BUDGET_LINES`]); counted in the figures.
    #[serde(default)]
    pub budgets_omitted: u32,
    /// Budget notices sent (approaching, exceeded).
    #[serde(default)]
    pub budget_notices: u32,
    /// Apps stopped because their owner's (or space's) budget was spent.
    #[serde(default)]
    pub stopped_for_budget: u32,
    pub apps: Vec<AppLine>,
    /// Notable apps left out of `apps` to keep the answer small (see [`MAX_LINES`]); they are counted above.
    #[serde(default)]
    pub apps_omitted: u32,
}

/// The most app lines a report carries: Lambda answers at most 6 MB, and a sweep cut short in a large organisation
/// has tens of thousands of apps not reached. At about 400 bytes a line, 1,000 lines stay far below.
pub const MAX_LINES: usize = 1_000;
/// Of those, at most this many for apps not reached: a sample; their number is in `notReached` and the next sweep
/// takes them first, so the room goes to what was done.
pub const MAX_NOT_REACHED_LINES: usize = 50;
/// The most budget lines a report carries (about 400 bytes each); the logs keep one line per account.
pub const MAX_BUDGET_LINES: usize = 500;

impl SweepReport {
    pub fn new(
        dry_run: bool,
        now: jiff::Timestamp,
        domains: Vec<String>,
        failed_domains: Vec<DomainFailure>,
    ) -> Self {
        Self {
            dry_run,
            now: now.to_string(),
            domains,
            failed_domains,
            ..Self::default()
        }
    }

    /// Counts one app; call once per scanned app.
    pub fn add(&mut self, r: &AppResult) {
        self.scanned += 1;
        if r.action != "screen" && !matches!(r.outcome, AppOutcome::NotReached | AppOutcome::Failed)
        {
            self.examined += 1;
        }
        match &r.outcome {
            AppOutcome::Skipped(key) => *self.skipped.entry(key.clone()).or_default() += 1,
            AppOutcome::Warned => self.warned += 1,
            AppOutcome::Stopped => {
                self.stopped += 1;
                if let Some(p) = r.hourly_cost_usd {
                    self.estimated_hourly_savings_usd =
                        round_usd(self.estimated_hourly_savings_usd + p);
                }
            }
            AppOutcome::Failed => self.failed += 1,
            AppOutcome::NotReached => self.not_reached += 1,
        }
        if r.warning_cleared {
            self.warnings_cleared += 1;
        }
        if matches!(r.outcome, AppOutcome::Warned | AppOutcome::Stopped)
            && r.hourly_cost_usd.is_none()
        {
            self.unpriced_instance_types.insert(
                r.instance_type
                    .clone()
                    .unwrap_or_else(|| "unknown".to_string()),
            );
        }
        if r.is_notable() {
            let not_reached = matches!(r.outcome, AppOutcome::NotReached);
            let room = self.apps.len() < MAX_LINES
                && (!not_reached || self.not_reached as usize <= MAX_NOT_REACHED_LINES);
            if room {
                self.apps.push(self.line(r));
            } else {
                self.apps_omitted += 1;
            }
        }
    }

    fn line(&self, r: &AppResult) -> AppLine {
        let dry = self.dry_run;
        let outcome = match &r.outcome {
            AppOutcome::Skipped(key) if r.warning_cleared && dry => {
                format!("would-clear-warning ({key})")
            }
            AppOutcome::Skipped(key) if r.warning_cleared => format!("warning-cleared ({key})"),
            AppOutcome::Skipped(key) => key.clone(),
            AppOutcome::Warned if dry => "would-warn".into(),
            AppOutcome::Warned => "warned".into(),
            AppOutcome::Stopped if dry => "would-stop".into(),
            AppOutcome::Stopped => "stopped".into(),
            AppOutcome::Failed => "failed".into(),
            AppOutcome::NotReached => "not-reached".into(),
        };
        AppLine {
            domain_id: r.app.domain_id.clone(),
            user_profile_name: r.app.owner.user_profile().map(str::to_string),
            space_name: r.app.owner.space().map(str::to_string),
            app_type: r.app.app_type.clone(),
            app_name: r.app.app_name.clone(),
            instance_type: r.instance_type.clone(),
            outcome,
            reason: r.reason.clone(),
            idle_minutes: r.idle_minutes,
            hourly_cost_usd: r.hourly_cost_usd,
        }
    }

    /// Puts the listed apps in a stable order (they are added as their results come, in any order).
    pub fn finish(&mut self) {
        self.apps.sort_by(|a, b| {
            (
                &a.domain_id,
                &a.user_profile_name,
                &a.space_name,
                &a.app_type,
                &a.app_name,
            )
                .cmp(&(
                    &b.domain_id,
                    &b.user_profile_name,
                    &b.space_name,
                    &b.app_type,
                    &b.app_name,
                ))
        });
    }

    /// Every scanned app is in exactly one bucket.
    pub fn is_balanced(&self) -> bool {
        self.scanned
            == self.skipped.values().sum::<u32>()
                + self.warned
                + self.stopped
                + self.failed
                + self.not_reached
    }

    pub fn summary_event(&self) -> IdleSweepCompleted {
        IdleSweepCompleted {
            dry_run: self.dry_run,
            scanned: self.scanned,
            skipped: self.skipped.clone(),
            warned: self.warned,
            stopped: self.stopped,
            failed: self.failed,
            not_reached: self.not_reached,
            estimated_hourly_savings_usd: self.estimated_hourly_savings_usd,
            unpriced_instance_types: self.unpriced_instance_types.iter().cloned().collect(),
            failed_domains: self
                .failed_domains
                .iter()
                .map(|d| d.domain_id.clone())
                .collect(),
            examined: self.examined,
            apps_not_examined_for_sweeps: self.apps_not_examined_for_sweeps,
            apps_behind: self.apps_behind,
        }
    }

    /// The EMF metrics of a live sweep (dry runs emit none, so dashboards show only real stops).
    pub fn metrics(&self) -> MetricSet {
        let mut m = MetricSet::of(&crate::METRICS);
        // Completed: at least one domain was swept (the answer is an error otherwise).
        let failed: BTreeSet<&str> = self
            .failed_domains
            .iter()
            .map(|f| f.domain_id.as_str())
            .collect();
        let completed = self.domains.is_empty() || failed.len() < self.domains.len();
        m.put(RUN_COMPLETED, f64::from(u8::from(completed)), Unit::Count);
        m.put("AppsScanned", f64::from(self.scanned), Unit::Count);
        m.put("AppsWarned", f64::from(self.warned), Unit::Count);
        m.put("AppsStopped", f64::from(self.stopped), Unit::Count);
        m.put("AppsFailed", f64::from(self.failed), Unit::Count);
        m.put("AppsNotReached", f64::from(self.not_reached), Unit::Count);
        m.put("AppsExamined", f64::from(self.examined), Unit::Count);
        // Alarm on > 0: some app has gone two sweeps without being looked at.
        m.put("AppsBehind", f64::from(self.apps_behind), Unit::Count);
        m.put(
            "StateWritesFailed",
            f64::from(self.state_writes_failed),
            Unit::Count,
        );
        m.put("AppsMetered", f64::from(self.metered), Unit::Count);
        m.put(
            "AccountsOverBudget",
            self.budgets.iter().filter(|b| b.percent >= 100.0).count() as f64,
            Unit::Count,
        );
        m.put("BudgetNotices", f64::from(self.budget_notices), Unit::Count);
        m.put(
            "AppsStoppedForBudget",
            f64::from(self.stopped_for_budget),
            Unit::Count,
        );
        m.put("MonthToDateUSD", self.month_to_date_usd, Unit::None);
        m.put("MeteredUSD", self.metered_usd, Unit::None);
        m.put("LedgerWrites", f64::from(self.ledger_writes), Unit::Count);
        m.put(
            "LedgerWritesFailed",
            f64::from(self.ledger_writes_failed),
            Unit::Count,
        );
        m.put(
            "EstimatedHourlySavingsUSD",
            self.estimated_hourly_savings_usd,
            Unit::None,
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::AppOwner;

    fn app(name: &str) -> AppListing {
        AppListing {
            domain_id: "d-1".into(),
            owner: AppOwner::UserProfile("ana".into()),
            app_type: "KernelGateway".into(),
            app_name: name.into(),
            status: "InService".into(),
            instance_type: Some("ml.g5.xlarge".into()),
            created: None,
        }
    }

    fn result(name: &str, outcome: AppOutcome, price: Option<f64>) -> AppResult {
        let mut r = AppResult::new(app(name), outcome, "x", "because");
        r.hourly_cost_usd = price;
        r
    }

    #[test]
    fn the_answer_stays_small_whatever_the_organisation() {
        let mut rep = SweepReport::new(
            false,
            jiff::Timestamp::UNIX_EPOCH,
            vec!["d-1".into()],
            vec![],
        );
        // A sweep cut short with 20,000 apps left over, then the apps it did act on.
        for i in 0..20_000 {
            rep.add(&result(&format!("late-{i}"), AppOutcome::NotReached, None));
        }
        for i in 0..3_000 {
            rep.add(&result(
                &format!("warned-{i}"),
                AppOutcome::Warned,
                Some(1.0),
            ));
        }
        assert_eq!((rep.not_reached, rep.warned), (20_000, 3_000));
        assert_eq!(rep.apps.len(), MAX_LINES);
        let late = rep
            .apps
            .iter()
            .filter(|a| a.outcome == "not-reached")
            .count();
        assert!(late <= MAX_NOT_REACHED_LINES + 1, "{late}");
        assert_eq!(rep.apps_omitted as usize, 23_000 - MAX_LINES);
        let answer = serde_json::to_vec(&rep).unwrap();
        assert!(answer.len() < 1024 * 1024, "{} bytes", answer.len());
    }

    #[test]
    fn buckets_add_up_and_savings_count_only_stops() {
        let mut rep = SweepReport::new(
            false,
            jiff::Timestamp::UNIX_EPOCH,
            vec!["d-1".into()],
            vec![],
        );
        rep.add(&result("a", AppOutcome::Stopped, Some(1.41)));
        rep.add(&result("b", AppOutcome::Stopped, Some(0.7364)));
        rep.add(&result("c", AppOutcome::Warned, Some(5.0)));
        rep.add(&result(
            "d",
            AppOutcome::Skipped("active".into()),
            Some(5.0),
        ));
        rep.add(&result("e", AppOutcome::Skipped("active".into()), None));
        rep.add(&result("f", AppOutcome::Failed, None));
        rep.add(&result("g", AppOutcome::NotReached, None));
        let mut cleared = result("h", AppOutcome::Skipped("active".into()), None);
        cleared.warning_cleared = true;
        rep.add(&cleared);
        let mut unpriced = result("i", AppOutcome::Stopped, None);
        unpriced.instance_type = Some("ml.g6e.xlarge".into());
        rep.add(&unpriced);
        assert!(rep.is_balanced());
        assert_eq!(rep.scanned, 9);
        assert_eq!(
            (rep.warned, rep.stopped, rep.failed, rep.not_reached),
            (1, 3, 1, 1)
        );
        assert_eq!(rep.skipped.get("active"), Some(&3));
        assert_eq!(rep.warnings_cleared, 1);
        assert_eq!(rep.estimated_hourly_savings_usd, 2.1464);
        assert_eq!(
            rep.unpriced_instance_types,
            BTreeSet::from(["ml.g6e.xlarge".to_string()])
        );
        // Quietly kept apps are counted, not listed.
        let names: Vec<&str> = rep.apps.iter().map(|a| a.app_name.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c", "f", "g", "h", "i"]);
        assert_eq!(rep.apps[5].outcome, "warning-cleared (active)");

        let summary = rep.summary_event();
        assert_eq!(summary.stopped, 3);
        assert_eq!(summary.estimated_hourly_savings_usd, 2.1464);
        assert_eq!(summary.unpriced_instance_types, vec!["ml.g6e.xlarge"]);

        let emf = rep.metrics().to_emf(0);
        assert_eq!(emf["AppsScanned"], 9.0);
        assert_eq!(emf["AppsWarned"], 1.0);
        assert_eq!(emf["AppsStopped"], 3.0);
        assert_eq!(emf["EstimatedHourlySavingsUSD"], 2.1464);
        assert_eq!(emf["Function"], "idle-shutdown");
        assert_eq!(emf[RUN_COMPLETED], 1.0);
        // A sweep whose every domain failed did not complete: the heartbeat alarm counts it as missing.
        let mut failed = SweepReport::new(
            false,
            jiff::Timestamp::UNIX_EPOCH,
            vec!["d-1".into()],
            vec![],
        );
        for error in ["listing", "state"] {
            failed.failed_domains.push(DomainFailure {
                domain_id: "d-1".into(),
                error: error.into(),
            });
        }
        assert_eq!(failed.metrics().to_emf(0)[RUN_COMPLETED], 0.0);
    }

    #[test]
    fn dry_run_lines_say_would() {
        let mut rep = SweepReport::new(true, jiff::Timestamp::UNIX_EPOCH, vec![], vec![]);
        rep.add(&result("a", AppOutcome::Stopped, Some(1.0)));
        rep.add(&result("b", AppOutcome::Warned, Some(1.0)));
        rep.add(&result("c", AppOutcome::Failed, None));
        let outcomes: Vec<&str> = rep.apps.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, vec!["would-stop", "would-warn", "failed"]);
        assert!(rep.summary_event().dry_run);
    }
}
