//! Publishes the suite's own events to its custom EventBridge bus: batched as PutEvents allows, failed entries
//! retried, and whatever still fails reported as an error, never silently dropped.

use std::future::Future;
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::{AwsCallError, ErrorClass, Failure};
use crate::events::suite::{SOURCE, SuiteEvent};

/// PutEvents takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// PutEvents takes at most 256 KiB per call (entries' detail, detail-type, source and resources).
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;
/// Rounds of re-sending entries that PutEvents reported as failed.
const ENTRY_RETRY_ROUNDS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Call(AwsCallError),
    #[error("{count} event(s) not accepted by EventBridge after retries: {details}")]
    Rejected { count: usize, details: String },
    #[error("event {detail_type} is {size} bytes, over the 256 KiB PutEvents limit")]
    TooLarge { detail_type: String, size: usize },
}

impl Failure for PublishError {
    fn class(&self) -> ErrorClass {
        match self {
            PublishError::Call(e) => e.class(),
            PublishError::Rejected { .. } => ErrorClass::Retryable,
            PublishError::TooLarge { .. } => ErrorClass::NonRetryable,
        }
    }
}

/// The port handlers publish through; `EventBridgePublisher` is the adapter, tests use fakes.
pub trait PublishEvents: Send + Sync {
    fn publish(
        &self,
        events: &[SuiteEvent],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Adapter over one EventBridge client and the suite's bus.
#[derive(Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    fn entry(&self, event: &SuiteEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(event.detail().to_string())
            .build()
    }

    async fn put_batch(&self, mut pending: Vec<PutEventsRequestEntry>) -> Result<(), PublishError> {
        let mut last_errors = Vec::new();
        for round in 0..=ENTRY_RETRY_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(round - 1))).await;
            }
            let out = self
                .client
                .put_events()
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| PublishError::Call(AwsCallError::from_sdk("PutEvents", &e)))?;
            if out.failed_entry_count() == 0 {
                return Ok(());
            }
            // Results are positional: result i belongs to entry i.
            let mut retry = Vec::new();
            last_errors.clear();
            for (entry, result) in pending.iter().zip(out.entries()) {
                if let Some(code) = result.error_code() {
                    last_errors.push(format!(
                        "{} ({code}: {})",
                        entry.detail_type().unwrap_or("?"),
                        result.error_message().unwrap_or("")
                    ));
                    retry.push(entry.clone());
                }
            }
            if retry.is_empty() {
                return Ok(());
            }
            pending = retry;
        }
        Err(PublishError::Rejected {
            count: pending.len(),
            details: last_errors.join("; "),
        })
    }
}

fn entry_size(e: &PutEventsRequestEntry) -> usize {
    e.detail().map_or(0, str::len)
        + e.detail_type().map_or(0, str::len)
        + e.source().map_or(0, str::len)
        + e.resources().iter().map(String::len).sum::<usize>()
        + 14 // time
}

/// Splits entries into PutEvents calls by count and size.
pub fn batches(
    entries: Vec<PutEventsRequestEntry>,
) -> Result<Vec<Vec<PutEventsRequestEntry>>, PublishError> {
    let mut out: Vec<Vec<PutEventsRequestEntry>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let size = entry_size(&e);
        if size > MAX_BYTES_PER_CALL {
            return Err(PublishError::TooLarge {
                detail_type: e.detail_type().unwrap_or("?").to_string(),
                size,
            });
        }
        if current.len() == MAX_ENTRIES_PER_CALL || bytes + size > MAX_BYTES_PER_CALL {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(e);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

impl PublishEvents for EventBridgePublisher {
    async fn publish(&self, events: &[SuiteEvent]) -> Result<(), PublishError> {
        let entries = events.iter().map(|e| self.entry(e)).collect();
        for batch in batches(entries)? {
            self.put_batch(batch).await?;
        }
        for e in events {
            tracing::info!(detail_type = e.detail_type(), bus = %self.bus_name, "published suite event");
        }
        Ok(())
    }
}

/// An in-memory publisher for unit tests of handlers.
#[derive(Default)]
pub struct RecordingPublisher {
    pub events: std::sync::Mutex<Vec<SuiteEvent>>,
}

impl RecordingPublisher {
    pub fn taken(&self) -> Vec<SuiteEvent> {
        self.events
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl PublishEvents for RecordingPublisher {
    async fn publish(&self, events: &[SuiteEvent]) -> Result<(), PublishError> {
        if let Ok(mut v) = self.events.lock() {
            v.extend_from_slice(events);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::suite::IdleSweepCompleted;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn entry(detail: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type("T")
            .detail(detail)
            .build()
    }

    #[test]
    fn batches_by_count_and_size() {
        let b = batches((0..23).map(|_| entry("{}")).collect()).unwrap();
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
        let big = "x".repeat(100 * 1024);
        let b = batches((0..3).map(|_| entry(&big)).collect()).unwrap();
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        let huge = "x".repeat(300 * 1024);
        assert!(matches!(
            batches(vec![entry(&huge)]),
            Err(PublishError::TooLarge { .. })
        ));
    }

    fn sweep() -> SuiteEvent {
        IdleSweepCompleted::default().into()
    }

    #[tokio::test]
    async fn failed_entries_are_retried_then_succeed() {
        let first = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(PutEventsResultEntry::builder().event_id("1").build())
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("InternalFailure")
                        .error_message("try again")
                        .build(),
                )
                .build()
        });
        let second = mock!(aws_sdk_eventbridge::Client::put_events)
            .match_requests(|r| r.entries().len() == 1)
            .then_output(|| {
                PutEventsOutput::builder()
                    .failed_entry_count(0)
                    .entries(PutEventsResultEntry::builder().event_id("2").build())
                    .build()
            });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&first, &second]);
        let publisher = EventBridgePublisher::new(client, "bus");
        publisher.publish(&[sweep(), sweep()]).await.unwrap();
        assert_eq!(first.num_calls(), 1);
        assert_eq!(second.num_calls(), 1);
    }

    #[tokio::test]
    async fn entries_that_keep_failing_are_reported() {
        let always = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("InternalFailure")
                        .error_message("no")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&always]);
        let err = EventBridgePublisher::new(client, "bus")
            .publish(&[sweep()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, PublishError::Rejected { count: 1, .. }),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(always.num_calls(), 1 + ENTRY_RETRY_ROUNDS as usize);
    }
}
