//! provision-users handler: a membership event, the daily schedule or a manual invoke → a reconcile.

use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::identity::{self, CloudTrailCall, MembershipSignal};
use studio_ops_shared::events::schedule::{self, RunRequest};
use studio_ops_shared::events::{EventError, detail_type, event_id, parse_envelope};

use crate::config::Config;
use crate::error::HandlerError;

/// What invoked the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Membership(MembershipSignal),
    Run(RunRequest),
}

pub fn parse_trigger(event: &Value) -> Result<Trigger, EventError> {
    match detail_type(event) {
        Some(identity::DETAIL_TYPE) => {
            let envelope = parse_envelope::<CloudTrailCall>(identity::DETAIL_TYPE, event)?;
            envelope.detail.membership_signal().map(Trigger::Membership)
        }
        Some(schedule::DETAIL_TYPE) | None => RunRequest::from_invocation(event).map(Trigger::Run),
        Some(other) => Err(EventError::new(
            "provision-users",
            "detail-type",
            format!("unexpected detail-type {other:?}"),
        )),
    }
}

pub struct Handler {
    config: Config,
}

impl Handler {
    pub fn new(config: Config, _sdk: &aws_config::SdkConfig) -> Self {
        Self { config }
    }

    pub async fn handle(&self, event: Value, _context: Context) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event)?;
        tracing::info!(event_id = event_id(&event), domain_id = %self.config.domain_id, identity_store_id = %self.config.identity_store_id, trigger = ?trigger, "provision-users invoked");
        Ok(json!({"function": "provision-users", "trigger": format!("{trigger:?}")}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/provision-users/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn every_fixture_parses() {
        assert!(matches!(
            parse_trigger(&fixture("identitystore-create-group-membership.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Added { .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("identitystore-delete-group-membership.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Removed { group_id: None, .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("sso-directory-add-member-to-group.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Added { .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("sso-directory-remove-member-from-group.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Removed {
                group_id: Some(_),
                ..
            })
        ));
        assert_eq!(
            parse_trigger(&fixture("identitystore-scim-patch-group.json")).unwrap(),
            Trigger::Membership(MembershipSignal::GroupPatched { group_id: None })
        );
        assert_eq!(
            parse_trigger(&fixture("scheduled-event.json")).unwrap(),
            Trigger::Run(RunRequest::default())
        );
        assert!(matches!(
            parse_trigger(&fixture("manual-dry-run.json")).unwrap(),
            Trigger::Run(RunRequest { dry_run: true, .. })
        ));
    }

    #[test]
    fn malformed_event_names_the_field() {
        let mut event = fixture("identitystore-create-group-membership.json");
        event["detail"]["eventSource"] = json!(42);
        let err = parse_trigger(&event).unwrap_err();
        assert_eq!(err.path, "detail.eventSource");
        let err =
            parse_trigger(&json!({"detail-type": "Object Created", "detail": {}})).unwrap_err();
        assert_eq!(err.path, "detail-type");
    }
}
