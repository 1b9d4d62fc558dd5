//! provision-users settings, read once at cold start.

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

pub const DOMAIN_ID: &str = "STUDIO_OPS_DOMAIN_ID";
pub const IDENTITY_STORE_ID: &str = "STUDIO_OPS_IDENTITY_STORE_ID";

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
    pub domain_id: String,
    pub identity_store_id: String,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            suite: SuiteConfig::from_env(env)?,
            domain_id: env.string(DOMAIN_ID, "the SageMaker Studio domain id (d-...)")?,
            identity_store_id: env
                .string(IDENTITY_STORE_ID, "the Identity Center identity store id")?,
        })
    }
}
