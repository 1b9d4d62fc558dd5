//! Names and tags studio-ops gives SageMaker resources: deterministic job names (model + short commit) so a
//! duplicate push is a no-op, the tags that mark a job as ours, and the sanitising SageMaker's patterns need.

use sha2::{Digest, Sha256};
use studio_ops_shared::names::{SHORT_COMMIT, short_commit};

/// SageMaker entity names (`TrainingJobName`, `ModelPackageGroupName`, ...) are at most 63 characters.
pub const MAX_ENTITY_NAME: usize = 63;
/// Longest model folder name a manifest may have, so that `<model>-<short commit>` always fits.
pub const MAX_MODEL_NAME: usize = 48;

/// Tag keys studio-ops puts on every training job it starts; `MANAGED_BY` = `MANAGED_BY_VALUE` marks it ours.
pub mod tag {
    pub const MANAGED_BY: &str = "studio-ops:managed-by";
    pub const MANAGED_BY_VALUE: &str = "studio-ops";
    pub const MODEL: &str = "studio-ops:model";
    pub const REPOSITORY: &str = "studio-ops:repository";
    pub const BRANCH: &str = "studio-ops:branch";
    pub const COMMIT: &str = "studio-ops:commit";
    pub const AUTHOR: &str = "studio-ops:author";
    pub const KIND: &str = "studio-ops:kind";
    pub const EXPERIMENT: &str = "studio-ops:experiment";
    pub const INFERENCE_IMAGE: &str = "studio-ops:inference-image";
    pub const CONTENT_TYPES: &str = "studio-ops:content-types";
    pub const RESPONSE_TYPES: &str = "studio-ops:response-types";
    /// The job's MLflow run and experiment ids, set when the run was opened before the job.
    pub const MLFLOW_RUN_ID: &str = "studio-ops:mlflow-run-id";
    pub const MLFLOW_EXPERIMENT_ID: &str = "studio-ops:mlflow-experiment-id";
    /// On a model package: a digest of what it serves (image and model data), which users cannot set or change
    /// (no `studio-ops:*` tag but keep-alive): merge-to-approve approves a version only while it still matches.
    pub const MODEL_DIGEST: &str = "studio-ops:model-digest";
}

/// True when `name` matches SageMaker's entity-name pattern `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,max-1}`.
pub fn is_entity_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// True when a model folder name is acceptable: lowercase letters, digits and single hyphens, at most
/// `MAX_MODEL_NAME` characters, starting and ending with a letter or digit.
pub fn is_model_name(name: &str) -> bool {
    is_entity_name(name, MAX_MODEL_NAME)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.contains("--")
}

/// The commit part of a job name: the commit as people read it (`studio_ops_shared::names::short_commit`), or
/// `0000000` for anything that is not a commit id, so that a job name is always valid.
pub fn job_commit(commit_id: &str) -> String {
    short_commit(commit_id).unwrap_or_else(|| "0".repeat(SHORT_COMMIT))
}

/// Lowercase letters, digits and single hyphens from `text`, at most `max` characters, never empty.
fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("model");
    }
    out
}

/// The training job (and experiment trial) name for a model at a commit: `<model>-<short commit>`. The
/// same push always gives the same name, so SageMaker itself refuses a duplicate (`ResourceInUse`).
/// Valid model names pass through unchanged; anything else is reduced to a valid name.
pub fn job_name(model: &str, commit_id: &str) -> String {
    let short = job_commit(commit_id);
    let room = MAX_ENTITY_NAME - short.len() - 1;
    format!("{}-{short}", slug(model, room))
}

/// The `ClientToken` of `CreateModelPackage` for a job: SageMaker's own guard against a second version
/// from the same job (`[a-zA-Z0-9-]{1,36}`).
pub fn client_token(training_job_arn: &str) -> String {
    hex::encode(Sha256::digest(training_job_arn.as_bytes()))[..32].to_string()
}

/// A tag value SageMaker accepts (`[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, at most 256 characters): other characters
/// become `_`.
pub fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// The digest of what a model package serves: its inference image and model data.
pub fn model_digest(image: &str, model_data_url: &str) -> String {
    let mut h = hex::encode(Sha256::digest(
        format!("{image}\n{model_data_url}").as_bytes(),
    ));
    h.truncate(32);
    h
}

/// The marker a model package's description carries so that a duplicate registration finds it.
pub fn registration_marker(training_job_name: &str) -> String {
    format!("[training job {training_job_name}]")
}

/// The training job a description's marker names, if it carries one.
pub fn job_of_marker(description: &str) -> Option<String> {
    let start = description.find("[training job ")? + "[training job ".len();
    let rest = &description[start..];
    let name = &rest[..rest.find(']')?];
    is_entity_name(name, MAX_ENTITY_NAME).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_as_its_job() {
        let text = format!(
            "Churn model {} from main",
            registration_marker("churn-xgboost-1a2b3c4")
        );
        assert_eq!(
            job_of_marker(&text).as_deref(),
            Some("churn-xgboost-1a2b3c4")
        );
        assert_eq!(job_of_marker("no marker"), None);
        assert_eq!(job_of_marker("[training job not a name!]"), None);
        assert_eq!(job_of_marker("[training job churn"), None);
    }
    use proptest::prelude::*;

    #[test]
    fn job_names() {
        assert_eq!(
            job_name("churn-xgboost", "f485fcc95a795517f279d0a877227e51208b0dfc"),
            "churn-xgboost-f485fcc"
        );
        assert_eq!(
            job_name("Churn_XGBoost!", "ABCDEF1234"),
            "churn-xgboost-abcdef1"
        );
        assert_eq!(job_name("", "zz"), "model-0000000");
        let long = "a".repeat(100);
        let n = job_name(&long, "1234567890");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("-1234567"));
    }

    #[test]
    fn model_names() {
        assert!(is_model_name("churn-xgboost"));
        assert!(is_model_name("arima2"));
        for bad in [
            "",
            "-a",
            "a-",
            "Churn",
            "a--b",
            "a_b",
            "a.b",
            "ä",
            &"a".repeat(49),
        ] {
            assert!(!is_model_name(bad), "{bad}");
        }
    }

    #[test]
    fn tag_values_and_tokens() {
        assert_eq!(
            tag_value("ana.silva+ml@example.com"),
            "ana.silva+ml@example.com"
        );
        assert_eq!(tag_value("feature/#42 (wip)"), "feature/_42 _wip_");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
        let t = client_token("arn:aws:sagemaker:us-east-1:123456789012:training-job/a-1234567");
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    proptest! {
        #[test]
        fn job_names_are_always_valid_and_deterministic(model in ".{0,120}", commit in "[0-9a-fA-F]{7,40}") {
            let n = job_name(&model, &commit);
            prop_assert!(is_entity_name(&n, MAX_ENTITY_NAME), "{n:?}");
            prop_assert!(n.ends_with(&job_commit(&commit)));
            prop_assert_eq!(n.clone(), job_name(&model, &commit));
        }

        #[test]
        fn valid_model_names_survive_unchanged(model in "[a-z0-9]([a-z0-9]|-[a-z0-9]){0,23}", commit in "[0-9a-f]{40}") {
            prop_assume!(is_model_name(&model));
            let n = job_name(&model, &commit);
            prop_assert_eq!(n, format!("{model}-{}", &commit[..7]));
        }

        #[test]
        fn different_commits_give_different_names(model in "[a-z]{1,20}", a in "[0-9a-f]{40}", b in "[0-9a-f]{40}") {
            prop_assume!(a[..7] != b[..7]);
            prop_assert_ne!(job_name(&model, &a), job_name(&model, &b));
        }
    }
}
