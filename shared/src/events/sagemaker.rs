//! SageMaker's own events: "SageMaker Model Package State Change" (the training-job change is train-on-push's
//! alone and lives in its `trigger` module).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::LenientTime;

pub const MODEL_PACKAGE_DETAIL_TYPE: &str = "SageMaker Model Package State Change";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ModelPackageStateChange {
    pub model_package_arn: String,
    #[serde(default)]
    pub model_package_group_name: Option<String>,
    #[serde(default)]
    pub model_package_version: Option<u64>,
    /// Pending | InProgress | Completed | Failed | Deleting
    pub model_package_status: String,
    /// Approved | Rejected | PendingManualApproval (absent for unversioned packages)
    #[serde(default)]
    pub model_approval_status: Option<String>,
    #[serde(default)]
    pub approval_description: Option<String>,
    #[serde(default)]
    pub creation_time: Option<LenientTime>,
    #[serde(default)]
    pub last_modified_time: Option<LenientTime>,
    #[serde(default)]
    pub metadata_properties: Option<Value>,
    #[serde(default)]
    pub customer_metadata_properties: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub model_metrics: Option<Value>,
    #[serde(default)]
    pub inference_specification: Option<Value>,
    #[serde(default)]
    pub last_modified_by: Option<Value>,
}
