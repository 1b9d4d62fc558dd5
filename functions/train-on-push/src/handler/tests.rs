//! The handler's own part: parsing and classifying what cannot be handled, and the typed answer's shape.

use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::{ErrorClass, Failure};

use crate::adapters::memory::*;

fn job_event(fixture: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/train-on-push/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn malformed_events_are_non_retryable() {
    let h = handler(FakeRepo::default(), &[]);
    let mut e = job_event("sagemaker-training-job-completed.json");
    e["detail"]
        .as_object_mut()
        .unwrap()
        .remove("TrainingJobArn");
    let err = h.handle(e, Context::default()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("TrainingJobArn"), "{err}");
    let err = h
        .handle(json!({"detail-type": "Coffee"}), Context::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
}

#[test]
fn answers_carry_one_outcome_tag_and_read_back() {
    use super::Outcome;
    let ignored = Outcome::Ignored {
        reason: "status InProgress".into(),
        job: None,
    };
    assert_eq!(
        serde_json::to_value(&ignored).unwrap(),
        json!({"outcome": "ignored", "reason": "status InProgress"})
    );
    let duplicate = Outcome::Duplicate {
        job: "churn-xgboost-f485fcc".into(),
        previous: Some(Box::new(Outcome::FailureReported {
            job: "churn-xgboost-f485fcc".into(),
            status: "Failed".into(),
            reason: "AlgorithmError".into(),
        })),
    };
    let value = serde_json::to_value(&duplicate).unwrap();
    assert_eq!(value["outcome"], "duplicate");
    assert_eq!(value["previous"]["outcome"], "failure-reported");
    assert_eq!(serde_json::from_value::<Outcome>(value).unwrap(), duplicate);
}
