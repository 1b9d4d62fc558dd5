//! What starts a sweep: the schedule (a classic EventBridge `Scheduled Event`) or a run request (EventBridge
//! Scheduler's `Input`, or a hand-written `{"dryRun": true, ...}` from `aws lambda invoke` / `cargo lambda invoke`).
//! The request type itself is shared with provision-users (`studio_ops_shared::events::schedule`); this module
//! reads an invocation into the one [`Trigger`] the handler dispatches on.

use serde_json::Value;
use studio_ops_shared::events::schedule::{self, RunRequest};
use studio_ops_shared::events::{EventError, detail_type};

/// One invocation of idle-shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The classic schedule (or an empty invocation): a full sweep of the configured scope.
    Scheduled,
    /// A run request, with its optional limits (dry run, one domain, one user).
    Request(RunRequest),
}

impl Trigger {
    /// Reads an invocation; anything that is neither the schedule nor a valid request is refused, naming the field
    /// (a typo such as `dryrun` must not silently turn a preview into a real run).
    pub fn parse(event: &Value) -> Result<Self, EventError> {
        if event.is_null() || detail_type(event) == Some(schedule::DETAIL_TYPE) {
            return Ok(Self::Scheduled);
        }
        RunRequest::from_invocation(event).map(Self::Request)
    }

    /// The sweep this trigger asks for.
    pub fn request(&self) -> RunRequest {
        match self {
            Self::Scheduled => RunRequest::default(),
            Self::Request(request) => request.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::fixture;
    use serde_json::json;

    fn request(name: &str) -> RunRequest {
        Trigger::parse(&fixture(name)).unwrap().request()
    }

    #[test]
    fn fixtures_parse() {
        assert_eq!(
            Trigger::parse(&fixture("scheduled-event.json")).unwrap(),
            Trigger::Scheduled
        );
        assert!(!request("scheduled-event.json").dry_run);
        let manual = request("manual-dry-run.json");
        assert!(manual.dry_run);
        assert_eq!(manual.domain_id.as_deref(), Some("d-studioops0001"));
        let user = request("manual-user-dry-run.json");
        assert_eq!(user.user_profile_name.as_deref(), Some("ana"));
        assert!(request("scheduler-input.json") == RunRequest::default());
    }

    #[test]
    fn an_empty_invocation_is_the_schedule_and_a_typo_is_refused() {
        assert_eq!(Trigger::parse(&Value::Null).unwrap(), Trigger::Scheduled);
        let err = Trigger::parse(&json!({"dryrun": true})).unwrap_err();
        assert!(err.reason.contains("dryrun"), "{}", err.reason);
    }
}
