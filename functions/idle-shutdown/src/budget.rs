//! Monthly budgets, as rules: whose budget is what (a default per user, per-group and per-user overrides, per
//! shared space), where an account stands against it, and what a sweep does about it — a notice at the warning
//! threshold, then at the budget the same warn-then-stop protocol as idle apps: a notice, the grace period, a stop
//! of the account's running billable apps, and of any app it starts later in the month. Pure: no AWS, no clock.
//!
//! An account over its budget is let be when an admin raises the budget (the next sweep sees it under budget) or
//! grants a time-boxed extension (until then; after it, a new grace period starts before any stop). The notices
//! of a month are remembered in the spend ledger (`budget#<account>` records of the month's partition), so a new
//! month starts clean.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ledger::Account;

/// The tag provision-users gives a profile it manages: the Identity Center group whose settings it follows.
pub const GROUP_TAG: &str = "studio-ops:group-id";

/// What the budgets do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// No budget is evaluated (the default).
    #[default]
    Off,
    /// Evaluated and reported (the sweep's answer, its summary, the metrics); nobody is notified, nothing stops.
    /// For the first rollout.
    DryRun,
    /// Notices and stops.
    Enforce,
}

/// The budget settings (`STUDIO_OPS_BUDGETS`), group budgets from the provisioning group settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budgets {
    #[serde(default)]
    pub mode: Mode,
    /// The notice threshold, in percent of the budget.
    #[serde(default = "default_warn_percent")]
    pub warn_at_percent: u32,
    /// Every user's monthly budget in USD unless a group or user override says otherwise; absent: users without an
    /// override have no budget.
    #[serde(default)]
    pub user_monthly_usd: Option<f64>,
    /// User profile name → monthly USD (the admin's per-user override; wins over the group's).
    #[serde(default)]
    pub users: BTreeMap<String, f64>,
    /// Shared space name → monthly USD; spaces not listed have no budget.
    #[serde(default)]
    pub spaces: BTreeMap<String, f64>,
    /// `user/ana` or `space/team-lab` → until when (RFC 3339) its budget is not enforced.
    #[serde(default)]
    pub extensions: BTreeMap<String, Timestamp>,
    /// Identity Center group id → monthly USD (`monthlyBudgetUsd` of the provisioning group settings).
    #[serde(skip)]
    pub groups: BTreeMap<String, f64>,
}

fn default_warn_percent() -> u32 {
    80
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            warn_at_percent: default_warn_percent(),
            user_monthly_usd: None,
            users: BTreeMap::new(),
            spaces: BTreeMap::new(),
            extensions: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

/// A valid budget: finite, positive, below a sanity bound.
pub fn valid_budget(usd: f64) -> bool {
    usd.is_finite() && usd > 0.0 && usd < 10_000_000.0
}

impl Budgets {
    /// Names and keys compared as SageMaker compares them.
    pub fn normalized(mut self) -> Self {
        self.users = lower_keys(self.users);
        self.spaces = lower_keys(self.spaces);
        self.extensions = self
            .extensions
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect();
        self
    }

    /// What is wrong with the settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if !(1..=99).contains(&self.warn_at_percent) {
            return Some(format!(
                "warnAtPercent must be 1 to 99, found {}",
                self.warn_at_percent
            ));
        }
        let amounts = self
            .user_monthly_usd
            .iter()
            .map(|v| ("userMonthlyUsd".to_string(), *v))
            .chain(self.users.iter().map(|(k, v)| (format!("users.{k}"), *v)))
            .chain(self.spaces.iter().map(|(k, v)| (format!("spaces.{k}"), *v)))
            .chain(self.groups.iter().map(|(k, v)| (format!("group {k}"), *v)));
        for (place, usd) in amounts {
            if !valid_budget(usd) {
                return Some(format!("{place}: a budget is above 0 USD, found {usd}"));
            }
        }
        self.extensions
            .keys()
            .find(|k| Account::from_key(k).is_none())
            .map(|k| format!("extensions: {k:?} is not user/<profile> or space/<space>"))
    }

    pub fn enabled(&self) -> bool {
        self.mode != Mode::Off
    }

    /// The budget of `account` if it does not depend on the user's group: `Some(None)` = no budget.
    /// `None`: the user's group decides (read the profile's [`GROUP_TAG`]).
    pub fn known_budget(&self, account: &Account) -> Option<Option<f64>> {
        match account {
            Account::Space(s) => Some(self.spaces.get(&s.to_lowercase()).copied()),
            // Training billed to a repository (no profile to hold a budget): counted, never budgeted.
            Account::Repository(_) => Some(None),
            Account::User(u) => match self.users.get(&u.to_lowercase()) {
                Some(b) => Some(Some(*b)),
                None if self.groups.is_empty() => Some(self.user_monthly_usd),
                None => None,
            },
        }
    }

    /// A user's budget given their group.
    pub fn user_budget(&self, user: &str, group: Option<&str>) -> Option<f64> {
        self.users
            .get(&user.to_lowercase())
            .copied()
            .or_else(|| group.and_then(|g| self.groups.get(g).copied()))
            .or(self.user_monthly_usd)
    }

    /// The lowest budget a user without an override could have: below its warning threshold, the group need not
    /// be read (no call for the users far from any budget).
    pub fn lowest_user_budget(&self) -> Option<f64> {
        self.groups
            .values()
            .copied()
            .chain(self.user_monthly_usd)
            .min_by(f64::total_cmp)
    }

    /// Whether `spent` could cross the notice threshold of any budget the user might have.
    pub fn worth_reading_group(&self, spent: f64) -> bool {
        self.lowest_user_budget()
            .is_some_and(|b| spent >= b * f64::from(self.warn_at_percent) / 100.0)
    }

    pub fn extension(&self, account: &Account) -> Option<Timestamp> {
        self.extensions.get(&account.key()).copied()
    }
}

fn lower_keys(m: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    m.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect()
}

/// The notices of a month already sent to an account (from the ledger).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    pub approaching_at: Option<Timestamp>,
    pub exceeded_at: Option<Timestamp>,
}

impl Notices {
    /// The time `notice` was sent, to read or set.
    pub fn slot(&mut self, notice: Notice) -> &mut Option<Timestamp> {
        match notice {
            Notice::Approaching => &mut self.approaching_at,
            Notice::Exceeded => &mut self.exceeded_at,
        }
    }
}

/// The two notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Approaching,
    Exceeded,
}

impl Notice {
    /// The ledger attribute that remembers it.
    pub fn attribute(self) -> &'static str {
        match self {
            Notice::Approaching => "approachingAt",
            Notice::Exceeded => "exceededAt",
        }
    }

    pub fn level(self) -> &'static str {
        match self {
            Notice::Approaching => "approaching",
            Notice::Exceeded => "exceeded",
        }
    }
}

/// Where an account stands this month.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    pub budget_usd: f64,
    pub spent_usd: f64,
    /// `spent` plus the running apps' hourly cost until the month ends.
    pub projected_usd: f64,
    /// The running apps' hourly cost.
    pub hourly_cost_usd: f64,
}

impl Standing {
    pub fn new(
        budget_usd: f64,
        spent_usd: f64,
        hourly_cost_usd: f64,
        now: i64,
        month_end: i64,
    ) -> Self {
        let hours_left = (month_end - now).max(0) as f64 / 3600.0;
        Self {
            budget_usd,
            spent_usd,
            projected_usd: spent_usd + hourly_cost_usd * hours_left,
            hourly_cost_usd,
        }
    }

    pub fn percent(&self) -> f64 {
        100.0 * self.spent_usd / self.budget_usd
    }

    /// The reason every decision carries.
    pub fn reason(&self, month: &str) -> String {
        format!(
            "spent ${:.2} of the ${:.2} monthly budget ({:.0}%) in {month}; projected ${:.2} by the end of the month",
            self.spent_usd,
            self.budget_usd,
            self.percent().floor(),
            self.projected_usd
        )
    }
}

/// What a sweep does about an account's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Under the threshold, or its notice already sent and nothing more to do.
    Nothing,
    /// An admin's extension holds until then.
    Extended(Timestamp),
    /// Send a notice (the exceeded one says the apps stop at `stops_at`).
    Notify {
        notice: Notice,
        stops_at: Option<Timestamp>,
    },
    /// The budget is spent and the grace period runs until then.
    Grace(Timestamp),
    /// Stop the account's running billable apps.
    Stop,
}

/// The step for an account at `now`: the notice at the threshold, at the budget the notice then the stop after
/// `grace` (counted from the notice, or from the end of an extension granted after it).
pub fn decide(
    standing: &Standing,
    warn_at_percent: u32,
    notices: &Notices,
    extension: Option<Timestamp>,
    grace: SignedDuration,
    now: Timestamp,
) -> Step {
    let percent = standing.percent();
    if percent < f64::from(warn_at_percent) {
        return Step::Nothing;
    }
    if let Some(until) = extension.filter(|u| *u > now) {
        return Step::Extended(until);
    }
    if percent < 100.0 {
        return match notices.approaching_at {
            None => Step::Notify {
                notice: Notice::Approaching,
                stops_at: None,
            },
            Some(_) => Step::Nothing,
        };
    }
    let Some(warned) = notices.exceeded_at else {
        return Step::Notify {
            notice: Notice::Exceeded,
            stops_at: Some(now + grace),
        };
    };
    // An extension that ended after the notice restarts the grace period from its end.
    let from = match extension {
        Some(until) if until > warned => until,
        _ => warned,
    };
    let stops_at = from + grace;
    if now < stops_at {
        Step::Grace(stops_at)
    } else {
        Step::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn standing(spent: f64) -> Standing {
        Standing::new(100.0, spent, 1.0, 0, 36_000)
    }

    const GRACE: SignedDuration = SignedDuration::from_mins(30);

    #[test]
    fn notice_at_the_threshold_then_notice_grace_and_stop_at_the_budget() {
        let now = ts("2026-12-20T12:00:00Z");
        let none = Notices::default();
        assert_eq!(
            decide(&standing(79.9), 80, &none, None, GRACE, now),
            Step::Nothing
        );
        assert_eq!(
            decide(&standing(80.0), 80, &none, None, GRACE, now),
            Step::Notify {
                notice: Notice::Approaching,
                stops_at: None
            }
        );
        let approached = Notices {
            approaching_at: Some(now),
            exceeded_at: None,
        };
        assert_eq!(
            decide(&standing(95.0), 80, &approached, None, GRACE, now),
            Step::Nothing
        );
        assert_eq!(
            decide(&standing(100.0), 80, &approached, None, GRACE, now),
            Step::Notify {
                notice: Notice::Exceeded,
                stops_at: Some(now + GRACE)
            }
        );
        let exceeded = Notices {
            approaching_at: Some(now),
            exceeded_at: Some(now),
        };
        let later = now + SignedDuration::from_mins(10);
        assert_eq!(
            decide(&standing(101.0), 80, &exceeded, None, GRACE, later),
            Step::Grace(now + GRACE)
        );
        assert_eq!(
            decide(&standing(101.0), 80, &exceeded, None, GRACE, now + GRACE),
            Step::Stop
        );
        // A raised budget: under it again, nothing stops.
        let raised = Standing::new(200.0, 101.0, 1.0, 0, 0);
        assert_eq!(
            decide(&raised, 80, &exceeded, None, GRACE, now + GRACE),
            Step::Nothing
        );
    }

    #[test]
    fn an_extension_holds_until_its_end_then_a_new_grace_period_runs() {
        let now = ts("2026-12-20T12:00:00Z");
        let exceeded = Notices {
            approaching_at: Some(now),
            exceeded_at: Some(now),
        };
        let until = now + SignedDuration::from_hours(48);
        let during = now + SignedDuration::from_hours(1);
        assert_eq!(
            decide(&standing(150.0), 80, &exceeded, Some(until), GRACE, during),
            Step::Extended(until)
        );
        assert_eq!(
            decide(&standing(150.0), 80, &exceeded, Some(until), GRACE, until),
            Step::Grace(until + GRACE)
        );
        assert_eq!(
            decide(
                &standing(150.0),
                80,
                &exceeded,
                Some(until),
                GRACE,
                until + GRACE
            ),
            Step::Stop
        );
        // An extension that ended before the notice changes nothing.
        let old = now - SignedDuration::from_hours(1);
        assert_eq!(
            decide(
                &standing(150.0),
                80,
                &exceeded,
                Some(old),
                GRACE,
                now + GRACE
            ),
            Step::Stop
        );
    }

    #[test]
    fn budgets_follow_user_then_group_then_default_and_spaces_their_own() {
        let mut b: Budgets = serde_json::from_value(serde_json::json!({
            "mode": "enforce",
            "userMonthlyUsd": 300,
            "users": {"Ana": 500},
            "spaces": {"team-lab": 200},
            "extensions": {"user/Bob": "2026-12-24T00:00:00Z"}
        }))
        .unwrap();
        b = b.normalized();
        assert_eq!(b.problem(), None);
        let ana = Account::User("ana".into());
        assert_eq!(b.known_budget(&ana), Some(Some(500.0)));
        assert_eq!(
            b.known_budget(&Account::User("cy".into())),
            Some(Some(300.0))
        );
        assert_eq!(
            b.known_budget(&Account::Space("team-lab".into())),
            Some(Some(200.0))
        );
        assert_eq!(b.known_budget(&Account::Space("other".into())), Some(None));
        assert!(b.extension(&Account::User("bob".into())).is_some());
        b.groups.insert("gpu-group".into(), 1000.0);
        assert_eq!(
            b.known_budget(&Account::User("cy".into())),
            None,
            "the group decides"
        );
        assert_eq!(b.user_budget("cy", Some("gpu-group")), Some(1000.0));
        assert_eq!(b.user_budget("cy", None), Some(300.0));
        assert_eq!(b.user_budget("ANA", Some("gpu-group")), Some(500.0));
        assert!(!b.worth_reading_group(239.0));
        assert!(b.worth_reading_group(240.0));
        for bad in [
            serde_json::json!({"warnAtPercent": 100}),
            serde_json::json!({"users": {"ana": 0}}),
            serde_json::json!({"extensions": {"ana": "2026-12-24T00:00:00Z"}}),
        ] {
            let b: Budgets = serde_json::from_value(bad.clone()).unwrap();
            assert!(b.problem().is_some(), "{bad}");
        }
        assert!(serde_json::from_value::<Budgets>(serde_json::json!({"mode": "on"})).is_err());
    }

    #[test]
    fn the_reason_says_budget_spent_and_projection() {
        let s = Standing::new(300.0, 301.42, 1.41, 0, 3600 * 100);
        assert_eq!(s.projected_usd, 301.42 + 141.0);
        assert_eq!(
            s.reason("2026-12"),
            "spent $301.42 of the $300.00 monthly budget (100%) in 2026-12; projected $442.42 by the end of the month"
        );
    }
}
