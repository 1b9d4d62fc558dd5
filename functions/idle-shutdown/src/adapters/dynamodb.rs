//! The sweep state in its DynamoDB table (`IdleStateTable`): partition key `pk` = the domain id, sort key `sk` =
//! `app#<owner>/<type>/<name>` for an app ([`crate::state::state_key`]) or `sweep` for the domain record. Read with
//! one strongly consistent query per domain, written with batch writes of at most 25 items; every item expires
//! ([`TTL`]) unless rewritten, so apps deleted by others leave nothing behind for long.
//!
//! App item: `created` (N, seconds), `evidenceAt` (N, seconds, optional), `warnedAt` (S, RFC 3339, optional),
//! `episode` (S, optional), `expiration` (N). Domain record: `unreached` (S, `state::encode_unreached`), `sweptAt`
//! (S), `expiration` (N).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use jiff::{SignedDuration, Timestamp};
use studio_ops_shared::error::AwsCall;
use studio_ops_shared::{AwsCallError, ErrorClass};

use crate::ports::SweepState;
use crate::state::{
    AppState, DOMAIN_RECORD, DomainState, SAVE_BATCH, StateChange, Warning, decode_unreached,
    encode_unreached,
};

/// How long an item lives without being rewritten. An app's item is rewritten at least whenever its quiet period
/// ends (its idle limit, hours); one left this long belongs to an app that is gone.
pub const TTL: SignedDuration = SignedDuration::from_hours(30 * 24);
/// Unprocessed items of a batch write are sent again this many times (with growing pauses) before giving up.
const UNPROCESSED_RETRIES: u32 = 5;

pub struct DynamoSweepState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSweepState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
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

impl SweepState for DynamoSweepState {
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
