//! One run at a time without reserved concurrency: a function that must not overlap itself (a sweep, a reconcile)
//! holds a lease, a record in the suite's idempotency table claimed with a conditional put that expires with the
//! holder's Lambda deadline. An overlapping invocation finds it held and answers "already running"; the lease of a
//! holder that crashed lapses at that holder's deadline, so the next run proceeds. The lease is the idempotency
//! store's claim under one fixed key, never completed, released when the run ends.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use crate::idempotency::{Claim, IdempotencyError, IdempotencyStore};

/// The key of the lease within a function's namespace (the record `<function>#lease`; the template scopes
/// provision-users' table grant to exactly that item).
pub const LEASE_KEY: &str = "lease";

/// What `exclusive` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Exclusive<T> {
    /// This invocation held the lease and ran the work.
    Ran(T),
    /// Another invocation holds the lease; the work did not run.
    AlreadyRunning,
}

/// Who holds the lease for an invocation: its Lambda request id (an asynchronous retry of a crashed invocation keeps
/// it, and takes its own lease again), or a name of this process and moment where there is none (local runs).
pub fn holder(request_id: &str) -> String {
    if request_id.is_empty() {
        format!(
            "local-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        )
    } else {
        request_id.to_string()
    }
}

/// The answer of a run that found the lease held: not an error (the holder does the same work).
pub fn already_running(function: &str) -> serde_json::Value {
    serde_json::json!({
        "outcome": "already-running",
        "reason": format!("another {function} run holds the lease; it lapses at that run's deadline at the latest"),
    })
}

/// Runs `work` while `holder` (the invocation's request id) holds the function's lease until `until` (the Lambda
/// deadline), or returns `AlreadyRunning` at once when another invocation holds it. The lease is released when
/// `work` ends, whatever its result.
pub async fn exclusive<S, F, Fut, T, E>(
    store: &S,
    holder: &str,
    until: Timestamp,
    work: F,
) -> Result<Exclusive<T>, E>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<IdempotencyError>,
{
    if !take(store, holder, until).await? {
        return Ok(Exclusive::AlreadyRunning);
    }
    run_and_release(store, holder, work).await
}

/// Like `exclusive`, but waits for a held lease to be released, polling every `poll`, until `give_up_at`; returns
/// `AlreadyRunning` only if it is still held then. For work that must not be dropped (an event that arrives while
/// the scheduled run holds the lease must be handled after it, not instead of it).
pub async fn exclusive_after_wait<S, F, Fut, T, E>(
    store: &S,
    holder: &str,
    until: Timestamp,
    give_up_at: Timestamp,
    poll: Duration,
    work: F,
) -> Result<Exclusive<T>, E>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<IdempotencyError>,
{
    loop {
        if take(store, holder, until).await? {
            return run_and_release(store, holder, work).await;
        }
        let now = Timestamp::now();
        if now >= give_up_at {
            return Ok(Exclusive::AlreadyRunning);
        }
        let left = Duration::try_from(give_up_at.duration_since(now)).unwrap_or_default();
        tracing::info!(
            wait_ms = poll.min(left).as_millis() as u64,
            "the lease is held by another run; waiting for it"
        );
        tokio::time::sleep(poll.min(left)).await;
    }
}

/// Runs `work` with the lease held, then releases it whatever the result.
async fn run_and_release<S, F, Fut, T, E>(
    store: &S,
    holder: &str,
    work: F,
) -> Result<Exclusive<T>, E>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let result = work().await;
    release(store, holder).await;
    result.map(Exclusive::Ran)
}

async fn take<S: IdempotencyStore>(
    store: &S,
    holder: &str,
    until: Timestamp,
) -> Result<bool, IdempotencyError> {
    match store.claim_for(LEASE_KEY, until, holder).await? {
        Claim::Acquired => Ok(true),
        Claim::InProgress => Ok(false),
        // Nothing in studio-ops completes the lease key: such a record was written by hand or by another tool.
        // Running anyway could overlap a real holder, so it counts as held and is logged for a person to delete.
        Claim::AlreadyCompleted(_) => {
            tracing::error!(
                key = LEASE_KEY,
                "the lease record is marked completed, which nothing in studio-ops writes; treating it as held"
            );
            Ok(false)
        }
    }
}

async fn release<S: IdempotencyStore>(store: &S, holder: &str) {
    if let Err(e) = store.release_for(LEASE_KEY, holder).await {
        // Harmless: the lease lapses at this invocation's deadline.
        tracing::warn!(error = %e, "could not release the lease; it lapses at this invocation's deadline");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::MemoryIdempotencyStore;

    fn in_secs(s: u64) -> Timestamp {
        Timestamp::now() + Duration::from_secs(s)
    }

    #[tokio::test]
    async fn a_second_run_while_the_first_holds_the_lease_does_not_run() {
        let store = MemoryIdempotencyStore::default();
        let outer: Result<Exclusive<Exclusive<u8>>, IdempotencyError> =
            exclusive(&store, "run-a", in_secs(60), || async {
                exclusive(&store, "run-b", in_secs(60), || async { Ok(2) }).await
            })
            .await;
        assert_eq!(outer.unwrap(), Exclusive::Ran(Exclusive::AlreadyRunning));
        // Released at the end: the next run proceeds.
        let next: Result<Exclusive<u8>, IdempotencyError> =
            exclusive(&store, "run-b", in_secs(60), || async { Ok(3) }).await;
        assert_eq!(next.unwrap(), Exclusive::Ran(3));
    }

    #[tokio::test]
    async fn a_failed_run_releases_the_lease() {
        let store = MemoryIdempotencyStore::default();
        let failed: Result<Exclusive<u8>, IdempotencyError> =
            exclusive(&store, "run-b", in_secs(60), || async {
                Err(IdempotencyError::Store(crate::AwsCallError::other(
                    "work",
                    crate::ErrorClass::Retryable,
                    "boom",
                )))
            })
            .await;
        assert!(failed.is_err());
        let next: Result<Exclusive<u8>, IdempotencyError> =
            exclusive(&store, "run-b", in_secs(60), || async { Ok(1) }).await;
        assert_eq!(next.unwrap(), Exclusive::Ran(1));
    }

    #[tokio::test]
    async fn a_crashed_holders_lease_lapses_at_its_deadline() {
        let store = MemoryIdempotencyStore::default();
        // A holder that never released, whose deadline has passed.
        assert_eq!(
            store
                .claim_for(
                    LEASE_KEY,
                    Timestamp::now() - Duration::from_secs(1),
                    "crashed"
                )
                .await
                .unwrap(),
            Claim::Acquired
        );
        let next: Result<Exclusive<u8>, IdempotencyError> =
            exclusive(&store, "run-b", in_secs(60), || async { Ok(1) }).await;
        assert_eq!(next.unwrap(), Exclusive::Ran(1));
    }

    #[tokio::test]
    async fn waiting_runs_after_the_holder_releases_and_gives_up_at_its_limit() {
        let store = std::sync::Arc::new(MemoryIdempotencyStore::default());
        assert_eq!(
            store
                .claim_for(LEASE_KEY, in_secs(60), "run-a")
                .await
                .unwrap(),
            Claim::Acquired
        );
        let holder = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            holder.release_for(LEASE_KEY, "run-a").await.unwrap();
        });
        let waited: Result<Exclusive<u8>, IdempotencyError> = exclusive_after_wait(
            store.as_ref(),
            "run-b",
            in_secs(60),
            in_secs(10),
            Duration::from_millis(20),
            || async { Ok(7) },
        )
        .await;
        assert_eq!(waited.unwrap(), Exclusive::Ran(7));

        assert_eq!(
            store
                .claim_for(LEASE_KEY, in_secs(60), "run-a")
                .await
                .unwrap(),
            Claim::Acquired
        );
        let gave_up: Result<Exclusive<u8>, IdempotencyError> = exclusive_after_wait(
            store.as_ref(),
            "run-b",
            in_secs(60),
            Timestamp::now() + Duration::from_millis(100),
            Duration::from_millis(20),
            || async { Ok(8) },
        )
        .await;
        assert_eq!(gave_up.unwrap(), Exclusive::AlreadyRunning);
    }

    #[tokio::test]
    async fn a_holder_takes_its_own_lease_again_and_never_releases_anothers() {
        let store = MemoryIdempotencyStore::default();
        // A retried claim whose first answer was lost finds its own record: still ours.
        assert!(take(&store, "run-a", in_secs(60)).await.unwrap());
        assert!(take(&store, "run-a", in_secs(60)).await.unwrap());
        assert!(!take(&store, "run-b", in_secs(60)).await.unwrap());
        // Another run's release leaves the holder's lease in place.
        release(&store, "run-b").await;
        assert!(!take(&store, "run-b", in_secs(60)).await.unwrap());
        release(&store, "run-a").await;
        assert!(take(&store, "run-b", in_secs(60)).await.unwrap());
    }
}
