//! Side-effect counting: the world's tap on the suite's bus copies every `studio-ops` event into a queue, so a test
//! can count exactly which facts were published (one `App Idle Warning` per app, not two).

use std::collections::BTreeMap;

use serde_json::Value;
use studio_ops_tests::world::World;

/// A tap on the suite's bus ([`World::tap_suite_bus`]).
pub struct Capture {
    queue_url: String,
}

impl Capture {
    /// Taps the suite's bus (call before anything is published).
    pub async fn attach(world: &World, name: &str) -> Capture {
        let queue_url = world
            .tap_suite_bus(&format!("capture-{name}"))
            .await
            .unwrap();
        Capture { queue_url }
    }

    /// Every event captured since the last call.
    pub async fn drain(&self, world: &World) -> Vec<Value> {
        world.drain_queue(&self.queue_url).await.unwrap()
    }
}

/// How many times each `(detail-type, subject)` was published; `subject` is what the event is about.
pub fn tally(events: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in events {
        let dt = e
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let d = e.get("detail").cloned().unwrap_or(Value::Null);
        let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let subject = match dt.as_str() {
            "App Idle Warning" | "App Stopped" => {
                let owner = if text("spaceName").is_empty() {
                    format!("user/{}", text("userProfileName"))
                } else {
                    format!("space/{}", text("spaceName"))
                };
                format!("{owner}/{}/{}", text("appType"), text("appName"))
            }
            "User Provisioned" | "User Deprovisioned" => text("userProfileName"),
            "Training Started" => text("trainingJobName"),
            "Model Registered" => text("modelPackageArn"),
            _ => String::new(),
        };
        *out.entry((dt, subject)).or_default() += 1;
    }
    out
}

/// The subjects of one detail-type published more than once.
pub fn doubled(t: &BTreeMap<(String, String), usize>, detail_type: &str) -> Vec<String> {
    t.iter()
        .filter(|((dt, _), n)| dt == detail_type && **n > 1)
        .map(|((_, s), n)| format!("{s} ×{n}"))
        .collect()
}

/// The subjects of one detail-type.
pub fn subjects(
    t: &BTreeMap<(String, String), usize>,
    detail_type: &str,
) -> std::collections::BTreeSet<String> {
    t.keys()
        .filter(|(dt, _)| dt == detail_type)
        .map(|(_, s)| s.clone())
        .collect()
}
