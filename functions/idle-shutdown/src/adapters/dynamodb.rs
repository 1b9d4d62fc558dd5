//! The sweep state in its DynamoDB table (`IdleStateTable`): partition key `pk` = the domain id, sort key `sk` =
//! `app#<owner>/<type>/<name>` for an app ([`crate::state::state_key`]) or `sweep` for the domain record. Read with
//! one strongly consistent query per domain, written with batch writes of at most 25 items; every item expires
//! ([`TTL`]) unless rewritten, so apps deleted by others leave nothing behind for long.
//!
//! App item: `created` (N, seconds), `evidenceAt` (N, seconds, optional), `warnedAt` (S, RFC 3339, optional),
//! `episode` (S, optional), `expiration` (N). Domain record: `unreached` (S, `state::encode_unreached`), `sweptAt`
//! (S), `expiration` (N).
//!
//! The spend ledger in its table (`SpendTable`, `ledger.rs`): partition key `pk` = `<domain>#<month>`, sort key `sk`
//! = the incarnation's [`crate::ledger::usage_key`]. A record is written whole with a conditional put that only a
//! later reading passes (`ledger::supersedes`): no transaction and no read are needed, and a lost race is an answer,
//! not an error. Attributes: `kind`, `account` (`user/ana`, `space/team-lab`), `space`, `appType`, `appName`,
//! `instanceType`, `created`, `until`, `seconds` (N), `days` (M: `2026-12-05` → N seconds), `usdPerHour` and `usd`
//! (N, absent when unpriced), `expiration` (N: [`LEDGER_RETENTION`] after the month). A budget record
//! (`sk` = `budget#user/ana`) holds the month's notices sent: `approachingAt`, `exceededAt` (S, RFC 3339), each
//! set by a conditional update that only the first sweep passes.
//!
//! For the weekly digests (`weekly.rs`), beside a domain's month: the apps the sweep stopped, partition
//! `<domain>#<month>#stops`, sort key [`crate::weekly::Stop::key`] (time first), attributes `account`, `space`,
//! `appType`, `appName`, `instanceType`, `usdPerHour` (absent when unpriced), `at`, `cause`, `idleMinutes`; and
//! the sweeps that could not keep up, partition `suite#<month>#lags`, sort key the sweep's time, attributes
//! `notReached`, `behind`, `failedDomains`. Both are plain puts of deterministic keys and expire with the month.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use jiff::{SignedDuration, Timestamp};
use studio_ops_shared::error::AwsCall;
use studio_ops_shared::{AwsCallError, ErrorClass};

use crate::budget::{Notice, Notices};
use crate::ledger::{Account, Usage};
use crate::ports::{MonthLedger, SpendLedger, SweepState};
use crate::state::{
    AppState, DOMAIN_RECORD, DomainState, SAVE_BATCH, StateChange, Warning, decode_unreached,
    encode_unreached,
};
use crate::weekly::{Lag, Stop};
pub use studio_ops_shared::spend::{LEDGER_RETENTION, ledger_partition};
use studio_ops_shared::spend::{
    conditional, month_expiry, n, number, put_usage, s, string, usage_of,
};

/// How long an item lives without being rewritten. An app's item is rewritten at least whenever its quiet period
/// ends (its idle limit, hours); one left this long belongs to an app that is gone.
pub const TTL: SignedDuration = SignedDuration::from_hours(30 * 24);
/// Unprocessed items of a batch write are sent again this many times (with growing pauses) before giving up.
const UNPROCESSED_RETRIES: u32 = 5;

/// idle-shutdown's two tables: the sweep state and the spend ledger.
pub struct DynamoTables {
    client: aws_sdk_dynamodb::Client,
    table: String,
    spend_table: String,
}

impl DynamoTables {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        state_table: impl Into<String>,
        spend_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            table: state_table.into(),
            spend_table: spend_table.into(),
        }
    }
}

/// What a sweep reads of the month's items: all but the records' per-day map.
const SWEEP_PROJECTION: &[&str] = &[
    "sk",
    "kind",
    "account",
    "space",
    "appType",
    "appName",
    "instanceType",
    "created",
    "until",
    "seconds",
    "usdPerHour",
    "approachingAt",
    "exceededAt",
];

/// The sort key of an account's budget record.
pub fn budget_key(account: &Account) -> String {
    format!("budget#{}", account.key())
}

fn notices_of(item: &HashMap<String, AttributeValue>) -> Notices {
    let at = |name: &str| string(item, name).and_then(|t| t.parse().ok());
    Notices {
        approaching_at: at(Notice::Approaching.attribute()),
        exceeded_at: at(Notice::Exceeded.attribute()),
    }
}

impl SpendLedger for DynamoTables {
    async fn month(
        &self,
        domain_id: &str,
        month: &str,
        days: bool,
    ) -> Result<MonthLedger, AwsCallError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.spend_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(ledger_partition(domain_id, month)));
        if !days {
            // Everything but the per-day map, the bulk of a record (DynamoDB still bills the whole item read). Every
            // name through a placeholder: some (`until`, `space`, ...) are DynamoDB reserved words.
            let mut placeholders = Vec::new();
            for (i, name) in SWEEP_PROJECTION.iter().enumerate() {
                let placeholder = format!("#p{i}");
                query = query.expression_attribute_names(&placeholder, *name);
                placeholders.push(placeholder);
            }
            query = query.projection_expression(placeholders.join(", "));
        }
        let mut pages = query.into_paginator().send();
        let mut out = MonthLedger::default();
        while let Some(page) = pages.next().await {
            let page = page.call("Query")?;
            for item in page.items() {
                if let Some(account) = string(item, "sk").and_then(|sk| sk.strip_prefix("budget#"))
                {
                    out.notices.insert(account.to_string(), notices_of(item));
                    continue;
                }
                match usage_of(domain_id, month, item) {
                    Some(u) => out.usages.push(u),
                    None => tracing::warn!(
                        domain_id,
                        month,
                        sk = ?string(item, "sk"),
                        "a spend record does not read; left out of the totals"
                    ),
                }
            }
        }
        Ok(out)
    }

    async fn record(&self, usage: &Usage) -> Result<bool, AwsCallError> {
        // false: the ledger already holds a later reading.
        put_usage(&self.client, &self.spend_table, usage).await
    }

    async fn claim_notice(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> Result<bool, AwsCallError> {
        let result = self
            .notice_update(domain_id, month, account, notice, at)
            .update_expression("SET #notice = :at, expiration = :expires")
            .condition_expression("attribute_not_exists(#notice)")
            .expression_attribute_values(":expires", n(month_expiry(month, at.as_second())))
            .send()
            .await;
        // Failed condition: another sweep sent it.
        conditional(result, "UpdateItem")
    }

    async fn release_notice(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> Result<(), AwsCallError> {
        let result = self
            .notice_update(domain_id, month, account, notice, at)
            .update_expression("REMOVE #notice")
            .condition_expression("#notice = :at")
            .send()
            .await;
        // Failed condition: not ours any more, nothing to take back.
        conditional(result, "UpdateItem").map(drop)
    }

    async fn record_stop(&self, stop: &Stop) -> Result<(), AwsCallError> {
        let month = stop.month();
        let mut item = HashMap::from([
            (
                "pk".to_string(),
                s(stops_partition(&stop.domain_id, &month)),
            ),
            ("sk".to_string(), s(stop.key())),
            ("account".to_string(), s(stop.account.key())),
            ("appType".to_string(), s(&stop.app_type)),
            ("appName".to_string(), s(&stop.app_name)),
            ("instanceType".to_string(), s(&stop.instance_type)),
            ("at".to_string(), n(stop.at)),
            ("cause".to_string(), s(&stop.cause)),
            ("idleMinutes".to_string(), n(stop.idle_minutes as i64)),
            ("expiration".to_string(), n(month_expiry(&month, stop.at))),
        ]);
        if let Some(space) = &stop.space {
            item.insert("space".into(), s(space));
        }
        if let Some(price) = stop.usd_per_hour {
            item.insert("usdPerHour".into(), AttributeValue::N(price.to_string()));
        }
        self.put(item).await
    }

    async fn stops(&self, domain_id: &str, month: &str) -> Result<Vec<Stop>, AwsCallError> {
        let items = self.partition(stops_partition(domain_id, month)).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let stop = stop_of(domain_id, item);
                if stop.is_none() {
                    tracing::warn!(domain_id, month, sk = ?string(item, "sk"), "a stop record does not read; left out of the digests");
                }
                stop
            })
            .collect())
    }

    async fn record_lag(&self, lag: &Lag) -> Result<(), AwsCallError> {
        let month = lag.month();
        let item = HashMap::from([
            ("pk".to_string(), s(lags_partition(&month))),
            // Two runs lagging in the same second (a manual run beside the schedule) are two records.
            (
                "sk".to_string(),
                s(format!(
                    "{:010}#{}#{}#{}",
                    lag.at, lag.not_reached, lag.behind, lag.failed_domains
                )),
            ),
            ("at".to_string(), n(lag.at)),
            ("notReached".to_string(), n(i64::from(lag.not_reached))),
            ("behind".to_string(), n(i64::from(lag.behind))),
            (
                "failedDomains".to_string(),
                n(i64::from(lag.failed_domains)),
            ),
            ("expiration".to_string(), n(month_expiry(&month, lag.at))),
        ]);
        self.put(item).await
    }

    async fn lags(&self, month: &str) -> Result<Vec<Lag>, AwsCallError> {
        let items = self.partition(lags_partition(month)).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let count = |name| number(item, name).and_then(|v| u32::try_from(v).ok());
                let lag = (|| {
                    Some(Lag {
                        at: number(item, "at")?,
                        not_reached: count("notReached")?,
                        behind: count("behind")?,
                        failed_domains: count("failedDomains")?,
                    })
                })();
                if lag.is_none() {
                    tracing::warn!(month, sk = ?string(item, "sk"), "a lag record does not read; left out of the team digest");
                }
                lag
            })
            .collect())
    }
}

/// The partition of a domain's month's stops.
pub fn stops_partition(domain_id: &str, month: &str) -> String {
    format!("{domain_id}#{month}#stops")
}

/// The partition of the month's lagging sweeps (all domains).
pub fn lags_partition(month: &str) -> String {
    format!("suite#{month}#lags")
}

fn stop_of(domain_id: &str, item: &HashMap<String, AttributeValue>) -> Option<Stop> {
    Some(Stop {
        domain_id: domain_id.to_string(),
        account: Account::from_key(string(item, "account")?)?,
        space: string(item, "space").map(str::to_string),
        app_type: string(item, "appType")?.to_string(),
        app_name: string(item, "appName")?.to_string(),
        instance_type: string(item, "instanceType")?.to_string(),
        // Absent: unpriced. Present but unreadable: the record does not read (as a usage record would not).
        usd_per_hour: match item.get("usdPerHour") {
            None => None,
            Some(v) => Some(v.as_n().ok()?.parse().ok()?),
        },
        at: number(item, "at")?,
        cause: string(item, "cause")?.to_string(),
        idle_minutes: u64::try_from(number(item, "idleMinutes")?).ok()?,
    })
}

impl DynamoTables {
    /// A plain put into the spend table (the digests' records: deterministic keys, so a repeat is the same item).
    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), AwsCallError> {
        self.client
            .put_item()
            .table_name(&self.spend_table)
            .set_item(Some(item))
            .send()
            .await
            .call("PutItem")
            .map(drop)
    }

    /// Every item of a partition of the spend table (one query, page by page).
    async fn partition(
        &self,
        pk: String,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, AwsCallError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.spend_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(page.call("Query")?.items().iter().cloned());
        }
        Ok(out)
    }
}

impl DynamoTables {
    /// An update of `account`'s budget record naming `notice` (`#notice`) and its time (`:at`).
    fn notice_update(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.spend_table)
            .key("pk", s(ledger_partition(domain_id, month)))
            .key("sk", s(budget_key(account)))
            .expression_attribute_names("#notice", notice.attribute())
            .expression_attribute_values(":at", s(seconds_text(at)))
    }
}

/// A time as the table keeps it: whole seconds, RFC 3339.
fn seconds_text(at: Timestamp) -> String {
    at.round(jiff::Unit::Second).unwrap_or(at).to_string()
}

/// An app item as the sweep reads it; `None` (logged) for an item that does not read.
fn app_state(item: &HashMap<String, AttributeValue>) -> Option<AppState> {
    let created = number(item, "created")?;
    let warning = match string(item, "warnedAt") {
        None => None,
        Some(at) => Some(Warning {
            at: at.parse().ok()?,
            episode: string(item, "episode").map(str::to_string),
        }),
    };
    Some(AppState {
        created,
        evidence_at: number(item, "evidenceAt"),
        warning,
    })
}

/// The item of `state` under `key`.
fn app_item(
    domain_id: &str,
    key: &str,
    state: &AppState,
    expires: i64,
) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("pk".to_string(), s(domain_id)),
        ("sk".to_string(), s(key)),
        ("created".to_string(), n(state.created)),
        ("expiration".to_string(), n(expires)),
    ]);
    if let Some(e) = state.evidence_at {
        item.insert("evidenceAt".into(), n(e));
    }
    if let Some(w) = &state.warning {
        item.insert(
            "warnedAt".into(),
            s(w.at.round(jiff::Unit::Second).unwrap_or(w.at).to_string()),
        );
        if let Some(episode) = &w.episode {
            item.insert("episode".into(), s(episode.clone()));
        }
    }
    item
}

fn key_of(domain_id: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(domain_id)), ("sk".to_string(), s(sk))])
}

/// The write request of one change, and the sort key it writes (a batch may hold each key once).
fn write_request(
    domain_id: &str,
    change: &StateChange,
    now: Timestamp,
) -> Result<(String, WriteRequest), AwsCallError> {
    let expires = (now + TTL).as_second();
    let malformed = |e: aws_sdk_dynamodb::error::BuildError| {
        AwsCallError::other("BatchWriteItem", ErrorClass::NonRetryable, e.to_string())
    };
    let put = |item| {
        PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map(|p| WriteRequest::builder().put_request(p).build())
            .map_err(malformed)
    };
    Ok(match change {
        StateChange::Put { key, state } => {
            (key.clone(), put(app_item(domain_id, key, state, expires))?)
        }
        StateChange::Delete { key } => (
            key.clone(),
            DeleteRequest::builder()
                .set_key(Some(key_of(domain_id, key)))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(malformed)?,
        ),
        StateChange::Unreached(unreached) if unreached.is_empty() => (
            DOMAIN_RECORD.to_string(),
            DeleteRequest::builder()
                .set_key(Some(key_of(domain_id, DOMAIN_RECORD)))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(malformed)?,
        ),
        StateChange::Unreached(unreached) => {
            let mut item = key_of(domain_id, DOMAIN_RECORD);
            item.insert("unreached".into(), s(encode_unreached(unreached)));
            item.insert(
                "sweptAt".into(),
                s(now.round(jiff::Unit::Second).unwrap_or(now).to_string()),
            );
            item.insert("expiration".into(), n(expires));
            (DOMAIN_RECORD.to_string(), put(item)?)
        }
    })
}

impl SweepState for DynamoTables {
    async fn load(&self, domain_id: &str) -> Result<DomainState, AwsCallError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(domain_id))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut state = DomainState::default();
        while let Some(page) = pages.next().await {
            let page = page.call("Query")?;
            for item in page.items() {
                match string(item, "sk") {
                    Some(DOMAIN_RECORD) => {
                        state.unreached = decode_unreached(string(item, "unreached").unwrap_or(""));
                    }
                    Some(sk) if sk.starts_with("app#") => match app_state(item) {
                        Some(app) => {
                            state.apps.insert(sk.to_string(), app);
                        }
                        None => tracing::warn!(
                            domain_id,
                            sk,
                            "a sweep-state item does not read; the app is read afresh"
                        ),
                    },
                    other => {
                        tracing::warn!(domain_id, sk = ?other, "an unknown item in the sweep-state table; ignored")
                    }
                }
            }
        }
        Ok(state)
    }

    async fn save(&self, domain_id: &str, changes: &[StateChange]) -> Result<(), AwsCallError> {
        let now = Timestamp::now();
        // One request per key and batch (DynamoDB refuses a batch naming an item twice): the last change wins.
        let mut by_key: BTreeMap<String, WriteRequest> = BTreeMap::new();
        for change in changes {
            let (key, request) = write_request(domain_id, change, now)?;
            by_key.insert(key, request);
        }
        let requests: Vec<WriteRequest> = by_key.into_values().collect();
        for chunk in requests.chunks(SAVE_BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .call("BatchWriteItem")?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt > UNPROCESSED_RETRIES {
                    return Err(AwsCallError::other(
                        "BatchWriteItem",
                        ErrorClass::Retryable,
                        format!(
                            "{} items still unprocessed after {UNPROCESSED_RETRIES} retries",
                            pending.len()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_item_reads_back_as_written() {
        let state = AppState {
            created: 1_764_000_000,
            evidence_at: Some(1_764_003_600),
            warning: Some(Warning {
                at: "2026-11-24T21:00:00.4Z".parse().unwrap(),
                episode: Some("idle-since-1764003600".into()),
            }),
        };
        let item = app_item("d-test", "app#user/ana/kernelgateway/x", &state, 1);
        assert_eq!(string(&item, "warnedAt"), Some("2026-11-24T21:00:00Z"));
        let back = app_state(&item).unwrap();
        assert_eq!(back.created, state.created);
        assert_eq!(back.evidence_at, state.evidence_at);
        assert_eq!(
            back.warning.unwrap().episode,
            state.warning.unwrap().episode
        );
        let bare = app_item(
            "d-test",
            "k",
            &AppState {
                created: 5,
                ..AppState::default()
            },
            1,
        );
        assert_eq!(
            app_state(&bare),
            Some(AppState {
                created: 5,
                ..AppState::default()
            })
        );
        let mut broken = bare.clone();
        broken.insert("warnedAt".into(), s("soon"));
        assert_eq!(
            app_state(&broken),
            None,
            "an unreadable warning does not pass as none"
        );
    }
}
