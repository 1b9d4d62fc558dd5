//! What starts idle-shutdown: the schedule (a classic EventBridge `Scheduled Event`), a run request (EventBridge
//! Scheduler's `Input`, or a hand-written `{"dryRun": true, ...}` from `aws lambda invoke` / `cargo lambda invoke`),
//! or a question to the spend ledger (`{"report": "spend", "month": "2026-12"}`). The run request type itself is
//! shared with provision-users (`studio_ops_shared::events::schedule`); this module reads an invocation into the one
//! [`Trigger`] the handler dispatches on.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::events::schedule::{self, RunRequest};
use studio_ops_shared::events::{EventError, detail_type, from_value};

use crate::ledger::parse_month;

/// `{"report": "spend", "month": "2026-12", "domainId": "d-..."}`: the month's spend per user, space and domain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpendRequest {
    /// Only `spend` so far.
    pub report: String,
    /// `2026-12`; absent: the current month.
    #[serde(default)]
    pub month: Option<String>,
    /// Limit the report to one Studio domain.
    #[serde(default)]
    pub domain_id: Option<String>,
}

/// One invocation of idle-shutdown.
/// `{"digest": "weekly"}` from the weekly schedule; a manual run may name the week and ask for a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigestRequest {
    /// Only `weekly` so far.
    pub digest: String,
    /// `2026-W49`; absent: the last full week.
    #[serde(default)]
    pub week: Option<String>,
    /// Build the digests and answer them; send nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// When the schedule fired (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`): the week is the last full
    /// one before it, so that a retried or redriven delivery still sends its own week.
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

impl DigestRequest {
    pub fn scheduled_at(&self) -> Option<jiff::Timestamp> {
        self.scheduled_time.as_deref().and_then(|t| t.parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The classic schedule (or an empty invocation): a full sweep of the configured scope.
    Scheduled,
    /// A run request, with its optional limits (dry run, one domain, one user).
    Request(RunRequest),
    /// The spend report of a month: reads the ledger, changes nothing.
    SpendReport(SpendRequest),
    /// The weekly digests: reads the ledger, sends each digest once.
    Digest(DigestRequest),
}

impl Trigger {
    /// Reads an invocation; anything that is neither the schedule nor a valid request is refused, naming the field
    /// (a typo such as `dryrun` must not silently turn a preview into a real run).
    pub fn parse(event: &Value) -> Result<Self, EventError> {
        if event.is_null() || detail_type(event) == Some(schedule::DETAIL_TYPE) {
            return Ok(Self::Scheduled);
        }
        if event.get("digest").is_some() {
            let request: DigestRequest = from_value("digest request", event)?;
            if request.digest != "weekly" {
                return Err(EventError::new(
                    "digest request",
                    "digest",
                    format!("the only digest is \"weekly\", found {:?}", request.digest),
                ));
            }
            if let Some(week) = &request.week
                && crate::weekly::Week::parse(week).is_none()
            {
                return Err(EventError::new(
                    "digest request",
                    "week",
                    format!("expected an ISO week such as \"2026-W49\", found {week:?}"),
                ));
            }
            if let Some(at) = &request.scheduled_time
                && request.scheduled_at().is_none()
            {
                return Err(EventError::new(
                    "digest request",
                    "scheduledTime",
                    format!("expected a time such as \"2026-12-07T07:00:00Z\", found {at:?}"),
                ));
            }
            return Ok(Self::Digest(request));
        }
        if event.get("report").is_some() {
            let request: SpendRequest = from_value("spend report request", event)?;
            if request.report != "spend" {
                return Err(EventError::new(
                    "spend report request",
                    "report",
                    format!("the only report is \"spend\", found {:?}", request.report),
                ));
            }
            if let Some(month) = &request.month
                && parse_month(month).is_none()
            {
                return Err(EventError::new(
                    "spend report request",
                    "month",
                    format!("expected a month such as \"2026-12\", found {month:?}"),
                ));
            }
            return Ok(Self::SpendReport(request));
        }
        RunRequest::from_invocation(event).map(Self::Request)
    }

    /// The sweep this trigger asks for (a spend report sweeps nothing: a dry run of its domain, for the scope check).
    pub fn request(&self) -> RunRequest {
        match self {
            Self::Scheduled => RunRequest::default(),
            Self::Request(request) => request.clone(),
            Self::SpendReport(spend) => RunRequest {
                dry_run: true,
                domain_id: spend.domain_id.clone(),
                user_profile_name: None,
            },
            Self::Digest(_) => RunRequest {
                dry_run: true,
                ..RunRequest::default()
            },
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

    #[test]
    fn a_spend_report_request_is_read_strictly() {
        let Trigger::SpendReport(r) = Trigger::parse(&fixture("spend-report.json")).unwrap() else {
            panic!("not a spend report")
        };
        assert_eq!(r.month.as_deref(), Some("2026-12"));
        assert!(Trigger::parse(&json!({"report": "spend"})).is_ok());
        for (bad, path) in [
            (json!({"report": "costs"}), "report"),
            (json!({"report": "spend", "month": "2026-13"}), "month"),
            (json!({"report": "spend", "month": "December"}), "month"),
        ] {
            let err = Trigger::parse(&bad).unwrap_err();
            assert_eq!(err.path, path, "{bad}: {}", err.reason);
        }
        let err = Trigger::parse(&json!({"report": "spend", "dryRun": true})).unwrap_err();
        assert!(err.reason.contains("dryRun"), "{}", err.reason);
    }

    #[test]
    fn a_digest_request_is_read_strictly() {
        let Trigger::Digest(weekly) = Trigger::parse(&fixture("weekly-digest.json")).unwrap()
        else {
            panic!("not a digest")
        };
        assert_eq!((weekly.week.clone(), weekly.dry_run), (None, false));
        assert_eq!(
            weekly.scheduled_at().map(|t| t.to_string()).as_deref(),
            Some("2026-12-07T07:00:00Z")
        );
        let Trigger::Digest(manual) =
            Trigger::parse(&fixture("manual-digest-dry-run.json")).unwrap()
        else {
            panic!("not a digest")
        };
        assert_eq!(
            (manual.week.as_deref(), manual.dry_run),
            (Some("2026-W49"), true)
        );
        for (bad, path) in [
            (json!({"digest": "daily"}), "digest"),
            (json!({"digest": "weekly", "week": "2026-49"}), "week"),
            (json!({"digest": "weekly", "week": "2026-W60"}), "week"),
            (json!({"digest": "weekly", "week": "2026-W+1"}), "week"),
            (
                json!({"digest": "weekly", "scheduledTime": "<aws.scheduler.scheduled-time>"}),
                "scheduledTime",
            ),
        ] {
            let err = Trigger::parse(&bad).unwrap_err();
            assert_eq!(err.path, path, "{bad}: {}", err.reason);
        }
        // A typo must not turn a dry run into a real one.
        let err = Trigger::parse(&json!({"digest": "weekly", "dryrun": true})).unwrap_err();
        assert!(err.reason.contains("dryrun"), "{}", err.reason);
    }
}
