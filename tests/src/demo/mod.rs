//! `make demo`: the team's day told through the local world — each chapter drives real events through
//! EventBridge to the functions and records what happened, printed for people and written as JSON.

use serde::Serialize;
use serde_json::Value;

use crate::runtime_api::{Invocation, Outcome};

pub mod idle;
pub mod month;
pub mod provision;
pub mod train;

/// One part of the story.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Chapter {
    pub title: String,
    /// Human-readable lines, printed in order.
    pub lines: Vec<String>,
    /// Machine-readable facts of the chapter.
    pub facts: serde_json::Map<String, Value>,
    pub invocations: Vec<InvocationRecord>,
    pub ok: bool,
}

/// An invocation as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationRecord {
    pub function: String,
    pub request_id: String,
    pub outcome: String,
    pub result: Value,
    pub millis: u128,
}

impl From<&Invocation> for InvocationRecord {
    fn from(inv: &Invocation) -> Self {
        let (outcome, result) = match &inv.outcome {
            Outcome::Response(v) => ("ok".to_string(), v.clone()),
            Outcome::Error {
                error_type,
                error_message,
            } => (
                format!("error:{error_type}"),
                Value::String(error_message.clone()),
            ),
            Outcome::TimedOut => ("timed-out".to_string(), Value::Null),
        };
        Self {
            function: inv.function.clone(),
            request_id: inv.request_id.clone(),
            outcome,
            result,
            millis: inv.duration.as_millis(),
        }
    }
}

impl Chapter {
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_string(),
            ok: true,
            ..Self::default()
        }
    }

    pub fn line(&mut self, text: impl Into<String>) {
        self.lines.push(text.into());
    }

    pub fn fact(&mut self, key: &str, value: impl Serialize) {
        self.facts.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }

    pub fn record(&mut self, invocations: &[Invocation]) {
        self.invocations
            .extend(invocations.iter().map(InvocationRecord::from));
    }

    /// Marks the chapter failed with a reason (the demo then exits non-zero).
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.ok = false;
        self.lines.push(format!("FAILED: {}", reason.into()));
    }
}

/// The whole demo's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub started_at: String,
    pub seconds: f64,
    pub chapters: Vec<Chapter>,
    /// What the team's SNS topic delivered (subject and body), in order.
    pub team_messages: Vec<Value>,
    pub ok: bool,
}

impl Report {
    pub fn print(&self) {
        println!();
        println!("studio-ops demo — what happened");
        println!("================================");
        for chapter in &self.chapters {
            println!();
            println!(
                "## {} {}",
                chapter.title,
                if chapter.ok { "" } else { "(FAILED)" }
            );
            for line in &chapter.lines {
                println!("   {line}");
            }
        }
        println!();
        println!(
            "## Messages the team received ({})",
            self.team_messages.len()
        );
        for m in &self.team_messages {
            let subject = m
                .get("Subject")
                .and_then(Value::as_str)
                .unwrap_or("(no subject)");
            println!("   ✉ {subject}");
        }
        println!();
        println!(
            "{} in {:.1}s",
            if self.ok { "demo OK" } else { "demo FAILED" },
            self.seconds
        );
    }
}
