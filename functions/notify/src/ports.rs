//! The ports notify talks through: the topic alerts go to and the model registry that enriches them, plus the
//! plain data they exchange (`OutgoingMessage` from `render`, `PackageDetails` from `model_package`). Adapters
//! in `adapters/` wrap one SDK client each; `adapters::memory` holds the in-memory fakes. A failed call is
//! always an [`AwsCallError`], once the SDK's own retries are spent.

use std::future::Future;

use studio_ops_shared::AwsCallError;

use crate::model_package::PackageDetails;
use crate::render::OutgoingMessage;

/// Publishes one alert; returns the message id.
pub trait AlertPublisher: Send + Sync {
    fn publish(
        &self,
        message: &OutgoingMessage,
    ) -> impl Future<Output = Result<String, AwsCallError>> + Send;
}

/// Reads model packages. An error's message starts with the package ARN or group it concerns, because the
/// alert's note quotes it and a nested call's target is not the caller's.
pub trait ModelRegistry: Send + Sync {
    /// `DescribeModelPackage` of one version.
    fn describe(
        &self,
        model_package_arn: &str,
    ) -> impl Future<Output = Result<PackageDetails, AwsCallError>> + Send;

    /// The most recently created Approved version of `group` other than `excluding_arn`, described.
    fn latest_approved(
        &self,
        group: &str,
        excluding_arn: &str,
    ) -> impl Future<Output = Result<Option<PackageDetails>, AwsCallError>> + Send;
}
