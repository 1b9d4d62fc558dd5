//! Generators for the property tests: arbitrary JSON biased towards the field names the parsers read, fixtures
//! with one node replaced by arbitrary JSON, and a resolver that checks an error path points into the input.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Field names the suite's parsers look for, so that generated documents reach deep into them.
pub const KNOWN_KEYS: &[&str] = &[
    "detail-type",
    "source",
    "detail",
    "id",
    "time",
    "resources",
    "eventSource",
    "eventName",
    "requestParameters",
    "identityStoreId",
    "groupId",
    "memberId",
    "userId",
    "member",
    "membershipId",
    "errorCode",
    "event",
    "repositoryName",
    "referenceType",
    "referenceName",
    "commitId",
    "oldCommitId",
    "TrainingJobName",
    "TrainingJobArn",
    "TrainingJobStatus",
    "FailureReason",
    "ModelArtifacts",
    "S3ModelArtifacts",
    "FinalMetricDataList",
    "MetricName",
    "Value",
    "HyperParameters",
    "Tags",
    "LastModifiedTime",
    "ModelPackageArn",
    "ModelPackageGroupName",
    "ModelApprovalStatus",
    "dryRun",
    "domainId",
    "userProfileName",
    "spaceName",
    "appType",
    "appName",
    "instanceType",
    "idleMinutes",
    "stopsAt",
    "reason",
    "scanned",
    "warned",
    "stopped",
    "failed",
    "metrics",
    "model",
    "branch",
];

/// Strings that parse as something (timestamps, numbers, AWS-looking values) next to arbitrary text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        Just("2024-05-01T10:00:00Z".to_string()),
        Just("1583831889050".to_string()),
        Just("branch".to_string()),
        Just("referenceUpdated".to_string()),
        Just("identitystore.amazonaws.com".to_string()),
        Just("CreateGroupMembership".to_string()),
        Just("HIDDEN_DUE_TO_SECURITY_REASONS".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("\u{202e}gnp.exe\u{0}".to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_string),
        1 => "[a-zA-Z]{1,8}",
    ]
}

/// Arbitrary JSON of bounded size.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Replaces (or, at an object, inserts under `key`) the node reached by following `walk` (child index modulo
/// the number of children at each level) with `replacement`.
pub fn mutate(mut doc: Value, walk: &[usize], key: &str, replacement: Value) -> Value {
    fn go(node: &mut Value, walk: &[usize], key: &str, replacement: Value) {
        let Some((&step, rest)) = walk.split_first() else {
            *node = replacement;
            return;
        };
        match node {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(step % m.len()).cloned().unwrap_or_default();
                if rest.is_empty() && step % 3 == 0 {
                    m.insert(key.to_string(), replacement);
                } else if let Some(child) = m.get_mut(&k) {
                    go(child, rest, key, replacement);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = step % a.len();
                go(&mut a[i], rest, key, replacement);
            }
            other => *other = replacement,
        }
    }
    go(&mut doc, walk, key, replacement);
    doc
}

/// Whether an error path (`detail.FinalMetricDataList[0].Value`, `.` for the root) names a node of `doc`, or a
/// field missing from an object (or from an absent parent): an error must point at a real place in the input,
/// never inside a scalar.
pub fn path_points_into(doc: &Value, path: &str) -> bool {
    if path == "." || path.is_empty() {
        return true;
    }
    let mut segments = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            segments.push(rest[..i].to_string());
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                segments.push(rest[..=end].to_string());
                rest = &rest[end + 1..];
            }
        } else {
            segments.push(rest.to_string());
        }
    }
    let segments: Vec<String> = segments.into_iter().filter(|s| !s.is_empty()).collect();
    let mut node = doc;
    for (depth, seg) in segments.iter().enumerate() {
        let next = if let Some(idx) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            idx.parse::<usize>().ok().and_then(|n| node.get(n))
        } else {
            node.get(seg.as_str())
        };
        match next {
            Some(n) => node = n,
            // A document that is not an object at all may be reported as missing its first field.
            None => return node.is_object() || node.is_null() || depth == 0,
        }
    }
    true
}
