//! What invokes provision-users, typed: Identity Center group-membership calls delivered by CloudTrail ("AWS API
//! Call via CloudTrail", reduced to what they say about a group; since mid-2025 they carry no user names and a
//! delete only a membership id), the daily schedule and a manual run (`RunRequest`, shared with idle-shutdown).
//! `parse_trigger` reads an invocation into one [`Trigger`]; `scope` decides what it asks for.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::events::schedule::{self, RunRequest};
use studio_ops_shared::events::{EventError, detail_type, parse_envelope};

use crate::config::Config;
use crate::error::HandlerError;
use crate::reconcile::Request;

pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
const WHAT: &str = "Identity Center CloudTrail";
/// What CloudTrail writes in place of SCIM values.
pub const MASKED: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// The CloudTrail record in an EventBridge `detail` (only the parts the suite reads).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailCall {
    pub event_source: String,
    pub event_name: String,
    #[serde(default)]
    pub aws_region: Option<String>,
    #[serde(default, rename = "eventID")]
    pub event_id: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub request_parameters: Option<Value>,
    #[serde(default)]
    pub response_elements: Option<Value>,
}

/// What a membership call tells the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipSignal {
    /// A user joined a group.
    Added {
        identity_store_id: Option<String>,
        group_id: String,
        user_id: String,
    },
    /// A user left a group; the identity-store API names only the membership.
    Removed {
        identity_store_id: Option<String>,
        group_id: Option<String>,
        user_id: Option<String>,
        membership_id: Option<String>,
    },
    /// A SCIM PatchGroup: members may have changed; the group id may be masked.
    GroupPatched { group_id: Option<String> },
    /// The call failed at the identity store: nothing changed.
    CallFailed { error_code: String },
}

impl MembershipSignal {
    /// The group the call concerns, when the event names it.
    pub fn group_id(&self) -> Option<&str> {
        match self {
            MembershipSignal::Added { group_id, .. } => Some(group_id),
            MembershipSignal::Removed { group_id, .. }
            | MembershipSignal::GroupPatched { group_id } => group_id.as_deref(),
            MembershipSignal::CallFailed { .. } => None,
        }
    }
}

impl CloudTrailCall {
    /// Interprets the call. Unknown event names are an error (the rule should not have routed them).
    pub fn membership_signal(&self) -> Result<MembershipSignal, EventError> {
        if let Some(code) = &self.error_code {
            return Ok(MembershipSignal::CallFailed {
                error_code: code.clone(),
            });
        }
        let params = self.request_parameters.as_ref().unwrap_or(&Value::Null);
        let store = text(params, &["identityStoreId"]);
        match (self.event_source.as_str(), self.event_name.as_str()) {
            ("identitystore.amazonaws.com", "CreateGroupMembership") => {
                Ok(MembershipSignal::Added {
                    identity_store_id: store,
                    group_id: required(params, &["groupId"])?,
                    user_id: required(params, &["memberId", "userId"])?,
                })
            }
            ("sso-directory.amazonaws.com", "AddMemberToGroup") => Ok(MembershipSignal::Added {
                identity_store_id: store,
                group_id: required(params, &["groupId"])?,
                user_id: required(params, &["member", "memberId"])?,
            }),
            ("identitystore.amazonaws.com", "DeleteGroupMembership") => {
                Ok(MembershipSignal::Removed {
                    identity_store_id: store,
                    group_id: text(params, &["groupId"]),
                    user_id: text(params, &["memberId", "userId"]),
                    membership_id: text(params, &["membershipId"]),
                })
            }
            ("sso-directory.amazonaws.com", "RemoveMemberFromGroup") => {
                Ok(MembershipSignal::Removed {
                    identity_store_id: store,
                    group_id: text(params, &["groupId"]),
                    user_id: text(params, &["member", "memberId"]),
                    membership_id: None,
                })
            }
            ("identitystore-scim.amazonaws.com", "PatchGroup") => {
                Ok(MembershipSignal::GroupPatched {
                    group_id: text(params, &["id"]).filter(|id| looks_like_id(id)),
                })
            }
            (source, name) => Err(EventError::new(
                WHAT,
                "detail.eventName",
                format!("{source} {name} is not a group-membership call"),
            )),
        }
    }
}

/// A string at `path`, ignoring masked or empty values.
fn text(params: &Value, path: &[&str]) -> Option<String> {
    let mut cur = params;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != MASKED)
        .map(str::to_string)
}

/// A string at `path` that the call cannot do without; the error names the deepest place that is wrong.
fn required(params: &Value, path: &[&str]) -> Result<String, EventError> {
    let mut at = String::from("detail.requestParameters");
    let mut cur = params;
    for key in path {
        let Some(fields) = cur.as_object() else {
            // A missing `requestParameters` is reported as its first missing field; a wrong type where it is.
            return Err(if cur.is_null() {
                EventError::new(WHAT, &format!("{at}.{key}"), "missing field")
            } else {
                EventError::new(
                    WHAT,
                    &at,
                    format!("expected an object, found {}", json_kind(cur)),
                )
            });
        };
        at = format!("{at}.{key}");
        cur = fields
            .get(*key)
            .ok_or_else(|| EventError::new(WHAT, &at, "missing field"))?;
    }
    match cur.as_str().map(str::trim) {
        Some(s) if s == MASKED => Err(EventError::new(WHAT, &at, "value is masked")),
        Some("") => Err(EventError::new(WHAT, &at, "empty string")),
        Some(s) => Ok(s.to_string()),
        None => Err(EventError::new(
            WHAT,
            &at,
            format!("expected a string, found {}", json_kind(cur)),
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Identity-store ids are hex with dashes, optionally prefixed by a 10-hex-digit store part.
fn looks_like_id(s: &str) -> bool {
    s.len() >= 8 && s.len() <= 47 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// What invoked the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Membership(MembershipSignal),
    Run(RunRequest),
}

/// Reads an invocation: a CloudTrail membership call, a scheduled event, or a manual request (no detail-type).
pub fn parse_trigger(event: &Value) -> Result<Trigger, EventError> {
    match detail_type(event) {
        Some(DETAIL_TYPE) => {
            let envelope = parse_envelope::<CloudTrailCall>(DETAIL_TYPE, event)?;
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

/// What a trigger asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Acknowledge and do nothing (no AWS call): the reason is logged and returned.
    Ignore(String),
    /// Reconcile the configured groups (a preview, or a targeted run that concerns one profile).
    Reconcile(Request),
}

/// Decides what a trigger asks for. Events never name users reliably (and deletes name only the
/// membership), so any event about a configured group — or about an unknown group — means "reconcile".
pub fn scope(trigger: &Trigger, config: &Config) -> Result<Scope, HandlerError> {
    if config.groups.is_empty() {
        return Err(HandlerError::NotConfigured);
    }
    match trigger {
        Trigger::Membership(signal) => Ok(membership_scope(signal, config)),
        Trigger::Run(run) => {
            if let Some(domain) = &run.domain_id
                && domain != &config.domain_id
            {
                return Err(HandlerError::WrongDomain {
                    requested: domain.clone(),
                    configured: config.domain_id.clone(),
                });
            }
            Ok(Scope::Reconcile(Request {
                dry_run: run.dry_run,
                only_profile: run.user_profile_name.clone(),
            }))
        }
    }
}

/// A membership call about this store and a configured (or unnamed) group means a full reconcile.
fn membership_scope(signal: &MembershipSignal, config: &Config) -> Scope {
    let store = match signal {
        MembershipSignal::CallFailed { error_code } => {
            return Scope::Ignore(format!(
                "the identity-store call failed ({error_code}); nothing changed"
            ));
        }
        MembershipSignal::Added {
            identity_store_id, ..
        }
        | MembershipSignal::Removed {
            identity_store_id, ..
        } => identity_store_id.as_deref(),
        MembershipSignal::GroupPatched { .. } => None,
    };
    if let Some(store) = store
        && store != config.identity_store_id
    {
        return Scope::Ignore(format!(
            "the event is about identity store {store}, not {}",
            config.identity_store_id
        ));
    }
    match signal.group_id() {
        Some(group) if !config.groups.contains(group) => {
            Scope::Ignore(format!("group {group} is not one of the configured groups"))
        }
        _ => Scope::Reconcile(Request::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use studio_ops_shared::{ErrorClass, Failure};

    use crate::adapters::memory::{config, fixture};

    fn call(source: &str, name: &str, params: Value) -> CloudTrailCall {
        serde_json::from_value(json!({
            "eventSource": source, "eventName": name, "requestParameters": params,
            "eventID": "e1", "awsRegion": "us-east-1", "unknownField": 1
        }))
        .unwrap()
    }

    #[test]
    fn create_group_membership() {
        let c = call(
            "identitystore.amazonaws.com",
            "CreateGroupMembership",
            json!({"identityStoreId": "d-1", "groupId": "g", "memberId": {"userId": "u"}}),
        );
        assert_eq!(
            c.membership_signal().unwrap(),
            MembershipSignal::Added {
                identity_store_id: Some("d-1".into()),
                group_id: "g".into(),
                user_id: "u".into()
            }
        );
    }

    #[test]
    fn console_add_uses_member_member_id() {
        let c = call(
            "sso-directory.amazonaws.com",
            "AddMemberToGroup",
            json!({"groupId": "g", "member": {"memberId": "u"}}),
        );
        assert_eq!(c.membership_signal().unwrap().group_id(), Some("g"));
    }

    #[test]
    fn delete_carries_only_membership_id() {
        let c = call(
            "identitystore.amazonaws.com",
            "DeleteGroupMembership",
            json!({"identityStoreId": "d-1", "membershipId": "m"}),
        );
        let s = c.membership_signal().unwrap();
        assert_eq!(s.group_id(), None);
        assert!(
            matches!(s, MembershipSignal::Removed { membership_id: Some(ref m), .. } if m == "m")
        );
    }

    #[test]
    fn scim_patch_with_masked_id_has_no_group() {
        let c = call(
            "identitystore-scim.amazonaws.com",
            "PatchGroup",
            json!({"id": MASKED, "httpBody": {"operations": [{"op": "add", "value": MASKED}]}}),
        );
        assert_eq!(
            c.membership_signal().unwrap(),
            MembershipSignal::GroupPatched { group_id: None }
        );
    }

    #[test]
    fn failed_call_and_missing_fields() {
        let mut c = call(
            "identitystore.amazonaws.com",
            "CreateGroupMembership",
            json!({}),
        );
        let err = c.membership_signal().unwrap_err();
        assert_eq!(err.path, "detail.requestParameters.groupId");
        c.error_code = Some("ValidationException".into());
        assert!(matches!(
            c.membership_signal().unwrap(),
            MembershipSignal::CallFailed { .. }
        ));
        let not_an_object = call(
            "identitystore.amazonaws.com",
            "CreateGroupMembership",
            json!("groupId"),
        );
        let err = not_an_object.membership_signal().unwrap_err();
        assert_eq!(err.path, "detail.requestParameters");
        assert!(err.reason.contains("found a string"), "{err}");
        let wrong_type = call(
            "identitystore.amazonaws.com",
            "CreateGroupMembership",
            json!({"groupId": "g", "memberId": {"userId": 7}}),
        );
        let err = wrong_type.membership_signal().unwrap_err();
        assert_eq!(err.path, "detail.requestParameters.memberId.userId");
        assert!(err.reason.contains("found a number"), "{err}");
        let other = call("iam.amazonaws.com", "CreateUser", json!({}));
        assert_eq!(
            other.membership_signal().unwrap_err().path,
            "detail.eventName"
        );
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
        assert!(matches!(
            parse_trigger(&fixture("manual-targeted-run.json")).unwrap(),
            Trigger::Run(RunRequest {
                user_profile_name: Some(_),
                ..
            })
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

    #[test]
    fn scope_of_each_trigger() {
        let c = config(&[]);
        let reconcile = Scope::Reconcile(Request::default());
        let of = |e: Value| scope(&parse_trigger(&e).unwrap(), &c).unwrap();
        assert_eq!(
            of(fixture("identitystore-create-group-membership.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("sso-directory-add-member-to-group.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("sso-directory-remove-member-from-group.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("identitystore-delete-group-membership.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("identitystore-scim-patch-group.json")),
            reconcile
        );
        assert_eq!(of(fixture("scheduled-event.json")), reconcile);
        assert_eq!(
            of(fixture("manual-dry-run.json")),
            Scope::Reconcile(Request {
                dry_run: true,
                only_profile: None
            })
        );
        assert_eq!(
            of(fixture(
                "identitystore-create-group-membership-other-group.json"
            )),
            Scope::Ignore(
                "group 34887428-4081-7042-c3c6-928d413009e7 is not one of the configured groups"
                    .into()
            )
        );
        let mut other_store = fixture("identitystore-create-group-membership.json");
        other_store["detail"]["requestParameters"]["identityStoreId"] = json!("d-0000000000");
        assert!(matches!(of(other_store), Scope::Ignore(r) if r.contains("d-0000000000")));
        let mut failed = fixture("identitystore-create-group-membership.json");
        failed["detail"]["errorCode"] = json!("AccessDeniedException");
        assert!(matches!(of(failed), Scope::Ignore(r) if r.contains("AccessDeniedException")));
        let err = scope(&parse_trigger(&json!({"domainId": "d-other"})).unwrap(), &c).unwrap_err();
        assert_eq!(err.class(), ErrorClass::NonRetryable);
        assert!(err.to_string().contains("d-other"), "{err}");
        let unconfigured = config(&[("STUDIO_OPS_PROVISION_GROUP_IDS", "")]);
        let err = scope(&Trigger::Run(RunRequest::default()), &unconfigured).unwrap_err();
        assert!(matches!(err, HandlerError::NotConfigured));
        assert!(
            err.to_string().contains("STUDIO_OPS_PROVISION_GROUP_IDS"),
            "{err}"
        );
    }
}
