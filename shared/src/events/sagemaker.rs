//! SageMaker's own events: "SageMaker Training Job State Change".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::LenientTime;

pub const TRAINING_JOB_DETAIL_TYPE: &str = "SageMaker Training Job State Change";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TrainingJobStateChange {
    pub training_job_name: String,
    pub training_job_arn: String,
    /// InProgress | Completed | Failed | Stopping | Stopped
    pub training_job_status: String,
    #[serde(default)]
    pub secondary_status: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub model_artifacts: Option<ModelArtifacts>,
    #[serde(default)]
    pub final_metric_data_list: Option<Vec<MetricDatum>>,
    #[serde(default)]
    pub algorithm_specification: Option<Value>,
    #[serde(default)]
    pub hyper_parameters: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub last_modified_time: Option<LenientTime>,
    #[serde(default)]
    pub training_end_time: Option<LenientTime>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ModelArtifacts {
    #[serde(rename = "S3ModelArtifacts")]
    pub s3_model_artifacts: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDatum {
    pub metric_name: String,
    pub value: f64,
    #[serde(default)]
    pub timestamp: Option<LenientTime>,
}
