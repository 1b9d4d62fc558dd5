//! The handler against in-memory fakes of its ports: which calls a push or a job outcome makes, and what
//! it publishes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use studio_ops_shared::config::Env;
use studio_ops_shared::events::suite::SuiteEvent;
use studio_ops_shared::idempotency::MemoryIdempotencyStore;
use studio_ops_shared::publisher::RecordingPublisher;
use studio_ops_shared::{ErrorClass, Failure};

use super::*;
use crate::plan::ModelPackageSpec;
use crate::ports::{CommitInfo, JobDescription, ModelVersion, PortError};

const REPO: &str = "sagemaker-repository";
const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/models-repo"
);

/// Commits as whole file trees.
#[derive(Default)]
struct FakeRepo {
    commits: HashMap<String, (String, BTreeMap<String, Vec<u8>>)>,
    symlinks: Vec<String>,
    calls: Mutex<Vec<String>>,
}

impl FakeRepo {
    fn fixture_tree() -> BTreeMap<String, Vec<u8>> {
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

    fn add(&mut self, id: &str, message: &str, files: BTreeMap<String, Vec<u8>>) {
        self.commits
            .insert(id.to_string(), (message.to_string(), files));
    }

    fn tree(&self, id: &str) -> Result<&BTreeMap<String, Vec<u8>>, PortError> {
        self.commits.get(id).map(|(_, t)| t).ok_or_else(|| {
            PortError::new("fake", ErrorClass::NonRetryable, format!("no commit {id}"))
        })
    }

    fn called(&self, what: String) {
        self.calls.lock().unwrap().push(what);
    }
}

impl SourceRepository for FakeRepo {
    async fn commit(&self, _: &str, id: &str) -> Result<CommitInfo, PortError> {
        self.called(format!("GetCommit {id}"));
        let (message, _) = self
            .commits
            .get(id)
            .ok_or_else(|| PortError::new("GetCommit", ErrorClass::NonRetryable, "no commit"))?;
        Ok(CommitInfo {
            message: message.clone(),
            author_name: Some("Ana Silva".into()),
            author_email: Some("ana.silva@example.com".into()),
            committer_email: Some("ana.silva@example.com".into()),
        })
    }

    async fn changed_paths(
        &self,
        _: &str,
        before: &str,
        after: &str,
        folder: &str,
    ) -> Result<Vec<String>, PortError> {
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
    ) -> Result<Option<Vec<FolderEntry>>, PortError> {
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
        entries.extend(folders.into_iter().map(|path| FolderEntry::Folder { path }));
        Ok(Some(entries))
    }

    async fn file(&self, _: &str, id: &str, path: &str) -> Result<Option<Vec<u8>>, PortError> {
        self.called(format!("GetFile {path}"));
        Ok(self.tree(id)?.get(path).cloned())
    }
}

/// A job's ARN and tags.
type JobRecord = (String, BTreeMap<String, String>);

#[derive(Default)]
struct FakeTraining {
    jobs: Mutex<BTreeMap<String, JobRecord>>,
    created: Mutex<Vec<TrainingJobSpec>>,
    experiments: Mutex<Vec<(String, String)>>,
    tag_calls: Mutex<u32>,
    /// Answers for CreateTrainingJob by job name (taken once).
    refusals: Mutex<BTreeMap<String, PortError>>,
}

impl Training for FakeTraining {
    async fn ensure_experiment(&self, name: &str, _: &str) -> Result<(), PortError> {
        self.experiments
            .lock()
            .unwrap()
            .push(("experiment".into(), name.into()));
        Ok(())
    }
    async fn ensure_trial(&self, trial: &str, _: &str) -> Result<(), PortError> {
        self.experiments
            .lock()
            .unwrap()
            .push(("trial".into(), trial.into()));
        Ok(())
    }
    async fn create_training_job(&self, spec: &TrainingJobSpec) -> Result<JobCreation, PortError> {
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
    async fn describe_training_job(&self, name: &str) -> Result<Option<JobDescription>, PortError> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .get(name)
            .map(|(arn, _)| JobDescription {
                arn: arn.clone(),
                status: "Completed".into(),
                model_artifacts: Some(format!("s3://out/{name}/output/model.tar.gz")),
                final_metrics: BTreeMap::from([("validation:auc".to_string(), 0.9)]),
                ..Default::default()
            }))
    }
    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
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
struct FakeRegistry {
    groups: Mutex<Vec<String>>,
    versions: Mutex<Vec<ModelPackageSpec>>,
}

impl ModelRegistry for FakeRegistry {
    async fn ensure_group(
        &self,
        name: &str,
        _: &str,
        _: &[(String, String)],
    ) -> Result<(), PortError> {
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
    ) -> Result<Option<ModelVersion>, PortError> {
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
    async fn create_version(&self, spec: &ModelPackageSpec) -> Result<ModelVersion, PortError> {
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
struct FakeArtifacts {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Artifacts for FakeArtifacts {
    async fn put(
        &self,
        uri: &str,
        bytes: Vec<u8>,
        _: &str,
        _: Option<&str>,
    ) -> Result<(), PortError> {
        self.objects.lock().unwrap().insert(uri.to_string(), bytes);
        Ok(())
    }
}

type TestHandler = Handler<
    FakeRepo,
    FakeTraining,
    FakeRegistry,
    FakeArtifacts,
    RecordingPublisher,
    MemoryIdempotencyStore,
>;

fn config(extra: &[(&'static str, &'static str)]) -> Config {
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

fn handler(repo: FakeRepo, extra: &[(&'static str, &'static str)]) -> TestHandler {
    Handler::new(
        config(extra),
        Ports {
            source: repo,
            training: FakeTraining::default(),
            registry: FakeRegistry::default(),
            artifacts: FakeArtifacts::default(),
            publisher: RecordingPublisher::default(),
            idempotency: MemoryIdempotencyStore::default(),
        },
    )
}

/// C1 = the fixture tree; C2 = C1 with `change` applied to `path` (None deletes it).
fn repo_with_change(path: &str, change: Option<&str>, message: &str) -> FakeRepo {
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

fn push_event(event: &str, old: Option<&str>, new: &str, branch: &str) -> Value {
    let mut e: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/train-on-push/codecommit-reference-updated.json"
        ))
        .unwrap(),
    )
    .unwrap();
    e["detail"]["event"] = json!(event);
    e["detail"]["commitId"] = json!(new);
    e["detail"]["referenceName"] = json!(branch);
    match old {
        Some(o) => e["detail"]["oldCommitId"] = json!(o),
        None => {
            e["detail"].as_object_mut().unwrap().remove("oldCommitId");
        }
    }
    e
}

fn update(old: &str, new: &str) -> Value {
    push_event("referenceUpdated", Some(old), new, "main")
}

fn events(h: &TestHandler) -> Vec<SuiteEvent> {
    h.ports.publisher.taken()
}

const CHURN_PATH: &str = "models/churn-xgboost/training.toml";

fn churn_with(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{CHURN_PATH}")).unwrap();
    assert!(text.contains(from));
    text.replacen(from, to, 1)
}

#[tokio::test]
async fn a_push_changing_one_model_starts_exactly_its_job() {
    let repo = repo_with_change(
        CHURN_PATH,
        Some(&churn_with("max_depth = 5", "max_depth = 6")),
        "deeper trees",
    );
    let h = handler(repo, &[]);
    let out = h.handle(update(C1, C2), Context::default()).await.unwrap();
    let created = h.ports.training.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1, "{out}");
    assert_eq!(created[0].name, "churn-xgboost-2222222");
    assert_eq!(created[0].hyperparameters["max_depth"], "6");
    assert_eq!(
        *h.ports.training.experiments.lock().unwrap(),
        vec![
            ("experiment".to_string(), "churn".to_string()),
            ("trial".to_string(), "churn-xgboost-2222222".to_string())
        ]
    );
    let published = events(&h);
    let [SuiteEvent::TrainingStarted(s)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(s.training_job_name, "churn-xgboost-2222222");
    assert_eq!(s.author.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(s.commit_id, C2);
    assert_eq!(s.experiment.as_deref(), Some("churn"));
    assert_eq!(
        out["models"]["churn-xgboost"],
        json!({"started": "churn-xgboost-2222222"})
    );
}

#[tokio::test]
async fn replaying_a_push_starts_nothing_more() {
    let repo = repo_with_change(
        CHURN_PATH,
        Some(&churn_with("eta = 0.2", "eta = 0.1")),
        "slower",
    );
    let h = handler(repo, &[]);
    for _ in 0..3 {
        h.handle(update(C1, C2), Context::default()).await.unwrap();
    }
    assert_eq!(h.ports.training.created.lock().unwrap().len(), 1);
    assert_eq!(events(&h).len(), 1, "one Training Started");
}

#[tokio::test]
async fn skip_train_starts_nothing() {
    let repo = repo_with_change(
        CHURN_PATH,
        Some(&churn_with("eta = 0.2", "eta = 0.1")),
        "tune eta [skip train]",
    );
    let h = handler(repo, &[]);
    let out = h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(out["skipped"].is_string(), "{out}");
    assert!(h.ports.training.created.lock().unwrap().is_empty());
    assert!(events(&h).is_empty());
}

#[tokio::test]
async fn a_bad_manifest_is_rejected_to_the_committer_and_starts_nothing() {
    let bad = churn_with(
        "[algorithm]",
        "role_arn = \"arn:aws:iam::999999999999:role/admin\"\n\n[algorithm]",
    );
    let line =
        u32::try_from(bad.lines().position(|l| l.starts_with("role_arn")).unwrap() + 1).unwrap();
    let h = handler(repo_with_change(CHURN_PATH, Some(&bad), "use my role"), &[]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(h.ports.training.created.lock().unwrap().is_empty());
    assert!(
        h.ports.training.experiments.lock().unwrap().is_empty(),
        "no experiment for a rejected manifest"
    );
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(r.file, CHURN_PATH);
    assert_eq!(r.line, Some(line));
    assert!(
        r.reason.contains("STUDIO_OPS_TRAINING_ROLE_ARN"),
        "{}",
        r.reason
    );
    assert_eq!(r.author.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(r.pushed_by.as_deref(), Some("ana.silva@example.com"));
    assert_eq!(r.model.as_deref(), Some("churn-xgboost"));
    // A replay does not alert twice.
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(events(&h).is_empty());
}

#[tokio::test]
async fn branch_rules_and_new_branches() {
    let change = churn_with("eta = 0.2", "eta = 0.3");
    // A branch outside the patterns.
    let h = handler(repo_with_change(CHURN_PATH, Some(&change), "x"), &[]);
    let out = h
        .handle(
            push_event("referenceUpdated", Some(C1), C2, "feature/x"),
            Context::default(),
        )
        .await
        .unwrap();
    assert!(out["ignored"].is_string());
    assert!(
        h.ports.source.calls.lock().unwrap().is_empty(),
        "no repository calls for an ignored push"
    );
    // A new branch: none by default, all when configured, named models always.
    let h = handler(repo_with_change(CHURN_PATH, Some(&change), "x"), &[]);
    h.handle(
        push_event("referenceCreated", None, C2, "main"),
        Context::default(),
    )
    .await
    .unwrap();
    assert!(h.ports.training.created.lock().unwrap().is_empty());
    let h = handler(
        repo_with_change(CHURN_PATH, Some(&change), "x"),
        &[("STUDIO_OPS_NEW_BRANCH_POLICY", "all")],
    );
    h.handle(
        push_event("referenceCreated", None, C2, "main"),
        Context::default(),
    )
    .await
    .unwrap();
    let names: Vec<String> = h
        .ports
        .training
        .created
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![
            "churn-xgboost-2222222",
            "digits-cnn-2222222",
            "sales-arima-2222222",
            "translate-seq2seq-2222222"
        ]
    );
    let h = handler(
        repo_with_change(
            CHURN_PATH,
            Some(&change),
            "retrain on new data [train sales-arima]",
        ),
        &[("STUDIO_OPS_BRANCH_PATTERNS", "main,release/*")],
    );
    h.handle(
        push_event("referenceCreated", None, C2, "release/2026.11"),
        Context::default(),
    )
    .await
    .unwrap();
    let names: Vec<String> = h
        .ports
        .training
        .created
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.name.clone())
        .collect();
    assert_eq!(names, vec!["sales-arima-2222222"]);
}

#[tokio::test]
async fn too_many_models_in_one_push_start_nothing() {
    let mut repo = FakeRepo::default();
    let base = FakeRepo::fixture_tree();
    let mut next = base.clone();
    for path in base.keys().filter(|p| p.ends_with("training.toml")) {
        let mut text = next[path].clone();
        text.extend_from_slice(b"\n# touched\n");
        next.insert(path.clone(), text);
    }
    repo.add(C1, "a", base);
    repo.add(C2, "touch all", next);
    let h = handler(repo, &[("STUDIO_OPS_MAX_JOBS_PER_PUSH", "3")]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(h.ports.training.created.lock().unwrap().is_empty());
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(r.file, "models");
    assert!(
        r.reason.starts_with("this push would train 4 models"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn script_mode_packages_the_source_at_the_commit() {
    let path = "models/digits-cnn/src/train.py";
    let h = handler(
        repo_with_change(path, Some("print('v2')\n"), "new script"),
        &[],
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let created = h.ports.training.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    let uri = created[0].source.as_ref().unwrap().s3_uri.clone();
    let objects = h.ports.artifacts.objects.lock().unwrap();
    let archive = objects.get(&uri).expect("the archive was uploaded");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut names = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut e, &mut body).unwrap();
        if name == "train.py" {
            assert_eq!(body, "print('v2')\n");
        }
        names.push(name);
    }
    assert_eq!(names, vec!["digits_data.py", "train.py"]);
}

#[tokio::test]
async fn script_mode_source_problems_are_rejections() {
    // The entry point is gone.
    let h = handler(
        repo_with_change("models/digits-cnn/src/train.py", None, "oops"),
        &[],
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert!(h.ports.training.created.lock().unwrap().is_empty());
    assert!(h.ports.artifacts.objects.lock().unwrap().is_empty());
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(
        r.reason,
        "entry_point train.py is not in models/digits-cnn/src at this commit"
    );
    assert_eq!(r.line, Some(7));
    // A symbolic link in the source.
    let mut repo = repo_with_change("models/digits-cnn/src/secrets", Some("/etc/shadow"), "link");
    repo.symlinks.push("models/digits-cnn/src/secrets".into());
    let h = handler(repo, &[]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert!(r.reason.contains("is a symbolic link"), "{}", r.reason);
    // Too many files.
    let h = handler(
        repo_with_change("models/digits-cnn/src/extra.py", Some("x = 1\n"), "more"),
        &[("STUDIO_OPS_SOURCE_MAX_FILES", "2")],
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert!(
        r.reason.starts_with("source_dir has more than 2 files"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn an_existing_job_is_checked_to_be_ours() {
    let repo = repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x");
    let h = handler(repo, &[]);
    // Someone else's job holds the name.
    h.ports.training.jobs.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        (
            "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-xgboost-2222222".into(),
            BTreeMap::new(),
        ),
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert!(r.reason.starts_with("a training job named churn-xgboost-2222222 already exists and was not started by studio-ops"), "{}", r.reason);

    // Ours (the idempotency record expired, the job stayed): no new job, Training Started again.
    let repo = repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x");
    let h = handler(repo, &[]);
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let jobs = std::mem::take(&mut *h.ports.training.jobs.lock().unwrap());
    let h2 = handler(
        repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x"),
        &[],
    );
    *h2.ports.training.jobs.lock().unwrap() = jobs;
    let out = h2.handle(update(C1, C2), Context::default()).await.unwrap();
    assert_eq!(
        out["models"]["churn-xgboost"],
        json!({"alreadyStarted": "churn-xgboost-2222222"})
    );
    assert!(h2.ports.training.created.lock().unwrap().is_empty());
    assert!(matches!(
        events(&h2).as_slice(),
        [SuiteEvent::TrainingStarted(_)]
    ));
}

fn job_event(fixture: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/train-on-push/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_completed_job_registers_one_pending_version() {
    let h = handler(FakeRepo::default(), &[]);
    for _ in 0..3 {
        h.handle(
            job_event("sagemaker-training-job-completed.json"),
            Context::default(),
        )
        .await
        .unwrap();
    }
    let versions = h.ports.registry.versions.lock().unwrap().clone();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v.group, "churn-xgboost");
    assert_eq!(v.commit_id, "f485fcc95a795517f279d0a877227e51208b0dfc");
    assert_eq!(
        v.model_data_url,
        "s3://studio-ops-data-123456789012/models/churn-xgboost/churn-xgboost-f485fcc/output/model.tar.gz"
    );
    assert_eq!(v.content_types, vec!["text/csv"]);
    assert_eq!(
        v.image,
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    );
    assert_eq!(
        v.customer_metadata["studio-ops:metric:validation:auc"],
        "0.912"
    );
    assert_eq!(
        *h.ports.registry.groups.lock().unwrap(),
        vec!["churn-xgboost"]
    );
    let published = events(&h);
    let [SuiteEvent::ModelRegistered(m)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(m.model_package_version, Some(1));
    assert_eq!(m.metrics["validation:auc"], 0.912);
    assert_eq!(
        m.commit_id.as_deref(),
        Some("f485fcc95a795517f279d0a877227e51208b0dfc")
    );
}

#[tokio::test]
async fn a_version_registered_before_is_found_not_duplicated() {
    let h = handler(FakeRepo::default(), &[]);
    h.handle(
        job_event("sagemaker-training-job-completed.json"),
        Context::default(),
    )
    .await
    .unwrap();
    // The idempotency record is lost (expired): the registry's marker still finds the version.
    let h2 = Handler::new(
        config(&[]),
        Ports {
            source: FakeRepo::default(),
            training: FakeTraining::default(),
            registry: FakeRegistry {
                groups: Mutex::new(h.ports.registry.groups.lock().unwrap().clone()),
                versions: Mutex::new(h.ports.registry.versions.lock().unwrap().clone()),
            },
            artifacts: FakeArtifacts::default(),
            publisher: RecordingPublisher::default(),
            idempotency: MemoryIdempotencyStore::default(),
        },
    );
    h2.handle(
        job_event("sagemaker-training-job-completed.json"),
        Context::default(),
    )
    .await
    .unwrap();
    assert_eq!(h2.ports.registry.versions.lock().unwrap().len(), 1);
    assert!(matches!(
        events(&h2).as_slice(),
        [SuiteEvent::ModelRegistered(_)]
    ));
}

#[tokio::test]
async fn failed_and_stopped_jobs_are_reported_once() {
    let h = handler(FakeRepo::default(), &[]);
    for _ in 0..2 {
        h.handle(
            job_event("sagemaker-training-job-failed.json"),
            Context::default(),
        )
        .await
        .unwrap();
    }
    let published = events(&h);
    let [SuiteEvent::TrainingFailed(f)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(f.status, "Failed");
    assert!(f.failure_reason.starts_with("AlgorithmError"));
    assert_eq!(f.branch.as_deref(), Some("main"));
    // Stopped (same job, another outcome): reported once too, with the secondary status as the reason.
    h.handle(
        job_event("sagemaker-training-job-stopped.json"),
        Context::default(),
    )
    .await
    .unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingFailed(f)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(f.failure_reason, "the job was stopped (MaxRuntimeExceeded)");
}

#[tokio::test]
async fn jobs_of_others_and_in_progress_states_are_ignored() {
    let h = handler(FakeRepo::default(), &[]);
    let mut foreign = job_event("sagemaker-training-job-completed.json");
    foreign["detail"]["Tags"] = json!({"team": "other"});
    let out = h.handle(foreign, Context::default()).await.unwrap();
    assert_eq!(out["ignored"], "not started by studio-ops");
    let mut running = job_event("sagemaker-training-job-completed.json");
    running["detail"]["TrainingJobStatus"] = json!("InProgress");
    assert!(h.handle(running, Context::default()).await.unwrap()["ignored"].is_string());
    // No tags in the event: ListTags decides (the fake knows no such job: not ours).
    let mut untagged = job_event("sagemaker-training-job-completed.json");
    untagged["detail"].as_object_mut().unwrap().remove("Tags");
    let out = h.handle(untagged, Context::default()).await.unwrap();
    assert_eq!(out["ignored"], "not started by studio-ops");
    assert_eq!(*h.ports.training.tag_calls.lock().unwrap(), 1);
    assert!(h.ports.registry.versions.lock().unwrap().is_empty());
    assert!(events(&h).is_empty());
}

#[tokio::test]
async fn malformed_events_are_non_retryable() {
    let h = handler(FakeRepo::default(), &[]);
    let mut e = job_event("sagemaker-training-job-completed.json");
    e["detail"]
        .as_object_mut()
        .unwrap()
        .remove("TrainingJobArn");
    let err = h.handle(e, Context::default()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("TrainingJobArn"), "{err}");
    let err = h
        .handle(json!({"detail-type": "Coffee"}), Context::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
}

#[test]
fn fixtures_parse() {
    let Trigger::Push(p) = parse_trigger(&job_event("codecommit-reference-updated.json")).unwrap()
    else {
        panic!("not a push")
    };
    assert!(p.is_branch_push() && !p.is_new_branch());
    let Trigger::Push(p) = parse_trigger(&job_event("codecommit-reference-created.json")).unwrap()
    else {
        panic!("not a push")
    };
    assert!(p.is_new_branch());
    let Trigger::TrainingJob(j) =
        parse_trigger(&job_event("sagemaker-training-job-completed.json")).unwrap()
    else {
        panic!("not a training job")
    };
    assert_eq!(j.final_metric_data_list.as_ref().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_refusal_from_sagemaker_reaches_the_committer() {
    let repo = repo_with_change(CHURN_PATH, Some(&churn_with("eta = 0.2", "eta = 0.1")), "x");
    let h = handler(repo, &[]);
    h.ports.training.refusals.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        PortError::new(
            "CreateTrainingJob",
            ErrorClass::NonRetryable,
            "ResourceLimitExceeded: The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances",
        ),
    );
    h.handle(update(C1, C2), Context::default()).await.unwrap();
    let published = events(&h);
    let [SuiteEvent::TrainingRejected(r)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(
        r.reason,
        "the job could not be started: CreateTrainingJob failed: ResourceLimitExceeded: The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances"
    );
}

#[tokio::test]
async fn a_transient_failure_of_one_model_holds_back_no_other_and_is_retried() {
    let mut repo = FakeRepo::default();
    let base = FakeRepo::fixture_tree();
    let mut next = base.clone();
    for model in ["churn-xgboost", "sales-arima"] {
        let path = format!("models/{model}/training.toml");
        let mut text = next[&path].clone();
        text.extend_from_slice(b"\n# touched\n");
        next.insert(path, text);
    }
    repo.add(C1, "a", base);
    repo.add(C2, "touch two", next);
    let h = handler(repo, &[]);
    h.ports.training.refusals.lock().unwrap().insert(
        "churn-xgboost-2222222".into(),
        PortError::new(
            "CreateTrainingJob",
            ErrorClass::Retryable,
            "ThrottlingException: Rate exceeded",
        ),
    );
    let err = h
        .handle(update(C1, C2), Context::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    let names = |h: &TestHandler| -> Vec<String> {
        h.ports
            .training
            .created
            .lock()
            .unwrap()
            .iter()
            .map(|j| j.name.clone())
            .collect()
    };
    assert_eq!(names(&h), vec!["sales-arima-2222222"]);
    // Lambda's retry: the failed model starts, the other is a duplicate.
    let out = h.handle(update(C1, C2), Context::default()).await.unwrap();
    assert_eq!(
        names(&h),
        vec!["sales-arima-2222222", "churn-xgboost-2222222"]
    );
    assert!(
        out["models"]["sales-arima"]["duplicate"].is_object(),
        "{out}"
    );
    assert_eq!(events(&h).len(), 2);
}
