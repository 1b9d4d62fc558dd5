//! In-memory fakes of train-on-push's ports, beside the adapters they imitate: a repository of whole file
//! trees per commit, training jobs and experiments, a model registry and an object store, each recording the
//! calls the use cases made. Test-only; plus the test configuration and a handler wired to the fakes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use studio_ops_shared::AwsCallError;
use studio_ops_shared::config::Env;
use studio_ops_shared::idempotency::MemoryIdempotencyStore;
use studio_ops_shared::publisher::RecordingPublisher;

use crate::config::Config;
use crate::handler::Handler;
use crate::naming::tag;
use crate::plan::{ModelPackageSpec, TrainingJobSpec};
use crate::ports::{
    Artifacts, CommitInfo, FolderEntry, JobCreation, JobDescription, ModelRegistry, ModelVersion,
    Ports, PullRequest, PushState, RunEnd, RunStart, RunStatus, RunTracker, SourceRepository,
    SpendLedger, TrackedRun, Training, VersionDetail, VersionSummary,
};

/// The inference image the fake registry's versions serve.
pub const IMAGE: &str = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
use studio_ops_shared::spend::Usage;

pub const REPO: &str = "sagemaker-repository";
/// The commit the fixture tree is at, and the one after it.
pub const C1: &str = "1111111111111111111111111111111111111111";
pub const C2: &str = "2222222222222222222222222222222222222222";
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/models-repo"
);

/// Commits as whole file trees.
#[derive(Default)]
pub struct FakeRepo {
    pub commits: HashMap<String, (String, BTreeMap<String, Vec<u8>>)>,
    /// Each commit's parents and date (seconds); a commit without an entry is a root dated 0.
    pub graph: HashMap<String, (Vec<String>, i64)>,
    /// Branch → head.
    pub branches: Mutex<BTreeMap<String, String>>,
    /// Pull requests by id.
    pub pull_requests: Mutex<BTreeMap<String, PullRequest>>,
    pub symlinks: Vec<String>,
    pub calls: Mutex<Vec<String>>,
}

impl FakeRepo {
    /// The fixture repository (`tests/fixtures/models-repo`) as one tree.
    pub fn fixture_tree() -> BTreeMap<String, Vec<u8>> {
        fn walk(dir: &std::path::Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), &path, out);
                } else {
                    out.insert(path, std::fs::read(e.path()).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(std::path::Path::new(FIXTURES), "", &mut out);
        out
    }

    pub fn add(&mut self, id: &str, message: &str, files: BTreeMap<String, Vec<u8>>) {
        self.commits
            .insert(id.to_string(), (message.to_string(), files));
    }

    /// Records a commit's parents and date.
    pub fn link(&mut self, id: &str, parents: &[&str], date: i64) {
        self.graph.insert(
            id.to_string(),
            (parents.iter().map(|p| p.to_string()).collect(), date),
        );
    }

    /// Points a branch at a commit.
    pub fn set_branch(&self, branch: &str, head: &str) {
        self.branches
            .lock()
            .unwrap()
            .insert(branch.to_string(), head.to_string());
    }

    /// The folder's content hash, standing in for Git's tree id (same files, same id).
    fn tree_hash(tree: &BTreeMap<String, Vec<u8>>, folder: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (path, bytes) in tree.range(format!("{folder}/")..) {
            if !path.starts_with(&format!("{folder}/")) {
                break;
            }
            h.update(path.as_bytes());
            h.update([0]);
            h.update(bytes);
        }
        hex::encode(h.finalize())
    }

    fn tree(&self, id: &str) -> Result<&BTreeMap<String, Vec<u8>>, AwsCallError> {
        self.commits.get(id).map(|(_, t)| t).ok_or_else(|| {
            AwsCallError::service(
                "GetFolder",
                "CommitDoesNotExistException",
                format!("no commit {id}"),
            )
        })
    }

    fn called(&self, what: String) {
        self.calls.lock().unwrap().push(what);
    }
}

impl SourceRepository for FakeRepo {
    async fn commit(&self, _: &str, id: &str) -> Result<CommitInfo, AwsCallError> {
        self.called(format!("GetCommit {id}"));
        let (message, _) = self.commits.get(id).ok_or_else(|| {
            AwsCallError::service("GetCommit", "CommitDoesNotExistException", "no commit")
        })?;
        let (parents, date) = self.graph.get(id).cloned().unwrap_or_default();
        Ok(CommitInfo {
            message: message.clone(),
            author_name: Some("Ana Silva".into()),
            author_email: Some("ana.silva@example.com".into()),
            committer_email: Some("ana.silva@example.com".into()),
            parents,
            committed_at: Some(date),
        })
    }

    async fn changed_paths(
        &self,
        _: &str,
        before: &str,
        after: &str,
        folder: &str,
    ) -> Result<Vec<String>, AwsCallError> {
        self.called(format!("GetDifferences {folder}"));
        let (b, a) = (self.tree(before)?, self.tree(after)?);
        let prefix = format!("{folder}/");
        Ok(b.keys()
            .chain(a.keys())
            .filter(|p| p.starts_with(&prefix) && b.get(*p) != a.get(*p))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect())
    }

    async fn folder(
        &self,
        _: &str,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<FolderEntry>>, AwsCallError> {
        self.called(format!("GetFolder {path}"));
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut entries = Vec::new();
        let mut folders = std::collections::BTreeSet::new();
        for p in self.tree(id)?.keys() {
            let Some(rest) = p.strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    folders.insert(format!("{prefix}{dir}"));
                }
                None if self.symlinks.contains(p) => entries.push(FolderEntry::Other {
                    path: p.clone(),
                    what: "symbolic link",
                }),
                None => entries.push(FolderEntry::File {
                    path: p.clone(),
                    executable: false,
                }),
            }
        }
        if entries.is_empty() && folders.is_empty() {
            return Ok(None);
        }
        let tree = self.tree(id)?;
        entries.extend(folders.into_iter().map(|path| FolderEntry::Folder {
            tree_id: Some(Self::tree_hash(tree, &path)),
            path,
        }));
        Ok(Some(entries))
    }

    async fn file(&self, _: &str, id: &str, path: &str) -> Result<Option<Vec<u8>>, AwsCallError> {
        self.called(format!("GetFile {path}"));
        Ok(self.tree(id)?.get(path).cloned())
    }

    async fn branches(&self, _: &str) -> Result<Vec<String>, AwsCallError> {
        self.called("ListBranches".to_string());
        Ok(self.branches.lock().unwrap().keys().cloned().collect())
    }

    async fn head(&self, _: &str, branch: &str) -> Result<Option<String>, AwsCallError> {
        self.called(format!("GetBranch {branch}"));
        Ok(self.branches.lock().unwrap().get(branch).cloned())
    }

    async fn pull_request(&self, id: &str) -> Result<Option<PullRequest>, AwsCallError> {
        self.called(format!("GetPullRequest {id}"));
        Ok(self.pull_requests.lock().unwrap().get(id).cloned())
    }
}

/// The push state as maps, with the adapter's conditions.
#[derive(Default)]
pub struct FakeState {
    pub heads: Mutex<BTreeMap<(String, String), String>>,
    pub watching: Mutex<BTreeMap<String, String>>,
    pub trees: Mutex<BTreeMap<(String, String, String), String>>,
}

impl PushState for FakeState {
    async fn evaluated(&self, repo: &str, branch: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self
            .heads
            .lock()
            .unwrap()
            .get(&(repo.to_string(), branch.to_string()))
            .cloned())
    }
    async fn advance(
        &self,
        repo: &str,
        branch: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, AwsCallError> {
        let mut heads = self.heads.lock().unwrap();
        let key = (repo.to_string(), branch.to_string());
        if from.is_some() && heads.get(&key).map(String::as_str) != from {
            return Ok(false);
        }
        heads.insert(key, to.to_string());
        Ok(true)
    }
    async fn watching_since(&self, repo: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self.watching.lock().unwrap().get(repo).cloned())
    }
    async fn start_watching(&self, repo: &str, at: &str) -> Result<bool, AwsCallError> {
        let mut w = self.watching.lock().unwrap();
        if w.contains_key(repo) {
            return Ok(false);
        }
        w.insert(repo.to_string(), at.to_string());
        Ok(true)
    }
    async fn trained_tree(
        &self,
        repo: &str,
        model: &str,
        tree: &str,
    ) -> Result<Option<String>, AwsCallError> {
        Ok(self
            .trees
            .lock()
            .unwrap()
            .get(&(repo.to_string(), model.to_string(), tree.to_string()))
            .cloned())
    }
    async fn record_tree(
        &self,
        repo: &str,
        model: &str,
        tree: &str,
        job: &str,
    ) -> Result<(), AwsCallError> {
        self.trees.lock().unwrap().insert(
            (repo.to_string(), model.to_string(), tree.to_string()),
            job.to_string(),
        );
        Ok(())
    }
}

/// A job's ARN and tags.
pub type JobRecord = (String, BTreeMap<String, String>);

#[derive(Default)]
pub struct FakeTraining {
    pub jobs: Mutex<BTreeMap<String, JobRecord>>,
    pub created: Mutex<Vec<TrainingJobSpec>>,
    pub experiments: Mutex<Vec<(String, String)>>,
    pub tag_calls: Mutex<u32>,
    /// A job's status other than Completed (the default).
    pub statuses: Mutex<BTreeMap<String, String>>,
    /// Answers for CreateTrainingJob by job name (taken once).
    pub refusals: Mutex<BTreeMap<String, AwsCallError>>,
    /// The domain's user profiles.
    pub profiles: Mutex<Vec<String>>,
}

/// How long every fake job bills, per instance, and when it ends (2025-12-05T10:00:00Z).
pub const FAKE_BILLABLE_SECONDS: u32 = 600;
pub const FAKE_ENDED: i64 = 1_764_928_800;

impl FakeTraining {
    pub fn set_status(&self, job: &str, status: &str) {
        self.statuses
            .lock()
            .unwrap()
            .insert(job.to_string(), status.to_string());
    }
}

impl Training for FakeTraining {
    async fn ensure_experiment(&self, name: &str, _: &str) -> Result<(), AwsCallError> {
        self.experiments
            .lock()
            .unwrap()
            .push(("experiment".into(), name.into()));
        Ok(())
    }
    async fn ensure_trial(&self, trial: &str, _: &str) -> Result<(), AwsCallError> {
        self.experiments
            .lock()
            .unwrap()
            .push(("trial".into(), trial.into()));
        Ok(())
    }
    async fn create_training_job(
        &self,
        spec: &TrainingJobSpec,
    ) -> Result<JobCreation, AwsCallError> {
        if let Some(e) = self.refusals.lock().unwrap().remove(&spec.name) {
            return Err(e);
        }
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(&spec.name) {
            return Ok(JobCreation::AlreadyExists);
        }
        let arn = format!(
            "arn:aws:sagemaker:us-east-1:123456789012:training-job/{}",
            spec.name
        );
        jobs.insert(
            spec.name.clone(),
            (arn.clone(), spec.tags.iter().cloned().collect()),
        );
        self.created.lock().unwrap().push(spec.clone());
        Ok(JobCreation::Created { arn })
    }
    async fn describe_training_job(
        &self,
        name: &str,
    ) -> Result<Option<JobDescription>, AwsCallError> {
        let spec = self
            .created
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == name)
            .cloned();
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .get(name)
            .map(|(arn, _)| JobDescription {
                arn: arn.clone(),
                status: self
                    .statuses
                    .lock()
                    .unwrap()
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "Completed".into()),
                model_artifacts: Some(format!("s3://out/{name}/output/model.tar.gz")),
                final_metrics: BTreeMap::from([("validation:auc".to_string(), 0.9)]),
                instance_type: spec.as_ref().map(|s| s.instance_type.clone()),
                instance_count: spec.as_ref().map_or(1, |s| s.instance_count),
                billable_seconds: Some(FAKE_BILLABLE_SECONDS),
                ended: Some(FAKE_ENDED),
                ..Default::default()
            }))
    }
    async fn user_profile_exists(&self, _: &str, name: &str) -> Result<bool, AwsCallError> {
        Ok(self.profiles.lock().unwrap().iter().any(|p| p == name))
    }
    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsCallError> {
        *self.tag_calls.lock().unwrap() += 1;
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .values()
            .find(|(a, _)| a == arn)
            .map(|(_, t)| t.clone())
            .unwrap_or_default())
    }
}

#[derive(Default)]
pub struct FakeRegistry {
    pub groups: Mutex<Vec<String>>,
    /// Every version of every group, in registration order: version n (1-based) is `versions[n - 1]`.
    pub versions: Mutex<Vec<ModelPackageSpec>>,
    /// A version's status other than PendingManualApproval, by its number.
    pub statuses: Mutex<BTreeMap<usize, String>>,
    /// `(arn, description)` of each approval made.
    pub approvals: Mutex<Vec<(String, String)>>,
}

impl FakeRegistry {
    fn arn(group: &str, n: usize) -> String {
        format!("arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{n}")
    }

    /// Registers a version of `group` trained from `commit` as train-on-push would (marker, metadata).
    pub fn register(&self, group: &str, commit: &str) {
        let job = crate::naming::job_name(group, commit);
        self.versions.lock().unwrap().push(ModelPackageSpec {
            group: group.to_string(),
            group_description: String::new(),
            description: format!("{group} {}", crate::naming::registration_marker(&job)),
            image: IMAGE.to_string(),
            model_data_url: format!("s3://out/{job}/output/model.tar.gz"),
            content_types: Vec::new(),
            response_types: Vec::new(),
            commit_id: commit.to_string(),
            repository: REPO.to_string(),
            generated_by: String::new(),
            customer_metadata: BTreeMap::from([(
                "studio-ops:commit".to_string(),
                commit.to_string(),
            )]),
            tags: vec![
                (tag::MANAGED_BY.into(), tag::MANAGED_BY_VALUE.into()),
                (tag::COMMIT.into(), commit.to_string()),
                (
                    tag::MODEL_DIGEST.into(),
                    crate::naming::model_digest(
                        IMAGE,
                        &format!("s3://out/{job}/output/model.tar.gz"),
                    ),
                ),
            ],
            client_token: job,
        });
    }

    pub fn set_status(&self, version: usize, status: &str) {
        self.statuses
            .lock()
            .unwrap()
            .insert(version, status.to_string());
    }
}

impl ModelRegistry for FakeRegistry {
    async fn ensure_group(
        &self,
        name: &str,
        _: &str,
        _: &[(String, String)],
    ) -> Result<(), AwsCallError> {
        let mut g = self.groups.lock().unwrap();
        if !g.iter().any(|x| x == name) {
            g.push(name.to_string());
        }
        Ok(())
    }
    async fn find_version(
        &self,
        group: &str,
        marker: &str,
    ) -> Result<Option<ModelVersion>, AwsCallError> {
        Ok(self
            .versions
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .find(|(_, v)| v.group == group && v.description.contains(marker))
            .map(|(i, v)| ModelVersion {
                arn: format!(
                    "arn:aws:sagemaker:us-east-1:123456789012:model-package/{}/{}",
                    v.group,
                    i + 1
                ),
                version: Some(i32::try_from(i).unwrap() + 1),
            }))
    }
    async fn versions(&self, group: &str) -> Result<Vec<VersionSummary>, AwsCallError> {
        let statuses = self.statuses.lock().unwrap();
        let mut out: Vec<VersionSummary> = self
            .versions
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, v)| v.group == group)
            .map(|(i, v)| VersionSummary {
                arn: Self::arn(group, i + 1),
                version: i32::try_from(i + 1).ok(),
                status: statuses
                    .get(&(i + 1))
                    .cloned()
                    .unwrap_or_else(|| "PendingManualApproval".into()),
                job: crate::naming::job_of_marker(&v.description),
            })
            .collect();
        out.reverse();
        Ok(out)
    }
    async fn version_detail(&self, arn: &str) -> Result<Option<VersionDetail>, AwsCallError> {
        let n: usize = arn
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(self
            .versions
            .lock()
            .unwrap()
            .get(n.wrapping_sub(1))
            .map(|v| VersionDetail {
                image: Some(v.image.clone()),
                model_data_url: Some(v.model_data_url.clone()),
                tags: v.tags.iter().cloned().collect(),
            }))
    }
    async fn approve(&self, arn: &str, description: &str) -> Result<(), AwsCallError> {
        let n: usize = arn
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        self.set_status(n, "Approved");
        self.approvals
            .lock()
            .unwrap()
            .push((arn.to_string(), description.to_string()));
        Ok(())
    }
    async fn create_version(&self, spec: &ModelPackageSpec) -> Result<ModelVersion, AwsCallError> {
        let mut v = self.versions.lock().unwrap();
        v.push(spec.clone());
        Ok(ModelVersion {
            arn: format!(
                "arn:aws:sagemaker:us-east-1:123456789012:model-package/{}/{}",
                spec.group,
                v.len()
            ),
            version: Some(i32::try_from(v.len()).unwrap()),
        })
    }
}

#[derive(Default)]
pub struct FakeArtifacts {
    pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Artifacts for FakeArtifacts {
    async fn put(
        &self,
        uri: &str,
        bytes: Vec<u8>,
        _: &str,
        _: Option<&str>,
    ) -> Result<(), AwsCallError> {
        self.objects.lock().unwrap().insert(uri.to_string(), bytes);
        Ok(())
    }
}

pub type TestHandler = Handler<
    FakeRepo,
    FakeTraining,
    FakeRegistry,
    FakeArtifacts,
    RecordingPublisher,
    MemoryIdempotencyStore,
    FakeTracker,
    FakeLedger,
    FakeState,
>;

pub fn config(extra: &[(&'static str, &'static str)]) -> Config {
    let mut vars: HashMap<&str, &str> = [
        ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
        ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
        (crate::config::REPOSITORY_NAME, REPO),
        (
            crate::config::TRAINING_ROLE_ARN,
            "arn:aws:iam::123456789012:role/studio-ops-training",
        ),
        (
            crate::config::TRAINING_SUBNET_IDS,
            "subnet-0123456789abcdef0",
        ),
        (
            crate::config::TRAINING_SECURITY_GROUP_IDS,
            "sg-0123456789abcdef0",
        ),
        (
            crate::config::OUTPUT_S3_URI,
            "s3://studio-ops-data-123456789012/models/",
        ),
        (
            crate::config::CODE_S3_URI,
            "s3://studio-ops-data-123456789012/code/",
        ),
        (
            crate::config::DATA_S3_URIS,
            "s3://studio-ops-data-123456789012/data/",
        ),
        (
            crate::config::ALLOWED_IMAGE_REPOSITORIES,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima",
        ),
    ]
    .into_iter()
    .collect();
    vars.extend(extra.iter().copied());
    Config::from_env(&Env::new(&vars), "us-east-1").unwrap()
}

pub fn handler(repo: FakeRepo, extra: &[(&'static str, &'static str)]) -> TestHandler {
    Handler::new(
        config(extra),
        Ports {
            source: repo,
            training: FakeTraining::default(),
            registry: FakeRegistry::default(),
            artifacts: FakeArtifacts::default(),
            publisher: RecordingPublisher::default(),
            idempotency: MemoryIdempotencyStore::default(),
            tracker: Some(FakeTracker::default()),
            ledger: Some(FakeLedger::default()),
            state: FakeState::default(),
        },
    )
}

/// The spend ledger as a map of records by key, with the ledger's rule: a record is replaced only by a later one.
#[derive(Default)]
pub struct FakeLedger {
    pub records: Mutex<BTreeMap<String, Usage>>,
}

impl SpendLedger for FakeLedger {
    async fn record(&self, usage: &Usage) -> Result<bool, AwsCallError> {
        let mut records = self.records.lock().unwrap();
        match records.get(&usage.key) {
            Some(old) if old.until >= usage.until => Ok(false),
            _ => {
                records.insert(usage.key.clone(), usage.clone());
                Ok(true)
            }
        }
    }
}

/// One run the fake tracker holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRun {
    pub experiment: String,
    pub run_id: String,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub status: Option<RunStatus>,
    pub metrics: Vec<(String, f64)>,
}

/// Runs by name, like MLflow finds them by the job tag; counts creations.
#[derive(Default)]
pub struct FakeTracker {
    pub runs: Mutex<BTreeMap<String, FakeRun>>,
    pub created: Mutex<u32>,
}

impl RunTracker for FakeTracker {
    async fn open_run(&self, run: &RunStart) -> Result<TrackedRun, AwsCallError> {
        let mut runs = self.runs.lock().unwrap();
        let next = runs.len() + 1;
        let found = runs.entry(run.run_name.clone()).or_insert_with(|| {
            *self.created.lock().unwrap() += 1;
            FakeRun {
                experiment: run.experiment.clone(),
                run_id: format!("run{next}"),
                params: run.params.clone(),
                tags: run.tags.clone(),
                status: None,
                metrics: Vec::new(),
            }
        });
        Ok(TrackedRun {
            experiment_id: "1".to_string(),
            run_id: found.run_id.clone(),
        })
    }

    async fn close_run(&self, end: &RunEnd) -> Result<(), AwsCallError> {
        let mut runs = self.runs.lock().unwrap();
        let run = runs
            .values_mut()
            .find(|r| r.run_id == end.run_id)
            .ok_or_else(|| {
                AwsCallError::service("UpdateRun", "RESOURCE_DOES_NOT_EXIST", "no run")
            })?;
        run.status = Some(end.status);
        run.metrics = end.metrics.clone();
        run.tags.extend(end.tags.iter().cloned());
        Ok(())
    }
}

/// C1 = the fixture tree; C2 = C1 with `change` applied to `path` (None deletes it).
pub fn repo_with_change(path: &str, change: Option<&str>, message: &str) -> FakeRepo {
    let mut repo = FakeRepo::default();
    let base = FakeRepo::fixture_tree();
    let mut next = base.clone();
    match change {
        Some(text) => next.insert(path.to_string(), text.as_bytes().to_vec()),
        None => next.remove(path),
    };
    repo.add(C1, "initial models", base);
    repo.add(C2, message, next);
    repo
}

/// A fixture of `events/train-on-push/`, as JSON.
pub fn event(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../events/train-on-push/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The CodeCommit push fixture as `event` (`referenceUpdated`, `referenceCreated`) of `new` over `old` (None: a new
/// branch) on `branch`.
pub fn push_event(
    event_kind: &str,
    old: Option<&str>,
    new: &str,
    branch: &str,
) -> serde_json::Value {
    let mut e = event("codecommit-reference-updated.json");
    e["detail"]["event"] = serde_json::json!(event_kind);
    e["detail"]["commitId"] = serde_json::json!(new);
    e["detail"]["referenceName"] = serde_json::json!(branch);
    match old {
        Some(o) => e["detail"]["oldCommitId"] = serde_json::json!(o),
        None => {
            e["detail"].as_object_mut().map(|d| d.remove("oldCommitId"));
        }
    }
    e
}
