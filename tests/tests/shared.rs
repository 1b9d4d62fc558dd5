//! The shared crate's AWS adapters against moto over HTTP: the idempotency store on DynamoDB and the suite's
//! event publisher on EventBridge (read back through a rule → SQS queue).

use std::time::Duration;

use serde_json::{Value, json};
use studio_ops_shared::events::suite::{AppStopped, IdleSweepCompleted, SuiteEvent};
use studio_ops_shared::idempotency::{
    Claim, DynamoIdempotencyStore, IdempotencyError, IdempotencyStore, Once, once,
};
use studio_ops_shared::publisher::{EventBridgePublisher, PublishEvents};
use studio_ops_tests::world::{World, WorldConfig};

fn soon() -> jiff::Timestamp {
    jiff::Timestamp::now() + Duration::from_secs(60)
}

#[tokio::test]
async fn idempotency_store_on_dynamodb() {
    let world = World::start(WorldConfig::default()).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(world.moto_sdk());
    let store = DynamoIdempotencyStore::new(
        ddb.clone(),
        &world.names.idempotency_table,
        "test",
        Duration::from_secs(3600),
    );

    assert_eq!(store.claim("k1", soon()).await.unwrap(), Claim::Acquired);
    assert_eq!(store.claim("k1", soon()).await.unwrap(), Claim::InProgress);
    store.complete("k1", &json!({"sent": 1})).await.unwrap();
    assert_eq!(
        store.claim("k1", soon()).await.unwrap(),
        Claim::AlreadyCompleted(Some(json!({"sent": 1})))
    );

    // A released claim can be taken again; releasing a completed record changes nothing.
    assert_eq!(store.claim("k2", soon()).await.unwrap(), Claim::Acquired);
    store.release("k2").await.unwrap();
    assert_eq!(store.claim("k2", soon()).await.unwrap(), Claim::Acquired);
    store.release("k1").await.unwrap();
    assert!(matches!(
        store.claim("k1", soon()).await.unwrap(),
        Claim::AlreadyCompleted(_)
    ));

    // A claim whose holder's deadline passed (a crashed invocation) can be re-taken.
    let past = jiff::Timestamp::now() - Duration::from_secs(1);
    assert_eq!(store.claim("k3", past).await.unwrap(), Claim::Acquired);
    assert_eq!(store.claim("k3", soon()).await.unwrap(), Claim::Acquired);

    // A claim for a holder (the lease): the holder takes it again (a retried request whose answer was lost),
    // another does not, and another's release leaves it in place.
    assert_eq!(
        store.claim_for("lease", soon(), "run-a").await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim_for("lease", soon(), "run-a").await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim_for("lease", soon(), "run-b").await.unwrap(),
        Claim::InProgress
    );
    store.release_for("lease", "run-b").await.unwrap();
    assert_eq!(
        store.claim_for("lease", soon(), "run-b").await.unwrap(),
        Claim::InProgress
    );
    store.release_for("lease", "run-a").await.unwrap();
    assert_eq!(
        store.claim_for("lease", soon(), "run-b").await.unwrap(),
        Claim::Acquired
    );

    // Ten concurrent duplicates: the work runs exactly once.
    let runs = std::sync::atomic::AtomicU32::new(0);
    let results = futures::future::join_all((0..10).map(|_| {
        once(&store, "k4", soon(), || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<Value, IdempotencyError>(json!("done"))
        })
    }))
    .await;
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    let done = results
        .iter()
        .filter(|r| matches!(r, Ok(Once::Done(_))))
        .count();
    assert_eq!(done, 1);

    // The stored record carries the TTL attribute DynamoDB expires it by.
    let item = ddb
        .get_item()
        .table_name(&world.names.idempotency_table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S("test#k1".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    let expiration: i64 = item["expiration"].as_n().unwrap().parse().unwrap();
    assert!(expiration > jiff::Timestamp::now().as_second() + 3000);
    world.stop().await;
}

#[tokio::test]
async fn publisher_puts_every_event_on_the_suite_bus() {
    let world = World::start(WorldConfig::default()).await.unwrap();
    let queue_url = world.tap_suite_bus("suite-tap").await.unwrap();
    let events = aws_sdk_eventbridge::Client::new(world.moto_sdk());

    let publisher = EventBridgePublisher::new(events, &world.names.event_bus);
    // 23 events: three PutEvents calls of at most ten entries.
    let batch: Vec<SuiteEvent> = (0..23)
        .map(|i| {
            AppStopped {
                domain_id: "d-1".into(),
                user_profile_name: Some(format!("user-{i}")),
                space_name: None,
                app_type: "JupyterLab".into(),
                app_name: "default".into(),
                instance_type: "ml.g4dn.xlarge".into(),
                idle_minutes: 90,
                reason: "idle".into(),
                hourly_cost_usd: Some(0.7364),
            }
            .into()
        })
        .chain(std::iter::once(IdleSweepCompleted::default().into()))
        .take(23)
        .collect();
    publisher.publish(&batch).await.unwrap();

    let sqs = aws_sdk_sqs::Client::new(world.moto_sdk());
    let mut received = Vec::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            received.push(v);
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(received.len(), 23);
    assert!(received.iter().all(|e| e["source"] == "studio-ops"));
    let parsed: Vec<SuiteEvent> = received
        .iter()
        .map(|e| SuiteEvent::from_envelope(e).unwrap())
        .collect();
    assert!(parsed.iter().all(|e| e.detail_type() == "App Stopped"));
    world.stop().await;
}
