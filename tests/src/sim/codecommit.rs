//! Simulated CodeCommit reads backed by real bare git repositories on disk
//! (`<git_root>/<repositoryName>.git`), answered through the `git` CLI without a shell. Every
//! name, path and commit specifier from a request is validated before it reaches `git`, and
//! nothing may escape the git root.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::protocol::{AwsError, Input, epoch, paginate_offset};

/// The CodeCommit operations the simulator answers.
pub const IMPLEMENTED_OPS: &[&str] = &[
    "GetRepository",
    "GetBranch",
    "ListBranches",
    "GetCommit",
    "GetDifferences",
    "GetFile",
    "GetFolder",
    "CreatePullRequest",
    "GetPullRequest",
    "MergePullRequestByThreeWay",
    "UpdatePullRequestStatus",
];

/// Who the simulator records as a pull request's author and merger (it does not authenticate callers; the suite
/// reads the merger from the event's `callerUserArn`, which the tests write).
pub const SIM_CALLER: &str = "arn:aws:sts::123456789012:assumed-role/studio-ops-sim/caller";

const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const MAX_FILE_BYTES: usize = 6 * 1024 * 1024;
const DEFAULT_DIFF_PAGE: i64 = 100;

fn err(code: &str, msg: impl Into<String>) -> AwsError {
    AwsError::client(code, msg)
}

/// Checks a repository name: CodeCommit's `[\w.-]+`, at most 100 characters, and (for the
/// file system) no leading dot and no `..`.
pub fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        && !name.starts_with('.')
        && !name.contains("..")
}

/// Checks a commit specifier (branch, tag or commit id): a conservative ref-name alphabet, no
/// leading `-` or `/`, no `..`, no `//`, no `@{`.
pub fn valid_commit_specifier(spec: &str) -> bool {
    !spec.is_empty()
        && spec.len() <= 256
        && spec
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/'))
        && !spec.starts_with(['-', '/', '.'])
        && !spec.ends_with(['/', '.'])
        && !spec.contains("..")
        && !spec.contains("//")
        && !spec.ends_with(".lock")
}

/// Normalises a repository path: strips leading/trailing `/`; rejects `..`, `.` components,
/// NUL, backslashes and control characters.
pub fn normalize_path(path: &str) -> Option<String> {
    if path
        .bytes()
        .any(|c| c == 0 || c == b'\\' || c.is_ascii_control())
    {
        return None;
    }
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Some(String::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    Some(parts.join("/"))
}

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

fn file_mode(mode: &str) -> &'static str {
    match mode {
        "100755" => "EXECUTABLE",
        "120000" => "SYMLINK",
        _ => "NORMAL",
    }
}

/// One `git ls-tree -z` entry.
#[derive(Debug, Clone)]
struct TreeEntry {
    mode: String,
    kind: String,
    sha: String,
    path: String,
}

fn parse_ls_tree(out: &[u8]) -> Vec<TreeEntry> {
    out.split(|b| *b == 0)
        .filter(|r| !r.is_empty())
        .filter_map(|rec| {
            let rec = String::from_utf8_lossy(rec);
            let (meta, path) = rec.split_once('\t')?;
            let mut it = meta.split(' ');
            Some(TreeEntry {
                mode: it.next()?.to_owned(),
                kind: it.next()?.to_owned(),
                sha: it.next()?.to_owned(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The git-backed CodeCommit service.
#[derive(Debug, Clone)]
pub struct CodeCommit {
    root: PathBuf,
    region: String,
    account: String,
    /// Pull requests by id, in `<git_root>/pull-requests.json`; one writer at a time.
    pull_requests: std::sync::Arc<tokio::sync::Mutex<()>>,
}

struct GitOut {
    ok: bool,
    stdout: Vec<u8>,
}

impl CodeCommit {
    /// A service over the bare repositories under `root`.
    pub fn new(root: &Path, region: &str, account: &str) -> Self {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Self {
            root,
            region: region.to_owned(),
            account: account.to_owned(),
            pull_requests: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn git(&self, repo: &Path, args: &[&str]) -> Result<GitOut, AwsError> {
        let mut cmd = Command::new("git");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_LITERAL_PATHSPECS", "1")
            .arg("-c")
            .arg("core.quotepath=off")
            .arg("--git-dir")
            .arg(repo)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = cmd
            .output()
            .await
            .map_err(|e| AwsError::internal(format!("cannot run git: {e}")))?;
        Ok(GitOut {
            ok: out.status.success(),
            stdout: out.stdout,
        })
    }

    fn repo_path(&self, input: &Input) -> Result<(String, PathBuf), AwsError> {
        let name = input.opt_str("repositoryName")?.ok_or_else(|| {
            err(
                "RepositoryNameRequiredException",
                "A repository name is required, but was not specified.",
            )
        })?;
        if !valid_repo_name(name) {
            return Err(err(
                "InvalidRepositoryNameException",
                format!("The repository name '{name}' is not valid."),
            ));
        }
        let path = self.root.join(format!("{name}.git"));
        let missing = || {
            err(
                "RepositoryDoesNotExistException",
                format!("{name} does not exist"),
            )
        };
        let canon = std::fs::canonicalize(&path).map_err(|_| missing())?;
        if !canon.starts_with(&self.root) || !canon.is_dir() {
            return Err(missing());
        }
        Ok((name.to_owned(), canon))
    }

    async fn resolve_commit(&self, repo: &Path, spec: &str) -> Result<String, AwsError> {
        if !valid_commit_specifier(spec) {
            return Err(err(
                "InvalidCommitException",
                format!("The specified commit '{spec}' is not valid."),
            ));
        }
        let rev = format!("{spec}^{{commit}}");
        let out = self
            .git(
                repo,
                &["rev-parse", "--verify", "--quiet", "--end-of-options", &rev],
            )
            .await?;
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.ok || !is_full_sha(&sha) {
            return Err(err(
                "CommitDoesNotExistException",
                format!("The specified commit '{spec}' does not exist."),
            ));
        }
        Ok(sha)
    }

    /// `git ls-tree` of exactly one path in a commit.
    async fn entry_at(
        &self,
        repo: &Path,
        commit: &str,
        path: &str,
    ) -> Result<Option<TreeEntry>, AwsError> {
        let out = self
            .git(repo, &["ls-tree", "-z", "--full-tree", commit, "--", path])
            .await?;
        if !out.ok {
            return Ok(None);
        }
        Ok(parse_ls_tree(&out.stdout)
            .into_iter()
            .find(|e| e.path == path))
    }

    /// Answers one CodeCommit operation.
    pub async fn call(&self, op: &str, input: &Input) -> Result<Value, AwsError> {
        match op {
            "GetRepository" => self.get_repository(input).await,
            "GetBranch" => self.get_branch(input).await,
            "ListBranches" => self.list_branches(input).await,
            "GetCommit" => self.get_commit(input).await,
            "GetDifferences" => self.get_differences(input).await,
            "GetFile" => self.get_file(input).await,
            "GetFolder" => self.get_folder(input).await,
            "CreatePullRequest" => self.create_pull_request(input).await,
            "GetPullRequest" => self.get_pull_request(input).await,
            "MergePullRequestByThreeWay" => self.merge_pull_request(input).await,
            "UpdatePullRequestStatus" => self.update_pull_request_status(input).await,
            _ => Err(AwsError::unknown_operation(&format!(
                "CodeCommit_20150413.{op}"
            ))),
        }
    }

    async fn get_repository(&self, input: &Input) -> Result<Value, AwsError> {
        let (name, repo) = self.repo_path(input)?;
        let head = self
            .git(&repo, &["symbolic-ref", "--quiet", "--short", "HEAD"])
            .await?;
        let meta = std::fs::metadata(&repo).ok();
        let to_ts = |t: Option<std::time::SystemTime>| {
            t.and_then(|t| Timestamp::try_from(t).ok())
                .unwrap_or_else(Timestamp::now)
        };
        let created = to_ts(meta.as_ref().and_then(|m| m.created().ok()));
        let modified = to_ts(meta.as_ref().and_then(|m| m.modified().ok()));
        let digest = Sha256::digest(name.as_bytes());
        let h = hex::encode(digest);
        let id = format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        let mut md = json!({
            "accountId": self.account,
            "repositoryId": id,
            "repositoryName": name,
            "lastModifiedDate": epoch(modified),
            "creationDate": epoch(created),
            "cloneUrlHttp": format!("https://git-codecommit.{}.amazonaws.com/v1/repos/{name}", self.region),
            "cloneUrlSsh": format!("ssh://git-codecommit.{}.amazonaws.com/v1/repos/{name}", self.region),
            "Arn": format!("arn:aws:codecommit:{}:{}:{name}", self.region, self.account),
        });
        let branch = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        if head.ok
            && !branch.is_empty()
            && let Some(m) = md.as_object_mut()
        {
            m.insert("defaultBranch".into(), json!(branch));
        }
        Ok(json!({ "repositoryMetadata": md }))
    }

    async fn get_branch(&self, input: &Input) -> Result<Value, AwsError> {
        let (_, repo) = self.repo_path(input)?;
        let branch = input.opt_str("branchName")?.ok_or_else(|| {
            err(
                "BranchNameRequiredException",
                "A branch name is required, but was not specified.",
            )
        })?;
        if !valid_commit_specifier(branch) {
            return Err(err(
                "InvalidBranchNameException",
                format!("The branch name '{branch}' is not valid."),
            ));
        }
        let rev = format!("refs/heads/{branch}^{{commit}}");
        let out = self
            .git(
                &repo,
                &["rev-parse", "--verify", "--quiet", "--end-of-options", &rev],
            )
            .await?;
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.ok || !is_full_sha(&sha) {
            return Err(err(
                "BranchDoesNotExistException",
                format!("Branch '{branch}' does not exist."),
            ));
        }
        Ok(json!({ "branch": { "branchName": branch, "commitId": sha } }))
    }

    async fn list_branches(&self, input: &Input) -> Result<Value, AwsError> {
        let (_, repo) = self.repo_path(input)?;
        let out = self
            .git(
                &repo,
                &["for-each-ref", "--format=%(refname:strip=2)", "refs/heads"],
            )
            .await?;
        let branches: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        let token = input.opt_str("nextToken")?;
        let (page, next) = paginate_offset("ListBranches", &branches, token, 100, || {
            err(
                "InvalidContinuationTokenException",
                "The specified continuation token is not valid.",
            )
        })?;
        let mut v = json!({ "branches": page });
        if let (Some(t), Some(m)) = (next, v.as_object_mut()) {
            m.insert("nextToken".into(), json!(t));
        }
        Ok(v)
    }

    async fn get_commit(&self, input: &Input) -> Result<Value, AwsError> {
        let (_, repo) = self.repo_path(input)?;
        let id = input.opt_str("commitId")?.ok_or_else(|| {
            err(
                "CommitIdRequiredException",
                "A commit ID is required, but was not specified.",
            )
        })?;
        if !is_full_sha(id) {
            return Err(err(
                "InvalidCommitIdException",
                format!("The specified commit ID '{id}' is not valid."),
            ));
        }
        let id = id.to_ascii_lowercase();
        let kind = self.git(&repo, &["cat-file", "-t", &id]).await?;
        if !kind.ok || String::from_utf8_lossy(&kind.stdout).trim() != "commit" {
            return Err(err(
                "CommitIdDoesNotExistException",
                format!("The specified commit ID '{id}' does not exist."),
            ));
        }
        let raw = self.git(&repo, &["cat-file", "commit", &id]).await?;
        if !raw.ok {
            return Err(AwsError::internal("cannot read commit"));
        }
        let text = String::from_utf8_lossy(&raw.stdout).into_owned();
        let (headers, message) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
        let mut tree = String::new();
        let mut parents = Vec::new();
        let mut author = json!({});
        let mut committer = json!({});
        for line in headers.lines() {
            if let Some(t) = line.strip_prefix("tree ") {
                tree = t.to_owned();
            } else if let Some(p) = line.strip_prefix("parent ") {
                parents.push(p.to_owned());
            } else if let Some(a) = line.strip_prefix("author ") {
                author = user_info(a);
            } else if let Some(c) = line.strip_prefix("committer ") {
                committer = user_info(c);
            }
        }
        Ok(json!({
            "commit": {
                "commitId": id,
                "treeId": tree,
                "parents": parents,
                "message": message,
                "author": author,
                "committer": committer,
                "additionalData": "",
            }
        }))
    }

    fn path_member(input: &Input, name: &str, required: bool) -> Result<Option<String>, AwsError> {
        match input.opt_str(name)? {
            None if required => Err(err(
                "PathRequiredException",
                "The folderPath for a location cannot be empty.",
            )),
            None => Ok(None),
            Some(p) => normalize_path(p).map(Some).ok_or_else(|| {
                err(
                    "InvalidPathException",
                    format!("The specified path '{p}' is not valid."),
                )
            }),
        }
    }

    async fn path_exists(&self, repo: &Path, commit: &str, path: &str) -> Result<bool, AwsError> {
        if path.is_empty() {
            return Ok(true);
        }
        Ok(self.entry_at(repo, commit, path).await?.is_some())
    }

    async fn get_differences(&self, input: &Input) -> Result<Value, AwsError> {
        let (_, repo) = self.repo_path(input)?;
        let after_spec = input.opt_str("afterCommitSpecifier")?.ok_or_else(|| {
            err(
                "CommitRequiredException",
                "A commit specifier is required, but was not specified.",
            )
        })?;
        let before_path = Self::path_member(input, "beforePath", false)?;
        let after_path = Self::path_member(input, "afterPath", false)?;
        let max = match input.opt_i64("MaxResults")? {
            None => DEFAULT_DIFF_PAGE,
            Some(n) if n >= 1 => n,
            Some(n) => {
                return Err(err(
                    "InvalidMaxResultsException",
                    format!("The specified number of maximum results ({n}) is not valid."),
                ));
            }
        };
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let token = input.opt_str("NextToken")?;
        let after = self.resolve_commit(&repo, after_spec).await?;
        let before = match input.opt_str("beforeCommitSpecifier")? {
            Some(b) => Some(self.resolve_commit(&repo, b).await?),
            None => None,
        };
        let mut paths: Vec<String> = Vec::new();
        for p in [&before_path, &after_path].into_iter().flatten() {
            if p.is_empty() {
                continue;
            }
            let in_before = match &before {
                Some(b) => self.path_exists(&repo, b, p).await?,
                None => false,
            };
            if !in_before && !self.path_exists(&repo, &after, p).await? {
                return Err(err(
                    "PathDoesNotExistException",
                    format!("The specified path '{p}' does not exist."),
                ));
            }
            if !paths.contains(p) {
                paths.push(p.clone());
            }
        }
        let before_rev = before.clone().unwrap_or_else(|| EMPTY_TREE.to_owned());
        let mut args: Vec<&str> = vec![
            "diff-tree",
            "-r",
            "-z",
            "--raw",
            "--no-renames",
            "--no-commit-id",
            "--abbrev=40",
            &before_rev,
            &after,
            "--",
        ];
        args.extend(paths.iter().map(String::as_str));
        let out = self.git(&repo, &args).await?;
        if !out.ok {
            return Err(AwsError::internal("git diff-tree failed"));
        }
        let diffs = parse_raw_diff(&out.stdout);
        let (page, next) = paginate_offset("GetDifferences", &diffs, token, max, || {
            err(
                "InvalidContinuationTokenException",
                "The specified continuation token is not valid.",
            )
        })?;
        let mut v = json!({ "differences": page });
        if let (Some(t), Some(m)) = (next, v.as_object_mut()) {
            m.insert("NextToken".into(), json!(t));
        }
        Ok(v)
    }

    async fn get_file(&self, input: &Input) -> Result<Value, AwsError> {
        let (_, repo) = self.repo_path(input)?;
        let raw_path = input.opt_str("filePath")?.ok_or_else(|| {
            err(
                "PathRequiredException",
                "The filePath for a location cannot be empty.",
            )
        })?;
        let path = normalize_path(raw_path)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                err(
                    "InvalidPathException",
                    format!("The specified path '{raw_path}' is not valid."),
                )
            })?;
        let spec = input.opt_str("commitSpecifier")?.unwrap_or("HEAD");
        let commit = self.resolve_commit(&repo, spec).await?;
        let missing = || {
            err(
                "FileDoesNotExistException",
                format!("The specified file '{raw_path}' does not exist at {spec}."),
            )
        };
        if raw_path.ends_with('/') {
            return Err(missing());
        }
        let entry = self
            .entry_at(&repo, &commit, &path)
            .await?
            .filter(|e| e.kind == "blob")
            .ok_or_else(missing)?;
        let blob = self.git(&repo, &["cat-file", "blob", &entry.sha]).await?;
        if !blob.ok {
            return Err(AwsError::internal("cannot read blob"));
        }
        if blob.stdout.len() > MAX_FILE_BYTES {
            return Err(err(
                "FileTooLargeException",
                "The specified file exceeds the file size limit for AWS CodeCommit.",
            ));
        }
        Ok(json!({
            "commitId": commit,
            "blobId": entry.sha,
            "filePath": path,
            "fileMode": file_mode(&entry.mode),
            "fileSize": blob.stdout.len(),
            "fileContent": aws_smithy_types::base64::encode(&blob.stdout),
        }))
    }

    async fn get_folder(&self, input: &Input) -> Result<Value, AwsError> {
        let (_, repo) = self.repo_path(input)?;
        let raw_path = input.opt_str("folderPath")?.ok_or_else(|| {
            err(
                "PathRequiredException",
                "The folderPath for a location cannot be empty.",
            )
        })?;
        let path = normalize_path(raw_path).ok_or_else(|| {
            err(
                "InvalidPathException",
                format!("The specified path '{raw_path}' is not valid."),
            )
        })?;
        let spec = input.opt_str("commitSpecifier")?.unwrap_or("HEAD");
        let commit = self.resolve_commit(&repo, spec).await?;
        let missing = || {
            err(
                "FolderDoesNotExistException",
                format!("The specified folder '{raw_path}' does not exist at {spec}."),
            )
        };
        let tree = if path.is_empty() {
            let rev = format!("{commit}^{{tree}}");
            let out = self.git(&repo, &["rev-parse", "--verify", &rev]).await?;
            if !out.ok {
                return Err(missing());
            }
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        } else {
            self.entry_at(&repo, &commit, &path)
                .await?
                .filter(|e| e.kind == "tree")
                .ok_or_else(missing)?
                .sha
        };
        let out = self.git(&repo, &["ls-tree", "-z", &tree]).await?;
        if !out.ok {
            return Err(missing());
        }
        let (mut folders, mut files, mut links, mut modules) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for e in parse_ls_tree(&out.stdout) {
            let abs = if path.is_empty() {
                e.path.clone()
            } else {
                format!("{path}/{}", e.path)
            };
            match (e.kind.as_str(), e.mode.as_str()) {
                ("tree", _) => folders.push(json!({
                    "treeId": e.sha, "absolutePath": abs, "relativePath": e.path,
                })),
                ("commit", _) => modules.push(json!({
                    "commitId": e.sha, "absolutePath": abs, "relativePath": e.path,
                })),
                ("blob", "120000") => links.push(json!({
                    "blobId": e.sha, "absolutePath": abs, "relativePath": e.path,
                    "fileMode": "SYMLINK",
                })),
                ("blob", m) => files.push(json!({
                    "blobId": e.sha, "absolutePath": abs, "relativePath": e.path,
                    "fileMode": file_mode(m),
                })),
                _ => {}
            }
        }
        Ok(json!({
            "commitId": commit,
            "folderPath": if path.is_empty() { "/".to_owned() } else { path },
            "treeId": tree,
            "subFolders": folders,
            "files": files,
            "symbolicLinks": links,
            "subModules": modules,
        }))
    }
}

/// Pull requests: kept as CodeCommit answers them, merged with Git's own plumbing (`merge-tree`, `commit-tree`).
impl CodeCommit {
    fn pull_request_file(&self) -> PathBuf {
        self.root.join("pull-requests.json")
    }

    fn load_pull_requests(&self) -> Result<serde_json::Map<String, Value>, AwsError> {
        match std::fs::read(self.pull_request_file()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AwsError::internal(format!("pull requests: {e}"))),
            Err(_) => Ok(serde_json::Map::new()),
        }
    }

    fn save_pull_requests(&self, all: &serde_json::Map<String, Value>) -> Result<(), AwsError> {
        let bytes = serde_json::to_vec_pretty(all)
            .map_err(|e| AwsError::internal(format!("pull requests: {e}")))?;
        std::fs::write(self.pull_request_file(), bytes)
            .map_err(|e| AwsError::internal(format!("pull requests: {e}")))
    }

    fn pull_request_id(input: &Input) -> Result<String, AwsError> {
        let id = input.opt_str("pullRequestId")?.ok_or_else(|| {
            err(
                "PullRequestIdRequiredException",
                "A pull request ID is required, but none was provided.",
            )
        })?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "InvalidPullRequestIdException",
                format!("The pull request ID '{id}' is not valid."),
            ));
        }
        Ok(id.to_owned())
    }

    fn reference(name: &str) -> Result<String, AwsError> {
        let branch = name.strip_prefix("refs/heads/").unwrap_or(name);
        if !valid_commit_specifier(branch) {
            return Err(err(
                "InvalidReferenceNameException",
                format!("The reference name '{name}' is not valid."),
            ));
        }
        Ok(format!("refs/heads/{branch}"))
    }

    async fn merge_base(&self, repo: &Path, a: &str, b: &str) -> Result<Option<String>, AwsError> {
        let out = self.git(repo, &["merge-base", a, b]).await?;
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok((out.ok && is_full_sha(&sha)).then_some(sha))
    }

    async fn create_pull_request(&self, input: &Input) -> Result<Value, AwsError> {
        let title = input.opt_str("title")?.ok_or_else(|| {
            err(
                "TitleRequiredException",
                "A pull request title is required.",
            )
        })?;
        let targets = input.opt_list("targets")?.ok_or_else(|| {
            err(
                "TargetsRequiredException",
                "An array of target objects is required.",
            )
        })?;
        let [target] = targets.as_slice() else {
            return Err(err(
                "MultipleRepositoriesInPullRequestException",
                "The simulator takes one target per pull request.",
            ));
        };
        let target = Input(
            target
                .as_object()
                .cloned()
                .ok_or_else(|| err("InvalidTargetException", "A target must be an object."))?,
        );
        let (name, repo) = self.repo_path(&target)?;
        let source_ref = Self::reference(target.req_str("sourceReference")?)?;
        let destination_ref = match target.opt_str("destinationReference")? {
            Some(d) => Self::reference(d)?,
            None => "refs/heads/main".to_owned(),
        };
        let source = self.resolve_commit(&repo, &source_ref).await?;
        let destination = self.resolve_commit(&repo, &destination_ref).await?;
        if source == destination {
            return Err(err(
                "SourceAndDestinationAreSameException",
                "The source branch and destination branch have the same commit.",
            ));
        }
        let base = self.merge_base(&repo, &source, &destination).await?;
        let _guard = self.pull_requests.lock().await;
        let mut all = self.load_pull_requests()?;
        let id = (all.len() + 1).to_string();
        let now = epoch(Timestamp::now());
        let pr = json!({
            "pullRequestId": id,
            "title": title,
            "description": input.opt_str("description")?.unwrap_or_default(),
            "creationDate": now,
            "lastActivityDate": now,
            "pullRequestStatus": "OPEN",
            "authorArn": SIM_CALLER,
            "revisionId": hex::encode(Sha256::digest(format!("{id}#1").as_bytes())),
            "pullRequestTargets": [{
                "repositoryName": name,
                "sourceReference": source_ref,
                "destinationReference": destination_ref,
                "sourceCommit": source,
                "destinationCommit": destination,
                "mergeBase": base,
                "mergeMetadata": { "isMerged": false },
            }],
            "approvalRules": [],
        });
        all.insert(id, pr.clone());
        self.save_pull_requests(&all)?;
        Ok(json!({ "pullRequest": pr }))
    }

    async fn get_pull_request(&self, input: &Input) -> Result<Value, AwsError> {
        let id = Self::pull_request_id(input)?;
        let all = self.load_pull_requests()?;
        let pr = all.get(&id).ok_or_else(|| {
            err(
                "PullRequestDoesNotExistException",
                format!("The pull request ID {id} does not exist."),
            )
        })?;
        Ok(json!({ "pullRequest": pr }))
    }

    async fn update_pull_request_status(&self, input: &Input) -> Result<Value, AwsError> {
        let id = Self::pull_request_id(input)?;
        let status = input.req_str("pullRequestStatus")?;
        if status != "CLOSED" && status != "OPEN" {
            return Err(err(
                "InvalidPullRequestStatusException",
                format!("The pull request status '{status}' is not valid."),
            ));
        }
        let _guard = self.pull_requests.lock().await;
        let mut all = self.load_pull_requests()?;
        let pr = all.get_mut(&id).ok_or_else(|| {
            err(
                "PullRequestDoesNotExistException",
                format!("The pull request ID {id} does not exist."),
            )
        })?;
        pr["pullRequestStatus"] = json!(status);
        pr["lastActivityDate"] = epoch(Timestamp::now());
        let out = json!({ "pullRequest": pr.clone() });
        self.save_pull_requests(&all)?;
        Ok(out)
    }

    /// A three-way merge commit of the source into the destination (Git's `merge-tree`), the destination moved to it.
    async fn merge_pull_request(&self, input: &Input) -> Result<Value, AwsError> {
        let id = Self::pull_request_id(input)?;
        let (name, repo) = self.repo_path(input)?;
        let _guard = self.pull_requests.lock().await;
        let mut all = self.load_pull_requests()?;
        let pr = all.get_mut(&id).ok_or_else(|| {
            err(
                "PullRequestDoesNotExistException",
                format!("The pull request ID {id} does not exist."),
            )
        })?;
        if pr["pullRequestStatus"] != "OPEN" {
            return Err(err(
                "PullRequestAlreadyClosedException",
                "The pull request status cannot be updated because it is already closed.",
            ));
        }
        let target = &pr["pullRequestTargets"][0];
        if target["repositoryName"] != name.as_str() {
            return Err(err(
                "RepositoryNotAssociatedWithPullRequestException",
                format!("The repository {name} is not associated with the pull request."),
            ));
        }
        let source_ref = target["sourceReference"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let destination_ref = target["destinationReference"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let source = self.resolve_commit(&repo, &source_ref).await?;
        if let Some(expected) = input.opt_str("sourceCommitId")?
            && !expected.eq_ignore_ascii_case(&source)
        {
            return Err(err(
                "TipOfSourceReferenceIsDifferentException",
                "The tip of the source branch is different from the specified source commit.",
            ));
        }
        let destination = self.resolve_commit(&repo, &destination_ref).await?;
        let base = self.merge_base(&repo, &source, &destination).await?;
        let tree = self
            .git(
                &repo,
                &["merge-tree", "--write-tree", &destination, &source],
            )
            .await?;
        let tree_id = String::from_utf8_lossy(&tree.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if !tree.ok || !is_full_sha(&tree_id) {
            return Err(err(
                "ManualMergeRequiredException",
                "The pull request cannot be merged automatically into the destination branch.",
            ));
        }
        let message = input
            .opt_str("commitMessage")?
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Merge pull request {id}"));
        let author = input.opt_str("authorName")?.unwrap_or("studio-ops sim");
        let email = input.opt_str("email")?.unwrap_or("sim@example.com");
        let name_cfg = format!("user.name={author}");
        let email_cfg = format!("user.email={email}");
        let commit = self
            .git(
                &repo,
                &[
                    "-c",
                    &name_cfg,
                    "-c",
                    &email_cfg,
                    "commit-tree",
                    &tree_id,
                    "-p",
                    &destination,
                    "-p",
                    &source,
                    "-m",
                    &message,
                ],
            )
            .await?;
        let merge_commit = String::from_utf8_lossy(&commit.stdout).trim().to_owned();
        if !commit.ok || !is_full_sha(&merge_commit) {
            return Err(AwsError::internal("cannot write the merge commit"));
        }
        let moved = self
            .git(
                &repo,
                &["update-ref", &destination_ref, &merge_commit, &destination],
            )
            .await?;
        if !moved.ok {
            return Err(err(
                "ConcurrentReferenceUpdateException",
                "The merge cannot be completed because the destination moved.",
            ));
        }
        let now = epoch(Timestamp::now());
        pr["pullRequestStatus"] = json!("CLOSED");
        pr["lastActivityDate"] = now;
        pr["pullRequestTargets"][0]["sourceCommit"] = json!(source);
        pr["pullRequestTargets"][0]["destinationCommit"] = json!(destination);
        pr["pullRequestTargets"][0]["mergeBase"] = json!(base);
        pr["pullRequestTargets"][0]["mergeMetadata"] = json!({
            "isMerged": true,
            "mergedBy": SIM_CALLER,
            "mergeCommitId": merge_commit,
            "mergeOption": "THREE_WAY_MERGE",
        });
        let out = json!({ "pullRequest": pr.clone() });
        self.save_pull_requests(&all)?;
        Ok(out)
    }
}

/// Parses `name <email> 1700000000 +0000` into CodeCommit's `UserInfo`.
fn user_info(s: &str) -> Value {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(lt), Some(gt)) if lt < gt => json!({
            "name": s.get(..lt).unwrap_or_default().trim(),
            "email": s.get(lt + 1..gt).unwrap_or_default(),
            "date": s.get(gt + 1..).unwrap_or_default().trim(),
        }),
        _ => json!({ "name": s }),
    }
}

/// Parses `git diff-tree -z --raw` output into CodeCommit differences.
fn parse_raw_diff(out: &[u8]) -> Vec<Value> {
    let fields: Vec<String> = out
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut diffs = Vec::new();
    let mut i = 0;
    while i + 1 < fields.len() {
        let meta = fields.get(i).map(String::as_str).unwrap_or_default();
        let path = fields.get(i + 1).cloned().unwrap_or_default();
        i += 2;
        let Some(meta) = meta.strip_prefix(':') else {
            continue;
        };
        let parts: Vec<&str> = meta.split(' ').collect();
        let [old_mode, new_mode, old_sha, new_sha, status] = parts.as_slice() else {
            continue;
        };
        let blob = |sha: &str, mode: &str| json!({ "blobId": sha, "path": path, "mode": mode });
        let d = match status.chars().next() {
            Some('A') => json!({ "afterBlob": blob(new_sha, new_mode), "changeType": "A" }),
            Some('D') => json!({ "beforeBlob": blob(old_sha, old_mode), "changeType": "D" }),
            Some('M' | 'T') => json!({
                "beforeBlob": blob(old_sha, old_mode),
                "afterBlob": blob(new_sha, new_mode),
                "changeType": "M",
            }),
            _ => continue,
        };
        diffs.push(d);
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        assert!(valid_repo_name("studio-ops_models.v2"));
        assert!(!valid_repo_name(".."));
        assert!(!valid_repo_name("../x"));
        assert!(!valid_repo_name("a/b"));
        assert!(!valid_repo_name(".hidden"));
        assert!(!valid_repo_name("a b"));
        assert!(valid_commit_specifier("main"));
        assert!(valid_commit_specifier("feature/x-1"));
        assert!(!valid_commit_specifier("--upload-pack=x"));
        assert!(!valid_commit_specifier("main..dev"));
        assert!(!valid_commit_specifier("HEAD@{1}"));
        assert!(!valid_commit_specifier("a b"));
        assert_eq!(normalize_path("/a/b/").as_deref(), Some("a/b"));
        assert_eq!(normalize_path("/").as_deref(), Some(""));
        assert_eq!(normalize_path("a/../b"), None);
        assert_eq!(normalize_path("../etc/passwd"), None);
        assert_eq!(normalize_path("a//b"), None);
    }

    #[test]
    fn raw_diff_parsing() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let raw = format!(
            ":000000 100644 {z} {a} A\0new.txt\0:100644 100644 {a} {b} M\0mod.txt\0:100755 000000 {b} {z} D\0gone.sh\0"
        );
        let d = parse_raw_diff(raw.as_bytes());
        assert_eq!(d.len(), 3);
        assert_eq!(d[0]["changeType"], "A");
        assert!(d[0].get("beforeBlob").is_none());
        assert_eq!(d[1]["beforeBlob"]["blobId"], a.as_str());
        assert_eq!(d[2]["beforeBlob"]["mode"], "100755");
    }

    #[test]
    fn user_info_parsing() {
        let u = user_info("Ada Lovelace <ada@example.com> 1700000000 +0100");
        assert_eq!(u["name"], "Ada Lovelace");
        assert_eq!(u["email"], "ada@example.com");
        assert_eq!(u["date"], "1700000000 +0100");
    }
}
