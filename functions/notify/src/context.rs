//! What every alert needs to know beyond its event's detail: the envelope's identity, region and time, and
//! the configured domain used when an event does not name one.

use serde_json::Value;

use crate::content::Origin;

/// The envelope facts and defaults an alert is built with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertContext {
    /// The region links point into: the event's, else the function's own.
    pub region: Option<String>,
    /// The Studio domain for events that carry none (training, model registry).
    pub default_domain_id: Option<String>,
    pub origin: Origin,
}

impl AlertContext {
    /// Reads the envelope's `id`, `time`, `region` and `account` (all optional: a hand-made invoke may lack them).
    pub fn from_envelope(
        event: &Value,
        function_region: Option<&str>,
        default_domain_id: Option<&str>,
    ) -> Self {
        let text = |k: &str| {
            event
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let region = text("region")
            .filter(|r| crate::sanitize::is_region(r))
            .or_else(|| function_region.map(str::to_string));
        Self {
            origin: Origin {
                detail_type: text("detail-type").unwrap_or_default(),
                event_id: text("id"),
                time: text("time"),
                region: region.clone(),
                account: text("account"),
            },
            region,
            default_domain_id: default_domain_id.map(str::to_string),
        }
    }

    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or("")
    }

    /// The event's domain if it names one, else the configured one.
    pub fn domain<'a>(&'a self, from_event: Option<&'a str>) -> Option<&'a str> {
        from_event
            .filter(|d| !d.trim().is_empty())
            .or(self.default_domain_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_envelope_and_falls_back() {
        let c = AlertContext::from_envelope(
            &json!({"id": "e1", "region": "eu-west-1", "time": "2026-01-01T00:00:00Z", "detail-type": "App Stopped"}),
            Some("us-east-1"),
            Some("d-x"),
        );
        assert_eq!(c.region(), "eu-west-1");
        assert_eq!(c.origin.event_id.as_deref(), Some("e1"));
        assert_eq!(c.domain(None), Some("d-x"));
        assert_eq!(c.domain(Some("d-y")), Some("d-y"));
        let hostile = AlertContext::from_envelope(
            &json!({"region": "evil.example/x"}),
            Some("us-east-1"),
            None,
        );
        assert_eq!(hostile.region(), "us-east-1");
    }
}
