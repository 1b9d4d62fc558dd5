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
use crate::naming;
use crate::ports::{
    FolderEntry, ModelRegistry, Ports, PullRequestTarget, PushState, SourceRepository,
};
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
    /// No version trained the merged files (the last commit was not trained, its job failed, or its version is not
    /// registered yet: it then waits for an approval by hand).
    NoVersion { reason: String },
    /// The version found is not one a merge may approve (not studio-ops', trained outside the range, or changed
    /// since it was registered).
    NotTrusted {
        model_package_arn: String,
        reason: String,
    },
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
    W: PushState,
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
        if !target.merged {
            return Err(HandlerError::MergeNotVisible { id: pr.id.clone() });
        }
        let (Some(base), Some(tip)) = (&target.merge_base, &target.source_commit) else {
            return Ok(ignored(format!(
                "CodeCommit shows pull request {} merged without a merge base or a source commit",
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
                .approve_model(&model, tip, &range, |commit, job| {
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

    /// The version that trained exactly the merged files of the model (its folder's tree at the source commit, as
    /// train-on-push recorded it when the job started), checked to be studio-ops' own, trained from a commit of the
    /// range, and still serving what it was registered with; approved unless a reviewer decided already.
    async fn approve_model(
        &self,
        model: &str,
        tip: &str,
        range: &Range,
        describe: impl Fn(&str, &str) -> String,
    ) -> Result<Approval, HandlerError> {
        let repository = &self.config.repository_name;
        let root = &self.config.models_root;
        let folder = crate::paths::join(root, model);
        let tree = self
            .ports
            .source
            .folder(repository, tip, root)
            .await?
            .unwrap_or_default()
            .into_iter()
            .find_map(|e| match e {
                FolderEntry::Folder { path, tree_id } if path == folder => tree_id,
                _ => None,
            });
        let trained = match &tree {
            Some(tree) => {
                self.ports
                    .state
                    .trained_tree(repository, model, tree)
                    .await?
            }
            None => None,
        };
        let Some(job) = trained else {
            return Ok(Approval::NoVersion {
                reason: "no job trained the merged files of this model (the pull request's last commit was not trained, or its job failed): nothing is approved".into(),
            });
        };
        let registry = &self.ports.registry;
        let Some(version) = registry
            .versions(model)
            .await?
            .into_iter()
            .find(|v| v.job.as_deref() == Some(job.as_str()))
        else {
            return Ok(Approval::NoVersion {
                reason: format!(
                    "{job} trained the merged files, but its version is not registered yet: approve it by hand once it is"
                ),
            });
        };
        let refuse = |reason: String| {
            Ok(Approval::NotTrusted {
                model_package_arn: version.arn.clone(),
                reason,
            })
        };
        let Some(detail) = registry.version_detail(&version.arn).await? else {
            return refuse("the version no longer exists".into());
        };
        let tag = |k: &str| detail.tags.get(k).map(String::as_str);
        if tag(naming::tag::MANAGED_BY) != Some(naming::tag::MANAGED_BY_VALUE) {
            return refuse("the version was not registered by studio-ops".into());
        }
        let Some(commit) = tag(naming::tag::COMMIT).map(str::to_string) else {
            return refuse("the version carries no commit".into());
        };
        if !range.contains(&commit) {
            return refuse(format!(
                "the version was trained from commit {}, outside the merged range",
                short(&commit)
            ));
        }
        let serves = naming::model_digest(
            detail.image.as_deref().unwrap_or_default(),
            detail.model_data_url.as_deref().unwrap_or_default(),
        );
        if tag(naming::tag::MODEL_DIGEST) != Some(serves.as_str()) {
            return refuse(
                "the version no longer serves the image and model data it was registered with"
                    .into(),
            );
        }
        Ok(match version.status.as_str() {
            "Approved" => Approval::AlreadyApproved {
                model_package_arn: version.arn,
            },
            "Rejected" => Approval::LeftRejected {
                model_package_arn: version.arn,
            },
            _ => {
                registry
                    .approve(&version.arn, &describe(&commit, &job))
                    .await?;
                tracing::info!(model, version = ?version.version, arn = %version.arn, "approved on merge");
                Approval::Approved {
                    model_package_arn: version.arn,
                    version: version.version,
                    commit,
                }
            }
        })
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
