//! notify settings, read once at cold start: the topic, which alerts are sent, and how they look.

use std::collections::BTreeSet;
use std::time::Duration;

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};
use studio_ops_shared::names::Arn;

use crate::content::EventType;
use crate::model_package::PackageChange;

/// The SNS topic every alert is published to.
pub const ALERT_TOPIC_ARN: &str = "STUDIO_OPS_ALERT_TOPIC_ARN";
/// The Studio domain named in alerts (and their links) whose event carries none.
pub const DOMAIN_ID: &str = "STUDIO_OPS_DOMAIN_ID";
/// Which model-package changes alert: `pending,approved,rejected,other`, or `none`.
pub const MODEL_PACKAGE_ALERTS: &str = "STUDIO_OPS_NOTIFY_MODEL_PACKAGE_ALERTS";
/// Model package groups to alert on (comma-separated); empty = all groups.
pub const MODEL_PACKAGE_GROUPS: &str = "STUDIO_OPS_NOTIFY_MODEL_PACKAGE_GROUPS";
/// Event types never sent (comma-separated `event_type` values, e.g. `training-started`).
pub const MUTED_EVENTS: &str = "STUDIO_OPS_NOTIFY_MUTED_EVENTS";
/// Whether a sweep summary that warned, stopped and failed nothing is sent.
pub const QUIET_SWEEPS: &str = "STUDIO_OPS_NOTIFY_QUIET_SWEEPS";
/// How long an alert's key is remembered to drop duplicates.
pub const DEDUP_WINDOW_SECONDS: &str = "STUDIO_OPS_NOTIFY_DEDUP_WINDOW_SECONDS";
/// Put before every subject, so mail rules can sort the alerts.
pub const SUBJECT_PREFIX: &str = "STUDIO_OPS_NOTIFY_SUBJECT_PREFIX";

pub const DEFAULT_MODEL_PACKAGE_ALERTS: [PackageChange; 3] = [
    PackageChange::Pending,
    PackageChange::Approved,
    PackageChange::Rejected,
];
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_SUBJECT_PREFIX: &str = "[studio-ops]";
const MAX_SUBJECT_PREFIX_CHARS: usize = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub suite: SuiteConfig,
    pub topic_arn: String,
    pub domain_id: Option<String>,
    pub model_package_alerts: BTreeSet<PackageChange>,
    /// Empty = every group.
    pub model_package_groups: BTreeSet<String>,
    pub muted: BTreeSet<EventType>,
    pub quiet_sweeps: bool,
    pub dedup_window: Duration,
    pub subject_prefix: String,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let suite = SuiteConfig::from_env(env)?;
        let topic_arn = env.string(ALERT_TOPIC_ARN, "the ARN of the team's SNS topic")?;
        if !is_topic_arn(&topic_arn) {
            return Err(ConfigError::Malformed {
                var: ALERT_TOPIC_ARN.into(),
                expected: "an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)".into(),
                found: topic_arn,
            });
        }
        Ok(Self {
            suite,
            topic_arn,
            domain_id: env.optional(DOMAIN_ID),
            model_package_alerts: model_package_alerts(env)?,
            model_package_groups: env.list(MODEL_PACKAGE_GROUPS).into_iter().collect(),
            muted: muted(env)?,
            quiet_sweeps: env.flag(QUIET_SWEEPS, false)?,
            dedup_window: env.seconds(
                DEDUP_WINDOW_SECONDS,
                60..=31_536_000,
                DEFAULT_DEDUP_WINDOW,
            )?,
            subject_prefix: subject_prefix(env)?,
        })
    }

    /// Whether an alert of this kind is sent at all.
    pub fn sends(&self, event_type: EventType) -> bool {
        !self.muted.contains(&event_type)
    }

    /// Whether model packages of `group` alert.
    pub fn watches_group(&self, group: Option<&str>) -> bool {
        self.model_package_groups.is_empty()
            || group.is_some_and(|g| self.model_package_groups.contains(g))
    }
}

/// An SNS topic ARN: the shared ARN parser, narrowed to what a topic is (service `sns`, a region, an account, a
/// name without `:` — a subscription ARN has one more part).
fn is_topic_arn(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|a| {
        a.service == "sns"
            && !a.region.is_empty()
            && !a.account.is_empty()
            && !a.resource.contains(':')
    })
}

fn model_package_alerts(env: &Env<'_>) -> Result<BTreeSet<PackageChange>, ConfigError> {
    let items = env.list(MODEL_PACKAGE_ALERTS);
    if items.is_empty() {
        return Ok(DEFAULT_MODEL_PACKAGE_ALERTS.into_iter().collect());
    }
    if items.len() == 1 && items[0].eq_ignore_ascii_case("none") {
        return Ok(BTreeSet::new());
    }
    items
        .iter()
        .map(|item| {
            PackageChange::from_name(item).ok_or_else(|| ConfigError::Malformed {
                var: MODEL_PACKAGE_ALERTS.into(),
                expected: "a comma-separated list of pending, approved, rejected, other (or none)"
                    .into(),
                found: item.clone(),
            })
        })
        .collect()
}

fn muted(env: &Env<'_>) -> Result<BTreeSet<EventType>, ConfigError> {
    env.list(MUTED_EVENTS)
        .iter()
        .map(|item| {
            EventType::from_slug(&item.to_ascii_lowercase()).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.slug()).collect();
                ConfigError::Malformed {
                    var: MUTED_EVENTS.into(),
                    expected: format!(
                        "a comma-separated list of event types: {}",
                        known.join(", ")
                    ),
                    found: item.clone(),
                }
            })
        })
        .collect()
}

fn subject_prefix(env: &Env<'_>) -> Result<String, ConfigError> {
    // The variable is optional; `-` means no prefix (an empty value counts as unset in the template).
    match env.optional(SUBJECT_PREFIX) {
        None => Ok(DEFAULT_SUBJECT_PREFIX.to_string()),
        Some(p) if p == "-" => Ok(String::new()),
        Some(p) => {
            let clean = crate::sanitize::subject_piece(&p, MAX_SUBJECT_PREFIX_CHARS);
            if clean != p {
                return Err(ConfigError::Malformed {
                    var: SUBJECT_PREFIX.into(),
                    expected: format!(
                        "at most {MAX_SUBJECT_PREFIX_CHARS} printable ASCII characters on one line (or - for none)"
                    ),
                    found: p,
                });
            }
            Ok(clean)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use studio_ops_shared::config::{EVENT_BUS_NAME, IDEMPOTENCY_TABLE};

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:studio-ops-alerts";

    fn read(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut vars: HashMap<&str, &str> = HashMap::from([
            (EVENT_BUS_NAME, "studio-ops"),
            (IDEMPOTENCY_TABLE, "idem"),
            (ALERT_TOPIC_ARN, TOPIC),
        ]);
        vars.extend(extra.iter().copied());
        Config::from_env(&Env::new(&vars))
    }

    #[test]
    fn defaults() {
        let c = read(&[]).unwrap();
        assert_eq!(c.topic_arn, TOPIC);
        assert_eq!(
            c.model_package_alerts,
            DEFAULT_MODEL_PACKAGE_ALERTS.into_iter().collect()
        );
        assert!(c.model_package_groups.is_empty() && c.watches_group(Some("any")));
        assert!(c.muted.is_empty());
        assert!(!c.quiet_sweeps);
        assert_eq!(c.dedup_window, DEFAULT_DEDUP_WINDOW);
        assert_eq!(c.subject_prefix, "[studio-ops]");
        assert_eq!(c.domain_id, None);
    }

    #[test]
    fn lists_and_flags() {
        let c = read(&[
            (MODEL_PACKAGE_ALERTS, "approved, Other"),
            (MODEL_PACKAGE_GROUPS, "churn-xgboost,demand-arima"),
            (MUTED_EVENTS, "training-started, Idle-Sweep-Completed"),
            (QUIET_SWEEPS, "yes"),
            (DEDUP_WINDOW_SECONDS, "3600"),
            (SUBJECT_PREFIX, "-"),
            (DOMAIN_ID, "d-abc"),
        ])
        .unwrap();
        assert_eq!(
            c.model_package_alerts,
            BTreeSet::from([PackageChange::Approved, PackageChange::Other])
        );
        assert!(c.watches_group(Some("churn-xgboost")));
        assert!(!c.watches_group(Some("other")));
        assert!(!c.watches_group(None));
        assert!(!c.sends(EventType::TrainingStarted));
        assert!(!c.sends(EventType::IdleSweepCompleted));
        assert!(c.sends(EventType::AppStopped));
        assert!(c.quiet_sweeps);
        assert_eq!(c.dedup_window, Duration::from_secs(3600));
        assert_eq!(c.subject_prefix, "");
        assert_eq!(c.domain_id.as_deref(), Some("d-abc"));
        assert!(
            read(&[(MODEL_PACKAGE_ALERTS, "none")])
                .unwrap()
                .model_package_alerts
                .is_empty()
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: [(&'static str, &'static str); 6] = [
            (MODEL_PACKAGE_ALERTS, "approved,maybe"),
            (MUTED_EVENTS, "coffee-made"),
            (QUIET_SWEEPS, "sometimes"),
            (DEDUP_WINDOW_SECONDS, "5"),
            (SUBJECT_PREFIX, "[ops]\u{7}"),
            (ALERT_TOPIC_ARN, "arn:aws:sqs:us-east-1:123456789012:q"),
        ];
        for (var, value) in cases {
            let err = read(&[(var, value)]).unwrap_err();
            assert!(err.to_string().contains(var), "{var}: {err}");
        }
        let mut vars: HashMap<&str, &str> =
            HashMap::from([(EVENT_BUS_NAME, "b"), (IDEMPOTENCY_TABLE, "t")]);
        vars.remove(ALERT_TOPIC_ARN);
        let err = Config::from_env(&Env::new(&vars)).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { ref var, .. } if var == ALERT_TOPIC_ARN));
    }

    #[test]
    fn only_topic_arns_are_topics() {
        assert!(is_topic_arn(TOPIC));
        assert!(is_topic_arn(
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts"
        ));
        for bad in [
            "arn:aws:sqs:us-east-1:123456789012:q",
            "arn:aws:sns:us-east-1:123456789012:alerts:3f1c2e9a-subscription",
            "arn:aws:sns::123456789012:alerts",
            "arn:aws:sns:us-east-1::alerts",
            "arn:aws:sns:us-east-1:12345:alerts",
            "arn:aws:sns:us-east-1:123456789012:",
            "studio-ops-alerts",
        ] {
            assert!(!is_topic_arn(bad), "{bad}");
        }
    }

    #[test]
    fn every_variable_read_is_one_of_ours_or_the_suites() {
        let vars: HashMap<&str, &str> = HashMap::from([
            (EVENT_BUS_NAME, "studio-ops"),
            (IDEMPOTENCY_TABLE, "idem"),
            (ALERT_TOPIC_ARN, TOPIC),
        ]);
        let env = Env::new(&vars);
        Config::from_env(&env).unwrap();
        let names = env.names_read();
        for ours in [
            ALERT_TOPIC_ARN,
            DOMAIN_ID,
            MODEL_PACKAGE_ALERTS,
            MODEL_PACKAGE_GROUPS,
            MUTED_EVENTS,
            QUIET_SWEEPS,
            DEDUP_WINDOW_SECONDS,
            SUBJECT_PREFIX,
        ] {
            assert!(names.contains(&ours), "{ours} not read");
        }
    }
}
