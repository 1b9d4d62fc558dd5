//! The IAM replay: what a recorded AWS request asks IAM for, and IAM's answer for a role as the template defines it.
//!
//! The local world enforces no IAM, so a permission a function lacks would only show in production. Here every
//! request a function made in the local world (recorded by [`crate::world::World::recorded`]) becomes the IAM
//! requests AWS would authorize: the action, the ARN of each resource it names, and the condition keys the request
//! sets (subnets, instance types, KMS keys, tag keys, passed role, DynamoDB leading keys, event source and type).
//! Requests AWS makes on the caller's behalf are added where the template's encryption makes them happen (the
//! workspace key through S3, DynamoDB and SNS). The roles' policies come from `scripts/role-policies.py` (the SAM
//! transform and the offline CloudFormation evaluation of `make deploy-plan`), and the decision from
//! `tools/iam-eval` (`@cloud-copilot/iam-simulate`, an evaluator maintained by others).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::bench::proxy::Call;
use crate::moto::workspace_root;

pub const REGION: &str = "us-east-1";

/// One request IAM authorizes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct IamRequest {
    /// `service:Action`.
    pub action: String,
    pub resource: String,
    /// Condition keys and their values (a list for multi-valued keys, else a string), in IAM's text form.
    pub context: BTreeMap<String, ContextValue>,
}

/// A condition key's value as IAM sees it: text, or a list of texts for a multi-valued key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum ContextValue {
    One(String),
    Many(Vec<String>),
}

impl From<Value> for ContextValue {
    fn from(v: Value) -> Self {
        match v {
            Value::String(s) => ContextValue::One(s),
            Value::Array(items) => ContextValue::Many(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            other => ContextValue::One(other.to_string()),
        }
    }
}

impl IamRequest {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.context.insert(key.to_string(), value.into());
        self
    }
}

/// Which AWS operation a recorded call was: service (IAM prefix) and operation name.
pub fn operation(call: &Call) -> Option<(&'static str, String)> {
    // SageMaker managed MLflow's REST API: one `sagemaker-mlflow` action per endpoint.
    if let Some(rest) = call.path.strip_prefix(MLFLOW_API) {
        let endpoint = rest.split('?').next().unwrap_or_default();
        let action = MLFLOW_ACTIONS
            .iter()
            .find(|(path, _)| *path == endpoint)
            .map(|(_, action)| *action)?;
        return Some(("sagemaker-mlflow", action.to_string()));
    }
    if let Some(target) = &call.target {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            "SageMaker" => "sagemaker",
            p if p.starts_with("CodeCommit") => "codecommit",
            p if p.starts_with("DynamoDB") => "dynamodb",
            "AWSEvents" => "events",
            "AWSIdentityStore" => "identitystore",
            "AmazonSQS" => "sqs",
            _ => return None,
        };
        return Some((service, op.to_string()));
    }
    let form = form(call);
    if let Some(action) = form.get("Action") {
        // SNS and the other query-protocol services; only SNS is called by the functions.
        return Some(("sns", action.clone()));
    }
    match call.method.as_str() {
        "PUT" => Some(("s3", "PutObject".into())),
        "GET" => Some(("s3", "GetObject".into())),
        _ => None,
    }
}

const MLFLOW_API: &str = "/api/2.0/mlflow/";
/// The MLflow REST endpoints train-on-push calls and the IAM action each one is authorized as (the Service
/// Authorization Reference's `sagemaker-mlflow` actions are named after MLflow's operations).
const MLFLOW_ACTIONS: &[(&str, &str)] = &[
    ("experiments/get-by-name", "GetExperimentByName"),
    ("experiments/create", "CreateExperiment"),
    ("runs/search", "SearchRuns"),
    ("runs/create", "CreateRun"),
    ("runs/log-batch", "LogBatch"),
    ("runs/update", "UpdateRun"),
];

fn form(call: &Call) -> BTreeMap<String, String> {
    form_urlencoded::parse(&call.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn body(call: &Call) -> Value {
    serde_json::from_slice(&call.body).unwrap_or(Value::Null)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| Value::String(s.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the world that the requests' resources carry: account, the data bucket and the workspace key.
pub struct Scope<'a> {
    pub account: &'a str,
    pub data_bucket: &'a str,
    pub workspace_key_arn: &'a str,
    /// The MLflow tracking server every `sagemaker-mlflow` request is addressed to.
    pub mlflow_server_arn: &'a str,
    /// The team's repository: what a pull request call, which names no repository, is authorized against (IAM
    /// checks `GetPullRequest` on the pull request's repository).
    pub repository: &'a str,
}

impl Scope<'_> {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{REGION}:{}:{resource}", self.account)
    }

    fn sagemaker(&self, resource: &str) -> String {
        self.arn("sagemaker", resource)
    }

    fn via(&self, service: &str, action: &str) -> IamRequest {
        IamRequest::new(action, self.workspace_key_arn).with(
            "kms:ViaService",
            json!(format!("{service}.{REGION}.amazonaws.com")),
        )
    }

    /// The tag keys of a create call: the implicit `AddTags` IAM also authorizes for them.
    fn tags_on_create(&self, created_by: &str, arn: &str, b: &Value) -> Option<IamRequest> {
        let keys = tag_keys(b.get("Tags"));
        (!keys.is_empty()).then(|| {
            IamRequest::new("sagemaker:AddTags", arn)
                .with("aws:TagKeys", Value::Array(keys))
                .with("sagemaker:TaggingAction", json!(created_by))
        })
    }

    /// What IAM authorizes for one recorded call; an unknown call is an error that names it.
    pub fn requests(&self, call: &Call) -> Result<Vec<IamRequest>, String> {
        let (service, op) = operation(call)
            .ok_or_else(|| format!("unrecognised request {} {}", call.method, call.path))?;
        let action = format!("{service}:{op}");
        let b = body(call);
        let mut out = Vec::new();
        match (service, op.as_str()) {
            ("sagemaker", _) => out.extend(self.sagemaker_requests(&op, &b)?),
            ("sagemaker-mlflow", _) => out.push(IamRequest::new(action, self.mlflow_server_arn)),
            ("codecommit", "GetPullRequest") => out.push(IamRequest::new(
                action,
                self.arn("codecommit", self.repository),
            )),
            ("codecommit", _) => out.push(IamRequest::new(
                action,
                self.arn("codecommit", text(&b, "repositoryName")),
            )),
            ("identitystore", _) => {
                let store = text(&b, "IdentityStoreId");
                let store_arn = format!(
                    "arn:aws:identitystore::{}:identitystore/{store}",
                    self.account
                );
                out.push(IamRequest::new(&action, store_arn));
                if op == "ListGroupMemberships" {
                    // The reference's AllGroupMemberships resource type.
                    out.push(IamRequest::new(
                        &action,
                        "arn:aws:identitystore:::membership/*",
                    ));
                }
                let member = match op.as_str() {
                    "ListGroupMemberships" | "DescribeGroup" => {
                        format!("arn:aws:identitystore:::group/{}", text(&b, "GroupId"))
                    }
                    "DescribeUser" => {
                        format!("arn:aws:identitystore:::user/{}", text(&b, "UserId"))
                    }
                    other => return Err(format!("identitystore:{other} is not mapped")),
                };
                out.push(IamRequest::new(action, member));
            }
            ("dynamodb", _) => {
                // The partition key of the suite's table is `id`, of idle-shutdown's sweep state `pk`.
                let partition = |item: &Value| {
                    ["/id/S", "/pk/S"]
                        .iter()
                        .find_map(|p| item.pointer(p))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                // (table, the partition keys the request touches): IAM's dynamodb:LeadingKeys.
                let mut tables: Vec<(String, Vec<String>)> = Vec::new();
                match op.as_str() {
                    "Query" => {
                        // The key condition's partition value (the only value the function's queries bind).
                        let value = b
                            .get("ExpressionAttributeValues")
                            .and_then(Value::as_object)
                            .and_then(|v| v.values().next())
                            .and_then(|v| v.pointer("/S"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{action} without a key value: {b}"))?;
                        tables.push((text(&b, "TableName").to_string(), vec![value.to_string()]));
                    }
                    "BatchWriteItem" => {
                        let items = b
                            .get("RequestItems")
                            .and_then(Value::as_object)
                            .ok_or_else(|| format!("{action} without RequestItems: {b}"))?;
                        for (table, writes) in items {
                            let mut keys = Vec::new();
                            for w in writes.as_array().into_iter().flatten() {
                                let item = w
                                    .pointer("/PutRequest/Item")
                                    .or_else(|| w.pointer("/DeleteRequest/Key"))
                                    .and_then(partition)
                                    .ok_or_else(|| {
                                        format!("{action}: a write without a key: {w}")
                                    })?;
                                if !keys.contains(&item) {
                                    keys.push(item);
                                }
                            }
                            tables.push((table.clone(), keys));
                        }
                    }
                    _ => {
                        let id = b
                            .get("Key")
                            .or_else(|| b.get("Item"))
                            .and_then(partition)
                            .ok_or_else(|| format!("{action} without a key id: {b}"))?;
                        tables.push((text(&b, "TableName").to_string(), vec![id]));
                    }
                }
                for (table, keys) in tables {
                    out.push(
                        IamRequest::new(&action, self.arn("dynamodb", &format!("table/{table}")))
                            .with("dynamodb:LeadingKeys", json!(keys)),
                    );
                }
                // The tables are encrypted with the workspace key: DynamoDB uses it on the caller's behalf.
                out.push(self.via("dynamodb", "kms:Decrypt"));
            }
            ("events", "PutEvents") => {
                for entry in b
                    .get("Entries")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let bus = text(entry, "EventBusName");
                    let bus_arn = if bus.starts_with("arn:") {
                        bus.to_string()
                    } else {
                        self.arn("events", &format!("event-bus/{bus}"))
                    };
                    out.push(
                        IamRequest::new(&action, bus_arn)
                            .with("events:source", json!(text(entry, "Source")))
                            .with("events:detail-type", json!(text(entry, "DetailType"))),
                    );
                }
            }
            ("sns", "Publish") => {
                let f = form(call);
                let topic = f.get("TopicArn").cloned().unwrap_or_default();
                out.push(IamRequest::new(action, topic));
                // The team's topic is encrypted with the workspace key.
                out.push(self.via("sns", "kms:GenerateDataKey"));
                out.push(self.via("sns", "kms:Decrypt"));
            }
            ("s3", _) => {
                let path = call
                    .path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('/');
                out.push(IamRequest::new(action, format!("arn:aws:s3:::{path}")));
                if path.starts_with(&format!("{}/", self.data_bucket)) && op == "PutObject" {
                    // The data bucket's default encryption is the workspace key.
                    out.push(self.via("s3", "kms:GenerateDataKey"));
                }
            }
            ("sqs", "GetQueueAttributes") => {
                // The queue's URL ends in `<account>/<name>`; its ARN is the name in this account and region.
                let url = text(&b, "QueueUrl");
                let name = url.rsplit('/').next().unwrap_or_default();
                if name.is_empty() {
                    return Err(format!("{action} without a queue URL: {b}"));
                }
                // SSE-SQS (the queues' encryption) needs no KMS permission of the caller.
                out.push(IamRequest::new(action, self.arn("sqs", name)));
            }
            (s, o) => return Err(format!("{s}:{o} is not mapped")),
        }
        Ok(out)
    }

    fn sagemaker_requests(&self, op: &str, b: &Value) -> Result<Vec<IamRequest>, String> {
        let action = format!("sagemaker:{op}");
        let domain = text(b, "DomainId");
        let owner = if text(b, "SpaceName").is_empty() {
            text(b, "UserProfileName")
        } else {
            text(b, "SpaceName")
        };
        let arn = match op {
            "ListApps" | "ListSpaces" | "ListUserProfiles" | "ListModelPackages"
            | "ListDomains" | "ListTrainingJobs" | "Search" => "*".to_string(),
            "DescribeDomain" => self.sagemaker(&format!("domain/{domain}")),
            "DescribeApp" | "DeleteApp" | "CreateApp" => self.sagemaker(&format!(
                "app/{domain}/{owner}/{}/{}",
                text(b, "AppType").to_lowercase(),
                text(b, "AppName")
            )),
            "DescribeSpace" | "CreateSpace" | "DeleteSpace" | "UpdateSpace" => {
                self.sagemaker(&format!("space/{domain}/{}", text(b, "SpaceName")))
            }
            "DescribeUserProfile"
            | "CreateUserProfile"
            | "UpdateUserProfile"
            | "DeleteUserProfile" => self.sagemaker(&format!(
                "user-profile/{domain}/{}",
                text(b, "UserProfileName")
            )),
            "AddTags" | "ListTags" | "DeleteTags" => text(b, "ResourceArn").to_string(),
            "CreateTrainingJob" | "DescribeTrainingJob" => self.sagemaker(&format!(
                "training-job/{}",
                text(b, "TrainingJobName").to_lowercase()
            )),
            "CreateExperiment" => self.sagemaker(&format!(
                "experiment/{}",
                text(b, "ExperimentName").to_lowercase()
            )),
            "CreateTrial" => self.sagemaker(&format!(
                "experiment-trial/{}",
                text(b, "TrialName").to_lowercase()
            )),
            "CreateModelPackageGroup" | "DescribeModelPackageGroup" => self.sagemaker(&format!(
                "model-package-group/{}",
                text(b, "ModelPackageGroupName").to_lowercase()
            )),
            "CreateModelPackage" => self.sagemaker(&format!(
                "model-package/{}",
                text(b, "ModelPackageGroupName").to_lowercase()
            )),
            "UpdateModelPackage" => text(b, "ModelPackageArn").to_string(),
            "DescribeModelPackage" => {
                let name = text(b, "ModelPackageName");
                if name.starts_with("arn:") {
                    name.to_string()
                } else {
                    self.sagemaker(&format!("model-package/{}", name.to_lowercase()))
                }
            }
            other => return Err(format!("sagemaker:{other} is not mapped")),
        };
        let mut main = IamRequest::new(&action, &arn);
        let mut out = Vec::new();
        match op {
            "AddTags" => {
                main = main.with("aws:TagKeys", Value::Array(tag_keys(b.get("Tags"))));
            }
            "DeleteTags" => {
                main = main.with("aws:TagKeys", Value::Array(strings(b.get("TagKeys"))))
            }
            // The approval status a request sets (the users' role may not set Approved with merge-to-approve on).
            "CreateModelPackage" | "UpdateModelPackage"
                if b.get("ModelApprovalStatus").is_some() =>
            {
                main = main.with(
                    "sagemaker:ModelApprovalStatus",
                    json!(text(b, "ModelApprovalStatus")),
                );
            }
            "CreateTrainingJob" => {
                main = training_job_context(main, b);
                out.push(
                    IamRequest::new("iam:PassRole", text(b, "RoleArn"))
                        .with("iam:PassedToService", json!("sagemaker.amazonaws.com")),
                );
            }
            _ => {}
        }
        if op.starts_with("Create") {
            let keys = tag_keys(b.get("Tags"));
            if !keys.is_empty() && !main.context.contains_key("aws:TagKeys") {
                main = main.with("aws:TagKeys", Value::Array(keys));
            }
            out.extend(self.tags_on_create(op, &arn, b));
        }
        out.insert(0, main);
        Ok(out)
    }
}

fn tag_keys(tags: Option<&Value>) -> Vec<Value> {
    tags.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("Key").and_then(Value::as_str))
                .map(|k| json!(k))
                .collect()
        })
        .unwrap_or_default()
}

/// The condition keys SageMaker sets for a CreateTrainingJob request, from the request's own fields.
pub fn training_job_context(mut r: IamRequest, b: &Value) -> IamRequest {
    // A key the request leaves out is absent, not empty (what `Null` conditions test).
    for (key, field) in [
        ("sagemaker:VpcSubnets", "Subnets"),
        ("sagemaker:VpcSecurityGroupIds", "SecurityGroupIds"),
    ] {
        let values = strings(b.get("VpcConfig").and_then(|v| v.get(field)));
        if !values.is_empty() {
            r = r.with(key, Value::Array(values));
        }
    }
    if let Some(t) = b
        .pointer("/ResourceConfig/InstanceType")
        .and_then(Value::as_str)
    {
        r = r.with("sagemaker:InstanceTypes", json!([t]));
    }
    if let Some(k) = b
        .pointer("/ResourceConfig/VolumeKmsKeyId")
        .and_then(Value::as_str)
    {
        r = r.with("sagemaker:VolumeKmsKeyArn", json!(k));
    }
    if let Some(k) = b
        .pointer("/OutputDataConfig/KmsKeyId")
        .and_then(Value::as_str)
    {
        r = r.with("sagemaker:OutputKmsKeyArn", json!(k));
    }
    if let Some(s) = b
        .pointer("/StoppingCondition/MaxRuntimeInSeconds")
        .and_then(Value::as_u64)
    {
        r = r.with("sagemaker:MaxRuntimeInSeconds", json!(s.to_string()));
    }
    let isolation = b
        .get("EnableNetworkIsolation")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    r.with("sagemaker:NetworkIsolation", json!(isolation.to_string()))
}

/// A role's identity policies as `scripts/role-policies.py` resolves them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedPolicy {
    pub name: String,
    pub document: Value,
}

/// The template's policies for one deployment: each role's identity policies, and the resource policies asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct Policies {
    pub roles: BTreeMap<String, Vec<NamedPolicy>>,
    /// By the logical id of the resource that holds it (e.g. `WorkspaceKey`, `DataBucketPolicy`).
    #[serde(rename = "resourcePolicies")]
    pub resource_policies: BTreeMap<String, Value>,
}

/// Every role of the template with its identity policies, and the resource policies of `holders`, resolved with
/// `values` for the placeholders of names only a deployment knows, and `params` for the stack's parameters.
pub fn role_policies(
    values: &BTreeMap<String, String>,
    params: &[(&str, &str)],
    holders: &[&str],
) -> Result<Policies, String> {
    let root = workspace_root();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let values_path = dir.path().join("values.json");
    std::fs::write(
        &values_path,
        serde_json::to_vec(values).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(root.join(".venv/infra/bin/python"));
    cmd.arg(root.join("scripts/role-policies.py"))
        .arg("--values")
        .arg(&values_path);
    for (k, v) in params {
        cmd.arg("--param").arg(format!("{k}={v}"));
    }
    for holder in holders {
        cmd.arg("--resource-policy").arg(holder);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("scripts/role-policies.py: {e} (make venv installs .venv/infra)"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/role-policies.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// One question for the evaluator: may `principal`, holding `policies`, make `request`?
#[derive(Debug, Clone, Serialize)]
pub struct Question<'a> {
    pub id: String,
    pub principal: String,
    pub request: &'a IamRequest,
    pub policies: &'a [NamedPolicy],
    /// The policy of the resource, where it has one (a KMS key's policy must admit the account, for instance).
    pub resource_policy: Option<&'a Value>,
}

/// IAM's answer to one question.
#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    pub id: String,
    pub decision: String,
    #[serde(default)]
    pub nearest: Value,
    #[serde(default)]
    pub errors: Vec<Value>,
}

impl Answer {
    pub fn allowed(&self) -> bool {
        self.decision == "Allowed"
    }
}

/// Asks `tools/iam-eval` every question in one process; answers come back by id.
pub fn evaluate(questions: &[Question<'_>]) -> Result<BTreeMap<String, Answer>, String> {
    let root = workspace_root();
    let requests: Vec<Value> = questions
        .iter()
        .map(|q| {
            let mut context = Map::new();
            context.insert("aws:RequestedRegion".into(), json!(REGION));
            // The SDKs call AWS over TLS only (the template's resource policies deny anything else).
            context.insert("aws:SecureTransport".into(), json!("true"));
            context.insert("aws:PrincipalArn".into(), json!(q.principal));
            for (k, v) in &q.request.context {
                context.insert(k.clone(), json!(v));
            }
            let mut request = json!({
                "id": q.id,
                "principal": q.principal,
                "action": q.request.action,
                "resource": q.request.resource,
                "context": context,
                "identityPolicies": q.policies,
            });
            if let Some(policy) = q.resource_policy {
                request["resourcePolicy"] = policy.clone();
            }
            request
        })
        .collect();
    let input = serde_json::to_vec(&json!({ "requests": requests })).map_err(|e| e.to_string())?;
    let mut child = Command::new("node")
        .arg(root.join("tools/iam-eval/evaluate.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("node tools/iam-eval/evaluate.mjs: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(&input)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "tools/iam-eval failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    #[derive(Deserialize)]
    struct Out {
        results: Vec<Answer>,
    }
    let parsed: Out = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let answers: BTreeMap<String, Answer> = parsed
        .results
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    // A question without an answer must not pass for an allowed request.
    if let Some(q) = questions.iter().find(|q| !answers.contains_key(&q.id)) {
        return Err(format!("tools/iam-eval gave no answer for {}", q.id));
    }
    Ok(answers)
}

/// The AWS operations the product code calls (`client.<operation>()` in `functions/` and `shared/`, test modules
/// left out), as `OperationName` (the SDK's snake case turned back into the API's name).
pub fn operations_in_code() -> Result<BTreeMap<String, Vec<String>>, String> {
    let root = workspace_root();
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // `client.operation()`, the call spread over lines as rustfmt leaves it; `.clone()` is not an operation.
    let call =
        regex::Regex::new(r"\bclient\s*\.\s*([a-z][a-z_]*)\(\)").map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for dir in ["functions", "shared"] {
        collect_rs(&root.join(dir), &mut files)?;
    }
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let product = text.split("#[cfg(test)]").next().unwrap_or("");
        let rel = file
            .strip_prefix(&root)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for m in call.captures_iter(product) {
            let op: String = m[1]
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            if op != "Clone" {
                found.entry(op).or_default().push(rel.clone());
            }
        }
    }
    for files in found.values_mut() {
        files.sort();
        files.dedup();
    }
    Ok(found)
}

fn collect_rs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "tests" || n == "target")
            {
                continue;
            }
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_none_or(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
    Ok(())
}
