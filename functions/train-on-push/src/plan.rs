//! Pure plans of what to ask SageMaker for: the `CreateTrainingJob` request for a validated manifest at a
//! commit (administrator settings merged in, never the manifest's), and the `CreateModelPackage` request
//! for a finished job.

use std::collections::BTreeMap;

use crate::changes::Push;
use crate::manifest::{self, Manifest, MetricDefinition, ModelKind, ScriptMode};
use crate::naming::{self, tag};
use crate::paths::S3Location;

/// The source archive's name, as SageMaker script mode expects it.
pub const SOURCE_ARCHIVE: &str = "sourcedir.tar.gz";
/// Where a network-isolated script-mode job finds the source archive (the `code` channel).
const CODE_CHANNEL_ARCHIVE: &str = "/opt/ml/input/data/code/sourcedir.tar.gz";

/// Settings that come from the administrator only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub region: String,
    pub role_arn: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// Models go to `<output>/<model>/<job>/output/model.tar.gz`, checkpoints to `<output>/<model>/<job>/checkpoints/`.
    pub output: S3Location,
    /// Script-mode source archives go to `<code>/<model>/<job>/sourcedir.tar.gz`.
    pub code: S3Location,
    pub output_kms_key: Option<String>,
    pub volume_kms_key: Option<String>,
    /// Where runs are tracked: a SageMaker managed MLflow tracking server (by ARN) or classic Experiments.
    pub tracking: Tracking,
}

/// How a job's run is tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracking {
    /// SageMaker managed MLflow: studio-ops records the run itself, and `CreateTrainingJob` names the server,
    /// experiment and run in `MlflowConfig`.
    Mlflow { server_arn: String },
    /// Classic SageMaker Experiments (an experiment and a trial per job), shown only in Studio Classic.
    Classic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub name: String,
    pub s3_uri: String,
    pub content_type: Option<String>,
    pub input_mode: Option<String>,
    pub distribution: String,
    pub compression: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotSpec {
    pub max_wait_seconds: u32,
    pub checkpoint_s3_uri: Option<String>,
}

/// The script-mode source to package before the job starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePackage {
    /// The folder in the repository to package.
    pub folder: String,
    /// The entry point, relative to `folder`.
    pub entry_point: String,
    pub entry_point_line: Option<u32>,
    pub source_dir_line: Option<u32>,
    /// Where the archive goes.
    pub s3_uri: String,
}

/// Everything `CreateTrainingJob` (plus the experiment wiring) needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingJobSpec {
    pub name: String,
    pub model: String,
    pub role_arn: String,
    pub training_image: String,
    pub hyperparameters: BTreeMap<String, String>,
    pub channels: Vec<ChannelSpec>,
    pub metric_definitions: Vec<MetricDefinition>,
    pub output_s3_uri: String,
    pub output_kms_key: Option<String>,
    pub instance_type: String,
    pub instance_count: u32,
    pub volume_gb: u32,
    pub volume_kms_key: Option<String>,
    pub max_runtime_seconds: u32,
    pub spot: Option<SpotSpec>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub network_isolation: bool,
    pub inter_container_encryption: bool,
    pub tags: Vec<(String, String)>,
    pub experiment: String,
    pub experiment_description: String,
    /// The experiment's trial for this commit (a "run" per commit); same as the job name.
    pub trial: String,
    /// Where the run is tracked (the run is named like the job).
    pub tracking: Tracking,
    pub source: Option<SourcePackage>,
}

/// A model at a commit: what the plan is made for.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub push: &'a Push,
    pub model: &'a str,
    /// The folder of the model in the repository.
    pub folder: &'a str,
    pub author: Option<&'a str>,
}

/// The training job for a validated manifest.
pub fn training_job(
    target: &Target<'_>,
    manifest: &Manifest,
    deployment: &Deployment,
) -> TrainingJobSpec {
    let name = naming::job_name(target.model, &target.push.commit_id);
    let model_root = deployment.output.join(target.model);
    let job_root = model_root.join(&name);
    let experiment = manifest
        .experiment
        .clone()
        .unwrap_or_else(|| target.model.to_string());
    let mut channels = channels(manifest);
    let (hyperparameters, source) = match &manifest.kind {
        ModelKind::Framework(script) => {
            let (h, source, code) = script_mode(target, manifest, script, deployment, &name);
            channels.extend(code);
            (h, Some(source))
        }
        _ => (
            manifest
                .hyperparameters
                .iter()
                .map(|(k, v)| (k.clone(), v.plain()))
                .collect(),
            None,
        ),
    };
    let tags = job_tags(target, manifest, &experiment);
    let experiment_description = experiment_description(target, manifest);

    TrainingJobSpec {
        model: target.model.to_string(),
        role_arn: deployment.role_arn.clone(),
        training_image: manifest.images.training.clone(),
        hyperparameters,
        channels,
        metric_definitions: manifest.metrics.clone(),
        output_s3_uri: model_root.as_prefix().to_string(),
        output_kms_key: deployment.output_kms_key.clone(),
        instance_type: manifest.resources.instance_type.clone(),
        instance_count: manifest.resources.instance_count,
        volume_gb: manifest.resources.volume_gb,
        // SageMaker refuses a volume key on instance storage (the hardware encrypts it).
        volume_kms_key: deployment
            .volume_kms_key
            .clone()
            .filter(|_| !has_instance_storage(&manifest.resources.instance_type)),
        max_runtime_seconds: manifest.resources.max_runtime_seconds,
        spot: manifest.spot.as_ref().map(|s| SpotSpec {
            max_wait_seconds: s.max_wait_seconds,
            checkpoint_s3_uri: s
                .checkpoints
                .then(|| job_root.join("checkpoints/").to_string()),
        }),
        subnets: deployment.subnets.clone(),
        security_groups: deployment.security_groups.clone(),
        network_isolation: manifest.network_isolation,
        inter_container_encryption: true,
        tags,
        experiment,
        experiment_description,
        trial: name.clone(),
        tracking: deployment.tracking.clone(),
        source,
        name,
    }
}

/// The manifest's input channels as the request names them.
fn channels(manifest: &Manifest) -> Vec<ChannelSpec> {
    manifest
        .channels
        .iter()
        .map(|c| ChannelSpec {
            name: c.name.clone(),
            s3_uri: c.s3_uri.to_string(),
            content_type: c.content_type.clone(),
            input_mode: c.input_mode.clone(),
            distribution: c.distribution.clone(),
            compression: c.compression.clone(),
        })
        .collect()
}

/// Script mode: the hyperparameters SageMaker's framework containers read (JSON-encoded, plus `sagemaker_*`),
/// the source to package, and — for a network-isolated job, which cannot fetch from S3 itself — the `code`
/// channel the archive arrives on.
fn script_mode(
    target: &Target<'_>,
    manifest: &Manifest,
    script: &ScriptMode,
    deployment: &Deployment,
    name: &str,
) -> (BTreeMap<String, String>, SourcePackage, Option<ChannelSpec>) {
    let archive = deployment
        .code
        .join(&format!("{}/{name}/{SOURCE_ARCHIVE}", target.model))
        .to_string();
    let mut h: BTreeMap<String, String> = manifest
        .hyperparameters
        .iter()
        .map(|(k, v)| (k.clone(), v.json()))
        .collect();
    let json = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    // An isolated container cannot fetch from S3 itself: the archive arrives as a channel.
    let code = manifest.network_isolation.then(|| ChannelSpec {
        name: manifest::CODE_CHANNEL.to_string(),
        s3_uri: archive.clone(),
        content_type: None,
        input_mode: Some("File".to_string()),
        distribution: "FullyReplicated".to_string(),
        compression: "None".to_string(),
    });
    let submit = if code.is_some() {
        CODE_CHANNEL_ARCHIVE.to_string()
    } else {
        archive.clone()
    };
    h.insert("sagemaker_program".into(), json(&script.entry_point));
    h.insert("sagemaker_submit_directory".into(), json(&submit));
    h.insert("sagemaker_container_log_level".into(), "20".into());
    h.insert("sagemaker_job_name".into(), json(name));
    h.insert("sagemaker_region".into(), json(&deployment.region));
    h.insert("model_dir".into(), json("/opt/ml/model"));
    let folder = crate::paths::join(target.folder, &script.source_dir);
    let source = SourcePackage {
        folder,
        entry_point: script.entry_point.clone(),
        entry_point_line: script.entry_point_line,
        source_dir_line: script.source_dir_line,
        s3_uri: archive,
    };
    (h, source, code)
}

/// The tags that mark the job as studio-ops's and carry its lineage to the registration.
fn job_tags(target: &Target<'_>, manifest: &Manifest, experiment: &str) -> Vec<(String, String)> {
    let mut tags = vec![
        (
            tag::MANAGED_BY.to_string(),
            tag::MANAGED_BY_VALUE.to_string(),
        ),
        (tag::MODEL.to_string(), target.model.to_string()),
        (
            tag::REPOSITORY.to_string(),
            naming::tag_value(&target.push.repository),
        ),
        (
            tag::BRANCH.to_string(),
            naming::tag_value(&target.push.branch),
        ),
        (
            tag::COMMIT.to_string(),
            naming::tag_value(&target.push.commit_id),
        ),
        (tag::KIND.to_string(), manifest.kind.label().to_string()),
        (tag::EXPERIMENT.to_string(), experiment.to_string()),
        (
            tag::INFERENCE_IMAGE.to_string(),
            naming::tag_value(&manifest.images.inference),
        ),
        (
            tag::CONTENT_TYPES.to_string(),
            naming::tag_value(&manifest.registry.content_types.join(" ")),
        ),
        (
            tag::RESPONSE_TYPES.to_string(),
            naming::tag_value(&manifest.registry.response_types.join(" ")),
        ),
    ];
    if let Some(author) = target.author {
        tags.push((tag::AUTHOR.to_string(), naming::tag_value(author)));
    }

    tags
}

fn experiment_description(target: &Target<'_>, manifest: &Manifest) -> String {
    manifest.description.clone().unwrap_or_else(|| {
        format!(
            "Runs of {} from {}/{} (one per commit), started by studio-ops",
            target.model, target.push.repository, target.folder
        )
    })
}

/// What a training job's tags say about where it came from; None if studio-ops did not start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub model: String,
    pub repository: String,
    pub branch: Option<String>,
    pub commit_id: String,
    pub author: Option<String>,
    pub inference_image: Option<String>,
    pub content_types: Vec<String>,
    pub response_types: Vec<String>,
    /// The MLflow run recorded for the job (experiment id, run id), if it was tracked in MLflow.
    pub mlflow_run: Option<(String, String)>,
}

impl Lineage {
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Lineage> {
        if tags.get(tag::MANAGED_BY).map(String::as_str) != Some(tag::MANAGED_BY_VALUE) {
            return None;
        }
        let get = |k: &str| tags.get(k).filter(|v| !v.is_empty()).cloned();
        let list = |k: &str| {
            tags.get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        Some(Lineage {
            model: get(tag::MODEL)?,
            repository: get(tag::REPOSITORY)?,
            commit_id: get(tag::COMMIT)?,
            branch: get(tag::BRANCH),
            author: get(tag::AUTHOR),
            inference_image: get(tag::INFERENCE_IMAGE),
            content_types: list(tag::CONTENT_TYPES),
            response_types: list(tag::RESPONSE_TYPES),
            mlflow_run: get(tag::MLFLOW_EXPERIMENT_ID).zip(get(tag::MLFLOW_RUN_ID)),
        })
    }
}

/// Everything `CreateModelPackage` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPackageSpec {
    pub group: String,
    pub group_description: String,
    pub description: String,
    pub image: String,
    pub model_data_url: String,
    pub content_types: Vec<String>,
    pub response_types: Vec<String>,
    pub commit_id: String,
    pub repository: String,
    pub generated_by: String,
    pub customer_metadata: BTreeMap<String, String>,
    pub client_token: String,
    pub tags: Vec<(String, String)>,
}

/// SageMaker limits on customer metadata: 50 entries, keys of at most 128 characters.
const MAX_CUSTOMER_METADATA: usize = 50;
const MAX_METADATA_KEY: usize = 128;
/// Final metrics in a version's customer metadata: `studio-ops:metric:<name>` = value (notify reads them).
pub const METRIC_PREFIX: &str = "studio-ops:metric:";

/// The MLflow run of the job a version was trained by, in its customer metadata (notify reads them).
pub const MLFLOW_RUN_ID: &str = "studio-ops:mlflow-run-id";
pub const MLFLOW_RUN_URL: &str = "studio-ops:mlflow-run-url";

/// A run's page in the tracking server's UI.
pub fn run_url(ui: &str, experiment_id: &str, run_id: &str) -> String {
    format!(
        "{}/#/experiments/{experiment_id}/runs/{run_id}",
        ui.trim_end_matches('/')
    )
}

/// The model version for a completed job of ours.
pub fn model_package(
    lineage: &Lineage,
    job_name: &str,
    job_arn: &str,
    model_data_url: &str,
    training_image: Option<&str>,
    metrics: &BTreeMap<String, f64>,
    mlflow_ui: Option<&str>,
) -> Result<ModelPackageSpec, String> {
    let image = lineage
        .inference_image
        .clone()
        .or_else(|| training_image.map(str::to_string))
        .ok_or_else(|| format!("training job {job_name} names no inference image"))?;
    let short = naming::job_commit(&lineage.commit_id);
    let branch = lineage.branch.as_deref().unwrap_or("?");
    let description = format!(
        "{} trained from {}@{branch} commit {short}{} {}",
        lineage.model,
        lineage.repository,
        lineage
            .author
            .as_ref()
            .map(|a| format!(" by {a}"))
            .unwrap_or_default(),
        naming::registration_marker(job_name),
    );
    let mut meta = BTreeMap::new();
    meta.insert(
        "studio-ops:repository".to_string(),
        lineage.repository.clone(),
    );
    meta.insert("studio-ops:commit".to_string(), lineage.commit_id.clone());
    meta.insert("studio-ops:training-job".to_string(), job_name.to_string());
    meta.insert("studio-ops:branch".to_string(), branch.to_string());
    if let Some(a) = &lineage.author {
        meta.insert("studio-ops:author".to_string(), a.clone());
    }
    if let Some((experiment_id, run_id)) = &lineage.mlflow_run {
        meta.insert(MLFLOW_RUN_ID.to_string(), run_id.clone());
        if let Some(url) = mlflow_ui.map(|ui| run_url(ui, experiment_id, run_id)) {
            meta.insert(MLFLOW_RUN_URL.to_string(), url);
        }
    }
    for (name, value) in metrics {
        let key = naming::tag_value(&format!("{METRIC_PREFIX}{name}"));
        if meta.len() >= MAX_CUSTOMER_METADATA || key.chars().count() > MAX_METADATA_KEY {
            continue;
        }
        meta.insert(key, value.to_string());
    }
    let tags = vec![
        (
            tag::MANAGED_BY.to_string(),
            tag::MANAGED_BY_VALUE.to_string(),
        ),
        (tag::MODEL.to_string(), lineage.model.clone()),
        (
            tag::REPOSITORY.to_string(),
            naming::tag_value(&lineage.repository),
        ),
        (
            tag::COMMIT.to_string(),
            naming::tag_value(&lineage.commit_id),
        ),
        (
            tag::MODEL_DIGEST.to_string(),
            naming::model_digest(&image, model_data_url),
        ),
    ];
    let or_default = |v: &Vec<String>| {
        if v.is_empty() {
            vec!["application/json".to_string()]
        } else {
            v.clone()
        }
    };
    Ok(ModelPackageSpec {
        group: lineage.model.clone(),
        group_description: format!(
            "{}: versions trained by studio-ops from {}",
            lineage.model, lineage.repository
        ),
        description,
        image,
        model_data_url: model_data_url.to_string(),
        content_types: or_default(&lineage.content_types),
        response_types: or_default(&lineage.response_types),
        commit_id: lineage.commit_id.clone(),
        repository: lineage.repository.clone(),
        generated_by: job_arn.to_string(),
        customer_metadata: meta,
        client_token: naming::client_token(job_arn),
        tags,
    })
}

/// The instance families whose training volumes are NVMe instance storage: SageMaker refuses a
/// `VolumeKmsKeyId` on them ("you can't request a VolumeKmsKeyId when using an instance type with local
/// storage"). The template's `StartTrainingOnInstanceStorage` statement lists the same families.
pub const INSTANCE_STORAGE_FAMILIES: &[&str] = &[
    "ml.g4dn", "ml.g5", "ml.g6", "ml.g6e", "ml.p3dn", "ml.p4d", "ml.p4de", "ml.p5", "ml.m5d",
    "ml.c5d", "ml.r5d", "ml.trn1", "ml.trn1n",
];

/// Whether `instance_type` (e.g. `ml.g5.xlarge`) has NVMe instance storage.
pub fn has_instance_storage(instance_type: &str) -> bool {
    instance_type
        .rsplit_once('.')
        .is_some_and(|(family, _)| INSTANCE_STORAGE_FAMILIES.contains(&family))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Limits, Policy};

    fn policy() -> Policy {
        Policy {
            region: "us-east-1".into(),
            instance_types: crate::config::DEFAULT_INSTANCE_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            image_repositories: vec![],
            data_prefixes: vec![
                S3Location::parse("s3://studio-ops-data-123456789012/data/").unwrap(),
            ],
            max_instance_count: 4,
            max_volume_gb: 100,
            max_runtime_seconds: 86_400,
            max_wait_seconds: 172_800,
            require_network_isolation: false,
            limits: Limits {
                max_bytes: 65_536,
                max_depth: 4,
            },
        }
    }

    fn deployment() -> Deployment {
        Deployment {
            region: "us-east-1".into(),
            role_arn: "arn:aws:iam::123456789012:role/studio-ops-training".into(),
            subnets: vec!["subnet-0123456789abcdef0".into()],
            security_groups: vec!["sg-0123456789abcdef0".into()],
            output: S3Location::parse("s3://studio-ops-data-123456789012/models/").unwrap(),
            code: S3Location::parse("s3://studio-ops-data-123456789012/code/").unwrap(),
            output_kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
            volume_kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
            tracking: Tracking::Classic,
        }
    }

    fn push() -> Push {
        Push {
            repository: "sagemaker-repository".into(),
            branch: "main".into(),
            commit_id: "f485fcc95a795517f279d0a877227e51208b0dfc".into(),
            before: None,
            pushed_by: None,
        }
    }

    fn manifest(name: &str) -> Manifest {
        let path = format!(
            "{}/../../tests/fixtures/models-repo/models/{name}/training.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::manifest::parse(&std::fs::read(path).unwrap(), &policy()).unwrap()
    }

    fn plan(name: &str) -> TrainingJobSpec {
        let p = push();
        let folder = format!("models/{name}");
        let target = Target {
            push: &p,
            model: name,
            folder: &folder,
            author: Some("ana.silva@example.com"),
        };
        training_job(&target, &manifest(name), &deployment())
    }

    #[test]
    fn built_in_job_takes_every_setting_from_the_administrator() {
        let j = plan("churn-xgboost");
        assert_eq!(j.name, "churn-xgboost-f485fcc");
        assert_eq!(j.role_arn, deployment().role_arn);
        assert_eq!(j.subnets, deployment().subnets);
        assert_eq!(j.security_groups, deployment().security_groups);
        assert_eq!(
            j.output_s3_uri,
            "s3://studio-ops-data-123456789012/models/churn-xgboost/"
        );
        assert_eq!(j.output_kms_key, deployment().output_kms_key);
        assert_eq!(j.volume_kms_key, deployment().volume_kms_key);
        assert!(
            !has_instance_storage(&j.instance_type),
            "{}",
            j.instance_type
        );
        assert!(j.network_isolation && j.inter_container_encryption);
        assert_eq!(j.hyperparameters["eta"], "0.2");
        assert_eq!(j.hyperparameters["objective"], "binary:logistic");
        assert_eq!(j.experiment, "churn");
        assert_eq!(j.trial, j.name);
        assert_eq!(j.source, None);
        let tags: BTreeMap<_, _> = j.tags.iter().cloned().collect();
        assert_eq!(tags[tag::MANAGED_BY], "studio-ops");
        assert_eq!(tags[tag::MODEL], "churn-xgboost");
        assert_eq!(tags[tag::REPOSITORY], "sagemaker-repository");
        assert_eq!(tags[tag::BRANCH], "main");
        assert_eq!(
            tags[tag::COMMIT],
            "f485fcc95a795517f279d0a877227e51208b0dfc"
        );
        assert_eq!(tags[tag::AUTHOR], "ana.silva@example.com");
        assert_eq!(tags[tag::CONTENT_TYPES], "text/csv");
    }

    #[test]
    fn script_mode_packages_source_and_sets_its_hyperparameters() {
        let j = plan("digits-cnn");
        let source = j.source.clone().unwrap();
        assert_eq!(source.folder, "models/digits-cnn/src");
        assert_eq!(
            source.s3_uri,
            "s3://studio-ops-data-123456789012/code/digits-cnn/digits-cnn-f485fcc/sourcedir.tar.gz"
        );
        assert_eq!(j.hyperparameters["sagemaker_program"], "\"train.py\"");
        assert_eq!(
            j.hyperparameters["sagemaker_submit_directory"],
            format!("\"{}\"", source.s3_uri)
        );
        assert_eq!(j.hyperparameters["sagemaker_region"], "\"us-east-1\"");
        assert_eq!(j.hyperparameters["optimizer"], "\"adam\"");
        assert_eq!(j.hyperparameters["epochs"], "10");
        assert!(!j.network_isolation);
        assert_eq!(j.channels.len(), 1);

        // Isolated: the archive arrives as the `code` channel.
        let mut m = manifest("digits-cnn");
        m.network_isolation = true;
        let p = push();
        let target = Target {
            push: &p,
            model: "digits-cnn",
            folder: "models/digits-cnn",
            author: None,
        };
        let j = training_job(&target, &m, &deployment());
        assert_eq!(
            j.hyperparameters["sagemaker_submit_directory"],
            "\"/opt/ml/input/data/code/sourcedir.tar.gz\""
        );
        let code = j.channels.iter().find(|c| c.name == "code").unwrap();
        assert_eq!(code.s3_uri, j.source.unwrap().s3_uri);
    }

    #[test]
    fn spot_checkpoints_go_under_the_job() {
        let j = plan("translate-seq2seq");
        assert_eq!(
            j.spot,
            Some(SpotSpec {
                max_wait_seconds: 28_800,
                checkpoint_s3_uri: Some(
                    "s3://studio-ops-data-123456789012/models/translate-seq2seq/translate-seq2seq-f485fcc/checkpoints/".into()
                ),
            })
        );
    }

    #[test]
    fn a_finished_job_becomes_a_model_package_from_its_tags() {
        let j = plan("digits-cnn");
        let tags: BTreeMap<String, String> = j.tags.iter().cloned().collect();
        let lineage = Lineage::from_tags(&tags).unwrap();
        let arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/digits-cnn-f485fcc";
        let metrics = BTreeMap::from([("validation:accuracy".to_string(), 0.98)]);
        let spec = model_package(
            &lineage,
            &j.name,
            arn,
            "s3://b/models/x/model.tar.gz",
            None,
            &metrics,
            None,
        )
        .unwrap();
        assert_eq!(spec.group, "digits-cnn");
        assert_eq!(
            spec.image,
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16.1-cpu"
        );
        assert!(
            spec.description
                .contains("[training job digits-cnn-f485fcc]")
        );
        assert_eq!(spec.commit_id, "f485fcc95a795517f279d0a877227e51208b0dfc");
        assert_eq!(spec.generated_by, arn);
        assert_eq!(
            spec.customer_metadata["studio-ops:metric:validation:accuracy"],
            "0.98"
        );
        assert_eq!(spec.customer_metadata["studio-ops:training-job"], j.name);
        assert_eq!(spec.content_types, vec!["application/json"]);
        assert_eq!(spec.client_token, naming::client_token(arn));

        let mut foreign = tags.clone();
        foreign.remove(tag::MANAGED_BY);
        assert_eq!(Lineage::from_tags(&foreign), None);
        let mut no_image = tags;
        no_image.remove(tag::INFERENCE_IMAGE);
        let l = Lineage::from_tags(&no_image).unwrap();
        assert!(model_package(&l, &j.name, arn, "s3://b/m", None, &BTreeMap::new(), None).is_err());
        let spec = model_package(
            &l,
            &j.name,
            arn,
            "s3://b/m",
            Some("img:1"),
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(spec.image, "img:1");
        assert!(!spec.customer_metadata.contains_key(MLFLOW_RUN_ID));
    }

    #[test]
    fn a_version_records_its_mlflow_run_and_link() {
        let j = plan("digits-cnn");
        let mut tags: BTreeMap<String, String> = j.tags.iter().cloned().collect();
        tags.insert(tag::MLFLOW_RUN_ID.into(), "0a1b2c".into());
        tags.insert(tag::MLFLOW_EXPERIMENT_ID.into(), "7".into());
        let lineage = Lineage::from_tags(&tags).unwrap();
        assert_eq!(lineage.mlflow_run, Some(("7".into(), "0a1b2c".into())));
        let ui = Some("https://t-abc.us-east-1.experiments.sagemaker.aws/");
        let spec = model_package(
            &lineage,
            &j.name,
            "arn",
            "s3://b/m",
            None,
            &BTreeMap::new(),
            ui,
        )
        .unwrap();
        assert_eq!(spec.customer_metadata[MLFLOW_RUN_ID], "0a1b2c");
        assert_eq!(
            spec.customer_metadata[MLFLOW_RUN_URL],
            "https://t-abc.us-east-1.experiments.sagemaker.aws/#/experiments/7/runs/0a1b2c"
        );
        // Without the UI's address: the id, no link.
        let spec = model_package(
            &lineage,
            &j.name,
            "arn",
            "s3://b/m",
            None,
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert!(!spec.customer_metadata.contains_key(MLFLOW_RUN_URL));
    }

    #[test]
    fn instance_storage_takes_no_volume_key() {
        assert!(has_instance_storage("ml.g4dn.xlarge"));
        assert!(has_instance_storage("ml.p4d.24xlarge"));
        assert!(!has_instance_storage("ml.m5.xlarge"));
        assert!(!has_instance_storage("ml.g4"));
        let j = plan("digits-cnn");
        assert_eq!(j.instance_type, "ml.g4dn.xlarge");
        assert_eq!(j.volume_kms_key, None);
        assert_eq!(j.output_kms_key, deployment().output_kms_key);
    }
}
