//! The registration use case against the in-memory fakes (`adapters::memory`): what a finished job registers
//! and publishes, once.

use std::sync::Mutex;

use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::idempotency::MemoryIdempotencyStore;
use studio_ops_shared::publisher::RecordingPublisher;

use crate::adapters::memory::*;
use crate::handler::{Handler, Outcome};
use crate::ports::Ports;

fn events(h: &TestHandler) -> Vec<SuiteEvent> {
    h.ports().publisher.taken()
}

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
async fn a_completed_job_registers_one_pending_version() {
    let h = handler(FakeRepo::default(), &[]);
    for _ in 0..3 {
        h.handle(
            job_event("sagemaker-training-job-completed.json"),
            Context::default(),
        )
        .await
        .unwrap();
    }
    let versions = h.ports().registry.versions.lock().unwrap().clone();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v.group, "churn-xgboost");
    assert_eq!(v.commit_id, "f485fcc95a795517f279d0a877227e51208b0dfc");
    assert_eq!(
        v.model_data_url,
        "s3://studio-ops-data-123456789012/models/churn-xgboost/churn-xgboost-f485fcc/output/model.tar.gz"
    );
    assert_eq!(v.content_types, vec!["text/csv"]);
    assert_eq!(
        v.image,
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    );
    assert_eq!(
        v.customer_metadata["studio-ops:metric:validation:auc"],
        "0.912"
    );
    assert_eq!(
        *h.ports().registry.groups.lock().unwrap(),
        vec!["churn-xgboost"]
    );
    let published = events(&h);
    let [SuiteEvent::ModelRegistered(m)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(m.model_package_version, Some(1));
    assert_eq!(m.metrics["validation:auc"], 0.912);
    assert_eq!(
        m.commit_id.as_deref(),
        Some("f485fcc95a795517f279d0a877227e51208b0dfc")
    );
}

#[tokio::test]
async fn a_version_registered_before_is_found_not_duplicated() {
    let h = handler(FakeRepo::default(), &[]);
    h.handle(
        job_event("sagemaker-training-job-completed.json"),
        Context::default(),
    )
    .await
    .unwrap();
    // The idempotency record is lost (expired): the registry's marker still finds the version.
    let h2 = Handler::new(
        config(&[]),
        Ports {
            source: FakeRepo::default(),
            training: FakeTraining::default(),
            registry: FakeRegistry {
                groups: Mutex::new(h.ports().registry.groups.lock().unwrap().clone()),
                versions: Mutex::new(h.ports().registry.versions.lock().unwrap().clone()),
                ..FakeRegistry::default()
            },
            artifacts: FakeArtifacts::default(),
            publisher: RecordingPublisher::default(),
            idempotency: MemoryIdempotencyStore::default(),
            tracker: Some(FakeTracker::default()),
            ledger: Some(FakeLedger::default()),
            state: FakeState::default(),
        },
    );
    h2.handle(
        job_event("sagemaker-training-job-completed.json"),
        Context::default(),
    )
    .await
    .unwrap();
    assert_eq!(h2.ports().registry.versions.lock().unwrap().len(), 1);
    assert!(matches!(
        events(&h2).as_slice(),
        [SuiteEvent::ModelRegistered(_)]
    ));
}

#[tokio::test]
async fn failed_and_stopped_jobs_are_reported_once() {
    let h = handler(FakeRepo::default(), &[]);
    for _ in 0..2 {
        h.handle(
            job_event("sagemaker-training-job-failed.json"),
            Context::default(),
        )
        .await
        .unwrap();
    }
    let published = events(&h);
    let [SuiteEvent::TrainingFailed(f)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(f.status, "Failed");
    assert!(f.failure_reason.starts_with("AlgorithmError"));
    assert_eq!(f.branch.as_deref(), Some("main"));
    // Stopped (same job, another outcome): reported once too, with the secondary status as the reason.
    h.handle(
        job_event("sagemaker-training-job-stopped.json"),
        Context::default(),
    )
    .await
    .unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingFailed(f)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(f.failure_reason, "the job was stopped (MaxRuntimeExceeded)");
}

#[tokio::test]
async fn jobs_of_others_and_in_progress_states_are_ignored() {
    let h = handler(FakeRepo::default(), &[]);
    let mut foreign = job_event("sagemaker-training-job-completed.json");
    foreign["detail"]["Tags"] = json!({"team": "other"});
    let out = h.handle(foreign, Context::default()).await.unwrap();
    assert!(
        matches!(&out, Outcome::Ignored { reason, .. } if reason == "not started by studio-ops"),
        "{out:?}"
    );
    let mut running = job_event("sagemaker-training-job-completed.json");
    running["detail"]["TrainingJobStatus"] = json!("InProgress");
    assert!(matches!(
        h.handle(running, Context::default()).await.unwrap(),
        Outcome::Ignored { .. }
    ));
    // No tags in the event: ListTags decides (the fake knows no such job: not ours).
    let mut untagged = job_event("sagemaker-training-job-completed.json");
    untagged["detail"].as_object_mut().unwrap().remove("Tags");
    let out = h.handle(untagged, Context::default()).await.unwrap();
    assert!(
        matches!(&out, Outcome::Ignored { reason, .. } if reason == "not started by studio-ops"),
        "{out:?}"
    );
    assert_eq!(*h.ports().training.tag_calls.lock().unwrap(), 1);
    assert!(h.ports().registry.versions.lock().unwrap().is_empty());
    assert!(events(&h).is_empty());
}

#[tokio::test]
async fn an_answer_recorded_in_an_older_shape_counts_as_already_done() {
    use studio_ops_shared::idempotency::IdempotencyStore;
    let h = handler(FakeRepo::default(), &[]);
    let event = job_event("sagemaker-training-job-completed.json");
    let arn = event["detail"]["TrainingJobArn"]
        .as_str()
        .unwrap()
        .to_string();
    // What an earlier release stored for this job: not an `Outcome`.
    let key = format!("register#{arn}");
    let store = &h.ports().idempotency;
    let until = jiff::Timestamp::now() + std::time::Duration::from_secs(60);
    store.claim(&key, until).await.unwrap();
    let old = json!({"registered": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/1", "job": "churn-xgboost-f485fcc"});
    store.complete(&key, &old).await.unwrap();
    let out = h.handle(event, Context::default()).await.unwrap();
    assert_eq!(
        out,
        Outcome::Duplicate {
            job: "churn-xgboost-f485fcc".into(),
            previous: None
        }
    );
    assert!(h.ports().registry.versions.lock().unwrap().is_empty());
    assert!(events(&h).is_empty());
}

/// A push starts churn-xgboost's job (the fakes); its completion, delivered three times, is recorded once in the
/// spend ledger, billed to the author's profile, at the training price.
#[tokio::test]
async fn a_finished_jobs_spend_is_recorded_once_under_its_authors_profile() {
    use crate::naming::tag;
    let churn = "models/churn-xgboost/training.toml";
    let text = std::fs::read_to_string(format!("{FIXTURES}/{churn}")).unwrap();
    let repo = repo_with_change(churn, Some(&text.replace("eta = 0.2", "eta = 0.3")), "eta");
    let h = handler(
        repo,
        &[
            (crate::config::SPEND_TABLE, "studio-ops-spend"),
            (crate::config::DOMAIN_ID, "d-studioops0001"),
        ],
    );
    let push = push_event("referenceUpdated", Some(C1), C2, "main");
    h.handle(push, Context::default()).await.unwrap();
    let spec = h.ports().training.created.lock().unwrap()[0].clone();
    let author = spec
        .tags
        .iter()
        .find(|(k, _)| k == tag::AUTHOR)
        .map(|(_, v)| v.clone())
        .expect("the job names its author");
    let profile = crate::cost::profile_candidates(&author).pop().unwrap();
    h.ports()
        .training
        .profiles
        .lock()
        .unwrap()
        .push(profile.clone());

    let mut done = job_event("sagemaker-training-job-completed.json");
    done["detail"]["TrainingJobName"] = json!(spec.name);
    done["detail"]["TrainingJobArn"] = json!(format!(
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/{}",
        spec.name
    ));
    done["detail"].as_object_mut().unwrap().remove("Tags");
    for _ in 0..3 {
        h.handle(done.clone(), Context::default()).await.unwrap();
    }
    let records = h
        .ports()
        .ledger
        .as_ref()
        .unwrap()
        .records
        .lock()
        .unwrap()
        .clone();
    assert_eq!(records.len(), 1, "{records:?}");
    let usage = &records[&format!("training#{}", spec.name)];
    assert_eq!(usage.kind, "training-job");
    assert_eq!(usage.account.key(), format!("user/{profile}"));
    assert_eq!(usage.domain_id, "d-studioops0001");
    assert_eq!(usage.month, "2025-12");
    assert_eq!(usage.seconds, i64::from(FAKE_BILLABLE_SECONDS));
    // ml.m5.xlarge at the us-east-1 training price, 10 minutes.
    assert_eq!(usage.usd_per_hour, Some(0.23));
    assert!((usage.usd().unwrap() - 0.23 / 6.0).abs() < 1e-9);
}

/// A run MLflow no longer has (deleted by an admin) is not closed, and the version is registered all the same.
#[tokio::test]
async fn a_run_mlflow_refuses_to_close_does_not_hold_back_the_version() {
    let h = handler(FakeRepo::default(), &[]);
    let mut done = job_event("sagemaker-training-job-completed.json");
    let tags = done["detail"]["Tags"].as_object_mut().unwrap();
    tags.insert(
        crate::naming::tag::MLFLOW_RUN_ID.into(),
        json!("deleted-run"),
    );
    tags.insert(crate::naming::tag::MLFLOW_EXPERIMENT_ID.into(), json!("7"));
    let out = h.handle(done, Context::default()).await.unwrap();
    assert!(matches!(out, Outcome::Registered { .. }), "{out:?}");
    assert_eq!(h.ports().registry.versions.lock().unwrap().len(), 1);
    let published = events(&h);
    let [SuiteEvent::ModelRegistered(m)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(m.mlflow_run_id.as_deref(), Some("deleted-run"));
}

/// An author no profile of the domain matches: the job's spend is billed to its repository.
#[tokio::test]
async fn spend_without_the_authors_profile_goes_to_the_repository() {
    let churn = "models/churn-xgboost/training.toml";
    let text = std::fs::read_to_string(format!("{FIXTURES}/{churn}")).unwrap();
    let repo = repo_with_change(churn, Some(&text.replace("eta = 0.2", "eta = 0.3")), "eta");
    let h = handler(
        repo,
        &[
            (crate::config::SPEND_TABLE, "studio-ops-spend"),
            (crate::config::DOMAIN_ID, "d-studioops0001"),
        ],
    );
    let push = push_event("referenceUpdated", Some(C1), C2, "main");
    h.handle(push, Context::default()).await.unwrap();
    let job = h.ports().training.created.lock().unwrap()[0].name.clone();
    let mut done = job_event("sagemaker-training-job-completed.json");
    done["detail"]["TrainingJobName"] = json!(job);
    done["detail"]["TrainingJobArn"] = json!(format!(
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}"
    ));
    done["detail"].as_object_mut().unwrap().remove("Tags");
    h.handle(done, Context::default()).await.unwrap();
    let records = h
        .ports()
        .ledger
        .as_ref()
        .unwrap()
        .records
        .lock()
        .unwrap()
        .clone();
    let usage = &records[&format!("training#{job}")];
    assert_eq!(usage.account.key(), "repository/sagemaker-repository");
}
