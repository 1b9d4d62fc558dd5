//! The merge-to-approve use case (opt-in, `STUDIO_OPS_APPROVE_ON_MERGE_INTO`): experiment branches train and register
//! versions pending approval as any push does; when a pull request into the protected branch is merged, each model
//! the pull request changed gets its newest version trained from a commit of the merged range (merge base .. source
//! commit) approved, with the pull request, the merge commit and who merged in the approval's description. The
//! merge is read back from CodeCommit (`GetPullRequest`: merged, merge base, merge commit), never taken from the
//! event alone. Closed-unmerged pull requests change nothing; a merge is handled once (claimed per pull request), and
//! a version already approved is left as it is. notify hears of each approval from SageMaker's own event.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::metrics::{MetricSet, Unit};
use studio_ops_shared::names::{Arn, short_commit};
use studio_ops_shared::publisher::PublishEvents;

use crate::changes;
use crate::config::{Config, MergeToApprove};
use crate::error::HandlerError;
use crate::handler::{Claimed, Outcome, once_typed};
use crate::ports::{ModelRegistry, Ports, PullRequestTarget, SourceRepository};
use crate::range::{self, Range};
use crate::trigger::PullRequestStateChange;

/// Versions of a group looked at, newest first: an older one is not "the newest trained in the range".
pub const MAX_VERSIONS: usize = 100;
/// `ApprovalDescription`'s limit (SageMaker API reference).
const MAX_DESCRIPTION: usize = 1024;

/// What a merge did for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Approval {
    /// The newest version trained in the range is approved now.
    Approved {
        model_package_arn: String,
        #[serde(default)]
        version: Option<i32>,
        commit: String,
    },
    /// It was approved already (by an earlier delivery or by hand): left as it is.
    AlreadyApproved { model_package_arn: String },
    /// A reviewer rejected it: a merge does not overrule that.
    LeftRejected { model_package_arn: String },
    /// No version of the model was trained from a commit of the range (its job may still be running: then the
    /// version, once registered, waits for an approval by hand).
    NoVersion,
}

/// The pull request use case over the ports it needs.
pub struct OnPullRequest<'a, S, T, R, A, P, I, K, L, W> {
    config: &'a Config,
    ports: &'a Ports<S, T, R, A, P, I, K, L, W>,
}

impl<'a, S, T, R, A, P, I, K, L, W> OnPullRequest<'a, S, T, R, A, P, I, K, L, W>
where
    S: SourceRepository,
    R: ModelRegistry,
    P: PublishEvents,
    I: IdempotencyStore,
{
    pub fn new(config: &'a Config, ports: &'a Ports<S, T, R, A, P, I, K, L, W>) -> Self {
        Self { config, ports }
    }

    pub async fn run(
        &self,
        change: &PullRequestStateChange,
        until: Timestamp,
    ) -> Result<Outcome, HandlerError> {
        let Some(settings) = &self.config.merge_to_approve else {
            return Ok(ignored(
                "merge-to-approve is off (STUDIO_OPS_APPROVE_ON_MERGE_INTO)",
            ));
        };
        if let Err(why) = screen(change, &self.config.repository_name, settings) {
            tracing::info!(pull_request = %change.pull_request_id, reason = %why, "pull request ignored");
            return Ok(ignored(why));
        }
        let key = format!(
            "merge#{}#{}",
            self.config.repository_name, change.pull_request_id
        );
        let label = format!("pull request {}", change.pull_request_id);
        Ok(
            match once_typed(&self.ports.idempotency, &key, until, || {
                self.approve_merged(change, settings)
            })
            .await?
            {
                Claimed::Done(outcome) => outcome,
                Claimed::Duplicate(previous) => Outcome::Duplicate {
                    job: label,
                    previous: previous.map(Box::new),
                },
                Claimed::InProgressElsewhere => Outcome::InProgressElsewhere { job: label },
            },
        )
    }

    /// The merge as CodeCommit records it, the range's commits, then each changed model's newest version in it.
    async fn approve_merged(
        &self,
        change: &PullRequestStateChange,
        settings: &MergeToApprove,
    ) -> Result<Outcome, HandlerError> {
        let repository = &self.config.repository_name;
        let source = &self.ports.source;
        let Some(pr) = source.pull_request(&change.pull_request_id).await? else {
            return Ok(ignored(format!(
                "CodeCommit has no pull request {}",
                change.pull_request_id
            )));
        };
        let destination = format!("refs/heads/{}", settings.protected_branch);
        let Some(target) = pr
            .targets
            .iter()
            .find(|t| &t.repository == repository && t.destination_reference == destination)
        else {
            return Ok(ignored(format!(
                "pull request {} does not target {destination} of {repository}",
                pr.id
            )));
        };
        let (Some(base), Some(tip), true) =
            (&target.merge_base, &target.source_commit, target.merged)
        else {
            return Ok(ignored(format!(
                "CodeCommit does not show pull request {} merged with a merge base and a source commit",
                pr.id
            )));
        };
        let range =
            range::commits_between(source, repository, base, tip, range::MAX_COMMITS).await?;
        if !range.complete {
            tracing::warn!(pull_request = %pr.id, "merged range too long: nothing approved");
            return Ok(ignored(format!(
                "the merged range {}..{} has more than {} commits: nothing was approved; approve by hand",
                short(base),
                short(tip),
                range::MAX_COMMITS
            )));
        }
        let root = &self.config.models_root;
        let changed = changes::changed_models(
            source
                .changed_paths(repository, base, tip, root)
                .await?
                .iter()
                .map(String::as_str),
            root,
        );
        let merged_by = change
            .caller_user_arn
            .clone()
            .or_else(|| target.merged_by.clone());
        let who = merged_by
            .as_deref()
            .map(|arn| merger(arn, settings.users_role.as_deref()))
            .unwrap_or_else(|| "an unknown caller".to_string());
        let mut models = BTreeMap::new();
        let mut approved = 0.0;
        for model in changed {
            let approval = self
                .approve_model(&model, &range, |commit, job| {
                    description(&pr.id, &pr.title, target, &who, commit, job)
                })
                .await?;
            approved += f64::from(u8::from(matches!(approval, Approval::Approved { .. })));
            models.insert(model, approval);
        }
        let mut metrics = MetricSet::of(&crate::METRICS);
        metrics.put("ModelsApprovedOnMerge", approved, Unit::Count);
        metrics.emit();
        tracing::info!(pull_request = %pr.id, merged_by = %who, models = ?models, "merge approved its models");
        Ok(Outcome::Merged {
            pull_request: pr.id.clone(),
            merge_commit: target.merge_commit.clone(),
            merged_by,
            models,
        })
    }

    /// The model's newest version (group = the model) trained from a commit of the range, approved unless a reviewer
    /// decided already.
    async fn approve_model(
        &self,
        model: &str,
        range: &Range,
        describe: impl Fn(&str, &str) -> String,
    ) -> Result<Approval, HandlerError> {
        let registry = &self.ports.registry;
        for version in registry.versions(model).await? {
            // The job name ends with the commit as people read it: only a version whose short commit is in the
            // range is worth asking its full commit.
            let Some(job) = &version.job else { continue };
            let Some(short_id) = job.rsplit('-').next() else {
                continue;
            };
            if !range.commits.iter().any(|c| c.starts_with(short_id)) {
                continue;
            }
            let Some(commit) = registry.version_commit(&version.arn).await? else {
                continue;
            };
            if !range.contains(&commit) {
                continue;
            }
            return Ok(match version.status.as_str() {
                "Approved" => Approval::AlreadyApproved {
                    model_package_arn: version.arn,
                },
                "Rejected" => Approval::LeftRejected {
                    model_package_arn: version.arn,
                },
                _ => {
                    registry
                        .approve(&version.arn, &describe(&commit, job))
                        .await?;
                    tracing::info!(model, version = ?version.version, arn = %version.arn, "approved on merge");
                    Approval::Approved {
                        model_package_arn: version.arn,
                        version: version.version,
                        commit,
                    }
                }
            });
        }
        Ok(Approval::NoVersion)
    }
}

fn ignored(reason: impl Into<String>) -> Outcome {
    Outcome::Ignored {
        reason: reason.into(),
        job: None,
    }
}

fn short(commit: &str) -> String {
    short_commit(commit).unwrap_or_else(|| commit.chars().take(7).collect())
}

/// Whether the event is a merge this function approves on, and if not, why.
pub fn screen(
    change: &PullRequestStateChange,
    repository: &str,
    settings: &MergeToApprove,
) -> Result<(), String> {
    if !change.repository_names.iter().any(|r| r == repository) {
        return Err(format!(
            "pull request {} is in {:?}, not the configured {repository}",
            change.pull_request_id, change.repository_names
        ));
    }
    let protected = format!("refs/heads/{}", settings.protected_branch);
    if change.destination_reference != protected {
        return Err(format!(
            "pull request {} targets {}, not the protected {protected}",
            change.pull_request_id, change.destination_reference
        ));
    }
    if !change.says_merged() {
        return Err(format!(
            "pull request {} was not merged ({}, {}): nothing is approved",
            change.pull_request_id,
            change.event,
            change
                .pull_request_status
                .as_deref()
                .unwrap_or("status unknown")
        ));
    }
    Ok(())
}

/// Who merged, as the approval records it. Every Studio user runs as the one execution role, so a merge made from
/// Studio names that role (and its session), not a person; a merge made in the console under IAM Identity Center
/// names the person (the session name of the permission set's role is the user name).
pub fn merger(arn: &str, users_role: Option<&str>) -> String {
    let Some(parsed) = Arn::parse(arn) else {
        return arn.to_string();
    };
    let role = parsed
        .resource
        .strip_prefix("assumed-role/")
        .and_then(|r| r.split('/').next());
    let name = parsed.principal_name().unwrap_or(arn);
    match role {
        Some(role) if Some(role) == users_role => format!(
            "a Studio user (the shared execution role {role}, session {name}: the person is not recorded) ({arn})"
        ),
        Some(role) if role.starts_with("AWSReservedSSO_") => {
            let set = role
                .trim_start_matches("AWSReservedSSO_")
                .rsplit_once('_')
                .map_or(role, |(set, _)| set);
            format!("{name} (IAM Identity Center, permission set {set}) ({arn})")
        }
        Some(role) => format!("{name} (role {role}) ({arn})"),
        None => format!("{name} ({arn})"),
    }
}

/// The approval's description: the pull request, its branches, the merge commit, who merged, and what the version
/// was trained from; within SageMaker's 1,024 characters.
fn description(
    id: &str,
    title: &str,
    target: &PullRequestTarget,
    who: &str,
    commit: &str,
    job: &str,
) -> String {
    let branch = |r: &str| r.trim_start_matches("refs/heads/").to_string();
    let merge = target.merge_commit.as_deref().map_or_else(
        || "a merge commit CodeCommit did not name".to_string(),
        |c| format!("commit {}", short(c)),
    );
    let text = format!(
        "Approved on merge by studio-ops: pull request #{id} \"{title}\" ({} -> {}) merged as {merge} by {who}. This version was trained from commit {} by job {job}.",
        branch(&target.source_reference),
        branch(&target.destination_reference),
        short(commit),
    );
    truncate(&text, MAX_DESCRIPTION)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests;
