//! Scheduled and manual invocations: a classic "Scheduled Event", an EventBridge Scheduler `Input`, or a
//! hand-written `{"dryRun": true, ...}` from `aws lambda invoke` / `cargo lambda invoke`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, from_value};

pub const DETAIL_TYPE: &str = "Scheduled Event";

/// A request to run a sweep or a reconcile, with its optional limits.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    /// Report what would be done and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Limit the run to one Studio domain.
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Limit the run to one user profile.
    #[serde(default)]
    pub user_profile_name: Option<String>,
}

impl RunRequest {
    /// Reads a scheduled or manual invocation. A classic scheduled event (`detail-type: Scheduled
    /// Event`) is a plain run; anything else must be a `RunRequest` (unknown keys are refused so that
    /// a typo such as `dryrun` cannot silently turn a preview into a real run).
    pub fn from_invocation(value: &Value) -> Result<Self, EventError> {
        if super::detail_type(value) == Some(DETAIL_TYPE) {
            return Ok(Self::default());
        }
        if value.is_null() {
            return Ok(Self::default());
        }
        // serde would read a JSON array by position (`[true]` as a dry run): only an object is a request.
        if !value.is_object() {
            return Err(EventError::new(
                "manual or scheduled invocation",
                ".",
                "expected a JSON object such as {\"dryRun\": true}",
            ));
        }
        from_value("manual or scheduled invocation", value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classic_scheduled_event_is_a_plain_run() {
        let v = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(
            RunRequest::from_invocation(&v).unwrap(),
            RunRequest::default()
        );
    }

    #[test]
    fn manual_dry_run_and_typos() {
        let r = RunRequest::from_invocation(&json!({"dryRun": true, "domainId": "d-1"})).unwrap();
        assert!(r.dry_run);
        assert_eq!(r.domain_id.as_deref(), Some("d-1"));
        let err = RunRequest::from_invocation(&json!({"dryrun": true})).unwrap_err();
        assert!(
            err.reason.contains("unknown field `dryrun`"),
            "{}",
            err.reason
        );
        let err = RunRequest::from_invocation(&json!({"dryRun": "yes"})).unwrap_err();
        assert_eq!(err.path, "dryRun");
        for not_an_object in [json!([true]), json!(true), json!("dryRun")] {
            let err = RunRequest::from_invocation(&not_an_object).unwrap_err();
            assert!(
                err.reason.starts_with("expected a JSON object"),
                "{}",
                err.reason
            );
        }
    }
}
