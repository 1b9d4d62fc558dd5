//! train-on-push's entry point: parse the event into a [`Trigger`], hand it to its use case (`push` or
//! `registration`) with the claim's lifetime taken from the Lambda deadline, and answer a typed [`Outcome`].
//! Each model of a push and each job outcome is done at most once (idempotency store, through [`once_typed`]),
//! and SageMaker's own guards (a deterministic job name, a model package client token) back that up.

use std::collections::BTreeMap;
use std::future::Future;

use jiff::Timestamp;
use lambda_runtime::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use studio_ops_shared::Deadline;
use studio_ops_shared::events::event_id;
use studio_ops_shared::idempotency::{IdempotencyStore, Once, once};
use studio_ops_shared::publisher::PublishEvents;

use crate::approval::{Approval, OnPullRequest};
use crate::catchup::{BranchCatchUp, CatchUp};
use crate::config::Config;
use crate::error::HandlerError;
pub use crate::ports::Ports;
use crate::ports::{
    Artifacts, ModelRegistry, PushState, RunTracker, SourceRepository, SpendLedger, Training,
};
use crate::push::{ModelOutcome, OnPush};
use crate::registration::OnTrainingJob;
pub use crate::trigger::{Trigger, parse_trigger};

/// What one invocation came to: the function's answer, and what the idempotency store keeps for a job outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Not for this function: a push it does not train on, a job state that is not final, a job it did not start.
    Ignored {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
    },
    /// The commit message says `[skip train]`.
    Skipped { reason: String, commit: String },
    /// The push changed more models than one push may train: nothing started, one Training Rejected.
    TooManyModels { models: usize, reason: String },
    /// A push: what became of each model it trains.
    Pushed {
        repository: String,
        branch: String,
        commit_id: String,
        models: BTreeMap<String, ModelOutcome>,
    },
    /// A completed job of ours is a model version pending approval.
    Registered {
        model_package_arn: String,
        job: String,
    },
    /// A failed or stopped job of ours was reported (Training Failed).
    FailureReported {
        job: String,
        status: String,
        reason: String,
    },
    /// The catch-up's run: per watched branch, what it found and did (`omitted`: branches beyond one run's limit).
    CaughtUp {
        repository: String,
        branches: BTreeMap<String, BranchCatchUp>,
        #[serde(default)]
        omitted: usize,
    },
    /// A pull request merged into the protected branch: per model it changed, what became of its newest version
    /// trained in the merged range.
    Merged {
        pull_request: String,
        #[serde(default)]
        merge_commit: Option<String>,
        #[serde(default)]
        merged_by: Option<String>,
        models: BTreeMap<String, Approval>,
    },
    /// This job outcome was handled before; `previous` is that answer (None when it was recorded in an older
    /// shape, which is still "already done").
    Duplicate {
        job: String,
        previous: Option<Box<Outcome>>,
    },
    /// Another invocation holds the claim on this job outcome right now.
    InProgressElsewhere { job: String },
}

/// What a claimed piece of work came to, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed<T> {
    Done(T),
    /// Done before: the recorded answer, unless it no longer reads as `T` (an older shape).
    Duplicate(Option<T>),
    InProgressElsewhere,
}

/// [`once`] over a typed answer: the store keeps its JSON; a recorded answer that no longer deserializes (an
/// earlier release's shape) is taken as "already done" rather than failing the duplicate delivery.
pub async fn once_typed<T, S, F, Fut>(
    store: &S,
    key: &str,
    until: Timestamp,
    work: F,
) -> Result<Claimed<T>, HandlerError>
where
    T: Serialize + DeserializeOwned,
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, HandlerError>>,
{
    let ran = once(store, key, until, || async {
        let answer = work().await?;
        serde_json::to_value(&answer).map_err(HandlerError::Record)
    })
    .await?;
    Ok(match ran {
        Once::Done(v) => Claimed::Done(serde_json::from_value(v).map_err(HandlerError::Record)?),
        Once::Duplicate(previous) => {
            Claimed::Duplicate(previous.and_then(|v| read_previous(key, v)))
        }
        Once::InProgressElsewhere => Claimed::InProgressElsewhere,
    })
}

fn read_previous<T: DeserializeOwned>(key: &str, recorded: Value) -> Option<T> {
    serde_json::from_value(recorded)
        .map_err(|e| tracing::info!(key, error = %e, "recorded in an older shape: already done"))
        .ok()
}

pub struct Handler<S, T, R, A, P, I, K, L, W> {
    config: Config,
    ports: Ports<S, T, R, A, P, I, K, L, W>,
}

impl<S, T, R, A, P, I, K, L, W> Handler<S, T, R, A, P, I, K, L, W>
where
    S: SourceRepository,
    T: Training,
    R: ModelRegistry,
    A: Artifacts,
    P: PublishEvents,
    I: IdempotencyStore,
    K: RunTracker,
    L: SpendLedger,
    W: PushState,
{
    pub fn new(config: Config, ports: Ports<S, T, R, A, P, I, K, L, W>) -> Self {
        Self { config, ports }
    }

    /// The ports (the unit tests read the fakes' records through it).
    pub fn ports(&self) -> &Ports<S, T, R, A, P, I, K, L, W> {
        &self.ports
    }

    pub async fn handle(&self, event: Value, context: Context) -> Result<Outcome, HandlerError> {
        let trigger = parse_trigger(&event)?;
        // A claim lapses with this invocation, so that a retry after a crash or timeout may take it again.
        let deadline = Deadline::from_context(&context);
        let until = deadline.wall_clock();
        let outcome = match trigger {
            Trigger::Push(change) => {
                let push = OnPush::new(&self.config, &self.ports);
                push.run(&change, until).await?
            }
            Trigger::TrainingJob(job) => {
                let ended = OnTrainingJob::new(&self.config, &self.ports);
                ended.run(&job, until).await?
            }
            Trigger::CatchUp => {
                CatchUp::new(&self.config, &self.ports)
                    .run(&deadline)
                    .await?
            }
            Trigger::PullRequest(change) => {
                let merged = OnPullRequest::new(&self.config, &self.ports);
                merged.run(&change, until).await?
            }
        };
        tracing::info!(event_id = %event_id(&event), outcome = ?outcome, "train-on-push done");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
