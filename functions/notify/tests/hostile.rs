//! Hostile event fields through the whole pipeline (parse → alert → render): whatever a name, reason or
//! metric contains, the subject stays a valid SNS subject, attributes stay valid and non-empty, and the text
//! keeps its layout.

use notify::alert::alert_for;
use notify::context::AlertContext;
use notify::model_package::Enrichment;
use notify::render::{OutgoingMessage, render};
use notify::trigger::parse as parse_trigger;
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/notify/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn send(event: &Value) -> OutgoingMessage {
    let trigger = parse_trigger(event).unwrap();
    let ctx = AlertContext::from_envelope(event, Some("us-east-1"), Some("d-studioops0001"));
    render(
        &alert_for(&trigger, &Enrichment::default(), &ctx),
        "[studio-ops]",
    )
}

fn assert_well_formed(m: &OutgoingMessage) -> Result<(), TestCaseError> {
    prop_assert!(
        !m.subject.is_empty() && m.subject.chars().count() < 100,
        "{:?}",
        m.subject
    );
    prop_assert!(m.subject.is_ascii() && !m.subject.chars().any(|c| c.is_control()));
    prop_assert!(m.subject.starts_with("[studio-ops] "));
    for (name, value) in &m.attributes {
        prop_assert!(!value.trim().is_empty(), "{name}");
        prop_assert!(value.chars().count() <= 256, "{name}");
        prop_assert!(!value.chars().any(|c| c.is_control()), "{name}: {value:?}");
    }
    prop_assert!(
        !m.text.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        m.text
    );
    // Every body line is the summary, a section heading, an indented entry, blank, or the footer.
    for line in m.text.lines() {
        let known = line.is_empty()
            || line.starts_with("  ")
            || [
                "Details",
                "What to do next",
                "Links",
                "-- ",
                "studio-ops notify | ",
                "Receive only",
                "Metrics",
            ]
            .iter()
            .any(|p| line.starts_with(p));
        prop_assert!(
            known || line == m.text.lines().next().unwrap_or(""),
            "stray line {line:?}"
        );
    }
    let envelope: Value = serde_json::from_str(&m.sns_message()).unwrap();
    prop_assert!(envelope["default"].is_string() && envelope["sqs"].is_string());
    Ok(())
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,300}",
        Just("a\r\nSubject: injected\r\n\r\nbody".to_string()),
        Just("\u{202E}gnp.exe\u{200B}\u{FEFF}".to_string()),
        Just("\u{1b}[2J\u{1b}[31mred".to_string()),
        Just("x".repeat(5000)),
        Just("José Müller 模型 😀".to_string()),
        Just(" \n\t ".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn idle_warning_survives_hostile_fields(user in hostile(), app in hostile(), instance in hostile(), reason in hostile(), stops in hostile()) {
        let mut e = fixture("studio-ops-app-idle-warning.json");
        e["detail"]["userProfileName"] = json!(user);
        e["detail"]["appType"] = json!(app);
        e["detail"]["instanceType"] = json!(instance);
        e["detail"]["reason"] = json!(reason);
        e["detail"]["stopsAt"] = json!(stops);
        assert_well_formed(&send(&e))?;
    }

    #[test]
    fn model_package_survives_hostile_fields(group in hostile(), reviewer in hostile(), note in hostile(), author in hostile(), metric in hostile()) {
        let mut e = fixture("sagemaker-model-package-approved.json");
        e["detail"]["ModelPackageGroupName"] = json!(group);
        e["detail"]["LastModifiedBy"]["UserProfileName"] = json!(reviewer);
        e["detail"]["ApprovalDescription"] = json!(note);
        e["detail"]["CustomerMetadataProperties"]["studio-ops:author"] = json!(author);
        e["detail"]["CustomerMetadataProperties"][format!("studio-ops:metric:{metric}")] = json!("1.5");
        assert_well_formed(&send(&e))?;
    }

    #[test]
    fn training_rejection_survives_hostile_fields(file in hostile(), reason in hostile(), author in hostile(), commit in hostile()) {
        let mut e = fixture("studio-ops-training-rejected.json");
        e["detail"]["file"] = json!(file);
        e["detail"]["reason"] = json!(reason);
        e["detail"]["author"] = json!(author);
        e["detail"]["commitId"] = json!(commit);
        assert_well_formed(&send(&e))?;
    }

    #[test]
    fn provisioning_survives_hostile_fields(user in hostile(), profile in hostile(), domain in hostile()) {
        let mut e = fixture("studio-ops-user-provisioned.json");
        e["detail"]["userName"] = json!(user);
        e["detail"]["userProfileName"] = json!(profile);
        e["detail"]["domainId"] = json!(domain);
        let m = send(&e);
        assert_well_formed(&m)?;
        // A hostile domain id never becomes a link host.
        for (label, url) in m.document["links"].as_object().unwrap() {
            let url = url.as_str().unwrap();
            prop_assert!(
                url.starts_with("https://d-studioops0001.studio.us-east-1.sagemaker.aws/")
                    || url.starts_with("https://us-east-1.console.aws.amazon.com/")
                    || url.starts_with(&format!("https://{}.studio.us-east-1.sagemaker.aws/", domain)),
                "{label}: {url}"
            );
        }
    }
}
