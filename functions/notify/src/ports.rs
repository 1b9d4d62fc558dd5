//! The ports notify talks through: the topic alerts go to and the model registry that enriches them.
//! Adapters in `adapters/` wrap one SDK client each; tests use in-memory fakes.

use std::future::Future;

use crate::error::{PublishError, RegistryError};
use crate::model_package::PackageDetails;
use crate::render::OutgoingMessage;

/// Publishes one alert; returns the message id.
pub trait AlertPublisher: Send + Sync {
    fn publish(
        &self,
        message: &OutgoingMessage,
    ) -> impl Future<Output = Result<String, PublishError>> + Send;
}

/// Reads model packages.
pub trait ModelRegistry: Send + Sync {
    /// `DescribeModelPackage` of one version.
    fn describe(
        &self,
        model_package_arn: &str,
    ) -> impl Future<Output = Result<PackageDetails, RegistryError>> + Send;

    /// The most recently created Approved version of `group` other than `excluding_arn`, described.
    fn latest_approved(
        &self,
        group: &str,
        excluding_arn: &str,
    ) -> impl Future<Output = Result<Option<PackageDetails>, RegistryError>> + Send;
}
