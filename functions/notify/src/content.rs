//! What an alert says, independent of how it is delivered: its kind, severity, subject, facts, next steps,
//! links and the routing values that become SNS message attributes. Built by `model_package` and
//! `suite_alerts`, turned into an SNS message by `render`; `alert` (the use case) runs them in order.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::names;

use crate::sanitize;

/// Every kind of alert notify sends; the slug is the `event_type` message attribute (and its serde form, in
/// the handler's `Outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    ModelPackagePending,
    ModelPackageApproved,
    ModelPackageRejected,
    ModelPackageStatusChanged,
    UserProvisioned,
    UserDeprovisioned,
    ProvisioningBlocked,
    ProvisioningFailed,
    SharedSpaceReady,
    SharedSpaceRemoved,
    AppIdleWarning,
    AppStopped,
    IdleSweepCompleted,
    TrainingStarted,
    TrainingRejected,
    TrainingFailed,
    ModelRegistered,
    PushCaughtUp,
    BudgetAlert,
    SpendDigest,
    TeamDigest,
}

impl EventType {
    pub const ALL: [EventType; 21] = [
        EventType::ModelPackagePending,
        EventType::ModelPackageApproved,
        EventType::ModelPackageRejected,
        EventType::ModelPackageStatusChanged,
        EventType::UserProvisioned,
        EventType::UserDeprovisioned,
        EventType::ProvisioningBlocked,
        EventType::ProvisioningFailed,
        EventType::SharedSpaceReady,
        EventType::SharedSpaceRemoved,
        EventType::AppIdleWarning,
        EventType::AppStopped,
        EventType::IdleSweepCompleted,
        EventType::TrainingStarted,
        EventType::TrainingRejected,
        EventType::TrainingFailed,
        EventType::ModelRegistered,
        EventType::PushCaughtUp,
        EventType::BudgetAlert,
        EventType::SpendDigest,
        EventType::TeamDigest,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            EventType::ModelPackagePending => "model-package-pending",
            EventType::ModelPackageApproved => "model-package-approved",
            EventType::ModelPackageRejected => "model-package-rejected",
            EventType::ModelPackageStatusChanged => "model-package-status-changed",
            EventType::UserProvisioned => "user-provisioned",
            EventType::UserDeprovisioned => "user-deprovisioned",
            EventType::ProvisioningBlocked => "provisioning-blocked",
            EventType::ProvisioningFailed => "provisioning-failed",
            EventType::SharedSpaceReady => "shared-space-ready",
            EventType::SharedSpaceRemoved => "shared-space-removed",
            EventType::AppIdleWarning => "app-idle-warning",
            EventType::AppStopped => "app-stopped",
            EventType::IdleSweepCompleted => "idle-sweep-completed",
            EventType::TrainingStarted => "training-started",
            EventType::TrainingRejected => "training-rejected",
            EventType::TrainingFailed => "training-failed",
            EventType::ModelRegistered => "model-registered",
            EventType::PushCaughtUp => "push-caught-up",
            EventType::BudgetAlert => "budget-alert",
            EventType::SpendDigest => "spend-digest",
            EventType::TeamDigest => "team-digest",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.slug() == slug)
    }

    /// The alert kind of a suite event.
    pub fn of_suite(event: &SuiteEvent) -> Self {
        match event {
            SuiteEvent::UserProvisioned(_) => EventType::UserProvisioned,
            SuiteEvent::UserDeprovisioned(_) => EventType::UserDeprovisioned,
            SuiteEvent::ProvisioningBlocked(_) => EventType::ProvisioningBlocked,
            SuiteEvent::ProvisioningFailed(_) => EventType::ProvisioningFailed,
            SuiteEvent::SharedSpaceReady(_) => EventType::SharedSpaceReady,
            SuiteEvent::SharedSpaceRemoved(_) => EventType::SharedSpaceRemoved,
            SuiteEvent::AppIdleWarning(_) => EventType::AppIdleWarning,
            SuiteEvent::AppStopped(_) => EventType::AppStopped,
            SuiteEvent::IdleSweepCompleted(_) => EventType::IdleSweepCompleted,
            SuiteEvent::TrainingStarted(_) => EventType::TrainingStarted,
            SuiteEvent::TrainingRejected(_) => EventType::TrainingRejected,
            SuiteEvent::TrainingFailed(_) => EventType::TrainingFailed,
            SuiteEvent::ModelRegistered(_) => EventType::ModelRegistered,
            SuiteEvent::PushCaughtUp(_) => EventType::PushCaughtUp,
            SuiteEvent::BudgetAlert(_) => EventType::BudgetAlert,
            SuiteEvent::SpendDigest(_) => EventType::SpendDigest,
            SuiteEvent::TeamDigest(_) => EventType::TeamDigest,
        }
    }

    pub fn is_model_package(self) -> bool {
        matches!(
            self,
            EventType::ModelPackagePending
                | EventType::ModelPackageApproved
                | EventType::ModelPackageRejected
                | EventType::ModelPackageStatusChanged
        )
    }
}

/// How urgent an alert is (the `severity` attribute): `info` needs no action, `warning` needs the
/// concerned person's attention, `error` needs someone to fix something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One labelled value in the body's details block.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

/// A link with what it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub label: &'static str,
    pub url: String,
}

/// One metric row: the value now and, when the comparison has it, the value of the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub name: String,
    pub value: f64,
    pub baseline: Option<f64>,
}

impl MetricRow {
    pub fn delta(&self) -> Option<f64> {
        self.baseline.map(|b| self.value - b)
    }
}

/// A table of metrics with the caption saying what they are compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTable {
    pub caption: String,
    pub rows: Vec<MetricRow>,
}

/// The values subscription filter policies match on. Empty values are omitted from the message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    pub domain: Option<String>,
    pub model_group: Option<String>,
    /// The person the alert concerns: a Studio user profile name or, for training and model events,
    /// the commit author / registrant as the event names them.
    pub user: Option<String>,
}

/// Where the alert came from (for the machine-readable form and the footer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    pub detail_type: String,
    pub event_id: Option<String>,
    pub time: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
}

/// A finished alert, every text already sanitized.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub event_type: EventType,
    pub severity: Severity,
    /// The subject without the configured prefix.
    pub subject: String,
    /// What happened, one or two sentences.
    pub summary: String,
    pub facts: Vec<Fact>,
    pub metrics: Option<MetricTable>,
    pub next_steps: Vec<String>,
    pub links: Vec<Link>,
    pub routing: Routing,
    pub origin: Origin,
    /// The kind-specific machine-readable fields.
    pub details: Value,
}

/// Longest value shown for a fact (reasons and descriptions can be long; hostile ones very long).
pub const MAX_FACT_CHARS: usize = 500;
/// Longest name interpolated into a subject, so that the verb at the end always survives.
pub const MAX_SUBJECT_NAME_CHARS: usize = 40;

/// Builds the lists of an alert with sanitizing on the way in.
#[derive(Debug, Default)]
pub struct Body {
    pub facts: Vec<Fact>,
    pub next_steps: Vec<String>,
    pub links: Vec<Link>,
}

impl Body {
    /// Adds a fact when the value has anything left after sanitizing.
    pub fn fact(&mut self, label: &'static str, value: impl AsRef<str>) {
        let v = sanitize::one_line(value.as_ref(), MAX_FACT_CHARS);
        if !v.is_empty() {
            self.facts.push(Fact { label, value: v });
        }
    }

    pub fn fact_opt(&mut self, label: &'static str, value: Option<impl AsRef<str>>) {
        if let Some(v) = value {
            self.fact(label, v);
        }
    }

    pub fn step(&mut self, text: impl Into<String>) {
        self.next_steps.push(text.into());
    }

    pub fn link(&mut self, label: &'static str, url: Option<String>) {
        if let Some(url) = url {
            self.links.push(Link { label, url });
        }
    }
}

/// An MLflow run as a fact: its id, and its page when the address is one of SageMaker managed MLflow's
/// (`https://….sagemaker.aws/…`, anything else in the metadata is not offered as a link).
pub fn mlflow_run(id: Option<&str>, url: Option<&str>) -> Option<String> {
    let id = id?;
    let page = url.filter(|u| {
        u.strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|host| host.ends_with(".sagemaker.aws"))
    });
    Some(match page {
        Some(u) => format!("{} ({})", shown(id), shown(u)),
        None => shown(id),
    })
}

/// A name for a subject: sanitized, ASCII, bounded.
pub fn subject_name(text: &str) -> String {
    sanitize::subject_piece(text, MAX_SUBJECT_NAME_CHARS)
}

/// A value for display in a sentence: sanitized and bounded.
pub fn shown(text: &str) -> String {
    sanitize::one_line(text, MAX_FACT_CHARS)
}

/// A routing value: sanitized; empty becomes `None`.
pub fn routing_value(text: Option<&str>) -> Option<String> {
    text.and_then(sanitize::attribute_value)
}

/// A number for people: up to four decimals, trailing zeros dropped; `n/a` for NaN or infinity.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{value:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A signed difference: `+0.014`, `-0.003`, `±0`.
pub fn signed(delta: f64) -> String {
    let n = number(delta);
    if n == "0" {
        "±0".to_string()
    } else if delta > 0.0 {
        format!("+{n}")
    } else {
        n
    }
}

/// Dollars for people: `$0.74`.
pub fn dollars(value: f64) -> String {
    if value.is_finite() {
        format!("${value:.2}")
    } else {
        "n/a".to_string()
    }
}

/// A commit id as people read it: the shared short form (seven lower-case hex digits) when it is a commit id,
/// else the text itself, sanitized (an event may carry anything there).
pub fn short_commit(commit: &str) -> String {
    let c = sanitize::one_line(commit, 64);
    names::short_commit(&c).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.slug()));
            assert_eq!(EventType::from_slug(t.slug()), Some(t));
        }
        assert_eq!(EventType::from_slug("coffee"), None);
    }

    #[test]
    fn the_serde_form_is_the_slug() {
        for t in EventType::ALL {
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, Value::String(t.slug().to_string()));
            assert_eq!(serde_json::from_value::<EventType>(json).unwrap(), t);
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.912), "0.912");
        assert_eq!(number(0.91234567), "0.9123");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(-0.00001), "0");
        assert_eq!(number(f64::NAN), "n/a");
        assert_eq!(signed(0.014), "+0.014");
        assert_eq!(signed(-0.003), "-0.003");
        assert_eq!(signed(0.0), "±0");
        assert_eq!(dollars(0.7364), "$0.74");
    }

    #[test]
    fn commits_are_shortened_only_when_they_are_shas() {
        assert_eq!(
            short_commit("f485fcc95a795517f279d0a877227e51208b0dfc"),
            "f485fcc"
        );
        assert_eq!(short_commit("abc1234"), "abc1234");
        assert_eq!(short_commit("not\na sha"), "not a sha");
    }

    #[test]
    fn body_drops_empty_facts() {
        let mut b = Body::default();
        b.fact("Empty", " \n ");
        b.fact("Name", "ana\u{202E}");
        b.fact_opt("None", None::<&str>);
        assert_eq!(
            b.facts,
            vec![Fact {
                label: "Name",
                value: "ana".into()
            }]
        );
    }
}
