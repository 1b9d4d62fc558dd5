//! The spend ledger, as rules: what an app's run time costs, per month and per day, and the month's totals per user,
//! per shared space and per domain. Pure: no AWS, no clock. `ports::SpendLedger` loads and records it
//! (`adapters::dynamodb`, `SpendTable`).
//!
//! - **Absolute, not incremental.** One usage record per app *incarnation* (same name, same `CreationTime`) and
//!   month holds the app's run time in that month from its creation up to the last time a sweep saw it `InService`
//!   (`until`) — a value, not an increment. Recording it again, twice, or out of order cannot count a minute twice:
//!   a record only replaces one with an earlier `until` ([`supersedes`], a conditional write in DynamoDB). A missed
//!   sweep is caught up by the next one, which sees the same incarnation later.
//! - **Error bound.** An app runs without a break from its creation to its deletion, so the record is exact up to
//!   `until`. What is not counted is the time between the last sweep that saw an app `InService` and its deletion:
//!   less than one schedule period when the sweeps run (15 minutes by default), the length of the outage when they
//!   did not. The ledger never counts a minute an app may not have run.
//! - **Prices** come from the price table and its overrides; an instance type without a price is counted in hours
//!   and reported as unpriced, never guessed. A record is priced at the price in force when it was last written.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::decision::{AppListing, AppOwner};
use crate::state::state_key;
use studio_ops_shared::prices::round_usd;

pub use studio_ops_shared::spend::{
    Account, KIND_STUDIO_APP, Usage, day_start, month_bounds, month_of, parse_month,
};
/// Months further back than this are not written when an app first shows up in a month (an app older than a year
/// is metered from then on).
pub const MAX_MONTHS_BACK: i32 = 12;

/// Whether `new` may replace `old`: only a later reading of the same record. The one rule that makes recording
/// idempotent and monotone (the DynamoDB adapter writes it as `attribute_not_exists(#until) OR #until < :until`).
pub fn supersedes(new: &Usage, old: Option<&Usage>) -> bool {
    old.is_none_or(|old| old.until < new.until)
}

/// The key of an incarnation's records: `app#user/ana/jupyterlab/default#1764000000` (the sweep state's key of the
/// app and its creation time).
pub fn usage_key(app: &AppListing, created: i64) -> String {
    format!("{}#{created}", state_key(app))
}

/// Whether a listed app is metered: `InService` on a billable instance (the free `system` instance of the classic
/// default apps costs nothing), with a known creation time.
pub fn meterable(app: &AppListing) -> bool {
    app.status.eq_ignore_ascii_case("InService")
        && app.created.is_some()
        && app
            .instance_type
            .as_deref()
            .is_some_and(|t| !t.is_empty() && !t.eq_ignore_ascii_case("system"))
}

/// Who an app's run time is billed to: its user profile; for a space app, the space's owner (a private space) or
/// the space itself (a shared space). `owners` maps lower-case space names to their owners.
pub fn account_of(app: &AppListing, owners: &BTreeMap<String, String>) -> Account {
    match &app.owner {
        AppOwner::UserProfile(u) => Account::User(u.clone()),
        AppOwner::Space(s) => match owners.get(&s.to_lowercase()) {
            Some(owner) => Account::User(owner.clone()),
            None => Account::Space(s.clone()),
        },
    }
}

/// Seconds of `[from, to)` per UTC day.
fn per_day(from: i64, to: i64) -> BTreeMap<String, i64> {
    let mut days = BTreeMap::new();
    let Ok(start) = Timestamp::from_second(from) else {
        return days;
    };
    let mut day = start.to_zoned_datetime(TimeZone::UTC).date();
    let mut at = from;
    while at < to {
        let next = day.tomorrow().map(day_start).unwrap_or(i64::MAX);
        let end = next.min(to);
        days.insert(day.to_string(), end - at);
        at = end;
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    days
}

/// The records of a meterable app seen `InService` at `now`: one per month from its creation's (at most
/// [`MAX_MONTHS_BACK`] back) to `now`'s, each up to the end of its month or `now`. An earlier month's record is
/// final: the app was alive at `now`, so it ran to that month's end.
pub fn meter(
    app: &AppListing,
    account: Account,
    usd_per_hour: Option<f64>,
    now: Timestamp,
) -> Vec<Usage> {
    let (Some(created), Some(instance_type)) = (app.created, app.instance_type.as_deref()) else {
        return Vec::new();
    };
    let created = created.as_second();
    let now_s = now.as_second();
    if now_s <= created {
        return Vec::new();
    }
    let now_month = now.to_zoned_datetime(TimeZone::UTC).date().first_of_month();
    let mut month = Timestamp::from_second(created)
        .map(|c| c.to_zoned_datetime(TimeZone::UTC).date().first_of_month())
        .unwrap_or(now_month);
    if let Ok(earliest) = now_month.checked_sub(MAX_MONTHS_BACK.months())
        && month < earliest
    {
        month = earliest;
    }
    let space = match &app.owner {
        AppOwner::Space(s) => Some(s.clone()),
        AppOwner::UserProfile(_) => None,
    };
    let key = usage_key(app, created);
    let mut out = Vec::new();
    while month <= now_month {
        let (start, end) = month_bounds(month);
        let from = created.max(start);
        let until = now_s.min(end);
        if from < until {
            out.push(Usage {
                domain_id: app.domain_id.clone(),
                month: format!("{:04}-{:02}", month.year(), month.month()),
                key: key.clone(),
                kind: KIND_STUDIO_APP.to_string(),
                account: account.clone(),
                space: space.clone(),
                app_type: app.app_type.clone(),
                app_name: app.app_name.clone(),
                instance_type: instance_type.to_string(),
                created,
                until,
                seconds: until - from,
                days: per_day(from, until),
                usd_per_hour,
            });
        }
        match month.checked_add(1.month()) {
            Ok(next) => month = next,
            Err(_) => break,
        }
    }
    out
}

/// Of an app's records at `now` ([`meter`]), those to write given what the ledger holds for `now`'s month: the
/// current month's when it moves forward; the earlier months' only when the current month has no record of the
/// incarnation yet (its first sighting this month closes the months before, once).
pub fn to_record(records: Vec<Usage>, held: Option<&Usage>, now: Timestamp) -> Vec<Usage> {
    let current = month_of(now);
    records
        .into_iter()
        .filter(|u| {
            if u.month == current {
                supersedes(u, held)
            } else {
                held.is_none()
            }
        })
        .collect()
}

/// Hours and dollars of one slice of spend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    /// Dollars of the priced hours.
    pub usd: f64,
    /// All hours, priced or not.
    pub hours: f64,
    /// Hours of instance types without a price (not in `usd`).
    pub unpriced_hours: f64,
}

impl Amount {
    fn add(&mut self, usage: &Usage, seconds: i64) {
        let hours = seconds as f64 / 3600.0;
        self.hours += hours;
        match usage.usd_per_hour {
            Some(p) => self.usd += p * hours,
            None => self.unpriced_hours += hours,
        }
    }

    fn rounded(mut self) -> Self {
        self.usd = round_usd(self.usd);
        self.hours = (self.hours * 100.0).round() / 100.0;
        self.unpriced_hours = (self.unpriced_hours * 100.0).round() / 100.0;
        self
    }
}

/// One account's (or a domain's) month: the total and its breakdowns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    #[serde(flatten)]
    pub total: Amount,
    /// `studio-app` (and, with training, `training-job`) → amount.
    pub by_kind: BTreeMap<String, Amount>,
    pub by_app_type: BTreeMap<String, Amount>,
    pub by_instance_type: BTreeMap<String, Amount>,
    /// `2026-12-05` → amount (a domain's; left out of the per-account lines of the report, to keep it small).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_day: BTreeMap<String, Amount>,
}

impl Spend {
    pub fn add(&mut self, usage: &Usage) {
        self.total.add(usage, usage.seconds);
        self.by_kind
            .entry(usage.kind.clone())
            .or_default()
            .add(usage, usage.seconds);
        self.by_app_type
            .entry(usage.app_type.clone())
            .or_default()
            .add(usage, usage.seconds);
        self.by_instance_type
            .entry(usage.instance_type.clone())
            .or_default()
            .add(usage, usage.seconds);
        for (day, seconds) in &usage.days {
            self.by_day
                .entry(day.clone())
                .or_default()
                .add(usage, *seconds);
        }
    }

    fn rounded(self) -> Self {
        let round = |m: BTreeMap<String, Amount>| {
            m.into_iter()
                .map(|(k, v)| (k, v.rounded()))
                .collect::<BTreeMap<_, _>>()
        };
        Self {
            total: self.total.rounded(),
            by_kind: round(self.by_kind),
            by_app_type: round(self.by_app_type),
            by_instance_type: round(self.by_instance_type),
            by_day: round(self.by_day),
        }
    }
}

/// One account's line of the spend report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSpend {
    pub domain_id: String,
    pub name: String,
    #[serde(flatten)]
    pub spend: Spend,
}

/// One domain's line of the spend report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpend {
    pub domain_id: String,
    #[serde(flatten)]
    pub spend: Spend,
}

/// The most user (and space) lines a spend report carries, most expensive first: at about 1 KB a line the answer
/// stays far below Lambda's 6 MB in any organisation; the rest are counted and in the totals.
pub const MAX_ACCOUNT_LINES: usize = 1_000;

/// The answer to `{"report": "spend", "month": "2026-12"}`: the month's totals per user, per shared space and per
/// domain, most expensive first, and the instance types that have no price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendReport {
    pub month: String,
    pub total: Amount,
    pub domains: Vec<DomainSpend>,
    pub users: Vec<AccountSpend>,
    pub spaces: Vec<AccountSpend>,
    /// Repositories billed for training jobs whose author maps to no user profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<AccountSpend>,
    /// Users and spaces beyond [`MAX_ACCOUNT_LINES`] each, left out of the lines (their spend is in the totals).
    #[serde(default)]
    pub accounts_omitted: usize,
    /// Instance type → hours counted without a price (add them to the price overrides).
    pub unpriced_instance_types: BTreeMap<String, f64>,
    /// Domains whose ledger could not be read: the totals leave them out.
    pub failed_domains: Vec<String>,
}

/// Sums of `usages` by account: `(domain, account)` → spend.
pub fn by_account(usages: &[Usage]) -> BTreeMap<(String, Account), Spend> {
    let mut out: BTreeMap<(String, Account), Spend> = BTreeMap::new();
    for u in usages {
        out.entry((u.domain_id.clone(), u.account.clone()))
            .or_default()
            .add(u);
    }
    out
}

/// The spend report of a month's records.
pub fn report(month: &str, usages: &[Usage], failed_domains: Vec<String>) -> SpendReport {
    let mut total = Amount::default();
    let mut domains: BTreeMap<String, Spend> = BTreeMap::new();
    let mut unpriced: BTreeMap<String, f64> = BTreeMap::new();
    for u in usages {
        total.add(u, u.seconds);
        domains.entry(u.domain_id.clone()).or_default().add(u);
        if u.usd_per_hour.is_none() {
            *unpriced.entry(u.instance_type.clone()).or_default() += u.hours();
        }
    }
    let mut users = Vec::new();
    let mut spaces = Vec::new();
    let mut repositories = Vec::new();
    for ((domain_id, account), spend) in by_account(usages) {
        let mut spend = spend.rounded();
        spend.by_day.clear();
        let line = AccountSpend {
            domain_id,
            name: account.name().to_string(),
            spend,
        };
        match account {
            Account::User(_) => users.push(line),
            Account::Space(_) => spaces.push(line),
            Account::Repository(_) => repositories.push(line),
        }
    }
    let costliest = |a: &AccountSpend, b: &AccountSpend| {
        b.spend
            .total
            .usd
            .total_cmp(&a.spend.total.usd)
            .then(b.spend.total.hours.total_cmp(&a.spend.total.hours))
    };
    users.sort_by(costliest);
    spaces.sort_by(costliest);
    repositories.sort_by(costliest);
    let omitted = users.len().saturating_sub(MAX_ACCOUNT_LINES)
        + spaces.len().saturating_sub(MAX_ACCOUNT_LINES)
        + repositories.len().saturating_sub(MAX_ACCOUNT_LINES);
    users.truncate(MAX_ACCOUNT_LINES);
    spaces.truncate(MAX_ACCOUNT_LINES);
    repositories.truncate(MAX_ACCOUNT_LINES);
    SpendReport {
        month: month.to_string(),
        total: total.rounded(),
        domains: domains
            .into_iter()
            .map(|(domain_id, spend)| DomainSpend {
                domain_id,
                spend: spend.rounded(),
            })
            .collect(),
        users,
        spaces,
        repositories,
        accounts_omitted: omitted,
        unpriced_instance_types: unpriced
            .into_iter()
            .map(|(t, h)| (t, (h * 100.0).round() / 100.0))
            .collect(),
        failed_domains,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn app(name: &str, created: &str) -> AppListing {
        AppListing {
            domain_id: "d-test".into(),
            owner: AppOwner::UserProfile("ana".into()),
            app_type: "JupyterLab".into(),
            app_name: name.into(),
            status: "InService".into(),
            instance_type: Some("ml.g5.xlarge".into()),
            created: Some(ts(created)),
        }
    }

    fn ana() -> Account {
        Account::User("ana".into())
    }

    #[test]
    fn a_record_splits_by_day_and_closes_the_month_before() {
        let a = app("default", "2026-11-30T22:00:00Z");
        let records = meter(&a, ana(), Some(1.5), ts("2026-12-01T03:30:00Z"));
        assert_eq!(records.len(), 2);
        let (nov, dec) = (&records[0], &records[1]);
        assert_eq!((nov.month.as_str(), nov.seconds), ("2026-11", 2 * 3600));
        assert_eq!(nov.until, ts("2026-12-01T00:00:00Z").as_second());
        assert_eq!(
            (dec.month.as_str(), dec.seconds, dec.usd()),
            ("2026-12", 3 * 3600 + 1800, Some(5.25))
        );
        assert_eq!(dec.days, BTreeMap::from([("2026-12-01".into(), 12_600)]));
        assert_eq!(dec.key, "app#user/ana/jupyterlab/default#1796076000");
        // Held this month: only December moves on; not held: November is closed too.
        assert_eq!(
            to_record(records.clone(), None, ts("2026-12-01T03:30:00Z")).len(),
            2
        );
        let later = meter(&a, ana(), Some(1.5), ts("2026-12-02T01:00:00Z"));
        let kept = to_record(later, Some(dec), ts("2026-12-02T01:00:00Z"));
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].days,
            BTreeMap::from([("2026-12-01".into(), 86_400), ("2026-12-02".into(), 3600)])
        );
        // The same reading again, or an older one, is not written.
        assert!(to_record(records, Some(&kept[0]), ts("2026-12-01T03:30:00Z")).is_empty());
    }

    #[test]
    fn only_billable_running_apps_are_metered_and_space_apps_go_to_their_owner() {
        let mut a = app("default", "2026-12-01T00:00:00Z");
        assert!(meterable(&a));
        a.status = "Deleted".into();
        assert!(!meterable(&a));
        a.status = "InService".into();
        a.instance_type = Some("system".into());
        assert!(!meterable(&a));
        let mut s = app("default", "2026-12-01T00:00:00Z");
        s.owner = AppOwner::Space("Ana-Private".into());
        let owners = BTreeMap::from([("ana-private".to_string(), "ana".to_string())]);
        assert_eq!(account_of(&s, &owners), ana());
        s.owner = AppOwner::Space("team-lab".into());
        assert_eq!(account_of(&s, &owners), Account::Space("team-lab".into()));
        assert_eq!(
            Account::from_key("space/team-lab"),
            Some(Account::Space("team-lab".into()))
        );
        assert_eq!(Account::from_key("group/x"), None);
    }

    #[test]
    fn the_report_sums_per_user_space_and_domain_and_lists_unpriced_types() {
        let now = ts("2026-12-05T12:00:00Z");
        let mut usages = meter(&app("a", "2026-12-05T10:00:00Z"), ana(), Some(2.0), now);
        let mut gpu = app("b", "2026-12-05T11:00:00Z");
        gpu.instance_type = Some("ml.p5.48xlarge".into());
        usages.extend(meter(&gpu, ana(), None, now));
        let mut shared = app("c", "2026-12-05T11:30:00Z");
        shared.owner = AppOwner::Space("team-lab".into());
        usages.extend(meter(
            &shared,
            Account::Space("team-lab".into()),
            Some(1.0),
            now,
        ));
        let r = report("2026-12", &usages, vec![]);
        assert_eq!(
            r.total,
            Amount {
                usd: 4.5,
                hours: 3.5,
                unpriced_hours: 1.0
            }
        );
        assert_eq!(r.users.len(), 1);
        assert_eq!(r.users[0].spend.total.usd, 4.0);
        assert_eq!(
            r.users[0].spend.by_instance_type["ml.p5.48xlarge"].unpriced_hours,
            1.0
        );
        assert_eq!(r.spaces[0].name, "team-lab");
        assert_eq!(r.domains[0].spend.by_day["2026-12-05"].hours, 3.5);
        assert_eq!(
            r.unpriced_instance_types,
            BTreeMap::from([("ml.p5.48xlarge".into(), 1.0)])
        );
        assert!(r.users[0].spend.by_day.is_empty(), "days per domain only");
    }

    #[test]
    fn the_report_stays_small_in_a_large_organisation() {
        let now = ts("2026-12-05T12:00:00Z");
        let usages: Vec<Usage> = (0..MAX_ACCOUNT_LINES + 30)
            .flat_map(|i| {
                let mut a = app("default", "2026-12-01T00:00:00Z");
                a.owner = AppOwner::UserProfile(format!("user-{i:05}"));
                meter(
                    &a,
                    Account::User(format!("user-{i:05}")),
                    Some(1.0 + i as f64),
                    now,
                )
            })
            .collect();
        let r = report("2026-12", &usages, vec![]);
        assert_eq!((r.users.len(), r.accounts_omitted), (MAX_ACCOUNT_LINES, 30));
        assert_eq!(
            r.users[0].name,
            format!("user-{:05}", MAX_ACCOUNT_LINES + 29),
            "most expensive first"
        );
        let answer = serde_json::to_vec(&r).unwrap();
        assert!(answer.len() < 2_000_000, "{} bytes", answer.len());
        let all_hours: f64 = usages.iter().map(Usage::hours).sum();
        assert!(
            (r.total.hours - all_hours).abs() < 0.01,
            "the omitted are in the totals"
        );
    }

    #[test]
    fn months_are_read_strictly() {
        assert!(parse_month("2026-12").is_some());
        for bad in ["2026-13", "26-12", "2026-1", "december", ""] {
            assert!(parse_month(bad).is_none(), "{bad}");
        }
        let (start, end) = month_bounds(parse_month("2026-12").unwrap());
        assert_eq!(end - start, 31 * 86_400);
    }

    /// The ledger as DynamoDB keeps it: a record replaces another only under [`supersedes`].
    fn apply(store: &mut BTreeMap<(String, String), Usage>, usage: Usage) {
        let key = (usage.month.clone(), usage.key.clone());
        if supersedes(&usage, store.get(&key)) {
            store.insert(key, usage);
        }
    }

    fn seconds(store: &BTreeMap<(String, String), Usage>) -> i64 {
        store.values().map(|u| u.seconds).sum()
    }

    fn dollars(store: &BTreeMap<(String, String), Usage>) -> f64 {
        store.values().filter_map(Usage::usd).sum()
    }

    /// App `i`'s hourly price: different per app, one of them unpriced.
    fn price_of(i: usize) -> Option<f64> {
        (i != 3).then_some(0.05 + 1.7 * i as f64)
    }

    proptest! {
        /// Apps live `[created, deleted)` at different prices (one unpriced); sweeps run at random times, some twice,
        /// delivered in any order, and each writes what it saw through the conditional rule. The ledger's seconds and
        /// dollars never decrease, never exceed the true run time × price, and fall short by at most what ran
        /// between each app's last sighting and its deletion.
        #[test]
        fn any_interleaving_counts_each_minute_once(
            lives in proptest::collection::vec((0i64..40 * 86_400, 60i64..10 * 86_400), 1..8),
            sweeps in proptest::collection::vec(0i64..50 * 86_400, 1..40),
            duplicates in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
            order in any::<proptest::sample::Index>(),
        ) {
            let base = ts("2026-10-20T00:00:00Z").as_second();
            let mut deliveries: Vec<i64> = sweeps.clone();
            for d in &duplicates {
                deliveries.push(sweeps[d.index(sweeps.len())]);
            }
            // Any order: rotate and reverse by the drawn index.
            let k = order.index(deliveries.len());
            deliveries.rotate_left(k);
            if k % 2 == 1 {
                deliveries.reverse();
            }
            let mut store = BTreeMap::new();
            let mut last = 0;
            let mut last_usd = 0.0;
            for at in &deliveries {
                let now = Timestamp::from_second(base + at).unwrap();
                for (i, (created, life)) in lives.iter().enumerate() {
                    let (created, deleted) = (base + created, base + created + life);
                    let seen = now.as_second();
                    if seen <= created || seen >= deleted {
                        continue; // not listed InService
                    }
                    let a = app(&format!("app-{i}"), &Timestamp::from_second(created).unwrap().to_string());
                    let records = meter(&a, ana(), price_of(i), now);
                    let held = store.get(&(month_of(now), usage_key(&a, created))).cloned();
                    for r in to_record(records, held.as_ref(), now) {
                        apply(&mut store, r);
                    }
                    let total = seconds(&store);
                    prop_assert!(total >= last, "the ledger went down: {last} → {total}");
                    prop_assert!(dollars(&store) >= last_usd - 1e-9, "the dollars went down");
                    last = total;
                    last_usd = dollars(&store);
                }
            }
            for u in store.values() {
                prop_assert_eq!(u.days.values().sum::<i64>(), u.seconds);
            }
            let latest = base + sweeps.iter().max().copied().unwrap_or(0);
            let (mut seen_time, mut run_time) = (0, 0);
            let (mut seen_usd, mut bound_usd) = (0.0, 0.0);
            for (i, (created, life)) in lives.iter().enumerate() {
                let (created, deleted) = (base + created, base + created + life);
                let last_seen = sweeps.iter().map(|s| base + s).filter(|s| *s > created && *s < deleted).max();
                if let Some(last_seen) = last_seen {
                    seen_time += last_seen - created;
                    run_time += deleted.min(latest) - created;
                    let price = price_of(i).unwrap_or(0.0);
                    seen_usd += price * (last_seen - created) as f64 / 3600.0;
                    // The documented bound: what ran between the last sighting and the deletion.
                    bound_usd += price * (deleted.min(latest) - last_seen) as f64 / 3600.0;
                }
            }
            let usd = dollars(&store);
            prop_assert!((usd - seen_usd).abs() < 1e-6 * seen_usd.max(1.0), "{usd} vs {seen_usd}");
            let true_usd = seen_usd + bound_usd;
            prop_assert!(usd <= true_usd + 1e-6 && true_usd - usd <= bound_usd + 1e-6);
            // Exactly the run time up to each app's last sighting, whatever the order: nothing twice, nothing no
            // sweep saw. What it misses of the true run time is the documented bound: last sighting → deletion.
            prop_assert_eq!(seconds(&store), seen_time);
            prop_assert!(seen_time <= run_time);
        }
    }
}
