//! The repository port over CodeCommit: GetCommit, GetDifferences (every page), GetFolder, GetFile, ListBranches
//! (every page), GetBranch and GetPullRequest.

use aws_sdk_codecommit::Client;
use aws_sdk_codecommit::types::FileModeTypeEnum;

use studio_ops_shared::{AwsCall, AwsCallError};

use crate::ports::{CommitInfo, FolderEntry, PullRequest, PullRequestTarget, SourceRepository};

#[derive(Clone)]
pub struct CodeCommitSource {
    client: Client,
}

impl CodeCommitSource {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl SourceRepository for CodeCommitSource {
    async fn commit(&self, repository: &str, commit_id: &str) -> Result<CommitInfo, AwsCallError> {
        let out = self
            .client
            .get_commit()
            .repository_name(repository)
            .commit_id(commit_id)
            .send()
            .await
            .call("GetCommit")?;
        let commit = out.commit();
        let text = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(CommitInfo {
            message: commit
                .and_then(|c| c.message())
                .unwrap_or_default()
                .to_string(),
            author_name: text(commit.and_then(|c| c.author()).and_then(|a| a.name())),
            author_email: text(commit.and_then(|c| c.author()).and_then(|a| a.email())),
            committer_email: text(commit.and_then(|c| c.committer()).and_then(|a| a.email())),
            parents: commit.map(|c| c.parents().to_vec()).unwrap_or_default(),
            committed_at: commit
                .and_then(|c| c.committer())
                .and_then(|c| c.date())
                .and_then(epoch_seconds),
        })
    }

    async fn changed_paths(
        &self,
        repository: &str,
        before: &str,
        after: &str,
        folder: &str,
    ) -> Result<Vec<String>, AwsCallError> {
        let mut request = self
            .client
            .get_differences()
            .repository_name(repository)
            .before_commit_specifier(before)
            .after_commit_specifier(after);
        if !folder.is_empty() {
            request = request.before_path(folder).after_path(folder);
        }
        let mut pages = request.into_paginator().send();
        let mut paths = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page.call("GetDifferences") {
                Ok(p) => p,
                // The models folder exists in neither commit: nothing under it changed.
                Err(e) if e.is("PathDoesNotExistException") => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            for d in page.differences() {
                for blob in [d.before_blob(), d.after_blob()].into_iter().flatten() {
                    if let Some(p) = blob.path()
                        && paths.last().is_none_or(|last: &String| last != p)
                    {
                        paths.push(p.to_string());
                    }
                }
            }
        }
        Ok(paths)
    }

    async fn folder(
        &self,
        repository: &str,
        commit_id: &str,
        path: &str,
    ) -> Result<Option<Vec<FolderEntry>>, AwsCallError> {
        let folder_path = if path.is_empty() { "/" } else { path };
        let out = match self
            .client
            .get_folder()
            .repository_name(repository)
            .commit_specifier(commit_id)
            .folder_path(folder_path)
            .send()
            .await
            .call("GetFolder")
        {
            Ok(o) => o,
            Err(e) if e.is("FolderDoesNotExistException") => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for f in out.files() {
            if let Some(p) = f.absolute_path() {
                entries.push(FolderEntry::File {
                    path: p.to_string(),
                    executable: f.file_mode() == Some(&FileModeTypeEnum::Executable),
                });
            }
        }
        for f in out.sub_folders() {
            if let Some(p) = f.absolute_path() {
                entries.push(FolderEntry::Folder {
                    path: p.to_string(),
                    tree_id: f.tree_id().map(str::to_string),
                });
            }
        }
        for l in out.symbolic_links() {
            if let Some(p) = l.absolute_path() {
                entries.push(FolderEntry::Other {
                    path: p.to_string(),
                    what: "symbolic link",
                });
            }
        }
        for m in out.sub_modules() {
            if let Some(p) = m.absolute_path() {
                entries.push(FolderEntry::Other {
                    path: p.to_string(),
                    what: "submodule",
                });
            }
        }
        Ok(Some(entries))
    }

    async fn file(
        &self,
        repository: &str,
        commit_id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, AwsCallError> {
        match self
            .client
            .get_file()
            .repository_name(repository)
            .commit_specifier(commit_id)
            .file_path(path)
            .send()
            .await
            .call("GetFile")
        {
            Ok(o) => Ok(Some(o.file_content.into_inner())),
            Err(e) if e.is("FileDoesNotExistException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn branches(&self, repository: &str) -> Result<Vec<String>, AwsCallError> {
        let mut pages = self
            .client
            .list_branches()
            .repository_name(repository)
            .into_paginator()
            .send();
        let mut branches = Vec::new();
        while let Some(page) = pages.next().await {
            branches.extend(page.call("ListBranches")?.branches().iter().cloned());
        }
        Ok(branches)
    }

    async fn head(&self, repository: &str, branch: &str) -> Result<Option<String>, AwsCallError> {
        match self
            .client
            .get_branch()
            .repository_name(repository)
            .branch_name(branch)
            .send()
            .await
            .call("GetBranch")
        {
            Ok(out) => Ok(out.branch().and_then(|b| b.commit_id()).map(str::to_string)),
            // Deleted since it was listed.
            Err(e) if e.is("BranchDoesNotExistException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pull_request(&self, id: &str) -> Result<Option<PullRequest>, AwsCallError> {
        let out = match self
            .client
            .get_pull_request()
            .pull_request_id(id)
            .send()
            .await
            .call("GetPullRequest")
        {
            Ok(out) => out,
            Err(e) if e.is("PullRequestDoesNotExistException") => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(pr) = out.pull_request() else {
            return Ok(None);
        };
        let text = |s: Option<&str>| s.map(str::to_string);
        Ok(Some(PullRequest {
            id: pr.pull_request_id().unwrap_or(id).to_string(),
            title: pr.title().unwrap_or_default().to_string(),
            status: pr
                .pull_request_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            targets: pr
                .pull_request_targets()
                .iter()
                .map(|t| {
                    let merge = t.merge_metadata();
                    PullRequestTarget {
                        repository: t.repository_name().unwrap_or_default().to_string(),
                        source_reference: t.source_reference().unwrap_or_default().to_string(),
                        destination_reference: t
                            .destination_reference()
                            .unwrap_or_default()
                            .to_string(),
                        source_commit: text(t.source_commit()),
                        destination_commit: text(t.destination_commit()),
                        merge_base: text(t.merge_base()),
                        merged: merge.is_some_and(|m| m.is_merged()),
                        merged_by: text(merge.and_then(|m| m.merged_by())),
                        merge_commit: text(merge.and_then(|m| m.merge_commit_id())),
                    }
                })
                .collect(),
        }))
    }
}

/// CodeCommit's `UserInfo.date`: `1484167798 -0800` (Git's own form: seconds since the epoch, then the zone).
fn epoch_seconds(date: &str) -> Option<i64> {
    date.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn commit_dates_read_as_git_writes_them() {
        assert_eq!(
            super::epoch_seconds("1484167798 -0800"),
            Some(1_484_167_798)
        );
        assert_eq!(super::epoch_seconds("1484167798"), Some(1_484_167_798));
        assert_eq!(super::epoch_seconds("Tue Jan 10 2017"), None);
        assert_eq!(super::epoch_seconds(""), None);
    }
}
