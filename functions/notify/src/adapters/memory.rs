//! In-memory fakes of the ports, beside the adapters they imitate: a topic that records what it is given (and
//! can fail its next publishes) and a registry holding described packages (or down). Used by the crate's unit
//! tests; they answer failures as the real adapters do (an `AwsCallError`, the target first in the message).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use studio_ops_shared::AwsCallError;

use super::sagemaker::about;
use crate::model_package::PackageDetails;
use crate::ports::{AlertPublisher, ModelRegistry};
use crate::render::OutgoingMessage;

/// Records what would be published; fails the next `fail_next(n)` publishes with a throttling error.
#[derive(Debug, Default)]
pub struct MemoryTopic {
    sent: Mutex<Vec<OutgoingMessage>>,
    failures: AtomicUsize,
}

impl MemoryTopic {
    /// Makes the next `n` publishes fail (as SNS does when it throttles past the SDK's retries).
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// Everything published so far, in order.
    pub fn sent(&self) -> Vec<OutgoingMessage> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AlertPublisher for MemoryTopic {
    async fn publish(&self, message: &OutgoingMessage) -> Result<String, AwsCallError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AwsCallError::service(
                "Publish",
                "Throttled",
                "rate exceeded",
            ));
        }
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.push(message.clone());
        Ok(format!("m-{}", sent.len()))
    }
}

/// A registry holding described packages by ARN; a registry that is `down` fails every call.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    packages: BTreeMap<String, PackageDetails>,
    down: bool,
    calls: AtomicUsize,
}

impl MemoryRegistry {
    pub fn with(packages: impl IntoIterator<Item = PackageDetails>) -> Self {
        Self {
            packages: packages.into_iter().map(|p| (p.arn.clone(), p)).collect(),
            ..Self::default()
        }
    }

    /// A registry every call of which fails (throttled past the SDK's retries).
    pub fn down() -> Self {
        Self {
            down: true,
            ..Self::default()
        }
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self, operation: &'static str, target: &str) -> Result<(), AwsCallError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down {
            return Err(about(
                AwsCallError::service(operation, "ThrottlingException", "slow down"),
                target,
            ));
        }
        Ok(())
    }
}

impl ModelRegistry for MemoryRegistry {
    async fn describe(&self, arn: &str) -> Result<PackageDetails, AwsCallError> {
        const OPERATION: &str = "DescribeModelPackage";
        self.answer(OPERATION, arn)?;
        self.packages.get(arn).cloned().ok_or_else(|| {
            about(
                AwsCallError::service(OPERATION, "ValidationException", "not found"),
                arn,
            )
        })
    }

    async fn latest_approved(
        &self,
        group: &str,
        excluding: &str,
    ) -> Result<Option<PackageDetails>, AwsCallError> {
        self.answer("ListModelPackages", group)?;
        Ok(self
            .packages
            .values()
            .filter(|p| p.group.as_deref() == Some(group))
            .filter(|p| p.approval_status.as_deref() == Some("Approved") && p.arn != excluding)
            .max_by_key(|p| p.version)
            .cloned())
    }
}

/// The fixtures of `events/notify/`, for the unit tests of every module.
#[cfg(test)]
pub mod fixtures {
    use serde_json::Value;

    /// Every fixture, by file name, sorted.
    pub fn fixtures() -> Vec<(String, Value)> {
        let dir = format!("{}/../../events/notify", env!("CARGO_MANIFEST_DIR"));
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                (p.file_name().unwrap().to_string_lossy().to_string(), v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn fixture(name: &str) -> Value {
        fixtures()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
            .1
    }
}
