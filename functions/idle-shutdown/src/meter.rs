//! Metering, alongside the sweep: every running billable app the listing yields goes, as its page arrives, to the
//! meter, which writes its spend records (`ledger.rs`) while the sweep examines apps — the ledger's writes go to
//! DynamoDB while the sweep waits on SageMaker's rate limit, so they add little to the sweep's time. The domain's
//! month is read once, when its first app reaches the meter (the listing does not wait for it). Per app: its
//! account (a private space's owner from one `ListSpaces` per domain, read when its first space app arrives), its
//! records at `now` that move the ledger forward, oldest month first (a month is closed before the next is
//! written). Writes start until the sweep's cutoff, like the examination, so that the sweep keeps its margin to
//! finish; what is left, the next sweep writes (records are absolute: nothing is lost, nothing counted twice). A dry
//! run computes and writes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use jiff::Timestamp;
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::publisher::PublishEvents;
use tokio::sync::OnceCell;

use crate::decision::{AppListing, AppOwner};
use crate::ledger::{self, Account, Usage, account_of, month_of, to_record};
use crate::ports::{FailureQueues, SpendLedger, Studio, SweepState};
use crate::sweep::{DomainSpend, MonthOfDomain, MonthRecords, Run, Sweeper, cell, lock};
use studio_ops_shared::prices::round_usd;

/// What the meter did, for the report and the budgets.
#[derive(Default)]
pub(crate) struct Metered {
    pub(crate) apps: u32,
    pub(crate) writes: u32,
    pub(crate) writes_failed: u32,
    pub(crate) month_to_date_usd: f64,
    /// What this sweep's writes added to the current month's dollars (the dashboard's spend per day sums it).
    pub(crate) metered_usd: f64,
    /// Per domain whose month could be read: the month as it now stands, for the budgets.
    pub(crate) spends: Vec<DomainSpend>,
}

/// How one app's metering ended.
enum Metering {
    Done(Box<AppMetered>),
    /// Nothing to meter (listed before its creation time: a clock skew).
    Nothing,
    /// A space app whose owner could not be read: the next sweep meters it.
    OwnerUnknown,
}

/// One app metered.
struct AppMetered {
    app: AppListing,
    account: Account,
    price: Option<f64>,
    /// Its record of the current month, if this sweep moves it forward.
    current: Option<Usage>,
    sent: u32,
    failed: u32,
    /// The dollars its current month's record grew by.
    grew_usd: f64,
}

/// Space name (lower case) → owner, shared by every app of a domain.
type Owners = Option<Arc<BTreeMap<String, String>>>;

impl<S, P, I, D, Q> Sweeper<'_, S, P, I, D, Q>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    /// Meters the apps `listed` sends until the listing is done, then folds what it did per domain.
    pub(crate) async fn meter(&self, run: &Run, listed: UnboundedReceiver<AppListing>) -> Metered {
        let owners: Mutex<HashMap<String, Arc<OnceCell<Owners>>>> = Mutex::new(HashMap::new());
        let seen: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
        let stop_at = run.cutoff;
        let (owners, seen) = (&owners, &seen);
        let mut apps = listed
            .filter(|app| {
                // A listing may repeat an app across pages: meter it once.
                std::future::ready(lock(seen).insert(app.key()))
            })
            .map(|app| async move { self.meter_app(run, app, owners, stop_at).await })
            .buffer_unordered(self.config.concurrency);
        let mut metered = Metered::default();
        let mut current: HashMap<String, HashMap<String, Usage>> = HashMap::new();
        let mut running: HashMap<String, Vec<(AppListing, Account, Option<f64>)>> = HashMap::new();
        while let Some(one) = apps.next().await {
            let one = match one {
                Metering::Done(one) => *one,
                Metering::Nothing => continue,
                Metering::OwnerUnknown => {
                    metered.writes_failed += 1;
                    continue;
                }
            };
            metered.apps += 1;
            metered.writes += one.sent;
            metered.writes_failed += one.failed;
            metered.metered_usd += one.grew_usd;
            let domain = one.app.domain_id.clone();
            if let Some(record) = one.current {
                current
                    .entry(domain.clone())
                    .or_default()
                    .insert(record.key.clone(), record);
            }
            running
                .entry(domain)
                .or_default()
                .push((one.app, one.account, one.price));
        }
        // Every domain the sweep listed (its state was read), whether or not it has a running app: its budgets.
        let domains: Vec<String> = lock(&run.states).keys().cloned().collect();
        for domain in domains {
            // Budgets need the month as a whole: not checked for a domain whose ledger could not be read.
            let Some(held) = self.month_records(run, &domain).await else {
                continue;
            };
            let mut records = held.records.clone();
            records.extend(current.remove(&domain).unwrap_or_default());
            metered.month_to_date_usd += records.values().filter_map(Usage::usd).sum::<f64>();
            metered.spends.push(DomainSpend {
                running: running.remove(&domain).unwrap_or_default(),
                domain,
                records,
                notices: held.notices.clone(),
            });
        }
        metered.month_to_date_usd = round_usd(metered.month_to_date_usd);
        metered.metered_usd = round_usd(metered.metered_usd);
        metered
    }

    /// The domain's month as the sweep read it, read at the first call.
    async fn month_records(&self, run: &Run, domain: &str) -> MonthOfDomain {
        let ledger = &self.ports.state;
        let month = month_of(run.now);
        cell(&run.ledgers, domain.to_string())
            .get_or_init(|| async {
                match ledger.month(domain, &month, false).await {
                    Ok(month) => Some(Arc::new(MonthRecords {
                        records: month
                            .usages
                            .into_iter()
                            .map(|u| (u.key.clone(), u))
                            .collect(),
                        notices: month.notices,
                    })),
                    Err(e) => {
                        // Metering still writes (a record only moves forward); the month's totals leave it out.
                        tracing::warn!(domain_id = %domain, error = %e, "cannot read the domain's spend ledger");
                        None
                    }
                }
            })
            .await
            .clone()
    }

    /// One app: its account, its records, their writes.
    async fn meter_app(
        &self,
        run: &Run,
        app: AppListing,
        owners: &Mutex<HashMap<String, Arc<OnceCell<Owners>>>>,
        stop_at: Timestamp,
    ) -> Metering {
        let domain = app.domain_id.clone();
        let account = match &app.owner {
            AppOwner::UserProfile(_) => account_of(&app, &BTreeMap::new()),
            AppOwner::Space(_) => {
                let studio = &self.ports.studio;
                let owners = cell(owners, domain.clone())
                    .get_or_init(|| async {
                        match studio.list_space_owners(&domain).await {
                            Ok(o) => Some(Arc::new(o)),
                            Err(e) => {
                                tracing::warn!(domain_id = %domain, error = %e, "cannot list the domain's spaces; its space apps are metered by the next sweep");
                                None
                            }
                        }
                    })
                    .await
                    .clone();
                match owners {
                    Some(owners) => account_of(&app, &owners),
                    None => return Metering::OwnerUnknown,
                }
            }
        };
        let price = app
            .instance_type
            .as_deref()
            .and_then(|t| self.prices.hourly(t));
        let records = ledger::meter(&app, account.clone(), price, run.now);
        let Some(key) = records.last().map(|r| r.key.clone()) else {
            return Metering::Nothing;
        };
        let held = self.month_records(run, &domain).await;
        let held_record = held.as_ref().and_then(|h| h.records.get(&key));
        let held_usd = held_record.and_then(Usage::usd).unwrap_or(0.0);
        let todo = to_record(records, held_record, run.now);
        let month = month_of(run.now);
        let current = todo.iter().find(|u| u.month == month).cloned();
        let (mut sent, mut failed, mut grew_usd) = (0u32, 0u32, 0.0);
        if !run.dry_run {
            for (i, record) in todo.iter().enumerate() {
                if Timestamp::now() >= stop_at {
                    failed += (todo.len() - i) as u32;
                    break;
                }
                match self.ports.state.record(record).await {
                    Ok(moved) => {
                        // `false`: another sweep had recorded a later reading; a write all the same, but its growth
                        // is that sweep's. Earlier months' growth is left out (their records were not read).
                        if moved && record.month == month {
                            grew_usd += (record.usd().unwrap_or(0.0) - held_usd).max(0.0);
                        }
                        sent += 1
                    }
                    Err(e) => {
                        tracing::warn!(key = %record.key, month = %record.month, error = %e, "spend record not written; the next sweep writes it");
                        failed += (todo.len() - i) as u32;
                        break;
                    }
                }
            }
        }
        Metering::Done(Box::new(AppMetered {
            app,
            account,
            price,
            current,
            sent,
            failed,
            grew_usd,
        }))
    }
}
