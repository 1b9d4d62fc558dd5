//! The SAM template sets every variable notify's configuration reads (in Globals or on NotifyFunction), and the
//! values it sets for notify's own variables are accepted by the configuration.

use std::collections::HashMap;

use notify::config::Config;
use studio_ops_shared::config::{Env, VarSource};

/// `NAME: value` lines of the `Variables:` maps in the Globals section and the NotifyFunction resource.
fn template_variables() -> HashMap<String, String> {
    let path = format!("{}/../../infra/template.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let mut vars = HashMap::new();
    let mut section = "";
    let mut in_variables = false;
    let mut variables_indent = 0;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            section = if trimmed == "Globals:" { "globals" } else { "" };
        }
        if indent == 2 && trimmed.ends_with(':') {
            if trimmed == "NotifyFunction:" {
                section = "notify";
            } else if section == "notify" {
                section = "";
            }
        }
        if in_variables && indent <= variables_indent {
            in_variables = false;
        }
        if trimmed == "Variables:" && !section.is_empty() {
            in_variables = true;
            variables_indent = indent;
            continue;
        }
        if in_variables && let Some((name, value)) = trimmed.split_once(':') {
            let value = value
                .split(" #")
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            vars.insert(name.trim().to_string(), value.to_string());
        }
    }
    vars
}

/// Template values with `!Ref`/`!Sub` replaced by plausible deployed values.
struct Deployed(HashMap<String, String>);

impl VarSource for Deployed {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| {
            if v.starts_with("!Ref TeamTopic") {
                "arn:aws:sns:us-east-1:123456789012:studio-ops-TeamTopic-1".to_string()
            } else if v.starts_with('!') {
                "resolved-value".to_string()
            } else {
                v.clone()
            }
        })
    }
}

#[test]
fn template_sets_every_variable_notify_reads() {
    let vars = template_variables();
    assert!(
        vars.contains_key("STUDIO_OPS_ALERT_TOPIC_ARN"),
        "parsed: {vars:?}"
    );
    let deployed = Deployed(vars.clone());
    let env = Env::new(&deployed);
    let config = Config::from_env(&env).unwrap_or_else(|e| panic!("template values rejected: {e}"));
    for name in env.names_read() {
        assert!(
            vars.contains_key(name),
            "{name} is read by notify but not set in infra/template.yaml (Globals or NotifyFunction)"
        );
    }
    assert_eq!(config.subject_prefix, "[studio-ops]");
    assert_eq!(config.model_package_alerts.len(), 3);
}
