//! The catch-up use case: CodeCommit delivers its EventBridge events best effort, so every hour each watched
//! branch's head is compared with the last head train-on-push evaluated in full (`PushState`), and a branch that is
//! ahead is evaluated as one push from there, through the push use case itself: the same deterministic job names
//! and the same per-model claims, so a push seen by its event and by the catch-up still starts one job, and a
//! manifest rejected once is not rejected again (the head moves past it). The first run only records the heads as
//! the starting point and trains nothing. What a run caught up is published once (Push Caught Up → notify).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use studio_ops_shared::Deadline;
use studio_ops_shared::events::suite::{PushCaughtUp, SuiteEvent};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::metrics::{MetricSet, RUN_COMPLETED, Unit};
use studio_ops_shared::names::glob_matches;
use studio_ops_shared::publisher::PublishEvents;

use crate::config::Config;
use crate::error::HandlerError;
use crate::handler::{Outcome, once_typed};
use crate::ports::{
    Artifacts, Ports, PushState, RunTracker, SourceRepository, SpendLedger, Training,
};
use crate::push::{ModelOutcome, OnPush};
use crate::trigger::RepositoryStateChange;

/// Branches one run looks at, at most (in name order; the rest wait for the next run, and the answer says so).
pub const MAX_BRANCHES: usize = 200;
/// Time kept free before the deadline: a branch is not begun with less left.
const BRANCH_MARGIN: Duration = Duration::from_secs(60);

/// What the catch-up did for one branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum BranchCatchUp {
    /// The head is the one evaluated last.
    UpToDate { head: String },
    /// First run: the head is recorded as the starting point; nothing trained.
    StartedWatching { head: String },
    /// The branch was ahead: evaluated from `from` (None: a branch created since the starting point) to `to`.
    Evaluated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
        outcome: Box<Outcome>,
    },
    /// Deleted between the listing and the read.
    Gone,
    /// Left for the next run: the deadline came near.
    Deferred,
    /// The evaluation failed; the next run (or Lambda's retry) tries again from the same head.
    Failed { error: String },
}

/// The catch-up use case over the ports it needs.
pub struct CatchUp<'a, S, T, R, A, P, I, K, L, W> {
    config: &'a Config,
    ports: &'a Ports<S, T, R, A, P, I, K, L, W>,
}

impl<'a, S, T, R, A, P, I, K, L, W> CatchUp<'a, S, T, R, A, P, I, K, L, W>
where
    S: SourceRepository,
    T: Training,
    A: Artifacts,
    P: PublishEvents,
    I: IdempotencyStore,
    K: RunTracker,
    L: SpendLedger,
    W: PushState,
{
    pub fn new(config: &'a Config, ports: &'a Ports<S, T, R, A, P, I, K, L, W>) -> Self {
        Self { config, ports }
    }

    pub async fn run(&self, deadline: &Deadline) -> Result<Outcome, HandlerError> {
        let repository = &self.config.repository_name;
        let source = &self.ports.source;
        let state = &self.ports.state;
        let mut watched: Vec<String> = source
            .branches(repository)
            .await?
            .into_iter()
            .filter(|b| {
                self.config
                    .branch_patterns
                    .iter()
                    .any(|p| glob_matches(p, b))
            })
            .collect();
        watched.sort();
        let omitted = watched.len().saturating_sub(MAX_BRANCHES);
        watched.truncate(MAX_BRANCHES);
        let first_run = state.watching_since(repository).await?.is_none();
        let mut branches = BTreeMap::new();
        let mut first_error = None;
        for branch in watched {
            if !deadline.may_start(BRANCH_MARGIN) {
                branches.insert(branch, BranchCatchUp::Deferred);
                continue;
            }
            let done = match self.branch(&branch, first_run, deadline).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(branch = %branch, error = %e, "catch-up failed for the branch");
                    let failed = BranchCatchUp::Failed {
                        error: e.to_string(),
                    };
                    first_error.get_or_insert(e);
                    failed
                }
            };
            branches.insert(branch, done);
        }
        if first_run {
            state
                .start_watching(repository, &Timestamp::now().to_string())
                .await?;
        }
        tracing::info!(
            branches = branches.len(),
            omitted,
            first_run,
            "catch-up done"
        );
        // The heartbeat (the template's PushCatchUpHeartbeatAlarm): 1 for a run that failed on no branch.
        let caught_up = branches
            .values()
            .filter(|b| matches!(b, BranchCatchUp::Evaluated { .. }))
            .count();
        let mut metrics = MetricSet::of(&crate::METRICS);
        metrics.put(
            RUN_COMPLETED,
            f64::from(u8::from(first_error.is_none())),
            Unit::Count,
        );
        metrics.put("PushesCaughtUp", caught_up as f64, Unit::Count);
        metrics.emit();
        match first_error {
            // Lambda's retry and the error alarm see it; the branches done are found done again.
            Some(e) => Err(e),
            None => Ok(Outcome::CaughtUp {
                repository: repository.clone(),
                branches,
                omitted,
            }),
        }
    }

    async fn branch(
        &self,
        branch: &str,
        first_run: bool,
        deadline: &Deadline,
    ) -> Result<BranchCatchUp, HandlerError> {
        let repository = &self.config.repository_name;
        let Some(head) = self.ports.source.head(repository, branch).await? else {
            return Ok(BranchCatchUp::Gone);
        };
        let evaluated = self.ports.state.evaluated(repository, branch).await?;
        match evaluated {
            Some(h) if h == head => return Ok(BranchCatchUp::UpToDate { head }),
            None if first_run => {
                self.ports
                    .state
                    .advance(repository, branch, None, &head)
                    .await?;
                tracing::info!(branch, head = %head, "catch-up starts watching");
                return Ok(BranchCatchUp::StartedWatching { head });
            }
            _ => {}
        }
        // The missed pushes as one: from the head evaluated last (or, for a branch created since the starting
        // point, as a new branch) to today's head. The push use case moves the evaluated head when it is done.
        let change = RepositoryStateChange {
            event: if evaluated.is_some() {
                "referenceUpdated".to_string()
            } else {
                "referenceCreated".to_string()
            },
            repository_name: repository.clone(),
            repository_id: None,
            reference_type: "branch".to_string(),
            reference_name: branch.to_string(),
            reference_full_name: Some(format!("refs/heads/{branch}")),
            commit_id: Some(head.clone()),
            old_commit_id: evaluated.clone(),
            caller_user_arn: None,
        };
        let until = deadline.wall_clock();
        let outcome = OnPush::new(self.config, self.ports)
            .run(&change, until)
            .await?;
        tracing::warn!(branch, from = ?evaluated, to = %head, "caught up a push CodeCommit did not deliver");
        self.report(branch, evaluated.as_deref(), &head, &outcome, until)
            .await?;
        Ok(BranchCatchUp::Evaluated {
            from: evaluated,
            to: head,
            outcome: Box::new(outcome),
        })
    }

    /// Push Caught Up, once per branch and head, when the catch-up itself started or rejected something (a range
    /// whose models were all done by a late event is no news).
    async fn report(
        &self,
        branch: &str,
        from: Option<&str>,
        to: &str,
        outcome: &Outcome,
        until: Timestamp,
    ) -> Result<(), HandlerError> {
        let (mut started, mut rejected) = (Vec::new(), Vec::new());
        if let Outcome::Pushed { models, .. } = outcome {
            for (model, result) in models {
                match result {
                    ModelOutcome::Started { job } => started.push(job.clone()),
                    ModelOutcome::Rejected { .. } => rejected.push(model.clone()),
                    _ => {}
                }
            }
        }
        if let Outcome::TooManyModels { .. } = outcome {
            rejected.push("(too many models in one push)".to_string());
        }
        if started.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        let repository = &self.config.repository_name;
        let author = self.ports.source.commit(repository, to).await?.author_email;
        let event = SuiteEvent::PushCaughtUp(PushCaughtUp {
            repository: repository.clone(),
            branch: branch.to_string(),
            from_commit: from.map(str::to_string),
            to_commit: to.to_string(),
            started,
            rejected,
            author,
        });
        let key = format!("caught-up#{repository}#{branch}#{to}");
        let publisher = &self.ports.publisher;
        once_typed(&self.ports.idempotency, &key, until, || async move {
            publisher.publish(&[event]).await?;
            Ok(true)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
