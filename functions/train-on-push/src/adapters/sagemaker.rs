//! The training and Model Registry ports over SageMaker: CreateExperiment/CreateTrial (idempotent),
//! CreateTrainingJob (a duplicate name is `AlreadyExists`), DescribeTrainingJob, ListTags (every page),
//! DescribeModelPackageGroup/CreateModelPackageGroup, ListModelPackages (every page) and CreateModelPackage.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, CheckpointConfig, CompressionType, DataSource,
    ExperimentConfig, InferenceSpecification, MetadataProperties, MetricDefinition, MlflowConfig,
    ModelApprovalStatus, ModelPackageContainerDefinition, ModelPackageSortBy, ModelPackageSummary,
    OutputDataConfig, ResourceConfig, S3DataDistribution, S3DataSource, S3DataType, SortOrder,
    StoppingCondition, Tag, TrainingInputMode, TrainingInstanceType, VpcConfig,
};

use studio_ops_shared::{AwsCall, AwsCallError, ErrorClass};

use crate::naming;
use crate::plan::{ModelPackageSpec, Tracking, TrainingJobSpec};
use crate::ports::{
    JobCreation, JobDescription, ModelRegistry, ModelVersion, Training, VersionDetail,
    VersionSummary,
};

/// Is this "it exists already"? SageMaker says `ResourceInUse` for jobs and `ValidationException ... already
/// exists` for experiments, trials and groups.
fn already_exists(code: Option<&str>, message: &str) -> bool {
    code == Some("ResourceInUse")
        || code == Some("ResourceInUseException")
        || (code == Some("ValidationException") && message.contains("already exist"))
}

/// Is this "there is no such resource"?
fn not_found(code: Option<&str>, message: &str) -> bool {
    code == Some("ResourceNotFound")
        || (code == Some("ValidationException")
            && (message.contains("not found")
                || message.contains("Could not find")
                || message.contains("does not exist")))
}

fn tags(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[derive(Clone)]
pub struct SageMakerTraining {
    client: Client,
}

impl SageMakerTraining {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn channel(c: &crate::plan::ChannelSpec) -> Channel {
    Channel::builder()
        .channel_name(&c.name)
        .data_source(
            DataSource::builder()
                .s3_data_source(
                    S3DataSource::builder()
                        .s3_data_type(S3DataType::S3Prefix)
                        .s3_uri(&c.s3_uri)
                        .s3_data_distribution_type(S3DataDistribution::from(
                            c.distribution.as_str(),
                        ))
                        .build(),
                )
                .build(),
        )
        .set_content_type(c.content_type.clone())
        .compression_type(CompressionType::from(c.compression.as_str()))
        .set_input_mode(c.input_mode.as_deref().map(TrainingInputMode::from))
        .build()
}

impl Training for SageMakerTraining {
    async fn ensure_experiment(&self, name: &str, description: &str) -> Result<(), AwsCallError> {
        match self
            .client
            .create_experiment()
            .experiment_name(name)
            .description(description)
            .send()
            .await
            .call("CreateExperiment")
        {
            Ok(_) => Ok(()),
            Err(e) if already_exists(e.code.as_deref(), &e.message) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ensure_trial(&self, trial: &str, experiment: &str) -> Result<(), AwsCallError> {
        match self
            .client
            .create_trial()
            .trial_name(trial)
            .experiment_name(experiment)
            .send()
            .await
            .call("CreateTrial")
        {
            Ok(_) => Ok(()),
            Err(e) if already_exists(e.code.as_deref(), &e.message) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_training_job(
        &self,
        spec: &TrainingJobSpec,
    ) -> Result<JobCreation, AwsCallError> {
        let metric_definitions: Vec<MetricDefinition> = spec
            .metric_definitions
            .iter()
            .map(|m| {
                MetricDefinition::builder()
                    .name(&m.name)
                    .regex(&m.regex)
                    .build()
            })
            .collect();
        let hyperparameters: HashMap<String, String> = spec
            .hyperparameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let request = self
            .client
            .create_training_job()
            .training_job_name(&spec.name)
            .role_arn(&spec.role_arn)
            .algorithm_specification(
                AlgorithmSpecification::builder()
                    .training_image(&spec.training_image)
                    .training_input_mode(TrainingInputMode::File)
                    .set_metric_definitions(
                        (!metric_definitions.is_empty()).then_some(metric_definitions),
                    )
                    .build(),
            )
            .set_hyper_parameters((!hyperparameters.is_empty()).then_some(hyperparameters))
            .set_input_data_config(Some(spec.channels.iter().map(channel).collect()))
            .output_data_config(
                OutputDataConfig::builder()
                    .s3_output_path(&spec.output_s3_uri)
                    .set_kms_key_id(spec.output_kms_key.clone())
                    .build(),
            )
            .resource_config(
                ResourceConfig::builder()
                    .instance_type(TrainingInstanceType::from(spec.instance_type.as_str()))
                    .instance_count(i32_of(spec.instance_count))
                    .volume_size_in_gb(i32_of(spec.volume_gb))
                    .set_volume_kms_key_id(spec.volume_kms_key.clone())
                    .build(),
            )
            .vpc_config(
                VpcConfig::builder()
                    .set_subnets(Some(spec.subnets.clone()))
                    .set_security_group_ids(Some(spec.security_groups.clone()))
                    .build(),
            )
            .stopping_condition(
                StoppingCondition::builder()
                    .max_runtime_in_seconds(i32_of(spec.max_runtime_seconds))
                    .set_max_wait_time_in_seconds(
                        spec.spot.as_ref().map(|s| i32_of(s.max_wait_seconds)),
                    )
                    .build(),
            )
            .enable_network_isolation(spec.network_isolation)
            .enable_inter_container_traffic_encryption(spec.inter_container_encryption)
            .enable_managed_spot_training(spec.spot.is_some())
            .set_checkpoint_config(
                spec.spot
                    .as_ref()
                    .and_then(|s| s.checkpoint_s3_uri.as_ref())
                    .map(|uri| CheckpointConfig::builder().s3_uri(uri).build()),
            )
            .set_tags(Some(tags(&spec.tags)));
        // One tracker per job: MLflow names the server, experiment and run; classic the experiment and trial.
        let request = match &spec.tracking {
            Tracking::Mlflow { server_arn } => request.mlflow_config(
                MlflowConfig::builder()
                    .mlflow_resource_arn(server_arn)
                    .mlflow_experiment_name(&spec.experiment)
                    .mlflow_run_name(&spec.name)
                    .build()
                    .map_err(|e| {
                        AwsCallError::other(
                            "CreateTrainingJob",
                            ErrorClass::NonRetryable,
                            e.to_string(),
                        )
                    })?,
            ),
            Tracking::Classic => request.experiment_config(
                ExperimentConfig::builder()
                    .experiment_name(&spec.experiment)
                    .trial_name(&spec.trial)
                    .trial_component_display_name("training")
                    .build(),
            ),
        };
        let result = request.send().await.call("CreateTrainingJob");
        match result {
            Ok(out) => Ok(JobCreation::Created {
                arn: out.training_job_arn().unwrap_or_default().to_string(),
            }),
            Err(e) if already_exists(e.code.as_deref(), &e.message) => {
                Ok(JobCreation::AlreadyExists)
            }
            Err(e) => Err(e),
        }
    }

    async fn describe_training_job(
        &self,
        name: &str,
    ) -> Result<Option<JobDescription>, AwsCallError> {
        let out = match self
            .client
            .describe_training_job()
            .training_job_name(name)
            .send()
            .await
            .call("DescribeTrainingJob")
        {
            Ok(o) => o,
            Err(e) if not_found(e.code.as_deref(), &e.message) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(JobDescription {
            arn: out.training_job_arn().unwrap_or_default().to_string(),
            status: out
                .training_job_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            model_artifacts: out
                .model_artifacts()
                .and_then(|a| a.s3_model_artifacts())
                .map(str::to_string),
            training_image: out
                .algorithm_specification()
                .and_then(|a| a.training_image())
                .map(str::to_string),
            final_metrics: out
                .final_metric_data_list()
                .iter()
                .filter_map(|m| Some((m.metric_name()?.to_string(), f64::from(m.value()?))))
                .collect(),
            failure_reason: out.failure_reason().map(str::to_string),
            instance_type: out
                .resource_config()
                .and_then(|r| r.instance_type())
                .map(|t| t.as_str().to_string()),
            instance_count: out
                .resource_config()
                .and_then(|r| r.instance_count())
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1),
            billable_seconds: out
                .billable_time_in_seconds()
                .and_then(|s| u32::try_from(s).ok()),
            started: out.training_start_time().map(|t| t.secs()),
            ended: out.training_end_time().map(|t| t.secs()),
        }))
    }

    async fn user_profile_exists(&self, domain_id: &str, name: &str) -> Result<bool, AwsCallError> {
        match self
            .client
            .describe_user_profile()
            .domain_id(domain_id)
            .user_profile_name(name)
            .send()
            .await
            .call("DescribeUserProfile")
        {
            Ok(_) => Ok(true),
            Err(e) if not_found(e.code.as_deref(), &e.message) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsCallError> {
        all_tags(&self.client, arn).await
    }
}

/// Every tag of a resource (all pages; a tag without a key is not a tag): a training job's lineage, a model
/// package's marks. train-on-push makes few calls, so no rate limiter sits in front of them.
async fn all_tags(client: &Client, arn: &str) -> Result<BTreeMap<String, String>, AwsCallError> {
    let mut pages = client.list_tags().resource_arn(arn).into_paginator().send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        for t in page.call("ListTags")?.tags() {
            if let Some(k) = t.key() {
                out.insert(k.to_string(), t.value().unwrap_or_default().to_string());
            }
        }
    }
    Ok(out)
}

#[derive(Clone)]
pub struct SageMakerRegistry {
    client: Client,
}

impl SageMakerRegistry {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The version number at the end of a versioned model package ARN (`.../model-package/group/3`).
fn version_of(arn: &str) -> Option<i32> {
    arn.rsplit('/').next().and_then(|v| v.parse().ok())
}

impl SageMakerRegistry {
    /// The group's versions, newest first (`ListModelPackages`, page by page) until `visit` breaks; a group that does
    /// not exist has none.
    async fn newest_first(
        &self,
        group: &str,
        mut visit: impl FnMut(&ModelPackageSummary) -> ControlFlow<()>,
    ) -> Result<(), AwsCallError> {
        let mut pages = self
            .client
            .list_model_packages()
            .model_package_group_name(group)
            .sort_by(ModelPackageSortBy::CreationTime)
            .sort_order(SortOrder::Descending)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page.call("ListModelPackages") {
                Ok(p) => p,
                Err(e) if not_found(e.code.as_deref(), &e.message) => return Ok(()),
                Err(e) => return Err(e),
            };
            for p in page.model_package_summary_list() {
                if visit(p).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl ModelRegistry for SageMakerRegistry {
    async fn ensure_group(
        &self,
        name: &str,
        description: &str,
        tag_pairs: &[(String, String)],
    ) -> Result<(), AwsCallError> {
        match self
            .client
            .describe_model_package_group()
            .model_package_group_name(name)
            .send()
            .await
            .call("DescribeModelPackageGroup")
        {
            Ok(_) => return Ok(()),
            Err(e) if not_found(e.code.as_deref(), &e.message) => {}
            Err(e) => return Err(e),
        }
        match self
            .client
            .create_model_package_group()
            .model_package_group_name(name)
            .model_package_group_description(description)
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await
            .call("CreateModelPackageGroup")
        {
            Ok(_) => Ok(()),
            // Another invocation created it between our two calls.
            Err(e) if already_exists(e.code.as_deref(), &e.message) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn find_version(
        &self,
        group: &str,
        marker: &str,
    ) -> Result<Option<ModelVersion>, AwsCallError> {
        let mut found = None;
        self.newest_first(group, |p| {
            if !p
                .model_package_description()
                .is_some_and(|d| d.contains(marker))
            {
                return ControlFlow::Continue(());
            }
            let arn = p.model_package_arn().unwrap_or_default().to_string();
            found = Some(ModelVersion {
                version: p.model_package_version().or_else(|| version_of(&arn)),
                arn,
            });
            ControlFlow::Break(())
        })
        .await?;
        Ok(found)
    }

    async fn create_version(&self, spec: &ModelPackageSpec) -> Result<ModelVersion, AwsCallError> {
        let metadata: HashMap<String, String> = spec
            .customer_metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let out = self
            .client
            .create_model_package()
            .model_package_group_name(&spec.group)
            .model_package_description(&spec.description)
            .inference_specification(
                InferenceSpecification::builder()
                    .containers(
                        ModelPackageContainerDefinition::builder()
                            .image(&spec.image)
                            .model_data_url(&spec.model_data_url)
                            .build(),
                    )
                    .set_supported_content_types(Some(spec.content_types.clone()))
                    .set_supported_response_mime_types(Some(spec.response_types.clone()))
                    .build(),
            )
            .model_approval_status(ModelApprovalStatus::PendingManualApproval)
            .metadata_properties(
                MetadataProperties::builder()
                    .commit_id(&spec.commit_id)
                    .repository(&spec.repository)
                    .generated_by(&spec.generated_by)
                    .build(),
            )
            .set_customer_metadata_properties(Some(metadata))
            .client_token(&spec.client_token)
            .set_tags(Some(tags(&spec.tags)))
            .send()
            .await
            .call("CreateModelPackage")?;
        let arn = out.model_package_arn().unwrap_or_default().to_string();
        Ok(ModelVersion {
            version: version_of(&arn),
            arn,
        })
    }

    async fn versions(&self, group: &str) -> Result<Vec<VersionSummary>, AwsCallError> {
        let mut out = Vec::new();
        self.newest_first(group, |p| {
            let arn = p.model_package_arn().unwrap_or_default().to_string();
            out.push(VersionSummary {
                version: p.model_package_version().or_else(|| version_of(&arn)),
                status: p
                    .model_approval_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                job: p
                    .model_package_description()
                    .and_then(naming::job_of_marker),
                arn,
            });
            if out.len() >= crate::approval::MAX_VERSIONS {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
        Ok(out)
    }

    async fn version_detail(&self, arn: &str) -> Result<Option<VersionDetail>, AwsCallError> {
        let out = match self
            .client
            .describe_model_package()
            .model_package_name(arn)
            .send()
            .await
            .call("DescribeModelPackage")
        {
            Ok(out) => out,
            Err(e) if not_found(e.code.as_deref(), &e.message) => return Ok(None),
            Err(e) => return Err(e),
        };
        let container = out
            .inference_specification()
            .and_then(|i| i.containers().first());
        let tags = all_tags(&self.client, arn).await?;
        Ok(Some(VersionDetail {
            image: container.and_then(|c| c.image()).map(str::to_string),
            model_data_url: container
                .and_then(|c| c.model_data_url())
                .map(str::to_string),
            tags,
        }))
    }

    async fn approve(&self, arn: &str, description: &str) -> Result<(), AwsCallError> {
        self.client
            .update_model_package()
            .model_package_arn(arn)
            .model_approval_status(ModelApprovalStatus::Approved)
            .approval_description(description)
            .send()
            .await
            .call("UpdateModelPackage")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes() {
        assert!(already_exists(
            Some("ResourceInUse"),
            "Training job names must be unique"
        ));
        assert!(already_exists(
            Some("ValidationException"),
            "Experiment churn already exists"
        ));
        assert!(!already_exists(Some("ValidationException"), "bad role"));
        assert!(not_found(
            Some("ValidationException"),
            "ModelPackageGroup arn:... does not exist."
        ));
        assert!(not_found(
            Some("ValidationException"),
            "Requested resource not found."
        ));
        assert!(!not_found(Some("AccessDeniedException"), "not found"));
        assert_eq!(
            version_of("arn:aws:sagemaker:us-east-1:1:model-package/churn/3"),
            Some(3)
        );
        assert_eq!(
            version_of("arn:aws:sagemaker:us-east-1:1:model-package/x"),
            None
        );
    }
}
