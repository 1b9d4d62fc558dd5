//! The IAM replay test: every AWS request the four functions make while the team's day runs in the local world
//! (the demo's chapters, as real Lambda processes behind recording proxies) is evaluated against that function's role
//! as `infra/template.yaml` defines it; a request the role does not allow fails, naming the function, the action, the
//! resource and the nearest statement. Coverage is measured against the product code (every AWS operation the
//! functions call must have been recorded), and a mutation pass removes each action and each resource of the roles'
//! Allow statements in turn: each removal must deny at least one recorded request, so the replay would notice a
//! missing permission and the roles grant nothing the code does not use. See docs/security.md.
//!
//! Run alone: `cargo test -p studio-ops-tests --test iam` (needs `make venv` and the evaluator in tools/iam-eval).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use studio_ops_tests::demo;
use studio_ops_tests::git::GitRepo;
use studio_ops_tests::iam::{
    self, IamRequest, NamedPolicy, Policies, Question, Scope, operation, role_policies,
};
use studio_ops_tests::runtime_api::{Invocation, Outcome};
use studio_ops_tests::sim::ACCOUNT_ID;
use studio_ops_tests::world::{SUBNET_IDS, TRAINING_SECURITY_GROUP, World, WorldConfig, fixture};
use train_on_push::handler::Outcome as TrainAnswer;
use train_on_push::naming;
use train_on_push::push::ModelOutcome;

/// Each function and the role the template gives it.
const ROLES: &[(&str, &str)] = &[
    ("provision-users", "ProvisionUsersRole"),
    ("idle-shutdown", "IdleShutdownRole"),
    ("train-on-push", "TrainOnPushRole"),
    ("notify", "NotifyRole"),
];

/// The workspace key's id in the local world (its ARN is what the functions are configured with).
const KEY_ID: &str = "00000000-0000-4000-8000-000000000001";

/// Operations the code can call that no deployment of this template makes, each with the reason.
const NOT_RECORDED: &[(&str, &str)] = &[
    (
        "CreateTrial",
        "train-on-push wires classic Experiments only with MlflowTracking=none; the replay deploys the default \
         (runs in MLflow), where the role grants neither CreateExperiment nor CreateTrial (ClassicExperiments)",
    ),
    (
        "ListDomains",
        "idle-shutdown lists domains only when STUDIO_OPS_DOMAIN_IDS is empty; the template always sets it to the \
     stack's domain, so the call never happens and the role does not grant it",
    ),
];

/// Grants the replay cannot show to be needed, each with the reason: (functions, statement Sid, action or
/// resource, why).
const EXCUSED_GRANTS: &[(&[&str], &str, &str, &str)] = &[
    (
        &[
            "provision-users",
            "idle-shutdown",
            "train-on-push",
            "notify",
        ],
        "TheWorkspaceKeyThroughDynamoDb",
        "kms:Encrypt",
        "DynamoDB's documented key policy for users of a table with a customer-managed key lists Encrypt, Decrypt and \
         GenerateDataKey through DynamoDB; which one a call uses depends on DynamoDB's table-key cache, which no local \
         world shows (the replay asks for Decrypt)",
    ),
    (
        &[
            "provision-users",
            "idle-shutdown",
            "train-on-push",
            "notify",
        ],
        "TheWorkspaceKeyThroughDynamoDb",
        "kms:GenerateDataKey",
        "as kms:Encrypt above",
    ),
    (
        &["train-on-push", "notify"],
        "OwnTableItems",
        "dynamodb:DeleteItem",
        "releases an idempotency claim after its work failed (shared/src/idempotency.rs), which the team's day never \
         does for train-on-push and notify; the lease release of provision-users and idle-shutdown records it",
    ),
];

/// Statements the Lambda service uses on the function's behalf, not the function's code: the replay cannot
/// record those requests, so the mutation pass leaves them alone.
const PLATFORM_STATEMENTS: &[&str] = &[
    "OwnLogs",
    "DescribeTheNetwork",
    "AttachToTheVpc",
    "ManageOwnNetworkInterfaces",
    "OnFailureDestination",
];

fn principal(role: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{role}")
}

/// The names only a deployment knows, as the local world has them.
fn deployment_values(world: &World) -> BTreeMap<String, String> {
    let topic = world.names.topic_arn.rsplit(':').next().unwrap_or_default();
    deployment_names(
        &world.names.domain_id,
        &world.names.data_bucket,
        &world.names.idempotency_table,
        topic,
    )
}

/// Every name only a deployment knows, for a domain, data bucket, table and topic name.
fn deployment_names(
    domain: &str,
    data_bucket: &str,
    table: &str,
    topic: &str,
) -> BTreeMap<String, String> {
    [
        ("DataBucket", data_bucket),
        ("StudioDomain", domain),
        ("IdempotencyTable", table),
        // The local world's name (`world::Names::idle_state_table`).
        ("IdleStateTable", "studio-ops-idle-state"),
        ("SpendTable", "studio-ops-spend"),
        ("TeamTopic", topic),
        ("TrainingJobRole", "studio-ops-training"),
        ("WorkspaceKey", KEY_ID),
        // The local world's queues (`world::Names::delivery_dlq_url`, `failed_invocation_queue_url`).
        ("DeliveryDeadLetterQueue", "studio-ops-delivery-dlq"),
        ("FailedInvocationQueue", "studio-ops-failed-invocations"),
        ("Network.Outputs.SubnetIds", SUBNET_IDS),
        (
            "Network.Outputs.TrainingSecurityGroupId",
            TRAINING_SECURITY_GROUP,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The team's day with every function recorded: the distinct IAM requests of each function, the operations
/// recorded, and the roles' policies for this world.
struct Replay {
    requests: BTreeMap<String, BTreeSet<IamRequest>>,
    operations: BTreeSet<String>,
    roles: BTreeMap<String, Vec<NamedPolicy>>,
    policies: Policies,
    /// Resource ARN prefixes and the resource policy that governs them.
    resource_policies: Vec<(String, &'static str)>,
}

/// Resources with a policy of their own in the template, which IAM reads beside the caller's.
const RESOURCE_POLICIES: &[&str] = &["WorkspaceKey", "DataBucketPolicy", "TeamTopicPolicy"];

impl Replay {
    fn resource_policy(&self, resource: &str) -> Option<&Value> {
        self.resource_policies
            .iter()
            .find(|(prefix, _)| resource.starts_with(prefix.as_str()))
            .and_then(|(_, holder)| self.policies.resource_policies.get(*holder))
    }
}

async fn replay() -> Replay {
    let team_day = WorldConfig::team_day();
    let mut world = World::start(WorldConfig {
        record_requests: true,
        ..team_day.clone()
    })
    .await
    .unwrap();
    for chapter in [
        demo::provision::run(&mut world).await.unwrap(),
        demo::train::run(&world).await.unwrap(),
        demo::idle::run(&world).await.unwrap(),
        demo::month::run(&world).await.unwrap(),
    ] {
        assert!(chapter.ok, "the demo chapter failed: {:#?}", chapter.lines);
    }
    beyond_the_demo(&mut world).await;
    let key_arn = format!("arn:aws:kms:{}:{ACCOUNT_ID}:key/{KEY_ID}", iam::REGION);
    let scope = Scope {
        account: ACCOUNT_ID,
        data_bucket: &world.names.data_bucket,
        workspace_key_arn: &key_arn,
        mlflow_server_arn: studio_ops_tests::mlflow::SERVER_ARN,
        repository: &world.names.repository,
    };
    let mut requests: BTreeMap<String, BTreeSet<IamRequest>> = BTreeMap::new();
    let mut operations = BTreeSet::new();
    for (function, calls) in world.recorded() {
        for call in &calls {
            let (_, op) = operation(call).unwrap_or_else(|| {
                panic!(
                    "{function}: unrecognised request {} {}",
                    call.method, call.path
                )
            });
            operations.insert(op);
            let mapped = scope
                .requests(call)
                .unwrap_or_else(|e| panic!("{function}: {e}"));
            requests.entry(function.clone()).or_default().extend(mapped);
        }
    }
    let resource_policies = vec![
        (key_arn.clone(), "WorkspaceKey"),
        (
            format!("arn:aws:s3:::{}", world.names.data_bucket),
            "DataBucketPolicy",
        ),
        (world.names.topic_arn.clone(), "TeamTopicPolicy"),
    ];
    let policies = role_policies(
        &deployment_values(&world),
        &[
            (
                "IdentityStoreId",
                world
                    .template
                    .parameters
                    .get("IdentityStoreId")
                    .map_or("d-9067000000", String::as_str),
            ),
            // The team's day deploys merge-to-approve: its statements are part of the roles replayed.
            (
                "ApproveOnMergeInto",
                team_day
                    .values
                    .get("ApproveOnMergeInto")
                    .map_or("", String::as_str),
            ),
        ],
        RESOURCE_POLICIES,
    )
    .unwrap();
    world.stop().await;
    Replay {
        requests,
        operations,
        roles: policies.roles.clone(),
        policies,
        resource_policies,
    }
}

fn answered(invocations: &[Invocation], function: &str) -> Vec<Value> {
    let mine: Vec<&Invocation> = invocations
        .iter()
        .filter(|i| i.function == function)
        .collect();
    assert!(!mine.is_empty(), "{function} was not invoked");
    mine.iter()
        .map(|i| match &i.outcome {
            Outcome::Response(v) => v.clone(),
            other => panic!("{function} failed: {other:?}"),
        })
        .collect()
}

/// What the code can do that the demo's day leaves out: a script-mode push (its source goes to S3), a completion
/// event without the artifacts (the job is described), and changed settings (existing profiles are updated).
async fn beyond_the_demo(world: &mut World) {
    let repo = GitRepo::open(world.git_root(), &world.names.repository).unwrap();
    let manifest = "models/digits-cnn/training.toml";
    // From the fixture, not the repository's head: the demo left digits-cnn on a push the cost guard refused.
    let fixture_manifest = studio_ops_tests::moto::workspace_root()
        .join("tests/fixtures/models-repo")
        .join(manifest);
    let tuned = std::fs::read_to_string(fixture_manifest)
        .unwrap()
        .replace("epochs = 10", "epochs = 12");
    let before = repo.head().unwrap();
    let after = repo
        .commit(&[(manifest, Some(&tuned))], "digits: more epochs")
        .unwrap();
    let mut push = fixture("train-on-push/codecommit-reference-updated.json").unwrap();
    push["detail"]["repositoryName"] = json!(world.names.repository);
    push["detail"]["oldCommitId"] = json!(before);
    push["detail"]["commitId"] = json!(after);
    let started = answered(&world.put_event(&push).await.unwrap(), "train-on-push");
    let job = naming::job_name("digits-cnn", &after);
    let answer: TrainAnswer = serde_json::from_value(started[0].clone()).unwrap();
    let TrainAnswer::Pushed { models, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(
        models.get("digits-cnn"),
        Some(&ModelOutcome::Started { job: job.clone() }),
        "{answer:?}"
    );

    let sagemaker = aws_sdk_sagemaker::Client::new(world.sim_sdk());
    let described = sagemaker
        .describe_training_job()
        .training_job_name(&job)
        .send()
        .await
        .unwrap();
    let arn = described.training_job_arn().unwrap_or_default().to_string();
    let mut done = fixture("train-on-push/sagemaker-training-job-completed.json").unwrap();
    let detail = &mut done["detail"];
    detail["TrainingJobName"] = json!(job);
    detail["TrainingJobArn"] = json!(arn);
    // Neither the artifacts nor the tags: the job is described and its tags listed.
    let fields = detail.as_object_mut().unwrap();
    fields.remove("ModelArtifacts");
    fields.remove("Tags");
    done["resources"] = json!([arn]);
    let registered = answered(&world.put_event(&done).await.unwrap(), "train-on-push");
    let answer: TrainAnswer = serde_json::from_value(registered[0].clone()).unwrap();
    assert!(
        matches!(&answer, TrainAnswer::Registered { job: j, .. } if *j == job),
        "{answer:?}"
    );

    // The demo's group (the only one in the store), now with another default instance type.
    let store = world.template.parameters.get("IdentityStoreId").cloned();
    let groups = aws_sdk_identitystore::Client::new(world.moto_sdk())
        .list_groups()
        .identity_store_id(store.unwrap_or_else(|| "d-9067000000".into()))
        .send()
        .await
        .unwrap();
    let group = groups.groups()[0].group_id().to_string();
    // The team shared space grows too (UpdateSpace and its new marks).
    let team_space = json!({ &group: { "sharedSpaces": [{
        "name": demo::provision::TEAM_SPACE, "appType": "JupyterLab", "defaultInstanceType": "ml.t3.large"
    }]}})
    .to_string();
    let settings = [
        ("STUDIO_OPS_PROVISION_GROUP_IDS", group.as_str()),
        ("STUDIO_OPS_PRIVATE_SPACE", "true"),
        ("STUDIO_OPS_DEFAULT_INSTANCE_TYPE", "ml.t3.large"),
        ("STUDIO_OPS_GROUP_SETTINGS", team_space.as_str()),
    ];
    let settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    world.host("provision-users", settings, 1).await.unwrap();
    let (reconcile, _) = world.invoke("provision-users", json!({})).await.unwrap();
    let outcome = answered(&[reconcile], "provision-users");
    let reconciled =
        serde_json::from_value::<provision_users::handler::Outcome>(outcome[0].clone());
    assert!(
        matches!(
            reconciled,
            Ok(provision_users::handler::Outcome::Reconciled { .. })
        ),
        "{outcome:?}"
    );

    // A sweep limited to one user (an admin's manual run) lists that user's spaces.
    let profile = aws_sdk_sagemaker::Client::new(world.sim_sdk())
        .list_user_profiles()
        .domain_id_equals(&world.names.domain_id)
        .send()
        .await
        .unwrap();
    let user = profile.user_profiles()[0]
        .user_profile_name()
        .unwrap_or_default()
        .to_string();
    let (sweep, _) = world
        .invoke(
            "idle-shutdown",
            json!({"userProfileName": user, "dryRun": true}),
        )
        .await
        .unwrap();
    answered(&[sweep], "idle-shutdown");
}

/// The policies of `role`, or the test fails naming it.
fn policies<'a>(roles: &'a BTreeMap<String, Vec<NamedPolicy>>, role: &str) -> &'a [NamedPolicy] {
    roles
        .get(role)
        .unwrap_or_else(|| panic!("the template has no role {role}"))
}

/// Every request of every function, asked of its role (with `policies_of` standing in for the template's).
fn denied<'a>(
    replay: &'a Replay,
    policies_of: &dyn Fn(&str) -> Vec<NamedPolicy>,
) -> Vec<(&'a str, &'a IamRequest, iam::Answer)> {
    let mut owned = Vec::new();
    for (function, role) in ROLES {
        owned.push((*function, *role, policies_of(role)));
    }
    let mut questions = Vec::new();
    let mut index = BTreeMap::new();
    for (function, role, policies) in &owned {
        for (n, request) in replay
            .requests
            .get(*function)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let id = format!("{function}#{n}");
            index.insert(id.clone(), (*function, request));
            questions.push(Question {
                id,
                principal: principal(role),
                request,
                policies,
                resource_policy: replay.resource_policy(&request.resource),
            });
        }
    }
    let answers = iam::evaluate(&questions).unwrap();
    let mut out = Vec::new();
    for (id, answer) in answers {
        if !answer.allowed() {
            let (function, request) = index[&id];
            out.push((function, request, answer));
        }
    }
    out
}

fn describe(denials: &[(&str, &IamRequest, iam::Answer)]) -> String {
    denials
        .iter()
        .map(|(function, r, a)| {
            format!(
                "{function}: {} on {} ({}) context {:?}; nearest statement: {}",
                r.action, r.resource, a.decision, r.context, a.nearest
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_functions_make_is_allowed_by_their_roles_and_each_grant_is_needed() {
    let replay = replay().await;

    for (function, requests) in &replay.requests {
        let actions: BTreeSet<&str> = requests.iter().map(|r| r.action.as_str()).collect();
        eprintln!(
            "iam replay: {function}: {} distinct requests, {} actions: {}",
            requests.len(),
            actions.len(),
            actions.iter().copied().collect::<Vec<_>>().join(" ")
        );
    }

    // 1. Coverage against the product code: every operation it calls was recorded (or is listed with a reason).
    let in_code = iam::operations_in_code().unwrap();
    let missing: Vec<String> = in_code
        .iter()
        .filter(|(op, _)| {
            !replay.operations.contains(*op) && !NOT_RECORDED.iter().any(|(n, _)| n == op)
        })
        .map(|(op, files)| format!("{op} (called in {})", files.join(", ")))
        .collect();
    assert!(
        missing.is_empty(),
        "operations the code calls that the replay never recorded:\n{}",
        missing.join("\n")
    );
    for (op, _) in NOT_RECORDED {
        assert!(
            in_code.contains_key(*op),
            "{op} is excused but the code no longer calls it"
        );
    }

    // 2. Every recorded request is allowed by the function's role as the template defines it.
    let as_defined = |role: &str| policies(&replay.roles, role).to_vec();
    let denials = denied(&replay, &as_defined);
    assert!(
        denials.is_empty(),
        "requests the roles do not allow:\n{}",
        describe(&denials)
    );

    // 3. Each action and each resource of each Allow statement is needed: without it, some request of the function
    // is denied. All mutations go to the evaluator in one batch.
    let mut variants = Vec::new();
    let mut excuses_used = BTreeSet::new();
    for (function, role) in ROLES {
        for mutation in mutations(policies(&replay.roles, role)) {
            let excuse = EXCUSED_GRANTS.iter().position(|(functions, sid, item, _)| {
                functions.contains(function) && mutation.sid == *sid && mutation.item == *item
            });
            match excuse {
                Some(e) => {
                    excuses_used.insert(e);
                }
                None => variants.push((*function, *role, mutation)),
            }
        }
    }
    // An excuse for a grant the roles no longer have is stale: it would hide the next one of that name.
    for (e, (_, sid, item, _)) in EXCUSED_GRANTS.iter().enumerate() {
        assert!(
            excuses_used.contains(&e),
            "EXCUSED_GRANTS: no role grants {item} in {sid} any more"
        );
    }
    let mut questions = Vec::new();
    for (v, (function, role, mutation)) in variants.iter().enumerate() {
        for (n, request) in replay.requests[*function].iter().enumerate() {
            questions.push(Question {
                id: format!("{v}/{n}"),
                principal: principal(role),
                request,
                policies: &mutation.policies,
                resource_policy: replay.resource_policy(&request.resource),
            });
        }
    }
    let answers = iam::evaluate(&questions).unwrap();
    let noticed: BTreeSet<usize> = answers
        .values()
        .filter(|a| !a.allowed())
        .filter_map(|a| a.id.split('/').next()?.parse().ok())
        .collect();
    let unneeded: Vec<String> = variants
        .iter()
        .enumerate()
        .filter(|(v, _)| !noticed.contains(v))
        .map(|(_, (function, role, m))| format!("{function} ({role}): {}", m.label))
        .collect();
    assert!(
        unneeded.is_empty(),
        "grants no recorded request needs (remove them, or record the request that needs them):\n{}",
        unneeded.join("\n")
    );
}

/// One role's policies with one grant taken away.
struct Mutation {
    label: String,
    /// The statement and the action or resource taken away (empty for the users' role's mutations).
    sid: String,
    item: String,
    policies: Vec<NamedPolicy>,
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Every single removal of an action or a resource from an Allow statement of `docs` (platform statements aside).
fn mutations(docs: &[NamedPolicy]) -> Vec<Mutation> {
    let mut out = Vec::new();
    for (p, policy) in docs.iter().enumerate() {
        let statements = as_list(&policy.document["Statement"]);
        for (s, statement) in statements.iter().enumerate() {
            let sid = statement["Sid"].as_str().unwrap_or("");
            if statement["Effect"] != "Allow" || PLATFORM_STATEMENTS.contains(&sid) {
                continue;
            }
            for field in ["Action", "Resource"] {
                let items = as_list(&statement[field]);
                for (i, item) in items.iter().enumerate() {
                    let mut kept = items.clone();
                    kept.remove(i);
                    let mut mutated = docs.to_vec();
                    let mut new_statements = statements.clone();
                    if kept.is_empty() {
                        new_statements.remove(s);
                    } else {
                        new_statements[s][field] = Value::Array(kept);
                    }
                    mutated[p].document["Statement"] = Value::Array(new_statements);
                    out.push(Mutation {
                        label: format!("{} statement {sid:?} without {field} {item}", policy.name),
                        sid: sid.to_string(),
                        item: item.as_str().unwrap_or_default().to_string(),
                        policies: mutated,
                    });
                }
            }
        }
    }
    out
}

// ----- the users' role -----

/// The Studio user the cases act as (Studio sets the role session's source identity to the user profile's name).
const ANA: &str = "ana";
/// Another user of the domain.
const LI: &str = "li";

/// One thing a data scientist may try from Studio, and whether the users' role must allow it.
struct UserCase {
    name: &'static str,
    /// Every request IAM authorizes for it (all must be allowed for an allowed case; one denial denies it).
    requests: Vec<IamRequest>,
    allowed: bool,
}

fn sagemaker_arn(resource: &str) -> String {
    format!("arn:aws:sagemaker:{}:{ACCOUNT_ID}:{resource}", iam::REGION)
}

/// A notebook's CreateTrainingJob as the users' role may make it: the stack's VPC, the workspace key, an allowed
/// instance type, a runtime bound; `change` alters the request body first.
fn user_training_job(change: impl FnOnce(&mut Value)) -> Vec<IamRequest> {
    let key = format!("arn:aws:kms:{}:{ACCOUNT_ID}:key/{KEY_ID}", iam::REGION);
    let subnets: Vec<&str> = SUBNET_IDS.split(',').collect();
    let mut body = json!({
        "TrainingJobName": "ana-notebook-experiment-1",
        "RoleArn": format!("arn:aws:iam::{ACCOUNT_ID}:role/studio-ops-training"),
        "VpcConfig": {"Subnets": subnets, "SecurityGroupIds": [TRAINING_SECURITY_GROUP]},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30, "VolumeKmsKeyId": key},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models/", "KmsKeyId": key},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    });
    change(&mut body);
    let job = IamRequest::new(
        "sagemaker:CreateTrainingJob",
        sagemaker_arn("training-job/ana-notebook-experiment-1"),
    );
    vec![
        iam::training_job_context(job, &body),
        IamRequest::new("iam:PassRole", body["RoleArn"].as_str().unwrap_or_default())
            .with("iam:PassedToService", json!("sagemaker.amazonaws.com")),
    ]
}

/// A key that is not the workspace key.
const FOREIGN_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-4111-8111-111111111111";

/// A notebook's training job on an instance type with NVMe instance storage (no volume key: SageMaker refuses one).
fn instance_storage_job(change: impl FnOnce(&mut Value)) -> Vec<IamRequest> {
    user_training_job(|b| {
        b["ResourceConfig"]["InstanceType"] = json!("ml.g4dn.xlarge");
        b["ResourceConfig"]
            .as_object_mut()
            .map(|o| o.remove("VolumeKmsKeyId"));
        change(b);
    })
}

fn app_of(domain: &str, owner: &str, name: &str) -> String {
    sagemaker_arn(&format!("app/{domain}/{owner}/jupyterlab/{name}"))
}

fn profile_arn(domain: &str, user: &str) -> String {
    sagemaker_arn(&format!("user-profile/{domain}/{user}"))
}

fn user_cases(domain: &str) -> Vec<UserCase> {
    let shared_space = |owner: &str| {
        vec![
            (
                "sagemaker:OwnerUserProfileArn",
                json!(profile_arn(domain, owner)),
            ),
            ("sagemaker:SpaceSharingType", json!("Shared")),
        ]
    };
    let private_space = |owner: &str| {
        vec![
            (
                "sagemaker:OwnerUserProfileArn",
                json!(profile_arn(domain, owner)),
            ),
            ("sagemaker:SpaceSharingType", json!("Private")),
        ]
    };
    let with = |mut r: IamRequest, keys: Vec<(&str, Value)>| {
        for (k, v) in keys {
            r = r.with(k, v);
        }
        r
    };
    let big_gpu = json!(["ml.p4d.24xlarge"]);
    vec![
        UserCase {
            name: "user_trains_in_the_vpc_with_the_workspace_key",
            requests: user_training_job(|_| {}),
            allowed: true,
        },
        UserCase {
            name: "user_job_without_vpc_is_denied",
            requests: user_training_job(|b| {
                b.as_object_mut().map(|o| o.remove("VpcConfig"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_with_a_foreign_subnet_is_denied",
            requests: user_training_job(|b| {
                b["VpcConfig"]["Subnets"] = json!(["subnet-0badbadbadbadbad0"])
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_with_an_unlisted_instance_type_is_denied",
            requests: user_training_job(|b| {
                b["ResourceConfig"]["InstanceType"] = json!("ml.p4d.24xlarge")
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_without_a_runtime_bound_is_denied",
            requests: user_training_job(|b| {
                b.as_object_mut().map(|o| o.remove("StoppingCondition"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_create_app_on_p4d_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:CreateApp",
                    app_of(domain, "ana-private", "default"),
                )
                .with("sagemaker:InstanceTypes", big_gpu.clone()),
                private_space(ANA),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_creates_an_app_in_own_private_space",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:CreateApp",
                    app_of(domain, "ana-private", "default"),
                )
                .with("sagemaker:InstanceTypes", json!(["ml.t3.medium"])),
                private_space(ANA),
            )],
            allowed: true,
        },
        UserCase {
            name: "user_update_space_to_large_gpu_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:UpdateSpace",
                    sagemaker_arn(&format!("space/{domain}/ana-private")),
                )
                .with("sagemaker:InstanceTypes", big_gpu),
                private_space(ANA),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_exempt_tag_is_denied",
            requests: vec![
                IamRequest::new("sagemaker:AddTags", app_of(domain, ANA, "default"))
                    .with("aws:TagKeys", json!(["studio-ops:idle-shutdown"])),
            ],
            allowed: false,
        },
        UserCase {
            name: "user_exempt_tag_at_create_space_is_denied",
            requests: vec![
                with(
                    IamRequest::new(
                        "sagemaker:CreateSpace",
                        sagemaker_arn(&format!("space/{domain}/ana-exempt")),
                    )
                    .with("aws:TagKeys", json!(["studio-ops:idle-shutdown"]))
                    .with("sagemaker:InstanceTypes", json!(["ml.t3.medium"])),
                    private_space(ANA),
                ),
                IamRequest::new(
                    "sagemaker:AddTags",
                    sagemaker_arn(&format!("space/{domain}/ana-exempt")),
                )
                .with("aws:TagKeys", json!(["studio-ops:idle-shutdown"]))
                .with("sagemaker:TaggingAction", json!("CreateSpace")),
            ],
            allowed: false,
        },
        UserCase {
            name: "user_keep_alive_on_own_app_is_allowed",
            requests: vec![
                IamRequest::new("sagemaker:AddTags", app_of(domain, ANA, "default"))
                    .with("aws:TagKeys", json!(["studio-ops:keep-alive-until"])),
            ],
            allowed: true,
        },
        UserCase {
            name: "user_keep_alive_on_another_users_app_is_denied",
            requests: vec![
                IamRequest::new("sagemaker:AddTags", app_of(domain, LI, "default"))
                    .with("aws:TagKeys", json!(["studio-ops:keep-alive-until"])),
            ],
            allowed: false,
        },
        UserCase {
            name: "user_tracks_runs_in_the_teams_mlflow",
            requests: [
                "sagemaker:CreatePresignedMlflowTrackingServerUrl",
                "sagemaker-mlflow:CreateExperiment",
                "sagemaker-mlflow:CreateRun",
                "sagemaker-mlflow:LogBatch",
                "sagemaker-mlflow:UpdateRun",
                "sagemaker-mlflow:SearchRuns",
            ]
            .into_iter()
            .map(|a| IamRequest::new(a, studio_ops_tests::mlflow::SERVER_ARN))
            // AccessUI has no resource type: IAM asks about "*".
            .chain([IamRequest::new("sagemaker-mlflow:AccessUI", "*")])
            .collect(),
            allowed: true,
        },
        UserCase {
            name: "user_deleting_an_mlflow_run_is_denied",
            requests: vec![IamRequest::new(
                "sagemaker-mlflow:DeleteRun",
                studio_ops_tests::mlflow::SERVER_ARN,
            )],
            allowed: false,
        },
        UserCase {
            name: "user_logging_to_another_mlflow_server_is_denied",
            requests: vec![IamRequest::new(
                "sagemaker-mlflow:CreateRun",
                sagemaker_arn("mlflow-tracking-server/someone-elses"),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_deletes_own_app",
            requests: vec![IamRequest::new(
                "sagemaker:DeleteApp",
                app_of(domain, ANA, "default"),
            )],
            allowed: true,
        },
        UserCase {
            name: "user_delete_other_users_app_is_denied",
            requests: vec![IamRequest::new(
                "sagemaker:DeleteApp",
                app_of(domain, LI, "default"),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_delete_other_users_private_space_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:DeleteSpace",
                    sagemaker_arn(&format!("space/{domain}/li-private")),
                ),
                private_space(LI),
            )],
            allowed: false,
        },
        // Each part of the job statements, one at a time.
        UserCase {
            name: "user_job_without_a_security_group_is_denied",
            requests: user_training_job(|b| {
                b["VpcConfig"]
                    .as_object_mut()
                    .map(|o| o.remove("SecurityGroupIds"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_without_subnets_is_denied",
            requests: user_training_job(|b| {
                b["VpcConfig"].as_object_mut().map(|o| o.remove("Subnets"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_with_a_foreign_security_group_is_denied",
            requests: user_training_job(|b| {
                b["VpcConfig"]["SecurityGroupIds"] = json!(["sg-0badbadbadbadbad0"])
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_with_another_output_key_is_denied",
            requests: user_training_job(|b| b["OutputDataConfig"]["KmsKeyId"] = json!(FOREIGN_KEY)),
            allowed: false,
        },
        UserCase {
            name: "user_job_with_another_volume_key_is_denied",
            requests: user_training_job(|b| {
                b["ResourceConfig"]["VolumeKmsKeyId"] = json!(FOREIGN_KEY)
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_without_an_instance_type_is_denied",
            requests: user_training_job(|b| {
                b["ResourceConfig"]
                    .as_object_mut()
                    .map(|o| o.remove("InstanceType"));
            }),
            allowed: false,
        },
        // Instance types with NVMe instance storage take no volume key.
        UserCase {
            name: "user_trains_on_instance_storage_without_a_volume_key",
            requests: instance_storage_job(|_| {}),
            allowed: true,
        },
        UserCase {
            name: "user_instance_storage_job_with_another_volume_key_is_denied",
            requests: instance_storage_job(|b| {
                b["ResourceConfig"]["VolumeKmsKeyId"] = json!(FOREIGN_KEY)
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_with_another_output_key_is_denied",
            requests: instance_storage_job(|b| {
                b["OutputDataConfig"]["KmsKeyId"] = json!(FOREIGN_KEY)
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_on_an_unlisted_type_is_denied",
            requests: instance_storage_job(|b| {
                b["ResourceConfig"]["InstanceType"] = json!("ml.g5.48xlarge")
            }),
            allowed: false,
        },
        UserCase {
            name: "user_job_on_ebs_without_a_volume_key_is_denied",
            requests: user_training_job(|b| {
                b["ResourceConfig"]
                    .as_object_mut()
                    .map(|o| o.remove("VolumeKmsKeyId"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_without_a_runtime_bound_is_denied",
            requests: instance_storage_job(|b| {
                b.as_object_mut().map(|o| o.remove("StoppingCondition"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_without_vpc_is_denied",
            requests: instance_storage_job(|b| {
                b.as_object_mut().map(|o| o.remove("VpcConfig"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_without_subnets_is_denied",
            requests: instance_storage_job(|b| {
                b["VpcConfig"].as_object_mut().map(|o| o.remove("Subnets"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_without_a_security_group_is_denied",
            requests: instance_storage_job(|b| {
                b["VpcConfig"]
                    .as_object_mut()
                    .map(|o| o.remove("SecurityGroupIds"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_with_a_foreign_subnet_is_denied",
            requests: instance_storage_job(|b| {
                b["VpcConfig"]["Subnets"] = json!(["subnet-0badbadbadbadbad0"])
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_with_a_foreign_security_group_is_denied",
            requests: instance_storage_job(|b| {
                b["VpcConfig"]["SecurityGroupIds"] = json!(["sg-0badbadbadbadbad0"])
            }),
            allowed: false,
        },
        UserCase {
            name: "user_instance_storage_job_without_an_instance_type_is_denied",
            requests: instance_storage_job(|b| {
                b["ResourceConfig"]
                    .as_object_mut()
                    .map(|o| o.remove("InstanceType"));
            }),
            allowed: false,
        },
        UserCase {
            name: "user_transform_job_is_denied",
            requests: vec![IamRequest::new(
                "sagemaker:CreateTransformJob",
                sagemaker_arn("transform-job/ana-batch"),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_stops_own_training_job",
            requests: vec![IamRequest::new(
                "sagemaker:StopTrainingJob",
                sagemaker_arn("training-job/ana-notebook-experiment-1"),
            )],
            allowed: true,
        },
        UserCase {
            name: "user_stopping_a_train_on_push_job_is_denied",
            requests: vec![
                IamRequest::new(
                    "sagemaker:StopTrainingJob",
                    sagemaker_arn("training-job/churn-xgboost-8434f27"),
                )
                .with("aws:ResourceTag/studio-ops:managed-by", json!("studio-ops")),
            ],
            allowed: false,
        },
        // Apps and spaces: whose, where, how big.
        UserCase {
            name: "user_creates_an_app_in_a_shared_space",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:CreateApp",
                    app_of(domain, "forecasting-lab", "default"),
                )
                .with("sagemaker:InstanceTypes", json!(["ml.m5.xlarge"])),
                shared_space(LI),
            )],
            allowed: true,
        },
        UserCase {
            name: "user_create_app_on_p4d_in_a_shared_space_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:CreateApp",
                    app_of(domain, "forecasting-lab", "default"),
                )
                .with("sagemaker:InstanceTypes", json!(["ml.p4d.24xlarge"])),
                shared_space(LI),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_create_app_in_other_users_private_space_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:CreateApp",
                    app_of(domain, "li-private", "default"),
                )
                .with("sagemaker:InstanceTypes", json!(["ml.t3.medium"])),
                private_space(LI),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_creates_an_app_of_own_profile",
            requests: vec![
                IamRequest::new("sagemaker:CreateApp", app_of(domain, ANA, "default"))
                    .with("sagemaker:InstanceTypes", json!(["system"])),
            ],
            allowed: true,
        },
        UserCase {
            name: "user_create_app_of_own_profile_on_p4d_is_denied",
            requests: vec![
                IamRequest::new("sagemaker:CreateApp", app_of(domain, ANA, "default"))
                    .with("sagemaker:InstanceTypes", json!(["ml.p4d.24xlarge"])),
            ],
            allowed: false,
        },
        UserCase {
            // A space another user named after ana: its apps' ARNs look like ana's profile's apps.
            name: "user_create_app_in_a_space_named_like_them_is_denied",
            requests: vec![with(
                IamRequest::new("sagemaker:CreateApp", app_of(domain, ANA, "default"))
                    .with("sagemaker:InstanceTypes", json!(["ml.t3.medium"])),
                private_space(LI),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_delete_app_in_a_space_named_like_them_is_denied",
            requests: vec![with(
                IamRequest::new("sagemaker:DeleteApp", app_of(domain, ANA, "default")),
                private_space(LI),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_deletes_an_app_in_own_private_space",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:DeleteApp",
                    app_of(domain, "ana-private", "default"),
                ),
                private_space(ANA),
            )],
            allowed: true,
        },
        UserCase {
            name: "user_delete_app_in_other_users_private_space_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:DeleteApp",
                    app_of(domain, "li-private", "default"),
                ),
                private_space(LI),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_deletes_an_app_in_a_shared_space",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:DeleteApp",
                    app_of(domain, "forecasting-lab", "default"),
                ),
                shared_space(LI),
            )],
            allowed: true,
        },
        UserCase {
            name: "user_creates_a_shared_space_with_a_tag_of_their_own",
            requests: vec![
                with(
                    IamRequest::new(
                        "sagemaker:CreateSpace",
                        sagemaker_arn(&format!("space/{domain}/ana-lab")),
                    )
                    .with("aws:TagKeys", json!(["team"]))
                    .with("sagemaker:InstanceTypes", json!(["ml.t3.medium"])),
                    shared_space(ANA),
                ),
                IamRequest::new(
                    "sagemaker:AddTags",
                    sagemaker_arn(&format!("space/{domain}/ana-lab")),
                )
                .with("aws:TagKeys", json!(["team"]))
                .with("sagemaker:TaggingAction", json!("CreateSpace")),
            ],
            allowed: true,
        },
        UserCase {
            name: "user_create_space_owned_by_another_user_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:CreateSpace",
                    sagemaker_arn(&format!("space/{domain}/li-2")),
                )
                .with("sagemaker:InstanceTypes", json!(["ml.t3.medium"])),
                private_space(LI),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_delete_own_shared_space_is_denied",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:DeleteSpace",
                    sagemaker_arn(&format!("space/{domain}/ana-lab")),
                ),
                shared_space(ANA),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_tag_request_without_tag_keys_is_denied",
            requests: vec![IamRequest::new(
                "sagemaker:AddTags",
                app_of(domain, ANA, "default"),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_deletes_own_private_space",
            requests: vec![with(
                IamRequest::new(
                    "sagemaker:DeleteSpace",
                    sagemaker_arn(&format!("space/{domain}/ana-private")),
                ),
                private_space(ANA),
            )],
            allowed: true,
        },
    ]
    .into_iter()
    .chain(merge_to_approve_cases())
    .chain(emr_cases())
    .collect()
}

/// The runtime role the users' test deploys with (EmrRuntimeRoleArns), and one it does not name.
const EMR_RUNTIME_ROLE: &str = "arn:aws:iam::123456789012:role/emr-runtime-churn";
const OTHER_ROLE: &str = "arn:aws:iam::123456789012:role/emr-runtime-finance";

/// EMR from Studio with runtime roles (EmrSecurityGroupId and EmrRuntimeRoleArns set): clusters are discovered, a
/// session runs as a configured runtime role on this account's clusters, and as nothing else.
fn emr_cases() -> Vec<UserCase> {
    let cluster = |account: &str| {
        format!(
            "arn:aws:elasticmapreduce:{}:{account}:cluster/j-2AXXXXXXGAPLF",
            iam::REGION
        )
    };
    let session = |account: &str, role: &str| {
        IamRequest::new(
            "elasticmapreduce:GetClusterSessionCredentials",
            cluster(account),
        )
        .with("elasticmapreduce:ExecutionRoleArn", json!(role))
    };
    vec![
        UserCase {
            name: "user_discovers_emr_clusters",
            requests: vec![
                IamRequest::new("elasticmapreduce:ListClusters", "*"),
                IamRequest::new("elasticmapreduce:DescribeCluster", cluster(ACCOUNT_ID)),
                IamRequest::new("elasticmapreduce:ListInstances", cluster(ACCOUNT_ID)),
            ],
            allowed: true,
        },
        UserCase {
            name: "user_opens_an_emr_session_as_a_configured_runtime_role",
            requests: vec![session(ACCOUNT_ID, EMR_RUNTIME_ROLE)],
            allowed: true,
        },
        UserCase {
            name: "user_opening_an_emr_session_as_another_role_is_denied",
            requests: vec![session(ACCOUNT_ID, OTHER_ROLE)],
            allowed: false,
        },
        UserCase {
            name: "user_opening_an_emr_session_without_a_runtime_role_is_denied",
            requests: vec![IamRequest::new(
                "elasticmapreduce:GetClusterSessionCredentials",
                cluster(ACCOUNT_ID),
            )],
            allowed: false,
        },
        UserCase {
            name: "user_opening_an_emr_session_on_another_accounts_cluster_is_denied",
            requests: vec![session("210987654321", EMR_RUNTIME_ROLE)],
            allowed: false,
        },
    ]
}

/// Merge-to-approve (ApproveOnMergeInto=main): versions are approved by merging, never by hand, and main changes only
/// through a pull request; everything else a data scientist does with the repository and the registry stays allowed.
fn merge_to_approve_cases() -> Vec<UserCase> {
    let repo = format!(
        "arn:aws:codecommit:{}:{ACCOUNT_ID}:sagemaker-repository",
        iam::REGION
    );
    let version = sagemaker_arn("model-package/churn-xgboost/3");
    let on = |action: &str, reference: &str| {
        IamRequest::new(action, &repo).with("codecommit:References", json!(reference))
    };
    let status = |action: &str, s: &str| {
        IamRequest::new(action, &version).with("sagemaker:ModelApprovalStatus", json!(s))
    };
    vec![
        UserCase {
            name: "user_approving_a_version_by_hand_is_denied",
            requests: vec![status("sagemaker:UpdateModelPackage", "Approved")],
            allowed: false,
        },
        UserCase {
            name: "user_registering_an_approved_version_is_denied",
            requests: vec![status("sagemaker:CreateModelPackage", "Approved")],
            allowed: false,
        },
        UserCase {
            name: "user_rejecting_a_version_or_registering_one_pending_is_allowed",
            requests: vec![
                status("sagemaker:UpdateModelPackage", "Rejected"),
                status("sagemaker:CreateModelPackage", "PendingManualApproval"),
            ],
            allowed: true,
        },
        UserCase {
            name: "user_pushing_to_the_protected_branch_is_denied",
            requests: vec![on("codecommit:GitPush", "refs/heads/main")],
            allowed: false,
        },
        UserCase {
            name: "user_committing_to_the_protected_branch_in_the_console_is_denied",
            requests: vec![on("codecommit:PutFile", "refs/heads/main")],
            allowed: false,
        },
        UserCase {
            name: "user_merging_branches_into_main_without_a_pull_request_is_denied",
            requests: vec![on("codecommit:MergeBranchesByThreeWay", "refs/heads/main")],
            allowed: false,
        },
        UserCase {
            name: "user_pushes_an_experiment_branch_and_opens_and_merges_its_pull_request",
            requests: vec![
                on("codecommit:GitPush", "refs/heads/experiment/churn-eta"),
                IamRequest::new("codecommit:CreatePullRequest", &repo),
                IamRequest::new("codecommit:GetPullRequest", &repo),
                on("codecommit:MergePullRequestByThreeWay", "refs/heads/main"),
            ],
            allowed: true,
        },
        UserCase {
            // A git push's first request (reading the refs) names no reference: the Null guard keeps it allowed.
            name: "user_git_push_request_without_a_reference_is_allowed",
            requests: vec![IamRequest::new("codecommit:GitPush", &repo)],
            allowed: true,
        },
    ]
}

/// How each user case comes out with `policies` as the users' role (true: allowed).
fn user_decisions(cases: &[UserCase], policies: &[NamedPolicy]) -> Vec<bool> {
    user_decisions_many(cases, &[policies]).remove(0)
}

/// `user_decisions` for several versions of the users' policies, in one evaluator run.
fn user_decisions_many(cases: &[UserCase], versions: &[&[NamedPolicy]]) -> Vec<Vec<bool>> {
    let principal = principal("StudioExecutionRole");
    // The role session of a Studio user carries the user profile's name as its source identity.
    let asked: Vec<(usize, IamRequest)> = cases
        .iter()
        .enumerate()
        .flat_map(|(c, case)| {
            case.requests
                .iter()
                .map(move |r| (c, r.clone().with("aws:SourceIdentity", json!(ANA))))
        })
        .collect();
    let mut questions = Vec::new();
    for (v, policies) in versions.iter().enumerate() {
        for (n, (_, request)) in asked.iter().enumerate() {
            questions.push(Question {
                id: format!("{v}/{n}"),
                principal: principal.clone(),
                request,
                policies,
                resource_policy: None,
            });
        }
    }
    let answers = iam::evaluate(&questions).unwrap();
    (0..versions.len())
        .map(|v| {
            let mut allowed = vec![true; cases.len()];
            for (n, (c, _)) in asked.iter().enumerate() {
                allowed[*c] &= answers[&format!("{v}/{n}")].allowed();
            }
            allowed
        })
        .collect()
}

#[test]
fn the_users_role_keeps_jobs_in_the_vpc_apps_small_tags_honest_and_hands_off_others_work() {
    let domain = "d-studioops0001";
    let values = deployment_names(
        domain,
        "studio-ops-data-123456789012",
        "studio-ops-idempotency",
        "studio-ops-team",
    );
    let policies = role_policies(
        &values,
        &[
            ("IdentityStoreId", "d-9067000000"),
            ("ApproveOnMergeInto", "main"),
            ("EmrSecurityGroupId", "sg-0e1f2a3b4c5d6e7f8"),
            ("EmrRuntimeRoleArns", EMR_RUNTIME_ROLE),
        ],
        &[],
    )
    .unwrap();
    let user = policies
        .roles
        .get("StudioExecutionRole")
        .expect("the template has no StudioExecutionRole");
    let cases = user_cases(domain);
    let decisions = user_decisions(&cases, user);
    let wrong: Vec<String> = cases
        .iter()
        .zip(&decisions)
        .filter(|(c, d)| c.allowed != **d)
        .map(|(c, d)| {
            format!(
                "{}: expected {}, got {}",
                c.name,
                allow_text(c.allowed),
                allow_text(*d)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the users' role decides wrongly:\n{}",
        wrong.join("\n")
    );

    // Defence in depth makes the layers overlap, so each is checked on its own: the Allow statements alone, and the
    // Deny statements alone over an allow-all. Every condition of the Allow layer, and every Deny statement and
    // condition of the Deny layer, must change some case when it is removed.
    let allow_layer = only(user, "Allow");
    let mut deny_layer = only(user, "Deny");
    deny_layer.push(NamedPolicy {
        name: "allow-all (test)".into(),
        document: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    });
    let allow_decisions = user_decisions(&cases, &allow_layer);
    let deny_decisions = user_decisions(&cases, &deny_layer);
    let mut idle = Vec::new();
    for (layer, baseline) in [
        (&allow_layer, &allow_decisions),
        (&deny_layer, &deny_decisions),
    ] {
        let mutations = user_mutations(layer);
        let versions: Vec<&[NamedPolicy]> =
            mutations.iter().map(|m| m.policies.as_slice()).collect();
        for (mutation, decided) in mutations.iter().zip(user_decisions_many(&cases, &versions)) {
            if decided == *baseline {
                idle.push(mutation.label.clone());
            }
        }
    }
    assert!(
        idle.is_empty(),
        "parts of the users' role that no case depends on (add the case that needs them, or remove them):\n{}",
        idle.join("\n")
    );
}

/// The users' policies with only their `effect` statements.
fn only(docs: &[NamedPolicy], effect: &str) -> Vec<NamedPolicy> {
    docs.iter()
        .map(|p| {
            let mut p = p.clone();
            let kept: Vec<Value> = as_list(&p.document["Statement"])
                .into_iter()
                .filter(|st| st["Effect"] == effect)
                .collect();
            p.document["Statement"] = Value::Array(kept);
            p
        })
        .filter(|p| !as_list(&p.document["Statement"]).is_empty())
        .collect()
}

fn allow_text(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

/// Every removal of one Deny statement, and of one condition key (with its operator) from any statement, of the
/// users' policies that concern jobs, apps, spaces and tags.
fn user_mutations(docs: &[NamedPolicy]) -> Vec<Mutation> {
    let mut out = Vec::new();
    for (p, policy) in docs.iter().enumerate() {
        let statements = as_list(&policy.document["Statement"]);
        for (s, statement) in statements.iter().enumerate() {
            let sid = statement["Sid"].as_str().unwrap_or("").to_string();
            if statement["Effect"] == "Deny" {
                let mut mutated = docs.to_vec();
                let mut kept = statements.clone();
                kept.remove(s);
                mutated[p].document["Statement"] = Value::Array(kept);
                out.push(Mutation {
                    label: format!("{} without the Deny {sid:?}", policy.name),
                    sid: sid.clone(),
                    item: String::new(),
                    policies: mutated,
                });
            }
            let Some(conditions) = statement["Condition"].as_object() else {
                continue;
            };
            for (operator, keys) in conditions {
                for key in keys
                    .as_object()
                    .map(|k| k.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    if key == "iam:PassedToService" || key == "kms:ViaService" {
                        continue; // the function roles' replay covers these
                    }
                    let mut mutated = docs.to_vec();
                    let mut changed = statements.clone();
                    let condition = changed[s]["Condition"].as_object_mut().unwrap();
                    let block = condition[operator].as_object_mut().unwrap();
                    block.remove(&key);
                    if block.is_empty() {
                        condition.remove(operator);
                    }
                    mutated[p].document["Statement"] = Value::Array(changed);
                    out.push(Mutation {
                        label: format!(
                            "{} statement {sid:?} without {operator} {key}",
                            policy.name
                        ),
                        sid: sid.clone(),
                        item: key.clone(),
                        policies: mutated,
                    });
                }
            }
        }
    }
    out
}
