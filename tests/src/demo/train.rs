//! The train-on-push chapter: a data scientist pushes a change to one model, its training job starts; a bad
//! manifest is refused with its line; a push the cost guard finds too expensive starts nothing; the finished job
//! becomes a model version pending approval, its MLflow run beside it, which a reviewer approves.

use serde_json::{Value, json};

use super::Chapter;
use crate::git::GitRepo;
use crate::moto::workspace_root;
use crate::runtime_api::{Invocation, Outcome};
use crate::world::{World, WorldError, fixture};

fn push_event(world: &World, before: &str, after: &str) -> Result<Value, WorldError> {
    let mut e = fixture("train-on-push/codecommit-reference-updated.json")?;
    e["detail"]["repositoryName"] = json!(world.names.repository);
    e["detail"]["oldCommitId"] = json!(before);
    e["detail"]["commitId"] = json!(after);
    Ok(e)
}

fn answers(invocations: &[Invocation], function: &str) -> Vec<String> {
    invocations
        .iter()
        .filter(|i| i.function == function)
        .map(|i| match &i.outcome {
            Outcome::Response(v) => v.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// train-on-push's answers, read as its typed `Outcome` (an answer that is not one is shown as such).
fn train_answers(invocations: &[Invocation]) -> Vec<String> {
    invocations
        .iter()
        .filter(|i| i.function == "train-on-push")
        .map(|i| match &i.outcome {
            Outcome::Response(v) => {
                match serde_json::from_value::<train_on_push::handler::Outcome>(v.clone()) {
                    Ok(answer) => serde_json::to_string(&answer).unwrap_or_else(|e| e.to_string()),
                    Err(e) => format!("not a train-on-push outcome ({e}): {v}"),
                }
            }
            other => format!("{other:?}"),
        })
        .collect()
}

/// The reason train-on-push refused `model` in these invocations, if it did.
fn refusal(invocations: &[Invocation], model: &str) -> Option<String> {
    invocations
        .iter()
        .filter(|i| i.function == "train-on-push")
        .find_map(|i| match &i.outcome {
            Outcome::Response(v) => v["models"][model]["reason"].as_str().map(str::to_string),
            _ => None,
        })
}

fn sdk_err(e: impl std::error::Error) -> WorldError {
    WorldError::Other(studio_ops_shared::error::error_chain(&e))
}

/// SageMaker's "Training Job State Change" for a job moto completed, as SageMaker sends it (tags included).
async fn completed_event(
    sagemaker: &aws_sdk_sagemaker::Client,
    job_name: &str,
) -> Result<Value, WorldError> {
    let job = sagemaker
        .describe_training_job()
        .training_job_name(job_name)
        .send()
        .await
        .map_err(sdk_err)?;
    let arn = job.training_job_arn().unwrap_or_default().to_string();
    let tags = sagemaker
        .list_tags()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(sdk_err)?;
    let mut done = fixture("train-on-push/sagemaker-training-job-completed.json")?;
    {
        let d = &mut done["detail"];
        d["TrainingJobName"] = json!(job_name);
        d["TrainingJobArn"] = json!(arn);
        d["AlgorithmSpecification"]["TrainingImage"] = json!(
            job.algorithm_specification()
                .and_then(|a| a.training_image())
                .unwrap_or_default()
        );
        d["ModelArtifacts"]["S3ModelArtifacts"] = json!(
            job.model_artifacts()
                .map(|m| m.s3_model_artifacts())
                .unwrap_or_default()
        );
        d["Tags"] = Value::Object(
            tags.tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_string(), json!(t.value())))
                .collect(),
        );
    }
    done["resources"] = json!([arn]);
    Ok(done)
}

/// SageMaker's "Model Package State Change" for a version as the registry holds it now.
async fn package_event(
    sagemaker: &aws_sdk_sagemaker::Client,
    package_arn: &str,
    group: &str,
) -> Result<Value, WorldError> {
    let described = sagemaker
        .describe_model_package()
        .model_package_name(package_arn)
        .send()
        .await
        .map_err(sdk_err)?;
    let mut event = fixture("notify/sagemaker-model-package-pending.json")?;
    let d = &mut event["detail"];
    d["ModelPackageArn"] = json!(package_arn);
    d["ModelPackageGroupName"] = json!(group);
    d["ModelPackageVersion"] = json!(described.model_package_version());
    d["ModelApprovalStatus"] = json!(
        described
            .model_approval_status()
            .map(|s| s.as_str())
            .unwrap_or("PendingManualApproval")
    );
    d["LastModifiedTime"] = json!(
        described
            .last_modified_time()
            .or(described.creation_time())
            .map(|t| t.secs())
            .unwrap_or_default()
            * 1000
    );
    if let Some(meta) = described.customer_metadata_properties() {
        d["CustomerMetadataProperties"] = json!(meta);
    }
    if let Some(note) = described.approval_description() {
        d["ApprovalDescription"] = json!(note);
    }
    event["resources"] = json!([package_arn]);
    Ok(event)
}

pub async fn run(world: &World) -> Result<Chapter, WorldError> {
    let mut chapter = Chapter::new(
        "Afternoon: a push trains a model; the finished job lands in the Model Registry",
    );
    let repo = GitRepo::create(
        world.git_root(),
        &world.names.repository,
        &workspace_root().join("tests/fixtures/models-repo"),
        "Add the team's models",
    )?;
    chapter.line(format!(
        "repository {} holds four models: churn-xgboost, translate-seq2seq, sales-arima, digits-cnn",
        world.names.repository
    ));
    // 0. The hourly catch-up's first run: main's head becomes its starting point; nothing trains.
    let (first, after) = world
        .invoke("train-on-push", json!({"catchUp": true}))
        .await?;
    chapter.record(std::slice::from_ref(&first));
    chapter.record(&after);
    chapter.line(format!(
        "push catch-up, first run: {}",
        train_answers(std::slice::from_ref(&first)).join(" ")
    ));

    // 1. A change to one model.
    let manifest = "models/churn-xgboost/training.toml";
    let tuned = repo.read(manifest)?.replace("eta = 0.2", "eta = 0.1");
    let before = repo.head()?;
    let after = repo.commit(
        &[(manifest, Some(&tuned))],
        "churn: lower the learning rate",
    )?;
    let invocations = world
        .put_event(&push_event(world, &before, &after)?)
        .await?;
    chapter.record(&invocations);
    chapter.line(format!(
        "push {} (eta 0.2 → 0.1): {}",
        &after[..7],
        train_answers(&invocations).join(" ")
    ));

    let sagemaker = aws_sdk_sagemaker::Client::new(world.sim_sdk());
    let jobs = sagemaker
        .list_training_jobs()
        .send()
        .await
        .map_err(sdk_err)?;
    let names: Vec<String> = jobs
        .training_job_summaries()
        .iter()
        .map(|j| j.training_job_name().unwrap_or_default().to_string())
        .collect();
    chapter.line(format!("training jobs: {names:?}"));
    let expected_job = format!("churn-xgboost-{}", &after[..7]);
    if names != vec![expected_job.clone()] {
        chapter.fail(format!("expected exactly the job {expected_job}"));
        return Ok(chapter);
    }

    // 2. The same push delivered again changes nothing.
    let again = world
        .put_event(&push_event(world, &before, &after)?)
        .await?;
    chapter.record(&again);
    let count = sagemaker
        .list_training_jobs()
        .send()
        .await
        .map_err(sdk_err)?
        .training_job_summaries()
        .len();
    chapter.line(format!("the same push delivered again: still {count} job"));
    if count != 1 {
        chapter.fail("a duplicate push started a second job");
    }

    // 3. A hostile manifest: an instance type outside the allow-list and a role override.
    let arima = "models/sales-arima/training.toml";
    let bad = repo.read(arima)?.replace(
        "instance_type = \"ml.m5.large\"",
        "instance_type = \"ml.p4d.24xlarge\"",
    );
    let b2 = repo.head()?;
    let a2 = repo.commit(&[(arima, Some(&bad))], "arima: go big")?;
    let invocations = world.put_event(&push_event(world, &b2, &a2)?).await?;
    chapter.record(&invocations);
    chapter.line(format!(
        "push {} (sales-arima on ml.p4d.24xlarge): {}",
        &a2[..7],
        train_answers(&invocations).join(" ")
    ));

    // 3b. A push the cost guard refuses before anything starts: two p3.2xlarge for 24 hours.
    let digits = "models/digits-cnn/training.toml";
    let big = repo
        .read(digits)?
        .replace(
            "instance_type = \"ml.g4dn.xlarge\"",
            "instance_type = \"ml.p3.2xlarge\"\ninstance_count = 2",
        )
        .replace("max_runtime_minutes = 120", "max_runtime_minutes = 1440");
    let b3 = repo.head()?;
    let a3 = repo.commit(&[(digits, Some(&big))], "digits: two V100s for a day")?;
    let invocations = world.put_event(&push_event(world, &b3, &a3)?).await?;
    chapter.record(&invocations);
    let refused = refusal(&invocations, "digits-cnn");
    chapter.line(format!(
        "push {} (digits-cnn on 2 x ml.p3.2xlarge, 24 h): {}",
        &a3[..7],
        refused.as_deref().unwrap_or("not refused")
    ));
    if !refused.is_some_and(|r| r.contains("per-job ceiling")) {
        chapter.fail("expected the cost guard to refuse digits-cnn");
    }

    // 4. SageMaker finishes the job (moto completes jobs at once) and sends its state change.
    let done = completed_event(&sagemaker, &expected_job).await?;
    let invocations = world.put_event(&done).await?;
    chapter.record(&invocations);
    chapter.line(format!(
        "job {expected_job} completed: {}",
        train_answers(&invocations).join(" ")
    ));
    // SageMaker says so twice.
    let dup = world.put_event(&done).await?;
    chapter.record(&dup);

    let packages = sagemaker
        .list_model_packages()
        .model_package_group_name("churn-xgboost")
        .send()
        .await
        .map_err(sdk_err)?;
    let versions: Vec<(String, String)> = packages
        .model_package_summary_list()
        .iter()
        .map(|p| {
            (
                p.model_package_arn().unwrap_or_default().to_string(),
                p.model_approval_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    chapter.line(format!("Model Registry, group churn-xgboost: {versions:?}"));
    if versions.len() != 1 || versions[0].1 != "PendingManualApproval" {
        chapter.fail("expected exactly one version pending approval");
        return Ok(chapter);
    }

    // 4b. The job's run in MLflow, next to the version that records it.
    if let Some(mlflow) = world.mlflow() {
        let runs = mlflow
            .runs("churn")
            .await
            .map_err(|e| WorldError::Other(e.to_string()))?;
        let described = sagemaker
            .describe_model_package()
            .model_package_name(&versions[0].0)
            .send()
            .await
            .map_err(sdk_err)?;
        let recorded = described
            .customer_metadata_properties()
            .and_then(|m| m.get("studio-ops:mlflow-run-id"))
            .cloned()
            .unwrap_or_default();
        let run = runs
            .iter()
            .find(|r| r["info"]["run_name"] == expected_job.as_str());
        match run {
            Some(run) => {
                let metrics: Vec<String> = run["data"]["metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| format!("{}={}", m["key"].as_str().unwrap_or("?"), m["value"]))
                    .collect();
                chapter.line(format!(
                    "MLflow experiment churn, run {} ({}): {}, metrics {metrics:?}; the version records run {recorded}",
                    run["info"]["run_name"].as_str().unwrap_or("?"),
                    run["info"]["run_id"].as_str().unwrap_or("?"),
                    run["info"]["status"].as_str().unwrap_or("?"),
                ));
                if run["info"]["status"] != "FINISHED" || run["info"]["run_id"] != recorded.as_str()
                {
                    chapter.fail("expected the job's finished run, recorded by its version");
                }
            }
            None => chapter.fail(format!("no MLflow run {expected_job} in experiment churn")),
        }
    }

    // 5. The registry announces the new version, then the ML lead approves it as an administrator (Studio users
    // approve by merging, step 7); events as SageMaker sends them.
    let package_arn = versions[0].0.clone();
    for (status, note) in [
        ("PendingManualApproval", None),
        ("Approved", Some("AUC up on the holdout; ship it")),
    ] {
        if let Some(note) = note {
            sagemaker
                .update_model_package()
                .model_package_arn(&package_arn)
                .model_approval_status(aws_sdk_sagemaker::types::ModelApprovalStatus::Approved)
                .approval_description(note)
                .send()
                .await
                .map_err(sdk_err)?;
        }
        let event = package_event(&sagemaker, &package_arn, "churn-xgboost").await?;
        let invocations = world.put_event(&event).await?;
        chapter.record(&invocations);
        chapter.line(format!(
            "model package {status}: notify {}",
            answers(&invocations, "notify").join(" ")
        ));
    }
    chapter.fact("trainingJob", expected_job);
    chapter.fact("modelPackage", package_arn);

    // 6. A push whose event CodeCommit never delivers (its events are best effort): the hourly catch-up trains it.
    let translate = "models/translate-seq2seq/training.toml";
    let longer = repo
        .read(translate)?
        .replace("max_num_epochs = 10", "max_num_epochs = 12");
    let dropped = repo.commit(&[(translate, Some(&longer))], "translate: two more epochs")?;
    let mut caught = Vec::new();
    for run in 1..=2 {
        let (inv, after) = world
            .invoke("train-on-push", json!({"catchUp": true}))
            .await?;
        chapter.record(std::slice::from_ref(&inv));
        chapter.record(&after);
        caught.push(answers(&after, "notify").len());
        chapter.line(format!(
            "push {} never delivered; catch-up run {run}: {}",
            &dropped[..7],
            train_answers(std::slice::from_ref(&inv)).join(" ")
        ));
    }
    let translate_job = format!("translate-seq2seq-{}", &dropped[..7]);
    let all_jobs: Vec<String> = sagemaker
        .list_training_jobs()
        .send()
        .await
        .map_err(sdk_err)?
        .training_job_summaries()
        .iter()
        .map(|j| j.training_job_name().unwrap_or_default().to_string())
        .collect();
    let translate_jobs = all_jobs
        .iter()
        .filter(|j| j.starts_with("translate-"))
        .count();
    chapter.line(format!(
        "after two catch-up runs: {translate_jobs} translate job ({translate_job}); notify sent {:?} alert(s) per run",
        caught
    ));
    if translate_jobs != 1 || !all_jobs.contains(&translate_job) {
        chapter.fail("expected the catch-up to start exactly the dropped push's job");
    }
    if caught.first().copied().unwrap_or_default() == 0 || caught.get(1).copied() != Some(0) {
        chapter.fail("expected one Push Caught Up alert, on the first run only");
    }
    chapter.fact("caughtUpJob", translate_job);

    // 7. Merge-to-approve: an experiment branch trains a version pending approval; merging its reviewed pull request
    // into main approves it, naming who merged; main's merge push trains nothing (the same tree).
    merge_to_approve(world, &repo, &sagemaker, &mut chapter).await?;
    Ok(chapter)
}

async fn merge_to_approve(
    world: &World,
    repo: &GitRepo,
    sagemaker: &aws_sdk_sagemaker::Client,
    chapter: &mut Chapter,
) -> Result<(), WorldError> {
    let branch = "experiment/churn-depth";
    let push = |old: Option<&str>, new: &str, name: &str| -> Result<Value, WorldError> {
        let mut e = fixture("train-on-push/codecommit-reference-updated.json")?;
        let d = &mut e["detail"];
        d["repositoryName"] = json!(world.names.repository);
        d["referenceName"] = json!(name);
        d["referenceFullName"] = json!(format!("refs/heads/{name}"));
        d["commitId"] = json!(new);
        match old {
            Some(old) => d["oldCommitId"] = json!(old),
            None => {
                d["event"] = json!("referenceCreated");
                d.as_object_mut().map(|o| o.remove("oldCommitId"));
            }
        }
        Ok(e)
    };
    let fork = repo.head()?;
    repo.switch(branch)?;
    repo.push_branch(branch)?;
    let created = world.put_event(&push(None, &fork, branch)?).await?;
    chapter.record(&created);
    let manifest = "models/churn-xgboost/training.toml";
    let deeper = repo
        .read(manifest)?
        .replace("max_depth = 5", "max_depth = 6");
    let tip = repo.commit(&[(manifest, Some(&deeper))], "churn: deeper trees")?;
    let trained = world.put_event(&push(Some(&fork), &tip, branch)?).await?;
    chapter.record(&trained);
    let job = format!("churn-xgboost-{}", &tip[..7]);
    chapter.line(format!(
        "push {} to {branch} (max_depth 5 → 6): {}",
        &tip[..7],
        train_answers(&trained).join(" ")
    ));
    let done = world
        .put_event(&completed_event(sagemaker, &job).await?)
        .await?;
    chapter.record(&done);
    let versions = sagemaker
        .list_model_packages()
        .model_package_group_name("churn-xgboost")
        .sort_by(aws_sdk_sagemaker::types::ModelPackageSortBy::CreationTime)
        .sort_order(aws_sdk_sagemaker::types::SortOrder::Descending)
        .send()
        .await
        .map_err(sdk_err)?;
    let Some(version) = versions
        .model_package_summary_list()
        .iter()
        .find(|p| {
            p.model_package_description()
                .is_some_and(|d| d.contains(&job))
        })
        .and_then(|p| p.model_package_arn())
        .map(str::to_string)
    else {
        chapter.fail(format!("no version registered from {job}"));
        return Ok(());
    };

    // The pull request, reviewed and merged in the CodeCommit console by the ML lead (her SSO session).
    let codecommit = aws_sdk_codecommit::Client::new(world.sim_sdk());
    let target = aws_sdk_codecommit::types::Target::builder()
        .repository_name(&world.names.repository)
        .source_reference(branch)
        .destination_reference("main")
        .build()
        .map_err(sdk_err)?;
    let pr = codecommit
        .create_pull_request()
        .title("churn: deeper trees")
        .targets(target)
        .send()
        .await
        .map_err(sdk_err)?;
    let id = pr
        .pull_request()
        .and_then(|p| p.pull_request_id())
        .unwrap_or_default()
        .to_string();
    let merged = codecommit
        .merge_pull_request_by_three_way()
        .pull_request_id(&id)
        .repository_name(&world.names.repository)
        .source_commit_id(&tip)
        .send()
        .await
        .map_err(sdk_err)?;
    let merge_commit = merged
        .pull_request()
        .and_then(|p| p.pull_request_targets().first())
        .and_then(|t| t.merge_metadata())
        .and_then(|m| m.merge_commit_id())
        .unwrap_or_default()
        .to_string();
    let mut event = fixture("train-on-push/codecommit-pull-request-merged.json")?;
    event["detail"]["pullRequestId"] = json!(id);
    event["detail"]["repositoryNames"] = json!([world.names.repository]);
    event["detail"]["sourceReference"] = json!(format!("refs/heads/{branch}"));
    event["detail"]["sourceCommit"] = json!(tip);
    event["detail"]["title"] = json!("churn: deeper trees");
    let mut approvals = Vec::new();
    for _ in 0..2 {
        let invocations = world.put_event(&event).await?;
        chapter.record(&invocations);
        approvals.push(train_answers(&invocations).join(" "));
    }
    chapter.line(format!(
        "pull request #{id} merged into main as {}: {}; delivered again: {}",
        &merge_commit.get(..7).unwrap_or_default(),
        approvals[0],
        approvals[1]
    ));
    let described = sagemaker
        .describe_model_package()
        .model_package_name(&version)
        .send()
        .await
        .map_err(sdk_err)?;
    let status = described
        .model_approval_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let note = described
        .approval_description()
        .unwrap_or_default()
        .to_string();
    chapter.line(format!("version {version}: {status} - \"{note}\""));
    if status != "Approved" || !note.contains(&format!("pull request #{id}")) {
        chapter.fail("expected the merge to approve the experiment's version");
    }
    // SageMaker announces the approval; notify tells the team.
    let invocations = world
        .put_event(&package_event(sagemaker, &version, "churn-xgboost").await?)
        .await?;
    chapter.record(&invocations);
    chapter.line(format!(
        "model package Approved (by merge): notify {}",
        answers(&invocations, "notify").join(" ")
    ));
    // The merge's own push to main.
    let main_push = world
        .put_event(&push(Some(&fork), &merge_commit, "main")?)
        .await?;
    chapter.record(&main_push);
    let answer = train_answers(&main_push).join(" ");
    chapter.line(format!(
        "main's push of merge commit {}: {answer}",
        &merge_commit.get(..7).unwrap_or_default()
    ));
    if !answer.contains("same-tree") {
        chapter.fail("expected main's merge push not to train the same tree again");
    }
    chapter.fact("approvedByMerge", version);
    Ok(())
}
