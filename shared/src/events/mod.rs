//! Typed EventBridge events: every trigger of the suite and the suite's own events. Unknown fields are
//! tolerated; a missing or mistyped required field is a NonRetryable error naming its JSON path.

pub mod schedule;
pub mod suite;
pub mod time;

pub use aws_lambda_events::event::eventbridge::EventBridgeEvent;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An event that could not be understood. Always NonRetryable: the same bytes will fail again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} event at `{path}`: {reason}")]
pub struct EventError {
    /// What kind of event was being read, e.g. "CodeCommit Repository State Change".
    pub what: String,
    /// The JSON path of the offending field, e.g. `detail.commitId` (`.` for the whole document).
    pub path: String,
    pub reason: String,
}

impl EventError {
    pub fn new(what: &str, path: &str, reason: impl Into<String>) -> Self {
        Self {
            what: what.to_string(),
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// Deserializes `value` into `T`, reporting the failing field's path. Every struct must come from a JSON object:
/// serde would also fill a struct from an array by position, which reads `["a", "b"]` as a valid event.
pub fn from_value<T: DeserializeOwned + Serialize>(
    what: &str,
    value: &Value,
) -> Result<T, EventError> {
    let typed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let reason = strip_position(&e.into_inner().to_string());
        EventError::new(what, &path, reason)
    })?;
    // Serializing a plain data struct cannot fail; if it ever did there would be nothing to compare.
    if let Ok(shape) = serde_json::to_value(&typed)
        && let Some(path) = array_read_as_object(value, &shape, String::new())
    {
        let path = if path.is_empty() { "." } else { path.as_str() };
        return Err(EventError::new(
            what,
            path,
            "expected an object, found an array",
        ));
    }
    Ok(typed)
}

/// The first place where the typed value has an object but the input had an array (a struct read by position).
pub(crate) fn array_read_as_object(input: &Value, typed: &Value, path: String) -> Option<String> {
    match (input, typed) {
        (Value::Array(_), Value::Object(_)) => Some(path),
        (Value::Object(fields), Value::Object(typed_fields)) => {
            typed_fields.iter().find_map(|(key, typed_child)| {
                let child = fields.get(key)?;
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                array_read_as_object(child, typed_child, child_path)
            })
        }
        (Value::Array(items), Value::Array(typed_items)) => items
            .iter()
            .zip(typed_items)
            .enumerate()
            .find_map(|(i, (item, typed_item))| {
                array_read_as_object(item, typed_item, format!("{path}[{i}]"))
            }),
        _ => None,
    }
}

/// Parses a full EventBridge envelope with a typed `detail`.
pub fn parse_envelope<T: DeserializeOwned + Serialize>(
    what: &str,
    value: &Value,
) -> Result<EventBridgeEvent<T>, EventError> {
    if !value.is_object() {
        return Err(EventError::new(
            what,
            ".",
            "expected an EventBridge event (a JSON object)",
        ));
    }
    from_value(what, value)
}

/// The `detail-type` of an EventBridge envelope, if the value is one.
pub fn detail_type(value: &Value) -> Option<&str> {
    value.get("detail-type").and_then(Value::as_str)
}

/// The envelope's `id` (for logs), or `-`.
pub fn event_id(value: &Value) -> &str {
    value.get("id").and_then(Value::as_str).unwrap_or("-")
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail {
        commit_id: String,
    }

    #[test]
    fn missing_field_names_its_path() {
        let v = json!({"detail-type": "X", "source": "s", "detail": {"other": 1}});
        let err = parse_envelope::<Detail>("X", &v).unwrap_err();
        assert_eq!(err.path, "detail");
        assert_eq!(err.reason, "missing field `commitId`");
        assert_eq!(
            err.to_string(),
            "malformed X event at `detail`: missing field `commitId`"
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let v = json!({"detail-type": "X", "source": "s", "detail": {"commitId": 5}});
        let err = parse_envelope::<Detail>("X", &v).unwrap_err();
        assert_eq!(err.path, "detail.commitId");
        assert!(
            err.reason.starts_with("invalid type: integer `5`"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn a_struct_is_never_read_from_an_array() {
        let v = json!({"detail-type": "X", "source": "s", "detail": ["a"]});
        let err = parse_envelope::<Detail>("X", &v).unwrap_err();
        assert_eq!(err.path, "detail");
        assert_eq!(err.reason, "expected an object, found an array");
        let whole = json!(["X", "s", {"commitId": "a"}]);
        assert_eq!(parse_envelope::<Detail>("X", &whole).unwrap_err().path, ".");
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let v = json!({"detail-type": "X", "source": "s", "new": true, "detail": {"commitId": "a", "extra": [1]}});
        let e = parse_envelope::<Detail>("X", &v).unwrap();
        assert_eq!(e.detail.commit_id, "a");
        assert_eq!(detail_type(&v), Some("X"));
        assert_eq!(event_id(&v), "-");
    }
}
