//! provision-users settings, read once at cold start; every variable is documented in docs/provision-users.md.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use studio_ops_shared::config::{ConfigError, Env, SuiteConfig};

use crate::brake::Brake;
use crate::naming::NameStyle;
use crate::settings::{GroupMap, IDLE_TIMEOUT_MINUTES, Origin, SettingsOverride};

pub const DOMAIN_ID: &str = "STUDIO_OPS_DOMAIN_ID";
pub const IDENTITY_STORE_ID: &str = "STUDIO_OPS_IDENTITY_STORE_ID";
pub const GROUP_IDS: &str = "STUDIO_OPS_PROVISION_GROUP_IDS";
pub const EXECUTION_ROLE_ARN: &str = "STUDIO_OPS_EXECUTION_ROLE_ARN";
pub const SECURITY_GROUP_IDS: &str = "STUDIO_OPS_SECURITY_GROUP_IDS";
pub const DEFAULT_INSTANCE_TYPE: &str = "STUDIO_OPS_DEFAULT_INSTANCE_TYPE";
pub const IDLE_TIMEOUT: &str = "STUDIO_OPS_IDLE_TIMEOUT_MINUTES";
pub const PRIVATE_SPACE: &str = "STUDIO_OPS_PRIVATE_SPACE";
pub const GROUP_SETTINGS: &str = "STUDIO_OPS_GROUP_SETTINGS";
/// The Studio instance types users may run (the stack's StudioInstanceTypes): a team shared space's default must
/// be one of them, or nobody could start it.
pub const STUDIO_INSTANCE_TYPES: &str = "STUDIO_OPS_STUDIO_INSTANCE_TYPES";
pub const PROFILE_NAME_STYLE: &str = "STUDIO_OPS_PROFILE_NAME_STYLE";
pub const MAX_SHARE: &str = "STUDIO_OPS_DEPROVISION_MAX_SHARE_PERCENT";
pub const MAX_COUNT: &str = "STUDIO_OPS_DEPROVISION_MAX_COUNT";
pub const GRACE: &str = "STUDIO_OPS_DEPROVISION_GRACE_SECONDS";
pub const APP_DELETE_WAIT: &str = "STUDIO_OPS_APP_DELETE_WAIT_SECONDS";
pub const CONCURRENCY: &str = "STUDIO_OPS_PROVISION_CONCURRENCY";
/// Client-side limit on calls per second to each SageMaker operation, steady and burst.
pub const SAGEMAKER_RATE: &str = "STUDIO_OPS_PROVISION_SAGEMAKER_CALLS_PER_SECOND";

#[derive(Debug, Clone)]
pub struct Config {
    pub suite: SuiteConfig,
    pub domain_id: String,
    pub identity_store_id: String,
    /// The configured groups in priority order, with their settings.
    pub groups: GroupMap,
    pub name_style: NameStyle,
    pub brake: Brake,
    /// Managed profiles younger than this are never deprovisioned.
    pub grace: Duration,
    /// How long a deprovision waits for apps and spaces to be gone before leaving it to the next run.
    pub app_delete_wait: Duration,
    /// AWS calls in flight at once.
    pub concurrency: usize,
    /// SageMaker calls per second (steady and burst), shared by every call of one invocation.
    pub sagemaker_calls_per_second: NonZeroU32,
}

fn optional_minutes(env: &Env<'_>) -> Result<Option<u32>, ConfigError> {
    match env.optional(IDLE_TIMEOUT) {
        None => Ok(None),
        Some(_) => env
            .number_in(
                IDLE_TIMEOUT,
                IDLE_TIMEOUT_MINUTES,
                *IDLE_TIMEOUT_MINUTES.start(),
            )
            .map(Some),
    }
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let suite = SuiteConfig::from_env(env)?;
        let domain_id = env.string(DOMAIN_ID, "the SageMaker Studio domain id (d-...)")?;
        let identity_store_id =
            env.string(IDENTITY_STORE_ID, "the Identity Center identity store id")?;
        // Empty is allowed so that a stack can be deployed before its group exists; the handler then refuses
        // every invocation with a clear error instead of reconciling against nobody.
        let group_ids = env.list(GROUP_IDS);
        let private_space = env.flag(PRIVATE_SPACE, false)?;
        let defaults = SettingsOverride {
            name: None,
            execution_role_arn: env.optional(EXECUTION_ROLE_ARN),
            security_group_ids: Some(env.list(SECURITY_GROUP_IDS)).filter(|v| !v.is_empty()),
            default_instance_type: env.optional(DEFAULT_INSTANCE_TYPE),
            idle_timeout_minutes: optional_minutes(env)?,
            private_space: Some(private_space),
            monthly_budget_usd: None,
            shared_spaces: None,
        };
        let overrides: BTreeMap<String, SettingsOverride> = env.json_or(
            GROUP_SETTINGS,
            "a JSON object from group id to settings",
            BTreeMap::new(),
        )?;
        let groups = GroupMap::build(&group_ids, &defaults, &overrides).map_err(|e| {
            let var = match e.origin {
                Origin::GroupIds => GROUP_IDS,
                Origin::Group => GROUP_SETTINGS,
                Origin::Default("executionRoleArn") => EXECUTION_ROLE_ARN,
                Origin::Default("securityGroupIds") => SECURITY_GROUP_IDS,
                Origin::Default("defaultInstanceType") => DEFAULT_INSTANCE_TYPE,
                Origin::Default(_) => IDLE_TIMEOUT,
            };
            let expected = match e.origin {
                Origin::Group => format!("{} at {}", e.expected, e.place),
                _ => e.expected,
            };
            ConfigError::Malformed {
                var: var.to_string(),
                expected,
                found: e.found,
            }
        })?;
        let allowed = env.list(STUDIO_INSTANCE_TYPES);
        for g in groups.groups() {
            for space in &g.shared_spaces {
                if let Some(t) = &space.default_instance_type
                    && !allowed.is_empty()
                    && !allowed.iter().any(|a| a == t)
                {
                    return Err(ConfigError::Malformed {
                        var: GROUP_SETTINGS.to_string(),
                        expected: format!(
                            "a default instance type of {} ({STUDIO_INSTANCE_TYPES}) at group {}: sharedSpaces, space {}",
                            allowed.join(", "),
                            g.group_id,
                            space.name
                        ),
                        found: t.clone(),
                    });
                }
            }
        }
        let name_style = env.parsed_or(
            PROFILE_NAME_STYLE,
            "full or local-part",
            NameStyle::default(),
        )?;
        let defaults = Brake::default();
        Ok(Self {
            suite,
            domain_id,
            identity_store_id,
            groups,
            name_style,
            brake: Brake {
                max_share_percent: env.number_in(MAX_SHARE, 0..=100, defaults.max_share_percent)?,
                max_count: env.number_in(MAX_COUNT, 0..=100_000, defaults.max_count)?,
            },
            grace: env.seconds(GRACE, 0..=7 * 86_400, Duration::from_secs(900))?,
            app_delete_wait: env.seconds(APP_DELETE_WAIT, 0..=840, Duration::from_secs(120))?,
            concurrency: env.number_in(CONCURRENCY, 1..=64, 8)?,
            sagemaker_calls_per_second: NonZeroU32::new(env.number_in(
                SAGEMAKER_RATE,
                1..=1000,
                20,
            )?)
            .unwrap_or(NonZeroU32::MIN),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const DS: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";
    const GPU: &str = "34887428-4081-7042-c3c6-928d413009e7";

    fn base() -> HashMap<String, String> {
        [
            ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
            ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
            (DOMAIN_ID, "d-studioops0001"),
            (IDENTITY_STORE_ID, "d-9067000000"),
            (GROUP_IDS, DS),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn with(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v = base();
        for (k, val) in pairs {
            v.insert(k.to_string(), val.to_string());
        }
        v
    }

    #[test]
    fn defaults() {
        let vars = base();
        let c = Config::from_env(&Env::new(&vars)).unwrap();
        assert_eq!(
            c.brake,
            Brake {
                max_share_percent: 20,
                max_count: 10
            }
        );
        assert_eq!(c.grace, Duration::from_secs(900));
        assert_eq!(c.app_delete_wait, Duration::from_secs(120));
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.sagemaker_calls_per_second.get(), 20);
        assert_eq!(c.name_style, NameStyle::Full);
        let g = c.groups.get(DS).unwrap();
        assert!(!g.private_space);
        assert_eq!(g.profile, Default::default());
    }

    #[test]
    fn everything_set() {
        let settings =
            format!(r#"{{"{GPU}": {{"name": "gpu", "defaultInstanceType": "ml.g5.xlarge"}}}}"#);
        let vars = with(&[
            (GROUP_IDS, &format!("{DS}, {GPU}")),
            (
                EXECUTION_ROLE_ARN,
                "arn:aws:iam::123456789012:role/studio-exec",
            ),
            (SECURITY_GROUP_IDS, "sg-0123456789abcdef0,sg-00000000"),
            (DEFAULT_INSTANCE_TYPE, "ml.t3.medium"),
            (IDLE_TIMEOUT, "90"),
            (PRIVATE_SPACE, "true"),
            (GROUP_SETTINGS, &settings),
            (PROFILE_NAME_STYLE, "local-part"),
            (MAX_SHARE, "30"),
            (MAX_COUNT, "5"),
            (GRACE, "60"),
            (APP_DELETE_WAIT, "30"),
            (CONCURRENCY, "4"),
            (SAGEMAKER_RATE, "50"),
        ]);
        let c = Config::from_env(&Env::new(&vars)).unwrap();
        let gpu = c.groups.get(GPU).unwrap();
        assert_eq!(
            gpu.profile.default_instance_type.as_deref(),
            Some("ml.g5.xlarge")
        );
        assert_eq!(gpu.profile.idle_timeout_minutes, Some(90));
        assert_eq!(gpu.profile.security_group_ids.len(), 2);
        assert!(gpu.private_space);
        assert_eq!(c.name_style, NameStyle::LocalPart);
        assert_eq!(
            c.brake,
            Brake {
                max_share_percent: 30,
                max_count: 5
            }
        );
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.sagemaker_calls_per_second.get(), 50);
    }

    #[test]
    fn a_team_spaces_instance_type_must_be_one_users_may_run() {
        let settings = format!(
            r#"{{"{DS}": {{"sharedSpaces": [{{"name": "team-lab", "appType": "JupyterLab", "defaultInstanceType": "ml.g5.xlarge"}}]}}}}"#
        );
        let allowed = with(&[
            (GROUP_SETTINGS, &settings),
            (STUDIO_INSTANCE_TYPES, "ml.t3.medium,ml.g5.xlarge"),
        ]);
        assert!(Config::from_env(&Env::new(&allowed)).is_ok());
        let refused = with(&[
            (GROUP_SETTINGS, &settings),
            (STUDIO_INSTANCE_TYPES, "ml.t3.medium,ml.m5.large"),
        ]);
        let Err(ConfigError::Malformed {
            var,
            expected,
            found,
        }) = Config::from_env(&Env::new(&refused))
        else {
            panic!("a GPU default outside the users' list must be refused")
        };
        assert_eq!(
            (var.as_str(), found.as_str()),
            (GROUP_SETTINGS, "ml.g5.xlarge")
        );
        assert!(expected.contains("space team-lab"), "{expected}");
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![(GROUP_IDS, "data-science")], GROUP_IDS),
            (
                vec![(EXECUTION_ROLE_ARN, "studio-exec")],
                EXECUTION_ROLE_ARN,
            ),
            (vec![(SECURITY_GROUP_IDS, "default")], SECURITY_GROUP_IDS),
            (
                vec![(DEFAULT_INSTANCE_TYPE, "t3.medium")],
                DEFAULT_INSTANCE_TYPE,
            ),
            (vec![(IDLE_TIMEOUT, "10")], IDLE_TIMEOUT),
            (vec![(PRIVATE_SPACE, "maybe")], PRIVATE_SPACE),
            (vec![(GROUP_SETTINGS, "{not json")], GROUP_SETTINGS),
            (
                vec![(
                    GROUP_SETTINGS,
                    r#"{"34887428-4081-7042-c3c6-928d413009e7": {}}"#,
                )],
                GROUP_SETTINGS,
            ),
            (
                vec![(
                    GROUP_SETTINGS,
                    r#"{"9a6763d7-0001-70f0-3861-d4cfe87e1540": {"defaultInstanceType": "huge"}}"#,
                )],
                GROUP_SETTINGS,
            ),
            (vec![(PROFILE_NAME_STYLE, "email")], PROFILE_NAME_STYLE),
            (vec![(MAX_SHARE, "150")], MAX_SHARE),
            (vec![(CONCURRENCY, "0")], CONCURRENCY),
            (vec![(SAGEMAKER_RATE, "0")], SAGEMAKER_RATE),
            (vec![(DOMAIN_ID, "")], DOMAIN_ID),
        ];
        for (pairs, var) in cases {
            let vars = with(&pairs);
            let err = Config::from_env(&Env::new(&vars)).unwrap_err();
            let named = match &err {
                ConfigError::Missing { var, .. } | ConfigError::Malformed { var, .. } => {
                    var.clone()
                }
            };
            assert_eq!(named, var, "{pairs:?} gave {err}");
        }
    }

    #[test]
    fn no_group_is_a_valid_but_idle_configuration() {
        let vars = with(&[(GROUP_IDS, " , ")]);
        assert!(
            Config::from_env(&Env::new(&vars))
                .unwrap()
                .groups
                .is_empty()
        );
    }

    #[test]
    fn every_variable_read_is_known() {
        let vars = base();
        let env = Env::new(&vars);
        Config::from_env(&env).unwrap();
        for name in [
            GROUP_IDS,
            EXECUTION_ROLE_ARN,
            GROUP_SETTINGS,
            MAX_COUNT,
            CONCURRENCY,
            APP_DELETE_WAIT,
        ] {
            assert!(env.names_read().contains(&name), "{name}");
        }
    }
}
