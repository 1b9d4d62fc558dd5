//! Golden files: every fixture in `events/notify/` rendered as the message the team receives, one file per
//! alert kind under `tests/golden/`, and the examples section of `docs/notify.md` generated from them.
//! Regenerate both after an intended change with `UPDATE_GOLDEN=1 cargo test -p notify --test golden`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use notify::alert::alert_for;
use notify::context::AlertContext;
use notify::model_package::{Enrichment, PackageDetails};
use notify::render::{OutgoingMessage, render};
use notify::trigger::{Trigger, parse as parse_trigger};
use serde_json::Value;

const DOCS_START: &str =
    "<!-- BEGIN GENERATED ALERT EXAMPLES (UPDATE_GOLDEN=1 cargo test -p notify --test golden) -->";
const DOCS_END: &str = "<!-- END GENERATED ALERT EXAMPLES -->";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

/// What the registry answers in these examples: v3 described, v2 the approved version compared with.
fn enrichment() -> Enrichment {
    let group = Some("churn-xgboost".to_string());
    Enrichment {
        described: Some(PackageDetails {
            arn: "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/3".into(),
            group: group.clone(),
            version: Some(3),
            description: Some("churn-xgboost trained from commit f485fcc".into()),
            created_by: Some("studio-ops-train-on-push".into()),
            quality_report: Some(
                "s3://studio-ops-data-123456789012/models/churn-xgboost/churn-xgboost-f485fcc/evaluation.json".into(),
            ),
            ..Default::default()
        }),
        baseline: Some(PackageDetails {
            arn: "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/2".into(),
            group,
            version: Some(2),
            approval_status: Some("Approved".into()),
            metrics: BTreeMap::from([
                ("validation:auc".to_string(), 0.898),
                ("train:auc".to_string(), 0.951),
            ]),
            ..Default::default()
        }),
        problem: None,
    }
}

fn rendered() -> Vec<(String, OutgoingMessage)> {
    let dir = crate_dir().join("../../events/notify");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let trigger = parse_trigger(&event).unwrap();
            let enrichment = match trigger {
                Trigger::ModelPackage(_) => enrichment(),
                Trigger::Suite(_) => Enrichment::default(),
            };
            let ctx =
                AlertContext::from_envelope(&event, Some("us-east-1"), Some("d-studioops0001"));
            let message = render(&alert_for(&trigger, &enrichment, &ctx), "[studio-ops]");
            let kind = message.attribute("event_type").unwrap().to_string();
            (kind, message)
        })
        .collect()
}

fn attributes_line(m: &OutgoingMessage) -> String {
    m.attributes
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("  ")
}

fn golden_text(m: &OutgoingMessage) -> String {
    format!(
        "Subject: {}\nAttributes: {}\n\n{}\n==== JSON (sqs, lambda, http, email-json) ====\n{}\n\
         ==== Amazon Q Developer in chat applications (https) ====\n{}\n",
        m.subject,
        attributes_line(m),
        m.text,
        serde_json::to_string_pretty(&m.document).unwrap(),
        serde_json::to_string_pretty(&m.chat).unwrap()
    )
}

/// Writes when updating, else compares; returns a description of the mismatch.
fn check(path: &Path, want: &str) -> Option<String> {
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, want).unwrap();
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(have) if have == want => None,
        Ok(have) => {
            let line = have
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
            Some(format!(
                "{} differs from line {}:\n  golden: {:?}\n  now:    {:?}",
                path.display(),
                line + 1,
                have.lines().nth(line).unwrap_or("<end>"),
                want.lines().nth(line).unwrap_or("<end>")
            ))
        }
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}

#[test]
fn every_alert_kind_matches_its_golden_file() {
    let messages = rendered();
    assert_eq!(messages.len(), 20, "3 model-package kinds + 17 suite kinds");
    let mut problems = Vec::new();
    for (kind, m) in &messages {
        let path = crate_dir().join("tests/golden").join(format!("{kind}.txt"));
        problems.extend(check(&path, &golden_text(m)));
    }
    assert!(
        problems.is_empty(),
        "{}\n(if the change is intended: UPDATE_GOLDEN=1 cargo test -p notify --test golden)",
        problems.join("\n")
    );
}

/// Every alert kind's chat form is what Amazon Q Developer in chat applications accepts (its custom notification
/// schema: `version` "1.0", `source` "custom", a non-empty `content.description`, `textType` `client-markdown`,
/// title at most 250 characters, description at most 8,000), and is the message's `https` entry.
#[test]
fn every_alert_kinds_chat_form_keeps_the_amazon_q_schema() {
    for (kind, m) in rendered() {
        let c = &m.chat;
        assert_eq!(c["version"], "1.0", "{kind}");
        assert_eq!(c["source"], "custom", "{kind}");
        assert_eq!(c["content"]["textType"], "client-markdown", "{kind}");
        let title = c["content"]["title"].as_str().unwrap_or_default();
        let description = c["content"]["description"].as_str().unwrap_or_default();
        assert!(
            !title.is_empty() && title.chars().count() <= 250,
            "{kind}: {title}"
        );
        assert!(
            !description.is_empty() && description.chars().count() <= 8_000,
            "{kind}"
        );
        for list in ["nextSteps", "keywords"] {
            assert!(
                c["content"][list]
                    .as_array()
                    .is_some_and(|l| l.iter().all(|x| x.is_string())),
                "{kind}: {list}"
            );
        }
        assert_eq!(c["metadata"]["eventType"], kind.as_str());
        assert!(c["metadata"]["additionalContext"].is_object(), "{kind}");
        let envelope: Value = serde_json::from_str(&m.sns_message()).unwrap();
        let https: Value = serde_json::from_str(envelope["https"].as_str().unwrap()).unwrap();
        assert_eq!(&https, c, "{kind}: the https entry is the chat form");
    }
}

/// The order the docs show the kinds in: the registry first, then the suite's story of a day.
const DOC_ORDER: [&str; 17] = [
    "model-package-pending",
    "model-package-approved",
    "model-package-rejected",
    "model-registered",
    "training-started",
    "training-failed",
    "training-rejected",
    "app-idle-warning",
    "app-stopped",
    "idle-sweep-completed",
    "budget-alert",
    "spend-digest",
    "team-digest",
    "user-provisioned",
    "user-deprovisioned",
    "provisioning-blocked",
    "provisioning-failed",
];

fn docs_section(messages: &[(String, OutgoingMessage)]) -> String {
    let by_kind: BTreeMap<&str, &OutgoingMessage> =
        messages.iter().map(|(k, m)| (k.as_str(), m)).collect();
    let mut out = String::new();
    out.push_str(DOCS_START);
    out.push('\n');
    for kind in DOC_ORDER {
        let m = by_kind[kind];
        out.push_str(&format!(
            "\n#### `{kind}`\n\nAttributes: {}\n\n```text\nSubject: {}\n\n{}```\n",
            m.attributes
                .iter()
                .map(|(n, v)| format!("`{n}={v}`"))
                .collect::<Vec<_>>()
                .join(" "),
            m.subject,
            m.text
        ));
    }
    let approved = by_kind["model-package-approved"];
    out.push_str(&format!(
        "\n#### The JSON form (`model-package-approved`)\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&approved.document).unwrap()
    ));
    let budget = by_kind["budget-alert"];
    out.push_str(&format!(
        "\n#### The chat form (`budget-alert`, the `https` entry: Amazon Q Developer in chat applications)\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&budget.chat).unwrap()
    ));
    out.push('\n');
    out.push_str(DOCS_END);
    out
}

#[test]
fn docs_examples_are_generated_from_the_golden_files() {
    let path = crate_dir().join("../../docs/notify.md");
    let docs = std::fs::read_to_string(&path).expect("docs/notify.md exists");
    let start = docs
        .find(DOCS_START)
        .expect("docs/notify.md has the start marker");
    let end = docs
        .find(DOCS_END)
        .expect("docs/notify.md has the end marker")
        + DOCS_END.len();
    let want = format!(
        "{}{}{}",
        &docs[..start],
        docs_section(&rendered()),
        &docs[end..]
    );
    if let Some(problem) = check(&path, &want) {
        panic!("{problem}\n(regenerate: UPDATE_GOLDEN=1 cargo test -p notify --test golden)");
    }
}

#[test]
fn attribute_sets_per_kind() {
    // Which routing attributes each kind carries for the fixtures (event_type and severity always do).
    let want: BTreeMap<&str, (&str, &[&str])> = BTreeMap::from([
        (
            "model-package-pending",
            ("info", &["domain", "model_group", "user"][..]),
        ),
        (
            "model-package-approved",
            ("info", &["domain", "model_group", "user"][..]),
        ),
        (
            "model-package-rejected",
            ("warning", &["domain", "model_group", "user"][..]),
        ),
        (
            "model-registered",
            ("info", &["domain", "model_group", "user"][..]),
        ),
        (
            "training-started",
            ("info", &["domain", "model_group", "user"][..]),
        ),
        (
            "training-failed",
            ("error", &["domain", "model_group", "user"][..]),
        ),
        ("training-rejected", ("warning", &["domain", "user"][..])),
        ("push-caught-up", ("info", &["domain", "user"][..])),
        ("shared-space-ready", ("info", &["domain"][..])),
        ("shared-space-removed", ("warning", &["domain"][..])),
        ("app-idle-warning", ("warning", &["domain", "user"][..])),
        ("app-stopped", ("warning", &["domain", "user"][..])),
        ("idle-sweep-completed", ("info", &[][..])),
        ("user-provisioned", ("info", &["domain", "user"][..])),
        ("user-deprovisioned", ("info", &["domain", "user"][..])),
        ("provisioning-blocked", ("error", &["domain"][..])),
        ("provisioning-failed", ("error", &["domain", "user"][..])),
        ("budget-alert", ("warning", &["domain", "user"][..])),
        ("spend-digest", ("info", &["domain", "user"][..])),
        ("team-digest", ("warning", &[][..])),
    ]);
    let messages = rendered();
    assert_eq!(messages.len(), want.len());
    for (kind, m) in &messages {
        let (severity, routed) = want[kind.as_str()];
        let names: Vec<&str> = m.attributes.iter().map(|(n, _)| *n).collect();
        let mut expected = vec!["event_type", "severity"];
        expected.extend_from_slice(routed);
        assert_eq!(names, expected, "{kind}");
        assert_eq!(m.attribute("severity"), Some(severity), "{kind}");
        assert!(
            m.attributes.iter().all(|(_, v)| !v.trim().is_empty()),
            "{kind}"
        );
        assert!(
            m.subject.len() < 100 && m.subject.is_ascii(),
            "{kind}: {}",
            m.subject
        );
    }
}
