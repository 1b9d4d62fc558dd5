//! Whether a trigger alerts at all, and under which deduplication key: the configured kinds, groups and
//! mutes, and the quiet-sweep rule. Pure; the handler acts on the answer.

use crate::trigger::ModelPackageStateChange;
use studio_ops_shared::events::suite::SuiteEvent;

use crate::config::Config;
use crate::content::EventType;
use crate::model_package;
use crate::suite_alerts;

/// What to do with a trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send it once per `key`.
    Alert { event_type: EventType, key: String },
    /// Send nothing, and say why (logged and returned).
    Skip {
        event_type: EventType,
        reason: String,
    },
}

pub fn decide_model_package(change: &ModelPackageStateChange, config: &Config) -> Decision {
    let kind = model_package::classify(change);
    let event_type = kind.event_type();
    let group = model_package::group_of(change);
    if !config.watches_group(group.as_deref()) {
        return Decision::Skip {
            event_type,
            reason: format!(
                "model package group {:?} is not among the watched groups",
                group.unwrap_or_default()
            ),
        };
    }
    if !config.model_package_alerts.contains(&kind) {
        return Decision::Skip {
            event_type,
            reason: format!(
                "{} changes do not alert (approval {:?}, status {})",
                kind.name(),
                change.model_approval_status.as_deref().unwrap_or("-"),
                change.model_package_status
            ),
        };
    }
    muted_or(event_type, config, || model_package::dedup_key(change))
}

pub fn decide_suite(event: &SuiteEvent, config: &Config) -> Decision {
    let event_type = EventType::of_suite(event);
    if !config.quiet_sweeps && suite_alerts::is_quiet_sweep(event) {
        return Decision::Skip {
            event_type,
            reason: "the sweep warned, stopped and failed nothing".to_string(),
        };
    }
    muted_or(event_type, config, || {
        suite_alerts::dedup_key(event.detail_type(), &event.detail())
    })
}

fn muted_or(event_type: EventType, config: &Config, key: impl FnOnce() -> String) -> Decision {
    if config.sends(event_type) {
        Decision::Alert {
            event_type,
            key: key(),
        }
    } else {
        Decision::Skip {
            event_type,
            reason: format!("{} is muted", event_type.slug()),
        }
    }
}
