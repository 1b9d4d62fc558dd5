//! Typed configuration read once at cold start from environment variables, with errors that name the variable.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// A missing or malformed environment variable: says which one, what it expects and what it found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration variable {var} is missing; expected {expected}")]
    Missing { var: String, expected: String },
    #[error("configuration variable {var} is malformed: expected {expected}, found {found:?}")]
    Malformed {
        var: String,
        expected: String,
        found: String,
    },
}

/// Where variables come from: the process environment in production, a map in tests.
pub trait VarSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl VarSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl VarSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl VarSource for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| (*v).to_string())
    }
}

/// Reads variables from a source and records every name it was asked for, so the infra
/// consistency test can check that the template sets each one.
pub struct Env<'a> {
    source: &'a dyn VarSource,
    asked: std::cell::RefCell<Vec<&'static str>>,
}

impl<'a> Env<'a> {
    pub fn new(source: &'a dyn VarSource) -> Self {
        Self {
            source,
            asked: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Every variable name read so far, in order of first use.
    pub fn names_read(&self) -> Vec<&'static str> {
        self.asked.borrow().clone()
    }

    fn raw(&self, var: &'static str) -> Option<String> {
        {
            let mut asked = self.asked.borrow_mut();
            if !asked.contains(&var) {
                asked.push(var);
            }
        }
        self.source
            .var(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A required non-empty string.
    pub fn string(&self, var: &'static str, expected: &str) -> Result<String, ConfigError> {
        self.raw(var).ok_or_else(|| ConfigError::Missing {
            var: var.to_string(),
            expected: expected.to_string(),
        })
    }

    /// An optional string (empty counts as absent).
    pub fn optional(&self, var: &'static str) -> Option<String> {
        self.raw(var)
    }

    /// An optional value parsed with `FromStr`, or the default.
    pub fn parsed_or<T: FromStr>(
        &self,
        var: &'static str,
        expected: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(found) => found.parse().map_err(|_| ConfigError::Malformed {
                var: var.to_string(),
                expected: expected.to_string(),
                found,
            }),
        }
    }

    /// A number within `range`, or the default.
    pub fn number_in<T>(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<T>,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        let value = self.parsed_or(var, &expected, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Malformed {
                var: var.to_string(),
                expected,
                found: value.to_string(),
            })
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), or the default.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(found) => match found.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Malformed {
                    var: var.to_string(),
                    expected: "true or false".to_string(),
                    found,
                }),
            },
        }
    }

    /// A comma-separated list of non-empty items (absent = empty list).
    pub fn list(&self, var: &'static str) -> Vec<String> {
        self.raw(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A duration in whole seconds, or the default.
    pub fn seconds(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<u64>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.number_in(var, range, default.as_secs())
            .map(Duration::from_secs)
    }

    /// A JSON document parsed into `T`, or the default.
    pub fn json_or<T: serde::de::DeserializeOwned>(
        &self,
        var: &'static str,
        expected: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(found) => serde_json::from_str(&found).map_err(|e| ConfigError::Malformed {
                var: var.to_string(),
                expected: format!("{expected} ({e})"),
                found,
            }),
        }
    }
}

/// Settings every function shares: where the suite's events go, the idempotency table, and the
/// AWS client behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteConfig {
    /// The custom EventBridge bus the suite publishes its own events to.
    pub event_bus_name: String,
    /// The DynamoDB table of the idempotency store.
    pub idempotency_table: String,
    /// How long a completed idempotency record is kept.
    pub idempotency_ttl: Duration,
    pub aws: AwsClientSettings,
}

/// Retry and timeout behaviour of every AWS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsClientSettings {
    /// Attempts per call in the SDK's standard retry mode (1 = no retry).
    pub max_attempts: u32,
    /// The budget of one operation including its retries; kept below the Lambda timeout.
    pub operation_timeout: Duration,
    /// The budget of one attempt.
    pub attempt_timeout: Duration,
}

impl Default for AwsClientSettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            operation_timeout: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

pub const EVENT_BUS_NAME: &str = "STUDIO_OPS_EVENT_BUS";
pub const IDEMPOTENCY_TABLE: &str = "STUDIO_OPS_IDEMPOTENCY_TABLE";
pub const IDEMPOTENCY_TTL_SECONDS: &str = "STUDIO_OPS_IDEMPOTENCY_TTL_SECONDS";
pub const AWS_MAX_ATTEMPTS: &str = "STUDIO_OPS_AWS_MAX_ATTEMPTS";
pub const AWS_OPERATION_TIMEOUT_SECONDS: &str = "STUDIO_OPS_AWS_OPERATION_TIMEOUT_SECONDS";
pub const AWS_ATTEMPT_TIMEOUT_SECONDS: &str = "STUDIO_OPS_AWS_ATTEMPT_TIMEOUT_SECONDS";

impl SuiteConfig {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let defaults = AwsClientSettings::default();
        let aws = AwsClientSettings {
            max_attempts: env.number_in(AWS_MAX_ATTEMPTS, 1..=10, defaults.max_attempts)?,
            operation_timeout: env.seconds(
                AWS_OPERATION_TIMEOUT_SECONDS,
                1..=900,
                defaults.operation_timeout,
            )?,
            attempt_timeout: env.seconds(
                AWS_ATTEMPT_TIMEOUT_SECONDS,
                1..=900,
                defaults.attempt_timeout,
            )?,
        };
        if aws.attempt_timeout > aws.operation_timeout {
            return Err(ConfigError::Malformed {
                var: AWS_ATTEMPT_TIMEOUT_SECONDS.to_string(),
                expected: format!(
                    "at most {AWS_OPERATION_TIMEOUT_SECONDS} ({}s)",
                    aws.operation_timeout.as_secs()
                ),
                found: aws.attempt_timeout.as_secs().to_string(),
            });
        }
        Ok(Self {
            event_bus_name: env
                .string(EVENT_BUS_NAME, "the name of the suite's EventBridge bus")?,
            idempotency_table: env.string(
                IDEMPOTENCY_TABLE,
                "the name of the DynamoDB idempotency table",
            )?,
            idempotency_ttl: env.seconds(
                IDEMPOTENCY_TTL_SECONDS,
                60..=31_536_000,
                Duration::from_secs(7 * 24 * 3600),
            )?,
            aws,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn suite_config_reads_required_and_defaults() {
        let vars = env(&[(EVENT_BUS_NAME, "studio-ops"), (IDEMPOTENCY_TABLE, "idem")]);
        let cfg = SuiteConfig::from_env(&Env::new(&vars)).unwrap();
        assert_eq!(cfg.event_bus_name, "studio-ops");
        assert_eq!(cfg.idempotency_table, "idem");
        assert_eq!(cfg.aws, AwsClientSettings::default());
    }

    #[test]
    fn missing_variable_is_named() {
        let vars = env(&[(EVENT_BUS_NAME, "studio-ops")]);
        let err = SuiteConfig::from_env(&Env::new(&vars)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration variable STUDIO_OPS_IDEMPOTENCY_TABLE is missing; expected the name of the DynamoDB idempotency table"
        );
    }

    #[test]
    fn malformed_number_is_named_with_range() {
        let vars = env(&[
            (EVENT_BUS_NAME, "b"),
            (IDEMPOTENCY_TABLE, "t"),
            (AWS_MAX_ATTEMPTS, "lots"),
        ]);
        let err = SuiteConfig::from_env(&Env::new(&vars)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration variable STUDIO_OPS_AWS_MAX_ATTEMPTS is malformed: expected a whole number from 1 to 10, found \"lots\""
        );
        let vars = env(&[
            (EVENT_BUS_NAME, "b"),
            (IDEMPOTENCY_TABLE, "t"),
            (AWS_MAX_ATTEMPTS, "11"),
        ]);
        assert!(matches!(
            SuiteConfig::from_env(&Env::new(&vars)),
            Err(ConfigError::Malformed { .. })
        ));
    }

    #[test]
    fn attempt_timeout_cannot_exceed_operation_timeout() {
        let vars = env(&[
            (EVENT_BUS_NAME, "b"),
            (IDEMPOTENCY_TABLE, "t"),
            (AWS_OPERATION_TIMEOUT_SECONDS, "10"),
            (AWS_ATTEMPT_TIMEOUT_SECONDS, "30"),
        ]);
        let err = SuiteConfig::from_env(&Env::new(&vars)).unwrap_err();
        assert!(err.to_string().contains(AWS_ATTEMPT_TIMEOUT_SECONDS));
    }

    #[test]
    fn flags_lists_and_names_read() {
        let vars = env(&[("A", "yes"), ("B", "x, y,,z "), ("C", "maybe")]);
        let e = Env::new(&vars);
        assert!(e.flag("A", false).unwrap());
        assert_eq!(e.list("B"), vec!["x", "y", "z"]);
        assert!(e.flag("C", false).is_err());
        assert!(!e.flag("D", false).unwrap());
        assert_eq!(e.names_read(), vec!["A", "B", "C", "D"]);
    }
}
