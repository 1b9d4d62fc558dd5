//! The push use case against the in-memory fakes (`adapters::memory`): which calls a push makes, which jobs
//! start, and what it publishes.

use std::collections::BTreeMap;

use lambda_runtime::Context;
use serde_json::Value;
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::{AwsCallError, ErrorClass, Failure};

use super::ModelOutcome;
use crate::adapters::memory::*;
use crate::handler::Outcome;

fn update(old: &str, new: &str) -> Value {
    push_event("referenceUpdated", Some(old), new, "main")
}

fn events(h: &TestHandler) -> Vec<SuiteEvent> {
    h.ports().publisher.taken()
}

const CHURN_PATH: &str = "models/churn-xgboost/training.toml";

fn churn_with(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{CHURN_PATH}")).unwrap();
    assert!(text.contains(from));
    text.replacen(from, to, 1)
}

/// The per-model answers of a push.
fn models(out: &Outcome) -> &BTreeMap<String, ModelOutcome> {
    match out {
        Outcome::Pushed { models, .. } => models,
        other => panic!("not a push's answer: {other:?}"),
    }
}

#[tokio::test]
async fn a_push_changing_one_model_starts_exactly_its_job() {
    let repo = repo_with_change(
        CHURN_PATH,
        Some(&churn_with("max_depth = 5", "max_depth = 6")),
        "deeper trees",
    );
    let h = handler(repo, &[]);
    let out = h.handle(update(C1, C2), Context::default()).await.unwrap();
    let created = h.ports().training.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1, "{out:?}");
    assert_eq!(created[0].name, "churn-xgboost-2222222");
    assert_eq!(created[0].hyperparameters["max_depth"], "6");
    assert_eq!(
        *h.ports().training.experiments.lock().unwrap(),
        vec![
            ("experiment".to_string(), "churn".to_string()),
            ("trial".to_string(), "churn-xgboost-2222222".to_string())
        ]
    );
    let published = events(&h);
    let [SuiteEvent::TrainingStarted(s)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(s.training_job_name, "churn-xgboost-2222222");
    assert_eq!(s.author.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(s.commit_id, C2);
    assert_eq!(s.experiment.as_deref(), Some("churn"));
    assert_eq!(
        models(&out)["churn-xgboost"],
        ModelOutcome::Started {
            job: "churn-xgboost-2222222".into()
        }
    );
}

#[tokio::test]
async fn replaying_a_push_starts_nothing_more() {
    let repo = repo_with_change(
        CHURN_PATH,
        Some(&churn_with("eta = 0.2", "eta = 0.1")),
        "slower",
    );
    let h = handler(repo, &[]);
    for _ in 0..3 {
        h.handle(update(C1, C2), Context::default()).await.unwrap();
    }
    assert_eq!(h.ports().training.created.lock().unwrap().len(), 1);
    assert_eq!(events(&h).len(), 1, "one Training Started");
}

#[tokio::test]
async fn skip_train_starts_nothing() {
    let repo = repo_with_change(
        CHURN_PATH,
        Some(&churn_with("eta = 0.2", "eta = 0.1")),
        "tune eta [skip train]",
    );
    let h = handler(repo, &[]);
    let out = h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(matches!(out, Outcome::Skipped { .. }), "{out:?}");
    assert!(h.ports().training.created.lock().unwrap().is_empty());
    assert!(events(&h).is_empty());
}

#[tokio::test]
async fn a_bad_manifest_is_rejected_to_the_committer_and_starts_nothing() {
    let bad = churn_with(
        "[algorithm]",
        "role_arn = \"arn:aws:iam::999999999999:role/admin\"\n\n[algorithm]",
    );
    let line =
        u32::try_from(bad.lines().position(|l| l.starts_with("role_arn")).unwrap() + 1).unwrap();
    let h = handler(repo_with_change(CHURN_PATH, Some(&bad), "use my role"), &[]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(h.ports().training.created.lock().unwrap().is_empty());
    assert!(
        h.ports().training.experiments.lock().unwrap().is_empty(),
        "no experiment for a rejected manifest"
    );
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(r.file, CHURN_PATH);
    assert_eq!(r.line, Some(line));
    assert!(
        r.reason.contains("STUDIO_OPS_TRAINING_ROLE_ARN"),
        "{}",
        r.reason
    );
    assert_eq!(r.author.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(r.pushed_by.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(r.model.as_deref(), Some("churn-xgboost"));
    // A replay does not alert twice.
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(events(&h).is_empty());
}

#[tokio::test]
async fn branch_rules_and_new_branches() {
    let change = churn_with("eta = 0.2", "eta = 0.3");
    // A branch outside the patterns.
    let h = handler(repo_with_change(CHURN_PATH, Some(&change), "x"), &[]);
    let out = h
        .handle(
            push_event("referenceUpdated", Some(C1), C2, "feature/x"),
            Context::default(),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Ignored { .. }), "{out:?}");
    assert!(
        h.ports().source.calls.lock().unwrap().is_empty(),
        "no repository calls for an ignored push"
    );
    // A new branch: none by default, all when configured, named models always.
    let h = handler(repo_with_change(CHURN_PATH, Some(&change), "x"), &[]);
    h.handle(
        push_event("referenceCreated", None, C2, "main"),
        Context::default(),
    )
    .await
    .unwrap();
    assert!(h.ports().training.created.lock().unwrap().is_empty());
    let h = handler(
        repo_with_change(CHURN_PATH, Some(&change), "x"),
        &[("STUDIO_OPS_NEW_BRANCH_POLICY", "all")],
    );
    h.handle(
        push_event("referenceCreated", None, C2, "main"),
        Context::default(),
    )
    .await
    .unwrap();
    let names: Vec<String> = h
        .ports()
        .training
        .created
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![
            "churn-xgboost-2222222",
            "digits-cnn-2222222",
            "sales-arima-2222222",
            "translate-seq2seq-2222222"
        ]
    );
    let h = handler(
        repo_with_change(
            CHURN_PATH,
            Some(&change),
            "retrain on new data [train sales-arima]",
        ),
        &[("STUDIO_OPS_BRANCH_PATTERNS", "main,release/*")],
    );
    h.handle(
        push_event("referenceCreated", None, C2, "release/2026.11"),
        Context::default(),
    )
    .await
    .unwrap();
    let names: Vec<String> = h
        .ports()
        .training
        .created
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.name.clone())
        .collect();
    assert_eq!(names, vec!["sales-arima-2222222"]);
}

#[tokio::test]
async fn too_many_models_in_one_push_start_nothing() {
    let mut repo = FakeRepo::default();
    let base = FakeRepo::fixture_tree();
    let mut next = base.clone();
    for path in base.keys().filter(|p| p.ends_with("training.toml")) {
        let mut text = next[path].clone();
        text.extend_from_slice(b"\n# touched\n");
        next.insert(path.clone(), text);
    }
    repo.add(C1, "a", base);
    repo.add(C2, "touch all", next);
    let h = handler(repo, &[("STUDIO_OPS_MAX_JOBS_PER_PUSH", "3")]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(h.ports().training.created.lock().unwrap().is_empty());
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(r.file, "models");
    assert!(
        r.reason.starts_with("this push would train 4 models"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn script_mode_packages_the_source_at_the_commit() {
    let path = "models/digits-cnn/src/train.py";
    let h = handler(
        repo_with_change(path, Some("print('v2')\n"), "new script"),
        &[],
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let created = h.ports().training.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    let uri = created[0].source.as_ref().unwrap().s3_uri.clone();
    let objects = h.ports().artifacts.objects.lock().unwrap();
    let archive = objects.get(&uri).expect("the archive was uploaded");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut names = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut e, &mut body).unwrap();
        if name == "train.py" {
            assert_eq!(body, "print('v2')\n");
        }
        names.push(name);
    }
    assert_eq!(names, vec!["digits_data.py", "train.py"]);
}

#[tokio::test]
async fn script_mode_source_problems_are_rejections() {
    // The entry point is gone.
    let h = handler(
        repo_with_change("models/digits-cnn/src/train.py", None, "oops"),
        &[],
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(h.ports().training.created.lock().unwrap().is_empty());
    assert!(h.ports().artifacts.objects.lock().unwrap().is_empty());
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(
        r.reason,
        "entry_point train.py is not in models/digits-cnn/src at this commit"
    );
    assert_eq!(r.line, Some(7));
    // A symbolic link in the source.
    let mut repo = repo_with_change("models/digits-cnn/src/secrets", Some("/etc/shadow"), "link");
    repo.symlinks.push("models/digits-cnn/src/secrets".into());
    let h = handler(repo, &[]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert!(r.reason.contains("is a symbolic link"), "{}", r.reason);
    // Too many files.
    let h = handler(
        repo_with_change("models/digits-cnn/src/extra.py", Some("x = 1\n"), "more"),
        &[("STUDIO_OPS_SOURCE_MAX_FILES", "2")],
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert!(
        r.reason.starts_with("source_dir has more than 2 files"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn an_existing_job_is_checked_to_be_ours() {
    let repo = repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x");
    let h = handler(repo, &[]);
    // Someone else's job holds the name.
    h.ports().training.jobs.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        (
            "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-xgboost-2222222".into(),
            BTreeMap::new(),
        ),
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert!(r.reason.starts_with("a training job named churn-xgboost-2222222 already exists and was not started by studio-ops"), "{}", r.reason);

    // Ours (the idempotency record expired, the job stayed): no new job, Training Started again.
    let repo = repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x");
    let h = handler(repo, &[]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let jobs = std::mem::take(&mut *h.ports().training.jobs.lock().unwrap());
    let h2 = handler(
        repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x"),
        &[],
    );
    *h2.ports().training.jobs.lock().unwrap() = jobs;
    let out = h2.handle(update(C1, C2), Context::default()).await.unwrap();
    assert_eq!(
        models(&out)["churn-xgboost"],
        ModelOutcome::AlreadyStarted {
            job: "churn-xgboost-2222222".into()
        }
    );
    assert!(h2.ports().training.created.lock().unwrap().is_empty());
    assert!(matches!(
        events(&h2).as_slice(),
        [SuiteEvent::TrainingStarted(_)]
    ));
}

#[tokio::test]
async fn a_refusal_from_sagemaker_reaches_the_committer() {
    let repo = repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x");
    let h = handler(repo, &[]);
    h.ports().training.refusals.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        AwsCallError::service(
            "CreateTrainingJob",
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances",
        ),
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(
        r.reason,
        "the job could not be started: CreateTrainingJob failed: ResourceLimitExceeded: The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances"
    );
}

#[tokio::test]
async fn a_transient_failure_of_one_model_holds_back_no_other_and_is_retried() {
    let mut repo = FakeRepo::default();
    let base = FakeRepo::fixture_tree();
    let mut next = base.clone();
    for model in ["churn-xgboost", "sales-arima"] {
        let path = format!("models/{model}/training.toml");
        let mut text = next[&path].clone();
        text.extend_from_slice(b"\n# touched\n");
        next.insert(path, text);
    }
    repo.add(C1, "a", base);
    repo.add(C2, "touch two", next);
    let h = handler(repo, &[]);
    h.ports().training.refusals.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        AwsCallError::service("CreateTrainingJob", "ThrottlingException", "Rate exceeded"),
    );
    let err = h
        .handle(update(C1, C2), Context::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    let names = |h: &TestHandler| -> Vec<String> {
        h.ports()
            .training
            .created
            .lock()
            .unwrap()
            .iter()
            .map(|j| j.name.clone())
            .collect()
    };
    assert_eq!(names(&h), vec!["sales-arima-2222222"]);
    // Lambda's retry: the failed model starts, the other is a duplicate.
    let out = h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert_eq!(
        names(&h),
        vec!["sales-arima-2222222", "churn-xgboost-2222222"]
    );
    assert!(
        matches!(
            &models(&out)["sales-arima"],
            ModelOutcome::Duplicate { previous: Some(p) } if matches!(**p, ModelOutcome::Started { .. })
        ),
        "{out:?}"
    );
    assert_eq!(events(&h).len(), 2);
}

// ----- the cost guard -----

/// What each published Training Rejected says, by model.
fn rejections(h: &TestHandler) -> BTreeMap<String, String> {
    events(h)
        .into_iter()
        .filter_map(|e| match e {
            SuiteEvent::TrainingRejected(r) => Some((r.model.unwrap_or_default(), r.reason)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_job_at_the_per_job_ceiling_starts_and_one_above_it_is_refused_with_the_figure() {
    let change = || {
        repo_with_change(
            CHURN_PATH,
            Some(&churn_with("max_depth = 5", "max_depth = 6")),
            "deeper trees",
        )
    };
    // 1 x ml.m5.xlarge x 1 h at $3/h = $3.
    let prices = (crate::config::TRAINING_PRICES, r#"{"ml.m5.xlarge": 3.0}"#);
    let at = handler(change(), &[prices, (crate::cost::MAX_JOB_COST_USD, "3")]);
    at.handle(update(C1, C2), Context::default()).await.unwrap();
    assert_eq!(at.ports().training.created.lock().unwrap().len(), 1);
    let started: Vec<_> = events(&at)
        .into_iter()
        .filter_map(|e| match e {
            SuiteEvent::TrainingStarted(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(started[0].max_cost_usd, Some(3.0));
    assert!(
        started[0]
            .cost_basis
            .as_deref()
            .unwrap()
            .contains("1 x ml.m5.xlarge x 1 h at $3/h"),
        "{started:?}"
    );

    let below = handler(change(), &[prices, (crate::cost::MAX_JOB_COST_USD, "2")]);
    let out = below
        .handle(update(C1, C2), Context::default())
        .await
        .unwrap();
    assert!(below.ports().training.created.lock().unwrap().is_empty());
    assert!(matches!(
        models(&out)["churn-xgboost"],
        ModelOutcome::Rejected { .. }
    ));
    let why = &rejections(&below)["churn-xgboost"];
    assert!(why.contains("$3.00") && why.contains("$2.00"), "{why}");
}

#[tokio::test]
async fn a_push_over_its_ceiling_starts_what_fits_and_refuses_the_excess_once() {
    // A new branch with NEW_BRANCH_POLICY=all trains all four models, each priced to a $10 worst case.
    let mut repo = FakeRepo::default();
    repo.add(C2, "four models", FakeRepo::fixture_tree());
    let h = handler(
        repo,
        &[
            (crate::config::NEW_BRANCH_POLICY, "all"),
            (
                crate::config::TRAINING_PRICES,
                r#"{"ml.m5.xlarge": 10, "ml.g4dn.xlarge": 5, "ml.m5.large": 20, "ml.p3.2xlarge": 2.5}"#,
            ),
            (crate::cost::MAX_PUSH_COST_USD, "25"),
        ],
    );
    let created = push_event("referenceCreated", None, C2, "main");
    for _ in 0..3 {
        h.handle(created.clone(), Context::default()).await.unwrap();
    }
    let mut names: Vec<String> = h
        .ports()
        .training
        .created
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.model.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["churn-xgboost", "digits-cnn"]);
    let refused = rejections(&h);
    assert_eq!(
        refused.keys().collect::<Vec<_>>(),
        ["sales-arima", "translate-seq2seq"],
        "each refused once, whatever the replays"
    );
    let why = &refused["sales-arima"];
    assert!(
        why.contains("$30.00") && why.contains("$25.00") && why.contains("churn-xgboost $10.00"),
        "{why}"
    );
}

#[tokio::test]
async fn an_instance_type_without_a_price_is_refused_or_allowed_per_setting_never_guessed() {
    let change = || {
        repo_with_change(
            CHURN_PATH,
            Some(&churn_with("\"ml.m5.xlarge\"", "\"ml.g6.xlarge\"")),
            "a new GPU",
        )
    };
    let allowed = (
        crate::config::ALLOWED_INSTANCE_TYPES,
        "ml.m5.xlarge,ml.g6.xlarge",
    );
    let refuse = handler(change(), &[allowed]);
    refuse
        .handle(update(C1, C2), Context::default())
        .await
        .unwrap();
    assert!(refuse.ports().training.created.lock().unwrap().is_empty());
    let why = &rejections(&refuse)["churn-xgboost"];
    assert!(
        why.contains("ml.g6.xlarge") && why.contains("unknown price"),
        "{why}"
    );

    let allow = handler(
        change(),
        &[allowed, (crate::cost::UNKNOWN_TRAINING_PRICE, "allow")],
    );
    allow
        .handle(update(C1, C2), Context::default())
        .await
        .unwrap();
    assert_eq!(allow.ports().training.created.lock().unwrap().len(), 1);
    let started = events(&allow)
        .into_iter()
        .find_map(|e| match e {
            SuiteEvent::TrainingStarted(s) => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(started.max_cost_usd, None);
}
