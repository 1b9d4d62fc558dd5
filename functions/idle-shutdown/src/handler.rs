//! idle-shutdown handler: a scheduled or manual invocation → one sweep.

use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::event_id;
use studio_ops_shared::events::schedule::RunRequest;

use crate::config::Config;
use crate::error::HandlerError;

pub struct Handler {
    config: Config,
}

impl Handler {
    pub fn new(config: Config, _sdk: &aws_config::SdkConfig) -> Self {
        Self { config }
    }

    pub async fn handle(&self, event: Value, _context: Context) -> Result<Value, HandlerError> {
        let request = RunRequest::from_invocation(&event)?;
        tracing::info!(event_id = event_id(&event), domains = ?self.config.domain_ids, dry_run = request.dry_run, "idle sweep requested");
        Ok(json!({"function": "idle-shutdown", "dryRun": request.dry_run}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/idle-shutdown/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn fixtures_parse() {
        assert!(
            !RunRequest::from_invocation(&fixture("scheduled-event.json"))
                .unwrap()
                .dry_run
        );
        let manual = RunRequest::from_invocation(&fixture("manual-dry-run.json")).unwrap();
        assert!(manual.dry_run);
        assert_eq!(manual.domain_id.as_deref(), Some("d-studioops0001"));
    }
}
