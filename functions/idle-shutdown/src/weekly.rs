//! The weekly digests' rules: which week, what each account spent in it (from the ledger's per-day seconds), what
//! the sweep stopped and what that saved, and the team's view (top spenders, top idle offenders, unpriced types,
//! sweeps that could not keep up). Pure: `digest.rs` reads the ledger and publishes.
//!
//! Savings are an estimate with a stated rule: a stopped app saves its hourly price for the time it stayed stopped —
//! until its owner started an app of the same type in the same place again, at most 24 hours, and never past the
//! end of the week. An idle app left running would have billed at least that long (until its owner came back), and
//! the cap keeps one forgotten app from claiming a week of savings. Stops for a budget are listed, not counted as
//! savings.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use studio_ops_shared::events::suite::{AccountSpend, IdleOffender, SpendLine, StoppedApp};

use crate::ledger::{Account, Usage, month_of};
use studio_ops_shared::prices::round_usd;

/// The longest a stop is counted as saving (see the module docs).
pub const MAX_SAVED_SECONDS: i64 = 24 * 3600;
/// Lines per breakdown and per top list in a digest.
pub const TOP: usize = 10;
/// Stopped apps listed in a user's digest (the rest are counted).
pub const MAX_STOPPED_LISTED: usize = 20;

/// An app the sweep stopped, as the ledger keeps it (partition `<domain>#<month>#stops`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub domain_id: String,
    pub account: Account,
    pub space: Option<String>,
    pub app_type: String,
    pub app_name: String,
    pub instance_type: String,
    pub usd_per_hour: Option<f64>,
    /// Seconds since the epoch.
    pub at: i64,
    /// `idle` or `budget`.
    pub cause: String,
    pub idle_minutes: u64,
}

impl Stop {
    /// The record's key within its partition: the time first, so a week is a range; then whose app it was (two
    /// users' `JupyterLab default` stopped in the same second are two stops).
    pub fn key(&self) -> String {
        format!(
            "{:010}#{}#{}#{}#{}",
            self.at,
            self.account.key(),
            self.space.as_deref().unwrap_or("-"),
            self.app_type,
            self.app_name
        )
    }

    pub fn month(&self) -> String {
        month_at(self.at)
    }
}

/// The month (`2026-12`, UTC) of a time in seconds.
fn month_at(seconds: i64) -> String {
    month_of(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A sweep that could not keep up (partition `suite#<month>#lags`): apps left for the next sweep, apps two sweeps
/// behind, domains that could not be listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lag {
    pub at: i64,
    pub not_reached: u32,
    pub behind: u32,
    pub failed_domains: u32,
}

impl Lag {
    pub fn month(&self) -> String {
        month_at(self.at)
    }
}

/// One ISO week (Monday 00:00 UTC to the next Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    pub monday: Date,
}

impl Week {
    /// `2026-W49`.
    pub fn parse(text: &str) -> Option<Self> {
        let (year, week) = text.split_once("-W")?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(week, 2) {
            return None;
        }
        let date =
            ISOWeekDate::new(year.parse().ok()?, week.parse().ok()?, Weekday::Monday).ok()?;
        Some(Self {
            monday: date.date(),
        })
    }

    /// The last full week before `now`.
    pub fn last_before(now: Timestamp) -> Self {
        let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        let back = i64::from(today.weekday().to_monday_zero_offset()) + 7;
        Self {
            monday: today.saturating_sub(back.days()),
        }
    }

    pub fn id(&self) -> String {
        let w = self.monday.iso_week_date();
        format!("{:04}-W{:02}", w.year(), w.week())
    }

    /// Seconds: [start, end).
    pub fn bounds(&self) -> (i64, i64) {
        let start = self
            .monday
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .unwrap_or(0);
        (start, start + 7 * 86_400)
    }

    /// The seven days, `2026-11-30` ….
    pub fn days(&self) -> Vec<String> {
        (0..7)
            .map(|i| self.monday.saturating_add(i.days()).to_string())
            .collect()
    }

    /// `2026-11-30`, `2026-12-06`.
    pub fn first_and_last_day(&self) -> (String, String) {
        let days = self.days();
        (days[0].clone(), days[6].clone())
    }

    /// The months the week touches (one or two), for the ledger's partitions.
    pub fn months(&self) -> Vec<String> {
        let (start, end) = self.bounds();
        let (first, last) = (month_at(start), month_at(end - 1));
        if first == last {
            vec![first]
        } else {
            vec![first, last]
        }
    }
}

/// An account's week.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountWeek {
    pub seconds: i64,
    pub usd: f64,
    pub unpriced_seconds: i64,
    pub by_kind: BTreeMap<String, (i64, f64)>,
    pub by_app_type: BTreeMap<String, (i64, f64)>,
    pub by_instance_type: BTreeMap<String, (i64, f64)>,
    pub stopped: Vec<StoppedApp>,
    pub idle_stops: u32,
    pub saved_usd: f64,
}

fn add(map: &mut BTreeMap<String, (i64, f64)>, key: &str, seconds: i64, usd: f64) {
    let e = map.entry(key.to_string()).or_default();
    e.0 += seconds;
    e.1 += usd;
}

/// A record's run seconds on the given days (the week's).
fn seconds_on(u: &Usage, days: &BTreeSet<String>) -> i64 {
    u.days
        .iter()
        .filter(|(d, _)| days.contains(*d))
        .map(|(_, s)| *s)
        .sum()
}

/// The lines of a breakdown, most expensive first (then most hours), at most [`TOP`].
pub fn lines(map: &BTreeMap<String, (i64, f64)>) -> Vec<SpendLine> {
    let mut v: Vec<SpendLine> = map
        .iter()
        .map(|(name, (s, usd))| SpendLine {
            name: name.clone(),
            hours: round_hours(*s),
            usd: round_usd(*usd),
        })
        .collect();
    v.sort_by(|a, b| {
        b.usd
            .total_cmp(&a.usd)
            .then(b.hours.total_cmp(&a.hours))
            .then(a.name.cmp(&b.name))
    });
    v.truncate(TOP);
    v
}

pub fn round_hours(seconds: i64) -> f64 {
    (seconds as f64 / 36.0).round() / 100.0
}

/// What a stop saved: its price for the time it stayed stopped (see the module docs); `None` if unpriced.
pub fn saved(stop: &Stop, usages: &[Usage], week_end: i64) -> Option<f64> {
    let price = stop.usd_per_hour?;
    let restarted = usages
        .iter()
        .filter(|u| {
            u.domain_id == stop.domain_id
                && u.account.key() == stop.account.key()
                && u.space == stop.space
                && u.app_type == stop.app_type
                && u.created > stop.at
        })
        .map(|u| u.created)
        .min();
    let until = restarted
        .unwrap_or(i64::MAX)
        .min(stop.at + MAX_SAVED_SECONDS)
        .min(week_end);
    Some(price * (until - stop.at).max(0) as f64 / 3600.0)
}

/// Each account's week, by (domain, account): spend from the records' per-day seconds on the week's days, and the
/// week's stops. `usages` are the records of every month the week touches (read with their days).
pub fn accounts(
    week: &Week,
    usages: &[Usage],
    stops: &[Stop],
) -> BTreeMap<(String, Account), AccountWeek> {
    let days: BTreeSet<String> = week.days().into_iter().collect();
    let (start, end) = week.bounds();
    let mut out: BTreeMap<(String, Account), AccountWeek> = BTreeMap::new();
    for u in usages {
        let seconds = seconds_on(u, &days);
        if seconds <= 0 {
            continue;
        }
        let usd = u.usd_per_hour.map_or(0.0, |p| p * seconds as f64 / 3600.0);
        let a = out
            .entry((u.domain_id.clone(), u.account.clone()))
            .or_default();
        a.seconds += seconds;
        a.usd += usd;
        if u.usd_per_hour.is_none() {
            a.unpriced_seconds += seconds;
        }
        add(&mut a.by_kind, &u.kind, seconds, usd);
        add(&mut a.by_app_type, &u.app_type, seconds, usd);
        add(&mut a.by_instance_type, &u.instance_type, seconds, usd);
    }
    let mut in_week: Vec<&Stop> = stops
        .iter()
        .filter(|s| s.at >= start && s.at < end)
        .collect();
    in_week.sort_by_key(|s| s.at);
    for s in in_week {
        // Savings are the idle sweep's: a stop for the budget keeps the month within it, it saves nothing the
        // user meant to leave idle.
        let saved = if s.cause == "idle" {
            saved(s, usages, end)
        } else {
            None
        };
        let a = out
            .entry((s.domain_id.clone(), s.account.clone()))
            .or_default();
        if s.cause == "idle" {
            a.idle_stops += 1;
        }
        a.saved_usd += saved.unwrap_or(0.0);
        a.stopped.push(StoppedApp {
            app: match &s.space {
                Some(space) => format!("{} {} (space {space})", s.app_type, s.app_name),
                None => format!("{} {}", s.app_type, s.app_name),
            },
            instance_type: s.instance_type.clone(),
            cause: s.cause.clone(),
            at: Timestamp::from_second(s.at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            idle_minutes: s.idle_minutes,
            saved_usd: saved.map(round_usd),
        });
    }
    out
}

/// The team's top lists from every account's week.
pub fn top_spenders(weeks: &BTreeMap<(String, Account), AccountWeek>) -> Vec<AccountSpend> {
    let mut v: Vec<AccountSpend> = weeks
        .iter()
        .filter(|(_, w)| w.seconds > 0)
        .map(|((domain, account), w)| AccountSpend {
            domain_id: domain.clone(),
            account: account.key(),
            hours: round_hours(w.seconds),
            usd: round_usd(w.usd),
        })
        .collect();
    v.sort_by(|a, b| {
        b.usd
            .total_cmp(&a.usd)
            .then(b.hours.total_cmp(&a.hours))
            .then(a.account.cmp(&b.account))
    });
    v.truncate(TOP);
    v
}

/// The accounts whose apps the sweep stopped for idling most often.
pub fn idle_offenders(weeks: &BTreeMap<(String, Account), AccountWeek>) -> Vec<IdleOffender> {
    let mut v: Vec<IdleOffender> = weeks
        .iter()
        .filter(|(_, w)| w.idle_stops > 0)
        .map(|((domain, account), w)| IdleOffender {
            domain_id: domain.clone(),
            account: account.key(),
            idle_stops: w.idle_stops,
            saved_usd: round_usd(w.saved_usd),
        })
        .collect();
    v.sort_by(|a, b| {
        b.idle_stops
            .cmp(&a.idle_stops)
            .then(b.saved_usd.total_cmp(&a.saved_usd))
            .then(a.account.cmp(&b.account))
    });
    v.truncate(TOP);
    v
}

/// Hours of unpriced instance types in the week, by type.
pub fn unpriced(week: &Week, usages: &[Usage]) -> Vec<SpendLine> {
    let days: BTreeSet<String> = week.days().into_iter().collect();
    let mut map = BTreeMap::new();
    for u in usages.iter().filter(|u| u.usd_per_hour.is_none()) {
        let seconds = seconds_on(u, &days);
        if seconds > 0 {
            add(&mut map, &u.instance_type, seconds, 0.0);
        }
    }
    lines(&map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(account: &str, created: i64, days: &[(&str, i64)], price: Option<f64>) -> Usage {
        Usage {
            domain_id: "d-1".into(),
            month: "2026-12".into(),
            key: format!("k{created}"),
            kind: "studio-app".into(),
            account: Account::User(account.into()),
            space: None,
            app_type: "JupyterLab".into(),
            app_name: "default".into(),
            instance_type: "ml.g5.xlarge".into(),
            created,
            until: created + 1,
            seconds: days.iter().map(|(_, s)| s).sum(),
            days: days.iter().map(|(d, s)| (d.to_string(), *s)).collect(),
            usd_per_hour: price,
        }
    }

    fn stop(account: &str, at: i64) -> Stop {
        Stop {
            domain_id: "d-1".into(),
            account: Account::User(account.into()),
            space: None,
            app_type: "JupyterLab".into(),
            app_name: "default".into(),
            instance_type: "ml.g5.xlarge".into(),
            usd_per_hour: Some(1.5),
            at,
            cause: "idle".into(),
            idle_minutes: 75,
        }
    }

    #[test]
    fn weeks_are_iso_weeks_in_utc() {
        let w = Week::parse("2026-W49").unwrap();
        assert_eq!(w.monday.to_string(), "2026-11-30");
        assert_eq!(w.id(), "2026-W49");
        assert_eq!(
            w.months(),
            vec!["2026-11".to_string(), "2026-12".to_string()]
        );
        let (start, end) = w.bounds();
        assert_eq!(end - start, 7 * 86_400);
        // On Saturday 2026-12-05 the last full week is W48 (23-29 Nov); on Monday 2026-12-07, W49.
        let sat: Timestamp = "2026-12-05T15:00:00Z".parse().unwrap();
        assert_eq!(Week::last_before(sat).id(), "2026-W48");
        let mon: Timestamp = "2026-12-07T07:00:00Z".parse().unwrap();
        assert_eq!(Week::last_before(mon).id(), "2026-W49");
        for bad in ["2026-49", "2026-W54", "W49", "2026-W4", "x-W01"] {
            assert!(Week::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_week_counts_only_its_days_and_its_stops() {
        let w = Week::parse("2026-W49").unwrap();
        let (start, end) = w.bounds();
        let usages = vec![
            // 1 h on Sunday 29 Nov (last week), 2 h on Tuesday 1 Dec.
            usage(
                "ana",
                start - 86_400,
                &[("2026-11-29", 3600), ("2026-12-01", 7200)],
                Some(1.5),
            ),
            usage("bob", start, &[("2026-12-02", 1800)], None),
        ];
        let stops = vec![
            stop("ana", start + 86_400),
            stop("ana", start - 10),
            stop("ana", end),
        ];
        let weeks = accounts(&w, &usages, &stops);
        let ana = &weeks[&("d-1".to_string(), Account::User("ana".into()))];
        assert_eq!((ana.seconds, round_usd(ana.usd)), (7200, 3.0));
        assert_eq!(ana.stopped.len(), 1, "only the stop inside the week");
        assert_eq!(ana.idle_stops, 1);
        let bob = &weeks[&("d-1".to_string(), Account::User("bob".into()))];
        assert_eq!((bob.unpriced_seconds, bob.usd), (1800, 0.0));
        assert_eq!(unpriced(&w, &usages)[0].hours, 0.5);
        assert_eq!(top_spenders(&weeks)[0].account, "user/ana");
        assert_eq!(idle_offenders(&weeks).len(), 1);
    }

    #[test]
    fn two_users_apps_of_one_name_stopped_in_one_second_are_two_stops() {
        let (ana, bob) = (stop("ana", 1_000_000), stop("bob", 1_000_000));
        assert_ne!(ana.key(), bob.key());
        // Found by the demo: Maria's idle JupyterLab and Nina's budget-stopped one, in the same second.
    }

    #[test]
    fn a_stop_saves_until_its_owner_came_back_at_most_a_day() {
        let s = stop("ana", 1_000_000);
        // Came back 2 h later: 2 h saved.
        let back = [usage("ana", 1_000_000 + 7200, &[], Some(1.5))];
        assert_eq!(saved(&s, &back, i64::MAX), Some(3.0));
        // Someone else's app or another type does not end it; never came back: 24 h.
        let mut other = usage("bob", 1_000_000 + 60, &[], Some(1.5));
        other.app_type = "CodeEditor".into();
        assert_eq!(saved(&s, &[other], i64::MAX), Some(36.0));
        // Not past the week's end; unpriced saves nothing known.
        assert_eq!(saved(&s, &[], 1_000_000 + 3600), Some(1.5));
        let mut unpriced = s.clone();
        unpriced.usd_per_hour = None;
        assert_eq!(saved(&unpriced, &[], i64::MAX), None);
    }
}
