//! The model registry over `aws-sdk-sagemaker`: `DescribeModelPackage` and `ListModelPackages`.

use aws_sdk_sagemaker::operation::describe_model_package::DescribeModelPackageOutput;
use aws_sdk_sagemaker::types::{ModelApprovalStatus, ModelPackageSortBy, SortOrder, UserContext};
use aws_smithy_types::date_time::Format;
use studio_ops_shared::{AwsCall, AwsCallError};

use crate::model_package::{Lineage, PackageDetails, user_context_name};
use crate::ports::ModelRegistry;

/// Versions listed per `ListModelPackages` page: the first one that is not the package itself is the answer.
const PAGE_SIZE: i32 = 10;

#[derive(Clone)]
pub struct SageMakerRegistry {
    client: aws_sdk_sagemaker::Client,
}

impl SageMakerRegistry {
    pub fn new(client: aws_sdk_sagemaker::Client) -> Self {
        Self { client }
    }
}

/// The error with the package or group it concerns in front of its message: the alert's note quotes it, and the
/// caller of `latest_approved` does not know which version the nested `DescribeModelPackage` was about.
pub(crate) fn about(mut error: AwsCallError, target: &str) -> AwsCallError {
    error.message = format!("{target}: {}", error.message);
    error
}

fn user_name(user: Option<&UserContext>) -> Option<String> {
    user.and_then(|u| {
        user_context_name(
            u.user_profile_name(),
            u.iam_identity().and_then(|i| i.arn()),
        )
    })
}

/// What notify needs from a `DescribeModelPackage` answer.
pub fn details_from_describe(out: &DescribeModelPackageOutput) -> PackageDetails {
    let meta = out.metadata_properties();
    let lineage = Lineage::read(
        out.customer_metadata_properties().into_iter().flatten(),
        meta.and_then(|m| m.commit_id()),
        meta.and_then(|m| m.repository()),
        meta.and_then(|m| m.generated_by()),
    );
    let container = out
        .inference_specification()
        .and_then(|s| s.containers().first());
    PackageDetails {
        arn: out.model_package_arn().unwrap_or_default().to_string(),
        group: out.model_package_group_name().map(str::to_string),
        version: out
            .model_package_version()
            .and_then(|v| u64::try_from(v).ok()),
        description: out.model_package_description().map(str::to_string),
        approval_status: out.model_approval_status().map(|s| s.as_str().to_string()),
        package_status: out.model_package_status().map(|s| s.as_str().to_string()),
        metrics: lineage.metrics,
        commit: lineage.commit,
        repository: lineage.repository,
        training_job: lineage.training_job,
        author: lineage.author,
        mlflow_run: lineage.mlflow_run,
        mlflow_run_url: lineage.mlflow_run_url,
        modified_by: user_name(out.last_modified_by()),
        approval_description: out.approval_description().map(str::to_string),
        created_by: user_name(out.created_by()),
        domain_id: out
            .last_modified_by()
            .and_then(|u| u.domain_id())
            .or_else(|| out.created_by().and_then(|u| u.domain_id()))
            .map(str::to_string),
        created_at: out
            .creation_time()
            .and_then(|t| t.fmt(Format::DateTime).ok()),
        image: container.and_then(|c| c.image()).map(str::to_string),
        model_data: container
            .and_then(|c| c.model_data_url())
            .map(str::to_string),
        quality_report: out
            .model_metrics()
            .and_then(|m| m.model_quality())
            .and_then(|q| q.statistics())
            .and_then(|s| s.s3_uri())
            .map(str::to_string),
    }
}

impl ModelRegistry for SageMakerRegistry {
    async fn describe(&self, model_package_arn: &str) -> Result<PackageDetails, AwsCallError> {
        let out = self
            .client
            .describe_model_package()
            .model_package_name(model_package_arn)
            .send()
            .await
            .call("DescribeModelPackage")
            .map_err(|e| about(e, model_package_arn))?;
        Ok(details_from_describe(&out))
    }

    async fn latest_approved(
        &self,
        group: &str,
        excluding_arn: &str,
    ) -> Result<Option<PackageDetails>, AwsCallError> {
        let mut pages = self
            .client
            .list_model_packages()
            .model_package_group_name(group)
            .model_approval_status(ModelApprovalStatus::Approved)
            .sort_by(ModelPackageSortBy::CreationTime)
            .sort_order(SortOrder::Descending)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .call("ListModelPackages")
                .map_err(|e| about(e, group))?;
            let other = page
                .model_package_summary_list()
                .iter()
                .filter_map(|s| s.model_package_arn())
                .find(|arn| *arn != excluding_arn);
            if let Some(arn) = other {
                return self.describe(arn).await.map(Some);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemaker::types::{
        IamIdentity, InferenceSpecification, MetadataProperties, MetricsSource, ModelMetrics,
        ModelPackageContainerDefinition, ModelPackageStatus, ModelQuality,
    };
    use aws_smithy_types::DateTime;

    #[test]
    fn describe_answer_becomes_details() {
        let out = DescribeModelPackageOutput::builder()
            .model_package_arn("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2")
            .model_package_group_name("g")
            .model_package_version(2)
            .model_package_description("from commit abc")
            .model_approval_status(ModelApprovalStatus::Approved)
            .model_package_status(ModelPackageStatus::Completed)
            .creation_time(DateTime::from_secs(1_795_000_000))
            .customer_metadata_properties("studio-ops:author", "ana")
            .customer_metadata_properties("studio-ops:metric:validation:auc", "0.9")
            .metadata_properties(
                MetadataProperties::builder()
                    .commit_id("abc")
                    .repository("repo")
                    .generated_by("arn:aws:sagemaker:us-east-1:123456789012:training-job/job-2")
                    .build(),
            )
            .last_modified_by(
                UserContext::builder()
                    .iam_identity(
                        IamIdentity::builder()
                            .arn("arn:aws:sts::123456789012:assumed-role/Reviewer/marta")
                            .build(),
                    )
                    .build(),
            )
            .created_by(
                UserContext::builder()
                    .domain_id("d-1")
                    .user_profile_name("ci")
                    .build(),
            )
            .inference_specification(
                InferenceSpecification::builder()
                    .containers(
                        ModelPackageContainerDefinition::builder()
                            .image("img:1")
                            .model_data_url("s3://b/model.tar.gz")
                            .build(),
                    )
                    .build(),
            )
            .model_metrics(
                ModelMetrics::builder()
                    .model_quality(
                        ModelQuality::builder()
                            .statistics(
                                MetricsSource::builder()
                                    .content_type("application/json")
                                    .s3_uri("s3://b/eval.json")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        let d = details_from_describe(&out);
        assert_eq!(d.group.as_deref(), Some("g"));
        assert_eq!(d.version, Some(2));
        assert_eq!(d.approval_status.as_deref(), Some("Approved"));
        assert_eq!(d.metrics["validation:auc"], 0.9);
        assert_eq!(d.commit.as_deref(), Some("abc"));
        assert_eq!(d.training_job.as_deref(), Some("job-2"));
        assert_eq!(d.author.as_deref(), Some("ana"));
        assert_eq!(d.modified_by.as_deref(), Some("Reviewer/marta"));
        assert_eq!(d.created_by.as_deref(), Some("ci"));
        assert_eq!(d.domain_id.as_deref(), Some("d-1"));
        assert_eq!(d.image.as_deref(), Some("img:1"));
        assert_eq!(d.quality_report.as_deref(), Some("s3://b/eval.json"));
        assert_eq!(d.created_at.as_deref(), Some("2026-11-18T11:06:40Z"));
    }
}
