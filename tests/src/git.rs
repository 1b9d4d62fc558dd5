//! A git working tree beside a bare repository under the simulator's git root: how tests and the demo "push" to
//! the CodeCommit repository the simulator serves.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::world::WorldError;

pub struct GitRepo {
    work: tempfile::TempDir,
    bare: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> Result<String, WorldError> {
    let mut cmd = Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(&k);
        }
    }
    let out = cmd
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args([
            "-c",
            "user.name=Ana Silva",
            "-c",
            "user.email=ana.silva@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| WorldError::Other(format!("git {args:?}: {e}")))?;
    if !out.status.success() {
        return Err(WorldError::Other(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), WorldError> {
    let err = |e: std::io::Error| WorldError::Other(format!("{}: {e}", from.display()));
    std::fs::create_dir_all(to).map_err(err)?;
    for entry in std::fs::read_dir(from).map_err(err)? {
        let entry = entry.map_err(err)?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(err)?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(err)?;
        }
    }
    Ok(())
}

impl GitRepo {
    /// Creates `<git_root>/<name>.git` holding `tree` as the first commit on `main`.
    pub fn create(
        git_root: &Path,
        name: &str,
        tree: &Path,
        message: &str,
    ) -> Result<Self, WorldError> {
        let work = tempfile::tempdir().map_err(|e| WorldError::Other(e.to_string()))?;
        let bare = git_root.join(format!("{name}.git"));
        git(git_root, &["init", "--bare", "-q", &bare.to_string_lossy()])?;
        copy_tree(tree, work.path())?;
        git(work.path(), &["init", "-q"])?;
        let repo = Self { work, bare };
        repo.commit(&[], message)?;
        Ok(repo)
    }

    /// A new working copy of the existing `<git_root>/<name>.git` (e.g. the repository a demo chapter created).
    pub fn open(git_root: &Path, name: &str) -> Result<Self, WorldError> {
        let work = tempfile::tempdir().map_err(|e| WorldError::Other(e.to_string()))?;
        let bare = git_root.join(format!("{name}.git"));
        git(
            git_root,
            &[
                "clone",
                "-q",
                "--branch",
                "main",
                &bare.to_string_lossy(),
                &work.path().to_string_lossy(),
            ],
        )?;
        Ok(Self { work, bare })
    }

    /// Applies `changes` (path → new text, or `None` to delete), commits with `message` and pushes to the branch
    /// checked out (`main` unless [`GitRepo::switch`] chose another); returns the new commit id.
    pub fn commit(
        &self,
        changes: &[(&str, Option<&str>)],
        message: &str,
    ) -> Result<String, WorldError> {
        let io = |e: std::io::Error| WorldError::Other(e.to_string());
        for (path, text) in changes {
            let file = self.work.path().join(path);
            match text {
                Some(t) => {
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent).map_err(io)?;
                    }
                    std::fs::write(&file, t).map_err(io)?;
                }
                None => std::fs::remove_file(&file).map_err(io)?,
            }
        }
        git(self.work.path(), &["add", "-A"])?;
        git(
            self.work.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        )?;
        let branch = git(self.work.path(), &["rev-parse", "--abbrev-ref", "HEAD"])?;
        git(
            self.work.path(),
            &[
                "push",
                "-q",
                &self.bare.to_string_lossy(),
                &format!("HEAD:refs/heads/{branch}"),
            ],
        )?;
        self.head()
    }

    /// Checks out `branch` as the repository has it (fetched, e.g. after a merge made on the server), or, when the
    /// repository has no such branch, creates it at the current commit. Pushes nothing.
    pub fn switch(&self, branch: &str) -> Result<(), WorldError> {
        let bare = self.bare.to_string_lossy();
        let refspec = format!("refs/heads/{branch}");
        match git(self.work.path(), &["fetch", "-q", &bare, &refspec]) {
            Ok(_) => git(
                self.work.path(),
                &["checkout", "-q", "-B", branch, "FETCH_HEAD"],
            )?,
            Err(_) => git(self.work.path(), &["checkout", "-q", "-B", branch])?,
        };
        Ok(())
    }

    /// Pushes the current commit as a new branch (what `git push origin HEAD:<branch>` does).
    pub fn push_branch(&self, branch: &str) -> Result<String, WorldError> {
        git(
            self.work.path(),
            &[
                "push",
                "-q",
                &self.bare.to_string_lossy(),
                &format!("HEAD:refs/heads/{branch}"),
            ],
        )?;
        self.head()
    }

    pub fn read(&self, path: &str) -> Result<String, WorldError> {
        std::fs::read_to_string(self.work.path().join(path))
            .map_err(|e| WorldError::Other(format!("{path}: {e}")))
    }

    pub fn head(&self) -> Result<String, WorldError> {
        git(self.work.path(), &["rev-parse", "HEAD"])
    }

    pub fn bare(&self) -> &Path {
        &self.bare
    }
}
