//! The bad-input catalogue: malformed and hostile events, each delivered to the hosted function binary through
//! the Runtime API, with the exact error it must answer (always NonRetryable, naming the field) and no side
//! effect anywhere in the world.

use serde_json::{Value, json};
use studio_ops_tests::world::fixture;

/// One hostile input and the error it must produce.
pub struct BadEvent {
    pub name: &'static str,
    pub function: &'static str,
    pub payload: Value,
    /// The message must contain this text exactly (the shared `EventError` display: what, where, why).
    pub expected: String,
}

fn f(path: &str) -> Value {
    fixture(path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in fixture")) = value;
    v
}

fn without(mut v: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    v.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(key))
        .unwrap_or_else(|| panic!("no {pointer} in fixture"));
    v
}

fn malformed(what: &str, path: &str, reason: &str) -> String {
    format!("malformed {what} event at `{path}`: {reason}")
}

const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";
const IDENTITY: &str = "Identity Center CloudTrail";
const RUN: &str = "manual or scheduled invocation";
const PUSH: &str = "CodeCommit Repository State Change";
const JOB: &str = "SageMaker Training Job State Change";
const PULL_REQUEST: &str = "CodeCommit Pull Request State Change";
const PACKAGE: &str = "SageMaker Model Package State Change";

/// Every case; at least 40.
pub fn bad_events() -> Vec<BadEvent> {
    let add = || f("provision-users/identitystore-create-group-membership.json");
    let push = || f("train-on-push/codecommit-reference-updated.json");
    let job = || f("train-on-push/sagemaker-training-job-completed.json");
    let merged = || f("train-on-push/codecommit-pull-request-merged.json");
    let package = || f("notify/sagemaker-model-package-approved.json");
    let stopped = || f("notify/studio-ops-app-stopped.json");
    let huge = "x".repeat(2 * 1024 * 1024);
    let mut cases = vec![
        // provision-users: CloudTrail membership calls
        BadEvent {
            name: "event source of the wrong type",
            function: "provision-users",
            payload: with(add(), "/detail/eventSource", json!(42)),
            expected: malformed(
                CLOUDTRAIL,
                "detail.eventSource",
                "invalid type: integer `42`, expected a string",
            ),
        },
        BadEvent {
            name: "event name missing",
            function: "provision-users",
            payload: without(add(), "/detail/eventName"),
            expected: malformed(CLOUDTRAIL, "detail", "missing field `eventName`"),
        },
        BadEvent {
            name: "membership without a group id",
            function: "provision-users",
            payload: without(add(), "/detail/requestParameters/groupId"),
            expected: malformed(
                IDENTITY,
                "detail.requestParameters.groupId",
                "missing field",
            ),
        },
        BadEvent {
            name: "membership without a member",
            function: "provision-users",
            payload: without(add(), "/detail/requestParameters/memberId"),
            expected: malformed(
                IDENTITY,
                "detail.requestParameters.memberId",
                "missing field",
            ),
        },
        BadEvent {
            name: "masked group id on a create",
            function: "provision-users",
            payload: with(
                add(),
                "/detail/requestParameters/groupId",
                json!("HIDDEN_DUE_TO_SECURITY_REASONS"),
            ),
            expected: malformed(
                IDENTITY,
                "detail.requestParameters.groupId",
                "value is masked",
            ),
        },
        BadEvent {
            name: "a CloudTrail call that is not about groups",
            function: "provision-users",
            payload: with(
                with(add(), "/detail/eventSource", json!("iam.amazonaws.com")),
                "/detail/eventName",
                json!("CreateUser"),
            ),
            expected: malformed(
                IDENTITY,
                "detail.eventName",
                "iam.amazonaws.com CreateUser is not a group-membership call",
            ),
        },
        BadEvent {
            name: "request parameters as a string",
            function: "provision-users",
            payload: with(add(), "/detail/requestParameters", json!("groupId=g")),
            expected: malformed(
                IDENTITY,
                "detail.requestParameters",
                "expected an object, found a string",
            ),
        },
        BadEvent {
            name: "2 MB member id",
            function: "provision-users",
            payload: with(
                without(add(), "/detail/requestParameters/groupId"),
                "/detail/requestParameters/memberId/userId",
                json!(huge.clone()),
            ),
            expected: malformed(
                IDENTITY,
                "detail.requestParameters.groupId",
                "missing field",
            ),
        },
        BadEvent {
            name: "detail-type of another service",
            function: "provision-users",
            payload: json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
            expected: malformed(
                "provision-users",
                "detail-type",
                "unexpected detail-type \"Object Created\"",
            ),
        },
        BadEvent {
            name: "envelope time that is not a time",
            function: "provision-users",
            payload: with(add(), "/time", json!("yesterday")),
            expected: malformed(CLOUDTRAIL, "time", "input contains invalid characters"),
        },
        BadEvent {
            name: "resources as a string",
            function: "provision-users",
            payload: with(
                add(),
                "/resources",
                json!("arn:aws:identitystore:::group/g"),
            ),
            expected: malformed(
                CLOUDTRAIL,
                "resources",
                "invalid type: string \"arn:aws:identitystore:::group/g\", expected a sequence",
            ),
        },
        // provision-users and idle-shutdown: manual and scheduled runs
        BadEvent {
            name: "dry-run typo refused, not ignored",
            function: "provision-users",
            payload: json!({"dryrun": true}),
            expected: malformed(
                RUN,
                "dryrun",
                "unknown field `dryrun`, expected one of `dryRun`, `domainId`, `userProfileName`",
            ),
        },
        BadEvent {
            name: "dryRun as a string",
            function: "provision-users",
            payload: json!({"dryRun": "yes"}),
            expected: malformed(
                RUN,
                "dryRun",
                "invalid type: string \"yes\", expected a boolean",
            ),
        },
        BadEvent {
            name: "domain id as a number",
            function: "provision-users",
            payload: json!({"domainId": 5}),
            expected: malformed(
                RUN,
                "domainId",
                "invalid type: integer `5`, expected a string",
            ),
        },
        BadEvent {
            name: "payload that is a JSON string",
            function: "provision-users",
            payload: json!("reconcile everything"),
            expected: malformed(
                RUN,
                ".",
                "expected a JSON object such as {\"dryRun\": true}",
            ),
        },
        BadEvent {
            name: "dryRun as a number",
            function: "idle-shutdown",
            payload: json!({"dryRun": 1}),
            expected: malformed(
                RUN,
                "dryRun",
                "invalid type: integer `1`, expected a boolean",
            ),
        },
        BadEvent {
            name: "domain id as a list",
            function: "idle-shutdown",
            payload: json!({"domainId": ["d-1", "d-2"]}),
            expected: malformed(RUN, "domainId", "invalid type: sequence, expected a string"),
        },
        BadEvent {
            name: "user profile as an object",
            function: "idle-shutdown",
            payload: json!({"userProfileName": {"$ne": ""}}),
            expected: malformed(
                RUN,
                "userProfileName",
                "invalid type: map, expected a string",
            ),
        },
        BadEvent {
            name: "an extra override smuggled into a run",
            function: "idle-shutdown",
            payload: json!({"dryRun": false, "idleMinutes": 0}),
            expected: malformed(
                RUN,
                "idleMinutes",
                "unknown field `idleMinutes`, expected one of `dryRun`, `domainId`, `userProfileName`",
            ),
        },
        BadEvent {
            // Without the object check serde would read a list as the struct's fields in order.
            name: "payload that is a list",
            function: "idle-shutdown",
            payload: json!([{"dryRun": true}]),
            expected: malformed(
                RUN,
                ".",
                "expected a JSON object such as {\"dryRun\": true}",
            ),
        },
        BadEvent {
            name: "payload that is a number",
            function: "idle-shutdown",
            payload: json!(42),
            expected: malformed(
                RUN,
                ".",
                "expected a JSON object such as {\"dryRun\": true}",
            ),
        },
        // train-on-push: pushes
        BadEvent {
            name: "push without a repository",
            function: "train-on-push",
            payload: without(push(), "/detail/repositoryName"),
            expected: malformed(PUSH, "detail", "missing field `repositoryName`"),
        },
        BadEvent {
            name: "commit id as a number",
            function: "train-on-push",
            payload: with(push(), "/detail/commitId", json!(123)),
            expected: malformed(
                PUSH,
                "detail.commitId",
                "invalid type: integer `123`, expected a string",
            ),
        },
        BadEvent {
            name: "reference type as a list",
            function: "train-on-push",
            payload: with(push(), "/detail/referenceType", json!(["branch"])),
            expected: malformed(
                PUSH,
                "detail.referenceType",
                "invalid type: sequence, expected a string",
            ),
        },
        BadEvent {
            name: "detail as a string",
            function: "train-on-push",
            payload: with(push(), "/detail", json!("{\"repositoryName\": \"x\"}")),
            expected: malformed(
                PUSH,
                "detail",
                "invalid type: string \"{\\\"repositoryName\\\": \\\"x\\\"}\", expected struct RepositoryStateChange",
            ),
        },
        BadEvent {
            name: "push without a detail",
            function: "train-on-push",
            payload: without(push(), "/detail"),
            expected: malformed(PUSH, ".", "missing field `detail`"),
        },
        BadEvent {
            name: "no detail-type at all",
            function: "train-on-push",
            payload: without(push(), "/detail-type"),
            expected: malformed(
                "train-on-push",
                "detail-type",
                "expected a CodeCommit push or pull request, a training-job state change or the catch-up schedule, got None",
            ),
        },
        // train-on-push: pull requests and the catch-up
        BadEvent {
            name: "merged pull request without its id",
            function: "train-on-push",
            payload: without(merged(), "/detail/pullRequestId"),
            expected: malformed(PULL_REQUEST, "detail", "missing field `pullRequestId`"),
        },
        BadEvent {
            name: "pull request whose repositories are a string",
            function: "train-on-push",
            payload: with(
                merged(),
                "/detail/repositoryNames",
                json!("sagemaker-repository"),
            ),
            expected: malformed(
                PULL_REQUEST,
                "detail.repositoryNames",
                "invalid type: string \"sagemaker-repository\", expected a sequence",
            ),
        },
        BadEvent {
            name: "catch-up request with a typo beside it",
            function: "train-on-push",
            payload: json!({"catchUp": true, "dryrun": true}),
            expected: malformed(
                "catch-up request",
                "catchUp",
                "expected exactly {\"catchUp\": true}",
            ),
        },
        // train-on-push: training-job state changes
        BadEvent {
            name: "training job without an ARN",
            function: "train-on-push",
            payload: without(job(), "/detail/TrainingJobArn"),
            expected: malformed(JOB, "detail", "missing field `TrainingJobArn`"),
        },
        BadEvent {
            name: "training job status null",
            function: "train-on-push",
            payload: with(job(), "/detail/TrainingJobStatus", Value::Null),
            expected: malformed(
                JOB,
                "detail.TrainingJobStatus",
                "invalid type: null, expected a string",
            ),
        },
        BadEvent {
            name: "last-modified time that is not a time",
            function: "train-on-push",
            payload: with(job(), "/detail/LastModifiedTime", json!("yesterday")),
            expected: malformed(
                JOB,
                "detail.LastModifiedTime",
                "not a timestamp: \"yesterday\"",
            ),
        },
        BadEvent {
            name: "negative epoch time",
            function: "train-on-push",
            payload: with(job(), "/detail/LastModifiedTime", json!(-5)),
            expected: malformed(JOB, "detail.LastModifiedTime", "not a timestamp: -5"),
        },
        BadEvent {
            name: "metric value as text",
            function: "train-on-push",
            payload: with(job(), "/detail/FinalMetricDataList/0/Value", json!("high")),
            expected: malformed(
                JOB,
                "detail.FinalMetricDataList[0].Value",
                "invalid type: string \"high\", expected f64",
            ),
        },
        BadEvent {
            name: "hyperparameter that is not a string",
            function: "train-on-push",
            payload: with(job(), "/detail/HyperParameters", json!({"max_depth": 5})),
            expected: malformed(
                JOB,
                "detail.HyperParameters.max_depth",
                "invalid type: integer `5`, expected a string",
            ),
        },
        BadEvent {
            name: "model artifacts without the S3 location",
            function: "train-on-push",
            payload: with(job(), "/detail/ModelArtifacts", json!({"S3Uri": "s3://x"})),
            expected: malformed(
                JOB,
                "detail.ModelArtifacts",
                "missing field `S3ModelArtifacts`",
            ),
        },
        // notify: model packages and suite events
        BadEvent {
            name: "event from a foreign source",
            function: "notify",
            payload: with(package(), "/source", json!("aws.s3")),
            expected: malformed(
                "notify",
                "source",
                "expected a SageMaker model-package change or a studio-ops event, got source Some(\"aws.s3\") detail-type Some(\"SageMaker Model Package State Change\")",
            ),
        },
        BadEvent {
            name: "model package without its ARN",
            function: "notify",
            payload: without(package(), "/detail/ModelPackageArn"),
            expected: malformed(PACKAGE, "detail", "missing field `ModelPackageArn`"),
        },
        BadEvent {
            name: "unknown studio-ops detail-type",
            function: "notify",
            payload: with(stopped(), "/detail-type", json!("Coffee Made")),
            expected: malformed(
                "studio-ops",
                "detail-type",
                "unknown studio-ops detail-type \"Coffee Made\"",
            ),
        },
        BadEvent {
            name: "idle minutes as text",
            function: "notify",
            payload: with(stopped(), "/detail/idleMinutes", json!("long")),
            expected: malformed(
                "App Stopped",
                "detail.idleMinutes",
                "invalid type: string \"long\", expected u64",
            ),
        },
        BadEvent {
            name: "negative idle minutes",
            function: "notify",
            payload: with(stopped(), "/detail/idleMinutes", json!(-5)),
            expected: malformed(
                "App Stopped",
                "detail.idleMinutes",
                "invalid value: integer `-5`, expected u64",
            ),
        },
        BadEvent {
            name: "hourly cost as text",
            function: "notify",
            payload: with(stopped(), "/detail/hourlyCostUsd", json!("cheap")),
            expected: malformed(
                "App Stopped",
                "detail.hourlyCostUsd",
                "invalid type: string \"cheap\", expected f64",
            ),
        },
        BadEvent {
            name: "suite event without a detail",
            function: "notify",
            payload: without(stopped(), "/detail"),
            expected: malformed("App Stopped", ".", "missing field `detail`"),
        },
        BadEvent {
            name: "app name missing (injection attempt in the profile)",
            function: "notify",
            payload: with(
                without(stopped(), "/detail/appName"),
                "/detail/userProfileName",
                json!("alice\n\nSubject: you are fired <script>"),
            ),
            expected: malformed("App Stopped", "detail", "missing field `appName`"),
        },
        BadEvent {
            name: "sweep counter beyond u32",
            function: "notify",
            payload: json!({"source": "studio-ops", "detail-type": "Idle Sweep Completed", "detail": {"dryRun": false, "scanned": 4_294_967_296u64, "warned": 0, "stopped": 0, "failed": 0, "estimatedHourlySavingsUsd": 0.0}}),
            expected: malformed(
                "Idle Sweep Completed",
                "detail.scanned",
                "invalid value: integer `4294967296`, expected u32",
            ),
        },
        BadEvent {
            name: "model metrics as text",
            function: "notify",
            payload: json!({"source": "studio-ops", "detail-type": "Model Registered", "detail": {"model": "churn", "modelPackageGroupName": "churn", "modelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1", "trainingJobName": "churn-abc", "metrics": {"auc": "high"}}}),
            expected: malformed(
                "Model Registered",
                "detail.metrics.auc",
                "invalid type: string \"high\", expected f64",
            ),
        },
        BadEvent {
            name: "2 MB unicode user name with a missing field",
            function: "notify",
            payload: json!({"source": "studio-ops", "detail-type": "User Provisioned", "detail": {"domainId": "d-studioops0001", "userProfileName": "\u{1F600}".repeat(500_000), "userName": "ユーザー", "userId": "u-1"}}),
            expected: malformed("User Provisioned", "detail", "missing field `groupId`"),
        },
    ];
    // Every function refuses an empty object that is not a run request the same way.
    cases.push(BadEvent {
        name: "empty detail on a CloudTrail event",
        function: "provision-users",
        payload: with(add(), "/detail", json!({})),
        expected: malformed(CLOUDTRAIL, "detail", "missing field `eventSource`"),
    });
    cases
}
