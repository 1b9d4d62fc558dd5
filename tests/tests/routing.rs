//! Events reach the right function, and only it: every fixture in `events/` is put on moto's EventBridge with
//! the rules `infra/template.yaml` declares, and delivered through the real Lambda runtime protocol.

use serde_json::{Value, json};
use studio_ops_tests::moto::workspace_root;
use studio_ops_tests::runtime_api::Outcome;
use studio_ops_tests::world::{FUNCTIONS, World, WorldConfig, fixture};

/// `(function, file)` for every fixture, sorted.
fn fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for function in FUNCTIONS {
        let dir = workspace_root().join("events").join(function);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if name.ends_with(".json") {
                out.push((function.to_string(), name));
            }
        }
    }
    out.sort();
    out
}

/// Scheduled and manual invocations reach a function directly, not through a rule's pattern.
fn is_direct(event: &Value) -> bool {
    event
        .get("detail-type")
        .and_then(Value::as_str)
        .is_none_or(|dt| dt == "Scheduled Event")
}

#[tokio::test]
async fn every_fixture_matches_its_functions_rule_and_no_other() {
    let world = World::start(WorldConfig::default()).await.unwrap();
    let mut routed = 0;
    for (function, file) in fixtures() {
        let event = fixture(&format!("{function}/{file}")).unwrap();
        if is_direct(&event) {
            continue;
        }
        let matched = world.route(&event).await.unwrap();
        assert!(!matched.is_empty(), "{function}/{file} matches no rule");
        for m in &matched {
            assert!(
                m.starts_with(&format!("{function}/")),
                "{function}/{file} also matches {m}"
            );
        }
        assert_eq!(matched.len(), 1, "{function}/{file} matched {matched:?}");
        routed += 1;
    }
    assert!(routed >= 20, "only {routed} fixtures were routed");
    // Something the suite must not react to reaches nobody.
    let unrelated = json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "x"}}});
    assert!(world.route(&unrelated).await.unwrap().is_empty());
    let tag_push = {
        let mut e = fixture("train-on-push/codecommit-reference-updated.json").unwrap();
        e["detail"]["referenceType"] = json!("tag");
        e
    };
    assert!(
        world.route(&tag_push).await.unwrap().is_empty(),
        "tag events are ignored by the rule"
    );
    world.stop().await;
}

#[tokio::test]
async fn every_function_runs_as_a_lambda_process_and_rejects_malformed_events() {
    let world = World::start(WorldConfig::all_functions()).await.unwrap();
    for function in FUNCTIONS {
        let (inv, _) = world
            .invoke(
                function,
                json!({"detail-type": "Nonsense", "source": "x", "detail": {}}),
            )
            .await
            .unwrap();
        assert_eq!(
            inv.outcome.error_type(),
            Some("NonRetryable"),
            "{function}: {:?}",
            inv.outcome
        );
        match &inv.outcome {
            Outcome::Error { error_message, .. } => {
                assert!(
                    error_message.contains("malformed"),
                    "{function}: {error_message}"
                )
            }
            other => panic!("{function}: {other:?}"),
        }
    }
    world.stop().await;
}
