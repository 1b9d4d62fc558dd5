//! idle-shutdown settings, read once at cold start: scope, idle policy, prices, and the sweep's scale limits.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::time::Duration;

use jiff::SignedDuration;
use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

use crate::budget::Budgets;
use crate::policy::{
    BILLABLE_APP_TYPES, DEFAULT_EXEMPT_TAG, ExemptTag, LimitRule, Policy, default_rules,
    validate_rules,
};
use studio_ops_shared::names::is_domain_id;
use studio_ops_shared::prices;
use studio_ops_shared::throttle::RateLimit;

/// Comma-separated domain ids to sweep; empty = every domain in the account and region.
pub const DOMAIN_IDS: &str = "STUDIO_OPS_DOMAIN_IDS";
/// JSON list of idle rules, first match wins: `[{"match":"ml.g*","idleMinutes":60,"maxUptimeMinutes":1440}, ...]`.
pub const LIMITS: &str = "STUDIO_OPS_IDLE_LIMITS";
/// Minutes between the warning and the stop.
pub const GRACE_MINUTES: &str = "STUDIO_OPS_IDLE_GRACE_MINUTES";
/// A keep-alive tag further ahead than this many hours is ignored.
pub const MAX_KEEP_ALIVE_HOURS: &str = "STUDIO_OPS_IDLE_MAX_KEEP_ALIVE_HOURS";
/// Comma-separated user profile names never swept.
pub const EXCLUDED_USERS: &str = "STUDIO_OPS_IDLE_EXCLUDED_USERS";
/// Comma-separated space names never swept.
pub const EXCLUDED_SPACES: &str = "STUDIO_OPS_IDLE_EXCLUDED_SPACES";
/// Comma-separated `key` or `key=value` tags that exempt an app, its space or its user profile.
pub const EXEMPT_TAGS: &str = "STUDIO_OPS_IDLE_EXEMPT_TAGS";
/// Comma-separated app types swept (a subset of JupyterLab, CodeEditor, KernelGateway, RSessionGateway).
pub const APP_TYPES: &str = "STUDIO_OPS_IDLE_APP_TYPES";
/// Report-only mode: every sweep is a dry run.
pub const DRY_RUN: &str = "STUDIO_OPS_IDLE_DRY_RUN";
/// JSON object of instance type → USD per hour that replaces or extends the compiled-in price table.
pub const PRICES: &str = "STUDIO_OPS_IDLE_PRICES_USD_PER_HOUR";
/// Apps examined at the same time.
pub const CONCURRENCY: &str = "STUDIO_OPS_IDLE_CONCURRENCY";
/// Client-side limit on calls per second to each SageMaker operation (AWS sets its quotas per API), and its burst.
pub const CALLS_PER_SECOND: &str = "STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND";
pub const CALLS_BURST: &str = "STUDIO_OPS_IDLE_SAGEMAKER_CALLS_BURST";
/// Seconds before the Lambda deadline after which no new app is started (its work would not finish); at most a
/// quarter of the time an invocation is given is kept (`studio_ops_shared::Deadline::margin`).
pub const DEADLINE_MARGIN_SECONDS: &str = "STUDIO_OPS_IDLE_DEADLINE_MARGIN_SECONDS";
/// The DynamoDB table of the sweep state (the template's `IdleStateTable`).
pub const STATE_TABLE: &str = "STUDIO_OPS_IDLE_STATE_TABLE";
/// The DynamoDB table of the spend ledger (the template's `SpendTable`).
pub const SPEND_TABLE: &str = "STUDIO_OPS_SPEND_TABLE";
/// JSON of the monthly budgets (`budget::Budgets`): `{"mode": "enforce", "userMonthlyUsd": 300, "users": {...},
/// "spaces": {...}, "extensions": {"user/ana": "2026-12-24T00:00:00Z"}, "warnAtPercent": 80}`; empty: off.
pub const BUDGETS: &str = "STUDIO_OPS_BUDGETS";
/// The suite's failure queues the team digest counts (the template's `FailedInvocationQueue` and
/// `DeliveryDeadLetterQueue` URLs); unset: the digest says they were not read.
pub const FAILED_INVOCATION_QUEUE_URL: &str = "STUDIO_OPS_FAILED_INVOCATION_QUEUE_URL";
pub const DELIVERY_DLQ_URL: &str = "STUDIO_OPS_DELIVERY_DLQ_URL";
/// provision-users' group settings (group id → settings); their `monthlyBudgetUsd` is the group's budget.
pub const BUDGET_GROUP_SETTINGS: &str = "STUDIO_OPS_BUDGET_GROUP_SETTINGS";

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
    pub domain_ids: Vec<String>,
    pub policy: Policy,
    pub dry_run: bool,
    pub price_overrides: BTreeMap<String, f64>,
    pub concurrency: usize,
    pub rate_limit: RateLimit,
    pub deadline_margin: Duration,
    pub state_table: String,
    pub spend_table: String,
    pub budgets: Budgets,
    pub failed_invocation_queue_url: Option<String>,
    pub delivery_dlq_url: Option<String>,
}

fn malformed(var: &str, expected: &str, found: impl Into<String>) -> ConfigError {
    ConfigError::Malformed {
        var: var.to_string(),
        expected: expected.to_string(),
        found: found.into(),
    }
}

fn non_zero(var: &str, n: u32) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(n).ok_or_else(|| malformed(var, "a positive number", n.to_string()))
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let suite = SuiteConfig::from_env(env)?;
        let domain_ids = env.list(DOMAIN_IDS);
        if let Some(bad) = domain_ids.iter().find(|d| !is_domain_id(d)) {
            return Err(malformed(
                DOMAIN_IDS,
                "comma-separated domain ids such as d-abc123",
                bad.clone(),
            ));
        }

        let rules: Vec<LimitRule> = env.json_or(
            LIMITS,
            "a JSON list of {\"match\", \"idleMinutes\", \"maxUptimeMinutes\"} rules",
            default_rules(),
        )?;
        validate_rules(&rules).map_err(|reason| {
            malformed(LIMITS, &reason, env.optional(LIMITS).unwrap_or_default())
        })?;

        let grace = env.number_in(GRACE_MINUTES, 5..=1440u32, 30)?;
        let max_keep_alive = env.number_in(MAX_KEEP_ALIVE_HOURS, 1..=2160u32, 7 * 24)?;

        let exempt_tags = match env.optional(EXEMPT_TAGS) {
            None => vec![DEFAULT_EXEMPT_TAG.to_string()],
            Some(_) => env.list(EXEMPT_TAGS),
        };
        let exempt_tags = exempt_tags
            .iter()
            .map(|t| {
                ExemptTag::parse(t)
                    .ok_or_else(|| malformed(EXEMPT_TAGS, "key or key=value items", t.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let app_types = match env.list(APP_TYPES) {
            t if t.is_empty() => BILLABLE_APP_TYPES.iter().map(|t| t.to_string()).collect(),
            t => t,
        };
        if let Some(bad) = app_types
            .iter()
            .find(|t| !BILLABLE_APP_TYPES.contains(&t.as_str()))
        {
            return Err(malformed(
                APP_TYPES,
                &format!("a subset of {}", BILLABLE_APP_TYPES.join(", ")),
                bad.clone(),
            ));
        }

        let policy = Policy {
            rules,
            grace: SignedDuration::from_mins(i64::from(grace)),
            max_keep_alive: SignedDuration::from_hours(i64::from(max_keep_alive)),
            excluded_users: lower_set(env.list(EXCLUDED_USERS)),
            excluded_spaces: lower_set(env.list(EXCLUDED_SPACES)),
            exempt_tags,
            app_types,
        };

        let price_overrides = prices::overrides_from_env(env, PRICES)?;

        let per_second = env.number_in(CALLS_PER_SECOND, 1..=100u32, 10)?;
        let burst = env.number_in(CALLS_BURST, 1..=100u32, 10)?;

        Ok(Self {
            suite,
            domain_ids,
            policy,
            dry_run: env.flag(DRY_RUN, false)?,
            price_overrides,
            concurrency: env.number_in(CONCURRENCY, 1..=64usize, 8)?,
            rate_limit: RateLimit {
                per_second: non_zero(CALLS_PER_SECOND, per_second)?,
                burst: non_zero(CALLS_BURST, burst)?,
            },
            deadline_margin: env.seconds(
                DEADLINE_MARGIN_SECONDS,
                5..=600,
                Duration::from_secs(30),
            )?,
            state_table: env.string(
                STATE_TABLE,
                "the name of the DynamoDB sweep-state table (the template's IdleStateTable)",
            )?,
            spend_table: env.string(
                SPEND_TABLE,
                "the name of the DynamoDB spend-ledger table (the template's SpendTable)",
            )?,
            budgets: budgets(env)?,
            failed_invocation_queue_url: queue_url(env, FAILED_INVOCATION_QUEUE_URL)?,
            delivery_dlq_url: queue_url(env, DELIVERY_DLQ_URL)?,
        })
    }
}

fn queue_url(env: &Env<'_>, var: &'static str) -> Result<Option<String>, ConfigError> {
    match env.optional(var) {
        Some(url) if !url.starts_with("https://") && !url.starts_with("http://127.0.0.1") => {
            Err(malformed(
                var,
                "an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
                url,
            ))
        }
        url => Ok(url),
    }
}

fn budgets(env: &Env<'_>) -> Result<Budgets, ConfigError> {
    let mut budgets: Budgets = env.json_or(
        BUDGETS,
        "a JSON object of budgets such as {\"mode\": \"enforce\", \"userMonthlyUsd\": 300}",
        Budgets::default(),
    )?;
    let groups: BTreeMap<String, serde_json::Value> = env.json_or(
        BUDGET_GROUP_SETTINGS,
        "provision-users' group settings: a JSON object from group id to settings",
        BTreeMap::new(),
    )?;
    for (group, settings) in groups {
        match settings.get("monthlyBudgetUsd") {
            None | Some(serde_json::Value::Null) => {}
            Some(v) => match v.as_f64() {
                Some(usd) => {
                    budgets.groups.insert(group, usd);
                }
                None => {
                    return Err(malformed(
                        BUDGET_GROUP_SETTINGS,
                        "monthlyBudgetUsd as a number of USD",
                        format!("{group}: {v}"),
                    ));
                }
            },
        }
    }
    let budgets = budgets.normalized();
    match budgets.problem() {
        Some(problem) => Err(malformed(
            BUDGETS,
            &problem,
            env.optional(BUDGETS).unwrap_or_default(),
        )),
        None => Ok(budgets),
    }
}

fn lower_set(items: Vec<String>) -> BTreeSet<String> {
    items.into_iter().map(|s| s.to_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
            ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
            ("STUDIO_OPS_IDLE_STATE_TABLE", "idle-state"),
            ("STUDIO_OPS_SPEND_TABLE", "spend"),
        ])
    }

    fn with(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        let mut m = base();
        m.extend(pairs.iter().copied());
        m
    }

    #[test]
    fn defaults() {
        let vars = base();
        let c = Config::from_env(&Env::new(&vars)).unwrap();
        assert!(c.domain_ids.is_empty());
        assert_eq!(c.policy, Policy::default());
        assert!(!c.dry_run);
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.rate_limit.per_second.get(), 10);
        assert_eq!(c.deadline_margin, Duration::from_secs(30));
        assert!(c.price_overrides.is_empty());
        assert_eq!(
            (c.failed_invocation_queue_url, c.delivery_dlq_url),
            (None, None)
        );
    }

    #[test]
    fn failure_queues_are_urls_or_refused() {
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/studio-ops-failed";
        let c = Config::from_env(&Env::new(&with(&[(FAILED_INVOCATION_QUEUE_URL, url)]))).unwrap();
        assert_eq!(c.failed_invocation_queue_url.as_deref(), Some(url));
        let err = Config::from_env(&Env::new(&with(&[(DELIVERY_DLQ_URL, "studio-ops-dlq")])))
            .unwrap_err();
        assert!(err.to_string().contains(DELIVERY_DLQ_URL), "{err}");
    }

    #[test]
    fn every_setting_is_read() {
        let vars = with(&[
            (DOMAIN_IDS, "d-abc123, d-xyz"),
            (
                LIMITS,
                r#"[{"match":"ml.g*","idleMinutes":45,"maxUptimeMinutes":600},{"match":"*","idleMinutes":120}]"#,
            ),
            (GRACE_MINUTES, "20"),
            (MAX_KEEP_ALIVE_HOURS, "48"),
            (EXCLUDED_USERS, "Ana,bob"),
            (EXCLUDED_SPACES, "demo"),
            (EXEMPT_TAGS, "team:always-on, cost-center=research"),
            (APP_TYPES, "JupyterLab,CodeEditor"),
            (DRY_RUN, "true"),
            (PRICES, r#"{"ml.g6.xlarge": 0.98}"#),
            (CONCURRENCY, "4"),
            (CALLS_PER_SECOND, "5"),
            (CALLS_BURST, "2"),
            (DEADLINE_MARGIN_SECONDS, "45"),
        ]);
        let c = Config::from_env(&Env::new(&vars)).unwrap();
        assert_eq!(c.domain_ids, vec!["d-abc123", "d-xyz"]);
        assert_eq!(c.policy.rules[0], LimitRule::new("ml.g*", 45, Some(600)));
        assert_eq!(c.policy.grace, SignedDuration::from_mins(20));
        assert_eq!(c.policy.max_keep_alive, SignedDuration::from_hours(48));
        assert!(c.policy.excludes_user("ANA"));
        assert!(c.policy.excludes_space("demo"));
        assert_eq!(c.policy.exempt_tags.len(), 2);
        assert_eq!(c.policy.exempt_tags[1].value.as_deref(), Some("research"));
        assert_eq!(c.policy.app_types, vec!["JupyterLab", "CodeEditor"]);
        assert!(c.dry_run);
        assert_eq!(c.price_overrides.get("ml.g6.xlarge"), Some(&0.98));
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.rate_limit.burst.get(), 2);
        assert_eq!(c.deadline_margin, Duration::from_secs(45));
    }

    fn error(pairs: &[(&'static str, &'static str)]) -> String {
        let vars = with(pairs);
        Config::from_env(&Env::new(&vars)).unwrap_err().to_string()
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let e = error(&[(LIMITS, r#"[{"match":"*","idleMinutes":1}]"#)]);
        assert!(e.contains(LIMITS) && e.contains("idleMinutes"), "{e}");
        let e = error(&[(LIMITS, "not json")]);
        assert!(e.contains(LIMITS), "{e}");
        let e = error(&[(LIMITS, r#"[{"match":"*","idle":60}]"#)]);
        assert!(e.contains("unknown field"), "{e}");
        let e = error(&[(APP_TYPES, "JupyterServer")]);
        assert!(e.contains(APP_TYPES) && e.contains("JupyterServer"), "{e}");
        let e = error(&[(PRICES, r#"{"ml.g5.xlarge": -3}"#)]);
        assert!(e.contains(PRICES), "{e}");
        let e = error(&[(GRACE_MINUTES, "0")]);
        assert!(e.contains(GRACE_MINUTES), "{e}");
        let e = error(&[(DOMAIN_IDS, "studio")]);
        assert!(e.contains(DOMAIN_IDS), "{e}");
        let e = error(&[(DRY_RUN, "perhaps")]);
        assert!(e.contains(DRY_RUN), "{e}");
        let e = error(&[(CALLS_PER_SECOND, "0")]);
        assert!(e.contains(CALLS_PER_SECOND), "{e}");
    }

    #[test]
    fn budgets_are_read_with_the_group_settings_and_refused_when_wrong() {
        let vars = with(&[
            (
                BUDGETS,
                r#"{"mode":"dry-run","userMonthlyUsd":300,"users":{"Ana":500}}"#,
            ),
            (
                BUDGET_GROUP_SETTINGS,
                r#"{"g-1":{"name":"gpu","monthlyBudgetUsd":1000},"g-2":{"name":"cpu"}}"#,
            ),
        ]);
        let c = Config::from_env(&Env::new(&vars)).unwrap();
        assert_eq!(c.budgets.mode, crate::budget::Mode::DryRun);
        assert_eq!(c.budgets.users.get("ana"), Some(&500.0));
        assert_eq!(
            c.budgets.groups,
            BTreeMap::from([("g-1".to_string(), 1000.0)])
        );
        assert!(
            !Config::from_env(&Env::new(&base()))
                .unwrap()
                .budgets
                .enabled()
        );
        let e = error(&[(BUDGETS, r#"{"mode":"enforce","userMonthlyUsd":-1}"#)]);
        assert!(e.contains(BUDGETS) && e.contains("userMonthlyUsd"), "{e}");
        let e = error(&[(BUDGETS, r#"{"mode":"enforce","budget":1}"#)]);
        assert!(e.contains(BUDGETS) && e.contains("unknown field"), "{e}");
        let e = error(&[(
            BUDGET_GROUP_SETTINGS,
            r#"{"g-1":{"monthlyBudgetUsd":"lots"}}"#,
        )]);
        assert!(
            e.contains(BUDGET_GROUP_SETTINGS) && e.contains("g-1"),
            "{e}"
        );
    }

    #[test]
    fn domain_ids() {
        assert!(is_domain_id("d-studioops0001"));
        assert!(is_domain_id("d-a-b"));
        assert!(!is_domain_id("d-"));
        assert!(!is_domain_id("d-ABC"));
        assert!(!is_domain_id("x-abc"));
        // The shared rule is SageMaker's whole pattern: no trailing hyphen (the local copy let "d-a-" through).
        assert!(!is_domain_id("d-a-"));
    }
}
