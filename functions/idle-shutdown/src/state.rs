//! What a sweep remembers between invocations, as rules: per app, its warning and the idle evidence of its last
//! reading; per domain, the apps the last sweep could not reach before its deadline. Pure: no AWS, no clock.
//! `ports::SweepState` loads and saves it (`adapters::dynamodb`: one item per app, one record per domain).
//!
//! - **Quiet apps need no call.** An app's idle evidence only moves forward (user activity, keep-alives), so an app
//!   whose last reading showed activity at `t` cannot be idle before `t` + its idle limit (or its uptime cap, if
//!   sooner): until then it is kept on the state alone, without DescribeApp or ListTags.
//! - **No app starves.** The apps the last sweep did not reach are examined first, so as long as one sweep can
//!   examine at least half of a domain's apps, every app is examined at least once every two sweeps.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::decision::{AppListing, AppOwner};
use crate::policy::Policy;

/// The domain record's sort key (app items' sort keys all start with `app#`).
pub const DOMAIN_RECORD: &str = "sweep";
/// At most this many unreached apps are remembered per domain (about 20 bytes each in a 400 KB item).
pub const MAX_UNREACHED: usize = 15_000;
/// The most changes one save carries: DynamoDB's limit of items per batch write, so that a save is one request.
pub const SAVE_BATCH: usize = 25;

/// One app's memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppState {
    /// The app's `CreationTime` (seconds): an item of an older app of the same name does not apply.
    pub created: i64,
    /// The idle evidence of its last reading (seconds): user activity, or the creation time.
    pub evidence_at: Option<i64>,
    /// When its owner was warned of this idle spell.
    pub warning: Option<Warning>,
}

/// A warning that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub at: Timestamp,
    /// The idle spell it was about (`idle-since-…`, `uptime-cap`), when known.
    pub episode: Option<String>,
}

/// What a sweep knows about a domain before it starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainState {
    /// By [`state_key`].
    pub apps: HashMap<String, AppState>,
    /// [`key_hash`] of the apps the previous sweeps did not reach → for how many sweeps in a row.
    pub unreached: BTreeMap<u64, u32>,
}

impl DomainState {
    /// The app's memory, if it is about this incarnation of the app (same creation time as the listing, when the
    /// listing says).
    pub fn app(&self, app: &AppListing) -> Option<&AppState> {
        let state = self.apps.get(&state_key(app))?;
        match app.created {
            Some(c) if c.as_second() != state.created => None,
            _ => Some(state),
        }
    }
}

/// A change to save.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    Put {
        key: String,
        state: AppState,
    },
    Delete {
        key: String,
    },
    /// The domain record: the apps not reached (empty: delete the record).
    Unreached(BTreeMap<u64, u32>),
}

/// The item key of an app within its domain: `app#` and its owner, type and name, lower-cased as SageMaker
/// compares them (`app#user/ana/kernelgateway/datascience-1-0`).
pub fn state_key(app: &AppListing) -> String {
    let owner = match &app.owner {
        AppOwner::UserProfile(u) => format!("user/{u}"),
        AppOwner::Space(s) => format!("space/{s}"),
    };
    format!("app#{owner}/{}/{}", app.app_type, app.app_name).to_lowercase()
}

/// A short, stable fingerprint of a state key (the first 8 bytes of its SHA-256), for the domain record.
pub fn key_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The domain record's `unreached` attribute: `<16 hex digits>:<sweeps>` entries, space-separated.
pub fn encode_unreached(unreached: &BTreeMap<u64, u32>) -> String {
    unreached
        .iter()
        .map(|(h, n)| format!("{h:016x}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads [`encode_unreached`]'s form; entries that do not read are ignored (the apps they named are examined in
/// the usual order, nothing worse).
pub fn decode_unreached(text: &str) -> BTreeMap<u64, u32> {
    text.split_whitespace()
        .filter_map(|entry| {
            let (hash, n) = entry.split_once(':')?;
            Some((u64::from_str_radix(hash, 16).ok()?, n.parse().ok()?))
        })
        .collect()
}

/// Until when an app whose last reading showed idle evidence at `evidence` cannot be a candidate under `policy`:
/// its idle limit after that evidence, or its uptime cap after `created` if sooner. `None` when no rule covers the
/// instance type (then every sweep reads it).
pub fn quiet_until(
    policy: &Policy,
    instance_type: &str,
    created: Timestamp,
    evidence: Timestamp,
) -> Option<Timestamp> {
    let rule = policy.rule_for(instance_type)?;
    let idle = evidence.checked_add(rule.idle_limit()).ok()?;
    Some(match rule.uptime_cap() {
        Some(cap) => idle.min(created.checked_add(cap).ok()?),
        None => idle,
    })
}

/// Whether `app` can be kept on its state alone at `now`: same incarnation, no warning outstanding (a warned app is
/// read to see whether its owner came back), and still inside its quiet period. Returns that period's end.
pub fn quiet(
    app: &AppListing,
    state: Option<&AppState>,
    policy: &Policy,
    now: Timestamp,
) -> Option<Timestamp> {
    let state = state?;
    let created = app.created?;
    if state.warning.is_some() || created.as_second() != state.created {
        return None;
    }
    let evidence = Timestamp::from_second(state.evidence_at?).ok()?;
    let until = quiet_until(policy, app.instance_type.as_deref()?, created, evidence)?;
    (now < until).then_some(until)
}

/// The order a domain's apps are examined in: those the previous sweeps did not reach (`unreached`) first, the
/// longest-waiting first, then the rest; in listing order otherwise.
pub fn examination_order(apps: Vec<AppListing>, unreached: &BTreeMap<u64, u32>) -> Vec<AppListing> {
    let mut waiting: Vec<(u32, AppListing)> = Vec::new();
    let mut rest = Vec::new();
    for app in apps {
        match unreached.get(&key_hash(&state_key(&app))) {
            Some(sweeps) => waiting.push((*sweeps, app)),
            None => rest.push(app),
        }
    }
    // Stable: equal waits keep their listing order.
    waiting.sort_by_key(|w| std::cmp::Reverse(w.0));
    waiting
        .into_iter()
        .map(|(_, app)| app)
        .chain(rest)
        .collect()
}

/// The domain record after a sweep: each app not reached now counts one more sweep than before; apps the sweep did
/// not even list (its listing broke off) keep their entry and count one more too. Bounded by [`MAX_UNREACHED`]
/// (the longest-waiting kept).
pub fn next_unreached(
    before: &BTreeMap<u64, u32>,
    not_reached: &[u64],
    listed: &std::collections::HashSet<u64>,
    listing_complete: bool,
) -> BTreeMap<u64, u32> {
    let mut next: BTreeMap<u64, u32> = not_reached
        .iter()
        .map(|h| (*h, before.get(h).copied().unwrap_or(0).saturating_add(1)))
        .collect();
    if !listing_complete {
        for (h, n) in before {
            if !listed.contains(h) {
                next.entry(*h).or_insert(n.saturating_add(1));
            }
        }
    }
    if next.len() > MAX_UNREACHED {
        let mut by_wait: Vec<(u64, u32)> = next.into_iter().collect();
        by_wait.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_wait.truncate(MAX_UNREACHED);
        next = by_wait.into_iter().collect();
    }
    next
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use jiff::SignedDuration;
    use proptest::prelude::*;

    use super::*;

    fn listing(name: &str) -> AppListing {
        AppListing {
            domain_id: "d-test".into(),
            owner: AppOwner::UserProfile("Ana".into()),
            app_type: "KernelGateway".into(),
            app_name: name.into(),
            status: "InService".into(),
            instance_type: Some("ml.g5.xlarge".into()),
            created: Some(t("2026-11-24T11:00:00Z")),
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn keys_are_lower_case_and_name_owner_type_and_app() {
        assert_eq!(
            state_key(&listing("DataScience")),
            "app#user/ana/kernelgateway/datascience"
        );
        let mut space = listing("default");
        space.owner = AppOwner::Space("Team-Lab".into());
        assert_eq!(
            state_key(&space),
            "app#space/team-lab/kernelgateway/default"
        );
        // The fingerprint is stable across versions and machines: a changed hash would forget every record.
        assert_eq!(
            key_hash("app#user/ana/kernelgateway/x"),
            0x5ac2_d825_29e6_13d2
        );
    }

    #[test]
    fn unreached_entries_round_trip_and_junk_is_ignored() {
        let m = BTreeMap::from([(1u64, 2u32), (u64::MAX, 1)]);
        let text = encode_unreached(&m);
        assert_eq!(text, "0000000000000001:2 ffffffffffffffff:1");
        assert_eq!(decode_unreached(&text), m);
        assert_eq!(
            decode_unreached("zz:1 0000000000000002:x 0000000000000003:4"),
            BTreeMap::from([(3, 4)])
        );
    }

    #[test]
    fn an_app_is_quiet_until_its_limit_or_its_cap() {
        let policy = Policy::default();
        let mut app = listing("gpu");
        let created = app.created.unwrap();
        let state = AppState {
            created: created.as_second(),
            evidence_at: Some(t("2026-11-24T20:30:00Z").as_second()),
            warning: None,
        };
        // ml.g* : 60 min after the activity.
        assert_eq!(
            quiet(&app, Some(&state), &policy, t("2026-11-24T21:00:00Z")),
            Some(t("2026-11-24T21:30:00Z"))
        );
        assert_eq!(
            quiet(&app, Some(&state), &policy, t("2026-11-24T21:30:00Z")),
            None
        );
        // The 24 h uptime cap comes first for an app created long ago.
        let old = AppState {
            created: (created - SignedDuration::from_hours(23)).as_second(),
            ..state.clone()
        };
        app.created = Some(created - SignedDuration::from_hours(23));
        assert_eq!(
            quiet(&app, Some(&old), &policy, t("2026-11-24T11:30:00Z")),
            Some(t("2026-11-24T12:00:00Z"))
        );
        app.created = Some(created);
        // A warned app, another incarnation, no reading, no instance type: read it.
        let warned = AppState {
            warning: Some(Warning {
                at: t("2026-11-24T20:00:00Z"),
                episode: None,
            }),
            ..state.clone()
        };
        let now = t("2026-11-24T21:00:00Z");
        assert_eq!(quiet(&app, Some(&warned), &policy, now), None);
        let older = AppState {
            created: state.created - 60,
            ..state.clone()
        };
        assert_eq!(quiet(&app, Some(&older), &policy, now), None);
        let unread = AppState {
            evidence_at: None,
            ..state.clone()
        };
        assert_eq!(quiet(&app, Some(&unread), &policy, now), None);
        assert_eq!(quiet(&app, None, &policy, now), None);
        let mut untyped = app.clone();
        untyped.instance_type = None;
        assert_eq!(quiet(&untyped, Some(&state), &policy, now), None);
    }

    #[test]
    fn the_unreached_go_first_in_listing_order() {
        let apps: Vec<AppListing> = ["a", "b", "c", "d"].iter().map(|n| listing(n)).collect();
        let unreached = BTreeMap::from([
            (key_hash(&state_key(&apps[3])), 1),
            (key_hash(&state_key(&apps[1])), 1),
        ]);
        let order: Vec<String> = examination_order(apps, &unreached)
            .into_iter()
            .map(|a| a.app_name)
            .collect();
        assert_eq!(order, ["b", "d", "a", "c"]);
    }

    #[test]
    fn the_record_counts_sweeps_and_keeps_unlisted_entries_of_a_broken_listing() {
        let before = BTreeMap::from([(1, 1), (2, 3), (9, 1)]);
        let listed = HashSet::from([1, 2, 4]);
        assert_eq!(
            next_unreached(&before, &[2, 4], &listed, true),
            BTreeMap::from([(2, 4), (4, 1)])
        );
        assert_eq!(
            next_unreached(&before, &[2, 4], &listed, false),
            BTreeMap::from([(2, 4), (4, 1), (9, 2)])
        );
        let many: Vec<u64> = (0..(MAX_UNREACHED as u64 + 10)).collect();
        let before = BTreeMap::from([(7, 5)]);
        let next = next_unreached(&before, &many, &many.iter().copied().collect(), true);
        assert_eq!(next.len(), MAX_UNREACHED);
        assert_eq!(next.get(&7), Some(&6), "the longest-waiting is kept");
    }

    /// A model of consecutive sweeps of one domain: apps may be created between sweeps; each sweep examines its
    /// apps in [`examination_order`] and reaches only the first `capacity` of them (at least half, the invariant's
    /// assumption). Checks: every app is examined in its first or second sweep and then at least once every two
    /// sweeps; without new apps, no app is examined twice before every app has been examined once.
    fn run_sweeps(initial: usize, sweeps: &[(usize, usize)]) -> Result<(), TestCaseError> {
        let mut apps: Vec<AppListing> =
            (0..initial).map(|i| listing(&format!("app-{i}"))).collect();
        let churn = sweeps.iter().any(|(_, created)| *created > 0);
        let mut unreached = BTreeMap::new();
        let mut last_examined: HashMap<String, usize> = HashMap::new();
        let mut born: HashMap<String, usize> =
            apps.iter().map(|a| (a.app_name.clone(), 0)).collect();
        for (n, &(share, created)) in sweeps.iter().enumerate() {
            for _ in 0..created {
                let name = format!("app-{}", apps.len());
                born.insert(name.clone(), n);
                apps.push(listing(&name));
            }
            let half = apps.len().div_ceil(2);
            let capacity = half + (apps.len() - half) * share / 100;
            let order = examination_order(apps.clone(), &unreached);
            let mut not_reached = Vec::new();
            for (i, app) in order.iter().enumerate() {
                if i >= capacity {
                    not_reached.push(key_hash(&state_key(app)));
                    continue;
                }
                if !churn && last_examined.contains_key(&app.app_name) {
                    prop_assert_eq!(
                        last_examined.len(),
                        apps.len(),
                        "{} examined twice before every app was examined once",
                        &app.app_name
                    );
                }
                last_examined.insert(app.app_name.clone(), n);
            }
            let listed = apps.iter().map(|a| key_hash(&state_key(a))).collect();
            unreached = next_unreached(&unreached, &not_reached, &listed, true);
            for app in &apps {
                let ok = match last_examined.get(&app.app_name) {
                    Some(&e) => n - e <= 1,
                    None => born[&app.app_name] == n,
                };
                prop_assert!(ok, "{} starved at sweep {}", &app.app_name, n);
            }
            prop_assert!(unreached.values().all(|w| *w <= 1), "{:?}", unreached);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn every_app_is_examined_at_least_once_every_two_sweeps(
            initial in 1usize..300,
            sweeps in proptest::collection::vec((0usize..=100, 0usize..30), 1..12),
        ) {
            run_sweeps(initial, &sweeps)?;
        }

        #[test]
        fn no_app_is_examined_twice_before_all_are_examined_once(
            initial in 1usize..300,
            shares in proptest::collection::vec(0usize..=100, 1..12),
        ) {
            let sweeps: Vec<(usize, usize)> = shares.into_iter().map(|s| (s, 0)).collect();
            run_sweeps(initial, &sweeps)?;
        }
    }

    #[test]
    fn at_a_third_of_the_apps_per_sweep_the_record_says_so() {
        // Below the invariant's assumption, the record's count grows: the report and metric show it.
        let apps: Vec<AppListing> = (0..9).map(|i| listing(&format!("app-{i}"))).collect();
        let listed: HashSet<u64> = apps.iter().map(|a| key_hash(&state_key(a))).collect();
        let mut unreached = BTreeMap::new();
        let mut worst = 0;
        for _ in 0..3 {
            let order = examination_order(apps.clone(), &unreached);
            let not_reached: Vec<u64> =
                order[3..].iter().map(|a| key_hash(&state_key(a))).collect();
            unreached = next_unreached(&unreached, &not_reached, &listed, true);
            worst = worst.max(unreached.values().copied().max().unwrap_or(0));
        }
        assert_eq!(worst, 2, "with 3 of 9 apps a sweep, some wait two sweeps");
    }
}
