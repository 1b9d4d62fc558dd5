//! The training manifest (`training.toml` in a model's folder), read as untrusted input: bounded in size
//! and nesting, free of settings only the administrator may choose (role, VPC, keys, output, data bucket),
//! checked against the allow-lists and caps, and turned into a validated `Manifest` or a `Rejection` that
//! names the line and the reason. The format is documented in docs/train-on-push.md.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::images::{self, Algorithm, EcrImage, Framework, Images, Processor};
use crate::naming;
use crate::paths::{self, S3Location};

/// The manifest's file name inside a model folder.
pub const FILE_NAME: &str = "training.toml";

/// SageMaker API limits the manifest is held to.
const MAX_HYPERPARAMETERS: usize = 100;
const MAX_HYPERPARAMETER_KEY: usize = 256;
const MAX_HYPERPARAMETER_VALUE: usize = 2500;
const MAX_CHANNELS: usize = 20;
const MAX_METRICS: usize = 40;
const MAX_METRIC_REGEX: usize = 500;
const MAX_DESCRIPTION: usize = 1000;
const MAX_EXPERIMENT_NAME: usize = 120;
const MAX_CONTENT_TYPES: usize = 10;
/// Tag values are at most 256 characters and the content types travel in a tag.
const MAX_CONTENT_TYPES_CHARS: usize = 256;
/// Script mode's own hyperparameters; a manifest may not set them.
const RESERVED_FRAMEWORK_HYPERPARAMETERS: &[&str] = &["model_dir"];
/// The input channel script mode adds for the source archive when the job is network-isolated.
pub const CODE_CHANNEL: &str = "code";

/// Bounds on the manifest file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
}

/// What the administrator allows; everything a manifest asks for is checked against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The region jobs run in (images are resolved for it).
    pub region: String,
    pub instance_types: Vec<String>,
    /// Allowed custom images: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>` (any tag or digest).
    pub image_repositories: Vec<String>,
    /// Where input channels may read from.
    pub data_prefixes: Vec<S3Location>,
    pub max_instance_count: u32,
    pub max_volume_gb: u32,
    pub max_runtime_seconds: u32,
    pub max_wait_seconds: u32,
    /// Forces network isolation on for every kind of model.
    pub require_network_isolation: bool,
    pub limits: Limits,
}

/// Why a manifest was refused, and where (1-based line, when the problem has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Rejection {
    pub line: Option<u32>,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl Rejection {
    pub fn new(line: Option<u32>, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

/// A hyperparameter as written (SageMaker takes strings; script mode JSON-encodes them).
#[derive(Debug, Clone, PartialEq)]
pub enum HyperValue {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl HyperValue {
    /// The value as a built-in algorithm reads it: `5`, `0.2`, `true`, `binary:logistic`.
    pub fn plain(&self) -> String {
        match self {
            HyperValue::String(s) => s.clone(),
            HyperValue::Integer(i) => i.to_string(),
            HyperValue::Float(f) => f.to_string(),
            HyperValue::Boolean(b) => b.to_string(),
        }
    }

    /// The value as script mode passes it (JSON, as the SageMaker Python SDK does): `5`, `"adam"`.
    pub fn json(&self) -> String {
        match self {
            HyperValue::String(s) => serde_json::Value::String(s.clone()).to_string(),
            other => other.plain(),
        }
    }
}

impl<'de> Deserialize<'de> for HyperValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HyperValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HyperValue, E> {
                Ok(HyperValue::String(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HyperValue, E> {
                Ok(HyperValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HyperValue, E> {
                i64::try_from(v)
                    .map(HyperValue::Integer)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HyperValue, E> {
                if v.is_finite() {
                    Ok(HyperValue::Float(v))
                } else {
                    Err(E::custom("hyperparameters must be finite numbers"))
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<HyperValue, E> {
                Ok(HyperValue::Boolean(v))
            }
        }
        d.deserialize_any(V)
    }
}

// ----- the file as written -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    description: Option<Spanned<String>>,
    #[serde(default)]
    network_isolation: Option<Spanned<bool>>,
    #[serde(default)]
    algorithm: Option<Spanned<RawAlgorithm>>,
    #[serde(default)]
    container: Option<Spanned<RawContainer>>,
    #[serde(default)]
    framework: Option<Spanned<RawFramework>>,
    resources: Spanned<RawResources>,
    #[serde(default)]
    spot: Option<Spanned<RawSpot>>,
    #[serde(default)]
    hyperparameters: BTreeMap<Spanned<String>, Spanned<HyperValue>>,
    #[serde(default)]
    channels: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawChannel>>>>,
    #[serde(default)]
    metrics: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    #[serde(default)]
    experiment: Option<Spanned<RawExperiment>>,
    #[serde(default)]
    registry: Option<Spanned<RawRegistry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlgorithm {
    name: Spanned<String>,
    #[serde(default)]
    version: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    image: Spanned<String>,
    #[serde(default)]
    inference_image: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFramework {
    name: Spanned<String>,
    version: Spanned<String>,
    #[serde(default)]
    python: Option<Spanned<String>>,
    entry_point: Spanned<String>,
    #[serde(default)]
    source_dir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResources {
    instance_type: Spanned<String>,
    #[serde(default)]
    instance_count: Option<Spanned<i64>>,
    #[serde(default)]
    volume_gb: Option<Spanned<i64>>,
    #[serde(default)]
    max_runtime_minutes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpot {
    #[serde(default)]
    enabled: Option<Spanned<bool>>,
    #[serde(default)]
    max_wait_minutes: Option<Spanned<i64>>,
    #[serde(default)]
    checkpoints: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    s3_uri: Spanned<String>,
    #[serde(default)]
    content_type: Option<Spanned<String>>,
    #[serde(default)]
    input_mode: Option<Spanned<String>>,
    #[serde(default)]
    distribution: Option<Spanned<String>>,
    #[serde(default)]
    compression: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    content_types: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    response_types: Option<Spanned<Vec<String>>>,
}

// ----- the validated manifest -----

/// How the model trains.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelKind {
    /// A SageMaker built-in algorithm.
    Algorithm {
        algorithm: Algorithm,
        version: String,
    },
    /// The team's own image from an allow-listed ECR repository.
    Container,
    /// Framework script mode: the source folder is packaged from the repository into S3.
    Framework(ScriptMode),
}

impl ModelKind {
    /// `algorithm`, `container` or `framework` (the `studio-ops:kind` tag).
    pub fn label(&self) -> &'static str {
        match self {
            ModelKind::Algorithm { .. } => "algorithm",
            ModelKind::Container => "container",
            ModelKind::Framework(_) => "framework",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptMode {
    pub framework: Framework,
    pub version: String,
    /// The script to run, relative to `source_dir`.
    pub entry_point: String,
    pub entry_point_line: Option<u32>,
    /// The folder to package, relative to the model folder ("" = the model folder itself).
    pub source_dir: String,
    pub source_dir_line: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub instance_type: String,
    pub instance_count: u32,
    pub volume_gb: u32,
    pub max_runtime_seconds: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spot {
    pub max_wait_seconds: u32,
    pub checkpoints: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: String,
    pub s3_uri: S3Location,
    pub content_type: Option<String>,
    /// `File`, `FastFile` or `Pipe` (None = the job's default, `File`).
    pub input_mode: Option<String>,
    /// `FullyReplicated` or `ShardedByS3Key`.
    pub distribution: String,
    /// `None` or `Gzip`.
    pub compression: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricDefinition {
    pub name: String,
    pub regex: String,
}

/// What the Model Registry is told about the model's inference endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    pub content_types: Vec<String>,
    pub response_types: Vec<String>,
}

/// A manifest that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub description: Option<String>,
    pub kind: ModelKind,
    pub images: Images,
    pub resources: Resources,
    pub spot: Option<Spot>,
    pub network_isolation: bool,
    pub hyperparameters: BTreeMap<String, HyperValue>,
    pub channels: Vec<Channel>,
    pub metrics: Vec<MetricDefinition>,
    /// The experiment the model's runs go to (None = named after the model).
    pub experiment: Option<String>,
    pub registry: RegistrySettings,
}

/// Settings only the administrator may choose, by normalised key (lowercase, no `_`, `-` or spaces).
const FORBIDDEN: &[(&[&str], &str)] = &[
    (
        &[
            "role",
            "rolearn",
            "executionrole",
            "executionrolearn",
            "iamrole",
            "iamrolearn",
        ],
        "the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)",
    ),
    (
        &[
            "vpc",
            "vpcconfig",
            "subnet",
            "subnets",
            "subnetid",
            "subnetids",
            "securitygroup",
            "securitygroups",
            "securitygroupid",
            "securitygroupids",
        ],
        "the VPC subnets and security groups are set by the administrator (STUDIO_OPS_TRAINING_SUBNET_IDS, STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS)",
    ),
    (
        &[
            "kms",
            "kmskey",
            "kmskeyid",
            "kmskeyarn",
            "outputkmskey",
            "outputkmskeyid",
            "volumekmskey",
            "volumekmskeyid",
            "encryptionkey",
        ],
        "encryption keys are set by the administrator (STUDIO_OPS_OUTPUT_KMS_KEY_ID, STUDIO_OPS_VOLUME_KMS_KEY_ID)",
    ),
    (
        &[
            "output",
            "outputpath",
            "outputuri",
            "outputs3uri",
            "s3outputpath",
            "outputdataconfig",
            "outputbucket",
            "checkpoints3uri",
            "checkpointpath",
            "checkpointconfig",
            "modeldir",
        ],
        "where models and checkpoints are written is set by the administrator (STUDIO_OPS_OUTPUT_S3_URI)",
    ),
    (
        &[
            "bucket",
            "databucket",
            "allowedbucket",
            "allowedprefix",
            "dataprefix",
        ],
        "the allowed data location is set by the administrator (STUDIO_OPS_DATA_S3_URIS); point each channel's s3_uri inside it",
    ),
    (&["tags", "tag"], "tags are set by studio-ops"),
    (
        &["jobname", "trainingjobname"],
        "training job names are <model>-<short commit>, set by studio-ops",
    ),
    (
        &[
            "enableintercontainertrafficencryption",
            "intercontainerencryption",
            "intercontainertrafficencryption",
        ],
        "inter-container traffic encryption is always on",
    ),
];

/// Tables whose keys are free names chosen by the data scientist, not settings.
const FREE_KEY_TABLES: &[&str] = &["hyperparameters", "metrics", "channels"];

fn normalise_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn forbidden_reason(key: &str) -> Option<&'static str> {
    let k = normalise_key(key);
    FORBIDDEN
        .iter()
        .find(|(keys, _)| keys.contains(&k.as_str()))
        .map(|(_, why)| *why)
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    let newlines = text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

struct Reader<'t> {
    text: &'t str,
    policy: &'t Policy,
}

impl Reader<'_> {
    fn line<T>(&self, s: &Spanned<T>) -> Option<u32> {
        Some(line_at(self.text, s.span().start))
    }

    fn reject<T>(&self, at: &Spanned<T>, reason: impl Into<String>) -> Rejection {
        Rejection::new(self.line(at), reason)
    }

    /// Depth and forbidden keys, before any typed reading.
    fn walk(&self, table: &DeTable<'_>, path: &mut Vec<String>) -> Result<(), Rejection> {
        // Names directly under [hyperparameters], [metrics] and [channels] are the data scientist's own.
        let free = path.len() == 1 && FREE_KEY_TABLES.contains(&path[0].as_str());
        for (key, value) in table.iter() {
            if !free && let Some(why) = forbidden_reason(key.get_ref()) {
                return Err(Rejection::new(
                    self.line(key),
                    format!(
                        "`{}` cannot be set in a manifest: {why}",
                        dotted(path, key.get_ref())
                    ),
                ));
            }
            path.push(key.get_ref().to_string());
            let r = self.walk_value(value, path);
            path.pop();
            r?;
        }
        Ok(())
    }

    fn walk_value(
        &self,
        value: &Spanned<DeValue<'_>>,
        path: &mut Vec<String>,
    ) -> Result<(), Rejection> {
        if path.len() > self.policy.limits.max_depth {
            return Err(Rejection::new(
                self.line(value),
                format!(
                    "`{}` is nested {} levels deep; a manifest may nest at most {}",
                    display_path(path),
                    path.len(),
                    self.policy.limits.max_depth
                ),
            ));
        }
        match value.get_ref() {
            DeValue::Table(t) => self.walk(t, path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    let r = self.walk_value(item, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// `a.b[0].c`: keys joined with dots, array indices attached.
fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

fn dotted(path: &[String], key: &str) -> String {
    let mut full = path.to_vec();
    full.push(key.to_string());
    display_path(&full)
}

/// serde's wording for the manifest's integer fields, in the data scientist's words.
fn friendly(message: &str) -> String {
    message
        .trim()
        .replace("expected i64", "expected a whole number")
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn one_of<'a>(
    r: &Reader<'_>,
    value: &Spanned<String>,
    what: &str,
    allowed: &[&'a str],
) -> Result<&'a str, Rejection> {
    allowed
        .iter()
        .find(|a| **a == value.get_ref().as_str())
        .copied()
        .ok_or_else(|| {
            r.reject(
                value,
                format!(
                    "{what} {:?} is not one of {}",
                    value.get_ref(),
                    allowed.join(", ")
                ),
            )
        })
}

fn in_range(
    r: &Reader<'_>,
    value: &Spanned<i64>,
    what: &str,
    range: std::ops::RangeInclusive<i64>,
    why_max: &str,
) -> Result<u32, Rejection> {
    let v = *value.get_ref();
    if v < *range.start() {
        return Err(r.reject(
            value,
            format!("{what} must be at least {}, not {v}", range.start()),
        ));
    }
    if v > *range.end() {
        return Err(r.reject(
            value,
            format!("{what} is {v}; the limit is {} ({why_max})", range.end()),
        ));
    }
    u32::try_from(v).map_err(|_| r.reject(value, format!("{what} is out of range")))
}

fn content_types(
    r: &Reader<'_>,
    value: &Option<Spanned<Vec<String>>>,
    what: &str,
    default: &[&str],
) -> Result<Vec<String>, Rejection> {
    let Some(v) = value else {
        return Ok(default.iter().map(|s| s.to_string()).collect());
    };
    let list = v.get_ref();
    if list.is_empty() || list.len() > MAX_CONTENT_TYPES {
        return Err(r.reject(
            v,
            format!("{what} needs 1 to {MAX_CONTENT_TYPES} MIME types"),
        ));
    }
    for t in list {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        let ok = t.split_once('/').is_some_and(|(a, b)| token(a) && token(b));
        if !ok {
            return Err(r.reject(v, format!("{what}: {t:?} is not a MIME type like text/csv")));
        }
    }
    if list.join(" ").len() > MAX_CONTENT_TYPES_CHARS {
        return Err(r.reject(
            v,
            format!("{what} are longer than {MAX_CONTENT_TYPES_CHARS} characters together"),
        ));
    }
    Ok(list.clone())
}

/// Reads and checks a manifest. `bytes` is the file as stored in the repository.
pub fn parse(bytes: &[u8], policy: &Policy) -> Result<Manifest, Rejection> {
    if bytes.len() > policy.limits.max_bytes {
        return Err(Rejection::new(
            None,
            format!(
                "the manifest is {} bytes; the limit is {} bytes",
                bytes.len(),
                policy.limits.max_bytes
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            return Err(Rejection::new(
                u32::try_from(line).ok(),
                "the manifest is not valid UTF-8 text",
            ));
        }
    };
    // A byte-order mark is harmless and holds no newline: spans are taken relative to `body`.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let reader = Reader { text: body, policy };
    let table = DeTable::parse(body).map_err(|e| {
        Rejection::new(
            e.span().map(|s| line_at(body, s.start)),
            format!("not valid TOML: {}", e.message().trim()),
        )
    })?;
    reader.walk(table.get_ref(), &mut Vec::new())?;
    let raw = RawManifest::deserialize(toml::de::Deserializer::from(table)).map_err(|e| {
        Rejection::new(
            e.span().map(|s| line_at(body, s.start)),
            friendly(e.message()),
        )
    })?;
    validate(&reader, raw)
}

/// Checks the typed file step by step, in the order the rejections are reported: the first problem found is the
/// one the committer hears about.
fn validate(r: &Reader<'_>, raw: RawManifest) -> Result<Manifest, Rejection> {
    let description = r.description(&raw.description)?;
    // Resources first: the image depends on the processor.
    let resources = r.resources(raw.resources.get_ref())?;
    r.exactly_one_kind(&raw)?;
    let (kind, images) = r.kind_and_images(&raw, &resources)?;
    let network_isolation = r.network_isolation(&raw.network_isolation, &kind)?;
    let spot = r.spot(&raw.spot, &resources)?;
    let hyperparameters = r.hyperparameters(&raw.hyperparameters, &kind)?;
    let channels = r.channels(&raw.channels, &kind, network_isolation)?;
    let metrics = r.metrics(&raw.metrics, &kind)?;
    let experiment = r.experiment(&raw.experiment)?;
    let registry = r.registry(&raw.registry, &kind)?;
    Ok(Manifest {
        description,
        kind,
        images,
        resources,
        spot,
        network_isolation,
        hyperparameters,
        channels,
        metrics,
        experiment,
        registry,
    })
}

/// The steps of [`validate`], one per part of the manifest.
impl Reader<'_> {
    fn description(&self, raw: &Option<Spanned<String>>) -> Result<Option<String>, Rejection> {
        let r = self;
        Ok(match raw {
            Some(d)
                if d.get_ref().chars().count() > MAX_DESCRIPTION || has_control(d.get_ref()) =>
            {
                return Err(r.reject(
                    d,
                    format!("description must be one line of at most {MAX_DESCRIPTION} characters"),
                ));
            }
            Some(d) => Some(d.get_ref().clone()),
            None => None,
        })
    }

    /// Instance type, count, volume and runtime within the administrator's limits.
    fn resources(&self, res: &RawResources) -> Result<Resources, Rejection> {
        let (r, policy) = (self, self.policy);
        let instance_type = res.instance_type.get_ref().clone();
        if !policy.instance_types.contains(&instance_type) {
            return Err(r.reject(
                &res.instance_type,
                format!(
                    "instance type {instance_type:?} is not allowed; choose one of {}",
                    policy.instance_types.join(", ")
                ),
            ));
        }
        let instance_count = match &res.instance_count {
            Some(c) => in_range(
                r,
                c,
                "instance_count",
                1..=i64::from(policy.max_instance_count),
                "STUDIO_OPS_MAX_INSTANCE_COUNT",
            )?,
            None => 1,
        };
        let volume_gb = match &res.volume_gb {
            Some(v) => in_range(
                r,
                v,
                "volume_gb",
                1..=i64::from(policy.max_volume_gb),
                "STUDIO_OPS_MAX_VOLUME_GB",
            )?,
            None => 30.min(policy.max_volume_gb),
        };
        let max_runtime_minutes = match &res.max_runtime_minutes {
            Some(m) => in_range(
                r,
                m,
                "max_runtime_minutes",
                1..=i64::from(policy.max_runtime_seconds / 60),
                "STUDIO_OPS_MAX_RUNTIME_SECONDS",
            )?,
            None => 60.min(policy.max_runtime_seconds / 60),
        };
        Ok(Resources {
            instance_type: instance_type.clone(),
            instance_count,
            volume_gb,
            max_runtime_seconds: max_runtime_minutes * 60,
        })
    }

    /// Exactly one way to train: `[algorithm]`, `[container]` or `[framework]`.
    fn exactly_one_kind(&self, raw: &RawManifest) -> Result<(), Rejection> {
        let r = self;
        let kinds: Vec<&str> = [
            raw.algorithm.as_ref().map(|_| "[algorithm]"),
            raw.container.as_ref().map(|_| "[container]"),
            raw.framework.as_ref().map(|_| "[framework]"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() != 1 {
            let line = raw
                .container
                .as_ref()
                .map(|c| r.line(c))
                .or_else(|| raw.framework.as_ref().map(|f| r.line(f)))
                .flatten();
            return Err(Rejection::new(
                if kinds.is_empty() { None } else { line },
                format!(
                    "say how the model trains with exactly one of [algorithm], [container] or [framework]{}",
                    if kinds.is_empty() {
                        String::new()
                    } else {
                        format!(" (found {})", kinds.join(" and "))
                    }
                ),
            ));
        }

        Ok(())
    }

    /// How the model trains and the images it trains and serves with.
    fn kind_and_images(
        &self,
        raw: &RawManifest,
        resources: &Resources,
    ) -> Result<(ModelKind, Images), Rejection> {
        let processor = Processor::of_instance_type(&resources.instance_type);
        if let Some(a) = &raw.algorithm {
            self.algorithm(a.get_ref(), raw.resources.get_ref(), resources, processor)
        } else if let Some(c) = &raw.container {
            self.container(c.get_ref())
        } else if let Some(f) = &raw.framework {
            self.framework(f.get_ref(), processor)
        } else {
            // Not reached: exactly one kind was checked before.
            Err(Rejection::new(
                None,
                "say how the model trains with exactly one of [algorithm], [container] or [framework]",
            ))
        }
    }

    /// A built-in algorithm, its version's images, and what the algorithm needs of the resources.
    fn algorithm(
        &self,
        a: &RawAlgorithm,
        res: &RawResources,
        resources: &Resources,
        processor: Processor,
    ) -> Result<(ModelKind, Images), Rejection> {
        let (r, policy) = (self, self.policy);
        let (instance_type, instance_count) = (&resources.instance_type, resources.instance_count);
        let img_err = |at: &Spanned<String>, e: images::ImageError| r.reject(at, e.to_string());
        let algorithm = Algorithm::parse(a.name.get_ref()).ok_or_else(|| {
            r.reject(
                &a.name,
                format!(
                    "unknown algorithm {:?}; built-in algorithms: {}",
                    a.name.get_ref(),
                    Algorithm::ALL.map(Algorithm::name).join(", ")
                ),
            )
        })?;
        let version = a
            .version
            .as_ref()
            .map_or(algorithm.default_version(), |v| v.get_ref().as_str())
            .to_string();
        let images = images::builtin(algorithm, &version, &policy.region)
            .map_err(|e| img_err(a.version.as_ref().unwrap_or(&a.name), e))?;
        if algorithm == Algorithm::Seq2seq {
            if processor != Processor::Gpu {
                return Err(r.reject(
                    &res.instance_type,
                    format!("seq2seq trains on GPU instances only; {instance_type} has no GPU"),
                ));
            }
            if instance_count != 1 {
                return Err(Rejection::new(
                    res.instance_count.as_ref().and_then(|c| r.line(c)),
                    "seq2seq trains on a single instance; set instance_count = 1",
                ));
            }
        }
        Ok((ModelKind::Algorithm { algorithm, version }, images))
    }

    /// The team's own image from an allow-listed repository.
    fn container(&self, c: &RawContainer) -> Result<(ModelKind, Images), Rejection> {
        let r = self;
        let training = allowed_image(r, &c.image)?;
        let inference = match &c.inference_image {
            Some(i) => allowed_image(r, i)?,
            None => training.clone(),
        };
        Ok((
            ModelKind::Container,
            Images {
                training,
                inference,
            },
        ))
    }

    /// Framework script mode: the framework's image for the processor, the source folder and the entry point.
    fn framework(
        &self,
        f: &RawFramework,
        processor: Processor,
    ) -> Result<(ModelKind, Images), Rejection> {
        let (r, policy) = (self, self.policy);
        let img_err = |at: &Spanned<String>, e: images::ImageError| r.reject(at, e.to_string());
        let framework = Framework::parse(f.name.get_ref()).ok_or_else(|| {
            r.reject(
                &f.name,
                format!(
                    "unknown framework {:?}; script mode supports: tensorflow",
                    f.name.get_ref()
                ),
            )
        })?;
        let images = match framework {
            Framework::Tensorflow => images::tensorflow(
                f.version.get_ref(),
                f.python.as_ref().map(|p| p.get_ref().as_str()),
                processor,
                &policy.region,
            )
            .map_err(|e| match e {
                images::ImageError::UnknownPython { .. } => {
                    img_err(f.python.as_ref().unwrap_or(&f.version), e)
                }
                _ => img_err(&f.version, e),
            })?,
        };
        let source_dir = match &f.source_dir {
            Some(s) => paths::relative_path(s.get_ref())
                .map_err(|e| r.reject(s, format!("source_dir {e}")))?,
            None => String::new(),
        };
        let entry_point = paths::relative_path(f.entry_point.get_ref())
            .map_err(|e| r.reject(&f.entry_point, format!("entry_point {e}")))?;
        if !entry_point.ends_with(".py") {
            return Err(r.reject(
                &f.entry_point,
                format!("entry_point {entry_point:?} must be a Python file (.py)"),
            ));
        }
        Ok((
            ModelKind::Framework(ScriptMode {
                framework,
                version: f.version.get_ref().clone(),
                entry_point,
                entry_point_line: r.line(&f.entry_point),
                source_dir,
                source_dir_line: f.source_dir.as_ref().and_then(|s| r.line(s)),
            }),
            images,
        ))
    }

    /// Network isolation: on by default for built-in algorithms and containers; the admin can require it.
    fn network_isolation(
        &self,
        raw: &Option<Spanned<bool>>,
        kind: &ModelKind,
    ) -> Result<bool, Rejection> {
        let (r, policy) = (self, self.policy);
        let default_isolation = !matches!(kind, ModelKind::Framework(_));
        Ok(match raw {
            Some(n) if !*n.get_ref() && policy.require_network_isolation => {
                return Err(r.reject(
                n,
                "network_isolation = false is not allowed: the administrator requires network isolation (STUDIO_OPS_REQUIRE_NETWORK_ISOLATION)",
            ));
            }
            Some(n) => *n.get_ref(),
            None => default_isolation || policy.require_network_isolation,
        })
    }

    /// Managed spot training, unless `enabled = false`: the wait bound and checkpoints.
    fn spot(
        &self,
        raw: &Option<Spanned<RawSpot>>,
        resources: &Resources,
    ) -> Result<Option<Spot>, Rejection> {
        let (r, policy) = (self, self.policy);
        let max_runtime_minutes = resources.max_runtime_seconds / 60;
        Ok(match raw {
            Some(s) if s.get_ref().enabled.as_ref().is_none_or(|e| *e.get_ref()) => {
                let s = s.get_ref();
                let max_wait = match &s.max_wait_minutes {
                    Some(w) => {
                        let minutes = in_range(
                            r,
                            w,
                            "spot max_wait_minutes",
                            i64::from(max_runtime_minutes)
                                ..=i64::from(policy.max_wait_seconds / 60),
                            "STUDIO_OPS_MAX_WAIT_SECONDS; it must also be at least max_runtime_minutes",
                        )?;
                        minutes * 60
                    }
                    None => (resources.max_runtime_seconds * 2)
                        .min(policy.max_wait_seconds)
                        .max(resources.max_runtime_seconds),
                };
                Some(Spot {
                    max_wait_seconds: max_wait,
                    checkpoints: s.checkpoints.as_ref().is_none_or(|c| *c.get_ref()),
                })
            }
            _ => None,
        })
    }

    /// Hyperparameter names and values within SageMaker's bounds; script mode's own names are reserved.
    fn hyperparameters(
        &self,
        raw: &BTreeMap<Spanned<String>, Spanned<HyperValue>>,
        kind: &ModelKind,
    ) -> Result<BTreeMap<String, HyperValue>, Rejection> {
        let r = self;
        if raw.len() > MAX_HYPERPARAMETERS {
            return Err(Rejection::new(
                raw.keys().next().and_then(|k| r.line(k)),
                format!("at most {MAX_HYPERPARAMETERS} hyperparameters"),
            ));
        }
        let script_mode = matches!(kind, ModelKind::Framework(_));
        let mut hyperparameters = BTreeMap::new();
        for (k, v) in raw {
            let key = k.get_ref();
            if key.is_empty() || key.len() > MAX_HYPERPARAMETER_KEY || has_control(key) {
                return Err(r.reject(
                k,
                format!("hyperparameter names must be 1 to {MAX_HYPERPARAMETER_KEY} printable characters"),
            ));
            }
            if script_mode
                && (key.starts_with("sagemaker_")
                    || RESERVED_FRAMEWORK_HYPERPARAMETERS.contains(&key.as_str()))
            {
                return Err(r.reject(
                    k,
                    format!(
                        "hyperparameter `{key}` is reserved: studio-ops sets it for script mode"
                    ),
                ));
            }
            let value = v.get_ref().clone();
            let encoded = if script_mode {
                value.json()
            } else {
                value.plain()
            };
            if encoded.chars().count() > MAX_HYPERPARAMETER_VALUE || has_control(&encoded) {
                return Err(r.reject(
                v,
                format!("hyperparameter `{key}` must be at most {MAX_HYPERPARAMETER_VALUE} printable characters"),
            ));
            }
            hyperparameters.insert(key.clone(), value);
        }
        if let ModelKind::Algorithm {
            algorithm: Algorithm::Xgboost,
            ..
        } = &kind
            && !hyperparameters.contains_key("num_round")
        {
            return Err(Rejection::new(
                None,
                "xgboost needs the hyperparameter num_round (the number of boosting rounds) in [hyperparameters]",
            ));
        }

        Ok(hyperparameters)
    }

    /// The input channels: names, S3 locations inside the allowed data prefixes, and what the algorithm needs.
    fn channels(
        &self,
        raw: &Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawChannel>>>>,
        kind: &ModelKind,
        network_isolation: bool,
    ) -> Result<Vec<Channel>, Rejection> {
        let r = self;
        let script_mode = matches!(kind, ModelKind::Framework(_));
        let Some(channel_table) = raw else {
            return Err(Rejection::new(
                None,
                "add at least one input channel, e.g. [channels.train] with s3_uri = \"s3://...\"",
            ));
        };
        if channel_table.get_ref().is_empty() || channel_table.get_ref().len() > MAX_CHANNELS {
            return Err(r.reject(
                channel_table,
                format!("give 1 to {MAX_CHANNELS} input channels"),
            ));
        }
        // A network-isolated script-mode job receives its source on the `code` channel.
        let reserved_code = script_mode && network_isolation;
        let channels = channel_table
            .get_ref()
            .iter()
            .map(|(name, ch)| r.channel(name, ch, reserved_code))
            .collect::<Result<Vec<_>, _>>()?;
        r.required_channels(channel_table, &channels, kind)?;
        Ok(channels)
    }

    /// One input channel: its name, an S3 location inside the allowed data prefixes, and its read settings.
    fn channel(
        &self,
        name: &Spanned<String>,
        ch: &Spanned<RawChannel>,
        reserved_code: bool,
    ) -> Result<Channel, Rejection> {
        let (r, policy) = (self, self.policy);
        let n = name.get_ref();
        let name_ok = !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !name_ok {
            return Err(r.reject(
                name,
                format!("channel name {n:?} must be 1 to 64 letters, digits, `.`, `-` or `_`"),
            ));
        }
        if reserved_code && n == CODE_CHANNEL {
            return Err(r.reject(
            name,
            "channel name `code` is reserved: it carries the packaged source in a network-isolated job",
        ));
        }
        let c = ch.get_ref();
        let s3_uri = S3Location::parse(c.s3_uri.get_ref())
            .map_err(|e| r.reject(&c.s3_uri, format!("channel `{n}`: {e}")))?;
        if !policy.data_prefixes.iter().any(|p| s3_uri.is_within(p)) {
            return Err(r.reject(
                &c.s3_uri,
                format!(
                    "channel `{n}` reads {s3_uri}, outside the allowed data location ({})",
                    policy
                        .data_prefixes
                        .iter()
                        .map(|p| p.as_prefix().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let content_type = match &c.content_type {
            Some(t) => {
                let ok = t.get_ref().len() <= 256
                    && t.get_ref().contains('/')
                    && !has_control(t.get_ref())
                    && t.get_ref().is_ascii();
                if !ok {
                    return Err(r.reject(
                        t,
                        format!("channel `{n}`: content_type must be a MIME type like text/csv"),
                    ));
                }
                Some(t.get_ref().clone())
            }
            None => None,
        };
        let input_mode = match &c.input_mode {
            Some(m) => Some(one_of(r, m, "input_mode", &["File", "FastFile", "Pipe"])?.to_string()),
            None => None,
        };
        let distribution = match &c.distribution {
            Some(d) => one_of(r, d, "distribution", &["FullyReplicated", "ShardedByS3Key"])?,
            None => "FullyReplicated",
        };
        let compression = match &c.compression {
            Some(d) => one_of(r, d, "compression", &["None", "Gzip"])?,
            None => "None",
        };
        Ok(Channel {
            name: n.clone(),
            s3_uri,
            content_type,
            input_mode,
            distribution: distribution.to_string(),
            compression: compression.to_string(),
        })
    }

    /// The channels a built-in algorithm cannot train without.
    fn required_channels(
        &self,
        table: &Spanned<BTreeMap<Spanned<String>, Spanned<RawChannel>>>,
        channels: &[Channel],
        kind: &ModelKind,
    ) -> Result<(), Rejection> {
        let r = self;
        let channel_table = table;
        if let ModelKind::Algorithm { algorithm, .. } = kind {
            let required: &[&str] = match algorithm {
                Algorithm::Xgboost => &["train"],
                Algorithm::Seq2seq => &["train", "validation", "vocab"],
            };
            for need in required {
                if !channels.iter().any(|c| c.name == *need) {
                    return Err(r.reject(
                        channel_table,
                        format!(
                            "{} needs the channel{} {} ([channels.{need}] is missing)",
                            algorithm.name(),
                            if required.len() > 1 { "s" } else { "" },
                            required.join(", ")
                        ),
                    ));
                }
            }
        }

        Ok(())
    }

    /// Metric definitions (built-in algorithms publish their own).
    fn metrics(
        &self,
        raw: &Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
        kind: &ModelKind,
    ) -> Result<Vec<MetricDefinition>, Rejection> {
        let r = self;
        let mut metrics = Vec::new();
        if let Some(m) = raw {
            if matches!(kind, ModelKind::Algorithm { .. }) {
                return Err(r.reject(
                m,
                "built-in algorithms publish their own metrics (e.g. validation:auc); remove [metrics]",
            ));
            }
            if m.get_ref().len() > MAX_METRICS {
                return Err(r.reject(m, format!("at most {MAX_METRICS} metric definitions")));
            }
            for (name, regex) in m.get_ref() {
                let n = name.get_ref();
                if n.is_empty() || n.len() > 255 || has_control(n) {
                    return Err(
                        r.reject(name, "metric names must be 1 to 255 printable characters")
                    );
                }
                let rx = regex.get_ref();
                if rx.is_empty() || rx.len() > MAX_METRIC_REGEX || has_control(rx) {
                    return Err(r.reject(
                    regex,
                    format!("metric `{n}`: the regex must be 1 to {MAX_METRIC_REGEX} printable characters"),
                ));
                }
                metrics.push(MetricDefinition {
                    name: n.clone(),
                    regex: rx.clone(),
                });
            }
        }

        Ok(metrics)
    }

    /// The experiment the runs go to, if the manifest names one.
    fn experiment(
        &self,
        raw: &Option<Spanned<RawExperiment>>,
    ) -> Result<Option<String>, Rejection> {
        let r = self;
        Ok(match raw {
            Some(e) => {
                let name = e.get_ref().name.get_ref();
                if !naming::is_entity_name(name, MAX_EXPERIMENT_NAME) {
                    return Err(r.reject(
                    &e.get_ref().name,
                    format!(
                        "experiment name {name:?} must be letters, digits and hyphens (at most {MAX_EXPERIMENT_NAME}), starting and ending with a letter or digit"
                    ),
                ));
                }
                Some(name.clone())
            }
            None => None,
        })
    }

    /// What the Model Registry is told the endpoint accepts and answers, with the kind's defaults.
    fn registry(
        &self,
        raw: &Option<Spanned<RawRegistry>>,
        kind: &ModelKind,
    ) -> Result<RegistrySettings, Rejection> {
        let r = self;
        let (default_in, default_out): (&[&str], &[&str]) = match kind {
            ModelKind::Algorithm {
                algorithm: Algorithm::Xgboost,
                ..
            } => (&["text/csv", "text/libsvm"], &["text/csv"]),
            _ => (&["application/json"], &["application/json"]),
        };
        Ok(match raw {
            Some(reg) => {
                let g = reg.get_ref();
                RegistrySettings {
                    content_types: content_types(r, &g.content_types, "content_types", default_in)?,
                    response_types: content_types(
                        r,
                        &g.response_types,
                        "response_types",
                        default_out,
                    )?,
                }
            }
            None => RegistrySettings {
                content_types: default_in.iter().map(|s| s.to_string()).collect(),
                response_types: default_out.iter().map(|s| s.to_string()).collect(),
            },
        })
    }
}

fn allowed_image(r: &Reader<'_>, value: &Spanned<String>) -> Result<String, Rejection> {
    let image = EcrImage::parse(value.get_ref()).map_err(|e| r.reject(value, e))?;
    if image.reference == images::ImageReference::Tag("latest".into()) {
        return Err(r.reject(
            value,
            "the tag `latest` moves; pin a version tag or a digest so the run can be reproduced",
        ));
    }
    if image.region != r.policy.region {
        return Err(r.reject(
            value,
            format!(
                "image {} is in {}, but training runs in {}",
                image, image.region, r.policy.region
            ),
        ));
    }
    let repo = image.repository_uri();
    if !r.policy.image_repositories.contains(&repo) {
        return Err(r.reject(
            value,
            format!(
                "image repository {repo} is not allowed; allowed: {}",
                if r.policy.image_repositories.is_empty() {
                    "none (ask an administrator to add it to STUDIO_OPS_ALLOWED_IMAGE_REPOSITORIES)"
                        .to_string()
                } else {
                    r.policy.image_repositories.join(", ")
                }
            ),
        ));
    }
    Ok(image.to_string())
}

#[cfg(test)]
mod tests;
