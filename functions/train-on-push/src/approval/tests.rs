//! Merge-to-approve against the in-memory fakes: a merged pull request approves each changed model's newest version
//! trained in the range, once; a closed one, another branch's, or merge-to-approve off changes nothing.

use lambda_runtime::Context;
use serde_json::{Value, json};

use super::{Approval, merger};
use crate::adapters::memory::*;
use crate::handler::Outcome;
use crate::ports::{PullRequest, PullRequestTarget};

const BASE: &str = "1111111111111111111111111111111111111111";
const EXP1: &str = "2222222222222222222222222222222222222222";
const EXP2: &str = "3333333333333333333333333333333333333333";
const MERGE: &str = "4444444444444444444444444444444444444444";
const OLD: &str = "5555555555555555555555555555555555555555";
const LEAD: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_MLLead_0123456789abcdef/li.wei@example.com";

fn merged_event() -> Value {
    let mut e = event("codecommit-pull-request-merged.json");
    e["detail"]["repositoryNames"] = json!([REPO]);
    e["detail"]["sourceCommit"] = json!(EXP2);
    e
}

/// OLD - BASE (main) ; BASE - EXP1 - EXP2 (experiment/churn-eta, both change churn) ; MERGE on main.
/// churn has versions from OLD (before the range), EXP1 and EXP2; arima only from OLD.
fn merged_world(extra: &[(&'static str, &'static str)]) -> TestHandler {
    let mut repo = FakeRepo::default();
    let tree = FakeRepo::fixture_tree();
    let mut changed = tree.clone();
    let churn = "models/churn-xgboost/training.toml";
    let mut text = changed[churn].clone();
    text.extend_from_slice(b"\n# eta\n");
    changed.insert(churn.to_string(), text);
    repo.add(OLD, "old", tree.clone());
    repo.add(BASE, "base", tree);
    repo.add(EXP1, "exp 1", changed.clone());
    repo.add(EXP2, "exp 2", changed.clone());
    repo.add(MERGE, "merge", changed);
    repo.link(OLD, &[], 1);
    repo.link(BASE, &[OLD], 2);
    repo.link(EXP1, &[BASE], 3);
    repo.link(EXP2, &[EXP1], 4);
    repo.link(MERGE, &[BASE, EXP2], 5);
    repo.pull_requests.lock().unwrap().insert(
        "7".into(),
        PullRequest {
            id: "7".into(),
            title: "churn: lower the learning rate".into(),
            status: "CLOSED".into(),
            targets: vec![PullRequestTarget {
                repository: REPO.into(),
                source_reference: "refs/heads/experiment/churn-eta".into(),
                destination_reference: "refs/heads/main".into(),
                source_commit: Some(EXP2.into()),
                destination_commit: Some(BASE.into()),
                merge_base: Some(BASE.into()),
                merged: true,
                merged_by: Some(LEAD.into()),
                merge_commit: Some(MERGE.into()),
            }],
        },
    );
    let mut vars = vec![
        (crate::config::APPROVE_ON_MERGE_INTO, "main"),
        (
            crate::config::USERS_ROLE_ARN,
            "arn:aws:iam::123456789012:role/studio-ops-StudioExecutionRole-AbC123",
        ),
    ];
    vars.extend_from_slice(extra);
    let h = handler(repo, &vars);
    for commit in [OLD, EXP1, EXP2] {
        h.ports().registry.register("churn-xgboost", commit);
    }
    h.ports().registry.register("sales-arima", OLD);
    // The experiment's last push trained churn's merged files (train-on-push records the tree when the job starts).
    let tree = churn_tree(&h, EXP2);
    h.ports().state.trees.lock().unwrap().insert(
        (REPO.into(), "churn-xgboost".into(), tree),
        crate::naming::job_name("churn-xgboost", EXP2),
    );
    h
}

/// The churn folder's tree at a commit, as GetFolder lists it.
fn churn_tree(h: &TestHandler, commit: &str) -> String {
    let entries = futures::executor::block_on(crate::ports::SourceRepository::folder(
        &h.ports().source,
        REPO,
        commit,
        "models",
    ))
    .unwrap()
    .unwrap();
    entries
        .into_iter()
        .find_map(|e| match e {
            crate::ports::FolderEntry::Folder { path, tree_id }
                if path == "models/churn-xgboost" =>
            {
                tree_id
            }
            _ => None,
        })
        .unwrap()
}

fn approvals(out: &Outcome) -> &std::collections::BTreeMap<String, Approval> {
    match out {
        Outcome::Merged { models, .. } => models,
        other => panic!("not a merge's answer: {other:?}"),
    }
}

#[tokio::test]
async fn a_merge_approves_the_newest_version_trained_in_the_range_once() {
    let h = merged_world(&[]);
    // A newer version from main's merge commit (outside the range) is not the one reviewed.
    h.ports().registry.register("churn-xgboost", MERGE);
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    let models = approvals(&out);
    // Only churn changed in the range; its newest version in the range is EXP2's (version 3).
    assert_eq!(models.len(), 1, "{models:?}");
    let Approval::Approved {
        version, commit, ..
    } = &models["churn-xgboost"]
    else {
        panic!("{models:?}")
    };
    assert_eq!((*version, commit.as_str()), (Some(3), EXP2));
    let approved = h.ports().registry.approvals.lock().unwrap().clone();
    assert_eq!(approved.len(), 1);
    let (arn, note) = &approved[0];
    assert!(arn.ends_with("/churn-xgboost/3"), "{arn}");
    assert!(note.contains("pull request #7"), "{note}");
    assert!(note.contains("experiment/churn-eta -> main"), "{note}");
    assert!(note.contains("commit 4444444"), "{note}");
    assert!(
        note.contains("li.wei@example.com (IAM Identity Center, permission set MLLead)"),
        "{note}"
    );
    assert!(note.contains("trained from commit 3333333"), "{note}");
    // Replays, and a fresh store (the claim expired): still one approval.
    for _ in 0..3 {
        let again = h.handle(merged_event(), Context::default()).await.unwrap();
        assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    }
    assert_eq!(h.ports().registry.approvals.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_is_approved_for_a_closed_or_foreign_pull_request_or_with_the_setting_off() {
    let h = merged_world(&[]);
    let closed = event("codecommit-pull-request-closed.json");
    let mut into_dev = merged_event();
    into_dev["detail"]["destinationReference"] = json!("refs/heads/dev");
    let mut other_repo = merged_event();
    other_repo["detail"]["repositoryNames"] = json!(["someone-elses"]);
    for (what, event) in [
        ("closed", closed),
        ("created", event("codecommit-pull-request-created.json")),
        (
            "updated",
            event("codecommit-pull-request-source-branch-updated.json"),
        ),
        ("into dev", into_dev),
        ("other repository", other_repo),
    ] {
        let out = h.handle(event, Context::default()).await.unwrap();
        assert!(matches!(out, Outcome::Ignored { .. }), "{what}: {out:?}");
    }
    assert!(h.ports().registry.approvals.lock().unwrap().is_empty());
    // Off: even a merge changes nothing.
    let mut repo = FakeRepo::default();
    repo.add(BASE, "b", FakeRepo::fixture_tree());
    let off = handler(repo, &[]);
    let out = off
        .handle(merged_event(), Context::default())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Ignored { .. }), "{out:?}");
}

#[tokio::test]
async fn a_merge_codecommit_does_not_show_yet_is_retried_not_spent() {
    use studio_ops_shared::{ErrorClass, Failure};
    let h = merged_world(&[]);
    let set_merged = |merged: bool| {
        h.ports()
            .source
            .pull_requests
            .lock()
            .unwrap()
            .get_mut("7")
            .unwrap()
            .targets[0]
            .merged = merged;
    };
    set_merged(false);
    let err = h
        .handle(merged_event(), Context::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(h.ports().registry.approvals.lock().unwrap().is_empty());
    // Lambda's retry, once CodeCommit shows it: approved (the claim was not spent on the early reading).
    set_merged(true);
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    assert!(
        matches!(approvals(&out)["churn-xgboost"], Approval::Approved { .. }),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_version_that_is_not_what_was_registered_is_not_approved() {
    // A user swapped the model data of the pending version (UpdateModelPackage): the digest no longer matches.
    let h = merged_world(&[]);
    h.ports().registry.versions.lock().unwrap()[2].model_data_url =
        "s3://somewhere/else/model.tar.gz".into();
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    let Approval::NotTrusted { reason, .. } = &approvals(&out)["churn-xgboost"] else {
        panic!("{out:?}")
    };
    assert!(reason.contains("no longer serves"), "{reason}");
    // A version registered by a user (no studio-ops mark) in the model's group, pretending to be the job's.
    let h = merged_world(&[]);
    h.ports().registry.versions.lock().unwrap()[2]
        .tags
        .retain(|(k, _)| k != crate::naming::tag::MANAGED_BY);
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    assert!(
        matches!(&approvals(&out)["churn-xgboost"], Approval::NotTrusted { reason, .. } if reason.contains("not registered by studio-ops")),
        "{out:?}"
    );
    assert!(h.ports().registry.approvals.lock().unwrap().is_empty());
}

#[tokio::test]
async fn merged_files_nobody_trained_approve_nothing() {
    let h = merged_world(&[]);
    h.ports().state.trees.lock().unwrap().clear();
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    assert!(
        matches!(&approvals(&out)["churn-xgboost"], Approval::NoVersion { reason } if reason.contains("no job trained the merged files")),
        "{out:?}"
    );
    assert!(h.ports().registry.approvals.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_reviewers_rejection_and_an_earlier_approval_are_left_alone() {
    let h = merged_world(&[]);
    h.ports().registry.set_status(3, "Rejected");
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    assert!(matches!(
        approvals(&out)["churn-xgboost"],
        Approval::LeftRejected { .. }
    ));
    let h = merged_world(&[]);
    h.ports().registry.set_status(3, "Approved");
    let out = h.handle(merged_event(), Context::default()).await.unwrap();
    assert!(matches!(
        approvals(&out)["churn-xgboost"],
        Approval::AlreadyApproved { .. }
    ));
    assert!(h.ports().registry.approvals.lock().unwrap().is_empty());
}

#[test]
fn the_approval_names_a_person_only_when_the_caller_is_one() {
    let studio =
        "arn:aws:sts::123456789012:assumed-role/studio-ops-StudioExecutionRole-AbC123/SageMaker";
    let said = merger(studio, Some("studio-ops-StudioExecutionRole-AbC123"));
    assert!(said.starts_with("a Studio user (the shared execution role studio-ops-StudioExecutionRole-AbC123, session SageMaker"), "{said}");
    let said = merger(LEAD, Some("studio-ops-StudioExecutionRole-AbC123"));
    assert!(
        said.starts_with("li.wei@example.com (IAM Identity Center, permission set MLLead)"),
        "{said}"
    );
    let said = merger("arn:aws:iam::123456789012:user/ci-bot", None);
    assert!(said.starts_with("ci-bot ("), "{said}");
    assert_eq!(merger("not an arn", None), "not an arn");
}
