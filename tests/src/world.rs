//! The whole local AWS world in one value: moto + the simulator, the suite's bus/table/topic, the four function
//! binaries hosted as Lambda processes, and EventBridge rules created from `infra/template.yaml` whose targets
//! (SQS queues, as a stand-in for the Lambda target) are pumped into the functions through the runtime API.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::bench::proxy::{Call, TimingProxy};
use crate::moto::{Moto, local_sdk_config, workspace_root, world_dir};
use crate::runtime_api::{FunctionHost, FunctionSpec, HostError, Invocation, function_binary};
use crate::sim::{self, SimConfig, SimHandle};
use crate::template::{self, Bus, RuleSpec, Template};

/// The names of what the world creates (the demo and the tests read them).
#[derive(Debug, Clone)]
pub struct Names {
    pub region: String,
    pub account: String,
    pub event_bus: String,
    pub idempotency_table: String,
    /// idle-shutdown's sweep state (per-app warnings and readings, per-domain unreached apps).
    pub idle_state_table: String,
    /// idle-shutdown's spend ledger.
    pub spend_table: String,
    pub topic_arn: String,
    pub inbox_queue_url: String,
    /// The stack's failure queues (the team digest counts what waits in them).
    pub failed_invocation_queue_url: String,
    pub delivery_dlq_url: String,
    pub data_bucket: String,
    pub repository: String,
    pub domain_id: String,
}

#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// Functions to host (by name); empty = none (AWS world only); use [`WorldConfig::all_functions`].
    pub functions: Vec<String>,
    /// Processes per hosted function (Lambda's concurrent execution environments).
    pub processes: usize,
    /// Extra or overriding values for template references (`!Ref X`, `!GetAtt X.Y`, parameters).
    pub values: HashMap<String, String>,
    /// Per-function environment overrides, applied after the template's variables.
    pub env: HashMap<String, BTreeMap<String, String>>,
    pub sim: SimConfig,
    /// Start a real MLflow tracking server (`crate::mlflow`) and deploy the stack as if it created its tracking
    /// server: train-on-push records runs there. Off: the stack tracks in classic Experiments (`MlflowTracking=none`).
    pub mlflow: bool,
    /// Put a recording proxy in front of moto and the simulator for each hosted function, so that every AWS
    /// request a function makes can be read back per function ([`World::recorded`]; the IAM replay test).
    pub record_requests: bool,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            functions: Vec::new(),
            processes: 1,
            values: HashMap::new(),
            env: HashMap::new(),
            sim: SimConfig::default(),
            mlflow: false,
            record_requests: false,
        }
    }
}

impl WorldConfig {
    pub fn all_functions() -> Self {
        Self {
            functions: FUNCTIONS.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
    }

    /// The team's day (`make demo`, the IAM replay): every function, with the demo's budgets
    /// (`demo::month::DEMO_BUDGETS`) and a real MLflow tracking server.
    pub fn team_day() -> Self {
        let mut cfg = Self::all_functions();
        // Runs are tracked in MLflow, as the stack deploys by default.
        cfg.mlflow = true;
        cfg.values.insert(
            "Budgets".to_string(),
            crate::demo::month::DEMO_BUDGETS.to_string(),
        );
        // Experiment branches train; a pull request merged into main approves what they trained.
        cfg.values.insert(
            "TrainingBranchPatterns".to_string(),
            "main,experiment/*".to_string(),
        );
        cfg.values
            .insert("ApproveOnMergeInto".to_string(), "main".to_string());
        cfg
    }
}

/// The private subnets the stack's network would give (comma-joined, as its output).
pub const SUBNET_IDS: &str = "subnet-0123456789abcdef0,subnet-0fedcba9876543210";
/// The training jobs' security group the stack's network would give.
pub const TRAINING_SECURITY_GROUP: &str = "sg-0123456789abcdef0";

/// The suite's functions.
pub const FUNCTIONS: &[&str] = &[
    "provision-users",
    "idle-shutdown",
    "train-on-push",
    "notify",
];

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("moto: {0}")]
    Moto(#[from] crate::moto::MotoError),
    #[error("simulator: {0}")]
    Sim(#[from] crate::sim::SimError),
    #[error("simulator admin: {0}")]
    Admin(#[from] crate::sim::admin::AdminError),
    #[error("template: {0}")]
    Template(#[from] template::TemplateError),
    #[error("function host: {0}")]
    Host(#[from] HostError),
    #[error("{what}: {message}")]
    Aws { what: String, message: String },
    #[error("{0}")]
    Other(String),
}

fn aws_err(what: &str, e: impl std::error::Error) -> WorldError {
    WorldError::Aws {
        what: what.to_string(),
        message: studio_ops_shared::error::error_chain(&e),
    }
}

struct Route {
    rule: RuleSpec,
    queue_url: String,
}

pub struct World {
    pub names: Names,
    pub template: Template,
    moto: Moto,
    sim: SimHandle,
    moto_sdk: SdkConfig,
    sim_sdk: SdkConfig,
    routes: Vec<Route>,
    hosts: BTreeMap<String, FunctionHost>,
    /// Per hosted function, its recording proxies (moto's and the simulator's, for each time it was hosted) when
    /// `record_requests` is set.
    recorders: Option<BTreeMap<String, Vec<TimingProxy>>>,
    git_root: tempfile::TempDir,
    log: std::sync::Mutex<Vec<Invocation>>,
    mlflow: Option<crate::mlflow::MlflowServer>,
}

impl World {
    pub async fn start(mut cfg: WorldConfig) -> Result<World, WorldError> {
        let git_root = tempfile::tempdir().map_err(|e| WorldError::Other(e.to_string()))?;
        let moto = Moto::start().await?;
        cfg.sim.moto_url = Some(moto.url().to_string());
        cfg.sim.git_root = git_root.path().to_path_buf();
        let sim = sim::start(cfg.sim.clone()).await?;
        let moto_sdk = local_sdk_config(moto.url()).await;
        let sim_sdk = local_sdk_config(sim.url()).await;

        let text = template::read_template_text(&workspace_root())?;
        let mut values: HashMap<String, String> =
            template::parameter_defaults(&text)?.into_iter().collect();
        let names = Names {
            region: "us-east-1".into(),
            account: sim::ACCOUNT_ID.into(),
            event_bus: "studio-ops".into(),
            idempotency_table: "studio-ops-idempotency".into(),
            idle_state_table: "studio-ops-idle-state".into(),
            spend_table: "studio-ops-spend".into(),
            topic_arn: String::new(),
            inbox_queue_url: String::new(),
            failed_invocation_queue_url: String::new(),
            delivery_dlq_url: String::new(),
            data_bucket: format!("studio-ops-data-{}", sim::ACCOUNT_ID),
            repository: values
                .get("RepositoryName")
                .cloned()
                .unwrap_or_else(|| "sagemaker-repository".into()),
            // The stack creates the domain; the local world seeds one with this id in the simulator.
            domain_id: "d-studioops0001".into(),
        };
        let mut world_names = names.clone();
        let (topic_arn, inbox) = create_base(&moto_sdk, &names).await?;
        world_names.topic_arn = topic_arn;
        world_names.inbox_queue_url = inbox;
        world_names.failed_invocation_queue_url =
            create_queue(&moto_sdk, "studio-ops-failed-invocations")
                .await?
                .0;
        world_names.delivery_dlq_url = create_queue(&moto_sdk, "studio-ops-delivery-dlq").await?.0;
        sim.admin()
            .seed(&sim::admin::SeedRequest {
                domains: vec![sim::admin::SeedDomain {
                    domain_id: Some(names.domain_id.clone()),
                    domain_name: "studio-ops".into(),
                    auth_mode: Some("SSO".into()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await?;

        for (k, v) in [
            // A required parameter (no default): the identity store moto's Identity Store serves.
            ("IdentityStoreId", "d-9067000000".to_string()),
            ("SuiteEventBus", world_names.event_bus.clone()),
            ("SuiteEventBus.Name", world_names.event_bus.clone()),
            (
                "SuiteEventBus.Arn",
                format!(
                    "arn:aws:events:us-east-1:{}:event-bus/{}",
                    sim::ACCOUNT_ID,
                    world_names.event_bus
                ),
            ),
            ("IdempotencyTable", world_names.idempotency_table.clone()),
            ("IdleStateTable", world_names.idle_state_table.clone()),
            ("SpendTable", world_names.spend_table.clone()),
            (
                "FailedInvocationQueue",
                world_names.failed_invocation_queue_url.clone(),
            ),
            (
                "DeliveryDeadLetterQueue",
                world_names.delivery_dlq_url.clone(),
            ),
            ("StudioDomain.DomainId", world_names.domain_id.clone()),
            ("TeamTopic", world_names.topic_arn.clone()),
            ("TeamTopic.TopicArn", world_names.topic_arn.clone()),
            ("DataBucket", world_names.data_bucket.clone()),
            // train-on-push's job settings (resources of the stack the local world stands in for).
            (
                "TrainingJobRole.Arn",
                format!("arn:aws:iam::{}:role/studio-ops-training", sim::ACCOUNT_ID),
            ),
            (
                "StudioExecutionRole.Arn",
                format!(
                    "arn:aws:iam::{}:role/studio-ops-StudioExecutionRole-AbC123",
                    sim::ACCOUNT_ID
                ),
            ),
            ("Network.Outputs.SubnetIds", SUBNET_IDS.into()),
            (
                "Network.Outputs.TrainingSecurityGroupId",
                TRAINING_SECURITY_GROUP.into(),
            ),
            (
                "WorkspaceKey.Arn",
                format!(
                    "arn:aws:kms:us-east-1:{}:key/00000000-0000-4000-8000-000000000001",
                    sim::ACCOUNT_ID
                ),
            ),
        ] {
            values.entry(k.to_string()).or_insert(v);
        }
        let mlflow = if cfg.mlflow {
            let server = crate::mlflow::MlflowServer::start()
                .await
                .map_err(|e| WorldError::Other(e.to_string()))?;
            // The stack's server is named by MlflowTrackingServerName: its ARN is mlflow::SERVER_ARN.
            values.insert("MlflowTracking".into(), "create".into());
            values.insert("MlflowTrackingServerUrl".into(), server.url().to_string());
            Some(server)
        } else {
            values.insert("MlflowTracking".into(), "none".into());
            None
        };
        values.extend(cfg.values.clone());
        let template = template::parse(&text, &values)?;

        let routes = create_routes(&moto_sdk, &template).await?;

        let mut world = World {
            names: world_names,
            template,
            moto,
            sim,
            moto_sdk,
            sim_sdk,
            routes,
            hosts: BTreeMap::new(),
            recorders: cfg.record_requests.then(BTreeMap::new),
            git_root,
            log: std::sync::Mutex::new(Vec::new()),
            mlflow,
        };
        for name in &cfg.functions {
            let overrides = cfg.env.get(name).cloned().unwrap_or_default();
            world.host(name, overrides, cfg.processes).await?;
        }
        Ok(world)
    }

    /// Starts `processes` Lambda processes of `function` with the template's variables plus `overrides`
    /// (e.g. ids the test created after the world started). Replaces an earlier host of the same function.
    pub async fn host(
        &mut self,
        function: &str,
        overrides: BTreeMap<String, String>,
        processes: usize,
    ) -> Result<(), WorldError> {
        let spec = self
            .template
            .functions
            .iter()
            .find(|f| f.name == function)
            .ok_or_else(|| WorldError::Other(format!("no function {function} in the template")))?;
        let mut env = spec.env.clone();
        match self.recorders.as_mut() {
            Some(recorders) => {
                let start = |upstream: String| async move {
                    TimingProxy::start(&upstream)
                        .await
                        .map_err(|e| WorldError::Other(format!("recording proxy: {e}")))
                };
                let moto = start(self.moto.url().to_string()).await?;
                let sim = start(self.sim.url().to_string()).await?;
                env.extend(aws_env(moto.url(), sim.url()));
                // A function hosted again keeps what it recorded before.
                recorders
                    .entry(function.to_string())
                    .or_default()
                    .extend([moto, sim]);
            }
            None => env.extend(aws_env(self.moto.url(), self.sim.url())),
        }
        // Like AWS_ENDPOINT_URL: the local stand-in for the regional MLflow endpoint the template sets (behind a
        // recording proxy too when requests are recorded: the IAM replay maps MLflow's REST calls to actions).
        if let Some(mlflow) = &self.mlflow {
            let url = match self.recorders.as_mut() {
                Some(recorders) => {
                    let proxy = TimingProxy::start(mlflow.url())
                        .await
                        .map_err(|e| WorldError::Other(format!("recording proxy: {e}")))?;
                    let url = proxy.url().to_string();
                    recorders
                        .entry(function.to_string())
                        .or_default()
                        .push(proxy);
                    url
                }
                None => mlflow.url().to_string(),
            };
            env.insert("STUDIO_OPS_MLFLOW_ENDPOINT".into(), url);
        }
        env.extend(overrides);
        let host = FunctionHost::start(FunctionSpec {
            name: function.to_string(),
            binary: function_binary(&spec.binary),
            env,
            timeout: Duration::from_secs(spec.timeout_seconds.clamp(5, 900)),
            processes,
            log_dir: world_dir().join("functions"),
        })
        .await?;
        if let Some(old) = self.hosts.insert(function.to_string(), host) {
            old.stop().await;
        }
        Ok(())
    }

    /// Every AWS request each hosted function made so far, by function (empty unless `record_requests` was set).
    pub fn recorded(&self) -> BTreeMap<String, Vec<Call>> {
        self.recorders
            .iter()
            .flatten()
            .map(|(function, proxies)| {
                let mut calls: Vec<Call> = proxies.iter().flat_map(TimingProxy::calls).collect();
                calls.sort_by_key(|c| c.started);
                (function.clone(), calls)
            })
            .collect()
    }

    /// The MLflow tracking server, when the world was started with `mlflow`.
    pub fn mlflow(&self) -> Option<&crate::mlflow::MlflowServer> {
        self.mlflow.as_ref()
    }

    /// SDK configuration for moto (every service but SageMaker Studio and CodeCommit).
    pub fn moto_sdk(&self) -> &SdkConfig {
        &self.moto_sdk
    }

    /// SDK configuration for the simulator (SageMaker — unknown operations go on to moto — and CodeCommit).
    pub fn sim_sdk(&self) -> &SdkConfig {
        &self.sim_sdk
    }

    pub fn sim(&self) -> &SimHandle {
        &self.sim
    }

    pub fn moto(&self) -> &Moto {
        &self.moto
    }

    /// Where the simulator's bare repositories live (`<name>.git`).
    pub fn git_root(&self) -> &Path {
        self.git_root.path()
    }

    /// Every invocation so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Puts an EventBridge envelope on moto's bus (the suite's bus for `studio-ops` events, else the default
    /// bus) and runs every function whose rule matches, then whatever they publish, until all is quiet.
    pub async fn put_event(&self, event: &Value) -> Result<Vec<Invocation>, WorldError> {
        self.put_raw(event).await?;
        self.pump().await
    }

    /// Which rules (`function/Event`) an envelope matches; nothing is invoked.
    pub async fn route(&self, event: &Value) -> Result<Vec<String>, WorldError> {
        self.put_raw(event).await?;
        let mut matched = Vec::new();
        for route in &self.routes {
            for _ in self.drain(&route.queue_url).await? {
                matched.push(format!("{}/{}", route.rule.function, route.rule.event));
            }
        }
        Ok(matched)
    }

    async fn put_raw(&self, event: &Value) -> Result<(), WorldError> {
        let text = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
        let source = text("source").unwrap_or_default();
        let bus = if source == studio_ops_shared::events::suite::SOURCE {
            self.names.event_bus.clone()
        } else {
            "default".to_string()
        };
        let resources: Vec<String> = event
            .get("resources")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(source)
            .detail_type(text("detail-type").unwrap_or_default())
            .detail(
                event
                    .get("detail")
                    .cloned()
                    .unwrap_or(Value::Null)
                    .to_string(),
            )
            .set_resources(Some(resources))
            .build();
        let out = aws_sdk_eventbridge::Client::new(&self.moto_sdk)
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| aws_err("PutEvents", e))?;
        if out.failed_entry_count() > 0 {
            return Err(WorldError::Other(format!(
                "PutEvents rejected the event: {:?}",
                out.entries()
            )));
        }
        Ok(())
    }

    async fn drain(&self, queue_url: &str) -> Result<Vec<Value>, WorldError> {
        let sqs = aws_sdk_sqs::Client::new(&self.moto_sdk);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| aws_err("ReceiveMessage", e))?;
            let messages = got.messages();
            if messages.is_empty() {
                return Ok(out);
            }
            for m in messages {
                if let Some(body) = m.body() {
                    out.push(serde_json::from_str(body).unwrap_or(Value::String(body.into())));
                }
                if let Some(handle) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .map_err(|e| aws_err("DeleteMessage", e))?;
                }
            }
        }
    }

    /// Delivers what the rules' queues hold to the functions until nothing is left (a function's own events
    /// reach notify this way). Rules of functions that are not hosted are drained and dropped.
    pub async fn pump(&self) -> Result<Vec<Invocation>, WorldError> {
        let mut all = Vec::new();
        for _round in 0..20 {
            let mut delivered = false;
            for route in &self.routes {
                for event in self.drain(&route.queue_url).await? {
                    let Some(host) = self.hosts.get(&route.rule.function) else {
                        continue;
                    };
                    delivered = true;
                    let inv = host.invoke(event).await?;
                    self.record(&inv);
                    all.push(inv);
                }
            }
            if !delivered {
                break;
            }
        }
        Ok(all)
    }

    /// Invokes a hosted function directly (a schedule or a manual `aws lambda invoke`), then pumps what it published.
    pub async fn invoke(
        &self,
        function: &str,
        payload: Value,
    ) -> Result<(Invocation, Vec<Invocation>), WorldError> {
        let host = self
            .hosts
            .get(function)
            .ok_or_else(|| WorldError::Other(format!("{function} is not hosted in this world")))?;
        let inv = host.invoke(payload).await?;
        self.record(&inv);
        let after = self.pump().await?;
        Ok((inv, after))
    }

    /// Invokes a hosted function with several payloads at once (needs `processes` > 1 to overlap).
    pub async fn invoke_concurrently(
        &self,
        function: &str,
        payloads: Vec<Value>,
    ) -> Result<Vec<Invocation>, WorldError> {
        let host = self
            .hosts
            .get(function)
            .ok_or_else(|| WorldError::Other(format!("{function} is not hosted in this world")))?;
        let results = futures::future::join_all(payloads.into_iter().map(|p| host.invoke(p))).await;
        let mut out = Vec::new();
        for r in results {
            let inv = r?;
            self.record(&inv);
            out.push(inv);
        }
        Ok(out)
    }

    fn record(&self, inv: &Invocation) {
        if let Ok(mut l) = self.log.lock() {
            l.push(inv.clone());
        }
    }

    /// Creates a queue that receives every event on the suite's bus (a rule on `source: studio-ops`), so a test can
    /// read back what the functions really published; returns the queue URL (read it with [`World::drain_queue`]).
    pub async fn tap_suite_bus(&self, name: &str) -> Result<String, WorldError> {
        let (queue_url, queue_arn) = create_queue(&self.moto_sdk, name).await?;
        let events = aws_sdk_eventbridge::Client::new(&self.moto_sdk);
        events
            .put_rule()
            .name(name)
            .event_bus_name(&self.names.event_bus)
            .event_pattern(
                serde_json::json!({"source": [studio_ops_shared::events::suite::SOURCE]})
                    .to_string(),
            )
            .send()
            .await
            .map_err(|e| aws_err("PutRule", e))?;
        events
            .put_targets()
            .rule(name)
            .event_bus_name(&self.names.event_bus)
            .targets(
                Target::builder()
                    .id(format!("{name}-queue"))
                    .arn(queue_arn)
                    .build()
                    .map_err(|e| aws_err("Target", e))?,
            )
            .send()
            .await
            .map_err(|e| aws_err("PutTargets", e))?;
        Ok(queue_url)
    }

    /// Receives and deletes everything a queue holds, parsed as JSON.
    pub async fn drain_queue(&self, queue_url: &str) -> Result<Vec<Value>, WorldError> {
        self.drain(queue_url).await
    }

    /// Writes `function`'s lease item into the idempotency table as a run that crashed with its deadline at `expires`
    /// would have left it (`<function>#lease`, in progress, never released).
    pub async fn plant_lease(
        &self,
        function: &str,
        expires: jiff::Timestamp,
    ) -> Result<(), WorldError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let day_later = jiff::Timestamp::now().as_second() + 86_400;
        aws_sdk_dynamodb::Client::new(self.moto_sdk())
            .put_item()
            .table_name(&self.names.idempotency_table)
            .item("id", AttributeValue::S(format!("{function}#lease")))
            .item("status", AttributeValue::S("IN_PROGRESS".into()))
            .item("expiration", AttributeValue::N(day_later.to_string()))
            .item(
                "in_progress_expiry",
                AttributeValue::N(expires.as_millisecond().to_string()),
            )
            .send()
            .await
            .map_err(|e| WorldError::Other(format!("cannot plant the lease: {e:?}")))?;
        Ok(())
    }

    /// Empties every queue in moto. moto's PutEvents slows with the size of its targets' queues (about 8 ms per
    /// event more for every 1,000 messages queued), so a benchmark run that follows another starts from empty queues.
    /// (PurgeQueue is refused more than once a minute, so the messages are received and deleted.)
    pub async fn empty_queues(&self) -> Result<usize, WorldError> {
        let sqs = aws_sdk_sqs::Client::new(self.moto_sdk());
        let queues = sqs
            .list_queues()
            .send()
            .await
            .map_err(|e| aws_err("ListQueues", e))?;
        let mut removed = 0;
        for url in queues.queue_urls() {
            removed += self.drain(url).await?.len();
        }
        Ok(removed)
    }

    /// The messages the team's SNS topic delivered to the inbox queue since the last call (SNS envelopes).
    pub async fn inbox(&self) -> Result<Vec<Value>, WorldError> {
        self.drain(&self.names.inbox_queue_url).await
    }

    pub fn hosted(&self, function: &str) -> Option<&FunctionHost> {
        self.hosts.get(function)
    }

    /// Stops every process the world started (dropping it does the same).
    pub async fn stop(self) {
        for (_, host) in self.hosts {
            host.stop().await;
        }
        self.sim.shutdown().await;
        drop(self.moto);
    }
}

/// The AWS variables of a function process: loopback endpoints and dummy credentials, nothing inherited.
pub fn aws_env(moto_url: &str, sim_url: &str) -> BTreeMap<String, String> {
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_ENDPOINT_URL_SAGEMAKER", sim_url),
        ("AWS_ENDPOINT_URL_CODECOMMIT", sim_url),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Every variable the four functions need to run against this world by hand (`cargo lambda watch`): the AWS
/// variables of [`aws_env`] and each function's template variables. The functions share one emulator, so one set
/// of variables must serve all four: a name two functions set differently is refused, naming both values.
pub fn lambda_env(world: &World) -> Result<BTreeMap<String, String>, String> {
    let mut env = aws_env(world.moto().url(), world.sim().url());
    let mut set_by: BTreeMap<String, String> = BTreeMap::new();
    for function in &world.template.functions {
        for (k, v) in &function.env {
            match env.get(k) {
                Some(old) if old != v => {
                    return Err(format!(
                        "{k} is {old:?} for {} but {v:?} for {}: one emulator cannot serve both",
                        set_by.get(k).map_or("the AWS set-up", String::as_str),
                        function.name
                    ));
                }
                _ => {
                    env.insert(k.clone(), v.clone());
                    set_by.insert(k.clone(), function.name.clone());
                }
            }
        }
    }
    Ok(env)
}

/// [`lambda_env`] for a world worked by hand: an Identity Center group `data-science` is created in the world's
/// identity store and configured as the group provision-users follows (without one it refuses to run).
pub async fn newcomer_env(world: &World) -> Result<BTreeMap<String, String>, String> {
    let mut env = lambda_env(world)?;
    let store = env
        .get("STUDIO_OPS_IDENTITY_STORE_ID")
        .cloned()
        .ok_or("the template sets no STUDIO_OPS_IDENTITY_STORE_ID")?;
    let group = aws_sdk_identitystore::Client::new(world.moto_sdk())
        .create_group()
        .identity_store_id(&store)
        .display_name("data-science")
        .send()
        .await
        .map_err(|e| format!("CreateGroup: {}", studio_ops_shared::error::error_chain(&e)))?
        .group_id()
        .to_string();
    env.insert("STUDIO_OPS_PROVISION_GROUP_IDS".into(), group);
    Ok(env)
}

/// `KEY='value'` lines, one a variable: what `cargo lambda watch --env-file` reads (its dotenv parser takes a
/// single-quoted value literally) and what a POSIX shell reads after `set -a; . FILE`. JSON values such as
/// `STUDIO_OPS_IDLE_LIMITS=[{"match":"ml.g*",...}]` survive both only when quoted; a value with a `'` or a line
/// break has no such form and is refused.
pub fn env_file_text(env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut text = String::new();
    for (k, v) in env {
        if v.contains('\'') || v.contains('\n') || v.contains('\r') {
            return Err(format!(
                "{k}: a value with a quote or a line break cannot be written to an env file"
            ));
        }
        text.push_str(&format!("{k}='{v}'\n"));
    }
    Ok(text)
}

/// `export KEY='value'` with the value quoted for a POSIX shell (a `'` becomes `'\''`), safe to paste.
pub fn shell_export(key: &str, value: &str) -> String {
    format!("export {key}='{}'", value.replace('\'', "'\\''"))
}

/// The suite's bus, idempotency and idle-state tables, team topic with an inbox queue, and data bucket.
async fn create_base(sdk: &SdkConfig, names: &Names) -> Result<(String, String), WorldError> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    events
        .create_event_bus()
        .name(&names.event_bus)
        .send()
        .await
        .map_err(|e| aws_err("CreateEventBus", e))?;
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    ddb.create_table()
        .table_name(&names.idempotency_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| aws_err("AttributeDefinition", e))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| aws_err("KeySchemaElement", e))?,
        )
        .send()
        .await
        .map_err(|e| aws_err("CreateTable", e))?;
    // idle-shutdown's sweep state: one partition per domain (`pk`), one item per app or per domain record (`sk`).
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| aws_err("KeySchemaElement", e))
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| aws_err("AttributeDefinition", e))
    };
    // idle-shutdown's sweep state and spend ledger: the same key schema.
    for table in [&names.idle_state_table, &names.spend_table] {
        ddb.create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string("pk")?)
            .attribute_definitions(string("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(|e| aws_err("CreateTable", e))?;
    }
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic_arn = sns
        .create_topic()
        .name("studio-ops-team")
        .send()
        .await
        .map_err(|e| aws_err("CreateTopic", e))?
        .topic_arn()
        .unwrap_or_default()
        .to_string();
    let inbox_url = subscribe_queue(sdk, &topic_arn, "team-inbox", None, false).await?;
    aws_sdk_s3::Client::new(sdk)
        .create_bucket()
        .bucket(&names.data_bucket)
        .send()
        .await
        .map_err(|e| aws_err("CreateBucket", e))?;
    Ok((topic_arn, inbox_url))
}

/// Creates queue `name`, subscribes it to the SNS topic (with a filter policy, raw delivery if asked) and returns
/// its URL.
pub async fn subscribe_queue(
    sdk: &SdkConfig,
    topic_arn: &str,
    name: &str,
    filter_policy: Option<&str>,
    raw: bool,
) -> Result<String, WorldError> {
    let (url, arn) = create_queue(sdk, name).await?;
    let mut sub = aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn);
    if let Some(policy) = filter_policy {
        sub = sub.attributes("FilterPolicy", policy);
    }
    if raw {
        sub = sub.attributes("RawMessageDelivery", "true");
    }
    sub.send().await.map_err(|e| aws_err("Subscribe", e))?;
    Ok(url)
}

/// Creates a queue and returns its URL and ARN.
pub async fn create_queue(sdk: &SdkConfig, name: &str) -> Result<(String, String), WorldError> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| aws_err("CreateQueue", e))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_err("GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    Ok((url, arn))
}

/// One moto rule per template rule, with the template's pattern, targeting its own queue.
async fn create_routes(sdk: &SdkConfig, template: &Template) -> Result<Vec<Route>, WorldError> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let mut routes = Vec::new();
    for rule in &template.rules {
        let name = format!("{}-{}", rule.function, rule.event);
        let bus = match &rule.bus {
            Bus::Default => "default".to_string(),
            Bus::Named(n) => n.clone(),
        };
        let (queue_url, queue_arn) = create_queue(sdk, &format!("route-{name}")).await?;
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&bus)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .map_err(|e| aws_err("PutRule", e))?;
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(&bus)
            .targets(
                Target::builder()
                    .id(format!("{}-target", rule.function))
                    .arn(queue_arn)
                    .build()
                    .map_err(|e| aws_err("Target", e))?,
            )
            .send()
            .await
            .map_err(|e| aws_err("PutTargets", e))?;
        routes.push(Route {
            rule: rule.clone(),
            queue_url,
        });
    }
    Ok(routes)
}

/// Reads a fixture from `events/` (a path relative to that folder).
pub fn fixture(relative: &str) -> Result<Value, WorldError> {
    let path: PathBuf = workspace_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| WorldError::Other(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| WorldError::Other(format!("{}: {e}", path.display())))
}
