//! provision-users against the local AWS world: moto's Identity Store and EventBridge, the Studio simulator.
//! Each fixture variant drives its outcome; a removed user loses apps, private space and profile; replays and
//! concurrent runs give one outcome; throttling loses no work; a 1,000-member group reconciles in time; and the
//! real binary does the same behind the Lambda runtime API with the template's environment.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_identitystore::types::{MemberId, Name};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::Context;
use provision_users::adapters::identitystore::IdentityStore;
use provision_users::adapters::sagemaker::SageMakerStudio;
use provision_users::config::Config;
use provision_users::handler::{Handler, Outcome, Ports};
use provision_users::plan::{Plan, TAG_GROUP_ID, TAG_MANAGED_BY, TAG_USER_ID};
use provision_users::reconcile::Report;
use serde_json::{Value, json};
use studio_ops_shared::aws::{
    retry_config, retry_partition, throttled_retry_config, timeout_config,
};
use studio_ops_shared::config::{AwsClientSettings, Env};
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::idempotency::{
    DynamoIdempotencyStore, IdempotencyStore, MemoryIdempotencyStore,
};
use studio_ops_shared::publisher::{EventBridgePublisher, PublishEvents, RecordingPublisher};
use studio_ops_shared::{ErrorClass, Failure};
use studio_ops_tests::moto::workspace_root;
use studio_ops_tests::runtime_api::{FunctionHost, FunctionSpec, function_binary};
use studio_ops_tests::sim::admin::{SeedApp, SeedRequest, SeedSpace, SeedUserProfile, StateDump};
use studio_ops_tests::sim::{KnobsPatch, RateLimit};
use studio_ops_tests::template::{self, TemplateError};
use studio_ops_tests::world::{World, WorldConfig, aws_env, fixture};

/// The identity store the fixtures name.
const STORE: &str = "d-9067000000";

type ProvisionUsers =
    Handler<IdentityStore, SageMakerStudio, EventBridgePublisher, DynamoIdempotencyStore>;

/// One local world with an identity store of two groups and a queue that receives the suite's events.
struct Local {
    world: World,
    ids: aws_sdk_identitystore::Client,
    events_queue: String,
    /// The configured group ("data-science").
    group: String,
    /// A group provision-users does not manage.
    other_group: String,
}

/// Placeholders for template references the world does not resolve yet (other functions' resources that are
/// still being added): provision-users reads none of them, and an empty map once the world knows them all.
fn references_the_world_lacks() -> HashMap<String, String> {
    let text = template::read_template_text(&workspace_root()).unwrap();
    let mut values: HashMap<String, String> = template::parameter_defaults(&text)
        .unwrap()
        .into_iter()
        .collect();
    for known in [
        "SuiteEventBus",
        "SuiteEventBus.Name",
        "SuiteEventBus.Arn",
        "IdempotencyTable",
        "TeamTopic",
        "TeamTopic.TopicArn",
        "DataBucket",
    ] {
        values.insert(known.to_string(), "resolved-by-the-world".to_string());
    }
    let mut lacking = HashMap::new();
    for _ in 0..100 {
        match template::parse(&text, &values) {
            Ok(_) => return lacking,
            Err(TemplateError::Unresolved { reference, .. }) => {
                // The stack's domain is the world's domain (the `DomainId` parameter's default).
                let placeholder = match reference.as_str() {
                    "StudioDomain.DomainId" | "StudioDomain" => values
                        .get("DomainId")
                        .cloned()
                        .unwrap_or_else(|| "d-studioops0001".into()),
                    // A required parameter: the store moto serves.
                    "IdentityStoreId" => STORE.to_string(),
                    _ => format!("placeholder-{}", reference.replace('.', "-")),
                };
                values.insert(reference.clone(), placeholder.clone());
                lacking.insert(reference, placeholder);
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("too many unresolved references: {lacking:?}")
}

/// The SDK behaviour the function has in production (5 attempts, backoff, timeouts), pointed at a local endpoint.
fn production_like(sdk: &SdkConfig) -> SdkConfig {
    let settings = AwsClientSettings::default();
    sdk.to_builder()
        .retry_config(retry_config(&settings))
        .timeout_config(timeout_config(&settings))
        .build()
}

impl Local {
    async fn start() -> Local {
        let world = World::start(WorldConfig {
            values: references_the_world_lacks(),
            ..WorldConfig::default()
        })
        .await
        .unwrap();
        let moto = production_like(world.moto_sdk());
        let ids = aws_sdk_identitystore::Client::new(&moto);
        let group = create_group(&ids, "data-science").await;
        let other_group = create_group(&ids, "marketing").await;
        let events_queue = world.tap_suite_bus("provision-users-events").await.unwrap();
        Local {
            world,
            ids,
            events_queue,
            group,
            other_group,
        }
    }

    fn vars(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            ("STUDIO_OPS_EVENT_BUS", self.world.names.event_bus.as_str()),
            (
                "STUDIO_OPS_IDEMPOTENCY_TABLE",
                self.world.names.idempotency_table.as_str(),
            ),
            ("STUDIO_OPS_DOMAIN_ID", self.world.names.domain_id.as_str()),
            ("STUDIO_OPS_IDENTITY_STORE_ID", STORE),
            ("STUDIO_OPS_PROVISION_GROUP_IDS", self.group.as_str()),
            // Profiles made a moment ago by the test may be deprovisioned right away.
            ("STUDIO_OPS_DEPROVISION_GRACE_SECONDS", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        vars
    }

    /// The handler with adapters pointed at the local world, as `main` builds it.
    fn handler(&self, extra: &[(&str, &str)]) -> ProvisionUsers {
        let moto = production_like(self.world.moto_sdk());
        self.handler_publishing_to(
            extra,
            EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(&moto),
                &self.world.names.event_bus,
            ),
        )
    }

    /// The same handler with another publisher.
    fn handler_publishing_to<P: PublishEvents>(
        &self,
        extra: &[(&str, &str)],
        publisher: P,
    ) -> Handler<IdentityStore, SageMakerStudio, P, DynamoIdempotencyStore> {
        let lease = DynamoIdempotencyStore::new(
            aws_sdk_dynamodb::Client::new(&production_like(self.world.moto_sdk())),
            &self.world.names.idempotency_table,
            provision_users::FUNCTION_NAME,
            std::time::Duration::from_secs(3600),
        );
        self.handler_with(extra, publisher, lease)
    }

    /// A handler whose lease is its own (in memory): runs of several such handlers overlap, as they would if a
    /// lease lapsed, which is what the per-profile safeguards are tested against.
    fn unleased_handler(
        &self,
    ) -> Handler<IdentityStore, SageMakerStudio, EventBridgePublisher, MemoryIdempotencyStore> {
        let moto = production_like(self.world.moto_sdk());
        let publisher = EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&moto),
            &self.world.names.event_bus,
        );
        self.handler_with(&[], publisher, MemoryIdempotencyStore::default())
    }

    fn handler_with<P: PublishEvents, L: IdempotencyStore>(
        &self,
        extra: &[(&str, &str)],
        publisher: P,
        lease: L,
    ) -> Handler<IdentityStore, SageMakerStudio, P, L> {
        let vars = self.vars(extra);
        let config = Config::from_env(&Env::new(&vars)).unwrap();
        let moto = production_like(self.world.moto_sdk());
        let sim = production_like(self.world.sim_sdk());
        let rate = config.sagemaker_calls_per_second;
        Handler::new(
            config,
            Ports {
                identity: IdentityStore::new(aws_sdk_identitystore::Client::new(&moto), STORE),
                // As `main` builds it: the function's own retry partition.
                studio: SageMakerStudio::new(
                    aws_sdk_sagemaker::Client::from_conf(
                        aws_sdk_sagemaker::config::Builder::from(&sim)
                            .retry_config(throttled_retry_config(&AwsClientSettings::default()))
                            .retry_partition(retry_partition("provision-users-sagemaker"))
                            .build(),
                    ),
                    &self.world.names.domain_id,
                    rate,
                ),
                publisher,
                lease,
            },
        )
    }

    async fn add_user(&self, user_name: &str) -> String {
        add_user(&self.ids, user_name).await
    }

    async fn add_member(&self, group: &str, user_id: &str) -> String {
        self.ids
            .create_group_membership()
            .identity_store_id(STORE)
            .group_id(group)
            .member_id(MemberId::UserId(user_id.to_string()))
            .send()
            .await
            .unwrap()
            .membership_id()
            .to_string()
    }

    async fn remove_member(&self, membership_id: &str) {
        self.ids
            .delete_group_membership()
            .identity_store_id(STORE)
            .membership_id(membership_id)
            .send()
            .await
            .unwrap();
    }

    async fn state(&self) -> StateDump {
        self.world.sim().admin().state().await.unwrap()
    }

    /// The suite events published since the last call.
    async fn events(&self) -> Vec<SuiteEvent> {
        self.world
            .drain_queue(&self.events_queue)
            .await
            .unwrap()
            .iter()
            .map(|envelope| {
                assert_eq!(envelope["source"], "studio-ops");
                SuiteEvent::from_envelope(envelope).unwrap()
            })
            .collect()
    }
}

async fn create_group(ids: &aws_sdk_identitystore::Client, name: &str) -> String {
    ids.create_group()
        .identity_store_id(STORE)
        .display_name(name)
        .send()
        .await
        .unwrap()
        .group_id()
        .to_string()
}

async fn add_user(ids: &aws_sdk_identitystore::Client, user_name: &str) -> String {
    ids.create_user()
        .identity_store_id(STORE)
        .user_name(user_name)
        .display_name(user_name)
        .name(
            Name::builder()
                .given_name("Test")
                .family_name(user_name)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .user_id()
        .to_string()
}

/// A Lambda context whose deadline is `secs` from now, with a request id of its own (as each invocation has).
fn context(secs: u64) -> Context {
    static INVOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = INVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut c = Context::default();
    c.request_id = format!("test-request-{n}");
    c.deadline = (SystemTime::now() + Duration::from_secs(secs))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    c
}

/// A fixture with the ids of this world put in (the group, the user, the membership), where the fixture has them.
fn event(name: &str, group: &str, user: &str, membership: &str) -> Value {
    let mut e = fixture(&format!("provision-users/{name}")).unwrap();
    let params = &mut e["detail"]["requestParameters"];
    if params.get("groupId").is_some() {
        params["groupId"] = json!(group);
    }
    if params.get("memberId").is_some_and(Value::is_object) {
        params["memberId"]["userId"] = json!(user);
    }
    if params.get("member").is_some() {
        params["member"]["memberId"] = json!(user);
    }
    if params.get("membershipId").is_some() {
        params["membershipId"] = json!(membership);
    }
    e
}

/// The plan and the report of a reconcile that completed (anything else fails the test, showing what it was).
fn reconciled(out: &Outcome) -> (&Plan, &Report) {
    match out {
        Outcome::Reconciled { plan, report, .. } => (plan, report),
        other => panic!("expected a completed reconcile: {other:?}"),
    }
}

fn types(events: &[SuiteEvent]) -> Vec<&'static str> {
    events.iter().map(SuiteEvent::detail_type).collect()
}

fn profile_names(state: &StateDump) -> Vec<String> {
    let mut n: Vec<String> = state
        .user_profiles
        .iter()
        .map(|p| p.user_profile_name.clone())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn add_events_provision_members_with_their_sso_mapping_and_tags() {
    let local = Local::start().await;
    let h = local.handler(&[]);
    let ana = local.add_user("ana.silva@example.com").await;
    let li = local.add_user("Li.Wei@Example.com").await;
    let m_ana = local.add_member(&local.group, &ana).await;
    let out = h
        .handle(
            event(
                "identitystore-create-group-membership.json",
                &local.group,
                &ana,
                &m_ana,
            ),
            context(300),
        )
        .await
        .unwrap();
    reconciled(&out);
    let m_li = local.add_member(&local.group, &li).await;
    h.handle(
        event(
            "sso-directory-add-member-to-group.json",
            &local.group,
            &li,
            &m_li,
        ),
        context(300),
    )
    .await
    .unwrap();

    let state = local.state().await;
    assert_eq!(
        profile_names(&state),
        vec!["ana-silva-example-com", "li-wei-example-com"]
    );
    let ana_profile = state
        .user_profiles
        .iter()
        .find(|p| p.user_profile_name == "ana-silva-example-com")
        .unwrap();
    assert_eq!(
        ana_profile.sso_user_value.as_deref(),
        Some("ana.silva@example.com")
    );
    assert_eq!(ana_profile.tags[TAG_MANAGED_BY], "provision-users");
    assert_eq!(ana_profile.tags[TAG_USER_ID], ana);
    assert_eq!(ana_profile.tags[TAG_GROUP_ID], local.group);

    let events = local.events().await;
    assert_eq!(types(&events), vec!["User Provisioned", "User Provisioned"]);
    let SuiteEvent::UserProvisioned(first) = &events[0] else {
        unreachable!()
    };
    assert_eq!(first.user_profile_name, "ana-silva-example-com");
    assert_eq!(first.user_name, "ana.silva@example.com");
    assert_eq!(first.user_id, ana);
    assert_eq!(first.group_id, local.group);
    assert_eq!(first.group_name.as_deref(), Some("data-science"));
    assert_eq!(first.domain_id, local.world.names.domain_id);
    local.world.stop().await;
}

#[tokio::test]
async fn a_removed_user_loses_apps_private_space_and_profile_but_others_are_kept() {
    let local = Local::start().await;
    let h = local.handler(&[("STUDIO_OPS_PRIVATE_SPACE", "true")]);
    let admin = local.world.sim().admin();
    // Deleted apps take a moment to go, as in SageMaker: the deprovision must wait for them.
    admin
        .set_knobs(&KnobsPatch {
            app_deleting_ms: Some(400),
            space_deleting_ms: Some(300),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let ana = local.add_user("ana@example.com").await;
    let bob = local.add_user("bob@example.com").await;
    let m_ana = local.add_member(&local.group, &ana).await;
    local.add_member(&local.group, &bob).await;
    h.handle(
        fixture("provision-users/scheduled-event.json").unwrap(),
        context(300),
    )
    .await
    .unwrap();
    let provisioned = local.events().await;
    assert_eq!(types(&provisioned), vec!["User Provisioned"; 2]);
    let state = local.state().await;
    let mut spaces: Vec<(&str, Option<&str>, Option<&str>)> = state
        .spaces
        .iter()
        .map(|s| {
            (
                s.space_name.as_str(),
                s.owner_user_profile_name.as_deref(),
                s.sharing_type.as_deref(),
            )
        })
        .collect();
    spaces.sort();
    assert_eq!(
        spaces,
        vec![
            (
                "ana-example-com-private",
                Some("ana-example-com"),
                Some("Private")
            ),
            (
                "bob-example-com-private",
                Some("bob-example-com"),
                Some("Private")
            ),
        ]
    );

    // Ana works: a classic app on her profile and JupyterLab in her private space; Bob too.
    let app = |user: Option<&str>, space: Option<&str>, app_type: &str| SeedApp {
        domain_id: local.world.names.domain_id.clone(),
        user_profile_name: user.map(str::to_string),
        space_name: space.map(str::to_string),
        app_type: app_type.into(),
        ..SeedApp::default()
    };
    admin
        .seed(&SeedRequest {
            apps: vec![
                app(Some("ana-example-com"), None, "JupyterServer"),
                app(None, Some("ana-example-com-private"), "JupyterLab"),
                app(None, Some("bob-example-com-private"), "JupyterLab"),
            ],
            ..SeedRequest::default()
        })
        .await
        .unwrap();

    // Ana leaves the group; the delete event names only the membership.
    local.remove_member(&m_ana).await;
    let out = h
        .handle(
            event(
                "identitystore-delete-group-membership.json",
                &local.group,
                &ana,
                &m_ana,
            ),
            context(300),
        )
        .await
        .unwrap();
    reconciled(&out);

    let state = local.state().await;
    assert_eq!(profile_names(&state), vec!["bob-example-com"]);
    assert_eq!(
        state
            .spaces
            .iter()
            .map(|s| s.space_name.as_str())
            .collect::<Vec<_>>(),
        vec!["bob-example-com-private"]
    );
    let live: Vec<(&str, &str)> = state
        .apps
        .iter()
        .filter(|a| a.status != "Deleted")
        .map(|a| (a.space_name.as_deref().unwrap_or("-"), a.status.as_str()))
        .collect();
    assert_eq!(live, vec![("bob-example-com-private", "InService")]);

    let events = local.events().await;
    let [SuiteEvent::UserDeprovisioned(gone)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(gone.user_profile_name, "ana-example-com");
    assert_eq!(gone.user_id.as_deref(), Some(ana.as_str()));
    assert_eq!(gone.user_name.as_deref(), Some("ana@example.com"));
    assert_eq!((gone.apps_deleted, gone.spaces_deleted), (2, 1));
    assert!(gone.home_efs_file_system_uid.is_some());
    local.world.stop().await;
}

#[tokio::test]
async fn console_removal_and_scim_patch_reconcile_and_other_groups_are_ignored_without_calls() {
    let local = Local::start().await;
    let h = local.handler(&[]);
    let admin = local.world.sim().admin();
    let cleo = local.add_user("cleo").await;
    let dan = local.add_user("dan").await;
    let m_cleo = local.add_member(&local.group, &cleo).await;

    // A SCIM PatchGroup whose ids are masked: reconcile anyway.
    let out = h
        .handle(
            event(
                "identitystore-scim-patch-group.json",
                &local.group,
                &cleo,
                &m_cleo,
            ),
            context(300),
        )
        .await
        .unwrap();
    reconciled(&out);
    assert_eq!(profile_names(&local.state().await), vec!["cleo"]);

    // Dan joins another group: acknowledged, no AWS call at all, nothing created.
    let m_dan = local.add_member(&local.other_group, &dan).await;
    admin.reset_stats().await.unwrap();
    let out = h
        .handle(
            event(
                "identitystore-create-group-membership-other-group.json",
                &local.other_group,
                &dan,
                &m_dan,
            ),
            context(300),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Ignored { .. }), "{out:?}");
    assert_eq!(admin.stats().await.unwrap().total_calls(), 0);
    assert_eq!(profile_names(&local.state().await), vec!["cleo"]);

    // Cleo is removed in the console (the event names the group): the profile goes.
    local.remove_member(&m_cleo).await;
    h.handle(
        event(
            "sso-directory-remove-member-from-group.json",
            &local.group,
            &cleo,
            &m_cleo,
        ),
        context(300),
    )
    .await
    .unwrap();
    assert!(profile_names(&local.state().await).is_empty());
    assert_eq!(
        types(&local.events().await),
        vec!["User Provisioned", "User Deprovisioned"]
    );
    local.world.stop().await;
}

#[tokio::test]
async fn replaying_each_event_three_times_gives_one_outcome() {
    let local = Local::start().await;
    let h = local.handler(&[]);
    let ana = local.add_user("ana@example.com").await;
    let m_ana = local.add_member(&local.group, &ana).await;
    let add = event(
        "identitystore-create-group-membership.json",
        &local.group,
        &ana,
        &m_ana,
    );
    for _ in 0..3 {
        h.handle(add.clone(), context(300)).await.unwrap();
    }
    assert_eq!(profile_names(&local.state().await), vec!["ana-example-com"]);
    assert_eq!(types(&local.events().await), vec!["User Provisioned"]);

    local.remove_member(&m_ana).await;
    let remove = event(
        "identitystore-delete-group-membership.json",
        &local.group,
        &ana,
        &m_ana,
    );
    for _ in 0..3 {
        h.handle(remove.clone(), context(300)).await.unwrap();
    }
    assert!(profile_names(&local.state().await).is_empty());
    assert_eq!(types(&local.events().await), vec!["User Deprovisioned"]);

    // Out of order: the add arrives again after the removal — the group decides, not the event.
    h.handle(add, context(300)).await.unwrap();
    assert!(profile_names(&local.state().await).is_empty());
    assert!(local.events().await.is_empty());
    local.world.stop().await;
}

#[tokio::test]
async fn overlapping_runs_without_the_lease_create_each_profile_once() {
    let local = Local::start().await;
    let handlers = [
        local.unleased_handler(),
        local.unleased_handler(),
        local.unleased_handler(),
    ];
    local
        .world
        .sim()
        .admin()
        .set_knobs(&KnobsPatch {
            latency_ms: Some(5),
            latency_jitter_ms: Some(20),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    for i in 0..12 {
        let u = local.add_user(&format!("user{i:02}@example.com")).await;
        local.add_member(&local.group, &u).await;
    }
    let scheduled = fixture("provision-users/scheduled-event.json").unwrap();
    let runs = futures::future::join_all(
        handlers
            .iter()
            .map(|h| h.handle(scheduled.clone(), context(300))),
    )
    .await;
    for r in &runs {
        let out = r.as_ref().unwrap();
        assert!(
            matches!(out, Outcome::Reconciled { .. }),
            "every run ran: {out:?}"
        );
    }
    let state = local.state().await;
    assert_eq!(state.user_profiles.len(), 12);
    // Each profile was reported once, by whichever run created it.
    let events = local.events().await;
    assert_eq!(events.len(), 12, "{:?}", types(&events));
    let mut names: Vec<String> = events
        .iter()
        .map(|e| match e {
            SuiteEvent::UserProvisioned(p) => p.user_profile_name.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12);
    local.world.stop().await;
}

async fn plant_lease(local: &Local, expires: Timestamp) {
    local
        .world
        .plant_lease("provision-users", expires)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_held_lease_turns_a_scheduled_run_away_and_makes_a_membership_event_wait() {
    let local = Local::start().await;
    let h = local.handler(&[]);
    let ana = local.add_user("ana.silva@example.com").await;
    let m_ana = local.add_member(&local.group, &ana).await;
    let scheduled = fixture("provision-users/scheduled-event.json").unwrap();

    // A run that crashed holds the lease for two more minutes: the daily run does nothing, and says so.
    plant_lease(&local, Timestamp::now() + SignedDuration::from_mins(2)).await;
    let turned_away = h.handle(scheduled.clone(), context(300)).await.unwrap();
    assert!(
        matches!(turned_away, Outcome::AlreadyRunning { .. }),
        "{turned_away:?}"
    );
    assert!(profile_names(&local.state().await).is_empty());
    // A preview needs no lease.
    let preview = h
        .handle(json!({"dryRun": true}), context(300))
        .await
        .unwrap();
    assert!(matches!(preview, Outcome::DryRun { .. }), "{preview:?}");

    // A membership event waits for the lease (the holder's deadline is 3 s away) and is then applied.
    plant_lease(&local, Timestamp::now() + SignedDuration::from_secs(3)).await;
    let started = std::time::Instant::now();
    let added = event(
        "identitystore-create-group-membership.json",
        &local.group,
        &ana,
        &m_ana,
    );
    let out = h.handle(added.clone(), context(300)).await.unwrap();
    reconciled(&out);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it did not wait for the lease"
    );
    assert_eq!(
        profile_names(&local.state().await),
        ["ana-silva-example-com"]
    );

    // One that cannot wait long enough (a short invocation) fails as retryable, so that Lambda retries it.
    plant_lease(&local, Timestamp::now() + SignedDuration::from_mins(2)).await;
    let err = h.handle(added, context(4)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");

    // The crashed holder's deadline passes: the lease lapses and the daily run proceeds.
    plant_lease(&local, Timestamp::now() - SignedDuration::from_secs(1)).await;
    let ran = h.handle(scheduled, context(300)).await.unwrap();
    reconciled(&ran);
    local.world.stop().await;
}

#[tokio::test]
async fn dry_run_returns_the_plan_and_changes_nothing() {
    let local = Local::start().await;
    let h = local.handler(&[]);
    let admin = local.world.sim().admin();
    // An admin's own profile (no studio-ops tag) and a managed one whose user left.
    admin
        .seed(&SeedRequest {
            user_profiles: vec![
                SeedUserProfile {
                    domain_id: local.world.names.domain_id.clone(),
                    user_profile_name: "admin".into(),
                    ..SeedUserProfile::default()
                },
                SeedUserProfile {
                    domain_id: local.world.names.domain_id.clone(),
                    user_profile_name: "gone-example-com".into(),
                    sso_user_value: Some("gone@example.com".into()),
                    tags: BTreeMap::from([
                        (TAG_MANAGED_BY.to_string(), "provision-users".to_string()),
                        (TAG_USER_ID.to_string(), "0000-gone".to_string()),
                        (TAG_GROUP_ID.to_string(), local.group.clone()),
                    ]),
                    ..SeedUserProfile::default()
                },
            ],
            ..SeedRequest::default()
        })
        .await
        .unwrap();
    let ana = local.add_user("ana@example.com").await;
    local.add_member(&local.group, &ana).await;
    let before = local.state().await;
    admin.reset_stats().await.unwrap();

    let out = h
        .handle(
            fixture("provision-users/manual-dry-run.json").unwrap(),
            context(300),
        )
        .await
        .unwrap();
    let Outcome::DryRun { plan, brake, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(plan.create[0].profile_name, "ana-example-com");
    assert_eq!(
        plan.create[0].reason,
        format!(
            "ana@example.com is a member of group {} and has no Studio profile",
            local.group
        )
    );
    assert_eq!(plan.deprovision[0].profile_name, "gone-example-com");
    assert_eq!(plan.managed_profiles, 1);
    assert!(!brake.blocked);

    assert_eq!(local.state().await, before);
    let stats = admin.stats().await.unwrap();
    for op in stats.calls.keys() {
        assert!(
            op.starts_with("List") || op.starts_with("Describe"),
            "a dry run called {op}"
        );
    }
    assert!(local.events().await.is_empty());
    local.world.stop().await;
}

#[tokio::test]
async fn the_brake_blocks_a_mass_deprovision_and_a_targeted_run_approves_one() {
    let local = Local::start().await;
    let h = local.handler(&[]);
    let mut memberships = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        let u = local.add_user(name).await;
        memberships.push(local.add_member(&local.group, &u).await);
    }
    h.handle(
        fixture("provision-users/scheduled-event.json").unwrap(),
        context(300),
    )
    .await
    .unwrap();
    local.events().await;
    // A wrong group or an outage looks like this: three of five are gone at once.
    for m in &memberships[2..] {
        local.remove_member(m).await;
    }
    let out = h
        .handle(
            fixture("provision-users/scheduled-event.json").unwrap(),
            context(300),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Blocked { .. }), "{out:?}");
    assert_eq!(
        profile_names(&local.state().await),
        vec!["a", "b", "c", "d", "e"]
    );
    let events = local.events().await;
    let [SuiteEvent::ProvisioningBlocked(b)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!((b.would_deprovision, b.managed_profiles), (3, 5));
    assert_eq!(
        b.reason,
        "would deprovision 3 of 5 managed profiles (60%), above the 20% brake"
    );
    assert_eq!(b.profiles, vec!["c", "d", "e"]);

    let out = h
        .handle(json!({"userProfileName": "d"}), context(300))
        .await
        .unwrap();
    reconciled(&out);
    assert_eq!(
        profile_names(&local.state().await),
        vec!["a", "b", "c", "e"]
    );
    assert_eq!(types(&local.events().await), vec!["User Deprovisioned"]);
    local.world.stop().await;
}

#[tokio::test]
async fn throttling_and_faults_do_not_lose_work() {
    let local = Local::start().await;
    // The client may go faster than the simulator allows: throttling is certain.
    let h = local.handler(&[("STUDIO_OPS_PROVISION_SAGEMAKER_CALLS_PER_SECOND", "50")]);
    let admin = local.world.sim().admin();
    let limit = |rps: f64, burst: f64| RateLimit { rps, burst };
    admin
        .set_knobs(&KnobsPatch {
            latency_ms: Some(2),
            rate_limits: Some(BTreeMap::from([
                ("CreateUserProfile".to_string(), limit(8.0, 2.0)),
                ("DescribeUserProfile".to_string(), limit(20.0, 5.0)),
                ("ListTags".to_string(), limit(20.0, 5.0)),
            ])),
            fault_rate: Some(0.05),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    for i in 0..30 {
        let u = local.add_user(&format!("throttled{i:02}")).await;
        local.add_member(&local.group, &u).await;
    }
    // Lambda retries a Retryable failure; the same happens here until the run reports success.
    let mut runs = 0;
    loop {
        runs += 1;
        match h
            .handle(
                fixture("provision-users/scheduled-event.json").unwrap(),
                context(300),
            )
            .await
        {
            Ok(out) => {
                reconciled(&out);
                break;
            }
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
                assert!(runs < 5, "not converged after {runs} runs: {e}");
            }
        }
    }
    let state = local.state().await;
    assert_eq!(state.user_profiles.len(), 30);
    let stats = admin.stats().await.unwrap();
    assert!(
        stats.throttled_of("CreateUserProfile") > 0,
        "the test must throttle: {stats:?}"
    );
    let events = local.events().await;
    assert_eq!(events.len(), 30, "{:?}", types(&events));
    local.world.stop().await;
}

#[tokio::test]
async fn a_thousand_member_group_reconciles_within_the_lambda_timeout() {
    let local = Local::start().await;
    // A client allowance above the create limit below, so that some creates are throttled and retried.
    // Events are recorded in memory here: moto's EventBridge needs ~50 ms per event, real EventBridge does not,
    // and the other tests already read what is really published.
    let h = local.handler_publishing_to(
        &[("STUDIO_OPS_PROVISION_SAGEMAKER_CALLS_PER_SECOND", "80")],
        RecordingPublisher::default(),
    );
    let admin = local.world.sim().admin();
    let setup = Instant::now();
    let users: Vec<String> = futures::stream::iter(0..1000)
        .map(|i| {
            let ids = local.ids.clone();
            let group = local.group.clone();
            async move {
                let u = add_user(&ids, &format!("scientist{i:04}@example.com")).await;
                ids.create_group_membership()
                    .identity_store_id(STORE)
                    .group_id(&group)
                    .member_id(MemberId::UserId(u.clone()))
                    .send()
                    .await
                    .unwrap();
                u
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(users.len(), 1000);
    eprintln!("identity store set up in {:?}", setup.elapsed());
    // SageMaker-like latency and a control-plane rate limit the run must live with.
    admin
        .set_knobs(&KnobsPatch {
            latency_ms: Some(15),
            latency_jitter_ms: Some(15),
            rate_limits: Some(BTreeMap::from([
                (
                    "CreateUserProfile".to_string(),
                    RateLimit {
                        rps: 60.0,
                        burst: 10.0,
                    },
                ),
                (
                    "*".to_string(),
                    RateLimit {
                        rps: 150.0,
                        burst: 40.0,
                    },
                ),
            ])),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let timeout = 300;
    let started = Instant::now();
    let out = h
        .handle(
            fixture("provision-users/scheduled-event.json").unwrap(),
            context(timeout),
        )
        .await
        .unwrap();
    let first = started.elapsed();
    assert_eq!(reconciled(&out).1.provisioned.len(), 1000);
    assert!(first < Duration::from_secs(timeout), "{first:?}");
    assert_eq!(local.state().await.user_profiles.len(), 1000);
    let published = h.ports().publisher.taken();
    assert_eq!(published.len(), 1000);
    assert!(
        published
            .iter()
            .all(|e| e.detail_type() == "User Provisioned")
    );
    let throttled = admin
        .stats()
        .await
        .unwrap()
        .throttled_of("CreateUserProfile");

    // The daily run over a settled domain changes nothing and also fits.
    let started = Instant::now();
    let out = h
        .handle(
            fixture("provision-users/scheduled-event.json").unwrap(),
            context(timeout),
        )
        .await
        .unwrap();
    assert_eq!(reconciled(&out).0.unchanged, 1000);
    assert!(started.elapsed() < Duration::from_secs(timeout));
    assert!(h.ports().publisher.taken().is_empty());
    eprintln!(
        "1,000 members: first reconcile {first:?} ({throttled} creates throttled and retried), daily reconcile {:?}",
        started.elapsed()
    );
    local.world.stop().await;
}

#[tokio::test]
async fn the_lambda_binary_provisions_from_a_routed_event_with_the_templates_environment() {
    let local = Local::start().await;
    let ana = local.add_user("ana@example.com").await;
    let m_ana = local.add_member(&local.group, &ana).await;
    let add = event(
        "identitystore-create-group-membership.json",
        &local.group,
        &ana,
        &m_ana,
    );
    // The template's rule routes the event to provision-users, and only to it.
    assert_eq!(
        local.world.route(&add).await.unwrap(),
        vec!["provision-users/GroupMembershipChanged"]
    );
    let spec = local
        .world
        .template
        .functions
        .iter()
        .find(|f| f.name == "provision-users")
        .unwrap();
    // The template's environment, with the group this world created (the stack's StudioGroupId).
    let mut env = spec.env.clone();
    env.extend(aws_env(local.world.moto().url(), local.world.sim().url()));
    env.insert("STUDIO_OPS_PROVISION_GROUP_IDS".into(), local.group.clone());
    let host = FunctionHost::start(FunctionSpec {
        name: "provision-users".into(),
        binary: function_binary(&spec.binary),
        env,
        timeout: Duration::from_secs(spec.timeout_seconds),
        processes: 1,
        log_dir: studio_ops_tests::moto::world_dir().join("functions"),
    })
    .await
    .unwrap();
    let inv = host.invoke(add).await.unwrap();
    let out = inv.outcome.response().unwrap_or_else(|| panic!("{inv:?}"));
    let out: Outcome = serde_json::from_value(out.clone()).unwrap();
    reconciled(&out);
    assert_eq!(profile_names(&local.state().await), vec!["ana-example-com"]);
    assert_eq!(types(&local.events().await), vec!["User Provisioned"]);
    // A malformed event is refused as NonRetryable, with nothing done.
    let inv = host
        .invoke(json!({"detail-type": "AWS API Call via CloudTrail", "detail": {"eventSource": 7}}))
        .await
        .unwrap();
    assert_eq!(inv.outcome.error_type(), Some("NonRetryable"));
    host.stop().await;
    local.world.stop().await;
}

#[tokio::test]
async fn moving_to_another_group_updates_the_profiles_settings() {
    let local = Local::start().await;
    let gpu = create_group(&local.ids, "gpu").await;
    let settings =
        json!({ gpu.clone(): {"name": "gpu", "defaultInstanceType": "ml.g5.xlarge"} }).to_string();
    let groups = format!("{},{gpu}", local.group);
    let h = local.handler(&[
        ("STUDIO_OPS_PROVISION_GROUP_IDS", groups.as_str()),
        ("STUDIO_OPS_DEFAULT_INSTANCE_TYPE", "ml.t3.medium"),
        ("STUDIO_OPS_IDLE_TIMEOUT_MINUTES", "120"),
        ("STUDIO_OPS_GROUP_SETTINGS", settings.as_str()),
    ]);
    let sagemaker = aws_sdk_sagemaker::Client::new(local.world.sim_sdk());
    let instance_type =
        |out: &aws_sdk_sagemaker::operation::describe_user_profile::DescribeUserProfileOutput| {
            out.user_settings()
                .and_then(|s| s.jupyter_lab_app_settings())
                .and_then(|j| j.default_resource_spec())
                .and_then(|r| r.instance_type())
                .map(|t| t.as_str().to_string())
        };
    let ana = local.add_user("ana").await;
    let m_ds = local.add_member(&local.group, &ana).await;
    let scheduled = fixture("provision-users/scheduled-event.json").unwrap();
    h.handle(scheduled.clone(), context(300)).await.unwrap();
    let describe = || {
        sagemaker
            .describe_user_profile()
            .domain_id(&local.world.names.domain_id)
            .user_profile_name("ana")
            .send()
    };
    let before = describe().await.unwrap();
    assert_eq!(instance_type(&before).as_deref(), Some("ml.t3.medium"));
    let idle = before
        .user_settings()
        .and_then(|s| s.code_editor_app_settings())
        .and_then(|c| c.app_lifecycle_management())
        .and_then(|l| l.idle_settings())
        .and_then(|i| i.idle_timeout_in_minutes());
    assert_eq!(idle, Some(120));

    // Ana moves to the GPU group.
    local.add_member(&gpu, &ana).await;
    local.remove_member(&m_ds).await;
    let out = h.handle(scheduled.clone(), context(300)).await.unwrap();
    assert_eq!(
        reconciled(&out).1.updated[0].reason,
        format!("moved from group {} to group gpu ({gpu})", local.group)
    );
    let after = describe().await.unwrap();
    assert_eq!(instance_type(&after).as_deref(), Some("ml.g5.xlarge"));
    let state = local.state().await;
    assert_eq!(state.user_profiles[0].tags[TAG_GROUP_ID], gpu);
    // Converged: the next run has nothing to do.
    let out = h.handle(scheduled, context(300)).await.unwrap();
    assert_eq!(reconciled(&out).0.unchanged, 1);
    assert_eq!(types(&local.events().await), vec!["User Provisioned"]);
    local.world.stop().await;
}

/// Team shared spaces from the group settings, over HTTP: declared → created (shared, marked, with the settings),
/// replayed 3× → once; changed → updated in place; dropped → its app stopped, then removed; two dropped at once
/// stop at the brake; a user's own shared space of any name is never touched.
#[tokio::test]
async fn team_shared_spaces_follow_the_group_settings_safely() {
    let local = Local::start().await;
    let domain = local.world.names.domain_id.clone();
    let sagemaker = aws_sdk_sagemaker::Client::new(local.world.sim_sdk());
    let describe_lab = || {
        sagemaker
            .describe_space()
            .domain_id(&domain)
            .space_name("team-lab")
            .send()
    };
    let lab_instance_type =
        |d: &aws_sdk_sagemaker::operation::describe_space::DescribeSpaceOutput| {
            d.space_settings()
                .and_then(|x| x.jupyter_lab_app_settings())
                .and_then(|j| j.default_resource_spec())
                .and_then(|r| r.instance_type())
                .map(|t| t.as_str().to_string())
        };
    let settings =
        |spaces: Value| json!({ local.group.clone(): { "sharedSpaces": spaces } }).to_string();
    let lab = json!({"name": "team-lab", "appType": "JupyterLab", "defaultInstanceType": "ml.t3.medium",
                     "ebsSizeGb": 50, "idleTimeoutMinutes": 120});
    let editor = json!({"name": "team-editor", "appType": "CodeEditor"});
    let forecast = json!({"name": "forecast-lab", "appType": "JupyterLab"});
    let scheduled = fixture("provision-users/scheduled-event.json").unwrap();
    let ana = local.add_user("ana").await;
    local.add_member(&local.group, &ana).await;
    // A user's own shared space, unmarked: never touched, even though no group declares it.
    local
        .world
        .sim()
        .admin()
        .seed(&SeedRequest {
            spaces: vec![SeedSpace {
                domain_id: domain.clone(),
                space_name: "ana-notes".into(),
                sharing_type: Some("Shared".into()),
                app_type: Some("JupyterLab".into()),
                ..SeedSpace::default()
            }],
            ..SeedRequest::default()
        })
        .await
        .unwrap();

    let three = settings(json!([lab, editor, forecast]));
    let h = local.handler(&[("STUDIO_OPS_GROUP_SETTINGS", three.as_str())]);
    // A preview first: the plan names the three spaces, and nothing is created.
    let preview = h
        .handle(
            fixture("provision-users/manual-dry-run.json").unwrap(),
            context(300),
        )
        .await
        .unwrap();
    let Outcome::DryRun { plan, .. } = &preview else {
        panic!("{preview:?}")
    };
    let planned: Vec<&str> = plan
        .shared_spaces
        .create
        .iter()
        .map(|c| c.spec.name.as_str())
        .collect();
    assert_eq!(planned, vec!["forecast-lab", "team-editor", "team-lab"]);
    assert_eq!(local.state().await.spaces.len(), 1, "only ana-notes");
    for _ in 0..3 {
        h.handle(scheduled.clone(), context(300)).await.unwrap();
    }
    let described = describe_lab().await.unwrap();
    assert_eq!(
        described
            .space_sharing_settings()
            .and_then(|x| x.sharing_type())
            .map(|t| t.as_str()),
        Some("Shared")
    );
    assert_eq!(
        lab_instance_type(&described).as_deref(),
        Some("ml.t3.medium")
    );
    let jl = described
        .space_settings()
        .and_then(|x| x.jupyter_lab_app_settings());
    assert_eq!(
        jl.and_then(|j| j.app_lifecycle_management())
            .and_then(|l| l.idle_settings())
            .and_then(|i| i.idle_timeout_in_minutes()),
        Some(120)
    );
    assert_eq!(
        described
            .space_settings()
            .and_then(|x| x.space_storage_settings())
            .and_then(|x| x.ebs_storage_settings())
            .map(|e| e.ebs_volume_size_in_gb()),
        Some(Some(50))
    );
    let ready: Vec<String> = local
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e {
            SuiteEvent::SharedSpaceReady(r) => Some(format!("{} {}", r.space_name, r.change)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ready,
        vec![
            "forecast-lab created",
            "team-editor created",
            "team-lab created"
        ],
        "once each over three runs"
    );

    // The lab grows; the forecast lab (with a running app) is dropped.
    local
        .world
        .sim()
        .admin()
        .seed(&SeedRequest {
            apps: vec![SeedApp {
                domain_id: domain.clone(),
                space_name: Some("forecast-lab".into()),
                app_type: "JupyterLab".into(),
                instance_type: Some("ml.t3.medium".into()),
                ..SeedApp::default()
            }],
            ..SeedRequest::default()
        })
        .await
        .unwrap();
    let mut bigger = lab.clone();
    bigger["defaultInstanceType"] = json!("ml.m5.xlarge");
    let two = settings(json!([bigger, editor]));
    let h = local.handler(&[("STUDIO_OPS_GROUP_SETTINGS", two.as_str())]);
    for _ in 0..3 {
        h.handle(scheduled.clone(), context(300)).await.unwrap();
    }
    let updated = describe_lab().await.unwrap();
    assert_eq!(lab_instance_type(&updated).as_deref(), Some("ml.m5.xlarge"));
    let names = |state: &StateDump| -> Vec<String> {
        let mut n: Vec<String> = state.spaces.iter().map(|s| s.space_name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&local.state().await),
        vec!["ana-notes", "team-editor", "team-lab"]
    );
    let events = local.events().await;
    let changes: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::SharedSpaceReady(r) => Some(format!("{} {}", r.space_name, r.change)),
            SuiteEvent::SharedSpaceRemoved(r) => Some(format!(
                "{} removed, {} app(s)",
                r.space_name, r.apps_deleted
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec!["team-lab updated", "forecast-lab removed, 1 app(s)"],
        "{events:?}"
    );

    // Both remaining spaces dropped at once: the brake stops it, nothing is removed.
    let none = settings(json!([]));
    let h = local.handler(&[("STUDIO_OPS_GROUP_SETTINGS", none.as_str())]);
    let out = h.handle(scheduled.clone(), context(300)).await.unwrap();
    assert!(matches!(out, Outcome::Blocked { .. }), "{out:?}");
    assert_eq!(
        names(&local.state().await),
        vec!["ana-notes", "team-editor", "team-lab"]
    );
    local.world.stop().await;
}

#[tokio::test]
async fn a_deprovision_held_up_by_a_busy_app_or_a_shared_space_is_reported_and_finished_later() {
    let local = Local::start().await;
    let h = local.handler(&[("STUDIO_OPS_APP_DELETE_WAIT_SECONDS", "1")]);
    let admin = local.world.sim().admin();
    let domain = local.world.names.domain_id.clone();
    let ana = local.add_user("ana").await;
    let m_ana = local.add_member(&local.group, &ana).await;
    let scheduled = fixture("provision-users/scheduled-event.json").unwrap();
    h.handle(scheduled.clone(), context(300)).await.unwrap();
    local.events().await;
    // Ana's app is still starting (InService in 3 s) and she owns a space shared with the team.
    admin
        .seed(&SeedRequest {
            spaces: vec![studio_ops_tests::sim::admin::SeedSpace {
                domain_id: domain.clone(),
                space_name: "team-notebooks".into(),
                owner_user_profile_name: Some("ana".into()),
                sharing_type: Some("Shared".into()),
                app_type: Some("JupyterLab".into()),
                ..Default::default()
            }],
            apps: vec![SeedApp {
                domain_id: domain.clone(),
                user_profile_name: Some("ana".into()),
                app_type: "JupyterServer".into(),
                status: Some("Pending".into()),
                transition_after_ms: Some(3_000),
                ..SeedApp::default()
            }],
            ..SeedRequest::default()
        })
        .await
        .unwrap();
    local.remove_member(&m_ana).await;

    // The app cannot be deleted while it starts: the run says so and asks Lambda to retry.
    let err = h.handle(scheduled.clone(), context(300)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(
        err.to_string().contains("still") || err.to_string().contains("not gone"),
        "{err}"
    );
    assert_eq!(profile_names(&local.state().await), vec!["ana"]);
    assert!(
        local.events().await.is_empty(),
        "a transient hold-up is not worth an alert"
    );

    // Later the app is up: it is stopped, but the shared space needs a person — Provisioning Failed says which.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = h.handle(scheduled.clone(), context(300)).await.unwrap();
    assert_eq!(reconciled(&out).1.failed[0].subject, "ana");
    let state = local.state().await;
    assert_eq!(profile_names(&state), vec!["ana"]);
    assert!(
        state.apps.iter().all(|a| a.status == "Deleted"),
        "{:?}",
        state.apps
    );
    let events = local.events().await;
    let [SuiteEvent::ProvisioningFailed(failed)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(failed.user_profile_name.as_deref(), Some("ana"));
    assert_eq!(failed.action, "deprovision");
    assert!(
        failed.reason.contains("team-notebooks"),
        "{}",
        failed.reason
    );

    // The admin hands the space over (here: deletes it); the next run finishes the job.
    aws_sdk_sagemaker::Client::new(local.world.sim_sdk())
        .delete_space()
        .domain_id(&domain)
        .space_name("team-notebooks")
        .send()
        .await
        .unwrap();
    h.handle(scheduled, context(300)).await.unwrap();
    assert!(profile_names(&local.state().await).is_empty());
    assert_eq!(types(&local.events().await), vec!["User Deprovisioned"]);
    local.world.stop().await;
}

#[tokio::test]
async fn a_group_that_does_not_exist_fails_loudly_and_changes_nothing() {
    let local = Local::start().await;
    // A managed profile exists; a typo in the group id must not look like "everybody left".
    let h = local.handler(&[]);
    let ana = local.add_user("ana").await;
    local.add_member(&local.group, &ana).await;
    let scheduled = fixture("provision-users/scheduled-event.json").unwrap();
    h.handle(scheduled.clone(), context(300)).await.unwrap();
    local.events().await;

    let wrong = local.handler(&[(
        "STUDIO_OPS_PROVISION_GROUP_IDS",
        "00000000-0000-4000-8000-000000000000",
    )]);
    let err = wrong.handle(scheduled, context(300)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(
        studio_ops_shared::error::error_chain(&err)
            .contains("configured group 00000000-0000-4000-8000-000000000000 does not exist"),
        "{err}"
    );
    assert_eq!(profile_names(&local.state().await), vec!["ana"]);
    let events = local.events().await;
    let [SuiteEvent::ProvisioningFailed(failed)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(failed.user_profile_name, None);
    assert!(
        failed.reason.contains("does not exist"),
        "{}",
        failed.reason
    );
    local.world.stop().await;
}
