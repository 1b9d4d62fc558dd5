//! train-on-push against the local AWS world: the simulator's CodeCommit over a real bare git repository built
//! from `tests/fixtures/models-repo`, moto for training jobs, Experiments, S3, the Model Registry, DynamoDB and
//! EventBridge (the suite's events are read from an SQS queue behind a rule on the suite's bus). A push changing
//! one of four models starts exactly one job with the right image, VPC and tags; the TensorFlow model's source
//! reaches S3; a bad manifest starts nothing and alerts; replays start one job; a completed job becomes one
//! PendingManualApproval version carrying the commit; and the real binary does the same when EventBridge routes a
//! push to it.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use aws_config::SdkConfig;
use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::config::Env;
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::publisher::EventBridgePublisher;
use studio_ops_tests::mlflow::{self, entry};
use studio_ops_tests::moto::workspace_root;
use studio_ops_tests::runtime_api::Outcome;
use studio_ops_tests::world::{World, WorldConfig, fixture};
use train_on_push::adapters::codecommit::CodeCommitSource;
use train_on_push::adapters::dynamodb::{DynamoPushState, DynamoSpendLedger};
use train_on_push::adapters::mlflow::MlflowTracker;
use train_on_push::adapters::s3::S3Artifacts;
use train_on_push::adapters::sagemaker::{SageMakerRegistry, SageMakerTraining};
use train_on_push::approval::Approval;
use train_on_push::config::Config;
use train_on_push::handler::{Handler, Outcome as Answer, Ports};
use train_on_push::naming;
use train_on_push::ports::{JobCreation, Training};
use train_on_push::push::ModelOutcome;

type TrainOnPush = Handler<
    CodeCommitSource,
    SageMakerTraining,
    SageMakerRegistry,
    S3Artifacts,
    EventBridgePublisher,
    DynamoIdempotencyStore,
    MlflowTracker,
    DynamoSpendLedger,
    DynamoPushState,
>;

const ARIMA_REPOSITORY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima";
const CHURN: &str = "models/churn-xgboost/training.toml";

// ----- a real git repository made from the fixture tree -----

/// The fixture tree pushed to `<git_root>/<name>.git` (the library's repository, with test-friendly panics).
struct GitRepo(studio_ops_tests::git::GitRepo);

impl GitRepo {
    /// The fixture tree as the first commit on `main`; returns the repository and that commit's id.
    fn create(git_root: &Path, name: &str) -> (GitRepo, String) {
        let repo = studio_ops_tests::git::GitRepo::create(
            git_root,
            name,
            &workspace_root().join("tests/fixtures/models-repo"),
            "Four models: churn, translation, sales, digits",
        )
        .unwrap();
        let first = repo.head().unwrap();
        (GitRepo(repo), first)
    }

    /// Applies `changes` (path → new text, or None to delete), commits, pushes; returns the commit id.
    fn commit(&self, changes: &[(&str, Option<&str>)], message: &str) -> String {
        self.0.commit(changes, message).unwrap()
    }

    fn read(&self, path: &str) -> String {
        self.0.read(path).unwrap()
    }
}

// ----- the local world, the handler and the suite's events -----

struct Local {
    world: World,
    repo: GitRepo,
    /// The first commit (all four models).
    first: String,
    sqs: aws_sdk_sqs::Client,
    events_queue: String,
    /// SageMaker as the function sees it (through the simulator, which forwards training calls to moto).
    sagemaker: aws_sdk_sagemaker::Client,
    s3: aws_sdk_s3::Client,
}

impl Local {
    async fn start() -> Local {
        Self::start_with(WorldConfig::default()).await
    }

    async fn start_with(cfg: WorldConfig) -> Local {
        let world = World::start(cfg).await.unwrap();
        let (repo, first) = GitRepo::create(world.git_root(), &world.names.repository);
        let events_queue = world.tap_suite_bus("train-on-push-events").await.unwrap();
        Local {
            sqs: aws_sdk_sqs::Client::new(world.moto_sdk()),
            sagemaker: aws_sdk_sagemaker::Client::new(world.sim_sdk()),
            s3: aws_sdk_s3::Client::new(world.moto_sdk()),
            world,
            repo,
            first,
            events_queue,
        }
    }

    fn config(&self) -> Config {
        let names = &self.world.names;
        let bucket = &names.data_bucket;
        let vars: HashMap<String, String> = [
            ("STUDIO_OPS_EVENT_BUS", names.event_bus.clone()),
            (
                "STUDIO_OPS_IDEMPOTENCY_TABLE",
                names.idempotency_table.clone(),
            ),
            ("STUDIO_OPS_REPOSITORY_NAME", names.repository.clone()),
            (
                "STUDIO_OPS_TRAINING_ROLE_ARN",
                "arn:aws:iam::123456789012:role/studio-ops-training".to_string(),
            ),
            (
                "STUDIO_OPS_TRAINING_SUBNET_IDS",
                "subnet-0123456789abcdef0,subnet-0fedcba9876543210".to_string(),
            ),
            (
                "STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS",
                "sg-0123456789abcdef0".to_string(),
            ),
            ("STUDIO_OPS_OUTPUT_S3_URI", format!("s3://{bucket}/models/")),
            ("STUDIO_OPS_CODE_S3_URI", format!("s3://{bucket}/code/")),
            ("STUDIO_OPS_DATA_S3_URIS", format!("s3://{bucket}/data/")),
            (
                "STUDIO_OPS_OUTPUT_KMS_KEY_ID",
                "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000001"
                    .to_string(),
            ),
            (
                "STUDIO_OPS_ALLOWED_IMAGE_REPOSITORIES",
                ARIMA_REPOSITORY.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut vars = vars;
        // Experiment branches train; a pull request merged into main approves what they trained.
        vars.insert(
            "STUDIO_OPS_BRANCH_PATTERNS".into(),
            "main,experiment/*".into(),
        );
        vars.insert("STUDIO_OPS_APPROVE_ON_MERGE_INTO".into(), "main".into());
        vars.insert(
            "STUDIO_OPS_USERS_ROLE_ARN".into(),
            format!(
                "arn:aws:iam::{}:role/studio-ops-StudioExecutionRole-AbC123",
                names.account
            ),
        );
        vars.insert("STUDIO_OPS_SPEND_TABLE".into(), names.spend_table.clone());
        vars.insert("STUDIO_OPS_DOMAIN_ID".into(), names.domain_id.clone());
        if let Some(mlflow) = self.world.mlflow() {
            for (k, v) in [
                ("STUDIO_OPS_MLFLOW_TRACKING_SERVER_ARN", mlflow::SERVER_ARN),
                ("STUDIO_OPS_MLFLOW_ENDPOINT", mlflow.url()),
                ("STUDIO_OPS_MLFLOW_UI_URL", mlflow.url()),
            ] {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        Config::from_env(&Env::new(&vars), "us-east-1").unwrap()
    }

    fn handler(&self) -> TrainOnPush {
        let config = self.config();
        let moto = self.world.moto_sdk();
        let sim = self.world.sim_sdk();
        let sagemaker = aws_sdk_sagemaker::Client::new(sim);
        Handler::new(
            config.clone(),
            Ports {
                source: CodeCommitSource::new(aws_sdk_codecommit::Client::new(sim)),
                training: SageMakerTraining::new(sagemaker.clone()),
                registry: SageMakerRegistry::new(sagemaker),
                artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(moto)),
                publisher: EventBridgePublisher::new(
                    aws_sdk_eventbridge::Client::new(moto),
                    config.suite.event_bus_name.clone(),
                ),
                idempotency: DynamoIdempotencyStore::new(
                    aws_sdk_dynamodb::Client::new(moto),
                    config.suite.idempotency_table.clone(),
                    "train-on-push",
                    config.suite.idempotency_ttl,
                ),
                tracker: config.mlflow.as_ref().map(|m| {
                    let credentials = sim.credentials_provider().unwrap();
                    MlflowTracker::new(
                        &m.endpoint,
                        &m.server_arn,
                        "us-east-1",
                        credentials,
                        studio_ops_shared::aws::AMAZON_TRUST_SERVICES_ROOTS,
                    )
                    .unwrap()
                }),
                ledger: config
                    .spend
                    .as_ref()
                    .map(|s| DynamoSpendLedger::new(aws_sdk_dynamodb::Client::new(moto), &s.table)),
                state: DynamoPushState::new(
                    aws_sdk_dynamodb::Client::new(moto),
                    config.suite.idempotency_table.clone(),
                ),
            },
        )
    }

    /// The CodeCommit event for a push of `new` over `old` on main.
    fn push(&self, old: &str, new: &str) -> Value {
        let mut e = fixture("train-on-push/codecommit-reference-updated.json").unwrap();
        e["detail"]["repositoryName"] = json!(self.world.names.repository);
        e["detail"]["oldCommitId"] = json!(old);
        e["detail"]["commitId"] = json!(new);
        e
    }

    async fn calls(&self, op: &str) -> u64 {
        self.world.sim().admin().stats().await.unwrap().calls_of(op)
    }

    async fn suite_events(&self) -> Vec<SuiteEvent> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.events_queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                assert_eq!(envelope["source"], "studio-ops");
                out.push(SuiteEvent::from_envelope(&envelope).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.events_queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    async fn training_job_names(&self) -> Vec<String> {
        let mut names: Vec<String> = aws_sdk_sagemaker::Client::new(self.world.moto_sdk())
            .list_training_jobs()
            .send()
            .await
            .unwrap()
            .training_job_summaries()
            .iter()
            .map(|s| s.training_job_name().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    }

    async fn tags_of(&self, arn: &str) -> BTreeMap<String, String> {
        self.sagemaker
            .list_tags()
            .resource_arn(arn)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// A "Training Job State Change" for a job as SageMaker describes it now, with `status`.
    async fn state_change(&self, job: &str, status: &str, with_tags: bool) -> Value {
        let d = self
            .sagemaker
            .describe_training_job()
            .training_job_name(job)
            .send()
            .await
            .unwrap();
        let arn = d.training_job_arn().unwrap().to_string();
        let mut e = fixture("train-on-push/sagemaker-training-job-completed.json").unwrap();
        let detail = &mut e["detail"];
        detail["TrainingJobName"] = json!(job);
        detail["TrainingJobArn"] = json!(arn);
        detail["TrainingJobStatus"] = json!(status);
        detail["SecondaryStatus"] = json!(status);
        detail["AlgorithmSpecification"]["TrainingImage"] = json!(
            d.algorithm_specification()
                .unwrap()
                .training_image()
                .unwrap()
        );
        detail["ModelArtifacts"]["S3ModelArtifacts"] =
            json!(d.model_artifacts().unwrap().s3_model_artifacts().unwrap());
        if with_tags {
            detail["Tags"] = json!(self.tags_of(&arn).await);
        } else {
            detail.as_object_mut().unwrap().remove("Tags");
        }
        e["resources"] = json!([arn]);
        e
    }
}

fn change_churn(repo: &GitRepo, from: &str, to: &str) -> String {
    let text = repo.read(CHURN);
    assert!(text.contains(from), "{from} not in the churn manifest");
    text.replacen(from, to, 1)
}

/// The job a push's answer says it started for `model`, if any.
fn started<'a>(out: &'a Answer, model: &str) -> Option<&'a str> {
    match out {
        Answer::Pushed { models, .. } => match models.get(model)? {
            ModelOutcome::Started { job } => Some(job),
            _ => None,
        },
        _ => None,
    }
}

// ----- the tests -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_changing_one_of_four_models_starts_exactly_its_job_with_image_vpc_and_tags() {
    let local = Local::start().await;
    let changed = change_churn(&local.repo, "max_depth = 5", "max_depth = 6");
    let commit = local
        .repo
        .commit(&[(CHURN, Some(&changed))], "Deeper trees for churn");
    let job = naming::job_name("churn-xgboost", &commit);

    let out = local
        .handler()
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();
    assert_eq!(
        started(&out, "churn-xgboost"),
        Some(job.as_str()),
        "{out:?}"
    );

    assert_eq!(local.calls("CreateTrainingJob").await, 1);
    assert_eq!(local.training_job_names().await, vec![job.clone()]);
    assert!(local.calls("GetDifferences").await >= 1);

    let d = local
        .sagemaker
        .describe_training_job()
        .training_job_name(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.algorithm_specification().unwrap().training_image(),
        Some("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    );
    assert_eq!(
        d.role_arn(),
        Some("arn:aws:iam::123456789012:role/studio-ops-training")
    );
    let vpc = d.vpc_config().unwrap();
    assert_eq!(
        vpc.subnets(),
        ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    );
    assert_eq!(vpc.security_group_ids(), ["sg-0123456789abcdef0"]);
    assert_eq!(d.enable_network_isolation(), Some(true));
    assert_eq!(d.enable_inter_container_traffic_encryption(), Some(true));
    let output = d.output_data_config().unwrap();
    assert_eq!(
        output.s3_output_path(),
        Some("s3://studio-ops-data-123456789012/models/churn-xgboost/")
    );
    assert!(output.kms_key_id().unwrap().starts_with("arn:aws:kms:"));
    assert_eq!(d.hyper_parameters().unwrap()["max_depth"], "6");
    let experiment = d.experiment_config().unwrap();
    assert_eq!(experiment.experiment_name(), Some("churn"));
    assert_eq!(experiment.trial_name(), Some(job.as_str()));

    let tags = local.tags_of(d.training_job_arn().unwrap()).await;
    assert_eq!(tags["studio-ops:managed-by"], "studio-ops");
    assert_eq!(tags["studio-ops:model"], "churn-xgboost");
    assert_eq!(tags["studio-ops:repository"], "sagemaker-repository");
    assert_eq!(tags["studio-ops:branch"], "main");
    assert_eq!(tags["studio-ops:commit"], commit);
    assert_eq!(tags["studio-ops:author"], "ana.silva@example.com");

    // Experiments: one experiment per model, one trial (run) per commit.
    let moto_sm = aws_sdk_sagemaker::Client::new(local.world.moto_sdk());
    moto_sm
        .describe_experiment()
        .experiment_name("churn")
        .send()
        .await
        .unwrap();
    let trials = moto_sm
        .list_trials()
        .experiment_name("churn")
        .send()
        .await
        .unwrap();
    let trial_names: Vec<&str> = trials
        .trial_summaries()
        .iter()
        .filter_map(|t| t.trial_name())
        .collect();
    assert_eq!(trial_names, vec![job.as_str()]);

    let events = local.suite_events().await;
    let [SuiteEvent::TrainingStarted(s)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(s.training_job_name, job);
    assert_eq!(s.commit_id, commit);
    assert_eq!(s.author.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(s.instance_type, "ml.m5.xlarge");
    local.world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tensorflow_models_source_reaches_s3_as_script_mode_expects() {
    let local = Local::start().await;
    let script = "models/digits-cnn/src/train.py";
    let new_script = format!(
        "{}\n# v2: more epochs by default\n",
        local.repo.read(script)
    );
    let commit = local
        .repo
        .commit(&[(script, Some(&new_script))], "digits: v2 script");
    let job = naming::job_name("digits-cnn", &commit);
    local
        .handler()
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();
    assert_eq!(local.training_job_names().await, vec![job.clone()]);

    let key = format!("code/digits-cnn/{job}/sourcedir.tar.gz");
    let object = local
        .s3
        .get_object()
        .bucket(&local.world.names.data_bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        object.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        files.insert(name, text);
    }
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["digits_data.py", "train.py"]
    );
    assert_eq!(files["train.py"], new_script);

    let d = local
        .sagemaker
        .describe_training_job()
        .training_job_name(&job)
        .send()
        .await
        .unwrap();
    let h = d.hyper_parameters().unwrap();
    assert_eq!(h["sagemaker_program"], "\"train.py\"");
    assert_eq!(
        h["sagemaker_submit_directory"],
        format!("\"s3://{}/{key}\"", local.world.names.data_bucket)
    );
    assert_eq!(
        d.algorithm_specification().unwrap().training_image(),
        Some("763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.16.2-gpu-py310")
    );
    let metrics: Vec<&str> = d
        .algorithm_specification()
        .unwrap()
        .metric_definitions()
        .iter()
        .filter_map(|m| m.name())
        .collect();
    assert!(!metrics.is_empty());
    local.world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_starts_nothing_and_alerts_the_committer() {
    let local = Local::start().await;
    let hostile = change_churn(
        &local.repo,
        "[algorithm]",
        "role_arn = \"arn:aws:iam::999999999999:role/admin\"\n\n[algorithm]",
    );
    let line = hostile
        .lines()
        .position(|l| l.starts_with("role_arn"))
        .unwrap()
        + 1;
    let commit = local
        .repo
        .commit(&[(CHURN, Some(&hostile))], "Train with my role");
    let handler = local.handler();
    handler
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();

    assert_eq!(local.calls("CreateTrainingJob").await, 0);
    assert_eq!(local.calls("CreateExperiment").await, 0);
    assert!(local.training_job_names().await.is_empty());
    let events = local.suite_events().await;
    let [SuiteEvent::TrainingRejected(r)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(r.file, CHURN);
    assert_eq!(r.line, Some(u32::try_from(line).unwrap()));
    assert_eq!(
        r.reason,
        "`role_arn` cannot be set in a manifest: the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)"
    );
    assert_eq!(r.author.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(r.commit_id, commit);
    assert_eq!(r.model.as_deref(), Some("churn-xgboost"));

    // A replay alerts no one again.
    handler
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();
    assert!(local.suite_events().await.is_empty());
    local.world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_push_three_times_starts_one_job() {
    let local = Local::start().await;
    let changed = change_churn(&local.repo, "eta = 0.2", "eta = 0.1");
    let commit = local
        .repo
        .commit(&[(CHURN, Some(&changed))], "Slower learning");
    let event = local.push(&local.first, &commit);
    let handler = local.handler();
    for _ in 0..3 {
        handler
            .handle(event.clone(), Context::default())
            .await
            .unwrap();
    }
    // A new invocation environment (a fresh handler) with the same store: still one job.
    local
        .handler()
        .handle(event, Context::default())
        .await
        .unwrap();
    assert_eq!(local.calls("CreateTrainingJob").await, 1);
    assert_eq!(
        local.training_job_names().await,
        vec![naming::job_name("churn-xgboost", &commit)]
    );
    let started = local
        .suite_events()
        .await
        .into_iter()
        .filter(|e| matches!(e, SuiteEvent::TrainingStarted(_)))
        .count();
    assert_eq!(started, 1);

    // The next push delivered three times at once, to three fresh invocation environments: still one job.
    let changed = change_churn(&local.repo, "eta = 0.1", "eta = 0.05");
    let commit = local
        .repo
        .commit(&[(CHURN, Some(&changed))], "Even slower learning");
    let event = local.push(&local.first, &commit);
    let handlers = [local.handler(), local.handler(), local.handler()];
    let outcomes = futures::future::join_all(
        handlers
            .iter()
            .map(|h| h.handle(event.clone(), Context::default())),
    )
    .await;
    for outcome in outcomes {
        outcome.unwrap();
    }
    assert_eq!(
        local.training_job_names().await.len(),
        2,
        "one job per push"
    );
    let started: Vec<String> = local
        .suite_events()
        .await
        .into_iter()
        .filter_map(|e| match e {
            SuiteEvent::TrainingStarted(t) => Some(t.training_job_name),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![naming::job_name("churn-xgboost", &commit)]);
    local.world.stop().await;
}

/// Without reserved concurrency, a burst is bounded by what it contains, not by how it is delivered: a burst of
/// four pushes, each delivered twice, all at once to three invocation environments, starts one job per pushed
/// commit and changed model (and never more than STUDIO_OPS_MAX_JOBS_PER_PUSH per push, a unit test's case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pushes_delivered_twice_at_once_starts_one_job_per_commit() {
    let local = Local::start().await;
    let mut events = Vec::new();
    let mut expected = Vec::new();
    let mut old = local.first.clone();
    for (i, eta) in ["0.11", "0.12", "0.13", "0.14"].into_iter().enumerate() {
        let from = if i == 0 {
            "eta = 0.2"
        } else {
            &format!("eta = 0.1{i}")
        };
        let changed = change_churn(&local.repo, from, &format!("eta = {eta}"));
        let commit = local
            .repo
            .commit(&[(CHURN, Some(&changed))], &format!("eta {eta}"));
        events.push(local.push(&old, &commit));
        expected.push(naming::job_name("churn-xgboost", &commit));
        old = commit;
    }
    let handlers = [local.handler(), local.handler(), local.handler()];
    let deliveries = events.iter().chain(events.iter()).enumerate();
    let outcomes = futures::future::join_all(
        deliveries.map(|(i, e)| handlers[i % 3].handle(e.clone(), Context::default())),
    )
    .await;
    for outcome in outcomes {
        outcome.unwrap();
    }
    let mut jobs = local.training_job_names().await;
    jobs.sort();
    expected.sort();
    assert_eq!(
        jobs, expected,
        "one job per pushed commit, however delivered"
    );
    assert_eq!(local.calls("CreateTrainingJob").await, 4);
    local.world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_train_and_a_branch_outside_the_patterns_start_nothing() {
    let local = Local::start().await;
    let changed = change_churn(&local.repo, "eta = 0.2", "eta = 0.3");
    let commit = local
        .repo
        .commit(&[(CHURN, Some(&changed))], "Tune eta [skip train]");
    let out = local
        .handler()
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();
    assert!(matches!(out, Answer::Skipped { .. }), "{out:?}");
    let mut other_branch = local.push(&local.first, &commit);
    other_branch["detail"]["referenceName"] = json!("experiment-lr");
    let out = local
        .handler()
        .handle(other_branch, Context::default())
        .await
        .unwrap();
    assert!(matches!(out, Answer::Ignored { .. }), "{out:?}");
    assert_eq!(local.calls("CreateTrainingJob").await, 0);
    assert!(local.suite_events().await.is_empty());
    local.world.stop().await;
}

/// CodeCommit's events are best effort: two pushes whose events never came are trained by the hourly catch-up,
/// once however often it runs, the rejection reported once; a late event finds the work done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_pushes_are_caught_up_once_and_a_late_event_finds_them_done() {
    let local = Local::start().await;
    let catch_up = fixture("train-on-push/scheduler-catch-up.json").unwrap();
    let branch_state = |out: &Answer| -> Value {
        let Answer::CaughtUp { branches, .. } = out else {
            panic!("not a catch-up: {out:?}")
        };
        serde_json::to_value(&branches["main"]).unwrap()
    };
    // The first run records main's head and trains nothing.
    let out = local
        .handler()
        .handle(catch_up.clone(), Context::default())
        .await
        .unwrap();
    assert_eq!(branch_state(&out)["state"], "started-watching", "{out:?}");
    assert_eq!(branch_state(&out)["head"], json!(local.first));
    // Two pushes whose events are lost: churn tuned, then a manifest the policy refuses.
    let changed = change_churn(&local.repo, "eta = 0.2", "eta = 0.1");
    let c1 = local
        .repo
        .commit(&[(CHURN, Some(&changed))], "Slower learning");
    let arima = "models/sales-arima/training.toml";
    let bad = local.repo.read(arima).replace(
        "instance_type = \"ml.m5.large\"",
        "instance_type = \"ml.p4d.24xlarge\"",
    );
    let c2 = local.repo.commit(&[(arima, Some(&bad))], "arima: go big");
    // The catch-up, three times and from a fresh environment: one job, one rejection, one report.
    for _ in 0..3 {
        local
            .handler()
            .handle(catch_up.clone(), Context::default())
            .await
            .unwrap();
    }
    let job = naming::job_name("churn-xgboost", &c2);
    assert_eq!(local.training_job_names().await, vec![job.clone()]);
    assert_eq!(local.calls("CreateTrainingJob").await, 1);
    let events = local.suite_events().await;
    let rejected: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::TrainingRejected(r) => r.model.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec!["sales-arima".to_string()]);
    let reports: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::PushCaughtUp(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1, "{events:?}");
    assert_eq!(
        reports[0].from_commit.as_deref(),
        Some(local.first.as_str())
    );
    assert_eq!(reports[0].to_commit, c2);
    assert_eq!(reports[0].started, vec![job.clone()]);
    assert_eq!(reports[0].rejected, vec!["sales-arima".to_string()]);
    // The next run finds main evaluated.
    let out = local
        .handler()
        .handle(catch_up.clone(), Context::default())
        .await
        .unwrap();
    assert_eq!(branch_state(&out)["state"], "up-to-date", "{out:?}");
    // The first push's event arrives after all: churn's folder is the tree the caught-up job trains from.
    let late = local
        .handler()
        .handle(local.push(&local.first, &c1), Context::default())
        .await
        .unwrap();
    let Answer::Pushed { models, .. } = &late else {
        panic!("{late:?}")
    };
    assert_eq!(models["churn-xgboost"], ModelOutcome::SameTree { job });
    assert_eq!(local.calls("CreateTrainingJob").await, 1);
    assert!(local.suite_events().await.is_empty());
    local.world.stop().await;
}

/// Merge-to-approve over HTTP: an experiment branch trains a version pending approval; its pull request, merged
/// through CodeCommit (the simulator's three-way merge), approves exactly that version once however often the event
/// comes, naming the merger; a pull request closed unmerged approves nothing; the merge's push to main trains nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_pull_request_approves_its_branchs_version_once_and_a_closed_one_nothing() {
    let local = Local::start().await;
    let handler = local.handler();
    let repo = &local.repo;
    let codecommit = aws_sdk_codecommit::Client::new(local.world.sim_sdk());
    let branch = "experiment/churn-eta";
    let branch_push = |old: &str, new: &str, name: &str| {
        let mut e = local.push(old, new);
        e["detail"]["referenceName"] = json!(name);
        e
    };
    // The experiment branch: created (trains nothing), then a change that trains.
    repo.0.switch(branch).unwrap();
    repo.0.push_branch(branch).unwrap();
    let changed = change_churn(repo, "eta = 0.2", "eta = 0.1");
    let tip = repo.commit(&[(CHURN, Some(&changed))], "churn: lower the learning rate");
    let out = handler
        .handle(branch_push(&local.first, &tip, branch), Context::default())
        .await
        .unwrap();
    let job = started(&out, "churn-xgboost")
        .expect("the experiment trains")
        .to_string();
    let completed = local.state_change(&job, "Completed", true).await;
    handler.handle(completed, Context::default()).await.unwrap();
    let moto_sm = aws_sdk_sagemaker::Client::new(local.world.moto_sdk());
    let version_arn = moto_sm
        .list_model_packages()
        .model_package_group_name("churn-xgboost")
        .send()
        .await
        .unwrap()
        .model_package_summary_list()[0]
        .model_package_arn()
        .unwrap()
        .to_string();

    // A second branch whose pull request is closed without merging.
    repo.0.switch("main").unwrap();
    repo.0.switch("experiment/abandoned").unwrap();
    let abandoned = repo.commit(
        &[(CHURN, Some(&change_churn(repo, "eta = 0.2", "eta = 0.9")))],
        "churn: eta 0.9",
    );
    let closed = codecommit
        .create_pull_request()
        .title("churn: eta 0.9")
        .targets(
            aws_sdk_codecommit::types::Target::builder()
                .repository_name(&local.world.names.repository)
                .source_reference("experiment/abandoned")
                .destination_reference("main")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let closed_id = closed
        .pull_request()
        .unwrap()
        .pull_request_id()
        .unwrap()
        .to_string();
    codecommit
        .update_pull_request_status()
        .pull_request_id(&closed_id)
        .pull_request_status(aws_sdk_codecommit::types::PullRequestStatusEnum::Closed)
        .send()
        .await
        .unwrap();
    let mut closed_event = fixture("train-on-push/codecommit-pull-request-closed.json").unwrap();
    closed_event["detail"]["pullRequestId"] = json!(closed_id);
    closed_event["detail"]["repositoryNames"] = json!([local.world.names.repository]);
    closed_event["detail"]["sourceCommit"] = json!(abandoned);
    let out = handler
        .handle(closed_event, Context::default())
        .await
        .unwrap();
    assert!(matches!(out, Answer::Ignored { .. }), "{out:?}");

    // The reviewed pull request, merged.
    let pr = codecommit
        .create_pull_request()
        .title("churn: lower the learning rate")
        .targets(
            aws_sdk_codecommit::types::Target::builder()
                .repository_name(&local.world.names.repository)
                .source_reference(branch)
                .destination_reference("main")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let id = pr
        .pull_request()
        .unwrap()
        .pull_request_id()
        .unwrap()
        .to_string();
    let merged = codecommit
        .merge_pull_request_by_three_way()
        .pull_request_id(&id)
        .repository_name(&local.world.names.repository)
        .source_commit_id(&tip)
        .send()
        .await
        .unwrap();
    let merge_commit = merged.pull_request().unwrap().pull_request_targets()[0]
        .merge_metadata()
        .unwrap()
        .merge_commit_id()
        .unwrap()
        .to_string();
    let mut event = fixture("train-on-push/codecommit-pull-request-merged.json").unwrap();
    event["detail"]["pullRequestId"] = json!(id);
    event["detail"]["repositoryNames"] = json!([local.world.names.repository]);
    event["detail"]["sourceCommit"] = json!(tip);
    let lead = event["detail"]["callerUserArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(lead.contains("AWSReservedSSO_MLLead"), "{lead}");
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            handler
                .handle(event.clone(), Context::default())
                .await
                .unwrap(),
        );
    }
    answers.push(
        local
            .handler()
            .handle(event.clone(), Context::default())
            .await
            .unwrap(),
    );
    let Answer::Merged {
        models,
        merge_commit: recorded,
        merged_by,
        ..
    } = &answers[0]
    else {
        panic!("{:?}", answers[0])
    };
    assert_eq!(recorded.as_deref(), Some(merge_commit.as_str()));
    assert_eq!(merged_by.as_deref(), Some(lead.as_str()));
    assert_eq!(models.len(), 1, "{models:?}");
    assert!(
        matches!(&models["churn-xgboost"], Approval::Approved { model_package_arn, commit, .. } if model_package_arn == &version_arn && commit == &tip),
        "{models:?}"
    );
    for again in &answers[1..] {
        assert!(matches!(again, Answer::Duplicate { .. }), "{again:?}");
    }
    let described = moto_sm
        .describe_model_package()
        .model_package_name(&version_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.model_approval_status().map(|s| s.as_str()),
        Some("Approved")
    );
    let note = described.approval_description().unwrap_or_default();
    assert!(note.contains(&format!("pull request #{id}")), "{note}");
    assert!(note.contains(&merge_commit[..7]), "{note}");
    assert!(
        note.contains("li.wei@example.com (IAM Identity Center, permission set MLLead)"),
        "{note}"
    );
    assert_eq!(local.calls("UpdateModelPackage").await, 1);

    // The merge's own push to main: churn's folder is the tree the experiment trained.
    let out = handler
        .handle(local.push(&local.first, &merge_commit), Context::default())
        .await
        .unwrap();
    let Answer::Pushed { models, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(
        models["churn-xgboost"],
        ModelOutcome::SameTree { job: job.clone() }
    );
    assert_eq!(local.training_job_names().await, vec![job]);
    local.world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_job_becomes_one_pending_manual_approval_version_carrying_the_commit() {
    let local = Local::start().await;
    let changed = change_churn(&local.repo, "num_round = 100", "num_round = 200");
    let commit = local.repo.commit(&[(CHURN, Some(&changed))], "More rounds");
    let job = naming::job_name("churn-xgboost", &commit);
    let handler = local.handler();
    handler
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();
    local.suite_events().await;

    // The author's profile, named as provision-users names it with STUDIO_OPS_PROFILE_NAME_STYLE=local-part.
    local
        .sagemaker
        .create_user_profile()
        .domain_id(&local.world.names.domain_id)
        .user_profile_name("ana-silva")
        .send()
        .await
        .unwrap();

    // Moto finishes jobs at once; SageMaker's state change arrives three times, once without tags.
    let completed = local.state_change(&job, "Completed", true).await;
    for _ in 0..2 {
        handler
            .handle(completed.clone(), Context::default())
            .await
            .unwrap();
    }
    let untagged = local.state_change(&job, "Completed", false).await;
    handler.handle(untagged, Context::default()).await.unwrap();

    let moto_sm = aws_sdk_sagemaker::Client::new(local.world.moto_sdk());
    let versions = moto_sm
        .list_model_packages()
        .model_package_group_name("churn-xgboost")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.model_package_summary_list().len(), 1);
    let arn = versions.model_package_summary_list()[0]
        .model_package_arn()
        .unwrap()
        .to_string();
    let p = moto_sm
        .describe_model_package()
        .model_package_name(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        p.model_approval_status().map(|s| s.as_str()),
        Some("PendingManualApproval")
    );
    let lineage = p.metadata_properties().unwrap();
    assert_eq!(lineage.commit_id(), Some(commit.as_str()));
    assert_eq!(lineage.repository(), Some("sagemaker-repository"));
    assert!(
        lineage
            .generated_by()
            .unwrap()
            .ends_with(&format!("training-job/{job}"))
    );
    let container = &p.inference_specification().unwrap().containers()[0];
    assert_eq!(
        container.image(),
        Some("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    );
    assert_eq!(
        container.model_data_url(),
        Some(
            format!(
                "s3://studio-ops-data-123456789012/models/churn-xgboost/{job}/output/model.tar.gz"
            )
            .as_str()
        )
    );
    let meta = p.customer_metadata_properties().unwrap();
    assert_eq!(meta["studio-ops:commit"], commit);
    assert_eq!(meta["studio-ops:training-job"], job);
    moto_sm
        .describe_model_package_group()
        .model_package_group_name("churn-xgboost")
        .send()
        .await
        .unwrap();

    // The job's spend, recorded once in the ledger whatever the three deliveries: the simulator bills 900 s
    // on one ml.m5.xlarge, billed to the profile the author (ana.silva@example.com) has in the domain.
    let ledger = aws_sdk_dynamodb::Client::new(local.world.moto_sdk())
        .scan()
        .table_name(&local.world.names.spend_table)
        .send()
        .await
        .unwrap();
    let records: Vec<_> = ledger
        .items()
        .iter()
        .filter(|i| {
            i.get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                == Some("training-job")
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = records[0];
    let text = |k: &str| record[k].as_s().unwrap().clone();
    let number = |k: &str| record[k].as_n().unwrap().parse::<f64>().unwrap();
    assert_eq!(text("sk"), format!("training#{job}"));
    assert_eq!(text("account"), "user/ana-silva");
    assert!(text("pk").starts_with(&format!("{}#", local.world.names.domain_id)));
    assert_eq!(number("seconds"), 900.0);
    assert_eq!(number("usdPerHour"), 0.23);
    assert!((number("usd") - 0.0575).abs() < 1e-6, "{record:?}");

    let events = local.suite_events().await;
    let [SuiteEvent::ModelRegistered(m)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(m.model_package_arn, arn);
    assert_eq!(m.commit_id.as_deref(), Some(commit.as_str()));
    assert_eq!(m.training_job_name, job);
    assert_eq!(local.calls("CreateModelPackage").await, 1);
    local.world.stop().await;
}

/// The run is read back from the real MLflow server: opened with the job (params, tags, MlflowConfig on the job),
/// closed with the job's end (status, final metrics, artifacts, billable seconds), once whatever the replays; the
/// registered version and its alert carry the run's id and link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_is_one_mlflow_run_opened_at_start_closed_at_the_end_and_linked_from_its_version()
{
    let local = Local::start_with(WorldConfig {
        mlflow: true,
        ..WorldConfig::default()
    })
    .await;
    let changed = change_churn(&local.repo, "num_round = 100", "num_round = 150");
    let commit = local
        .repo
        .commit(&[(CHURN, Some(&changed))], "Tracked in MLflow");
    let job = naming::job_name("churn-xgboost", &commit);
    let handler = local.handler();
    for _ in 0..3 {
        let push = local.push(&local.first, &commit);
        handler.handle(push, Context::default()).await.unwrap();
    }
    let server = local.world.mlflow().unwrap();
    let runs = server.runs("churn").await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(run["info"]["run_name"], job);
    assert_eq!(run["info"]["status"], "RUNNING");
    assert_eq!(entry(run, "params", "num_round"), Some(&json!("150")));
    assert_eq!(
        entry(run, "params", "sagemaker.instance_type"),
        Some(&json!("ml.m5.xlarge"))
    );
    assert_eq!(
        entry(run, "tags", "studio-ops.commit"),
        Some(&json!(commit))
    );
    assert_eq!(
        entry(run, "tags", "studio-ops.branch"),
        Some(&json!("main"))
    );
    assert_eq!(
        entry(run, "tags", "studio-ops.manifest"),
        Some(&json!(CHURN))
    );
    let run_id = run["info"]["run_id"].as_str().unwrap().to_string();
    // The job names the server, experiment and run (MlflowConfig) and carries the run's id.
    let described = local
        .sagemaker
        .describe_training_job()
        .training_job_name(&job)
        .send()
        .await
        .unwrap();
    let tags = local.tags_of(described.training_job_arn().unwrap()).await;
    assert_eq!(tags.get(naming::tag::MLFLOW_RUN_ID), Some(&run_id));
    let config = described.mlflow_config().unwrap();
    assert_eq!(config.mlflow_resource_arn(), mlflow::SERVER_ARN);
    assert_eq!(config.mlflow_experiment_name(), Some("churn"));
    assert_eq!(config.mlflow_run_name(), Some(job.as_str()));
    assert!(described.experiment_config().is_none());
    assert_eq!(
        local.calls("CreateExperiment").await,
        0,
        "no classic experiment"
    );
    local.suite_events().await;

    let completed = local.state_change(&job, "Completed", true).await;
    for _ in 0..3 {
        handler
            .handle(completed.clone(), Context::default())
            .await
            .unwrap();
    }
    let runs = server.runs("churn").await.unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["info"]["status"], "FINISHED");
    assert!(run["info"]["end_time"].as_i64().is_some());
    assert!(
        entry(run, "tags", "studio-ops.model-artifacts")
            .and_then(Value::as_str)
            .is_some_and(|a| a.ends_with("/output/model.tar.gz")),
        "{run:#?}"
    );
    let events = local.suite_events().await;
    let [SuiteEvent::ModelRegistered(m)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(m.mlflow_run_id.as_deref(), Some(run_id.as_str()));
    let link = m.mlflow_run_url.clone().unwrap();
    assert!(
        link.starts_with(server.url()) && link.ends_with(&format!("/runs/{run_id}")),
        "{link}"
    );
    assert_eq!(
        entry(run, "tags", "studio-ops.model-package-arn"),
        Some(&json!(m.model_package_arn))
    );
    let p = aws_sdk_sagemaker::Client::new(local.world.moto_sdk())
        .describe_model_package()
        .model_package_name(&m.model_package_arn)
        .send()
        .await
        .unwrap();
    let meta = p.customer_metadata_properties().unwrap();
    assert_eq!(meta["studio-ops:mlflow-run-id"], run_id);
    assert_eq!(meta["studio-ops:mlflow-run-url"], link);
    local.world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_reported_once_and_a_foreign_job_is_left_alone() {
    let local = Local::start().await;
    let changed = change_churn(&local.repo, "max_depth = 5", "max_depth = 4");
    let commit = local.repo.commit(&[(CHURN, Some(&changed))], "Shallower");
    let job = naming::job_name("churn-xgboost", &commit);
    let handler = local.handler();
    handler
        .handle(local.push(&local.first, &commit), Context::default())
        .await
        .unwrap();
    local.suite_events().await;
    let mut failed = local.state_change(&job, "Failed", true).await;
    failed["detail"]["FailureReason"] = json!("AlgorithmError: label must be in [0,1]");
    for _ in 0..2 {
        handler
            .handle(failed.clone(), Context::default())
            .await
            .unwrap();
    }
    let events = local.suite_events().await;
    let [SuiteEvent::TrainingFailed(f)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(f.training_job_name, job);
    assert_eq!(f.failure_reason, "AlgorithmError: label must be in [0,1]");
    assert_eq!(f.commit_id.as_deref(), Some(commit.as_str()));

    // A job someone started by hand: no tags of ours (asked with ListTags), nothing registered.
    let mut foreign = local.state_change(&job, "Completed", false).await;
    foreign["detail"]["TrainingJobName"] = json!("hand-made-1");
    foreign["detail"]["TrainingJobArn"] =
        json!("arn:aws:sagemaker:us-east-1:123456789012:training-job/hand-made-1");
    let moto_sm = aws_sdk_sagemaker::Client::new(local.world.moto_sdk());
    let d = moto_sm
        .describe_training_job()
        .training_job_name(&job)
        .send()
        .await
        .unwrap();
    moto_sm
        .create_training_job()
        .training_job_name("hand-made-1")
        .role_arn(d.role_arn().unwrap())
        .set_algorithm_specification(d.algorithm_specification().cloned())
        .set_output_data_config(d.output_data_config().cloned())
        .set_resource_config(d.resource_config().cloned())
        .set_stopping_condition(d.stopping_condition().cloned())
        .send()
        .await
        .unwrap();
    let out = handler.handle(foreign, Context::default()).await.unwrap();
    assert!(
        matches!(&out, Answer::Ignored { reason, .. } if reason == "not started by studio-ops"),
        "{out:?}"
    );
    assert!(local.suite_events().await.is_empty());
    assert_eq!(local.calls("CreateModelPackage").await, 0);
    local.world.stop().await;
}

/// SageMaker's answers for an existing job name and an existing experiment, as the real service gives them
/// (moto replaces duplicates silently): a loopback stub speaking the SageMaker JSON protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sagemaker_adapter_reads_already_exists_answers() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    async fn answer(headers: HeaderMap) -> axum::response::Response {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let error = |code: &str, message: &str| {
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.1")],
                json!({"__type": code, "message": message}).to_string(),
            )
                .into_response()
        };
        match target {
            "SageMaker.CreateTrainingJob" => error(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job with this name already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-xgboost-abcdef1)",
            ),
            "SageMaker.CreateExperiment" => {
                error("ValidationException", "Experiment 'churn' already exists.")
            }
            "SageMaker.DescribeTrainingJob" => {
                error("ValidationException", "Requested resource not found.")
            }
            _ => error("UnknownOperationException", target),
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback(answer))
            .await
            .ok();
    });
    let sdk: SdkConfig = studio_ops_tests::moto::local_sdk_config(&format!("http://{addr}")).await;
    let training = SageMakerTraining::new(aws_sdk_sagemaker::Client::new(&sdk));
    training
        .ensure_experiment("churn", "runs of churn")
        .await
        .unwrap();
    assert_eq!(
        training
            .describe_training_job("gone-1234567")
            .await
            .unwrap(),
        None
    );

    // A plan for the job (the request content does not matter to the stub).
    let local_cfg = {
        let vars: HashMap<&str, &str> = [
            ("STUDIO_OPS_EVENT_BUS", "b"),
            ("STUDIO_OPS_IDEMPOTENCY_TABLE", "t"),
            ("STUDIO_OPS_REPOSITORY_NAME", "sagemaker-repository"),
            (
                "STUDIO_OPS_TRAINING_ROLE_ARN",
                "arn:aws:iam::123456789012:role/r",
            ),
            ("STUDIO_OPS_TRAINING_SUBNET_IDS", "subnet-01"),
            ("STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS", "sg-01"),
            (
                "STUDIO_OPS_OUTPUT_S3_URI",
                "s3://studio-ops-data-123456789012/models/",
            ),
            (
                "STUDIO_OPS_CODE_S3_URI",
                "s3://studio-ops-data-123456789012/code/",
            ),
            (
                "STUDIO_OPS_DATA_S3_URIS",
                "s3://studio-ops-data-123456789012/data/",
            ),
        ]
        .into_iter()
        .collect();
        Config::from_env(&Env::new(&vars), "us-east-1").unwrap()
    };
    let manifest = train_on_push::manifest::parse(
        &std::fs::read(
            workspace_root()
                .join("tests/fixtures/models-repo")
                .join(CHURN),
        )
        .unwrap(),
        &local_cfg.policy,
    )
    .unwrap();
    let push = train_on_push::changes::Push {
        repository: "sagemaker-repository".into(),
        branch: "main".into(),
        commit_id: "abcdef1234567890abcdef1234567890abcdef12".into(),
        before: None,
        pushed_by: None,
    };
    let spec = train_on_push::plan::training_job(
        &train_on_push::plan::Target {
            push: &push,
            model: "churn-xgboost",
            folder: "models/churn-xgboost",
            author: None,
        },
        &manifest,
        &local_cfg.deployment,
    );
    assert_eq!(
        training.create_training_job(&spec).await.unwrap(),
        JobCreation::AlreadyExists
    );
    server.abort();
}

/// The real binary, hosted behind the Lambda runtime API with the template's environment, trains on a push that
/// EventBridge routes to it with the template's rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_binary_trains_on_a_routed_push() {
    let mut cfg = WorldConfig {
        functions: vec!["train-on-push".into()],
        ..WorldConfig::default()
    };
    cfg.values
        .insert("TrainingImageRepositories".into(), ARIMA_REPOSITORY.into());
    let local = Local::start_with(cfg).await;
    let arima = "models/sales-arima/training.toml";
    let changed = local.repo.read(arima).replace("p = 2", "p = 3");
    let commit = local
        .repo
        .commit(&[(arima, Some(&changed))], "ARIMA(3,1,2)");
    let invocations = local
        .world
        .put_event(&local.push(&local.first, &commit))
        .await
        .unwrap();
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    let Outcome::Response(out) = &invocations[0].outcome else {
        panic!("{:?}", invocations[0].outcome)
    };
    let out: Answer = serde_json::from_value(out.clone()).unwrap();
    let job = naming::job_name("sales-arima", &commit);
    assert_eq!(started(&out, "sales-arima"), Some(job.as_str()), "{out:?}");
    assert_eq!(local.training_job_names().await, vec![job.clone()]);
    let d = local
        .sagemaker
        .describe_training_job()
        .training_job_name(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.algorithm_specification().unwrap().training_image(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima:1.4.0")
    );
    // The template's settings: the training role, the world's subnets, the workspace key.
    assert!(d.role_arn().unwrap().ends_with(":role/studio-ops-training"));
    assert_eq!(
        d.resource_config().unwrap().volume_kms_key_id(),
        Some("arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000001")
    );
    let events = local.suite_events().await;
    assert!(
        matches!(events.as_slice(), [SuiteEvent::TrainingStarted(s)] if s.training_job_name == job),
        "{events:?}"
    );
    local.world.stop().await;
}

/// GetDifferences pages (100 differences a page in the simulator) are all read, and GetFolder/GetFile see the
/// commit asked for, not the branch tip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codecommit_adapter_reads_every_page_and_the_commit_asked_for() {
    use train_on_push::ports::{FolderEntry, SourceRepository};

    let local = Local::start().await;
    let notes: Vec<(String, String)> = (0..250)
        .map(|i| {
            (
                format!("models/churn-xgboost/notes/{i:03}.md"),
                format!("note {i}\n"),
            )
        })
        .collect();
    let changes: Vec<(&str, Option<&str>)> = notes
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    let second = local.repo.commit(&changes, "Many notes");
    let third = local.repo.commit(
        &[("models/sales-arima/notes.md", Some("later\n"))],
        "A later commit",
    );
    let source = CodeCommitSource::new(aws_sdk_codecommit::Client::new(local.world.sim_sdk()));
    let repo = &local.world.names.repository;

    let before = local.calls("GetDifferences").await;
    let paths = source
        .changed_paths(repo, &local.first, &second, "models")
        .await
        .unwrap();
    assert_eq!(paths.len(), 250);
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("models/churn-xgboost/notes/"))
    );
    assert_eq!(local.calls("GetDifferences").await - before, 3);
    // A folder that exists in neither commit: nothing changed under it.
    assert!(
        source
            .changed_paths(repo, &local.first, &second, "no-such-folder")
            .await
            .unwrap()
            .is_empty()
    );

    let commit = source.commit(repo, &second).await.unwrap();
    assert_eq!(commit.message.trim(), "Many notes");
    assert_eq!(
        commit.author_email.as_deref(),
        Some("ana.silva@example.com")
    );
    let at_second = source
        .folder(repo, &second, "models/sales-arima")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !at_second
            .iter()
            .any(|e| matches!(e, FolderEntry::File { path, .. } if path.ends_with("notes.md")))
    );
    assert!(
        source
            .file(repo, &third, "models/sales-arima/notes.md")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        source
            .file(repo, &second, "models/sales-arima/notes.md")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        source.folder(repo, &second, "models/nope").await.unwrap(),
        None
    );
    local.world.stop().await;
}
