//! The template's CloudWatch dashboard, read and checked against the code: every metric widget reads a metric
//! some function really emits (namespace `StudioOps`, exactly the dimension `Function`, a name from that
//! function's metrics catalogue), a Lambda metric of one of the stack's functions, or an SQS metric of one of its
//! queues; every alarm widget lists alarms of the stack; every metric-math expression names metrics of its widget.
//! A widget that reads nothing is an error. Used by the infra test and by the demo's "end of the month" chapter.
//!
//! The `Fn::Sub` body is read with each `${Name}` replaced by a token `«Name»`, so that references can be told
//! apart from literal values and matched to the resources they name.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_norway::Value as Yaml;
use studio_ops_shared::metrics::{Catalogue, FUNCTION_DIMENSION, NAMESPACE};

/// The four functions' catalogues.
pub const CATALOGUES: [&Catalogue; 4] = [
    &provision_users::METRICS,
    &idle_shutdown::METRICS,
    &train_on_push::METRICS,
    &notify::METRICS,
];

/// What a dashboard reads, once checked.
#[derive(Debug, Default)]
pub struct Dashboard {
    pub logical_id: String,
    pub widgets: usize,
    /// `function/Metric` for the suite's own metrics, `AWS/Lambda Errors «Fn»` etc. for AWS's.
    pub metrics: BTreeSet<String>,
    /// Logical ids of the alarms shown.
    pub alarms: BTreeSet<String>,
}

fn get<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

/// `${X}` → `«X»` (`${AWS::Region}` → `us-east-1`, `${AWS::StackName}` → `studio-ops`).
fn tokenised(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match &after[..end] {
            "AWS::Region" => out.push_str("us-east-1"),
            "AWS::StackName" => out.push_str("studio-ops"),
            name => out.push_str(&format!("«{name}»")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn token(value: &str) -> Option<&str> {
    value.strip_prefix('«')?.strip_suffix('»')
}

/// Reads and checks every dashboard of the template `text`; the errors say which widget and why.
pub fn check(text: &str) -> Result<Vec<Dashboard>, Vec<String>> {
    let doc: Yaml = serde_norway::from_str(text).map_err(|e| vec![format!("template: {e}")])?;
    let resources: BTreeMap<String, String> = get(&doc, "Resources")
        .and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, r)| {
                    Some((
                        k.as_str()?.to_string(),
                        get(r, "Type")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let of_type = |id: &str, types: &[&str]| {
        resources
            .get(id)
            .is_some_and(|t| types.contains(&t.as_str()))
    };
    let mut errors = Vec::new();
    let mut dashboards = Vec::new();
    for (id, ty) in &resources {
        if ty != "AWS::CloudWatch::Dashboard" {
            continue;
        }
        let body = get(&doc, "Resources")
            .and_then(|r| get(r, id))
            .and_then(|r| get(r, "Properties"))
            .and_then(|p| get(p, "DashboardBody"));
        let body = match body {
            Some(Yaml::Tagged(t)) if t.tag == "Sub" => t.value.as_str().map(str::to_string),
            Some(Yaml::String(s)) => Some(s.clone()),
            _ => None,
        };
        let Some(body) = body else {
            errors.push(format!(
                "{id}: DashboardBody is not a string or a !Sub string"
            ));
            continue;
        };
        let json: Json = match serde_json::from_str(&tokenised(&body)) {
            Ok(j) => j,
            Err(e) => {
                errors.push(format!("{id}: DashboardBody is not JSON: {e}"));
                continue;
            }
        };
        let mut dashboard = Dashboard {
            logical_id: id.clone(),
            ..Default::default()
        };
        let widgets = json["widgets"].as_array().cloned().unwrap_or_default();
        if widgets.is_empty() {
            errors.push(format!("{id}: no widgets"));
        }
        dashboard.widgets = widgets.len();
        for (i, w) in widgets.iter().enumerate() {
            let at = format!(
                "{id} widget {i} ({})",
                w["properties"]["title"].as_str().unwrap_or("untitled")
            );
            match w["type"].as_str() {
                Some("text") => {}
                Some("metric") => {
                    check_metric_widget(&at, w, &of_type, &mut dashboard, &mut errors)
                }
                Some("alarm") => {
                    let alarms = w["properties"]["alarms"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if alarms.is_empty() {
                        errors.push(format!("{at}: an alarm widget that lists no alarm"));
                    }
                    for a in alarms {
                        let name = a
                            .as_str()
                            .and_then(token)
                            .and_then(|t| t.strip_suffix(".Arn"));
                        match name {
                            Some(alarm) if of_type(alarm, &["AWS::CloudWatch::Alarm"]) => {
                                dashboard.alarms.insert(alarm.to_string());
                            }
                            _ => errors.push(format!(
                                "{at}: {a} is not the Arn of an alarm of this template"
                            )),
                        }
                    }
                }
                other => errors.push(format!("{at}: widget type {other:?} is not checked here")),
            }
        }
        dashboards.push(dashboard);
    }
    if dashboards.is_empty() && errors.is_empty() {
        errors.push("the template has no AWS::CloudWatch::Dashboard".to_string());
    }
    if errors.is_empty() {
        Ok(dashboards)
    } else {
        Err(errors)
    }
}

fn check_metric_widget(
    at: &str,
    widget: &Json,
    of_type: &dyn Fn(&str, &[&str]) -> bool,
    dashboard: &mut Dashboard,
    errors: &mut Vec<String>,
) {
    let rows = widget["properties"]["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ids = BTreeSet::new();
    let mut expressions = Vec::new();
    let mut reads = 0;
    for row in &rows {
        let Some(parts) = row.as_array() else {
            errors.push(format!("{at}: metric row {row} is not a list"));
            continue;
        };
        let options = parts.last().filter(|p| p.is_object());
        if let Some(id) = options.and_then(|o| o["id"].as_str()) {
            ids.insert(id.to_string());
        }
        if let Some(expression) = options.and_then(|o| o["expression"].as_str()) {
            let visible = options.and_then(|o| o["visible"].as_bool()) != Some(false);
            expressions.push((expression.to_string(), visible));
            continue;
        }
        let strings: Vec<&str> = parts.iter().filter_map(Json::as_str).collect();
        if strings.contains(&"...") || strings.len() < 2 || !strings.len().is_multiple_of(2) {
            errors.push(format!(
                "{at}: {row} must be [namespace, name, dimension, value, ...] written out in full"
            ));
            continue;
        }
        let (namespace, name) = (strings[0], strings[1]);
        let dims: Vec<(&str, &str)> = strings[2..].chunks(2).map(|c| (c[0], c[1])).collect();
        let problem = match (namespace, dims.as_slice()) {
            (NAMESPACE, [(FUNCTION_DIMENSION, function)]) => {
                match CATALOGUES.iter().find(|c| c.function == *function) {
                    None => Some(format!("no function is called {function}")),
                    Some(c) if !c.has(name) => Some(format!(
                        "{function} emits no metric {name} (its catalogue: {:?})",
                        c.metrics
                    )),
                    Some(_) => {
                        dashboard.metrics.insert(format!("{function}/{name}"));
                        None
                    }
                }
            }
            (NAMESPACE, _) => Some(format!(
                "the suite's metrics have exactly the dimension {FUNCTION_DIMENSION}, not {dims:?}: this reads nothing"
            )),
            ("AWS/Lambda", [("FunctionName", f)]) => {
                if ![
                    "Errors",
                    "Duration",
                    "Throttles",
                    "Invocations",
                    "ConcurrentExecutions",
                ]
                .contains(&name)
                {
                    Some(format!("AWS/Lambda has no per-function metric {name}"))
                } else if token(f).is_none_or(|f| {
                    !of_type(f, &["AWS::Serverless::Function", "AWS::Lambda::Function"])
                }) {
                    Some(format!("{f} is not a function of this template"))
                } else {
                    dashboard.metrics.insert(format!("AWS/Lambda {name} {f}"));
                    None
                }
            }
            ("AWS/SQS", [("QueueName", q)]) => {
                let queue = token(q).and_then(|q| q.strip_suffix(".QueueName"));
                if ![
                    "ApproximateNumberOfMessagesVisible",
                    "ApproximateAgeOfOldestMessage",
                ]
                .contains(&name)
                {
                    Some(format!(
                        "AWS/SQS metric {name} is not one this dashboard should read"
                    ))
                } else if queue.is_none_or(|q| !of_type(q, &["AWS::SQS::Queue"])) {
                    Some(format!(
                        "{q} is not the QueueName of a queue of this template"
                    ))
                } else {
                    dashboard.metrics.insert(format!("AWS/SQS {name} {q}"));
                    None
                }
            }
            _ => Some(format!(
                "namespace {namespace} with dimensions {dims:?} is not one the suite's resources publish"
            )),
        };
        match problem {
            Some(p) => errors.push(format!("{at}: {row}: {p}")),
            None => {
                if options.and_then(|o| o["visible"].as_bool()) != Some(false) {
                    reads += 1;
                }
            }
        }
    }
    for (expression, visible) in &expressions {
        let names: Vec<&str> = expression
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .collect();
        if names.is_empty() {
            errors.push(format!("{at}: expression {expression:?} reads no metric"));
        }
        for n in names {
            if !ids.contains(n) {
                errors.push(format!(
                    "{at}: expression {expression:?} names {n}, which is no metric of the widget"
                ));
            }
        }
        if *visible {
            reads += 1;
        }
    }
    if reads == 0 {
        errors.push(format!("{at}: the widget shows nothing"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_tokens() {
        assert_eq!(
            tokenised(r#"["${AWS::Region}", "${Fn}", "${Q.QueueName}"]"#),
            r#"["us-east-1", "«Fn»", "«Q.QueueName»"]"#
        );
    }
}
