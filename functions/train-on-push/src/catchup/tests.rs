//! The catch-up and the evaluated head against the in-memory fakes: a dropped push is trained by the next run,
//! once; the first run trains nothing; a rejection is not repeated every hour; a merged tree is not trained twice.

use lambda_runtime::Context;
use serde_json::Value;
use studio_ops_shared::events::suite::SuiteEvent;

use super::BranchCatchUp;
use crate::adapters::memory::*;
use crate::handler::Outcome;
use crate::push::ModelOutcome;

const C3: &str = "3333333333333333333333333333333333333333";
const CHURN: &str = "models/churn-xgboost/training.toml";
const ARIMA: &str = "models/sales-arima/training.toml";

fn schedule() -> Value {
    event("scheduler-catch-up.json")
}

fn push(old: &str, new: &str, branch: &str) -> Value {
    push_event("referenceUpdated", Some(old), new, branch)
}

fn edited(path: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap();
    assert!(text.contains(from), "{path} has no {from}");
    text.replacen(from, to, 1)
}

async fn catch_up(h: &TestHandler) -> std::collections::BTreeMap<String, BranchCatchUp> {
    match h.handle(schedule(), Context::default()).await.unwrap() {
        Outcome::CaughtUp { branches, .. } => branches,
        other => panic!("not a catch-up: {other:?}"),
    }
}

fn jobs(h: &TestHandler) -> Vec<String> {
    h.ports()
        .training
        .created
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

fn caught_up(h: &TestHandler) -> Vec<studio_ops_shared::events::suite::PushCaughtUp> {
    h.ports()
        .publisher
        .taken()
        .into_iter()
        .filter_map(|e| match e {
            SuiteEvent::PushCaughtUp(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// C1 on main, watched since then; C2 changes churn, its event is lost.
fn dropped_push() -> TestHandler {
    let repo = repo_with_change(
        CHURN,
        Some(&edited(CHURN, "eta = 0.2", "eta = 0.1")),
        "churn: eta",
    );
    repo.set_branch("main", C1);
    repo.set_branch("feature/unwatched", C1);
    handler(repo, &[])
}

#[tokio::test]
async fn the_first_run_records_the_heads_and_trains_nothing() {
    let h = dropped_push();
    h.ports().source.set_branch("main", C2);
    let branches = catch_up(&h).await;
    assert_eq!(
        branches.get("main"),
        Some(&BranchCatchUp::StartedWatching { head: C2.into() })
    );
    assert!(!branches.contains_key("feature/unwatched"), "{branches:?}");
    assert!(jobs(&h).is_empty());
    // The next run finds main where it was.
    let branches = catch_up(&h).await;
    assert_eq!(
        branches.get("main"),
        Some(&BranchCatchUp::UpToDate { head: C2.into() })
    );
    assert!(jobs(&h).is_empty() && caught_up(&h).is_empty());
}

#[tokio::test]
async fn a_dropped_push_is_trained_by_the_next_run_once_and_reported_once() {
    let h = dropped_push();
    catch_up(&h).await; // starting point: main at C1
    h.ports().source.set_branch("main", C2); // the push whose event never came
    for _ in 0..3 {
        catch_up(&h).await;
    }
    assert_eq!(jobs(&h), vec!["churn-xgboost-2222222"]);
    let reports = caught_up(&h);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].from_commit.as_deref(), Some(C1));
    assert_eq!(reports[0].to_commit, C2);
    assert_eq!(reports[0].started, vec!["churn-xgboost-2222222"]);
    // The event arriving late after all starts nothing more.
    let late = h
        .handle(push(C1, C2, "main"), Context::default())
        .await
        .unwrap();
    let Outcome::Pushed { models, .. } = late else {
        panic!("{late:?}")
    };
    assert!(
        matches!(models["churn-xgboost"], ModelOutcome::Duplicate { .. }),
        "{models:?}"
    );
    assert_eq!(jobs(&h).len(), 1);
}

#[tokio::test]
async fn a_delivered_push_moves_the_head_so_the_catch_up_does_nothing() {
    let h = dropped_push();
    catch_up(&h).await;
    h.ports().source.set_branch("main", C2);
    h.handle(push(C1, C2, "main"), Context::default())
        .await
        .unwrap();
    let branches = catch_up(&h).await;
    assert_eq!(
        branches.get("main"),
        Some(&BranchCatchUp::UpToDate { head: C2.into() })
    );
    assert_eq!(jobs(&h).len(), 1);
    assert!(caught_up(&h).is_empty());
}

#[tokio::test]
async fn a_rejected_manifest_is_reported_once_not_every_hour() {
    let bad = edited(
        ARIMA,
        "instance_type = \"ml.m5.large\"",
        "instance_type = \"ml.p4d.24xlarge\"",
    );
    let repo = repo_with_change(ARIMA, Some(&bad), "arima: go big");
    repo.set_branch("main", C1);
    let h = handler(repo, &[]);
    catch_up(&h).await;
    h.ports().source.set_branch("main", C2);
    for _ in 0..3 {
        catch_up(&h).await;
    }
    let published = h.ports().publisher.taken();
    let rejected = published
        .iter()
        .filter(|e| matches!(e, SuiteEvent::TrainingRejected(_)))
        .count();
    let reports: Vec<_> = published
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::PushCaughtUp(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, 1, "{published:?}");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].rejected, vec!["sales-arima"]);
    assert!(jobs(&h).is_empty());
}

#[tokio::test]
async fn a_failed_evaluation_leaves_the_head_for_the_next_run() {
    let h = dropped_push();
    catch_up(&h).await;
    h.ports().source.set_branch("main", C2);
    h.ports().training.refusals.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        studio_ops_shared::AwsCallError::service(
            "CreateTrainingJob",
            "ThrottlingException",
            "Rate exceeded",
        ),
    );
    let err = h.handle(schedule(), Context::default()).await;
    assert!(err.is_err(), "{err:?}");
    assert!(jobs(&h).is_empty());
    catch_up(&h).await;
    assert_eq!(jobs(&h), vec!["churn-xgboost-2222222"]);
}
#[tokio::test]
async fn a_merged_tree_is_not_trained_again_unless_the_message_names_it() {
    // C2 on experiment/eta changes churn; C3 is main's merge commit holding the very same tree.
    let mut repo = repo_with_change(
        CHURN,
        Some(&edited(CHURN, "eta = 0.2", "eta = 0.1")),
        "churn: eta",
    );
    let tree = repo.commits[C2].1.clone();
    repo.add(C3, "Merge experiment/eta into main", tree.clone());
    let c4 = "4444444444444444444444444444444444444444";
    repo.add(c4, "[train churn-xgboost] retrain on November's data", tree);
    let h = handler(
        repo,
        &[(crate::config::BRANCH_PATTERNS, "main,experiment/*")],
    );
    let started = h
        .handle(push(C1, C2, "experiment/eta"), Context::default())
        .await
        .unwrap();
    assert!(matches!(
        &started,
        Outcome::Pushed { models, .. } if matches!(models["churn-xgboost"], ModelOutcome::Started { .. })
    ));
    let merged = h
        .handle(push(C1, C3, "main"), Context::default())
        .await
        .unwrap();
    let Outcome::Pushed { models, .. } = &merged else {
        panic!("{merged:?}")
    };
    assert_eq!(
        models["churn-xgboost"],
        ModelOutcome::SameTree {
            job: "churn-xgboost-2222222".into()
        }
    );
    assert_eq!(jobs(&h), vec!["churn-xgboost-2222222"]);
    // Named in the message: trained even from the same tree.
    h.handle(push(C3, c4, "main"), Context::default())
        .await
        .unwrap();
    assert_eq!(
        jobs(&h),
        vec!["churn-xgboost-2222222", "churn-xgboost-4444444"]
    );
}

#[tokio::test]
async fn a_tree_whose_job_failed_is_trained_again() {
    let mut repo = repo_with_change(
        CHURN,
        Some(&edited(CHURN, "eta = 0.2", "eta = 0.1")),
        "churn: eta",
    );
    let tree = repo.commits[C2].1.clone();
    repo.add(C3, "Merge experiment/eta into main", tree);
    let h = handler(
        repo,
        &[(crate::config::BRANCH_PATTERNS, "main,experiment/*")],
    );
    h.handle(push(C1, C2, "experiment/eta"), Context::default())
        .await
        .unwrap();
    h.ports()
        .training
        .set_status("churn-xgboost-2222222", "Failed");
    h.handle(push(C1, C3, "main"), Context::default())
        .await
        .unwrap();
    assert_eq!(
        jobs(&h),
        vec!["churn-xgboost-2222222", "churn-xgboost-3333333"]
    );
    // The tree now points at the job that trained it again, not the failed one.
    let recorded: Vec<String> = h
        .ports()
        .state
        .trees
        .lock()
        .unwrap()
        .values()
        .cloned()
        .collect();
    assert_eq!(recorded, vec!["churn-xgboost-3333333"]);
}

#[tokio::test]
async fn a_branch_without_a_record_is_new_only_if_committed_after_watching_began() {
    let mut repo = repo_with_change(
        CHURN,
        Some(&edited(CHURN, "eta = 0.2", "eta = 0.1")),
        "churn: eta",
    );
    let future = jiff::Timestamp::now().as_second() + 3600;
    repo.link(C2, &[C1], future);
    repo.set_branch("main", C1);
    let h = handler(
        repo,
        &[(crate::config::BRANCH_PATTERNS, "main,experiment/*")],
    );
    catch_up(&h).await; // starts watching
    // An old branch that a new pattern now matches (its head predates the watch) and one created since.
    h.ports().source.set_branch("experiment/old", C1);
    h.ports().source.set_branch("experiment/new", C2);
    let branches = catch_up(&h).await;
    assert_eq!(
        branches.get("experiment/old"),
        Some(&BranchCatchUp::StartedWatching { head: C1.into() })
    );
    assert!(
        matches!(
            branches.get("experiment/new"),
            Some(BranchCatchUp::Evaluated { from: None, .. })
        ),
        "{branches:?}"
    );
    // A new branch trains nothing unless its message names models (the default new-branch policy).
    assert!(jobs(&h).is_empty());
}

#[tokio::test]
async fn a_cut_short_first_run_stays_a_first_run() {
    let h = dropped_push();
    h.ports().training.refusals.lock().unwrap().clear();
    // The first run fails on its one branch (GetBranch cannot fail in the fake: use a missing commit instead).
    h.ports()
        .source
        .set_branch("main", "9999999999999999999999999999999999999999");
    h.ports()
        .state
        .heads
        .lock()
        .unwrap()
        .insert((REPO.into(), "main".into()), C1.into());
    let err = h.handle(schedule(), Context::default()).await;
    assert!(err.is_err(), "{err:?}");
    assert!(
        h.ports().state.watching.lock().unwrap().is_empty(),
        "not a starting point yet"
    );
}
