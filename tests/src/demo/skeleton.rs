//! The walking-skeleton chapter: every fixture in `events/` goes through EventBridge (or a direct invoke for
//! schedules and manual runs) to its function, which parses it and answers.

use serde_json::Value;

use super::Chapter;
use crate::moto::workspace_root;
use crate::runtime_api::Outcome;
use crate::world::{FUNCTIONS, World, WorldError, fixture};

pub async fn run(world: &World) -> Result<Chapter, WorldError> {
    let mut chapter = Chapter::new("Every trigger reaches its function");
    for function in FUNCTIONS {
        let dir = workspace_root().join("events").join(function);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| WorldError::Other(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".json"))
            .collect();
        files.sort();
        for file in files {
            let event = fixture(&format!("{function}/{file}"))?;
            let direct = event
                .get("detail-type")
                .and_then(Value::as_str)
                .is_none_or(|dt| dt == "Scheduled Event");
            let invocations = if direct {
                let (inv, mut after) = world.invoke(function, event).await?;
                after.insert(0, inv);
                after
            } else {
                world.put_event(&event).await?
            };
            let first = invocations.iter().find(|i| i.function == *function);
            let verdict = match first.map(|i| &i.outcome) {
                Some(Outcome::Response(_)) => "ok".to_string(),
                Some(Outcome::Error {
                    error_type,
                    error_message,
                }) => {
                    format!("{error_type}: {error_message}")
                }
                Some(Outcome::TimedOut) => "timed out".to_string(),
                None => {
                    chapter.fail(format!("{function}/{file} reached no function"));
                    continue;
                }
            };
            chapter.line(format!("{:<16} {:<55} {}", function, file, verdict));
            chapter.record(&invocations);
        }
    }
    Ok(chapter)
}
