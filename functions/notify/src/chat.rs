//! An alert as an Amazon Q Developer in chat applications custom notification (formerly AWS Chatbot): the JSON
//! form its SNS subscription accepts, so a team can route the same topic, with the same filter attributes, to a
//! Slack channel or a Microsoft Teams channel. Schema: "Custom notifications using Amazon Q Developer in chat
//! applications" (docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html): `version` "1.0" and `source`
//! "custom" required, `content.description` required, `textType` only `client-markdown`; title at most 250
//! characters, description at most 8,000. Amazon Q subscribes to the topic over HTTPS, so this form is the
//! message's `https` entry (`render::OutgoingMessage::sns_message`).
//!
//! Chat markdown is live: `<!channel>` pings a Slack channel, `<url|text>` hides where a link goes. Every text
//! that came from an event passes [`chat_text`], which turns angle brackets into look-alikes and backticks into
//! quotes, so nothing an event carries can mention people or disguise a link; only the alert's own links are
//! written as links.

use serde_json::{Map, Value, json};

use crate::content::{Alert, Severity};
use crate::sanitize;

/// The schema's limits (characters).
pub const MAX_TITLE_CHARS: usize = 250;
pub const MAX_DESCRIPTION_CHARS: usize = 8_000;
/// Shorter than the schema allows: a chat message is read at a glance; the e-mail carries everything.
const MAX_CHAT_FACTS: usize = 12;
const MAX_CHAT_STEPS: usize = 5;
const MAX_STEP_CHARS: usize = 500;

/// Text from an event, made inert for chat markdown: one line, no `<`/`>` (Slack mentions and links), no `](` (a
/// Teams `[text](url)` link becomes plain `[text] (url)`), no backticks.
pub fn chat_text(text: &str, max_chars: usize) -> String {
    let inert: String = sanitize::one_line(text, max_chars)
        .chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '`' => '\'',
            c => c,
        })
        .collect();
    inert.replace("](", "] (")
}

fn emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Error => ":rotating_light:",
    }
}

/// What threads the channel: one thread per model group, per user, or per kind of suite run.
fn thread_id(alert: &Alert) -> String {
    let key = alert
        .routing
        .model_group
        .as_deref()
        .map(|g| format!("model-group-{g}"))
        .or_else(|| alert.routing.user.as_deref().map(|u| format!("user-{u}")))
        .unwrap_or_else(|| alert.event_type.slug().to_string());
    // A plain token: Amazon Q groups by it, and an event's text must not shape it.
    key.chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The custom notification for `alert`; `subject` is the rendered subject (with the configured prefix).
pub fn notification(alert: &Alert, subject: &str) -> Value {
    let mut description = chat_text(&alert.summary, 1_000);
    let facts: Vec<String> = alert
        .facts
        .iter()
        .take(MAX_CHAT_FACTS)
        .map(|f| format!("*{}:* {}", f.label, chat_text(&f.value, 300)))
        .collect();
    if !facts.is_empty() {
        description.push_str("\n\n");
        description.push_str(&facts.join("\n"));
    }
    if alert.facts.len() > MAX_CHAT_FACTS {
        description.push_str(&format!(
            "\n… {} more in the e-mail",
            alert.facts.len() - MAX_CHAT_FACTS
        ));
    }
    let mut next_steps: Vec<String> = alert
        .next_steps
        .iter()
        .take(MAX_CHAT_STEPS)
        .map(|s| chat_text(s, MAX_STEP_CHARS))
        .collect();
    // The alert's own links (built by `links.rs` from percent-encoded segments), in Slack's link form as AWS's
    // samples write it; Amazon Q renders it in the channel's markdown.
    next_steps.extend(
        alert
            .links
            .iter()
            .filter(|l| !l.url.contains(['<', '>', '|', ' ']))
            .map(|l| format!("Open <{}|{}>", l.url, l.label)),
    );
    let mut context = Map::new();
    context.insert("eventType".into(), json!(alert.event_type.slug()));
    context.insert("severity".into(), json!(alert.severity.as_str()));
    for (key, value) in [
        ("domain", &alert.routing.domain),
        ("modelGroup", &alert.routing.model_group),
        ("user", &alert.routing.user),
        ("eventId", &alert.origin.event_id),
    ] {
        if let Some(v) = value.as_deref().and_then(sanitize::attribute_value) {
            context.insert(key.into(), json!(chat_text(&v, 256)));
        }
    }
    let keywords: Vec<String> = [
        Some(alert.event_type.slug().to_string()),
        Some(alert.severity.as_str().to_string()),
        alert.routing.model_group.clone(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|k| sanitize::attribute_value(&k))
    .map(|k| chat_text(&k, 60))
    .collect();
    let mut doc = json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": sanitize::clip(&format!("{} {}", emoji(alert.severity), chat_text(subject, 200)), MAX_TITLE_CHARS, "…"),
            "description": sanitize::clip(&description, MAX_DESCRIPTION_CHARS, "…"),
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": thread_id(alert),
            "summary": chat_text(subject, 200),
            "eventType": alert.event_type.slug(),
            "relatedResources": related_resources(alert),
            "additionalContext": Value::Object(context),
        },
    });
    if let Some(id) = alert
        .origin
        .event_id
        .as_deref()
        .and_then(sanitize::attribute_value)
    {
        doc["id"] = json!(id);
    }
    doc
}

/// ARNs the alert is about (a model package's, when the details name one).
fn related_resources(alert: &Alert) -> Vec<String> {
    ["modelPackageArn", "arn"]
        .iter()
        .filter_map(|k| alert.details.get(*k).and_then(Value::as_str))
        .filter(|a| a.starts_with("arn:"))
        .map(|a| chat_text(a, 300))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{EventType, Fact, Link, Origin, Routing};

    fn alert(summary: &str, fact: &str) -> Alert {
        Alert {
            event_type: EventType::AppStopped,
            severity: Severity::Warning,
            subject: "stopped".into(),
            summary: summary.into(),
            facts: vec![Fact {
                label: "App",
                value: fact.into(),
            }],
            metrics: None,
            next_steps: vec!["Reopen it <!here>".into()],
            links: vec![Link {
                label: "Studio",
                url: "https://d-1.studio.us-east-1.sagemaker.aws/".into(),
            }],
            routing: Routing {
                domain: Some("d-1".into()),
                model_group: None,
                user: Some("ana".into()),
            },
            origin: Origin {
                detail_type: "App Stopped".into(),
                event_id: Some("e-1".into()),
                ..Default::default()
            },
            details: json!({}),
        }
    }

    #[test]
    fn the_form_has_what_the_schema_requires() {
        let n = notification(&alert("Ana's app stopped.", "gpu"), "[studio-ops] stopped");
        assert_eq!(n["version"], "1.0");
        assert_eq!(n["source"], "custom");
        assert_eq!(n["content"]["textType"], "client-markdown");
        assert!(!n["content"]["description"].as_str().unwrap().is_empty());
        assert_eq!(n["metadata"]["threadId"], "user-ana");
        assert_eq!(n["metadata"]["additionalContext"]["user"], "ana");
        assert_eq!(n["id"], "e-1");
        let steps = n["content"]["nextSteps"].as_array().unwrap();
        assert_eq!(
            steps.last().unwrap(),
            "Open <https://d-1.studio.us-east-1.sagemaker.aws/|Studio>"
        );
    }

    #[test]
    fn nothing_from_an_event_can_mention_people_or_disguise_a_link() {
        let hostile = "<!channel> see <https://evil.example|your budget> `code` [your bill](https://evil.example)";
        let n = notification(&alert(hostile, hostile), hostile);
        let text = n.to_string();
        for bad in ["<!channel>", "<https://evil", "`", "](https://evil"] {
            assert!(!text.contains(bad), "{bad} reached the chat form: {text}");
        }
        // The only link left is the alert's own.
        assert_eq!(text.matches("<https://").count(), 1, "{text}");
        assert!(
            n["content"]["nextSteps"][0]
                .as_str()
                .unwrap()
                .contains("‹!here›")
        );
    }

    #[test]
    fn long_texts_stay_within_the_schema() {
        let long = "x".repeat(20_000);
        let mut a = alert(&long, &long);
        a.facts = (0..40)
            .map(|_| Fact {
                label: "Why",
                value: long.clone(),
            })
            .collect();
        let n = notification(&a, &long);
        assert!(n["content"]["title"].as_str().unwrap().chars().count() <= MAX_TITLE_CHARS);
        let d = n["content"]["description"].as_str().unwrap();
        assert!(d.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(
            d.ends_with("28 more in the e-mail"),
            "{}",
            &d[d.len() - 40..]
        );
    }
}
