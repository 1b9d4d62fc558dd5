//! The use case: the one alert a trigger that passed the policy becomes, delivered. Enrich (a model-package
//! change, from the registry) → say it (`model_package` / `suite_alerts`) → render the SNS message → publish.
//! It sees the ports only; the handler decides whether it runs at all and records that it did.

use studio_ops_shared::AwsCallError;

use crate::content::Alert;
use crate::context::AlertContext;
use crate::model_package::{self, Enrichment};
use crate::ports::{AlertPublisher, ModelRegistry};
use crate::render;
use crate::suite_alerts;
use crate::trigger::{ModelPackageStateChange, Trigger};

/// What the use case talks through.
pub struct Channels<'a, P, R> {
    pub publisher: &'a P,
    pub registry: &'a R,
}

/// Builds, renders and publishes the alert for `trigger`; returns the topic's message id. Only the publish can
/// fail: the registry's answers are optional.
pub async fn send<P: AlertPublisher, R: ModelRegistry>(
    channels: Channels<'_, P, R>,
    trigger: &Trigger,
    ctx: &AlertContext,
    subject_prefix: &str,
) -> Result<String, AwsCallError> {
    let enrichment = match trigger {
        Trigger::ModelPackage(change) => enrich(channels.registry, change).await,
        Trigger::Suite(_) => Enrichment::default(),
    };
    let alert = alert_for(trigger, &enrichment, ctx);
    let message = render::render(&alert, subject_prefix);
    channels.publisher.publish(&message).await
}

/// The alert a trigger becomes (pure: the registry's answers come in `enrichment`).
pub fn alert_for(trigger: &Trigger, enrichment: &Enrichment, ctx: &AlertContext) -> Alert {
    match trigger {
        Trigger::ModelPackage(change) => {
            model_package::alert(change, model_package::classify(change), enrichment, ctx)
        }
        Trigger::Suite(event) => suite_alerts::alert(event, ctx),
    }
}

/// Registry details and the approved version to compare with; failures leave the alert with what the event
/// carries and a note saying so.
pub async fn enrich<R: ModelRegistry>(
    registry: &R,
    change: &ModelPackageStateChange,
) -> Enrichment {
    let arn = &change.model_package_arn;
    let mut enrichment = Enrichment::default();
    match registry.describe(arn).await {
        Ok(d) => enrichment.described = Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "model package details unavailable");
            enrichment.problem = Some(problem(&e));
        }
    }
    let group = enrichment
        .described
        .as_ref()
        .and_then(|d| d.group.clone())
        .or_else(|| model_package::group_of(change));
    if let Some(group) = group {
        match registry.latest_approved(&group, arn).await {
            Ok(b) => enrichment.baseline = b,
            Err(e) => {
                tracing::warn!(error = %e, "approved version to compare with unavailable");
                enrichment.problem.get_or_insert(problem(&e));
            }
        }
    }
    enrichment
}

/// How the alert's note names a failed registry call: `DescribeModelPackage <arn>: <code>: <message>` (the
/// registry puts the target first in the message).
fn problem(error: &AwsCallError) -> String {
    format!("{} {}", error.operation, error.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_registry_call_is_noted_with_its_operation_and_target() {
        let mut e = AwsCallError::service("ListModelPackages", "ThrottlingException", "slow down");
        e.message = format!("churn-xgboost: {}", e.message);
        assert_eq!(
            problem(&e),
            "ListModelPackages churn-xgboost: ThrottlingException: slow down"
        );
    }
}
