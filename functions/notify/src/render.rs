//! An alert as an SNS message: the ASCII subject, the plain-text body people read in e-mail, the JSON document
//! machines read, the per-protocol `MessageStructure=json` envelope, and the message attributes that
//! subscription filter policies match on.

use serde_json::{Map, Value, json};

use crate::chat;
use crate::content::{self, Alert, MetricTable, number, signed};
use crate::model_package::round6;
use crate::sanitize;

/// The attribute names subscribers filter on (see docs/notify.md).
pub const ATTR_EVENT_TYPE: &str = "event_type";
pub const ATTR_SEVERITY: &str = "severity";
pub const ATTR_DOMAIN: &str = "domain";
pub const ATTR_MODEL_GROUP: &str = "model_group";
pub const ATTR_USER: &str = "user";

/// The version of the JSON document's shape; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// SNS accepts 256 KiB per message including attributes; stay well below.
pub const MAX_MESSAGE_BYTES: usize = 240 * 1024;
/// Metric rows shown; the rest are counted (a hostile event may carry thousands).
const MAX_METRIC_ROWS: usize = 40;
const MAX_METRIC_NAME_CHARS: usize = 60;

/// What is sent to the topic.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub subject: String,
    /// For e-mail and every protocol without its own entry.
    pub text: String,
    /// For SQS, Lambda, HTTP and e-mail-JSON subscribers.
    pub document: Value,
    /// For HTTPS subscribers: the Amazon Q Developer in chat applications custom notification (`chat.rs`), which
    /// is how Amazon Q's subscription reads the topic.
    pub chat: Value,
    /// Name and value of every non-empty attribute, all of SNS type `String`.
    pub attributes: Vec<(&'static str, String)>,
}

impl OutgoingMessage {
    /// The `Message` for `MessageStructure=json`: one string per protocol, `default` required by SNS.
    pub fn sns_message(&self) -> String {
        let document = self.document.to_string();
        json!({
            "default": self.text,
            "email": self.text,
            "email-json": document,
            "sqs": document,
            "lambda": document,
            "http": document,
            "https": self.chat.to_string(),
        })
        .to_string()
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Renders an alert; `subject_prefix` (e.g. `[studio-ops]`) starts every subject.
pub fn render(alert: &Alert, subject_prefix: &str) -> OutgoingMessage {
    let subject = sanitize::subject(&format!("{subject_prefix} {}", alert.subject));
    let text = text_body(alert);
    let mut message = OutgoingMessage {
        document: document(alert, &subject, true),
        chat: chat::notification(alert, &subject),
        subject,
        text,
        attributes: attributes(alert),
    };
    if message.sns_message().len() > MAX_MESSAGE_BYTES {
        message.document = document(alert, &message.subject, false);
    }
    if message.sns_message().len() > MAX_MESSAGE_BYTES {
        // Only reachable with absurd inputs: every piece is already bounded. Keep the message deliverable.
        message.text = sanitize::clip(&message.text, MAX_MESSAGE_BYTES / 16, "\n[truncated]");
    }
    message
}

/// The attribute set: event type and severity always, the routing values when the alert has them.
pub fn attributes(alert: &Alert) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (ATTR_EVENT_TYPE, alert.event_type.slug().to_string()),
        (ATTR_SEVERITY, alert.severity.as_str().to_string()),
    ];
    let routed = [
        (ATTR_DOMAIN, &alert.routing.domain),
        (ATTR_MODEL_GROUP, &alert.routing.model_group),
        (ATTR_USER, &alert.routing.user),
    ];
    for (name, value) in routed {
        if let Some(v) = value.as_deref().and_then(sanitize::attribute_value) {
            out.push((name, v));
        }
    }
    out
}

fn metric_name(name: &str) -> String {
    sanitize::one_line(name, MAX_METRIC_NAME_CHARS)
}

fn metrics_text(table: &MetricTable, out: &mut String) {
    out.push_str(&sanitize::one_line(&table.caption, content::MAX_FACT_CHARS));
    out.push('\n');
    let rows: Vec<_> = table.rows.iter().take(MAX_METRIC_ROWS).collect();
    let width = rows
        .iter()
        .map(|r| metric_name(&r.name).chars().count())
        .max()
        .unwrap_or(0)
        .max("Metric".len());
    let compared = rows.iter().any(|r| r.baseline.is_some());
    if compared {
        out.push_str(&format!(
            "  {:<width$}  {:>10}  {:>10}  {:>10}\n",
            "Metric", "Value", "Before", "Change"
        ));
    }
    for r in rows {
        let name = metric_name(&r.name);
        let value = if r.value.is_nan() {
            "-".to_string()
        } else {
            number(r.value)
        };
        if compared {
            let before = r.baseline.map(number).unwrap_or_else(|| "-".into());
            let change = r
                .delta()
                .filter(|d| d.is_finite())
                .map(signed)
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "  {name:<width$}  {value:>10}  {before:>10}  {change:>10}\n"
            ));
        } else {
            out.push_str(&format!("  {name:<width$}  {value:>10}\n"));
        }
    }
    if table.rows.len() > MAX_METRIC_ROWS {
        out.push_str(&format!(
            "  ... and {} more\n",
            table.rows.len() - MAX_METRIC_ROWS
        ));
    }
}

/// The plain-text body: what happened, the details, the numbers, what to do next, links, and a footer
/// saying what kind of alert this is (so a reader knows what to filter on).
pub fn text_body(alert: &Alert) -> String {
    let mut out = String::new();
    out.push_str(&sanitize::one_line(
        &alert.summary,
        2 * content::MAX_FACT_CHARS,
    ));
    out.push_str("\n\n");

    if !alert.facts.is_empty() {
        out.push_str("Details\n");
        let width = alert
            .facts
            .iter()
            .map(|f| f.label.chars().count())
            .max()
            .unwrap_or(0);
        for f in &alert.facts {
            out.push_str(&format!("  {:<width$}  {}\n", f.label, f.value));
        }
        out.push('\n');
    }

    if let Some(table) = &alert.metrics {
        metrics_text(table, &mut out);
        out.push('\n');
    }

    if !alert.next_steps.is_empty() {
        out.push_str("What to do next\n");
        for step in &alert.next_steps {
            out.push_str(&format!(
                "  - {}\n",
                sanitize::one_line(step, 2 * content::MAX_FACT_CHARS)
            ));
        }
        out.push('\n');
    }

    if !alert.links.is_empty() {
        out.push_str("Links\n");
        let width = alert
            .links
            .iter()
            .map(|l| l.label.chars().count())
            .max()
            .unwrap_or(0);
        for l in &alert.links {
            out.push_str(&format!("  {:<width$}  {}\n", l.label, l.url));
        }
        out.push('\n');
    }

    out.push_str("-- \n");
    let mut footer = format!(
        "studio-ops notify | {} | severity {}",
        alert.event_type.slug(),
        alert.severity.as_str()
    );
    if let Some(t) = &alert.origin.time {
        footer.push_str(&format!(" | {}", sanitize::one_line(t, 40)));
    }
    if let Some(id) = &alert.origin.event_id {
        footer.push_str(&format!(" | event {}", sanitize::one_line(id, 80)));
    }
    out.push_str(&footer);
    out.push('\n');
    out.push_str(
        "Receive only the alerts you need: add a filter policy to your subscription (docs/notify.md).\n",
    );
    out
}

/// The machine-readable form. `with_details` is false only when the event's own detail is too large to carry.
pub fn document(alert: &Alert, subject: &str, with_details: bool) -> Value {
    let mut doc = Map::new();
    doc.insert("schemaVersion".into(), json!(SCHEMA_VERSION));
    doc.insert("eventType".into(), json!(alert.event_type.slug()));
    doc.insert("severity".into(), json!(alert.severity.as_str()));
    doc.insert("subject".into(), json!(subject));
    doc.insert("summary".into(), json!(alert.summary));
    doc.insert("domain".into(), json!(alert.routing.domain));
    doc.insert("modelGroup".into(), json!(alert.routing.model_group));
    doc.insert("user".into(), json!(alert.routing.user));
    doc.insert(
        "facts".into(),
        Value::Array(
            alert
                .facts
                .iter()
                .map(|f| json!({"label": f.label, "value": f.value}))
                .collect(),
        ),
    );
    doc.insert(
        "metrics".into(),
        match &alert.metrics {
            Some(t) => Value::Array(
                t.rows
                    .iter()
                    .take(MAX_METRIC_ROWS)
                    .map(|r| {
                        json!({
                            "name": metric_name(&r.name),
                            "value": finite(r.value),
                            "baseline": r.baseline.and_then(finite),
                            "delta": r.delta().and_then(finite).map(round6),
                        })
                    })
                    .collect(),
            ),
            None => Value::Array(vec![]),
        },
    );
    doc.insert("nextSteps".into(), json!(alert.next_steps));
    doc.insert(
        "links".into(),
        Value::Object(
            alert
                .links
                .iter()
                .map(|l| (l.label.to_string(), json!(l.url)))
                .collect(),
        ),
    );
    doc.insert(
        "details".into(),
        if with_details {
            alert.details.clone()
        } else {
            json!({"omitted": "the event's detail is too large for one SNS message; see the source event"})
        },
    );
    doc.insert(
        "source".into(),
        json!({
            "detailType": alert.origin.detail_type,
            "eventId": alert.origin.event_id,
            "time": alert.origin.time,
            "region": alert.origin.region,
            "account": alert.origin.account,
        }),
    );
    Value::Object(doc)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{EventType, Fact, MetricRow, Origin, Routing, Severity};

    fn sample() -> Alert {
        Alert {
            event_type: EventType::AppStopped,
            severity: Severity::Warning,
            subject: "Your idle app was stopped".into(),
            summary: "It was idle.".into(),
            facts: vec![Fact {
                label: "App",
                value: "JupyterLab default".into(),
            }],
            metrics: None,
            next_steps: vec!["Nothing.".into()],
            links: vec![],
            routing: Routing {
                domain: Some("d-1".into()),
                model_group: None,
                user: Some("ana".into()),
            },
            origin: Origin::default(),
            details: json!({"a": 1}),
        }
    }

    #[test]
    fn attributes_omit_empty_values() {
        let mut a = sample();
        a.routing.user = Some("  \n".into());
        let attrs = attributes(&a);
        let names: Vec<&str> = attrs.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, vec![ATTR_EVENT_TYPE, ATTR_SEVERITY, ATTR_DOMAIN]);
        assert!(attrs.iter().all(|(_, v)| !v.is_empty()));
    }

    #[test]
    fn sns_message_has_every_protocol_and_a_default() {
        let m = render(&sample(), "[studio-ops]");
        assert_eq!(m.subject, "[studio-ops] Your idle app was stopped");
        let envelope: Value = serde_json::from_str(&m.sns_message()).unwrap();
        for key in [
            "default",
            "email",
            "email-json",
            "sqs",
            "lambda",
            "http",
            "https",
        ] {
            assert!(envelope[key].is_string(), "{key}");
        }
        assert_eq!(envelope["default"], json!(m.text));
        let doc: Value = serde_json::from_str(envelope["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(doc["eventType"], "app-stopped");
        assert_eq!(doc["user"], "ana");
        assert_eq!(doc["details"], json!({"a": 1}));
        // Amazon Q Developer in chat applications subscribes over HTTPS: it gets the custom notification.
        let chat: Value = serde_json::from_str(envelope["https"].as_str().unwrap()).unwrap();
        assert_eq!(
            (chat["version"].as_str(), chat["source"].as_str()),
            (Some("1.0"), Some("custom"))
        );
        assert_eq!(chat["metadata"]["eventType"], "app-stopped");
    }

    #[test]
    fn huge_details_are_omitted_not_rejected() {
        let mut a = sample();
        a.details = json!({"blob": "x".repeat(100_000)});
        let m = render(&a, "");
        assert!(m.sns_message().len() <= MAX_MESSAGE_BYTES);
        assert!(m.document["details"]["omitted"].is_string());
    }

    #[test]
    fn many_metrics_are_counted() {
        let mut a = sample();
        a.metrics = Some(MetricTable {
            caption: "Metrics".into(),
            rows: (0..100)
                .map(|i| MetricRow {
                    name: format!("m{i:03}"),
                    value: i as f64,
                    baseline: None,
                })
                .collect(),
        });
        let t = text_body(&a);
        assert!(t.contains("... and 60 more"));
        assert!(!t.contains("m040"));
    }
}
