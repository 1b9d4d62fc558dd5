//! idle-shutdown settings, read once at cold start.

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

/// Comma-separated domain ids to sweep; empty = every domain in the account and region.
pub const DOMAIN_IDS: &str = "STUDIO_OPS_DOMAIN_IDS";

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
    pub domain_ids: Vec<String>,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            suite: SuiteConfig::from_env(env)?,
            domain_ids: env.list(DOMAIN_IDS),
        })
    }
}
