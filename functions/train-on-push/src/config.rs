//! train-on-push settings, read once at cold start: the repository and which pushes count, where and how
//! jobs run (role, VPC, keys, output — never from a manifest), and the allow-lists and caps manifests are
//! held to.

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

use studio_ops_shared::prices::{self, Component, PriceTable};

use crate::changes::NewBranchPolicy;
use crate::cost::{
    CostGuard, MAX_JOB_COST_USD, MAX_PUSH_COST_USD, UNKNOWN_TRAINING_PRICE, UnknownPrice,
};
use crate::images::EcrImage;
use crate::manifest::{Limits, Policy};
use crate::paths::{self, S3Location};
use crate::plan::{Deployment, Tracking};

pub const REPOSITORY_NAME: &str = "STUDIO_OPS_REPOSITORY_NAME";
pub const BRANCH_PATTERNS: &str = "STUDIO_OPS_BRANCH_PATTERNS";
pub const NEW_BRANCH_POLICY: &str = "STUDIO_OPS_NEW_BRANCH_POLICY";
/// The protected branch: a pull request merged into it approves the model versions it trained (empty: off).
pub const APPROVE_ON_MERGE_INTO: &str = "STUDIO_OPS_APPROVE_ON_MERGE_INTO";
/// The Studio users' shared execution role: a merge made with it is recorded as "a Studio user".
pub const USERS_ROLE_ARN: &str = "STUDIO_OPS_USERS_ROLE_ARN";
pub const MODELS_ROOT: &str = "STUDIO_OPS_MODELS_ROOT";
pub const MAX_JOBS_PER_PUSH: &str = "STUDIO_OPS_MAX_JOBS_PER_PUSH";
pub const TRAINING_ROLE_ARN: &str = "STUDIO_OPS_TRAINING_ROLE_ARN";
pub const TRAINING_SUBNET_IDS: &str = "STUDIO_OPS_TRAINING_SUBNET_IDS";
pub const TRAINING_SECURITY_GROUP_IDS: &str = "STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS";
pub const OUTPUT_S3_URI: &str = "STUDIO_OPS_OUTPUT_S3_URI";
pub const CODE_S3_URI: &str = "STUDIO_OPS_CODE_S3_URI";
pub const OUTPUT_KMS_KEY_ID: &str = "STUDIO_OPS_OUTPUT_KMS_KEY_ID";
pub const VOLUME_KMS_KEY_ID: &str = "STUDIO_OPS_VOLUME_KMS_KEY_ID";
pub const DATA_S3_URIS: &str = "STUDIO_OPS_DATA_S3_URIS";
pub const ALLOWED_INSTANCE_TYPES: &str = "STUDIO_OPS_ALLOWED_INSTANCE_TYPES";
pub const ALLOWED_IMAGE_REPOSITORIES: &str = "STUDIO_OPS_ALLOWED_IMAGE_REPOSITORIES";
pub const MAX_INSTANCE_COUNT: &str = "STUDIO_OPS_MAX_INSTANCE_COUNT";
pub const MAX_VOLUME_GB: &str = "STUDIO_OPS_MAX_VOLUME_GB";
pub const MAX_RUNTIME_SECONDS: &str = "STUDIO_OPS_MAX_RUNTIME_SECONDS";
pub const MAX_WAIT_SECONDS: &str = "STUDIO_OPS_MAX_WAIT_SECONDS";
pub const REQUIRE_NETWORK_ISOLATION: &str = "STUDIO_OPS_REQUIRE_NETWORK_ISOLATION";
pub const MANIFEST_MAX_BYTES: &str = "STUDIO_OPS_MANIFEST_MAX_BYTES";
pub const MANIFEST_MAX_DEPTH: &str = "STUDIO_OPS_MANIFEST_MAX_DEPTH";
pub const SOURCE_MAX_FILES: &str = "STUDIO_OPS_SOURCE_MAX_FILES";
pub const SOURCE_MAX_BYTES: &str = "STUDIO_OPS_SOURCE_MAX_BYTES";
/// The suite's spend table and the Studio domain a finished job's spend is recorded under.
pub const SPEND_TABLE: &str = "STUDIO_OPS_SPEND_TABLE";
pub const DOMAIN_ID: &str = "STUDIO_OPS_DOMAIN_ID";
/// auto (MLflow when a tracking server is set, else classic), mlflow or classic.
pub const EXPERIMENT_TRACKING: &str = "STUDIO_OPS_EXPERIMENT_TRACKING";
pub const MLFLOW_TRACKING_SERVER_ARN: &str = "STUDIO_OPS_MLFLOW_TRACKING_SERVER_ARN";
/// The MLflow REST endpoint: the regional one (the template sets it), or the local world's MLflow server.
pub const MLFLOW_ENDPOINT: &str = "STUDIO_OPS_MLFLOW_ENDPOINT";
/// The tracking server's UI address, for links to runs in alerts and model packages.
pub const MLFLOW_UI_URL: &str = "STUDIO_OPS_MLFLOW_UI_URL";
/// JSON object of instance type → USD per hour that replaces or extends the compiled-in training price table.
pub const TRAINING_PRICES: &str = "STUDIO_OPS_TRAINING_PRICES_USD_PER_HOUR";

/// Instance types allowed when `STUDIO_OPS_ALLOWED_INSTANCE_TYPES` is not set.
pub const DEFAULT_INSTANCE_TYPES: &[&str] = &[
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m5.2xlarge",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.g4dn.xlarge",
    "ml.g5.xlarge",
    "ml.p3.2xlarge",
];

/// Bounds on the script-mode source folder that is packaged into S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    pub max_files: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
    pub repository_name: String,
    pub branch_patterns: Vec<String>,
    pub new_branch_policy: NewBranchPolicy,
    /// The folder whose sub-folders are models ("" = the repository root).
    pub models_root: String,
    pub max_jobs_per_push: usize,
    pub deployment: Deployment,
    pub policy: Policy,
    pub source_limits: SourceLimits,
    pub cost_guard: CostGuard,
    /// The MLflow tracking server runs are recorded in; None: classic Experiments.
    pub mlflow: Option<MlflowSettings>,
    /// Where finished jobs' spend is recorded; None: it is not.
    pub spend: Option<SpendSettings>,
    /// Merge-to-approve: the protected branch, and the users' role name; None: off.
    pub merge_to_approve: Option<MergeToApprove>,
}

/// Merge-to-approve (docs/train-on-push.md): which branch's merges approve, and whose role is the Studio users'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeToApprove {
    pub protected_branch: String,
    /// The name of the Studio users' shared execution role, when known.
    pub users_role: Option<String>,
}

fn merge_to_approve(env: &Env<'_>) -> Result<Option<MergeToApprove>, ConfigError> {
    let Some(branch) = env.optional(APPROVE_ON_MERGE_INTO) else {
        return Ok(None);
    };
    let branch = branch.trim().trim_start_matches("refs/heads/").to_string();
    let valid = !branch.is_empty()
        && !branch.contains(['*', '?', ' ', '~', '^', ':', '\\'])
        && !branch.starts_with('/')
        && !branch.ends_with('/');
    if !valid {
        return Err(malformed(
            APPROVE_ON_MERGE_INTO,
            "one branch name (no patterns), e.g. main",
            branch,
        ));
    }
    let users_role = match env.optional(USERS_ROLE_ARN) {
        None => None,
        Some(arn) => Some(
            studio_ops_shared::names::Arn::parse(&arn)
                .and_then(|a| {
                    a.resource
                        .strip_prefix("role/")
                        .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
                })
                .ok_or_else(|| malformed(USERS_ROLE_ARN, "an IAM role ARN", arn.clone()))?,
        ),
    };
    Ok(Some(MergeToApprove {
        protected_branch: branch,
        users_role,
    }))
}

/// The suite's spend ledger and the domain its records belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendSettings {
    pub table: String,
    pub domain_id: String,
}

/// Where and how the MLflow REST API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowSettings {
    pub server_arn: String,
    /// `https://<region>.experiments.sagemaker.aws`, or the override.
    pub endpoint: String,
    /// The tracking server's UI address (`TrackingServerUrl`), for links to runs; None: no links.
    pub ui_url: Option<String>,
}

/// Which experiment tracking the jobs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackingChoice {
    /// MLflow when a tracking server is configured, else classic.
    Auto,
    Mlflow,
    Classic,
}

impl std::str::FromStr for TrackingChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "mlflow" => Ok(Self::Mlflow),
            "classic" => Ok(Self::Classic),
            other => Err(format!("{other:?} is not auto, mlflow or classic")),
        }
    }
}

/// The spend ledger, when both its table and the domain are set.
fn spend_settings(env: &Env<'_>) -> Result<Option<SpendSettings>, ConfigError> {
    match (env.optional(SPEND_TABLE), env.optional(DOMAIN_ID)) {
        (Some(table), Some(domain_id)) => {
            if !studio_ops_shared::names::is_domain_id(&domain_id) {
                return Err(malformed(
                    DOMAIN_ID,
                    "a SageMaker domain id (d-...)",
                    domain_id,
                ));
            }
            Ok(Some(SpendSettings { table, domain_id }))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Missing {
            var: DOMAIN_ID.to_string(),
            expected: format!("the Studio domain the spend belongs to (with {SPEND_TABLE})"),
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            var: SPEND_TABLE.to_string(),
            expected: format!("the suite's spend table (with {DOMAIN_ID})"),
        }),
    }
}

/// Whether `arn` names a SageMaker managed MLflow tracking server in `region`.
fn is_tracking_server_arn(arn: &str, region: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "sagemaker", r, account, resource]
        if partition.starts_with("aws")
            && *r == region
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource
                .strip_prefix("mlflow-tracking-server/")
                .is_some_and(|name| crate::naming::is_entity_name(name, 256)))
}

/// An endpoint override: HTTPS anywhere, plain HTTP only on loopback (the local world).
fn is_allowed_endpoint(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    url.strip_prefix("http://").is_some_and(|rest| {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        host == "127.0.0.1" || host == "localhost"
    })
}

fn mlflow_settings(env: &Env<'_>, region: &str) -> Result<Option<MlflowSettings>, ConfigError> {
    let choice = env.parsed_or(
        EXPERIMENT_TRACKING,
        "auto, mlflow or classic",
        TrackingChoice::Auto,
    )?;
    let arn = env.optional(MLFLOW_TRACKING_SERVER_ARN);
    let arn = match (choice, arn) {
        (TrackingChoice::Classic, _) | (TrackingChoice::Auto, None) => return Ok(None),
        (TrackingChoice::Mlflow, None) => {
            return Err(ConfigError::Missing {
                var: MLFLOW_TRACKING_SERVER_ARN.to_string(),
                expected: format!("the tracking server's ARN ({EXPERIMENT_TRACKING}=mlflow)"),
            });
        }
        (_, Some(arn)) => arn,
    };
    if !is_tracking_server_arn(&arn, region) {
        return Err(malformed(
            MLFLOW_TRACKING_SERVER_ARN,
            &format!("arn:aws:sagemaker:{region}:<account>:mlflow-tracking-server/<name>"),
            arn,
        ));
    }
    let endpoint = match env.optional(MLFLOW_ENDPOINT) {
        None => crate::adapters::mlflow::regional_endpoint(region),
        Some(url) if is_allowed_endpoint(&url) => url,
        Some(url) => {
            return Err(malformed(
                MLFLOW_ENDPOINT,
                "an https:// URL (http:// only on loopback)",
                url,
            ));
        }
    };
    let ui_url = match env.optional(MLFLOW_UI_URL) {
        None => None,
        Some(url) if is_allowed_endpoint(&url) => Some(url.trim_end_matches('/').to_string()),
        Some(url) => {
            return Err(malformed(
                MLFLOW_UI_URL,
                "the tracking server's https:// URL",
                url,
            ));
        }
    };
    Ok(Some(MlflowSettings {
        server_arn: arn,
        endpoint,
        ui_url,
    }))
}

fn malformed(var: &str, expected: &str, found: impl Into<String>) -> ConfigError {
    ConfigError::Malformed {
        var: var.to_string(),
        expected: expected.to_string(),
        found: found.into(),
    }
}

fn id_list(
    env: &Env<'_>,
    var: &'static str,
    prefix: &str,
    max: usize,
) -> Result<Vec<String>, ConfigError> {
    let expected = format!("a comma-separated list of 1 to {max} {prefix}… ids");
    let items = env.list(var);
    if items.is_empty() {
        return Err(ConfigError::Missing {
            var: var.to_string(),
            expected,
        });
    }
    if items.len() > max {
        return Err(malformed(var, &expected, items.join(",")));
    }
    for i in &items {
        let ok = i
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(malformed(var, &expected, i.clone()));
        }
    }
    Ok(items)
}

fn s3(var: &'static str, text: &str) -> Result<S3Location, ConfigError> {
    S3Location::parse(text).map_err(|e| malformed(var, &format!("an s3:// URI ({e})"), text))
}

impl Config {
    /// Reads the configuration; `region` is the region the function (and so every job) runs in.
    pub fn from_env(env: &Env<'_>, region: &str) -> Result<Self, ConfigError> {
        let suite = SuiteConfig::from_env(env)?;
        let repository_name = env.string(
            REPOSITORY_NAME,
            "the CodeCommit repository of the team's models",
        )?;

        let mut branch_patterns = env.list(BRANCH_PATTERNS);
        if branch_patterns.is_empty() {
            branch_patterns.push("main".to_string());
        }
        let new_branch_policy =
            env.parsed_or(NEW_BRANCH_POLICY, "all or none", NewBranchPolicy::None)?;
        let models_root = match env.optional(MODELS_ROOT) {
            None => "models".to_string(),
            Some(root) if root == "/" => String::new(),
            Some(root) => paths::relative_path(root.trim_matches('/')).map_err(|e| {
                malformed(MODELS_ROOT, &format!("a folder path ({e})"), root.clone())
            })?,
        };
        let max_jobs_per_push = env.number_in(MAX_JOBS_PER_PUSH, 1..=100, 10)?;

        let role_arn = env.string(
            TRAINING_ROLE_ARN,
            "the ARN of the SageMaker execution role for training jobs",
        )?;
        let role_ok = role_arn.starts_with("arn:aws")
            && role_arn.contains(":iam::")
            && role_arn.contains(":role/");
        if !role_ok {
            return Err(malformed(
                TRAINING_ROLE_ARN,
                "an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                role_arn,
            ));
        }
        let subnets = id_list(env, TRAINING_SUBNET_IDS, "subnet-", 16)?;
        let security_groups = id_list(env, TRAINING_SECURITY_GROUP_IDS, "sg-", 5)?;
        let output_text = env.string(
            OUTPUT_S3_URI,
            "the s3:// location where models, source and checkpoints are written",
        )?;
        let output = s3(OUTPUT_S3_URI, &output_text)?;
        let code_text = env.string(
            CODE_S3_URI,
            "the s3:// location where script-mode source archives are uploaded",
        )?;
        let code = s3(CODE_S3_URI, &code_text)?;
        let key = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match env.optional(var) {
                Some(k) if k.len() > 2048 || k.chars().any(char::is_whitespace) => {
                    Err(malformed(var, "a KMS key id, key ARN or alias", k))
                }
                other => Ok(other),
            }
        };
        let deployment = Deployment {
            region: region.to_string(),
            role_arn,
            subnets,
            security_groups,
            output,
            code,
            output_kms_key: key(OUTPUT_KMS_KEY_ID)?,
            volume_kms_key: key(VOLUME_KMS_KEY_ID)?,
            tracking: Tracking::Classic,
        };
        let mlflow = mlflow_settings(env, region)?;
        let mut deployment = deployment;
        if let Some(m) = &mlflow {
            deployment.tracking = Tracking::Mlflow {
                server_arn: m.server_arn.clone(),
            };
        }

        let data_texts = env.list(DATA_S3_URIS);
        if data_texts.is_empty() {
            return Err(ConfigError::Missing {
                var: DATA_S3_URIS.to_string(),
                expected: "a comma-separated list of s3:// locations input channels may read"
                    .to_string(),
            });
        }
        let data_prefixes = data_texts
            .iter()
            .map(|t| s3(DATA_S3_URIS, t))
            .collect::<Result<Vec<_>, _>>()?;

        let mut instance_types = env.list(ALLOWED_INSTANCE_TYPES);
        if instance_types.is_empty() {
            instance_types = DEFAULT_INSTANCE_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        if let Some(bad) = instance_types.iter().find(|t| !t.starts_with("ml.")) {
            return Err(malformed(
                ALLOWED_INSTANCE_TYPES,
                "SageMaker instance types like ml.m5.xlarge",
                bad.clone(),
            ));
        }
        let image_repositories = env.list(ALLOWED_IMAGE_REPOSITORIES);
        for repo in &image_repositories {
            let ok =
                EcrImage::parse(&format!("{repo}:x")).is_ok_and(|i| i.repository_uri() == *repo);
            if !ok {
                return Err(malformed(
                    ALLOWED_IMAGE_REPOSITORIES,
                    "ECR repositories like 123456789012.dkr.ecr.us-east-1.amazonaws.com/arima (no tag)",
                    repo.clone(),
                ));
            }
        }

        let max_runtime_seconds = env.number_in(MAX_RUNTIME_SECONDS, 60..=2_419_200, 86_400)?;
        let max_wait_seconds = env.number_in(MAX_WAIT_SECONDS, 60..=2_419_200, 172_800)?;
        if max_wait_seconds < max_runtime_seconds {
            return Err(malformed(
                MAX_WAIT_SECONDS,
                &format!("at least {MAX_RUNTIME_SECONDS} ({max_runtime_seconds})"),
                max_wait_seconds.to_string(),
            ));
        }
        let policy = Policy {
            region: region.to_string(),
            instance_types,
            image_repositories,
            data_prefixes,
            max_instance_count: env.number_in(MAX_INSTANCE_COUNT, 1..=100, 4)?,
            max_volume_gb: env.number_in(MAX_VOLUME_GB, 1..=16_384, 100)?,
            max_runtime_seconds,
            max_wait_seconds,
            require_network_isolation: env.flag(REQUIRE_NETWORK_ISOLATION, false)?,
            limits: Limits {
                max_bytes: env.number_in(MANIFEST_MAX_BYTES, 256..=1_048_576, 65_536)?,
                max_depth: env.number_in(MANIFEST_MAX_DEPTH, 2..=32, 4)?,
            },
        };
        let source_limits = SourceLimits {
            max_files: env.number_in(SOURCE_MAX_FILES, 1..=10_000, 500)?,
            max_bytes: env.number_in(SOURCE_MAX_BYTES, 1024..=104_857_600, 20_971_520)?,
        };
        let cost_guard = CostGuard {
            max_job_usd: f64::from(env.number_in(MAX_JOB_COST_USD, 1..=1_000_000u32, 100)?),
            max_push_usd: f64::from(env.number_in(MAX_PUSH_COST_USD, 1..=1_000_000u32, 250)?),
            unknown_price: env.parsed_or(
                UNKNOWN_TRAINING_PRICE,
                "refuse or allow",
                UnknownPrice::Refuse,
            )?,
            prices: PriceTable::for_region(
                Component::Training,
                region,
                &prices::overrides_from_env(env, TRAINING_PRICES)?,
            )
            .map_err(|e| {
                malformed(
                    TRAINING_PRICES,
                    "a valid compiled-in price table",
                    e.to_string(),
                )
            })?,
        };
        Ok(Self {
            suite,
            repository_name,
            branch_patterns,
            new_branch_policy,
            models_root,
            max_jobs_per_push,
            deployment,
            policy,
            source_limits,
            cost_guard,
            mlflow,
            spend: spend_settings(env)?,
            merge_to_approve: merge_to_approve(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        [
            ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
            ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
            (REPOSITORY_NAME, "sagemaker-repository"),
            (
                TRAINING_ROLE_ARN,
                "arn:aws:iam::123456789012:role/studio-ops-training",
            ),
            (
                TRAINING_SUBNET_IDS,
                "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
            ),
            (TRAINING_SECURITY_GROUP_IDS, "sg-0123456789abcdef0"),
            (OUTPUT_S3_URI, "s3://studio-ops-models/training"),
            (CODE_S3_URI, "s3://studio-ops-models/code/"),
            (DATA_S3_URIS, "s3://studio-ops-data/"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn defaults() {
        let vars = base();
        let c = Config::from_env(&Env::new(&vars), "us-east-1").unwrap();
        assert_eq!(c.branch_patterns, vec!["main"]);
        assert_eq!(c.new_branch_policy, NewBranchPolicy::None);
        assert_eq!(c.models_root, "models");
        assert_eq!(c.max_jobs_per_push, 10);
        assert_eq!(c.cost_guard.max_job_usd, 100.0);
        assert_eq!(c.cost_guard.max_push_usd, 250.0);
        assert_eq!(c.cost_guard.unknown_price, UnknownPrice::Refuse);
        assert_eq!(c.cost_guard.prices.hourly("ml.g5.xlarge"), Some(1.408));
        assert_eq!(c.mlflow, None);
        assert_eq!(c.spend, None);
        assert_eq!(c.deployment.tracking, Tracking::Classic);
        assert_eq!(c.policy.max_instance_count, 4);
        assert_eq!(c.policy.max_volume_gb, 100);
        assert_eq!(c.policy.max_runtime_seconds, 86_400);
        assert_eq!(
            c.policy.limits,
            Limits {
                max_bytes: 65_536,
                max_depth: 4
            }
        );
        assert_eq!(c.policy.instance_types.len(), DEFAULT_INSTANCE_TYPES.len());
        assert!(c.policy.image_repositories.is_empty());
        assert!(!c.policy.require_network_isolation);
        assert_eq!(
            c.deployment.output.to_string(),
            "s3://studio-ops-models/training"
        );
        assert_eq!(c.deployment.output_kms_key, None);
    }

    #[test]
    fn required_and_malformed_settings_are_named() {
        let mut vars = base();
        vars.remove(TRAINING_ROLE_ARN);
        let err = Config::from_env(&Env::new(&vars), "us-east-1").unwrap_err();
        assert!(err.to_string().contains(TRAINING_ROLE_ARN), "{err}");

        for (var, value) in [
            (TRAINING_ROLE_ARN, "admin"),
            (TRAINING_SUBNET_IDS, "subnet-xyz"),
            (TRAINING_SECURITY_GROUP_IDS, "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6"),
            (OUTPUT_S3_URI, "https://bucket/x"),
            (DATA_S3_URIS, "s3://data/../x"),
            (
                ALLOWED_IMAGE_REPOSITORIES,
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/arima:1",
            ),
            (ALLOWED_INSTANCE_TYPES, "m5.xlarge"),
            (NEW_BRANCH_POLICY, "some"),
            (MODELS_ROOT, "../models"),
            (MAX_WAIT_SECONDS, "60"),
            (OUTPUT_KMS_KEY_ID, "key with spaces"),
            (MAX_JOB_COST_USD, "0"),
            (MAX_PUSH_COST_USD, "ten"),
            (UNKNOWN_TRAINING_PRICE, "guess"),
            (TRAINING_PRICES, r#"{"ml.g6.xlarge": -1}"#),
            (EXPERIMENT_TRACKING, "wandb"),
            (
                MLFLOW_TRACKING_SERVER_ARN,
                "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/x",
            ),
        ] {
            let mut vars = base();
            vars.insert(var, value);
            let err = Config::from_env(&Env::new(&vars), "us-east-1").unwrap_err();
            assert!(matches!(err, ConfigError::Malformed { .. }), "{var}: {err}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn mlflow_when_a_tracking_server_is_set_unless_classic_is_asked_for() {
        let arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/studio-ops";
        let mut vars = base();
        vars.insert(MLFLOW_TRACKING_SERVER_ARN, arn);
        let c = Config::from_env(&Env::new(&vars), "us-east-1").unwrap();
        let m = c.mlflow.unwrap();
        assert_eq!(m.endpoint, "https://us-east-1.experiments.sagemaker.aws");
        assert_eq!(
            c.deployment.tracking,
            Tracking::Mlflow {
                server_arn: arn.into()
            }
        );
        vars.insert(EXPERIMENT_TRACKING, "classic");
        let c = Config::from_env(&Env::new(&vars), "us-east-1").unwrap();
        assert_eq!((c.mlflow, c.deployment.tracking), (None, Tracking::Classic));
        // MLflow asked for without a server; an endpoint off loopback in plain HTTP.
        let mut vars = base();
        vars.insert(EXPERIMENT_TRACKING, "mlflow");
        let e = Config::from_env(&Env::new(&vars), "us-east-1").unwrap_err();
        assert!(e.to_string().contains(MLFLOW_TRACKING_SERVER_ARN), "{e}");
        vars.insert(MLFLOW_TRACKING_SERVER_ARN, arn);
        vars.insert(MLFLOW_ENDPOINT, "http://127.0.0.1:5000");
        assert!(Config::from_env(&Env::new(&vars), "us-east-1").is_ok());
        vars.insert(MLFLOW_ENDPOINT, "http://mlflow.example.com");
        let e = Config::from_env(&Env::new(&vars), "us-east-1").unwrap_err();
        assert!(e.to_string().contains(MLFLOW_ENDPOINT), "{e}");
    }

    #[test]
    fn the_spend_ledger_needs_its_table_and_a_domain() {
        let mut vars = base();
        vars.insert(SPEND_TABLE, "studio-ops-spend");
        let e = Config::from_env(&Env::new(&vars), "us-east-1").unwrap_err();
        assert!(e.to_string().contains(DOMAIN_ID), "{e}");
        vars.insert(DOMAIN_ID, "not-a-domain");
        let e = Config::from_env(&Env::new(&vars), "us-east-1").unwrap_err();
        assert!(e.to_string().contains(DOMAIN_ID), "{e}");
        vars.insert(DOMAIN_ID, "d-studioops0001");
        let c = Config::from_env(&Env::new(&vars), "us-east-1").unwrap();
        assert_eq!(c.spend.unwrap().domain_id, "d-studioops0001");
    }

    #[test]
    fn every_variable_is_one_the_template_sets() {
        let vars = base();
        let env = Env::new(&vars);
        Config::from_env(&env, "us-east-1").unwrap();
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/template.yaml"
        ))
        .unwrap();
        // Suite variables are set under Globals, the function's own under TrainOnPushFunction.
        for name in env.names_read() {
            assert!(
                template.contains(&format!("{name}:")),
                "{name} is read but not set in infra/template.yaml"
            );
        }
    }
}
