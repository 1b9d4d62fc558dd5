//! train-on-push settings, read once at cold start.

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

pub const REPOSITORY_NAME: &str = "STUDIO_OPS_REPOSITORY_NAME";

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
    pub repository_name: String,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            suite: SuiteConfig::from_env(env)?,
            repository_name: env.string(
                REPOSITORY_NAME,
                "the CodeCommit repository of the team's models",
            )?,
        })
    }
}
