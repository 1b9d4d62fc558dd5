//! idle-shutdown against the local AWS world: the Studio simulator (apps seeded with past timestamps), moto's
//! EventBridge (events read back through a rule into SQS) and DynamoDB (the idempotency table). A dry run changes
//! nothing; an idle GPU app is warned, then stopped after the grace period; fresh activity keeps an app and removes
//! its warning; space apps are stopped with SpaceName and built-in idle shutdown is respected; throttling and 5xx
//! faults neither lose nor double an app; three overlapping sweeps warn and stop each app once; and the real binary
//! sweeps with the template's environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use idle_shutdown::adapters::dynamodb::DynamoTables;
use idle_shutdown::adapters::sagemaker::SageMakerStudio;
use idle_shutdown::adapters::sqs::SqsQueues;
use idle_shutdown::config::Config;
use idle_shutdown::decision::{KEEP_ALIVE_TAG, WARNING_TAG};
use idle_shutdown::handler::{Handler, Outcome, Ports};
use idle_shutdown::report::SweepReport;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::Context;
use serde_json::json;
use studio_ops_shared::aws::{retry_config, timeout_config};
use studio_ops_shared::config::{AwsClientSettings, Env};
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::events::suite::{
    AppIdleWarning, AppStopped, IdleSweepCompleted, SpendDigest, SuiteEvent, TeamDigest,
};
use studio_ops_shared::idempotency::DynamoIdempotencyStore;
use studio_ops_shared::prices::{Component, PriceTable};
use studio_ops_shared::publisher::EventBridgePublisher;
use studio_ops_shared::{Deadline, ErrorClass, Failure};
use studio_ops_tests::bench::scale::{
    SweepScale, decorate_for_sweep, expected_actions, over_budget, request_budget, seed_request,
};
use studio_ops_tests::sim::admin::{
    ActivityKind, ActivityRequest, AppState, SeedApp, SeedDomain, SeedRequest, SeedSpace,
    SeedUserProfile, StateDump,
};
use studio_ops_tests::sim::{KnobsPatch, RateLimit};
use studio_ops_tests::sweep_state;
use studio_ops_tests::world::{World, WorldConfig, fixture};

type IdleShutdown =
    Handler<SageMakerStudio, EventBridgePublisher, DynamoIdempotencyStore, DynamoTables, SqsQueues>;

/// One local world with a queue that receives every suite event from moto's bus.
struct Local {
    world: World,
    sagemaker: aws_sdk_sagemaker::Client,
    events_queue: String,
}

/// The SDK behaviour the function has in production (5 attempts, backoff, timeouts), pointed at a local endpoint.
fn production_like(sdk: &SdkConfig) -> SdkConfig {
    // The template's budgets (STUDIO_OPS_AWS_ATTEMPT_TIMEOUT_SECONDS 10, ..._OPERATION_TIMEOUT_SECONDS 60): an attempt
    // the client gives up on while the simulator, starved of CPU, still carries it out would lose its answer.
    let settings = AwsClientSettings {
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(60),
        ..AwsClientSettings::default()
    };
    sdk.to_builder()
        .retry_config(retry_config(&settings))
        .timeout_config(timeout_config(&settings))
        .build()
}

fn ago(minutes: i64) -> Timestamp {
    Timestamp::now() - SignedDuration::from_mins(minutes)
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

impl Local {
    async fn start() -> Local {
        Self::start_with(WorldConfig::default()).await
    }

    async fn start_with(cfg: WorldConfig) -> Local {
        let world = World::start(cfg).await.unwrap();
        let events_queue = world.tap_suite_bus("idle-shutdown-events").await.unwrap();
        let sagemaker = aws_sdk_sagemaker::Client::new(world.sim_sdk());
        Local {
            world,
            sagemaker,
            events_queue,
        }
    }

    fn domain(&self) -> String {
        self.world.names.domain_id.clone()
    }

    /// The handler with adapters pointed at the local world, as `main` builds it.
    fn handler(&self, extra: &[(&str, &str)]) -> IdleShutdown {
        let mut vars: HashMap<String, String> = [
            ("STUDIO_OPS_EVENT_BUS", self.world.names.event_bus.as_str()),
            (
                "STUDIO_OPS_IDEMPOTENCY_TABLE",
                self.world.names.idempotency_table.as_str(),
            ),
            ("STUDIO_OPS_DOMAIN_IDS", self.world.names.domain_id.as_str()),
            (
                "STUDIO_OPS_IDLE_STATE_TABLE",
                self.world.names.idle_state_table.as_str(),
            ),
            (
                "STUDIO_OPS_SPEND_TABLE",
                self.world.names.spend_table.as_str(),
            ),
            ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND", "100"),
            ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_BURST", "100"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_env(&Env::new(&vars)).unwrap();
        let prices =
            PriceTable::for_region(Component::Studio, "us-east-1", &config.price_overrides)
                .unwrap();
        let moto = production_like(self.world.moto_sdk());
        let sim = production_like(self.world.sim_sdk());
        let ports = Ports {
            studio: SageMakerStudio::new(aws_sdk_sagemaker::Client::new(&sim), config.rate_limit),
            publisher: EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(&moto),
                &self.world.names.event_bus,
            ),
            idempotency: DynamoIdempotencyStore::new(
                aws_sdk_dynamodb::Client::new(&moto),
                &self.world.names.idempotency_table,
                "idle-shutdown",
                config.suite.idempotency_ttl,
            ),
            state: self.state_store(),
            queues: SqsQueues::new(aws_sdk_sqs::Client::new(&moto)),
        };
        Handler::new(config, prices, ports)
    }

    /// The sweep-state table, through the function's own adapter.
    fn state_store(&self) -> DynamoTables {
        sweep_state::store(&self.world)
    }

    /// When the sweep state says the owner of `app_name` was warned.
    async fn warning_of(&self, app_name: &str) -> Option<Timestamp> {
        let app = self.app(app_name).await;
        let warnings = sweep_state::warnings(&self.world, std::slice::from_ref(&app))
            .await
            .unwrap();
        warnings.get(&sweep_state::key_of(&app)).copied()
    }

    async fn seed(&self, req: SeedRequest) {
        self.world.sim().admin().seed(&req).await.unwrap();
    }

    async fn state(&self) -> StateDump {
        self.world.sim().admin().state().await.unwrap()
    }

    async fn app(&self, name: &str) -> AppState {
        self.state()
            .await
            .apps
            .into_iter()
            .find(|a| a.app_name == name)
            .unwrap()
    }

    /// Backdates (or sets) an app's warning in the sweep state, as if the warning went out `minutes` ago.
    async fn warned_ago(&self, app_name: &str, minutes: i64) {
        let app = self.app(app_name).await;
        self.warned_at(&app, ago(minutes)).await;
    }

    async fn warned_at(&self, app: &AppState, at: Timestamp) {
        sweep_state::warn_at(&self.world, app, at).await.unwrap();
    }

    async fn tag(&self, arn: &str, key: &str, value: &str) {
        self.sagemaker
            .add_tags()
            .resource_arn(arn)
            .tags(
                aws_sdk_sagemaker::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
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

fn profile(domain: &str, name: &str) -> SeedUserProfile {
    SeedUserProfile {
        domain_id: domain.into(),
        user_profile_name: name.into(),
        ..Default::default()
    }
}

/// A user-profile app created `created` minutes ago whose last health check was a minute ago and whose last real
/// activity was `active` minutes ago (`None`: the control plane wrote the health-check time there, so no evidence).
fn user_app(
    domain: &str,
    user: &str,
    app_type: &str,
    name: &str,
    instance: &str,
    created: i64,
    active: Option<i64>,
) -> SeedApp {
    SeedApp {
        domain_id: domain.into(),
        user_profile_name: Some(user.into()),
        app_type: app_type.into(),
        app_name: Some(name.into()),
        instance_type: Some(instance.into()),
        creation_time: Some(ago(created)),
        last_health_check: Some(ago(1)),
        last_user_activity: Some(active.map_or_else(|| ago(1), ago)),
        ..Default::default()
    }
}

fn warnings(events: &[SuiteEvent]) -> Vec<&AppIdleWarning> {
    events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::AppIdleWarning(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn stops(events: &[SuiteEvent]) -> Vec<&AppStopped> {
    events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::AppStopped(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Skip counts by reason, as a report has them.
fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn summaries(events: &[SuiteEvent]) -> Vec<&IdleSweepCompleted> {
    events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::IdleSweepCompleted(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Every scanned app is in exactly one bucket of the answer.
fn assert_balanced(report: &SweepReport) {
    let skipped: u32 = report.skipped.values().sum();
    let sum = skipped + report.warned + report.stopped + report.failed + report.not_reached;
    assert_eq!(report.scanned, sum, "{report:#?}");
}

/// The report of a sweep that ran (an already-running answer fails the test).
fn swept(outcome: Outcome) -> SweepReport {
    match outcome {
        Outcome::Swept(report) => report,
        other => panic!("expected a sweep report: {other:?}"),
    }
}

/// A small Studio: a GPU app idle for 90 min, one warned 31 min ago, a busy CPU app, the free JupyterServer, a
/// Pending app, and an idle space app.
async fn seed_mixed(local: &Local) {
    let d = local.domain();
    local
        .seed(SeedRequest {
            user_profiles: vec![profile(&d, "ana"), profile(&d, "bob")],
            spaces: vec![SeedSpace {
                domain_id: d.clone(),
                space_name: "ana-lab".into(),
                owner_user_profile_name: Some("ana".into()),
                sharing_type: Some("Private".into()),
                app_type: Some("JupyterLab".into()),
                ..Default::default()
            }],
            apps: vec![
                user_app(
                    &d,
                    "ana",
                    "KernelGateway",
                    "idle-gpu",
                    "ml.g5.xlarge",
                    600,
                    Some(90),
                ),
                user_app(
                    &d,
                    "ana",
                    "KernelGateway",
                    "warned-gpu",
                    "ml.g4dn.xlarge",
                    600,
                    Some(120),
                ),
                user_app(
                    &d,
                    "bob",
                    "KernelGateway",
                    "busy-cpu",
                    "ml.t3.medium",
                    600,
                    Some(5),
                ),
                SeedApp {
                    instance_type: Some("system".into()),
                    ..user_app(&d, "bob", "JupyterServer", "default", "system", 600, None)
                },
                SeedApp {
                    status: Some("Pending".into()),
                    ..user_app(
                        &d,
                        "bob",
                        "KernelGateway",
                        "starting",
                        "ml.t3.medium",
                        1,
                        None,
                    )
                },
                SeedApp {
                    user_profile_name: None,
                    space_name: Some("ana-lab".into()),
                    ..user_app(&d, "", "JupyterLab", "default", "ml.g5.xlarge", 300, None)
                },
            ],
            ..Default::default()
        })
        .await;
    local.warned_ago("warned-gpu", 31).await;
}

#[tokio::test]
async fn a_dry_run_reports_what_it_would_do_and_changes_nothing() {
    let local = Local::start().await;
    seed_mixed(&local).await;
    let admin = local.world.sim().admin();
    let before = local.state().await;
    admin.reset_stats().await.unwrap();
    let h = local.handler(&[]);

    let out = swept(
        h.handle(
            fixture("idle-shutdown/manual-dry-run.json").unwrap(),
            context(300),
        )
        .await
        .unwrap(),
    );
    assert!(out.dry_run);
    assert_eq!(out.scanned, 6);
    assert_balanced(&out);
    assert_eq!((out.warned, out.stopped), (2, 1));
    // What a stop would save: the warned ml.g4dn.xlarge, from the price table.
    assert_eq!(out.estimated_hourly_savings_usd, 0.7364);
    let outcomes: BTreeMap<String, String> = out
        .apps
        .iter()
        .map(|a| (a.app_name.clone(), a.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes.get("idle-gpu").map(String::as_str),
        Some("would-warn")
    );
    assert_eq!(
        outcomes.get("warned-gpu").map(String::as_str),
        Some("would-stop")
    );
    assert_eq!(
        outcomes.get("default").map(String::as_str),
        Some("would-warn")
    );
    assert_eq!(
        out.skipped,
        counts(&[("active", 1), ("free-app", 1), ("status-pending", 1)])
    );

    // Nothing changed: same apps, statuses and tags; no write call reached the simulator.
    assert_eq!(local.state().await, before);
    let stats = admin.stats().await.unwrap();
    for op in ["AddTags", "DeleteTags", "DeleteApp"] {
        assert_eq!(stats.calls_of(op), 0, "{op}: {stats:?}");
    }
    // One DescribeApp per InService billable app: not the free one, not the Pending one.
    assert_eq!(stats.calls_of("DescribeApp"), 4);
    let events = local.events().await;
    assert_eq!(events.len(), 1, "only the summary: {events:?}");
    assert!(summaries(&events)[0].dry_run);
    local.world.stop().await;
}

#[tokio::test]
async fn an_idle_gpu_app_is_warned_then_stopped_after_the_grace_period() {
    let local = Local::start().await;
    let d = local.domain();
    local
        .seed(SeedRequest {
            user_profiles: vec![profile(&d, "ana")],
            // Never really used: its activity timestamp is the health check's.
            apps: vec![user_app(
                &d,
                "ana",
                "KernelGateway",
                "gpu",
                "ml.g5.xlarge",
                180,
                None,
            )],
            ..Default::default()
        })
        .await;
    let h = local.handler(&[]);

    let first = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_eq!(first.warned, 1, "{first:#?}");
    let warned_at = local.warning_of("gpu").await.unwrap();
    assert!(local.app("gpu").await.tags.is_empty(), "no tag is written");
    let events = local.events().await;
    let w = warnings(&events);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].user_profile_name.as_deref(), w[0].app_name.as_str()),
        (Some("ana"), "gpu")
    );
    assert_eq!(w[0].instance_type, "ml.g5.xlarge");
    assert_eq!(w[0].hourly_cost_usd, Some(1.41));
    assert!(
        (179..=181).contains(&w[0].idle_minutes),
        "{}",
        w[0].idle_minutes
    );
    assert!(
        w[0].reason.contains("health check, not a person"),
        "{}",
        w[0].reason
    );
    let stops_at: Timestamp = w[0].stops_at.parse().unwrap();
    let warned = warned_at;
    assert_eq!(
        stops_at.duration_since(warned),
        SignedDuration::from_mins(30)
    );

    // Within the grace period: nothing more happens, and no second warning.
    let second = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_eq!(
        second.skipped.get("awaiting-grace"),
        Some(&1),
        "{second:#?}"
    );
    assert!(warnings(&local.events().await).is_empty());
    assert_eq!(local.app("gpu").await.status, "InService");

    // The grace period is over (the warning backdated rather than waiting): the app is stopped.
    local.warned_ago("gpu", 31).await;
    let third = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_eq!(third.stopped, 1, "{third:#?}");
    assert_eq!(third.estimated_hourly_savings_usd, 1.41);
    assert_eq!(local.app("gpu").await.status, "Deleted");
    let events = local.events().await;
    let s = stops(&events);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].app_name.as_str(), s[0].hourly_cost_usd),
        ("gpu", Some(1.41))
    );
    let summary = summaries(&events)[0];
    assert_eq!(
        (summary.stopped, summary.estimated_hourly_savings_usd),
        (1, 1.41)
    );
    // The stop is kept for the weekly digests, in DynamoDB.
    let kept = {
        use idle_shutdown::ports::SpendLedger;
        local
            .state_store()
            .stops(&d, &idle_shutdown::ledger::month_of(Timestamp::now()))
            .await
            .unwrap()
    };
    assert_eq!(
        kept.iter()
            .map(|s| (s.app_name.as_str(), s.cause.as_str(), s.account.key()))
            .collect::<Vec<_>>(),
        [("gpu", "idle", "user/ana".to_string())]
    );

    // Later sweeps leave the deleted app alone.
    let fourth = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_eq!(
        fourth.skipped.get("status-deleted"),
        Some(&1),
        "{fourth:#?}"
    );
    assert!(stops(&local.events().await).is_empty());
    local.world.stop().await;
}

#[tokio::test]
async fn fresh_activity_keeps_the_app_running_and_removes_its_warning() {
    let local = Local::start().await;
    let d = local.domain();
    local
        .seed(SeedRequest {
            user_profiles: vec![profile(&d, "ana"), profile(&d, "bob")],
            apps: vec![
                user_app(
                    &d,
                    "ana",
                    "KernelGateway",
                    "gpu",
                    "ml.g5.xlarge",
                    600,
                    Some(120),
                ),
                user_app(
                    &d,
                    "bob",
                    "RSessionGateway",
                    "rstudio",
                    "ml.m5.xlarge",
                    600,
                    Some(400),
                ),
            ],
            ..Default::default()
        })
        .await;
    local.warned_ago("gpu", 45).await;
    local.warned_ago("rstudio", 45).await;
    // Ana works in her app again; Bob asks for a day by tagging his user profile.
    local
        .world
        .sim()
        .admin()
        .activity(&ActivityRequest {
            domain_id: d.clone(),
            user_profile_name: Some("ana".into()),
            app_type: "KernelGateway".into(),
            app_name: Some("gpu".into()),
            kind: ActivityKind::UserActivity,
            ..Default::default()
        })
        .await
        .unwrap();
    let bob = local
        .state()
        .await
        .user_profiles
        .into_iter()
        .find(|p| p.user_profile_name == "bob")
        .unwrap();
    let until = (Timestamp::now() + SignedDuration::from_hours(24))
        .round(jiff::Unit::Second)
        .unwrap();
    local
        .tag(&bob.arn, KEEP_ALIVE_TAG, &until.to_string())
        .await;

    let out = swept(
        local
            .handler(&[])
            .handle(json!({}), context(300))
            .await
            .unwrap(),
    );
    assert_eq!((out.stopped, out.warnings_cleared), (0, 2), "{out:#?}");
    assert_eq!(out.skipped, counts(&[("active", 1), ("keep-alive", 1)]));
    for app in ["gpu", "rstudio"] {
        let state = local.app(app).await;
        assert_eq!(state.status, "InService");
        assert_eq!(local.warning_of(app).await, None, "{app}: {state:?}");
    }
    let reasons: Vec<&str> = out.apps.iter().map(|a| a.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("keep-alive tag on the user profile")),
        "{reasons:?}"
    );
    local.world.stop().await;
}

#[tokio::test]
async fn space_apps_are_stopped_with_space_name_and_built_in_idle_shutdown_is_respected() {
    let local = Local::start().await;
    let d = local.domain();
    // A second domain has Studio's built-in idle shutdown on for JupyterLab.
    let auto = "d-autoidle0001";
    local
        .seed(SeedRequest {
            domains: vec![SeedDomain {
                domain_id: Some(auto.into()),
                domain_name: "auto-idle".into(),
                default_user_settings: Some(json!({
                    "ExecutionRole": "arn:aws:iam::123456789012:role/studio-exec",
                    "JupyterLabAppSettings": {"AppLifecycleManagement": {"IdleSettings": {
                        "LifecycleManagement": "ENABLED", "IdleTimeoutInMinutes": 120}}}
                })),
                ..Default::default()
            }],
            user_profiles: vec![profile(&d, "ana"), profile(auto, "carla")],
            spaces: vec![
                SeedSpace {
                    domain_id: d.clone(),
                    space_name: "ana-lab".into(),
                    owner_user_profile_name: Some("ana".into()),
                    sharing_type: Some("Private".into()),
                    app_type: Some("JupyterLab".into()),
                    ..Default::default()
                },
                SeedSpace {
                    domain_id: d.clone(),
                    space_name: "team-editor".into(),
                    sharing_type: Some("Shared".into()),
                    app_type: Some("CodeEditor".into()),
                    ..Default::default()
                },
                SeedSpace {
                    domain_id: auto.into(),
                    space_name: "carla-lab".into(),
                    owner_user_profile_name: Some("carla".into()),
                    sharing_type: Some("Private".into()),
                    app_type: Some("JupyterLab".into()),
                    ..Default::default()
                },
            ],
            apps: ["ana-lab", "team-editor", "carla-lab"]
                .iter()
                .map(|space| {
                    let (domain, app_type) = match *space {
                        "team-editor" => (d.as_str(), "CodeEditor"),
                        "carla-lab" => (auto, "JupyterLab"),
                        _ => (d.as_str(), "JupyterLab"),
                    };
                    SeedApp {
                        user_profile_name: None,
                        space_name: Some(space.to_string()),
                        ..user_app(
                            domain,
                            "",
                            app_type,
                            "default",
                            "ml.g5.xlarge",
                            300,
                            Some(200),
                        )
                    }
                })
                .collect(),
        })
        .await;
    let domains = format!("{d},{auto}");
    let h = local.handler(&[("STUDIO_OPS_DOMAIN_IDS", domains.as_str())]);

    let first = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_eq!(first.warned, 2, "{first:#?}");
    assert_eq!(
        first.skipped.get("builtin-idle-shutdown"),
        Some(&1),
        "{first:#?}"
    );
    let events = local.events().await;
    let mut owners: Vec<(Option<String>, Option<String>)> = warnings(&events)
        .iter()
        .map(|w| (w.space_name.clone(), w.user_profile_name.clone()))
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        vec![
            (Some("ana-lab".into()), Some("ana".into())),
            (Some("team-editor".into()), None)
        ]
    );

    for space in ["ana-lab", "team-editor"] {
        let app = local
            .state()
            .await
            .apps
            .into_iter()
            .find(|a| a.space_name.as_deref() == Some(space))
            .unwrap();
        local.warned_at(&app, ago(31)).await;
    }
    let second = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_eq!(second.stopped, 2, "{second:#?}");
    let state = local.state().await;
    for app in &state.apps {
        let expected = if app.domain_id == auto {
            "InService"
        } else {
            "Deleted"
        };
        assert_eq!(app.status, expected, "{app:?}");
        assert!(app.space_name.is_some() && app.user_profile_name.is_none());
    }
    let events = local.events().await;
    let mut stopped: Vec<String> = stops(&events)
        .iter()
        .filter_map(|s| s.space_name.clone())
        .collect();
    stopped.sort();
    assert_eq!(stopped, vec!["ana-lab", "team-editor"]);
    local.world.stop().await;
}

/// Seeds `n` GPU apps for `users` users: even ones idle and never warned, odd ones warned 31 minutes ago.
async fn seed_fleet(local: &Local, n: usize, users: usize) -> (BTreeSet<String>, BTreeSet<String>) {
    let d = local.domain();
    let names: Vec<String> = (0..users).map(|u| format!("user{u:02}")).collect();
    local
        .seed(SeedRequest {
            user_profiles: names.iter().map(|u| profile(&d, u)).collect(),
            apps: (0..n)
                .map(|i| {
                    user_app(
                        &d,
                        &names[i % users],
                        "KernelGateway",
                        &format!("kg{i:03}"),
                        "ml.g5.xlarge",
                        600,
                        Some(120),
                    )
                })
                .collect(),
            ..Default::default()
        })
        .await;
    let (mut to_warn, mut to_stop) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..n {
        let name = format!("kg{i:03}");
        if i % 2 == 1 {
            local.warned_ago(&name, 31).await;
            to_stop.insert(name);
        } else {
            to_warn.insert(name);
        }
    }
    (to_warn, to_stop)
}

#[tokio::test]
async fn throttling_and_server_faults_neither_lose_nor_double_an_app() {
    let local = Local::start().await;
    let (to_warn, to_stop) = seed_fleet(&local, 24, 6).await;
    let admin = local.world.sim().admin();
    let limit = |rps: f64, burst: f64| RateLimit { rps, burst };
    admin
        .set_knobs(&KnobsPatch {
            latency_ms: Some(2),
            rate_limits: Some(BTreeMap::from([
                ("DescribeApp".to_string(), limit(15.0, 3.0)),
                ("ListTags".to_string(), limit(15.0, 3.0)),
                ("DeleteApp".to_string(), limit(5.0, 2.0)),
            ])),
            fault_rate: Some(0.15),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    // The client keeps below DescribeApp's and ListTags' quota, as an admin sets it (docs/idle-shutdown.md): a client
    // far above it, on a loaded machine, can have the same app throttled out of every sweep (seen: one app in 8
    // sweeps) - a starvation issue 14 takes up. DeleteApp's lower quota and the faults still throttle and fail calls.
    let h = local.handler(&[
        ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND", "12"),
        ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_BURST", "3"),
    ]);
    let mut all_events = Vec::new();
    let mut sweeps = 0;
    let mut reports = Vec::new();
    loop {
        sweeps += 1;
        match h.handle(json!({}), context(300)).await {
            Ok(out) => {
                let out = swept(out);
                assert_balanced(&out);
                assert_eq!(out.scanned, 24, "no app is lost from the count: {out:#?}");
                reports.push(out);
            }
            // A ListApps that still fails after the SDK's retries fails the sweep; Lambda would retry it.
            Err(e) => assert_eq!(e.class(), ErrorClass::Retryable, "{e}"),
        }
        all_events.extend(local.events().await);
        let warned: BTreeSet<String> = warnings(&all_events)
            .iter()
            .map(|w| w.app_name.clone())
            .collect();
        let stopped: BTreeSet<String> = stops(&all_events)
            .iter()
            .map(|s| s.app_name.clone())
            .collect();
        let mut tagged = 0;
        for name in &to_warn {
            tagged += usize::from(local.warning_of(name).await.is_some());
        }
        if warned == to_warn && stopped == to_stop && tagged == to_warn.len() {
            break;
        }
        assert!(
            sweeps < 8,
            "not converged after {sweeps} sweeps: warned {warned:?}, stopped {stopped:?}; reports: {reports:#?}"
        );
    }
    // Exactly once each, however many sweeps it took.
    assert_eq!(
        warnings(&all_events).len(),
        to_warn.len(),
        "a warning was sent twice"
    );
    assert_eq!(
        stops(&all_events).len(),
        to_stop.len(),
        "a stop was reported twice"
    );
    let state = local.state().await;
    for app in &state.apps {
        let expected = if to_stop.contains(&app.app_name) {
            "Deleted"
        } else {
            "InService"
        };
        assert_eq!(app.status, expected, "{}", app.app_name);
        if to_warn.contains(&app.app_name) {
            assert!(
                local.warning_of(&app.app_name).await.is_some(),
                "{} lost its warning",
                app.app_name
            );
        }
    }
    let stats = admin.stats().await.unwrap();
    assert!(
        stats.total_throttled() > 0 && stats.faults_injected > 0,
        "the test must throttle and fault: {stats:?}"
    );
    local.world.stop().await;
}

/// Issue 14's request budget on a seeded world of the benchmark's mix (types, states, activity, exemptions on apps,
/// spaces and profiles, old warning tags): the first sweep, which migrates the tags, and the next one, which keeps
/// quiet apps on the sweep state alone, each stay within `request_budget` for every operation, and make no
/// `AddTags` at all.
#[tokio::test]
async fn a_sweep_stays_within_its_request_budget() {
    let local = Local::start().await;
    let admin = local.world.sim().admin();
    admin.reset().await.unwrap();
    let scale = SweepScale {
        user_profiles: 40,
        spaces: 60,
        apps: 240,
        latency_ms: 0,
        ..SweepScale::default()
    };
    let now = Timestamp::now();
    let mut seed = seed_request(&local.domain(), &scale, now);
    decorate_for_sweep(&mut seed, now);
    // Old warning tags still in their grace period on every third tagged app (the others' are past it: stops).
    let mut in_grace = Vec::new();
    for a in seed
        .apps
        .iter_mut()
        .filter(|a| a.tags.contains_key(WARNING_TAG))
        .step_by(3)
    {
        a.tags.insert(
            WARNING_TAG.to_string(),
            (now - SignedDuration::from_mins(10)).to_string(),
        );
        if a.status.as_deref() == Some("InService") && a.app_type != "JupyterServer" {
            in_grace.push((
                a.user_profile_name.clone(),
                a.space_name.clone(),
                a.app_type.clone(),
                a.app_name.clone().unwrap_or_default(),
            ));
        }
    }
    local.seed(seed.clone()).await;
    let expected = expected_actions(&seed, now);
    assert!(
        !expected.stop.is_empty() && !expected.warn.is_empty() && !in_grace.is_empty(),
        "{expected:?}"
    );
    let budget = request_budget(&seed, now, 100);
    let h = local.handler(&[]);

    admin.reset_stats().await.unwrap();
    let first = swept(h.handle(json!({}), context(300)).await.unwrap());
    let calls = admin.stats().await.unwrap().calls;
    assert_eq!(
        (first.stopped as usize, first.warned as usize, first.failed),
        (expected.stop.len(), expected.warn.len(), 0),
        "{first:#?}"
    );
    let over = over_budget(&calls, &budget);
    assert!(
        over.is_empty(),
        "first sweep over budget: {over:?}\n{calls:?}"
    );
    // The migration: an old tag still in its grace period is honoured (no second warning, no stop yet), moved to
    // the sweep state with its time, and removed from the app; one past its grace stopped the app.
    assert_eq!(
        calls.get("DeleteTags").copied().unwrap_or(0),
        in_grace.len() as u64,
        "{calls:?}"
    );
    let apps: Vec<AppState> = local
        .state()
        .await
        .apps
        .into_iter()
        .filter(|a| {
            in_grace.contains(&(
                a.user_profile_name.clone(),
                a.space_name.clone(),
                a.app_type.clone(),
                a.app_name.clone(),
            ))
        })
        .collect();
    assert_eq!(apps.len(), in_grace.len());
    let recorded = sweep_state::warnings(&local.world, &apps).await.unwrap();
    let tagged_at = (now - SignedDuration::from_mins(10)).as_second();
    for app in &apps {
        // The table keeps whole seconds.
        let at = recorded
            .get(&sweep_state::key_of(app))
            .map(|t| t.as_second());
        assert!(
            at.is_some_and(|at| at.abs_diff(tagged_at) <= 1),
            "{at:?} vs {tagged_at}: {app:?}"
        );
    }
    let still_tagged: Vec<String> = local
        .state()
        .await
        .apps
        .into_iter()
        .filter(|a| {
            a.status == "InService"
                && a.app_type != "JupyterServer"
                && a.tags.contains_key(WARNING_TAG)
        })
        .map(|a| a.app_name)
        .collect();
    assert!(still_tagged.is_empty(), "{still_tagged:?}");

    // The next sweep, a minute later in the team's day: the tags are gone, quiet apps cost no call, and only the
    // apps still idle are read with their owners.
    admin.reset_stats().await.unwrap();
    let second = swept(h.handle(json!({}), context(300)).await.unwrap());
    let calls = admin.stats().await.unwrap().calls;
    let over = over_budget(&calls, &request_budget(&seed, Timestamp::now(), 100));
    assert!(
        over.is_empty(),
        "second sweep over budget: {over:?}\n{calls:?}"
    );
    let quiet = second.skipped.get("quiet").copied().unwrap_or(0);
    assert!(quiet > 0, "{second:#?}");
    assert_eq!(
        calls.get("DescribeApp").copied().unwrap_or(0),
        budget["DescribeApp"] - u64::from(quiet) - first.stopped as u64,
        "one DescribeApp per InService billable app that is neither quiet nor stopped: {calls:?}"
    );
    for op in ["AddTags", "DeleteTags", "DeleteApp"] {
        assert_eq!(
            calls.get(op),
            None,
            "{op} in a sweep that has nothing new: {calls:?}"
        );
    }
    assert_eq!((second.warned, second.stopped), (0, 0), "{second:#?}");

    // The spend meter: every running billable app listed is metered by every sweep, examined or not, with at most
    // one conditional put each (the first sweep may close an earlier month of older apps too); the ledger answers
    // the month's report, and its per-account lines add up to its total.
    let billable = budget["DescribeApp"];
    assert_eq!(u64::from(first.metered), billable, "{first:#?}");
    assert_eq!(
        u64::from(second.metered),
        billable - first.stopped as u64,
        "{second:#?}"
    );
    assert!(
        u64::from(second.ledger_writes) <= u64::from(second.metered)
            && second.ledger_writes_failed == 0,
        "{second:#?}"
    );
    // The sweep read the month back (its projection of the records): the apps the first sweep stopped still count.
    assert!(
        second.month_to_date_usd >= first.month_to_date_usd && first.month_to_date_usd > 0.0,
        "{} then {}",
        first.month_to_date_usd,
        second.month_to_date_usd
    );
    let Outcome::Spend(spend) = h
        .handle(json!({"report": "spend"}), context(60))
        .await
        .unwrap()
    else {
        panic!("not a spend report")
    };
    assert!(
        spend.total.hours > 0.0 && spend.total.usd > 0.0,
        "{spend:#?}"
    );
    let lines: f64 = spend
        .users
        .iter()
        .chain(&spend.spaces)
        .map(|l| l.spend.total.usd)
        .sum();
    assert!(
        (lines - spend.total.usd).abs() < 0.01 * spend.users.len().max(1) as f64,
        "{lines} vs {spend:#?}"
    );
    assert_eq!(spend.domains.len(), 1);
    assert!(spend.failed_domains.is_empty());
    local.world.stop().await;
}

#[tokio::test]
async fn the_client_side_rate_limit_keeps_a_sweep_under_the_quota() {
    let local = Local::start().await;
    seed_fleet(&local, 30, 5).await;
    let admin = local.world.sim().admin();
    admin
        .set_knobs(&KnobsPatch {
            rate_limits: Some(BTreeMap::from([(
                "*".to_string(),
                RateLimit {
                    rps: 25.0,
                    burst: 10.0,
                },
            )])),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    admin.reset_stats().await.unwrap();
    let h = local.handler(&[
        ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND", "15"),
        ("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_BURST", "5"),
        ("STUDIO_OPS_IDLE_CONCURRENCY", "16"),
    ]);
    let out = swept(
        h.handle(json!({"dryRun": true}), context(300))
            .await
            .unwrap(),
    );
    assert_eq!((out.warned, out.stopped), (15, 15), "{out:#?}");
    let stats = admin.stats().await.unwrap();
    assert_eq!(stats.total_throttled(), 0, "{stats:?}");
    assert_eq!(stats.calls_of("DescribeApp"), 30);
    local.world.stop().await;
}

/// Without the lease (its item lapsed, or a second stack's function sweeps the same domain), overlapping sweeps
/// still warn and stop each app once: the per-app claims and SageMaker's own states are the second line.
#[tokio::test]
async fn three_overlapping_sweeps_without_the_lease_warn_and_stop_each_app_once() {
    let local = Local::start().await;
    let (to_warn, to_stop) = seed_fleet(&local, 12, 4).await;
    let admin = local.world.sim().admin();
    // Slow calls and a Deleting phase make the sweeps overlap and collide on DeleteApp.
    admin
        .set_knobs(&KnobsPatch {
            latency_ms: Some(15),
            latency_jitter_ms: Some(15),
            app_deleting_ms: Some(2_000),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let handlers = [local.handler(&[]), local.handler(&[]), local.handler(&[])];
    let deadline = Deadline::after(Duration::from_secs(300));
    let request = RunRequest::default();
    let outs = futures::future::join_all(
        handlers
            .iter()
            .map(|h| h.sweep(&request, Timestamp::now(), deadline)),
    )
    .await;
    let outs: Vec<SweepReport> = outs.into_iter().map(|r| r.unwrap()).collect();
    for out in &outs {
        assert_balanced(out);
    }
    let stopped: u32 = outs.iter().map(|o| o.stopped).sum();
    let warned: u32 = outs.iter().map(|o| o.warned).sum();
    assert_eq!(stopped as usize, to_stop.len(), "{outs:#?}");
    assert_eq!(warned as usize, to_warn.len(), "{outs:#?}");
    // The sweeps really collided: the losers met a Deleting app or another sweep's warning claim.
    let collisions: u32 = outs
        .iter()
        .flat_map(|o| o.skipped.iter())
        .filter(|(k, _)| {
            [
                "delete-in-use",
                "status-deleting",
                "already-gone",
                "warning-in-progress-elsewhere",
                "already-warned",
            ]
            .contains(&k.as_str())
        })
        .map(|(_, v)| *v)
        .sum();
    assert!(collisions > 0, "{outs:#?}");

    let events = local.events().await;
    let mut warned: Vec<String> = warnings(&events)
        .iter()
        .map(|w| w.app_name.clone())
        .collect();
    let mut stopped: Vec<String> = stops(&events).iter().map(|s| s.app_name.clone()).collect();
    warned.sort();
    stopped.sort();
    assert_eq!(warned, to_warn.iter().cloned().collect::<Vec<_>>());
    assert_eq!(stopped, to_stop.iter().cloned().collect::<Vec<_>>());
    assert_eq!(summaries(&events).len(), 3);
    let state = local.state().await;
    for app in &state.apps {
        let expected = if to_stop.contains(&app.app_name) {
            ["Deleting", "Deleted"].as_slice()
        } else {
            ["InService"].as_slice()
        };
        assert!(
            expected.contains(&app.status.as_str()),
            "{} is {}",
            app.app_name,
            app.status
        );
    }
    local.world.stop().await;
}

async fn plant_lease(local: &Local, expires: Timestamp) {
    local
        .world
        .plant_lease("idle-shutdown", expires)
        .await
        .unwrap();
}

#[tokio::test]
async fn overlapping_sweeps_one_runs_the_others_answer_already_running() {
    let local = Local::start().await;
    let (to_warn, to_stop) = seed_fleet(&local, 6, 3).await;
    // Slow calls: the first sweep is still running when the others start.
    local
        .world
        .sim()
        .admin()
        .set_knobs(&KnobsPatch {
            latency_ms: Some(40),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let handlers = [local.handler(&[]), local.handler(&[]), local.handler(&[])];
    let first = handlers[0].handle(json!({}), context(300));
    let later = async {
        // Start the others once the first sweep holds the lease.
        let ddb = aws_sdk_dynamodb::Client::new(local.world.moto_sdk());
        for _ in 0..500 {
            let held = ddb
                .get_item()
                .table_name(&local.world.names.idempotency_table)
                .key(
                    "id",
                    aws_sdk_dynamodb::types::AttributeValue::S("idle-shutdown#lease".into()),
                )
                .send()
                .await
                .unwrap();
            if held.item().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        futures::future::join(
            handlers[1].handle(json!({}), context(300)),
            handlers[2].handle(json!({}), context(300)),
        )
        .await
    };
    let (first, (second, third)) = futures::future::join(first, later).await;
    let first = swept(first.unwrap());
    assert_balanced(&first);
    assert_eq!(first.warned as usize, to_warn.len(), "{first:#?}");
    assert_eq!(first.stopped as usize, to_stop.len(), "{first:#?}");
    for other in [second.unwrap(), third.unwrap()] {
        assert!(
            matches!(other, Outcome::AlreadyRunning { .. }),
            "{other:#?}"
        );
    }
    let events = local.events().await;
    assert_eq!(
        summaries(&events).len(),
        1,
        "only the sweep that ran reports"
    );
    assert_eq!(warnings(&events).len(), to_warn.len());
    assert_eq!(stops(&events).len(), to_stop.len());
    // The lease was released at the end: the next sweep runs (and finds the warned apps still in grace).
    let next = swept(handlers[1].handle(json!({}), context(300)).await.unwrap());
    assert_balanced(&next);
    local.world.stop().await;
}

#[tokio::test]
async fn a_crashed_sweeps_lease_blocks_until_its_deadline_then_lapses() {
    let local = Local::start().await;
    let (to_warn, _) = seed_fleet(&local, 2, 1).await;
    let h = local.handler(&[]);
    // A sweep that crashed with two minutes of its deadline left: the next sweep does nothing.
    plant_lease(&local, Timestamp::now() + SignedDuration::from_mins(2)).await;
    let blocked = h.handle(json!({}), context(300)).await.unwrap();
    assert!(
        matches!(blocked, Outcome::AlreadyRunning { .. }),
        "{blocked:#?}"
    );
    assert!(local.events().await.is_empty());
    // A dry run needs no lease.
    let preview = swept(
        h.handle(json!({"dryRun": true}), context(300))
            .await
            .unwrap(),
    );
    assert_eq!(preview.warned as usize, to_warn.len(), "{preview:#?}");
    // Its deadline passed: the lease has lapsed and the sweep runs.
    plant_lease(&local, Timestamp::now() - SignedDuration::from_secs(1)).await;
    let ran = swept(h.handle(json!({}), context(300)).await.unwrap());
    assert_balanced(&ran);
    assert_eq!(ran.warned as usize, to_warn.len(), "{ran:#?}");
    local.world.stop().await;
}

#[tokio::test]
async fn the_lambda_binary_sweeps_with_the_templates_environment() {
    let local = Local::start_with(WorldConfig {
        functions: vec!["idle-shutdown".into()],
        ..WorldConfig::default()
    })
    .await;
    let d = local.domain();
    local
        .seed(SeedRequest {
            user_profiles: vec![profile(&d, "ana")],
            apps: vec![
                user_app(
                    &d,
                    "ana",
                    "KernelGateway",
                    "gpu",
                    "ml.g5.xlarge",
                    600,
                    Some(120),
                ),
                user_app(
                    &d,
                    "ana",
                    "KernelGateway",
                    "cpu",
                    "ml.t3.medium",
                    600,
                    Some(10),
                ),
            ],
            ..Default::default()
        })
        .await;
    local.warned_ago("gpu", 31).await;
    // What the schedule sends (`Input: "{}"`).
    let (inv, _) = local
        .world
        .invoke(
            "idle-shutdown",
            fixture("idle-shutdown/scheduler-input.json").unwrap(),
        )
        .await
        .unwrap();
    let answer = inv.outcome.response().unwrap_or_else(|| panic!("{inv:?}"));
    let out =
        swept(serde_json::from_value(answer.clone()).unwrap_or_else(|e| panic!("{e}: {answer:#}")));
    assert_eq!((out.stopped, out.scanned), (1, 2), "{out:#?}");
    assert_eq!(out.estimated_hourly_savings_usd, 1.41);
    assert_eq!(local.app("gpu").await.status, "Deleted");
    // A typo in a manual request is refused as NonRetryable, with nothing done.
    let (inv, _) = local
        .world
        .invoke("idle-shutdown", json!({"dryrun": true}))
        .await
        .unwrap();
    assert_eq!(inv.outcome.error_type(), Some("NonRetryable"));
    assert_eq!(local.app("cpu").await.status, "InService");
    local.world.stop().await;
}

#[tokio::test]
async fn the_ledger_adapter_keeps_its_conditions_over_http() {
    use idle_shutdown::budget::Notice;
    use idle_shutdown::ledger::{Account, KIND_STUDIO_APP, Usage};
    use idle_shutdown::ports::SpendLedger;
    let local = Local::start().await;
    let ledger = local.state_store();
    let domain = local.domain();
    let record = |until: i64| Usage {
        domain_id: domain.clone(),
        month: "2026-12".into(),
        key: "app#user/ana/jupyterlab/default#1796076000".into(),
        kind: KIND_STUDIO_APP.into(),
        account: Account::User("ana".into()),
        space: None,
        app_type: "JupyterLab".into(),
        app_name: "default".into(),
        instance_type: "ml.g5.xlarge".into(),
        created: 1_796_076_000,
        until,
        seconds: until - 1_796_076_000,
        days: BTreeMap::from([("2026-12-01".to_string(), until - 1_796_076_000)]),
        usd_per_hour: Some(1.41),
    };
    // A reading is written once; the same or an older one is refused as a value (false), a later one replaces it.
    assert!(ledger.record(&record(1_796_079_600)).await.unwrap());
    assert!(!ledger.record(&record(1_796_079_600)).await.unwrap());
    assert!(!ledger.record(&record(1_796_077_000)).await.unwrap());
    assert!(ledger.record(&record(1_796_083_200)).await.unwrap());
    let month = ledger.month(&domain, "2026-12", true).await.unwrap();
    assert_eq!(month.usages, vec![record(1_796_083_200)]);
    let projected = ledger.month(&domain, "2026-12", false).await.unwrap();
    assert!(projected.usages[0].days.is_empty());
    assert_eq!(projected.usages[0].until, 1_796_083_200);
    // A notice is claimed once; a claim taken back can be made again; another's claim is not taken back.
    let ana = Account::User("ana".into());
    let at: Timestamp = "2026-12-05T12:00:00Z".parse().unwrap();
    assert!(
        ledger
            .claim_notice(&domain, "2026-12", &ana, Notice::Approaching, at)
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .claim_notice(&domain, "2026-12", &ana, Notice::Approaching, at)
            .await
            .unwrap()
    );
    let later = at + SignedDuration::from_mins(15);
    ledger
        .release_notice(&domain, "2026-12", &ana, Notice::Approaching, later)
        .await
        .unwrap();
    let notices = ledger
        .month(&domain, "2026-12", false)
        .await
        .unwrap()
        .notices;
    assert_eq!(
        notices["user/ana"].approaching_at,
        Some(at),
        "another's claim stays"
    );
    ledger
        .release_notice(&domain, "2026-12", &ana, Notice::Approaching, at)
        .await
        .unwrap();
    assert!(
        ledger
            .claim_notice(&domain, "2026-12", &ana, Notice::Approaching, later)
            .await
            .unwrap()
    );
    local.world.stop().await;
}

/// The weekly digests over HTTP: the ledger's records, a stop and a lagging sweep in moto's DynamoDB (through the
/// adapter), the failure queues' depth from moto's SQS, the claims in the idempotency table, the digests on the
/// suite's bus — and a second delivery of the schedule sends nothing.
#[tokio::test]
async fn the_weekly_digests_go_out_once_over_http() {
    use idle_shutdown::ledger::Account;
    use idle_shutdown::ports::SpendLedger;
    use idle_shutdown::trigger::DigestRequest;
    use idle_shutdown::weekly::{Lag, Stop};
    use studio_ops_shared::Deadline;
    let local = Local::start().await;
    let d = local.domain();
    local
        .seed(SeedRequest {
            user_profiles: vec![profile(&d, "ana")],
            apps: vec![user_app(
                &d,
                "ana",
                "JupyterLab",
                "gpu",
                "ml.g5.xlarge",
                180,
                Some(1),
            )],
            ..Default::default()
        })
        .await;
    let names = local.world.names.clone();
    let h = local.handler(&[
        (
            "STUDIO_OPS_FAILED_INVOCATION_QUEUE_URL",
            names.failed_invocation_queue_url.as_str(),
        ),
        (
            "STUDIO_OPS_DELIVERY_DLQ_URL",
            names.delivery_dlq_url.as_str(),
        ),
    ]);
    swept(h.handle(json!({}), context(300)).await.unwrap());
    let ledger = local.state_store();
    let now = Timestamp::now();
    ledger
        .record_stop(&Stop {
            domain_id: d.clone(),
            account: Account::User("ana".into()),
            space: None,
            app_type: "CodeEditor".into(),
            app_name: "default".into(),
            instance_type: "ml.t3.medium".into(),
            usd_per_hour: Some(0.05),
            at: now.as_second() - 60,
            cause: "idle".into(),
            idle_minutes: 75,
        })
        .await
        .unwrap();
    let lag = Lag {
        at: now.as_second() - 30,
        not_reached: 7,
        behind: 2,
        failed_domains: 0,
    };
    ledger.record_lag(&lag).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(local.world.moto_sdk());
    for body in ["{\"a\":1}", "{\"b\":2}"] {
        sqs.send_message()
            .queue_url(&names.failed_invocation_queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    local.events().await;

    // The week that holds `now`, as the Monday after would send it.
    let monday_after = now + SignedDuration::from_hours(7 * 24);
    let request = DigestRequest {
        digest: "weekly".into(),
        week: None,
        dry_run: false,
        scheduled_time: None,
    };
    let first = h
        .digests(
            &request,
            monday_after,
            Deadline::from_context(&context(60)),
            "run-1",
        )
        .await
        .unwrap();
    assert_eq!((first.sent, first.team.as_str()), (1, "sent"), "{first:#?}");
    let events = local.events().await;
    let user: Vec<&SpendDigest> = events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::SpendDigest(d) => Some(d),
            _ => None,
        })
        .collect();
    let team: Vec<&TeamDigest> = events
        .iter()
        .filter_map(|e| match e {
            SuiteEvent::TeamDigest(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!((user.len(), team.len()), (1, 1), "{events:#?}");
    assert_eq!(user[0].user_profile_name, "ana");
    assert!(user[0].hours > 0.0 && user[0].usd > 0.0, "{:#?}", user[0]);
    assert_eq!(user[0].stopped.len(), 1, "the stop read back from DynamoDB");
    assert_eq!(user[0].stopped[0].instance_type, "ml.t3.medium");
    assert_eq!(
        (team[0].sweeps_behind, team[0].most_apps_not_reached),
        (1, 7),
        "the lag read back"
    );
    assert_eq!(
        (team[0].failed_invocations, team[0].undelivered_events),
        (Some(2), Some(0)),
        "the queues' depth from SQS"
    );
    // The schedule delivers again: the idempotency table remembers both.
    let again = h
        .digests(
            &request,
            monday_after,
            Deadline::from_context(&context(60)),
            "run-1",
        )
        .await
        .unwrap();
    assert_eq!(
        (again.sent, again.already_sent, again.team.as_str()),
        (0, 1, "already-sent")
    );
    assert!(local.events().await.is_empty());
    assert_eq!(
        ledger
            .lags(&idle_shutdown::ledger::month_of(now))
            .await
            .unwrap(),
        vec![lag]
    );
    local.world.stop().await;
}
