//! Which models a push trains: whether the push counts at all (repository, branch patterns, branch vs tag),
//! the commit message's directives (`[skip train]`, `[train <model>]`), and the model folders the push
//! changed.

use std::collections::BTreeSet;

use studio_ops_shared::names::{Arn, glob_matches};

use crate::naming;
use crate::paths;
use crate::trigger::RepositoryStateChange;

/// What to do on a new branch (a push without a previous commit to compare with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewBranchPolicy {
    /// Train every model on the branch.
    All,
    /// Train nothing (unless the commit message names models).
    None,
}

impl std::str::FromStr for NewBranchPolicy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "all" => Ok(NewBranchPolicy::All),
            "none" => Ok(NewBranchPolicy::None),
            _ => Err(()),
        }
    }
}

/// A push worth looking at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repository: String,
    pub branch: String,
    pub commit_id: String,
    /// The previous tip; None on a new branch.
    pub before: Option<String>,
    /// Who pushed (the session name of `callerUserArn`, e.g. an SSO user's e-mail).
    pub pushed_by: Option<String>,
}

/// Whether a CodeCommit event is a push this function trains on, and if not, why.
pub fn screen(
    change: &RepositoryStateChange,
    repository: &str,
    branch_patterns: &[String],
) -> Result<Push, String> {
    if change.repository_name != repository {
        return Err(format!(
            "repository {} is not the configured {repository}",
            change.repository_name
        ));
    }
    if !change.is_branch_push() {
        return Err(format!(
            "{} of {} {} is not a branch push",
            change.event, change.reference_type, change.reference_name
        ));
    }
    let Some(commit_id) = change.commit_id.clone() else {
        return Err("the event carries no commitId".to_string());
    };
    if !branch_patterns
        .iter()
        .any(|p| glob_matches(p, &change.reference_name))
    {
        return Err(format!(
            "branch {} matches none of {}",
            change.reference_name,
            branch_patterns.join(", ")
        ));
    }
    let before = change
        .old_commit_id
        .clone()
        .filter(|_| change.event != "referenceCreated")
        .filter(|c| !c.is_empty() && c.bytes().any(|b| b != b'0'));
    Ok(Push {
        repository: change.repository_name.clone(),
        branch: change.reference_name.clone(),
        commit_id,
        before,
        // The session name of an assumed-role ARN (an SSO user's e-mail), or an IAM user's name.
        pushed_by: change
            .caller_user_arn
            .as_deref()
            .and_then(Arn::parse)
            .and_then(|arn| arn.principal_name())
            .map(str::to_string),
    })
}

/// What the commit message asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `[skip train]` (or `[train skip]`): train nothing.
    pub skip: bool,
    /// `[train all]`: every model, changed or not.
    pub all: bool,
    /// `[train <model>]`: these models too, changed or not (e.g. to retrain on new data).
    pub models: BTreeSet<String>,
}

/// Reads `[skip train]`, `[train all]` and `[train <model> ...]` (case-insensitive) from a commit message.
pub fn directives(message: &str) -> Directives {
    let mut d = Directives::default();
    let lower = message.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner: Vec<&str> = after[..close].split_whitespace().collect();
        match inner.as_slice() {
            ["skip", "train"] | ["train", "skip"] => d.skip = true,
            ["train", "all"] => d.all = true,
            ["train", names @ ..] if !names.is_empty() => {
                d.models.extend(
                    names
                        .iter()
                        .flat_map(|n| n.split(','))
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                );
            }
            _ => {}
        }
        rest = &after[close + 1..];
    }
    d
}

/// The model folders (direct children of `root`) that contain any of `paths`.
pub fn changed_models<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    root: &str,
) -> BTreeSet<String> {
    let prefix = if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    };
    paths
        .into_iter()
        .filter_map(|p| p.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.split_once('/').map(|(model, _)| model))
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// The models to train, from what changed (None on a new branch), the folders that exist at the commit,
/// the message's directives and the new-branch policy. Only existing folders are ever chosen.
pub fn select(
    changed: Option<&BTreeSet<String>>,
    existing: &BTreeSet<String>,
    directives: &Directives,
    new_branch: NewBranchPolicy,
) -> BTreeSet<String> {
    if directives.skip {
        return BTreeSet::new();
    }
    if directives.all {
        return existing.clone();
    }
    let mut chosen: BTreeSet<String> = match changed {
        Some(c) => c.intersection(existing).cloned().collect(),
        None if new_branch == NewBranchPolicy::All => existing.clone(),
        None => BTreeSet::new(),
    };
    chosen.extend(directives.models.intersection(existing).cloned());
    chosen
}

/// The path of a model's manifest.
pub fn manifest_path(root: &str, model: &str) -> String {
    paths::join(&paths::join(root, model), crate::manifest::FILE_NAME)
}

/// Why a model folder cannot be a model, if it cannot.
pub fn folder_problem(model: &str) -> Option<String> {
    (!naming::is_model_name(model)).then(|| {
        format!(
            "model folder {model:?} must be lowercase letters, digits and single hyphens, at most {} characters, starting and ending with a letter or digit (it names the training job and the model package group)",
            naming::MAX_MODEL_NAME
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(event: &str, branch: &str, old: Option<&str>) -> RepositoryStateChange {
        RepositoryStateChange {
            event: event.into(),
            repository_name: "repo".into(),
            repository_id: None,
            reference_type: "branch".into(),
            reference_name: branch.into(),
            reference_full_name: None,
            commit_id: Some("b".repeat(40)),
            old_commit_id: old.map(str::to_string),
            caller_user_arn: Some(
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScientist_0123/ana@example.com".into(),
            ),
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn screening() {
        let main = vec!["main".to_string()];
        let p = screen(
            &change("referenceUpdated", "main", Some(&"a".repeat(40))),
            "repo",
            &main,
        )
        .unwrap();
        assert_eq!(p.before.as_deref(), Some("a".repeat(40).as_str()));
        assert_eq!(p.pushed_by.as_deref(), Some("ana@example.com"));
        assert_eq!(
            screen(&change("referenceUpdated", "dev", None), "repo", &main).unwrap_err(),
            "branch dev matches none of main"
        );
        assert!(screen(&change("referenceUpdated", "main", None), "other", &main).is_err());
        let mut tag = change("referenceCreated", "v1", None);
        tag.reference_type = "tag".into();
        assert!(screen(&tag, "repo", &["*".to_string()]).is_err());
        assert!(screen(&change("referenceDeleted", "main", None), "repo", &main).is_err());
        // A new branch has nothing to compare with, even if an old id is present.
        let created = screen(
            &change("referenceCreated", "main", Some(&"a".repeat(40))),
            "repo",
            &main,
        )
        .unwrap();
        assert_eq!(created.before, None);
        let zeros = screen(
            &change("referenceUpdated", "main", Some(&"0".repeat(40))),
            "repo",
            &main,
        )
        .unwrap();
        assert_eq!(zeros.before, None);
    }

    /// Branch patterns are the suite's one glob (`*` any run of characters, `/` included; `?` one character,
    /// which a git branch name cannot hold literally).
    #[test]
    fn branch_patterns() {
        assert!(glob_matches("main", "main"));
        assert!(!glob_matches("main", "main2"));
        assert!(glob_matches("release/*", "release/2026.11"));
        assert!(!glob_matches("release/*", "hotfix/1"));
        assert!(glob_matches("*", "anything/at/all"));
        assert!(glob_matches("train-*-gpu", "train-big-gpu"));
        assert!(glob_matches(&"*".repeat(10_000), "x"));
        assert!(!glob_matches(
            &format!("{}b", "*a".repeat(20)),
            &"a".repeat(30)
        ));
    }

    /// Who `screen` says pushed, for a caller ARN.
    fn pushed_by(arn: &str) -> Option<String> {
        let mut c = change("referenceUpdated", "main", None);
        c.caller_user_arn = Some(arn.to_string());
        screen(&c, "repo", &["main".to_string()]).ok()?.pushed_by
    }

    #[test]
    fn session_names() {
        assert_eq!(
            pushed_by("arn:aws:iam::123456789012:user/bob").as_deref(),
            Some("bob")
        );
        assert_eq!(pushed_by("not an arn"), None);
    }

    #[test]
    fn commit_message_directives() {
        assert!(directives("Tidy notebooks [skip train]").skip);
        assert!(directives("[Skip Train] docs").skip);
        assert!(directives("[train skip]").skip);
        assert!(!directives("skip train").skip);
        assert!(directives("retrain everything [train all]").all);
        let d = directives("New data [train churn-xgboost] [train arima, sales-forecast]");
        assert_eq!(d.models, set(&["churn-xgboost", "arima", "sales-forecast"]));
        assert_eq!(directives("[wip] [train]"), Directives::default());
        assert_eq!(directives("unclosed [train x"), Directives::default());
    }

    #[test]
    fn changed_model_detection() {
        let paths = [
            "models/churn-xgboost/training.toml",
            "models/churn-xgboost/notes.md",
            "models/tf-cnn/src/train.py",
            "models/README.md",
            "notebooks/eda.ipynb",
            "modelsX/a/b",
        ];
        assert_eq!(
            changed_models(paths, "models"),
            set(&["churn-xgboost", "tf-cnn"])
        );
        assert_eq!(
            changed_models(["churn/training.toml", "README.md"], ""),
            set(&["churn"])
        );
        assert_eq!(changed_models(["ml/models/a/x"], "ml/models"), set(&["a"]));
    }

    #[test]
    fn selection() {
        let existing = set(&["a", "b", "c"]);
        let changed = set(&["a", "deleted"]);
        let none = Directives::default();
        assert_eq!(
            select(Some(&changed), &existing, &none, NewBranchPolicy::None),
            set(&["a"])
        );
        assert_eq!(
            select(None, &existing, &none, NewBranchPolicy::None),
            set(&[])
        );
        assert_eq!(
            select(None, &existing, &none, NewBranchPolicy::All),
            existing
        );
        let named = directives("[train b] [train ghost]");
        assert_eq!(
            select(Some(&changed), &existing, &named, NewBranchPolicy::None),
            set(&["a", "b"])
        );
        assert_eq!(
            select(None, &existing, &named, NewBranchPolicy::None),
            set(&["b"])
        );
        let all = directives("[train all]");
        assert_eq!(
            select(Some(&set(&[])), &existing, &all, NewBranchPolicy::None),
            existing
        );
        let skip = directives("[train all] [skip train]");
        assert!(select(Some(&changed), &existing, &skip, NewBranchPolicy::All).is_empty());
        assert_eq!(manifest_path("models", "a"), "models/a/training.toml");
        assert!(folder_problem("Bad_Name").is_some());
        assert!(folder_problem("good-name").is_none());
    }
}
