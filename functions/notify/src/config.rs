//! notify settings, read once at cold start.

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            suite: SuiteConfig::from_env(env)?,
        })
    }
}
