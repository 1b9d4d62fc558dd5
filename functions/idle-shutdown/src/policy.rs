//! The idle policy an operator configures: idle limits and uptime caps per instance-type pattern, the grace period,
//! exclusions, and which app types are swept. Pure data with its validation; no AWS.

use std::collections::BTreeSet;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use studio_ops_shared::names::glob_matches_ignoring_case;

/// The billable app types the sweep looks at. `JupyterServer` (classic Studio's free UI app) is never among them.
pub const BILLABLE_APP_TYPES: &[&str] = &[
    "JupyterLab",
    "CodeEditor",
    "KernelGateway",
    "RSessionGateway",
];

/// The app type that is never touched: classic Studio's `JupyterServer` runs on a free `system` instance.
pub const FREE_APP_TYPE: &str = "JupyterServer";

/// The instance type AWS reports for apps that do not run on a billed instance.
pub const FREE_INSTANCE_TYPE: &str = "system";

/// One idle rule: apps whose instance type matches `pattern` are idle after `idle_minutes` without evidence of
/// activity, and are stopped after `max_uptime_minutes` of uptime whatever their activity (when set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitRule {
    /// A case-insensitive glob over the instance type: `*` any run of characters, `?` one character.
    #[serde(rename = "match")]
    pub pattern: String,
    pub idle_minutes: u32,
    #[serde(default)]
    pub max_uptime_minutes: Option<u32>,
}

impl LimitRule {
    pub fn new(pattern: &str, idle_minutes: u32, max_uptime_minutes: Option<u32>) -> Self {
        Self {
            pattern: pattern.to_string(),
            idle_minutes,
            max_uptime_minutes,
        }
    }

    pub fn idle_limit(&self) -> SignedDuration {
        SignedDuration::from_mins(i64::from(self.idle_minutes))
    }

    pub fn uptime_cap(&self) -> Option<SignedDuration> {
        self.max_uptime_minutes
            .map(|m| SignedDuration::from_mins(i64::from(m)))
    }
}

/// Idle limits from the issue's example: accelerated (GPU, Trainium, Inferentia) instances 60 min with a one-day
/// uptime cap, everything else 180 min without a cap.
pub fn default_rules() -> Vec<LimitRule> {
    vec![
        LimitRule::new("ml.g*", 60, Some(24 * 60)),
        LimitRule::new("ml.p*", 60, Some(24 * 60)),
        LimitRule::new("ml.trn*", 60, Some(24 * 60)),
        LimitRule::new("ml.inf*", 60, Some(24 * 60)),
        LimitRule::new("*", 180, None),
    ]
}

/// Bounds of a rule, checked at start-up so that a typo cannot stop apps after a minute.
pub const IDLE_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 15..=10_080;
pub const MAX_UPTIME_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 60..=43_200;

/// Checks a rule list: non-empty, valid patterns, limits within bounds, caps not below the idle limit.
pub fn validate_rules(rules: &[LimitRule]) -> Result<(), String> {
    if rules.is_empty() {
        return Err(
            "at least one rule (end with {\"match\": \"*\", ...} to cover every instance type)"
                .into(),
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let at = format!("rule {i} ({:?})", r.pattern);
        if r.pattern.is_empty()
            || !r
                .pattern
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | '?'))
        {
            return Err(format!(
                "{at}: match must be a glob of letters, digits, '.', '-', '*' and '?'"
            ));
        }
        if !IDLE_MINUTES_RANGE.contains(&r.idle_minutes) {
            return Err(format!(
                "{at}: idleMinutes must be from {} to {}",
                IDLE_MINUTES_RANGE.start(),
                IDLE_MINUTES_RANGE.end()
            ));
        }
        if let Some(cap) = r.max_uptime_minutes {
            if !MAX_UPTIME_MINUTES_RANGE.contains(&cap) {
                return Err(format!(
                    "{at}: maxUptimeMinutes must be from {} to {}",
                    MAX_UPTIME_MINUTES_RANGE.start(),
                    MAX_UPTIME_MINUTES_RANGE.end()
                ));
            }
            if cap < r.idle_minutes {
                return Err(format!("{at}: maxUptimeMinutes is below idleMinutes"));
            }
        }
    }
    Ok(())
}

/// A tag that exempts an app, its space or its user profile: `key` (any value) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemptTag {
    pub key: String,
    pub value: Option<String>,
}

impl ExemptTag {
    pub fn parse(text: &str) -> Option<Self> {
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
            None => (text.trim(), None),
        };
        (!key.is_empty()).then(|| Self {
            key: key.to_string(),
            value,
        })
    }

    pub fn matches(&self, key: &str, value: &str) -> bool {
        key == self.key && self.value.as_deref().is_none_or(|v| v == value)
    }
}

impl std::fmt::Display for ExemptTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

/// The default exemption tag.
pub const DEFAULT_EXEMPT_TAG: &str = "studio-ops:idle-shutdown=exempt";

/// Everything the decision table needs from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// First match wins; an instance type no rule matches is kept and reported.
    pub rules: Vec<LimitRule>,
    /// Between the warning and the stop.
    pub grace: SignedDuration,
    /// A keep-alive tag further ahead than this is ignored (and the reason says so).
    pub max_keep_alive: SignedDuration,
    /// User profile names never swept (lower-case; SageMaker names are case-insensitive).
    pub excluded_users: BTreeSet<String>,
    /// Space names never swept (lower-case).
    pub excluded_spaces: BTreeSet<String>,
    pub exempt_tags: Vec<ExemptTag>,
    /// A subset of [`BILLABLE_APP_TYPES`].
    pub app_types: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rules: default_rules(),
            grace: SignedDuration::from_mins(30),
            max_keep_alive: SignedDuration::from_hours(7 * 24),
            excluded_users: BTreeSet::new(),
            excluded_spaces: BTreeSet::new(),
            exempt_tags: ExemptTag::parse(DEFAULT_EXEMPT_TAG).into_iter().collect(),
            app_types: BILLABLE_APP_TYPES.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl Policy {
    /// The first rule whose pattern matches the instance type.
    pub fn rule_for(&self, instance_type: &str) -> Option<&LimitRule> {
        self.rules
            .iter()
            .find(|r| glob_matches_ignoring_case(&r.pattern, instance_type))
    }

    pub fn sweeps_app_type(&self, app_type: &str) -> bool {
        self.app_types.iter().any(|t| t == app_type)
    }

    pub fn excludes_user(&self, name: &str) -> bool {
        self.excluded_users.contains(&name.to_lowercase())
    }

    pub fn excludes_space(&self, name: &str) -> bool {
        self.excluded_spaces.contains(&name.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns_as_the_rules_use_them() {
        assert!(glob_matches_ignoring_case("ml.g*", "ml.g5.xlarge"));
        assert!(glob_matches_ignoring_case("ML.G*", "ml.g4dn.xlarge"));
        assert!(!glob_matches_ignoring_case("ml.g*", "ml.m5.large"));
        assert!(glob_matches_ignoring_case("*", "anything"));
        assert!(glob_matches_ignoring_case("*", ""));
        assert!(glob_matches_ignoring_case("ml.?5.*", "ml.m5.large"));
        assert!(!glob_matches_ignoring_case("ml.?5.*", "ml.g4dn.xlarge"));
        assert!(glob_matches_ignoring_case("ml.*.xlarge", "ml.g4dn.xlarge"));
        assert!(!glob_matches_ignoring_case(
            "ml.*.xlarge",
            "ml.g4dn.2xlarge.x"
        ));
        assert!(glob_matches_ignoring_case("*large", "ml.m5.large"));
        assert!(!glob_matches_ignoring_case("ml.t3.medium", "ml.t3.medium2"));
        assert!(glob_matches_ignoring_case("a*b*c", "axxbyyc"));
        assert!(!glob_matches_ignoring_case("a*b*c", "axxbyy"));
    }

    #[test]
    fn default_rules_classify_accelerated_and_cpu() {
        let p = Policy::default();
        validate_rules(&p.rules).unwrap();
        for gpu in [
            "ml.g4dn.xlarge",
            "ml.g5.12xlarge",
            "ml.p3.2xlarge",
            "ml.p4d.24xlarge",
            "ml.trn1.2xlarge",
            "ml.inf2.xlarge",
        ] {
            assert_eq!(p.rule_for(gpu).unwrap().idle_minutes, 60, "{gpu}");
            assert_eq!(
                p.rule_for(gpu).unwrap().max_uptime_minutes,
                Some(1440),
                "{gpu}"
            );
        }
        for cpu in [
            "ml.t3.medium",
            "ml.m5.xlarge",
            "ml.c5.4xlarge",
            "ml.r5.large",
        ] {
            assert_eq!(p.rule_for(cpu).unwrap().idle_minutes, 180, "{cpu}");
            assert_eq!(p.rule_for(cpu).unwrap().max_uptime_minutes, None, "{cpu}");
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = Policy {
            rules: vec![
                LimitRule::new("ml.g5.*", 30, None),
                LimitRule::new("ml.g*", 90, None),
            ],
            ..Policy::default()
        };
        assert_eq!(p.rule_for("ml.g5.xlarge").unwrap().idle_minutes, 30);
        assert_eq!(p.rule_for("ml.g4dn.xlarge").unwrap().idle_minutes, 90);
        assert!(p.rule_for("ml.t3.medium").is_none());
    }

    #[test]
    fn rule_validation_names_the_rule() {
        assert!(validate_rules(&[]).is_err());
        let err = validate_rules(&[LimitRule::new("ml.g*", 1, None)]).unwrap_err();
        assert!(
            err.contains("rule 0") && err.contains("idleMinutes"),
            "{err}"
        );
        let err = validate_rules(&[
            LimitRule::new("*", 60, None),
            LimitRule::new("ml g", 60, None),
        ])
        .unwrap_err();
        assert!(err.contains("rule 1"), "{err}");
        let err = validate_rules(&[LimitRule::new("*", 180, Some(120))]).unwrap_err();
        assert!(err.contains("below idleMinutes"), "{err}");
        let err = validate_rules(&[LimitRule::new("*", 180, Some(100_000))]).unwrap_err();
        assert!(err.contains("maxUptimeMinutes"), "{err}");
    }

    #[test]
    fn rules_parse_from_json_and_refuse_typos() {
        let rules: Vec<LimitRule> =
            serde_json::from_str(r#"[{"match":"ml.g*","idleMinutes":60,"maxUptimeMinutes":720},{"match":"*","idleMinutes":180}]"#)
                .unwrap();
        assert_eq!(rules[0], LimitRule::new("ml.g*", 60, Some(720)));
        assert_eq!(rules[1].max_uptime_minutes, None);
        assert!(
            serde_json::from_str::<Vec<LimitRule>>(r#"[{"match":"*","idleMinute":180}]"#).is_err()
        );
    }

    #[test]
    fn exempt_tags() {
        let any = ExemptTag::parse("team:keep").unwrap();
        assert!(any.matches("team:keep", "whatever"));
        let exact = ExemptTag::parse(DEFAULT_EXEMPT_TAG).unwrap();
        assert!(exact.matches("studio-ops:idle-shutdown", "exempt"));
        assert!(!exact.matches("studio-ops:idle-shutdown", "no"));
        assert_eq!(exact.to_string(), DEFAULT_EXEMPT_TAG);
        assert!(ExemptTag::parse(" =x").is_none());
    }

    #[test]
    fn exclusions_are_case_insensitive() {
        let p = Policy {
            excluded_users: BTreeSet::from(["ana".to_string()]),
            excluded_spaces: BTreeSet::from(["demo-space".to_string()]),
            ..Policy::default()
        };
        assert!(p.excludes_user("Ana"));
        assert!(!p.excludes_user("bob"));
        assert!(p.excludes_space("Demo-Space"));
        assert!(p.sweeps_app_type("KernelGateway"));
        assert!(!p.sweeps_app_type("JupyterServer"));
    }
}
