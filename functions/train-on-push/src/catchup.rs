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

/// The branches one run looks at: those named by a literal pattern (e.g. `main`) always, then a window of the others
/// that moves every hour, so that beyond [`MAX_BRANCHES`] every branch is reached within a few runs rather than the
/// same ones never. Answers the branches and how many wait for a later run.
fn window(mut branches: Vec<String>, patterns: &[String], now: Timestamp) -> (Vec<String>, usize) {
    branches.sort();
    branches.dedup();
    let literal = |b: &String| patterns.iter().any(|p| !p.contains(['*', '?']) && p == b);
    let (mut chosen, rest): (Vec<String>, Vec<String>) = branches.into_iter().partition(literal);
    let room = MAX_BRANCHES.saturating_sub(chosen.len());
    if rest.len() <= room {
        chosen.extend(rest);
        return (chosen, 0);
    }
    if room == 0 {
        return (chosen, rest.len());
    }
    let windows = rest.len().div_ceil(room);
    let hour = usize::try_from(now.as_second().div_euclid(3600)).unwrap_or(0);
    let start = (hour % windows) * room;
    chosen.extend(rest.iter().cycle().skip(start).take(room).cloned());
    (chosen, rest.len() - room)
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
        let watched: Vec<String> = source
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
        let (watched, omitted) = window(watched, &self.config.branch_patterns, Timestamp::now());
        let since = state.watching_since(repository).await?;
        let first_run = since.is_none();
        let since = since.and_then(|t| t.parse::<Timestamp>().ok());
        let mut branches = BTreeMap::new();
        let mut first_error = None;
        for branch in watched {
            if !deadline.may_start(BRANCH_MARGIN) {
                branches.insert(branch, BranchCatchUp::Deferred);
                continue;
            }
            let done = match self.branch(&branch, since, deadline).await {
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
        // The starting point holds once every branch looked at was recorded: a run that failed or was cut short
        // stays a first run (what it recorded stays too), so no branch is ever taken for one created since.
        let complete = branches
            .values()
            .all(|b| !matches!(b, BranchCatchUp::Failed { .. } | BranchCatchUp::Deferred));
        if first_run && complete {
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

    /// One branch: `since` is when the catch-up started watching (None: this is its first run).
    async fn branch(
        &self,
        branch: &str,
        since: Option<Timestamp>,
        deadline: &Deadline,
    ) -> Result<BranchCatchUp, HandlerError> {
        let repository = &self.config.repository_name;
        let Some(head) = self.ports.source.head(repository, branch).await? else {
            return Ok(BranchCatchUp::Gone);
        };
        let evaluated = self.ports.state.evaluated(repository, branch).await?;
        // A branch without a record is new only if its head was committed after the catch-up started watching:
        // otherwise it existed then (a pattern added since, a branch a cut-short run did not reach) and is recorded.
        let new_since_watching = match (evaluated.is_none(), since) {
            (true, Some(since)) => {
                let commit = self.ports.source.commit(repository, &head).await?;
                commit.committed_at.is_some_and(|at| at > since.as_second())
            }
            _ => false,
        };
        match evaluated {
            Some(h) if h == head => return Ok(BranchCatchUp::UpToDate { head }),
            None if !new_since_watching => {
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

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn beyond_the_limit_every_branch_is_reached_within_a_few_hours_and_main_always() {
        let mut branches: Vec<String> = (0..450).map(|i| format!("experiment/b{i:03}")).collect();
        branches.push("main".into());
        let patterns = vec!["main".to_string(), "experiment/*".to_string()];
        let mut seen = std::collections::BTreeSet::new();
        for hour in 0..3 {
            let now = Timestamp::from_second(hour * 3600).unwrap();
            let (chosen, omitted) = window(branches.clone(), &patterns, now);
            assert_eq!(chosen.len(), MAX_BRANCHES);
            assert_eq!(omitted, 451 - MAX_BRANCHES);
            assert_eq!(
                chosen[0], "main",
                "a literal pattern's branch always comes first"
            );
            seen.extend(chosen);
        }
        assert_eq!(seen.len(), 451, "three hours reach all 451 branches");
        // Within the limit: everything, nothing omitted.
        let (chosen, omitted) = window(branches[..10].to_vec(), &patterns, Timestamp::UNIX_EPOCH);
        assert_eq!((chosen.len(), omitted), (10, 0));
    }
}
