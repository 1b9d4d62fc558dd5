//! AWS JSON 1.1 wire helpers for the simulator: error and success responses, epoch timestamps,
//! typed access to request members with AWS-style validation messages, and opaque pagination
//! tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The content type every AWS JSON 1.1 response carries.
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh request id in the uuid-like shape AWS uses.
pub fn request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("5e1f0000-0000-4000-8000-{n:012x}")
}

/// An AWS error as sent on the wire: HTTP status, error code (`__type`) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status (400 for client errors, 5xx for faults).
    pub status: StatusCode,
    /// The error code, e.g. `ResourceNotFound`.
    pub code: String,
    /// The human-readable message.
    pub message: String,
}

impl AwsError {
    /// A client error (HTTP 400) with the given code.
    pub fn client(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }

    /// SageMaker's `ResourceNotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client("ResourceNotFound", message)
    }

    /// SageMaker's `ResourceInUse`.
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::client("ResourceInUse", message)
    }

    /// `ThrottlingException` (HTTP 400), which the SDKs treat as retryable.
    pub fn throttling() -> Self {
        Self::client("ThrottlingException", "Rate exceeded")
    }

    /// `UnknownOperationException` for targets the simulator cannot answer.
    pub fn unknown_operation(target: &str) -> Self {
        Self::client(
            "UnknownOperationException",
            format!("The operation {target} is not supported by the simulator"),
        )
    }

    /// An injected or genuine server fault: HTTP 500 `InternalFailure`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure".to_owned(),
            message: message.into(),
        }
    }

    /// An injected fault: HTTP 503 `ServiceUnavailable`.
    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "ServiceUnavailable".to_owned(),
            message: "Service is unavailable, please retry".to_owned(),
        }
    }

    /// A message in AWS's "1 validation error detected" style for a pattern failure.
    pub fn pattern(member: &str, value: &str, pattern: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: {pattern}",
            lower_first(member)
        ))
    }

    /// A message for a missing required member.
    pub fn missing(member: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: \
             Member must not be null",
            lower_first(member)
        ))
    }

    /// A message for a value outside an enum.
    pub fn not_in_enum(member: &str, value: &str, allowed: &[&str]) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: \
             Member must satisfy enum value set: [{}]",
            lower_first(member),
            allowed.join(", ")
        ))
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.code, "message": self.message }).to_string();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        if let Ok(v) = HeaderValue::from_str(&self.code) {
            h.insert("x-amzn-ErrorType", v);
        }
        if let Ok(v) = HeaderValue::from_str(&request_id()) {
            h.insert("x-amzn-RequestId", v);
        }
        resp
    }
}

/// A 200 response carrying a JSON document with the AWS JSON 1.1 content type.
pub fn ok_response(body: &Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A timestamp as AWS JSON 1.1 sends it: epoch seconds as a (fractional) JSON number.
pub fn epoch(ts: Timestamp) -> Value {
    let secs = ts.as_millisecond() as f64 / 1000.0;
    serde_json::Number::from_f64(secs)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Checks the `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}` pattern SageMaker uses for names.
pub fn is_sagemaker_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The pattern text for [`is_sagemaker_name`], for error messages.
pub const NAME_PATTERN: &str = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}";

/// Checks the `d-(-*[a-z0-9]){1,61}` domain id pattern: the suite's one copy of the rule.
pub use studio_ops_shared::names::is_domain_id;

/// The request document of one call, with typed, validating member access.
#[derive(Debug, Clone, Default)]
pub struct Input(pub Map<String, Value>);

impl Input {
    /// Parses a request body; an empty body is an empty document.
    pub fn parse(body: &[u8]) -> Result<Self, AwsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Self(m)),
            Ok(_) => Err(AwsError::client(
                "SerializationException",
                "Request body must be a JSON object",
            )),
            Err(e) => Err(AwsError::client(
                "SerializationException",
                format!("Malformed JSON request body: {e}"),
            )),
        }
    }

    /// The raw value of a member, if present and not null.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An optional string member.
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, AwsError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(AwsError::client(
                "SerializationException",
                format!("Member {name} must be a string"),
            )),
        }
    }

    /// A required string member (`ValidationException` when absent).
    pub fn req_str(&self, name: &str) -> Result<&str, AwsError> {
        self.opt_str(name)?.ok_or_else(|| AwsError::missing(name))
    }

    /// An optional integer member.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, AwsError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                AwsError::client(
                    "SerializationException",
                    format!("Member {name} must be an integer"),
                )
            }),
            Some(_) => Err(AwsError::client(
                "SerializationException",
                format!("Member {name} must be a number"),
            )),
        }
    }

    /// An optional structure member, kept as opaque JSON.
    pub fn opt_object(&self, name: &str) -> Result<Option<&Map<String, Value>>, AwsError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(AwsError::client(
                "SerializationException",
                format!("Member {name} must be a structure"),
            )),
        }
    }

    /// An optional list member.
    pub fn opt_list(&self, name: &str) -> Result<Option<&Vec<Value>>, AwsError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(AwsError::client(
                "SerializationException",
                format!("Member {name} must be a list"),
            )),
        }
    }

    /// An optional SageMaker name member checked against [`NAME_PATTERN`].
    pub fn opt_name(&self, name: &str) -> Result<Option<&str>, AwsError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(v) if is_sagemaker_name(v) => Ok(Some(v)),
            Some(v) => Err(AwsError::pattern(name, v, NAME_PATTERN)),
        }
    }

    /// A required SageMaker name member checked against [`NAME_PATTERN`].
    pub fn req_name(&self, name: &str) -> Result<&str, AwsError> {
        self.opt_name(name)?.ok_or_else(|| AwsError::missing(name))
    }

    /// A required domain id member.
    pub fn req_domain_id(&self, name: &str) -> Result<&str, AwsError> {
        let v = self.req_str(name)?;
        if is_domain_id(v) {
            Ok(v)
        } else {
            Err(AwsError::pattern(name, v, "d-(-*[a-z0-9]){1,61}"))
        }
    }

    /// An optional domain id member.
    pub fn opt_domain_id(&self, name: &str) -> Result<Option<&str>, AwsError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(v) if is_domain_id(v) => Ok(Some(v)),
            Some(v) => Err(AwsError::pattern(name, v, "d-(-*[a-z0-9]){1,61}")),
        }
    }

    /// An optional enum member.
    pub fn opt_enum(&self, name: &str, allowed: &[&str]) -> Result<Option<&str>, AwsError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v)),
            Some(v) => Err(AwsError::not_in_enum(name, v, allowed)),
        }
    }

    /// `MaxResults` validated to `min..=max`, defaulting to `default`.
    pub fn max_results(&self, min: i64, max: i64, default: i64) -> Result<usize, AwsError> {
        let n = self.opt_i64("MaxResults")?.unwrap_or(default);
        if n < min {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
                 constraint: Member must have value greater than or equal to {min}"
            )));
        }
        if n > max {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
                 constraint: Member must have value less than or equal to {max}"
            )));
        }
        usize::try_from(n).map_err(|_| AwsError::validation("MaxResults out of range"))
    }
}

/// Encodes an opaque pagination token bound to one operation.
pub fn encode_token(op: &str, cursor: &Value) -> String {
    let doc = json!({ "v": 1, "op": op, "c": cursor }).to_string();
    format!("SIM1{}", hex::encode(doc.as_bytes()))
}

/// Decodes a token made by [`encode_token`] for the same operation; `None` if it is foreign,
/// garbled or made for another operation.
pub fn decode_token(op: &str, token: &str) -> Option<Value> {
    let hex_part = token.strip_prefix("SIM1")?;
    let bytes = hex::decode(hex_part).ok()?;
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    if doc.get("v")?.as_i64()? != 1 || doc.get("op")?.as_str()? != op {
        return None;
    }
    doc.get("c").cloned()
}

/// The error SageMaker returns for a bad `NextToken`.
pub fn invalid_token() -> AwsError {
    AwsError::validation("Invalid pagination token: the NextToken is not valid for this request")
}

/// A sort key: a time in nanoseconds plus a unique tiebreaker.
pub type SortKey = (i128, String);

/// Cursor-based pagination over items with a total order; returns the page and the token for
/// the next page (if more remain).
pub fn paginate<T>(
    op: &str,
    mut items: Vec<(SortKey, T)>,
    descending: bool,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let cursor: Option<SortKey> = match token {
        None => None,
        Some("") => None,
        Some(t) => {
            let c = decode_token(op, t).ok_or_else(invalid_token)?;
            let nanos = c
                .get(0)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<i128>().ok())
                .ok_or_else(invalid_token)?;
            let id = c
                .get(1)
                .and_then(Value::as_str)
                .ok_or_else(invalid_token)?
                .to_owned();
            Some((nanos, id))
        }
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        items.reverse();
    }
    let mut rest: Vec<(SortKey, T)> = match &cursor {
        None => items,
        Some(c) => items
            .into_iter()
            .filter(|(k, _)| if descending { k < c } else { k > c })
            .collect(),
    };
    let more = rest.len() > max;
    rest.truncate(max);
    let next = if more {
        rest.last()
            .map(|(k, _)| encode_token(op, &json!([k.0.to_string(), k.1])))
    } else {
        None
    };
    Ok((rest.into_iter().map(|(_, t)| t).collect(), next))
}

/// Offset-based pagination (for lists without a natural key, such as tags or diffs).
pub fn paginate_offset<T: Clone>(
    op: &str,
    items: &[T],
    token: Option<&str>,
    max: usize,
    bad_token: impl Fn() -> AwsError,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match token {
        None | Some("") => 0,
        Some(t) => {
            let c = decode_token(op, t).ok_or_else(&bad_token)?;
            let n = c.as_u64().ok_or_else(&bad_token)?;
            usize::try_from(n).map_err(|_| bad_token())?
        }
    };
    if start > items.len() {
        return Err(bad_token());
    }
    let end = start.saturating_add(max).min(items.len());
    let page = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| encode_token(op, &json!(end)));
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_sagemaker_name("a"));
        assert!(is_sagemaker_name("alice-01"));
        assert!(is_sagemaker_name("a--b"));
        assert!(!is_sagemaker_name("-a"));
        assert!(!is_sagemaker_name("a-"));
        assert!(!is_sagemaker_name("a_b"));
        assert!(!is_sagemaker_name(""));
        assert!(!is_sagemaker_name(&"a".repeat(64)));
        assert!(is_domain_id("d-abc123"));
        assert!(!is_domain_id("d-"));
        assert!(!is_domain_id("x-abc"));
    }

    #[test]
    fn tokens_round_trip_and_reject_foreign() {
        let t = encode_token("ListApps", &json!(5));
        assert_eq!(decode_token("ListApps", &t), Some(json!(5)));
        assert_eq!(decode_token("ListSpaces", &t), None);
        assert_eq!(decode_token("ListApps", "garbage"), None);
        assert_eq!(decode_token("ListApps", "SIM1zz"), None);
    }

    #[test]
    fn cursor_pagination_walks_everything_once() {
        let items: Vec<(SortKey, u32)> = (0..25u32)
            .map(|i| ((i128::from(i / 3), format!("{i:03}")), i))
            .collect();
        for desc in [false, true] {
            let mut seen = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let (page, next) =
                    paginate("Op", items.clone(), desc, token.as_deref(), 7).unwrap();
                seen.extend(page);
                match next {
                    Some(n) => token = Some(n),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 25);
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 25);
        }
    }
}
