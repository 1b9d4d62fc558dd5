//! Exactly-once side effects under at-least-once delivery: a DynamoDB record per business key, claimed with a
//! conditional put (status IN_PROGRESS, expiring with the Lambda deadline), then marked COMPLETED with a TTL —
//! the Powertools idempotency design.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{AwsCallError, ErrorClass, Failure};

const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
const STATUS_COMPLETED: &str = "COMPLETED";
/// Keys longer than this are stored as a hash (DynamoDB keys are limited to 2 KiB).
const MAX_PLAIN_KEY: usize = 200;

/// The result of trying to claim a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This invocation owns the key: do the work, then `complete` (or `release` on failure).
    Acquired,
    /// The work was done before; here is what it returned.
    AlreadyCompleted(Option<Value>),
    /// Another invocation holds the key and its deadline has not passed.
    InProgress,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("idempotency store {0}")]
    Store(AwsCallError),
}

impl Failure for IdempotencyError {
    fn class(&self) -> ErrorClass {
        match self {
            IdempotencyError::Store(e) => e.class(),
        }
    }
}

/// The port; `DynamoIdempotencyStore` is the adapter, `MemoryIdempotencyStore` the test fake.
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` until `in_progress_until` (the Lambda deadline): a crashed holder's claim expires then.
    fn claim(
        &self,
        key: &str,
        in_progress_until: Timestamp,
    ) -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;
    /// Marks `key` done, remembering `result` until the TTL.
    fn complete(
        &self,
        key: &str,
        result: &Value,
    ) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
    /// Gives `key` up after a failure so that a retry can do the work.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
    /// Claims `key` for `holder` (the lease): like `claim`, and a claim `holder` already holds is acquired again -
    /// a request whose answer was lost and that the SDK retried finds its own record, not another run's.
    fn claim_for(
        &self,
        key: &str,
        in_progress_until: Timestamp,
        holder: &str,
    ) -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;
    /// Gives `key` up only if `holder` holds it (never another run's claim that followed a lapsed one).
    fn release_for(
        &self,
        key: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
}

/// The stored key: the function's namespace plus the business key, hashed when long.
pub fn record_id(namespace: &str, key: &str) -> String {
    if key.len() <= MAX_PLAIN_KEY {
        format!("{namespace}#{key}")
    } else {
        format!(
            "{namespace}#sha256:{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    }
}

/// Until when a claim holds: the invocation's deadline itself, never in the past (a minute from now without one).
/// No margin is subtracted on purpose: a claim that lapsed before its holder's deadline would let a duplicate
/// delivery start the same work while the holder may still be doing it.
pub fn claim_expiry(deadline: std::time::SystemTime) -> Timestamp {
    let now = Timestamp::now();
    Timestamp::try_from(deadline)
        .ok()
        .filter(|d| *d > now)
        .unwrap_or_else(|| now + Duration::from_secs(60))
}

/// Adapter over one DynamoDB client and the idempotency table (partition key `id` of type S, TTL on `expiration`).
#[derive(Clone)]
pub struct DynamoIdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    namespace: String,
    ttl: Duration,
}

impl DynamoIdempotencyStore {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        namespace: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            namespace: namespace.into(),
            ttl,
        }
    }

    fn store_error<E, R>(
        operation: &'static str,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> IdempotencyError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        IdempotencyError::Store(AwsCallError::from_sdk(operation, e))
    }

    fn interpret(item: &HashMap<String, AttributeValue>) -> Claim {
        let status = item.get("status").and_then(|v| v.as_s().ok());
        if status.map(String::as_str) == Some(STATUS_COMPLETED) {
            let data = item
                .get("data")
                .and_then(|v| v.as_s().ok())
                .and_then(|s| serde_json::from_str(s).ok());
            return Claim::AlreadyCompleted(data);
        }
        // In progress, or an expired claim that another invocation re-took before us: either way not ours.
        Claim::InProgress
    }
}

impl DynamoIdempotencyStore {
    async fn claim_as(
        &self,
        key: &str,
        in_progress_until: Timestamp,
        holder: Option<&str>,
    ) -> Result<Claim, IdempotencyError> {
        let id = record_id(&self.namespace, key);
        let now = Timestamp::now();
        let expiration = (now + self.ttl).as_second();
        let free = "attribute_not_exists(id) OR expiration < :now OR (#status = :in_progress AND in_progress_expiry < :now_ms)";
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(id))
            .item("status", AttributeValue::S(STATUS_IN_PROGRESS.into()))
            .item("expiration", AttributeValue::N(expiration.to_string()))
            .item(
                "in_progress_expiry",
                AttributeValue::N(in_progress_until.as_millisecond().to_string()),
            )
            .condition_expression(free);
        if let Some(holder) = holder {
            put = put
                .item("holder", AttributeValue::S(holder.to_string()))
                .condition_expression(format!(
                    "{free} OR (#status = :in_progress AND holder = :holder)"
                ))
                .expression_attribute_values(":holder", AttributeValue::S(holder.to_string()));
        }
        let result = put
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", AttributeValue::N(now.as_second().to_string()))
            .expression_attribute_values(
                ":now_ms",
                AttributeValue::N(now.as_millisecond().to_string()),
            )
            .expression_attribute_values(
                ":in_progress",
                AttributeValue::S(STATUS_IN_PROGRESS.into()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(e) => {
                let Some(ccf) = e
                    .as_service_error()
                    .filter(|s| s.is_conditional_check_failed_exception())
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => Some(c),
                        _ => None,
                    })
                else {
                    return Err(Self::store_error("claim", &e));
                };
                // DynamoDB returns the record that failed the condition (ReturnValuesOnConditionCheckFailure), so
                // no read - and no dynamodb:GetItem grant - is needed. A record it did not return is treated as
                // held: the claim was not ours.
                Ok(ccf.item().map(Self::interpret).unwrap_or(Claim::InProgress))
            }
        }
    }

    async fn release_as(&self, key: &str, holder: Option<&str>) -> Result<(), IdempotencyError> {
        let mut delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(record_id(&self.namespace, key)))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":in_progress",
                AttributeValue::S(STATUS_IN_PROGRESS.into()),
            );
        if let Some(holder) = holder {
            delete = delete
                .condition_expression("#status = :in_progress AND holder = :holder")
                .expression_attribute_values(":holder", AttributeValue::S(holder.to_string()));
        }
        delete.send().await.map(|_| ()).or_else(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception())
            {
                Ok(())
            } else {
                Err(Self::store_error("release", &e))
            }
        })
    }
}

impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(
        &self,
        key: &str,
        in_progress_until: Timestamp,
    ) -> Result<Claim, IdempotencyError> {
        self.claim_as(key, in_progress_until, None).await
    }

    async fn claim_for(
        &self,
        key: &str,
        in_progress_until: Timestamp,
        holder: &str,
    ) -> Result<Claim, IdempotencyError> {
        self.claim_as(key, in_progress_until, Some(holder)).await
    }

    async fn release_for(&self, key: &str, holder: &str) -> Result<(), IdempotencyError> {
        self.release_as(key, Some(holder)).await
    }

    async fn complete(&self, key: &str, result: &Value) -> Result<(), IdempotencyError> {
        let expiration = (Timestamp::now() + self.ttl).as_second();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(record_id(&self.namespace, key)))
            .item("status", AttributeValue::S(STATUS_COMPLETED.into()))
            .item("expiration", AttributeValue::N(expiration.to_string()))
            .item("data", AttributeValue::S(result.to_string()))
            .send()
            .await
            .map_err(|e| Self::store_error("complete", &e))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), IdempotencyError> {
        self.release_as(key, None).await
    }
}

/// One record of the in-memory store: completed?, stored result, in-progress expiry, holder.
type MemoryRecord = (bool, Option<Value>, Timestamp, Option<String>);

/// An in-memory store for unit tests of handlers (same semantics, no TTL).
#[derive(Default)]
pub struct MemoryIdempotencyStore {
    records: std::sync::Mutex<HashMap<String, MemoryRecord>>,
}

impl MemoryIdempotencyStore {
    fn claim_as(
        &self,
        key: &str,
        until: Timestamp,
        holder: Option<&str>,
    ) -> Result<Claim, IdempotencyError> {
        let mut records = self.records.lock().map_err(|_| {
            IdempotencyError::Store(AwsCallError::other(
                "claim",
                ErrorClass::Retryable,
                "poisoned",
            ))
        })?;
        let now = Timestamp::now();
        match records.get(key) {
            Some((true, data, _, _)) => Ok(Claim::AlreadyCompleted(data.clone())),
            Some((false, _, expiry, held_by))
                if *expiry > now && (holder.is_none() || held_by.as_deref() != holder) =>
            {
                Ok(Claim::InProgress)
            }
            _ => {
                records.insert(
                    key.to_string(),
                    (false, None, until, holder.map(str::to_string)),
                );
                Ok(Claim::Acquired)
            }
        }
    }

    fn release_as(&self, key: &str, holder: Option<&str>) {
        if let Ok(mut r) = self.records.lock()
            && let Some((false, _, _, held_by)) = r.get(key)
            && (holder.is_none() || held_by.as_deref() == holder)
        {
            r.remove(key);
        }
    }
}

impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, key: &str, until: Timestamp) -> Result<Claim, IdempotencyError> {
        self.claim_as(key, until, None)
    }

    async fn claim_for(
        &self,
        key: &str,
        until: Timestamp,
        holder: &str,
    ) -> Result<Claim, IdempotencyError> {
        self.claim_as(key, until, Some(holder))
    }

    async fn release_for(&self, key: &str, holder: &str) -> Result<(), IdempotencyError> {
        self.release_as(key, Some(holder));
        Ok(())
    }

    async fn complete(&self, key: &str, result: &Value) -> Result<(), IdempotencyError> {
        if let Ok(mut r) = self.records.lock() {
            r.insert(
                key.to_string(),
                (true, Some(result.clone()), Timestamp::now(), None),
            );
        }
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), IdempotencyError> {
        self.release_as(key, None);
        Ok(())
    }
}

/// Runs `work` at most once per `key`: a duplicate returns the stored result, a concurrent one `None`.
/// On failure the claim is released so that a retry can do the work.
pub async fn once<S, F, Fut, E>(
    store: &S,
    key: &str,
    in_progress_until: Timestamp,
    work: F,
) -> Result<Once, E>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Value, E>>,
    E: From<IdempotencyError>,
{
    match store.claim(key, in_progress_until).await? {
        Claim::AlreadyCompleted(previous) => Ok(Once::Duplicate(previous)),
        Claim::InProgress => Ok(Once::InProgressElsewhere),
        Claim::Acquired => match work().await {
            Ok(result) => {
                store.complete(key, &result).await?;
                Ok(Once::Done(result))
            }
            Err(e) => {
                if let Err(release) = store.release(key).await {
                    tracing::warn!(key, error = %release, "could not release idempotency claim; it expires with the deadline");
                }
                Err(e)
            }
        },
    }
}

/// What `once` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Once {
    Done(Value),
    Duplicate(Option<Value>),
    InProgressElsewhere,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed() {
        assert_eq!(record_id("notify", "k"), "notify#k");
        let long = "x".repeat(500);
        let id = record_id("notify", &long);
        assert!(id.starts_with("notify#sha256:") && id.len() < 100);
    }

    #[tokio::test]
    async fn once_runs_work_once_and_retries_after_failure() {
        let store = MemoryIdempotencyStore::default();
        let until = Timestamp::now() + Duration::from_secs(60);
        let failed: Result<Once, IdempotencyError> = once(&store, "k", until, || async {
            Err(IdempotencyError::Store(AwsCallError::other(
                "work",
                ErrorClass::Retryable,
                "boom",
            )))
        })
        .await;
        assert!(failed.is_err());
        let first: Result<Once, IdempotencyError> =
            once(&store, "k", until, || async { Ok(serde_json::json!(1)) }).await;
        assert_eq!(first.unwrap(), Once::Done(serde_json::json!(1)));
        let dup: Result<Once, IdempotencyError> =
            once(&store, "k", until, || async { Ok(serde_json::json!(2)) }).await;
        assert_eq!(dup.unwrap(), Once::Duplicate(Some(serde_json::json!(1))));
    }

    #[tokio::test]
    async fn concurrent_claim_is_in_progress() {
        let store = MemoryIdempotencyStore::default();
        let until = Timestamp::now() + Duration::from_secs(60);
        assert_eq!(store.claim("k", until).await.unwrap(), Claim::Acquired);
        assert_eq!(store.claim("k", until).await.unwrap(), Claim::InProgress);
    }
}
