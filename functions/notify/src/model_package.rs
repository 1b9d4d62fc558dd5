//! Model-registry changes: which kind of change an event is, its deduplication key, what a package's
//! metadata says (metrics, lineage, approver), and the alert comparing it with the approved version.

use std::collections::BTreeMap;

use crate::trigger::ModelPackageStateChange;
use serde_json::{Map, Value, json};

use crate::content::{
    self, Alert, Body, EventType, MetricRow, MetricTable, Routing, Severity, short_commit, shown,
    subject_name,
};
use crate::context::AlertContext;
use crate::links;

/// `CustomerMetadataProperties` keys train-on-push writes (the lineage contract between the two functions).
pub const META_COMMIT: &str = "studio-ops:commit";
pub const META_REPOSITORY: &str = "studio-ops:repository";
pub const META_TRAINING_JOB: &str = "studio-ops:training-job";
pub const META_AUTHOR: &str = "studio-ops:author";
/// Final metrics are `studio-ops:metric:<metric name>` = decimal number (model packages hold no inline metrics;
/// `ModelMetrics` only points at S3 reports).
pub const META_METRIC_PREFIX: &str = "studio-ops:metric:";
/// The MLflow run that trained the version, and its page in the tracking server's UI.
pub const META_MLFLOW_RUN_ID: &str = "studio-ops:mlflow-run-id";
pub const META_MLFLOW_RUN_URL: &str = "studio-ops:mlflow-run-url";

/// What kind of registry change an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PackageChange {
    /// A new version finished registering and waits for a reviewer.
    Pending,
    Approved,
    Rejected,
    /// Anything else: registration in progress, failed, deleting, unversioned packages.
    Other,
}

impl PackageChange {
    pub const ALL: [PackageChange; 4] = [
        PackageChange::Pending,
        PackageChange::Approved,
        PackageChange::Rejected,
        PackageChange::Other,
    ];

    /// The name used in `STUDIO_OPS_NOTIFY_MODEL_PACKAGE_ALERTS`.
    pub fn name(self) -> &'static str {
        match self {
            PackageChange::Pending => "pending",
            PackageChange::Approved => "approved",
            PackageChange::Rejected => "rejected",
            PackageChange::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn event_type(self) -> EventType {
        match self {
            PackageChange::Pending => EventType::ModelPackagePending,
            PackageChange::Approved => EventType::ModelPackageApproved,
            PackageChange::Rejected => EventType::ModelPackageRejected,
            PackageChange::Other => EventType::ModelPackageStatusChanged,
        }
    }
}

/// Pending/approved/rejected only count once the package is `Completed`: SageMaker also reports the
/// `InProgress` step of a registration, and a package being deleted is not a decision.
pub fn classify(change: &ModelPackageStateChange) -> PackageChange {
    if change.model_package_status != "Completed" {
        return PackageChange::Other;
    }
    match change.model_approval_status.as_deref() {
        Some("PendingManualApproval") => PackageChange::Pending,
        Some("Approved") => PackageChange::Approved,
        Some("Rejected") => PackageChange::Rejected,
        _ => PackageChange::Other,
    }
}

/// One key per real change: the same package, approval, status and modification time is the same change,
/// however often SageMaker reports it.
pub fn dedup_key(change: &ModelPackageStateChange) -> String {
    let modified = change
        .last_modified_time
        .or(change.creation_time)
        .map(|t| t.0.as_millisecond().to_string())
        .unwrap_or_else(|| "-".to_string());
    format!(
        "model-package|{}|{}|{}|{}",
        change.model_package_arn,
        change.model_approval_status.as_deref().unwrap_or("-"),
        change.model_package_status,
        modified
    )
}

/// The model package group an event belongs to: the field, else from the ARN (`.../model-package/<group>/<n>`).
pub fn group_of(change: &ModelPackageStateChange) -> Option<String> {
    change
        .model_package_group_name
        .clone()
        .filter(|g| !g.is_empty())
        .or_else(|| group_from_arn(&change.model_package_arn))
}

fn group_from_arn(arn: &str) -> Option<String> {
    let (_, resource) = arn.split_once(":model-package/")?;
    let mut parts = resource.split('/');
    let group = parts.next()?;
    parts.next()?.parse::<u64>().ok()?;
    (!group.is_empty()).then(|| group.to_string())
}

/// What the registry knows about one package version, from the event or from `DescribeModelPackage`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackageDetails {
    pub arn: String,
    pub group: Option<String>,
    pub version: Option<u64>,
    pub description: Option<String>,
    pub approval_status: Option<String>,
    pub package_status: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub commit: Option<String>,
    pub repository: Option<String>,
    pub training_job: Option<String>,
    pub author: Option<String>,
    /// Who made the last change (for an approval or rejection: the reviewer).
    pub modified_by: Option<String>,
    pub approval_description: Option<String>,
    pub created_by: Option<String>,
    pub domain_id: Option<String>,
    pub created_at: Option<String>,
    pub image: Option<String>,
    pub model_data: Option<String>,
    pub quality_report: Option<String>,
    pub mlflow_run: Option<String>,
    pub mlflow_run_url: Option<String>,
}

/// Lineage read from `MetadataProperties` and `CustomerMetadataProperties`; the studio-ops keys win.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    pub commit: Option<String>,
    pub repository: Option<String>,
    pub training_job: Option<String>,
    pub author: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub mlflow_run: Option<String>,
    pub mlflow_run_url: Option<String>,
}

impl Lineage {
    pub fn read<'a>(
        customer: impl IntoIterator<Item = (&'a String, &'a String)>,
        commit_id: Option<&str>,
        repository: Option<&str>,
        generated_by: Option<&str>,
    ) -> Self {
        let mut l = Lineage::default();
        for (k, v) in customer {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                META_COMMIT => l.commit = Some(v.to_string()),
                META_REPOSITORY => l.repository = Some(v.to_string()),
                META_TRAINING_JOB => l.training_job = Some(v.to_string()),
                META_AUTHOR => l.author = Some(v.to_string()),
                META_MLFLOW_RUN_ID => l.mlflow_run = Some(v.to_string()),
                META_MLFLOW_RUN_URL => l.mlflow_run_url = Some(v.to_string()),
                other => {
                    if let Some(name) = other.strip_prefix(META_METRIC_PREFIX)
                        && !name.is_empty()
                        && let Ok(x) = v.parse::<f64>()
                        && x.is_finite()
                    {
                        l.metrics.insert(name.to_string(), x);
                    }
                }
            }
        }
        l.commit = l.commit.or(nonempty(commit_id).map(str::to_string));
        l.repository = l.repository.or(nonempty(repository).map(str::to_string));
        l.training_job = l
            .training_job
            .or(nonempty(generated_by).map(training_job_name));
        l
    }
}

/// A trimmed, non-empty string.
fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// `arn:...:training-job/<name>` → `<name>`; anything else as it is.
fn training_job_name(generated_by: &str) -> String {
    generated_by
        .split_once(":training-job/")
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| generated_by.to_string())
}

/// A user context (`CreatedBy`, `LastModifiedBy`) as a name: the Studio profile, else the IAM identity.
pub fn user_context_name(profile: Option<&str>, iam_arn: Option<&str>) -> Option<String> {
    nonempty(profile).map(str::to_string).or_else(|| {
        nonempty(iam_arn).map(|arn| {
            // assumed-role/<role>/<session>: the session is usually the person.
            arn.rsplit_once(":assumed-role/")
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_else(|| arn.to_string())
        })
    })
}

impl PackageDetails {
    /// What the event itself says (used when `DescribeModelPackage` cannot be reached, and for the change's
    /// own approval fields, which describe this change rather than the latest state).
    pub fn from_event(change: &ModelPackageStateChange) -> Self {
        let meta = change.metadata_properties.as_ref();
        let meta_str = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
        let empty = BTreeMap::new();
        let lineage = Lineage::read(
            change
                .customer_metadata_properties
                .as_ref()
                .unwrap_or(&empty),
            meta_str("CommitId"),
            meta_str("Repository"),
            meta_str("GeneratedBy"),
        );
        let by = change.last_modified_by.as_ref();
        let by_str = |k: &str| by.and_then(|b| b.get(k)).and_then(Value::as_str);
        let iam_arn = by
            .and_then(|b| b.get("IamIdentity"))
            .and_then(|i| i.get("Arn"))
            .and_then(Value::as_str);
        let container = change
            .inference_specification
            .as_ref()
            .and_then(|s| s.get("Containers"))
            .and_then(|c| c.get(0));
        let container_str = |k: &str| {
            container
                .and_then(|c| c.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        PackageDetails {
            arn: change.model_package_arn.clone(),
            group: group_of(change),
            version: change.model_package_version,
            description: None,
            approval_status: change.model_approval_status.clone(),
            package_status: Some(change.model_package_status.clone()),
            metrics: lineage.metrics,
            commit: lineage.commit,
            repository: lineage.repository,
            training_job: lineage.training_job,
            author: lineage.author,
            mlflow_run: lineage.mlflow_run,
            mlflow_run_url: lineage.mlflow_run_url,
            modified_by: user_context_name(by_str("UserProfileName"), iam_arn),
            approval_description: change.approval_description.clone(),
            created_by: None,
            domain_id: by_str("DomainId").map(str::to_string),
            created_at: change.creation_time.map(|t| t.0.to_string()),
            image: container_str("Image"),
            model_data: container_str("ModelDataUrl"),
            quality_report: None,
        }
    }

    /// The event's view of the change, completed with what the registry adds.
    pub fn merged_with(self, described: &PackageDetails) -> PackageDetails {
        fn pick(a: Option<String>, b: &Option<String>) -> Option<String> {
            a.filter(|s| !s.trim().is_empty()).or_else(|| b.clone())
        }
        PackageDetails {
            arn: self.arn,
            group: pick(self.group, &described.group),
            version: self.version.or(described.version),
            description: pick(self.description, &described.description),
            approval_status: pick(self.approval_status, &described.approval_status),
            package_status: pick(self.package_status, &described.package_status),
            metrics: if self.metrics.is_empty() {
                described.metrics.clone()
            } else {
                self.metrics
            },
            commit: pick(self.commit, &described.commit),
            repository: pick(self.repository, &described.repository),
            training_job: pick(self.training_job, &described.training_job),
            author: pick(self.author, &described.author),
            modified_by: pick(self.modified_by, &described.modified_by),
            approval_description: pick(self.approval_description, &described.approval_description),
            created_by: pick(self.created_by, &described.created_by),
            domain_id: pick(self.domain_id, &described.domain_id),
            created_at: pick(self.created_at, &described.created_at),
            image: pick(self.image, &described.image),
            model_data: pick(self.model_data, &described.model_data),
            quality_report: pick(self.quality_report, &described.quality_report),
            mlflow_run: pick(self.mlflow_run, &described.mlflow_run),
            mlflow_run_url: pick(self.mlflow_run_url, &described.mlflow_run_url),
        }
    }

    fn version_label(&self) -> String {
        match self.version {
            Some(v) => format!("v{v}"),
            None => self.arn.rsplit('/').next().unwrap_or(&self.arn).to_string(),
        }
    }
}

/// What the registry added to the event: the described package, the approved version compared with, and
/// why either is missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrichment {
    pub described: Option<PackageDetails>,
    pub baseline: Option<PackageDetails>,
    /// Set when a registry call failed: the alert is still sent, with what the event carries.
    pub problem: Option<String>,
}

/// Metric rows of `current` with the baseline's values for the same names; metrics only the baseline
/// has are listed too (a metric that disappeared is worth seeing).
pub fn metric_rows(
    current: &BTreeMap<String, f64>,
    baseline: Option<&BTreeMap<String, f64>>,
) -> Vec<MetricRow> {
    let mut rows: Vec<MetricRow> = current
        .iter()
        .map(|(name, value)| MetricRow {
            name: name.clone(),
            value: *value,
            baseline: baseline.and_then(|b| b.get(name).copied()),
        })
        .collect();
    if let Some(b) = baseline {
        for (name, value) in b {
            if !current.contains_key(name) {
                rows.push(MetricRow {
                    name: name.clone(),
                    value: f64::NAN,
                    baseline: Some(*value),
                });
            }
        }
    }
    rows
}

/// The alert for a model-package change: the headline, the facts, the metric comparison, what to do next, the
/// links and the machine-readable details, each built by its own step from one [`PackageAlert`].
pub fn alert(
    change: &ModelPackageStateChange,
    kind: PackageChange,
    enrichment: &Enrichment,
    ctx: &AlertContext,
) -> Alert {
    let a = PackageAlert::new(change, kind, enrichment, ctx);
    let (severity, subject, summary) = a.headline();
    let mut body = Body::default();
    a.facts(&mut body, enrichment.problem.as_deref());
    let metrics = a.metric_table();
    a.next_steps(&mut body);
    a.links(&mut body, ctx.region());
    let details = a.details(metrics.as_ref(), enrichment.problem.as_deref());
    Alert {
        event_type: kind.event_type(),
        severity,
        subject,
        summary,
        facts: body.facts,
        metrics,
        next_steps: body.next_steps,
        links: body.links,
        routing: Routing {
            domain: content::routing_value(a.domain.as_deref()),
            model_group: content::routing_value(a.pkg.group.as_deref()),
            user: content::routing_value(a.pkg.author.as_deref()),
        },
        origin: ctx.origin.clone(),
        details,
    }
}

/// What every step of a model-package alert reads: the change, the package as the event and the registry
/// describe it together, and the names shown for it.
struct PackageAlert<'a> {
    kind: PackageChange,
    change: &'a ModelPackageStateChange,
    pkg: PackageDetails,
    /// The group's name, `model` when neither the event nor the registry names one.
    group: String,
    /// `v3`, or the ARN's last part for an unversioned package.
    version: String,
    domain: Option<String>,
    /// The approved version compared with (never the package itself).
    baseline: Option<&'a PackageDetails>,
    reviewer: Option<String>,
    reason: Option<String>,
}

impl<'a> PackageAlert<'a> {
    fn new(
        change: &'a ModelPackageStateChange,
        kind: PackageChange,
        enrichment: &'a Enrichment,
        ctx: &AlertContext,
    ) -> Self {
        let event_view = PackageDetails::from_event(change);
        let pkg = match &enrichment.described {
            Some(d) => event_view.merged_with(d),
            None => event_view,
        };
        let baseline = enrichment.baseline.as_ref().filter(|b| b.arn != pkg.arn);
        Self {
            kind,
            change,
            group: pkg.group.clone().unwrap_or_else(|| "model".to_string()),
            version: pkg.version_label(),
            domain: ctx.domain(pkg.domain_id.as_deref()).map(str::to_string),
            baseline,
            reviewer: pkg.modified_by.as_deref().map(shown),
            reason: pkg.approval_description.as_deref().map(shown),
            pkg,
        }
    }

    /// Severity, subject and the one-sentence summary.
    fn headline(&self) -> (Severity, String, String) {
        let (group, version) = (&self.group, &self.version);
        match self.kind {
            PackageChange::Pending => (
                Severity::Info,
                format!(
                    "{} {} awaits approval",
                    subject_name(group),
                    subject_name(version)
                ),
                format!(
                    "Model {} {} was registered and waits for a reviewer's decision.",
                    shown(group),
                    shown(version)
                ),
            ),
            PackageChange::Approved => {
                let (subject, summary) = self.decided("approved");
                (Severity::Info, subject, summary)
            }
            PackageChange::Rejected => {
                let (subject, summary) = self.decided("rejected");
                (Severity::Warning, subject, summary)
            }
            PackageChange::Other => {
                let status = shown(&self.change.model_package_status);
                let approval = self
                    .change
                    .model_approval_status
                    .as_deref()
                    .map(shown)
                    .unwrap_or_else(|| "no approval status".to_string());
                (
                    if self.change.model_package_status == "Failed" {
                        Severity::Warning
                    } else {
                        Severity::Info
                    },
                    format!(
                        "{} {} is {}",
                        subject_name(group),
                        subject_name(version),
                        subject_name(&status)
                    ),
                    format!(
                        "Model {} {} changed: package status {status}, {approval}.",
                        shown(group),
                        shown(version)
                    ),
                )
            }
        }
    }

    /// Subject and summary of a reviewer's decision (`verb`: approved, rejected), naming the reviewer if known.
    fn decided(&self, verb: &str) -> (String, String) {
        let (group, version) = (&self.group, &self.version);
        let subject = match &self.reviewer {
            Some(r) => format!(
                "{} {} {verb} by {}",
                subject_name(group),
                subject_name(version),
                subject_name(r)
            ),
            None => format!("{} {} {verb}", subject_name(group), subject_name(version)),
        };
        let summary = format!(
            "Model {} {} was {verb}{}.",
            shown(group),
            shown(version),
            self.reviewer
                .as_ref()
                .map(|r| format!(" by {r}"))
                .unwrap_or_default()
        );
        (subject, summary)
    }

    /// The details block: what the package is, who decided, where it came from, and a note when the registry
    /// could not be read.
    fn facts(&self, body: &mut Body, problem: Option<&str>) {
        let pkg = &self.pkg;
        body.fact("Model group", &self.group);
        body.fact(
            "Version",
            pkg.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| self.version.clone()),
        );
        body.fact(
            "Status",
            format!(
                "{} (package {})",
                pkg.approval_status.as_deref().unwrap_or("-"),
                pkg.package_status.as_deref().unwrap_or("-")
            ),
        );
        if matches!(self.kind, PackageChange::Approved | PackageChange::Rejected) {
            body.fact_opt("Reviewer", self.reviewer.as_deref());
            body.fact_opt("Reviewer's note", self.reason.as_deref());
        }
        body.fact_opt("Description", pkg.description.as_deref());
        let commit = pkg.commit.as_deref().map(|c| match &pkg.repository {
            Some(r) => format!("{} ({})", short_commit(c), r),
            None => short_commit(c),
        });
        body.fact_opt("Commit", commit.as_deref());
        body.fact_opt("Training job", pkg.training_job.as_deref());
        body.fact_opt(
            "MLflow run",
            content::mlflow_run(pkg.mlflow_run.as_deref(), pkg.mlflow_run_url.as_deref()),
        );
        body.fact_opt("Author", pkg.author.as_deref());
        body.fact_opt("Registered", pkg.created_at.as_deref());
        body.fact_opt("Image", pkg.image.as_deref());
        body.fact_opt("Artifacts", pkg.model_data.as_deref());
        body.fact_opt("Quality report", pkg.quality_report.as_deref());
        body.fact("Package ARN", &pkg.arn);
        if let Some(problem) = problem {
            body.fact(
                "Note",
                format!("registry details unavailable ({problem}); showing what the event carries"),
            );
        }
    }

    /// The package's metrics beside the approved version's, when there are any.
    fn metric_table(&self) -> Option<MetricTable> {
        let rows = metric_rows(&self.pkg.metrics, self.baseline.map(|b| &b.metrics));
        (!rows.is_empty()).then(|| MetricTable {
            caption: match self.baseline {
                Some(b) => format!(
                    "Metrics (change vs. approved {})",
                    shown(&b.version_label())
                ),
                None => "Metrics (no approved version to compare with)".to_string(),
            },
            rows,
        })
    }

    /// What the reviewer, the author or nobody should do now.
    fn next_steps(&self, body: &mut Body) {
        let shown_group = shown(&self.group);
        let shown_version = shown(&self.version);
        match self.kind {
            PackageChange::Pending => {
                body.step(format!(
                    "Review the metrics and lineage above, then approve or reject {shown_version} in Studio (Models > Registered models > {shown_group})."
                ));
                body.step(format!(
                    "Or from a terminal: aws sagemaker update-model-package --model-package-arn {} --model-approval-status Approved --approval-description \"why\"",
                    shown(&self.pkg.arn)
                ));
            }
            PackageChange::Approved => {
                body.step(format!(
                    "{shown_version} is now the latest approved version of {shown_group}; deployments that follow the latest approved version pick it up."
                ));
                body.step(format!(
                    "To roll back, set {shown_version} to Rejected: the previous approved version becomes the latest again."
                ));
            }
            PackageChange::Rejected => {
                body.step(
                    "Author: read the reviewer's note, fix the model and push a new commit; training starts again.",
                );
                body.step(format!(
                    "Nothing changes for deployments: the approved version of {shown_group} stays in place."
                ));
            }
            PackageChange::Other => {
                body.step(
                    "No action needed unless the status is Failed; then check the package in the model registry.",
                );
            }
        }
    }

    /// Studio, the model group in the registry, and the training job that produced the package.
    fn links(&self, body: &mut Body, region: &str) {
        body.link(
            "Studio",
            self.domain
                .as_deref()
                .and_then(|d| links::studio(region, d)),
        );
        body.link(
            "Model registry",
            links::model_group_console(region, &self.group),
        );
        body.link(
            "Training job",
            self.pkg
                .training_job
                .as_deref()
                .and_then(|j| links::training_job_console(region, j)),
        );
    }

    /// The kind-specific machine-readable fields (`details` of the JSON form).
    fn details(&self, metrics: Option<&MetricTable>, problem: Option<&str>) -> Value {
        let pkg = &self.pkg;
        let mut details = Map::new();
        details.insert("change".into(), json!(self.kind.name()));
        details.insert("modelPackageArn".into(), json!(pkg.arn));
        details.insert("modelPackageGroup".into(), json!(pkg.group));
        details.insert("version".into(), json!(pkg.version));
        details.insert("approvalStatus".into(), json!(pkg.approval_status));
        details.insert("packageStatus".into(), json!(pkg.package_status));
        details.insert("modifiedBy".into(), json!(pkg.modified_by));
        details.insert(
            "approvalDescription".into(),
            json!(pkg.approval_description),
        );
        details.insert("commitId".into(), json!(pkg.commit));
        details.insert("repository".into(), json!(pkg.repository));
        details.insert("trainingJobName".into(), json!(pkg.training_job));
        details.insert("author".into(), json!(pkg.author));
        details.insert("metrics".into(), json!(pkg.metrics));
        details.insert(
            "baseline".into(),
            match self.baseline {
                Some(b) => json!({
                    "modelPackageArn": b.arn,
                    "version": b.version,
                    "metrics": b.metrics,
                }),
                None => Value::Null,
            },
        );
        let deltas: BTreeMap<&str, f64> = metrics
            .iter()
            .flat_map(|t| t.rows.iter())
            .filter_map(|r| {
                r.delta()
                    .filter(|d| d.is_finite())
                    .map(|d| (r.name.as_str(), round6(d)))
            })
            .collect();
        details.insert("metricDeltas".into(), json!(deltas));
        details.insert(
            "enrichment".into(),
            json!(match problem {
                Some(p) => format!("event only: {p}"),
                None => "complete".to_string(),
            }),
        );
        Value::Object(details)
    }
}

/// Differences rounded so that the machine form does not show `0.013999999999999901`.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use studio_ops_shared::events::time::LenientTime;

    fn change(approval: Option<&str>, status: &str, modified: &str) -> ModelPackageStateChange {
        serde_json::from_value(json!({
            "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-xgboost/3",
            "ModelPackageStatus": status,
            "ModelApprovalStatus": approval,
            "LastModifiedTime": modified,
            "CustomerMetadataProperties": {
                "studio-ops:commit": "f485fcc95a795517f279d0a877227e51208b0dfc",
                "studio-ops:author": "ana",
                "studio-ops:metric:validation:auc": "0.912",
                "studio-ops:metric:bogus": "NaN",
                "studio-ops:metric:": "1"
            }
        }))
        .unwrap()
    }

    #[test]
    fn classification_table() {
        let cases = [
            (
                Some("PendingManualApproval"),
                "Completed",
                PackageChange::Pending,
            ),
            (Some("Approved"), "Completed", PackageChange::Approved),
            (Some("Rejected"), "Completed", PackageChange::Rejected),
            (
                Some("PendingManualApproval"),
                "InProgress",
                PackageChange::Other,
            ),
            (Some("Approved"), "Deleting", PackageChange::Other),
            (Some("Approved"), "Failed", PackageChange::Other),
            (None, "Completed", PackageChange::Other),
            (Some("SomethingNew"), "Completed", PackageChange::Other),
        ];
        for (approval, status, want) in cases {
            assert_eq!(
                classify(&change(approval, status, "2026-11-24T10:00:00Z")),
                want,
                "{approval:?} {status}"
            );
        }
    }

    #[test]
    fn dedup_key_separates_real_changes_only() {
        let a = change(Some("Approved"), "Completed", "2026-11-24T10:00:00Z");
        let same = change(Some("Approved"), "Completed", "2026-11-24T10:00:00.000Z");
        let rejected = change(Some("Rejected"), "Completed", "2026-11-24T10:00:00Z");
        let later = change(Some("Approved"), "Completed", "2026-11-24T11:00:00Z");
        assert_eq!(dedup_key(&a), dedup_key(&same));
        assert_ne!(dedup_key(&a), dedup_key(&rejected));
        assert_ne!(dedup_key(&a), dedup_key(&later));
        let mut no_time = a.clone();
        no_time.last_modified_time = None;
        let created = LenientTime::parse("2026-11-24T09:00:00Z").unwrap();
        no_time.creation_time = Some(created);
        assert!(dedup_key(&no_time).ends_with(&format!("|{}", created.0.as_millisecond())));
    }

    #[test]
    fn lineage_reads_studio_ops_keys_and_skips_bad_metrics() {
        let d = PackageDetails::from_event(&change(
            Some("Approved"),
            "Completed",
            "2026-11-24T10:00:00Z",
        ));
        assert_eq!(d.group.as_deref(), Some("churn-xgboost"));
        assert_eq!(d.author.as_deref(), Some("ana"));
        assert_eq!(d.metrics.len(), 1);
        assert_eq!(d.metrics["validation:auc"], 0.912);
        let l = Lineage::read(
            &BTreeMap::new(),
            Some("abc"),
            Some("repo"),
            Some("arn:aws:sagemaker:us-east-1:1:training-job/job-1"),
        );
        assert_eq!(l.training_job.as_deref(), Some("job-1"));
        assert_eq!(l.commit.as_deref(), Some("abc"));
    }

    #[test]
    fn user_context_prefers_profile_then_iam_session() {
        assert_eq!(
            user_context_name(Some("marta"), Some("arn:x")).as_deref(),
            Some("marta")
        );
        assert_eq!(
            user_context_name(None, Some("arn:aws:sts::1:assumed-role/Admin/marta")).as_deref(),
            Some("Admin/marta")
        );
        assert_eq!(user_context_name(Some(" "), None), None);
    }

    #[test]
    fn group_from_arn_needs_a_version() {
        assert_eq!(
            group_from_arn("arn:aws:sagemaker:us-east-1:1:model-package/g/3").as_deref(),
            Some("g")
        );
        assert_eq!(
            group_from_arn("arn:aws:sagemaker:us-east-1:1:model-package/solo"),
            None
        );
    }

    #[test]
    fn metric_rows_pair_with_baseline() {
        let cur = BTreeMap::from([("auc".to_string(), 0.9), ("new".to_string(), 1.0)]);
        let base = BTreeMap::from([("auc".to_string(), 0.8), ("gone".to_string(), 2.0)]);
        let rows = metric_rows(&cur, Some(&base));
        assert_eq!(rows.len(), 3);
        assert!((rows[0].delta().unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(rows[1].delta(), None);
        assert_eq!(rows[2].name, "gone");
        assert!(rows[2].value.is_nan());
    }

    #[test]
    fn hostile_group_name_cannot_break_the_subject() {
        let mut c = change(Some("Approved"), "Completed", "2026-11-24T10:00:00Z");
        c.model_package_group_name =
            Some(format!("evil\r\nBcc: all@example.com{}", "x".repeat(300)));
        let a = alert(
            &c,
            PackageChange::Approved,
            &Enrichment::default(),
            &AlertContext::default(),
        );
        assert!(!a.subject.contains('\n') && !a.subject.contains('\r'));
        assert!(a.subject.ends_with("approved"), "{}", a.subject);
        assert!(a.subject.len() < 100);
    }
}
