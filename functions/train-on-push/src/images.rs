//! Which container image a model trains and is served in: SageMaker's own images (XGBoost, Seq2Seq,
//! TensorFlow) resolved per region from a table derived from the SageMaker Python SDK, or the team's own
//! ECR image, accepted only from an allow-listed repository.

#[rustfmt::skip]
mod table;

use std::fmt;

/// One repository of SageMaker images and the ECR account that publishes it in each region.
#[derive(Debug)]
pub struct Registry {
    pub repository: &'static str,
    pub accounts: &'static [(&'static str, &'static str)],
}

/// One published version: its tag parts and, as a bit mask over the registry's `accounts`, where it exists.
#[derive(Debug)]
pub struct ImageVersion {
    pub version: &'static str,
    pub py_versions: &'static [&'static str],
    pub processors: &'static [&'static str],
    pub regions: u64,
}

/// The SageMaker built-in algorithms a manifest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Xgboost,
    Seq2seq,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::Xgboost, Algorithm::Seq2seq];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "xgboost" => Some(Algorithm::Xgboost),
            "seq2seq" => Some(Algorithm::Seq2seq),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Xgboost => "xgboost",
            Algorithm::Seq2seq => "seq2seq",
        }
    }

    /// The version used when a manifest names none.
    pub fn default_version(self) -> &'static str {
        match self {
            Algorithm::Xgboost => "1.7-1",
            Algorithm::Seq2seq => "1",
        }
    }

    /// Every version the table knows, newest last.
    pub fn versions(self) -> Vec<&'static str> {
        match self {
            Algorithm::Xgboost => table::XGBOOST_VERSIONS.iter().map(|v| v.version).collect(),
            Algorithm::Seq2seq => vec!["1"],
        }
    }
}

/// The script-mode frameworks a manifest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Tensorflow,
}

impl Framework {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "tensorflow" => Some(Framework::Tensorflow),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Framework::Tensorflow => "tensorflow",
        }
    }
}

/// Whether an instance type has a GPU (the TensorFlow images differ by processor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    Cpu,
    Gpu,
}

impl Processor {
    pub fn of_instance_type(instance_type: &str) -> Self {
        let family = instance_type
            .strip_prefix("ml.")
            .unwrap_or(instance_type)
            .split('.')
            .next()
            .unwrap_or_default();
        if family.starts_with('p') || family.starts_with('g') {
            Processor::Gpu
        } else {
            Processor::Cpu
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Processor::Cpu => "cpu",
            Processor::Gpu => "gpu",
        }
    }
}

/// The image a job trains in and the image its model is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub training: String,
    pub inference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("{what} version {version:?} is not available; known versions: {known}")]
    UnknownVersion {
        what: &'static str,
        version: String,
        known: String,
    },
    #[error("{what} {version} is not published in region {region}")]
    NotInRegion {
        what: &'static str,
        version: String,
        region: String,
    },
    #[error("{what} {version} has no Python {python:?}; available: {known}")]
    UnknownPython {
        what: &'static str,
        version: String,
        python: String,
        known: String,
    },
    #[error(
        "no TensorFlow Serving image matches TensorFlow {version} (needed to register the model)"
    )]
    NoInferenceImage { version: String },
}

fn ecr_domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

fn uri(account: &str, region: &str, repository: &str, tag: &str) -> String {
    format!(
        "{account}.dkr.ecr.{region}.{}/{repository}:{tag}",
        ecr_domain(region)
    )
}

/// The account publishing `version` of `registry` in `region`, if it is published there.
fn account_for(registry: &Registry, version: &ImageVersion, region: &str) -> Option<&'static str> {
    registry
        .accounts
        .iter()
        .enumerate()
        .find(|(_, (r, _))| *r == region)
        .filter(|(i, _)| *i < 64 && version.regions & (1u64 << i) != 0)
        .map(|(_, (_, account))| *account)
}

/// Resolves a built-in algorithm's image (training and inference use the same image).
pub fn builtin(algorithm: Algorithm, version: &str, region: &str) -> Result<Images, ImageError> {
    let what = algorithm.name();
    let image = match algorithm {
        Algorithm::Xgboost => {
            let v = table::XGBOOST_VERSIONS
                .iter()
                .find(|v| v.version == version)
                .ok_or_else(|| ImageError::UnknownVersion {
                    what,
                    version: version.to_string(),
                    known: algorithm.versions().join(", "),
                })?;
            let account = account_for(&table::SAGEMAKER_XGBOOST, v, region).ok_or_else(|| {
                ImageError::NotInRegion {
                    what,
                    version: version.to_string(),
                    region: region.to_string(),
                }
            })?;
            // Old versions carry `-cpu-py3` in their tag (`image_uris._format_tag`).
            let mut tag = v.version.to_string();
            for part in v
                .processors
                .first()
                .into_iter()
                .chain(v.py_versions.first())
            {
                tag.push('-');
                tag.push_str(part);
            }
            uri(account, region, table::SAGEMAKER_XGBOOST.repository, &tag)
        }
        Algorithm::Seq2seq => {
            if version != "1" {
                return Err(ImageError::UnknownVersion {
                    what,
                    version: version.to_string(),
                    known: "1".to_string(),
                });
            }
            let account = table::SEQ2SEQ
                .accounts
                .iter()
                .find(|(r, _)| *r == region)
                .map(|(_, a)| *a)
                .ok_or_else(|| ImageError::NotInRegion {
                    what,
                    version: version.to_string(),
                    region: region.to_string(),
                })?;
            uri(account, region, table::SEQ2SEQ.repository, "1")
        }
    };
    Ok(Images {
        training: image.clone(),
        inference: image,
    })
}

/// Every TensorFlow version a manifest may name (full versions and `major.minor` aliases).
pub fn tensorflow_versions() -> Vec<&'static str> {
    let mut v: Vec<&str> = table::TENSORFLOW_TRAINING_ALIASES
        .iter()
        .map(|(a, _)| *a)
        .collect();
    v.extend(
        table::TENSORFLOW_TRAINING_VERSIONS
            .iter()
            .map(|v| v.version),
    );
    v
}

fn find_version<'a>(
    versions: &'a [ImageVersion],
    aliases: &[(&str, &str)],
    version: &str,
) -> Option<&'a ImageVersion> {
    let full = aliases
        .iter()
        .find(|(a, _)| *a == version)
        .map_or(version, |(_, full)| *full);
    versions.iter().find(|v| v.version == full)
}

/// Resolves the TensorFlow training image (by processor and Python) and the TensorFlow Serving image the
/// trained model is registered with (same `major.minor`, CPU).
pub fn tensorflow(
    version: &str,
    python: Option<&str>,
    processor: Processor,
    region: &str,
) -> Result<Images, ImageError> {
    let what = "tensorflow";
    let training = find_version(
        table::TENSORFLOW_TRAINING_VERSIONS,
        table::TENSORFLOW_TRAINING_ALIASES,
        version,
    )
    .ok_or_else(|| ImageError::UnknownVersion {
        what,
        version: version.to_string(),
        known: tensorflow_versions().join(", "),
    })?;
    let py = match python {
        Some(p) if training.py_versions.contains(&p) => p,
        Some(p) => {
            return Err(ImageError::UnknownPython {
                what,
                version: training.version.to_string(),
                python: p.to_string(),
                known: training.py_versions.join(", "),
            });
        }
        None => training.py_versions.last().copied().unwrap_or("py3"),
    };
    let not_in_region = |v: &str| ImageError::NotInRegion {
        what,
        version: v.to_string(),
        region: region.to_string(),
    };
    let account = account_for(&table::TENSORFLOW_TRAINING, training, region)
        .ok_or_else(|| not_in_region(training.version))?;
    let major_minor: String = training
        .version
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let serving = find_version(
        table::TENSORFLOW_INFERENCE_VERSIONS,
        table::TENSORFLOW_INFERENCE_ALIASES,
        &major_minor,
    )
    .ok_or_else(|| ImageError::NoInferenceImage {
        version: training.version.to_string(),
    })?;
    let serving_account = account_for(&table::TENSORFLOW_INFERENCE, serving, region)
        .ok_or_else(|| not_in_region(serving.version))?;
    Ok(Images {
        training: uri(
            account,
            region,
            table::TENSORFLOW_TRAINING.repository,
            &format!("{}-{}-{py}", training.version, processor.tag()),
        ),
        inference: uri(
            serving_account,
            region,
            table::TENSORFLOW_INFERENCE.repository,
            &format!("{}-cpu", serving.version),
        ),
    })
}

/// An ECR image URI: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>(:<tag>|@sha256:<digest>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    pub reference: ImageReference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    Tag(String),
    Digest(String),
}

impl EcrImage {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?} is not an ECR image URI ({why})");
        let (host, rest) = text.split_once('/').ok_or_else(|| {
            bad("expected <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>")
        })?;
        let host_parts: Vec<&str> = host.split('.').collect();
        let (account, region) = match host_parts.as_slice() {
            [account, "dkr", "ecr", region, "amazonaws", "com"]
            | [account, "dkr", "ecr", region, "amazonaws", "com", "cn"] => (*account, *region),
            _ => {
                return Err(bad(
                    "the host must be <account>.dkr.ecr.<region>.amazonaws.com",
                ));
            }
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account must be 12 digits"));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("the region is malformed"));
        }
        let (repository, reference) = if let Some((repo, digest)) = rest.split_once("@sha256:") {
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("a digest must be sha256: and 64 hex digits"));
            }
            (repo, ImageReference::Digest(digest.to_ascii_lowercase()))
        } else if let Some((repo, tag)) = rest.rsplit_once(':') {
            let tag_ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !tag.starts_with(['.', '-']);
            if !tag_ok {
                return Err(bad("the tag is malformed"));
            }
            (repo, ImageReference::Tag(tag.to_string()))
        } else {
            return Err(bad("pin a tag or a digest"));
        };
        let repo_ok = !repository.is_empty()
            && repository.len() <= 256
            && repository.split('/').all(|seg| {
                !seg.is_empty()
                    && seg.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'_' | b'.' | b'-')
                    })
                    && seg.as_bytes()[0].is_ascii_alphanumeric()
            });
        if !repo_ok {
            return Err(bad("the repository name is malformed"));
        }
        Ok(EcrImage {
            account: account.to_string(),
            region: region.to_string(),
            repository: repository.to_string(),
            reference,
        })
    }

    /// `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`: what an allow-list entry names.
    pub fn repository_uri(&self) -> String {
        format!(
            "{}.dkr.ecr.{}.{}/{}",
            self.account,
            self.region,
            ecr_domain(&self.region),
            self.repository
        )
    }
}

impl fmt::Display for EcrImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            ImageReference::Tag(t) => write!(f, "{}:{t}", self.repository_uri()),
            ImageReference::Digest(d) => write!(f, "{}@sha256:{d}", self.repository_uri()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xgboost_per_region_matches_the_sdk() {
        let cases = [
            ("us-east-1", "683313688378"),
            ("us-east-2", "257758044811"),
            ("us-west-2", "246618743249"),
            ("eu-central-1", "492215442770"),
            ("eu-west-1", "141502667606"),
        ];
        for (region, account) in cases {
            let i = builtin(Algorithm::Xgboost, "1.7-1", region).unwrap();
            assert_eq!(
                i.training,
                format!("{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1")
            );
            assert_eq!(i.inference, i.training);
        }
        // Old versions carry processor and Python in the tag (the EventBridge doc's us-east-2 example).
        assert_eq!(
            builtin(Algorithm::Xgboost, "1.0-1", "us-east-2")
                .unwrap()
                .training,
            "257758044811.dkr.ecr.us-east-2.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"
        );
        assert_eq!(
            builtin(Algorithm::Xgboost, "1.7-1", "cn-north-1")
                .unwrap()
                .training,
            "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"
        );
    }

    #[test]
    fn seq2seq_per_region() {
        let cases = [
            ("us-east-1", "811284229777"),
            ("us-east-2", "825641698319"),
            ("us-west-2", "433757028032"),
            ("eu-central-1", "813361260812"),
            ("eu-west-1", "685385470294"),
        ];
        for (region, account) in cases {
            assert_eq!(
                builtin(Algorithm::Seq2seq, "1", region).unwrap().training,
                format!("{account}.dkr.ecr.{region}.amazonaws.com/seq2seq:1")
            );
        }
    }

    #[test]
    fn tensorflow_training_and_serving_images() {
        let i = tensorflow("2.9", None, Processor::Cpu, "us-west-2").unwrap();
        assert_eq!(
            i.training,
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:2.9.2-cpu-py39"
        );
        assert_eq!(
            i.inference,
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-inference:2.9.3-cpu"
        );
        let i = tensorflow("2.19.0", Some("py312"), Processor::Gpu, "eu-west-1").unwrap();
        assert_eq!(
            i.training,
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-training:2.19.0-gpu-py312"
        );
        let i = tensorflow("2.16", None, Processor::Cpu, "eu-central-1").unwrap();
        assert!(i.training.ends_with("tensorflow-training:2.16.2-cpu-py310"));
        assert!(i.inference.ends_with("tensorflow-inference:2.16.1-cpu"));
        // Regions outside the common account have their own.
        let i = tensorflow("2.16", None, Processor::Cpu, "ap-east-1").unwrap();
        assert!(i.training.starts_with("871362719292.dkr.ecr.ap-east-1."));
    }

    #[test]
    fn unknown_versions_pythons_and_regions_are_explained() {
        assert_eq!(
            builtin(Algorithm::Xgboost, "9.9", "us-east-1").unwrap_err(),
            ImageError::UnknownVersion {
                what: "xgboost",
                version: "9.9".into(),
                known: "0.90-1, 0.90-2, 1.0-1, 1.2-1, 1.2-2, 1.3-1, 1.5-1, 1.7-1, 3.0-5".into()
            }
        );
        assert!(matches!(
            builtin(Algorithm::Xgboost, "1.7-1", "mars-north-1"),
            Err(ImageError::NotInRegion { .. })
        ));
        assert!(matches!(
            tensorflow("2.16", Some("py27"), Processor::Cpu, "us-east-1"),
            Err(ImageError::UnknownPython { .. })
        ));
        // 2.13 and 2.14 exist in more regions than 2.16+ (the ISO regions): per-version masks matter.
        assert!(tensorflow("2.14", None, Processor::Cpu, "us-iso-east-1").is_ok());
        assert!(matches!(
            tensorflow("2.19", None, Processor::Cpu, "us-iso-east-1"),
            Err(ImageError::NotInRegion { .. })
        ));
        assert!(matches!(
            tensorflow("1.15", None, Processor::Cpu, "us-east-1"),
            Err(ImageError::UnknownVersion { .. })
        ));
    }

    #[test]
    fn processors() {
        assert_eq!(Processor::of_instance_type("ml.g5.xlarge"), Processor::Gpu);
        assert_eq!(Processor::of_instance_type("ml.p3.2xlarge"), Processor::Gpu);
        assert_eq!(Processor::of_instance_type("ml.m5.xlarge"), Processor::Cpu);
        assert_eq!(Processor::of_instance_type("ml.c5.2xlarge"), Processor::Cpu);
    }

    #[test]
    fn ecr_images() {
        let i = EcrImage::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/arima:1.4.0")
            .unwrap();
        assert_eq!(i.repository, "team/arima");
        assert_eq!(i.reference, ImageReference::Tag("1.4.0".into()));
        assert_eq!(
            i.repository_uri(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/arima"
        );
        let d = format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/arima@sha256:{}",
            "a".repeat(64)
        );
        assert_eq!(EcrImage::parse(&d).unwrap().to_string(), d);
        for bad in [
            "arima:1",
            "docker.io/library/python:3",
            "123.dkr.ecr.us-east-1.amazonaws.com/arima:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/arima",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/Arima:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/../arima:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.com/arima:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/arima@sha256:xyz",
        ] {
            assert!(EcrImage::parse(bad).is_err(), "{bad}");
        }
    }
}
