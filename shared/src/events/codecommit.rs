//! "CodeCommit Repository State Change": a branch or tag was created, updated or deleted.

use serde::{Deserialize, Serialize};

pub const DETAIL_TYPE: &str = "CodeCommit Repository State Change";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStateChange {
    /// `referenceCreated`, `referenceUpdated` or `referenceDeleted`.
    pub event: String,
    pub repository_name: String,
    #[serde(default)]
    pub repository_id: Option<String>,
    /// `branch` or `tag`.
    pub reference_type: String,
    pub reference_name: String,
    #[serde(default)]
    pub reference_full_name: Option<String>,
    /// The new tip (absent on deletes).
    #[serde(default)]
    pub commit_id: Option<String>,
    /// The previous tip (absent on a new branch).
    #[serde(default)]
    pub old_commit_id: Option<String>,
    #[serde(default)]
    pub caller_user_arn: Option<String>,
}

impl RepositoryStateChange {
    pub fn is_branch_push(&self) -> bool {
        self.reference_type == "branch"
            && matches!(self.event.as_str(), "referenceCreated" | "referenceUpdated")
    }

    pub fn is_new_branch(&self) -> bool {
        self.event == "referenceCreated" || self.old_commit_id.is_none()
    }
}
