//! notify against moto: the real SNS, SQS, DynamoDB and SageMaker clients. A topic with three SQS subscribers
//! (everything; one user's filter policy with raw delivery; a reviewers' filter on the event type), the
//! idempotency table, and a model package group whose versions DescribeModelPackage and ListModelPackages read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sagemaker::operation::describe_model_package::DescribeModelPackageOutput;
use aws_sdk_sagemaker::types::{
    InferenceSpecification, MetadataProperties, ModelApprovalStatus,
    ModelPackageContainerDefinition,
};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_smithy_types::date_time::Format;
use lambda_runtime::Context;
use notify::adapters::{SageMakerRegistry, SnsAlertPublisher};
use notify::config::{self, Config};
use notify::handler::{Handler, Outcome, Ports};
use serde_json::{Value, json};
use studio_ops_shared::config::{EVENT_BUS_NAME, Env, IDEMPOTENCY_TABLE};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::{ErrorClass, Failure};
use studio_ops_tests::moto::{Moto, local_sdk_config};

const TABLE: &str = "studio-ops-idempotency";
const GROUP: &str = "churn-xgboost";
const ANA_PROFILE: &str = "ana-silva-example-com";
const ANA_EMAIL: &str = "ana.silva@example.com";

type MotoHandler = Handler<SnsAlertPublisher, SageMakerRegistry, DynamoIdempotencyStore>;

/// One subscriber queue.
struct Inbox {
    url: String,
    /// With `RawMessageDelivery`, the body is the JSON form itself and the attributes are SQS attributes.
    raw: bool,
}

struct World {
    _moto: Moto,
    sdk: SdkConfig,
    topic_arn: String,
    team: Inbox,
    ana: Inbox,
    reviewers: Inbox,
}

/// A message as a subscriber sees it, whichever delivery format its subscription uses.
#[derive(Debug)]
struct Received {
    subject: Option<String>,
    document: Value,
    attributes: BTreeMap<String, String>,
}

impl Received {
    fn event_type(&self) -> &str {
        self.attributes
            .get("event_type")
            .map(String::as_str)
            .unwrap_or("")
    }
}

async fn subscribe(
    sdk: &SdkConfig,
    topic_arn: &str,
    name: &str,
    filter: Option<Value>,
    raw: bool,
) -> Inbox {
    let policy = filter.map(|f| f.to_string());
    let url =
        studio_ops_tests::world::subscribe_queue(sdk, topic_arn, name, policy.as_deref(), raw)
            .await
            .unwrap();
    Inbox { url, raw }
}

/// Registers one version of `GROUP` carrying the studio-ops lineage and metric metadata.
async fn register(
    sm: &aws_sdk_sagemaker::Client,
    status: ModelApprovalStatus,
    commit: &str,
    metrics: &[(&str, &str)],
) -> String {
    let mut req = sm
        .create_model_package()
        .model_package_group_name(GROUP)
        .model_package_description(format!("{GROUP} trained from commit {}", &commit[..7]))
        .model_approval_status(status)
        .inference_specification(
            InferenceSpecification::builder()
                .containers(
                    ModelPackageContainerDefinition::builder()
                        .image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
                        .model_data_url(format!(
                            "s3://studio-ops-data-123456789012/models/{GROUP}/{GROUP}-{}/output/model.tar.gz",
                            &commit[..7]
                        ))
                        .build(),
                )
                .supported_content_types("text/csv")
                .supported_response_mime_types("text/csv")
                .build(),
        )
        .metadata_properties(
            MetadataProperties::builder()
                .commit_id(commit)
                .repository("sagemaker-repository")
                .generated_by(format!(
                    "arn:aws:sagemaker:us-east-1:123456789012:training-job/{GROUP}-{}",
                    &commit[..7]
                ))
                .build(),
        );
    for (k, v) in lineage(commit, metrics) {
        req = req.customer_metadata_properties(k, v);
    }
    req.send()
        .await
        .unwrap()
        .model_package_arn()
        .unwrap()
        .to_string()
}

fn lineage(commit: &str, metrics: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m = HashMap::from([
        ("studio-ops:commit".to_string(), commit.to_string()),
        (
            "studio-ops:training-job".to_string(),
            format!("{GROUP}-{}", &commit[..7]),
        ),
        ("studio-ops:author".to_string(), ANA_EMAIL.to_string()),
    ]);
    for (name, value) in metrics {
        m.insert(format!("studio-ops:metric:{name}"), value.to_string());
    }
    m
}

async fn start() -> World {
    let moto = Moto::start().await.expect("moto starts (make venv)");
    let sdk = local_sdk_config(moto.url()).await;
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let topic_arn = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("studio-ops-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let team = subscribe(&sdk, &topic_arn, "team-inbox", None, false).await;
    let ana = subscribe(
        &sdk,
        &topic_arn,
        "ana-inbox",
        Some(json!({"user": [ANA_PROFILE, ANA_EMAIL]})),
        true,
    )
    .await;
    let reviewers = subscribe(
        &sdk,
        &topic_arn,
        "reviewers-inbox",
        Some(json!({"event_type": [{"prefix": "model-package-"}]})),
        false,
    )
    .await;
    aws_sdk_sagemaker::Client::new(&sdk)
        .create_model_package_group()
        .model_package_group_name(GROUP)
        .send()
        .await
        .unwrap();
    World {
        _moto: moto,
        sdk,
        topic_arn,
        team,
        ana,
        reviewers,
    }
}

fn handler(world: &World, topic_arn: &str) -> MotoHandler {
    let vars: HashMap<&str, &str> = HashMap::from([
        (EVENT_BUS_NAME, "studio-ops"),
        (IDEMPOTENCY_TABLE, TABLE),
        (config::ALERT_TOPIC_ARN, topic_arn),
        (config::DOMAIN_ID, "d-studioops0001"),
    ]);
    let config = Config::from_env(&Env::new(&vars)).unwrap();
    let ports = Ports {
        publisher: SnsAlertPublisher::new(aws_sdk_sns::Client::new(&world.sdk), topic_arn),
        registry: SageMakerRegistry::new(aws_sdk_sagemaker::Client::new(&world.sdk)),
        store: DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(&world.sdk),
            TABLE,
            "notify",
            config.dedup_window,
        ),
    };
    Handler::new(config, ports, Some("us-east-1".into()))
}

fn context() -> Context {
    let mut c = Context::default();
    c.request_id = "test-request".into();
    c.deadline = (jiff::Timestamp::now() + Duration::from_secs(60)).as_millisecond() as u64;
    c
}

/// Everything the queue holds now (moto delivers synchronously on Publish), deleted as read.
async fn drain(world: &World, inbox: &Inbox) -> Vec<Received> {
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&inbox.url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = got.messages();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let received = if inbox.raw {
                Received {
                    subject: None,
                    document: body,
                    attributes: m
                        .message_attributes()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| {
                            assert_eq!(v.data_type(), "String", "{k}");
                            (k.clone(), v.string_value().unwrap().to_string())
                        })
                        .collect(),
                }
            } else {
                assert_eq!(body["Type"], "Notification");
                Received {
                    subject: body["Subject"].as_str().map(str::to_string),
                    document: serde_json::from_str(body["Message"].as_str().unwrap()).unwrap(),
                    attributes: body["MessageAttributes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| {
                            assert_eq!(v["Type"], "String", "{k}");
                            (k.clone(), v["Value"].as_str().unwrap().to_string())
                        })
                        .collect(),
                }
            };
            out.push(received);
            sqs.delete_message()
                .queue_url(&inbox.url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn fixtures() -> Vec<(String, Value)> {
    let dir = studio_ops_tests::moto::workspace_root().join("events/notify");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The EventBridge event SageMaker sends for the package's current state.
fn state_change(d: &DescribeModelPackageOutput, id: &str) -> Value {
    let time = |t: Option<&aws_smithy_types::DateTime>| t.map(|t| t.fmt(Format::DateTime).unwrap());
    json!({
        "version": "0",
        "id": id,
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": time(d.last_modified_time().or(d.creation_time())),
        "region": "us-east-1",
        "resources": [d.model_package_arn()],
        "detail": {
            "ModelPackageGroupName": d.model_package_group_name(),
            "ModelPackageVersion": d.model_package_version(),
            "ModelPackageArn": d.model_package_arn(),
            "ModelPackageStatus": d.model_package_status().map(|s| s.as_str()),
            "ModelApprovalStatus": d.model_approval_status().map(|s| s.as_str()),
            "ApprovalDescription": d.approval_description(),
            "CreationTime": time(d.creation_time()),
            "LastModifiedTime": time(d.last_modified_time()),
            "CustomerMetadataProperties": d.customer_metadata_properties(),
            "LastModifiedBy": d.last_modified_by().map(|u| json!({
                "UserProfileName": u.user_profile_name(),
                "DomainId": u.domain_id(),
            })),
        }
    })
}

#[tokio::test]
async fn every_alert_reaches_the_right_subscribers_once() {
    let world = start().await;
    let sm = aws_sdk_sagemaker::Client::new(&world.sdk);
    // v1 and v2 approved; v3 is the fixtures' package (same ARN as moto gives it).
    register(
        &sm,
        ModelApprovalStatus::Approved,
        "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        &[("validation:auc", "0.88")],
    )
    .await;
    register(
        &sm,
        ModelApprovalStatus::Approved,
        "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        &[("validation:auc", "0.898"), ("train:auc", "0.951")],
    )
    .await;
    let v3 = register(
        &sm,
        ModelApprovalStatus::PendingManualApproval,
        "f485fcc95a795517f279d0a877227e51208b0dfc",
        &[("validation:auc", "0.912"), ("train:auc", "0.948")],
    )
    .await;
    assert_eq!(
        v3,
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/3"
    );

    let h = handler(&world, &world.topic_arn);
    for (name, event) in fixtures() {
        for attempt in 0..3 {
            let out = h.handle(event.clone(), context()).await.unwrap();
            let as_wanted = if attempt == 0 {
                matches!(out, Outcome::Published { .. })
            } else {
                matches!(out, Outcome::Duplicate { .. })
            };
            assert!(as_wanted, "{name} attempt {attempt}: {out:?}");
        }
    }

    // The team sees every kind exactly once, in the SNS envelope, with the JSON form as the message.
    let team = drain(&world, &world.team).await;
    let kinds: Vec<&str> = team.iter().map(Received::event_type).collect();
    let unique: BTreeSet<&str> = kinds.iter().copied().collect();
    assert_eq!(kinds.len(), 20, "{kinds:?}");
    assert_eq!(unique.len(), 20, "{kinds:?}");
    for m in &team {
        let subject = m.subject.as_deref().unwrap();
        assert!(
            subject.starts_with("[studio-ops] ") && subject.len() < 100,
            "{subject}"
        );
        assert_eq!(m.document["subject"], subject);
        assert_eq!(m.document["eventType"], m.event_type());
        assert_eq!(
            m.attributes["severity"],
            m.document["severity"].as_str().unwrap()
        );
        for (attr, field) in [
            ("domain", "domain"),
            ("model_group", "modelGroup"),
            ("user", "user"),
        ] {
            assert_eq!(
                m.attributes.get(attr).map(String::as_str),
                m.document[field].as_str(),
                "{} {attr}",
                m.event_type()
            );
        }
    }

    // The approval was enriched from the registry and compared with v2, the latest other approved version.
    let approved = team
        .iter()
        .find(|m| m.event_type() == "model-package-approved")
        .unwrap();
    let d = &approved.document["details"];
    assert_eq!(d["enrichment"], "complete");
    assert_eq!(d["baseline"]["version"], 2);
    assert_eq!(d["metricDeltas"]["validation:auc"], json!(0.014));
    assert_eq!(d["metricDeltas"]["train:auc"], json!(-0.003));
    assert_eq!(d["modifiedBy"], "marta-ruiz");
    assert_eq!(approved.attributes["model_group"], GROUP);
    assert_eq!(
        approved.subject.as_deref(),
        Some("[studio-ops] churn-xgboost v3 approved by marta-ruiz")
    );
    let description = approved.document["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == "Description")
        .unwrap();
    assert_eq!(
        description["value"],
        "churn-xgboost trained from commit f485fcc"
    );

    // Ana's filtered, raw subscription gets exactly the alerts that concern her.
    let ana = drain(&world, &world.ana).await;
    let ana_kinds: BTreeSet<&str> = ana.iter().map(Received::event_type).collect();
    assert_eq!(ana.len(), ana_kinds.len(), "no duplicates");
    assert_eq!(
        ana_kinds,
        BTreeSet::from([
            "app-idle-warning",
            "app-stopped",
            "budget-alert",
            "model-package-approved",
            "model-package-pending",
            "model-package-rejected",
            "model-registered",
            "push-caught-up",
            "spend-digest",
            "training-failed",
            "training-rejected",
            "training-started",
            "user-provisioned",
        ])
    );
    for m in &ana {
        let user = &m.attributes["user"];
        assert!(user == ANA_PROFILE || user == ANA_EMAIL, "{user}");
        assert_eq!(
            m.document["user"],
            user.as_str(),
            "raw body is the JSON form"
        );
    }

    // The reviewers' event-type filter passes the three registry alerts only.
    let reviewers = drain(&world, &world.reviewers).await;
    let reviewer_kinds: BTreeSet<&str> = reviewers.iter().map(Received::event_type).collect();
    assert_eq!(reviewers.len(), 3);
    assert_eq!(
        reviewer_kinds,
        BTreeSet::from([
            "model-package-approved",
            "model-package-pending",
            "model-package-rejected"
        ])
    );
}

#[tokio::test]
async fn registration_approval_and_rejection_of_one_package_are_three_alerts() {
    let world = start().await;
    let sm = aws_sdk_sagemaker::Client::new(&world.sdk);
    register(
        &sm,
        ModelApprovalStatus::Approved,
        "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        &[("validation:auc", "0.88")],
    )
    .await;
    let commit = "f485fcc95a795517f279d0a877227e51208b0dfc";
    let metrics = [("validation:auc", "0.912")];
    let arn = register(
        &sm,
        ModelApprovalStatus::PendingManualApproval,
        commit,
        &metrics,
    )
    .await;
    let h = handler(&world, &world.topic_arn);

    let describe = || async {
        sm.describe_model_package()
            .model_package_name(&arn)
            .send()
            .await
            .unwrap()
    };
    let mut events = vec![state_change(&describe().await, "registered")];
    for (status, note) in [
        (ModelApprovalStatus::Approved, "better than v1"),
        (ModelApprovalStatus::Rejected, "calibration is off"),
    ] {
        // SageMaker's UpdateModelPackage keeps the metadata; moto drops what is not passed again.
        let mut update = sm
            .update_model_package()
            .model_package_arn(&arn)
            .model_approval_status(status)
            .approval_description(note);
        for (k, v) in lineage(commit, &metrics) {
            update = update.customer_metadata_properties(k, v);
        }
        update.send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        events.push(state_change(&describe().await, note));
    }
    for event in &events {
        for _ in 0..3 {
            h.handle(event.clone(), context()).await.unwrap();
        }
    }

    let team = drain(&world, &world.team).await;
    let kinds: Vec<&str> = team.iter().map(Received::event_type).collect();
    assert_eq!(
        kinds,
        vec![
            "model-package-pending",
            "model-package-approved",
            "model-package-rejected"
        ]
    );
    for m in &team {
        let d = &m.document["details"];
        assert_eq!(d["enrichment"], "complete", "{}", m.event_type());
        assert_eq!(d["baseline"]["version"], 1, "compared with the approved v1");
        assert_eq!(d["metricDeltas"]["validation:auc"], json!(0.032));
        assert_eq!(d["commitId"], commit);
        assert_eq!(m.attributes["user"], ANA_EMAIL);
    }
    assert_eq!(
        team[1].document["details"]["approvalDescription"],
        "better than v1"
    );
    assert_eq!(
        team[2].document["details"]["approvalDescription"],
        "calibration is off"
    );
    assert!(team[2].subject.as_deref().unwrap().contains("v2 rejected"));
}

#[tokio::test]
async fn a_failed_publish_is_retryable_and_the_retry_delivers_once() {
    let world = start().await;
    let missing_topic = "arn:aws:sns:us-east-1:123456789012:deleted-topic";
    let event = fixtures()
        .into_iter()
        .find(|(n, _)| n == "studio-ops-app-idle-warning.json")
        .unwrap()
        .1;

    let broken = handler(&world, missing_topic);
    let err = broken.handle(event.clone(), context()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(err.to_string().contains(missing_topic), "{err}");
    // The claim was released: nothing marks the alert as sent.
    let items = aws_sdk_dynamodb::Client::new(&world.sdk)
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 0, "{:?}", items.items());

    let fixed = handler(&world, &world.topic_arn);
    for _ in 0..3 {
        fixed.handle(event.clone(), context()).await.unwrap();
    }
    let team = drain(&world, &world.team).await;
    assert_eq!(team.len(), 1);
    assert_eq!(team[0].event_type(), "app-idle-warning");
    assert_eq!(team[0].attributes["user"], ANA_PROFILE);
}
