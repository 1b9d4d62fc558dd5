//! The group → settings mapping: which user settings (execution role, security groups, default instance
//! type, idle shutdown), whether a private space each configured group's members get, and which team shared
//! spaces the group has, validated at cold start, with fingerprints so that a settings change is noticed on
//! existing profiles and spaces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use studio_ops_shared::names::Arn;

/// SageMaker's bounds for an app's idle timeout.
pub const IDLE_TIMEOUT_MINUTES: std::ops::RangeInclusive<u32> = 60..=525_600;
/// SageMaker accepts at most five security groups in user settings.
pub const MAX_SECURITY_GROUPS: usize = 5;
/// SageMaker's bounds for a space's EBS volume (`EbsStorageSettings.EbsVolumeSizeInGb`).
pub const EBS_SIZE_GB: std::ops::RangeInclusive<u32> = 5..=16_384;
/// Shared spaces one group may declare (each is a billable workspace).
pub const MAX_SHARED_SPACES_PER_GROUP: usize = 10;

/// The apps a team shared space runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum SpaceAppType {
    JupyterLab,
    CodeEditor,
}

impl SpaceAppType {
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceAppType::JupyterLab => "JupyterLab",
            SpaceAppType::CodeEditor => "CodeEditor",
        }
    }
}

/// A team shared space a group declares: any member of the domain can open it (JupyterLab spaces with
/// real-time collaboration). provision-users creates it, keeps its settings, and removes it when the declaration is
/// removed, through the same safe path as profiles.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedSpaceSpec {
    /// The space's name in the domain (SageMaker's entity-name pattern, unique in the domain).
    pub name: String,
    pub app_type: SpaceAppType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_size_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_minutes: Option<u32>,
}

impl SharedSpaceSpec {
    /// A short, stable digest of the settings SageMaker keeps (not the name), kept in a tag to notice changes.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_string(&(
            self.app_type,
            &self.display_name,
            &self.default_instance_type,
            self.ebs_size_gb,
            self.idle_timeout_minutes,
        ))
        .unwrap_or_default();
        let mut h = hex::encode(Sha256::digest(canonical.as_bytes()));
        h.truncate(12);
        h
    }
}

/// Settings for one group, as written by the admin; unset members fall back to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsOverride {
    /// A label for logs and events, e.g. `gpu` (the group's display name is used otherwise).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub execution_role_arn: Option<String>,
    #[serde(default)]
    pub security_group_ids: Option<Vec<String>>,
    #[serde(default)]
    pub default_instance_type: Option<String>,
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    #[serde(default)]
    pub private_space: Option<bool>,
    /// The group's monthly Studio budget in USD: read by idle-shutdown (docs/cost.md), not by provision-users.
    #[serde(default)]
    pub monthly_budget_usd: Option<f64>,
    /// The group's team shared spaces (a group's own setting: defaults declare none).
    #[serde(default)]
    pub shared_spaces: Option<Vec<SharedSpaceSpec>>,
}

/// The `UserSettings` a profile is created with. Absent members are left to the domain's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSettings {
    pub execution_role_arn: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Default instance type of JupyterLab and Code Editor apps.
    pub default_instance_type: Option<String>,
    /// Idle shutdown of JupyterLab and Code Editor apps.
    pub idle_timeout_minutes: Option<u32>,
}

impl ProfileSettings {
    /// A short, stable digest of the settings, kept in a tag to notice later changes.
    pub fn fingerprint(&self) -> String {
        // Serializing a plain struct cannot fail; an empty string would only force one update.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        let mut h = hex::encode(Sha256::digest(canonical.as_bytes()));
        h.truncate(12);
        h
    }
}

/// Everything provision-users does for the members of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    pub group_id: String,
    pub label: Option<String>,
    pub profile: ProfileSettings,
    pub private_space: bool,
    pub shared_spaces: Vec<SharedSpaceSpec>,
}

/// The configured groups in priority order: a user in several groups gets the first group's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMap {
    groups: Vec<GroupSettings>,
}

/// Where a bad setting came from: the group list, the defaults or one group's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    GroupIds,
    /// A default setting; the camelCase field name.
    Default(&'static str),
    /// A group's own settings (or settings for a group that is not configured).
    Group,
}

/// A setting that cannot work, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: expected {expected}, found {found}")]
pub struct SettingsError {
    pub origin: Origin,
    /// `defaults: <field>`, `group <id>` or `group <id>: <field>`.
    pub place: String,
    pub expected: String,
    pub found: String,
}

/// A bad field of one settings object.
struct FieldError {
    field: &'static str,
    expected: String,
    found: String,
}

fn field_err(field: &'static str, expected: &str, found: impl ToString) -> FieldError {
    FieldError {
        field,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Identity-store group ids: a UUID, optionally prefixed by a 10-hex-digit store part.
pub fn is_group_id(s: &str) -> bool {
    let uuid = match s.len() {
        36 => s,
        47 => match s.split_at(11) {
            (prefix, rest) if prefix.ends_with('-') && is_hex(&prefix[..10]) => rest,
            _ => return false,
        },
        _ => return false,
    };
    let parts: Vec<&str> = uuid.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && is_hex(p))
}

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

fn check_role(arn: &str) -> Result<(), FieldError> {
    // The shared parser allows what other ARNs have (no account, `:` in the resource); a role ARN has neither.
    let ok = Arn::parse(arn).is_some_and(|a| {
        a.service == "iam"
            && a.account.len() == 12
            && a.resource.len() > "role/".len()
            && a.resource.starts_with("role/")
            && !a.resource.contains(':')
    });
    if ok {
        Ok(())
    } else {
        Err(field_err(
            "executionRoleArn",
            "an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
            arn,
        ))
    }
}

fn check_security_groups(ids: &[String]) -> Result<(), FieldError> {
    if ids.len() > MAX_SECURITY_GROUPS {
        return Err(field_err(
            "securityGroupIds",
            &format!("at most {MAX_SECURITY_GROUPS} security groups (SageMaker's limit)"),
            ids.join(","),
        ));
    }
    for id in ids {
        let ok = id.strip_prefix("sg-").is_some_and(|h| {
            (8..=17).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return Err(field_err(
                "securityGroupIds",
                "security group ids (sg- and 8 to 17 hex digits)",
                id,
            ));
        }
    }
    Ok(())
}

fn check_instance_type(t: &str) -> Result<(), FieldError> {
    let known = aws_sdk_sagemaker::types::AppInstanceType::values();
    if known.contains(&t) && t.starts_with("ml.") {
        Ok(())
    } else {
        Err(field_err(
            "defaultInstanceType",
            "a SageMaker Studio app instance type (e.g. ml.t3.medium)",
            t,
        ))
    }
}

fn check_idle(minutes: u32) -> Result<(), FieldError> {
    if IDLE_TIMEOUT_MINUTES.contains(&minutes) {
        Ok(())
    } else {
        Err(field_err(
            "idleTimeoutMinutes",
            &format!(
                "a number of minutes from {} to {}",
                IDLE_TIMEOUT_MINUTES.start(),
                IDLE_TIMEOUT_MINUTES.end()
            ),
            minutes,
        ))
    }
}

fn check_shared_spaces(spaces: &[SharedSpaceSpec]) -> Result<(), FieldError> {
    if spaces.len() > MAX_SHARED_SPACES_PER_GROUP {
        return Err(field_err(
            "sharedSpaces",
            &format!("at most {MAX_SHARED_SPACES_PER_GROUP} shared spaces per group"),
            spaces.len(),
        ));
    }
    for space in spaces {
        // SageMaker's entity-name pattern, as for every other name the suite gives.
        if !studio_ops_shared::names::is_valid_name(&space.name) {
            return Err(field_err(
                "sharedSpaces",
                "space names of letters, digits and single hyphens, at most 63 characters (SageMaker's pattern)",
                &space.name,
            ));
        }
        if let Some(t) = &space.default_instance_type {
            check_instance_type(t).map_err(|e| FieldError {
                field: "sharedSpaces",
                expected: format!("in space {}: {}", space.name, e.expected),
                found: e.found,
            })?;
        }
        if let Some(gb) = space.ebs_size_gb
            && !EBS_SIZE_GB.contains(&gb)
        {
            return Err(field_err(
                "sharedSpaces",
                &format!(
                    "in space {}: an EBS size from {} to {} GB",
                    space.name,
                    EBS_SIZE_GB.start(),
                    EBS_SIZE_GB.end()
                ),
                gb,
            ));
        }
        if let Some(m) = space.idle_timeout_minutes {
            check_idle(m).map_err(|e| FieldError {
                field: "sharedSpaces",
                expected: format!("in space {}: {}", space.name, e.expected),
                found: e.found,
            })?;
        }
    }
    Ok(())
}

fn validate(o: &SettingsOverride) -> Result<(), FieldError> {
    if let Some(r) = &o.execution_role_arn {
        check_role(r)?;
    }
    if let Some(sgs) = &o.security_group_ids {
        check_security_groups(sgs)?;
    }
    if let Some(t) = &o.default_instance_type {
        check_instance_type(t)?;
    }
    if let Some(m) = o.idle_timeout_minutes {
        check_idle(m)?;
    }
    if let Some(spaces) = &o.shared_spaces {
        check_shared_spaces(spaces)?;
    }
    Ok(())
}

impl GroupMap {
    /// Builds the map from the configured group ids (priority order), the defaults and per-group overrides.
    /// No group at all is allowed here (a stack deployed before its group is known); the handler refuses to run.
    /// Every override must name a configured group: a typo must not silently fall back to the defaults.
    pub fn build(
        group_ids: &[String],
        defaults: &SettingsOverride,
        overrides: &BTreeMap<String, SettingsOverride>,
    ) -> Result<Self, SettingsError> {
        validate(defaults).map_err(|e| SettingsError {
            origin: Origin::Default(e.field),
            place: format!("defaults: {}", e.field),
            expected: e.expected,
            found: e.found,
        })?;
        let mut groups: Vec<GroupSettings> = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            let id_err = |expected: &str| SettingsError {
                origin: Origin::GroupIds,
                place: format!("group {id}"),
                expected: expected.into(),
                found: id.clone(),
            };
            if !is_group_id(id) {
                return Err(id_err(
                    "identity-store group ids (UUIDs such as 9a6763d7-0001-70f0-3861-d4cfe87e1540)",
                ));
            }
            if groups.iter().any(|g| g.group_id.eq_ignore_ascii_case(id)) {
                return Err(id_err("each group once"));
            }
            let o = overrides
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(id))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            validate(&o).map_err(|e| SettingsError {
                origin: Origin::Group,
                place: format!("group {id}: {}", e.field),
                expected: e.expected,
                found: e.found,
            })?;
            groups.push(GroupSettings {
                group_id: id.clone(),
                label: o.name.clone().or_else(|| defaults.name.clone()),
                profile: ProfileSettings {
                    execution_role_arn: o
                        .execution_role_arn
                        .or_else(|| defaults.execution_role_arn.clone()),
                    security_group_ids: o
                        .security_group_ids
                        .or_else(|| defaults.security_group_ids.clone())
                        .unwrap_or_default(),
                    default_instance_type: o
                        .default_instance_type
                        .or_else(|| defaults.default_instance_type.clone()),
                    idle_timeout_minutes: o.idle_timeout_minutes.or(defaults.idle_timeout_minutes),
                },
                private_space: o.private_space.or(defaults.private_space).unwrap_or(false),
                shared_spaces: o.shared_spaces.clone().unwrap_or_default(),
            });
        }
        // Space names are the domain's: two groups cannot declare one.
        let mut names: BTreeMap<String, &str> = BTreeMap::new();
        for g in &groups {
            for space in &g.shared_spaces {
                if let Some(first) = names.insert(space.name.to_ascii_lowercase(), &g.group_id) {
                    return Err(SettingsError {
                        origin: Origin::Group,
                        place: format!("group {}: sharedSpaces", g.group_id),
                        expected: "each shared space name once in the domain".into(),
                        found: format!("{} (declared by group {first} too)", space.name),
                    });
                }
            }
        }
        if let Some(unknown) = overrides
            .keys()
            .find(|k| !group_ids.iter().any(|g| g.eq_ignore_ascii_case(k)))
        {
            return Err(SettingsError {
                origin: Origin::Group,
                place: format!("group {unknown}"),
                expected: "settings only for configured groups".into(),
                found: format!("settings for {unknown}, which is not configured"),
            });
        }
        Ok(Self { groups })
    }

    /// The settings of a configured group (ids compare case-insensitively).
    pub fn get(&self, group_id: &str) -> Option<&GroupSettings> {
        self.groups
            .iter()
            .find(|g| g.group_id.eq_ignore_ascii_case(group_id))
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn contains(&self, group_id: &str) -> bool {
        self.get(group_id).is_some()
    }

    /// The groups in priority order.
    pub fn groups(&self) -> &[GroupSettings] {
        &self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DS: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";
    const GPU: &str = "34887428-4081-7042-c3c6-928d413009e7";

    fn defaults() -> SettingsOverride {
        SettingsOverride {
            execution_role_arn: Some("arn:aws:iam::123456789012:role/studio-exec".into()),
            security_group_ids: Some(vec!["sg-0123456789abcdef0".into()]),
            default_instance_type: Some("ml.t3.medium".into()),
            idle_timeout_minutes: Some(60),
            ..SettingsOverride::default()
        }
    }

    #[test]
    fn shared_spaces_are_checked_where_they_are_declared() {
        const A: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";
        const B: &str = "9a6763d7-0002-70f0-3861-d4cfe87e1540";
        let build = |json: &str| {
            let overrides: BTreeMap<String, SettingsOverride> = serde_json::from_str(json).unwrap();
            GroupMap::build(&[A.into(), B.into()], &defaults(), &overrides)
        };
        let ok = build(&format!(
            r#"{{"{A}": {{"sharedSpaces": [{{"name": "team-lab", "appType": "JupyterLab", "ebsSizeGb": 50}}]}}}}"#
        ))
        .unwrap();
        assert_eq!(ok.get(A).unwrap().shared_spaces[0].name, "team-lab");
        assert!(ok.get(B).unwrap().shared_spaces.is_empty());
        for (json, says) in [
            (
                format!(
                    r#"{{"{A}": {{"sharedSpaces": [{{"name": "team lab", "appType": "JupyterLab"}}]}}}}"#
                ),
                "space names of letters",
            ),
            (
                format!(
                    r#"{{"{A}": {{"sharedSpaces": [{{"name": "lab", "appType": "JupyterLab", "ebsSizeGb": 2}}]}}}}"#
                ),
                "in space lab: an EBS size from 5 to 16384 GB",
            ),
            (
                format!(
                    r#"{{"{A}": {{"sharedSpaces": [{{"name": "lab", "appType": "JupyterLab", "defaultInstanceType": "ml.x9.huge"}}]}}}}"#
                ),
                "in space lab: a SageMaker Studio app instance type",
            ),
            (
                format!(
                    r#"{{"{A}": {{"sharedSpaces": [{{"name": "lab", "appType": "JupyterLab"}}]}}, "{B}": {{"sharedSpaces": [{{"name": "LAB", "appType": "CodeEditor"}}]}}}}"#
                ),
                "each shared space name once in the domain",
            ),
        ] {
            let err = build(&json).unwrap_err();
            assert!(err.expected.contains(says), "{json}: {err}");
            assert!(err.place.contains("sharedSpaces"), "{err}");
        }
        // An unknown app type or key is refused by the reader, naming it.
        let err = serde_json::from_str::<BTreeMap<String, SettingsOverride>>(&format!(
            r#"{{"{A}": {{"sharedSpaces": [{{"name": "lab", "appType": "RStudio"}}]}}}}"#
        ))
        .unwrap_err();
        assert!(err.to_string().contains("RStudio"), "{err}");
    }

    #[test]
    fn a_group_overrides_only_what_it_names() {
        let overrides: BTreeMap<String, SettingsOverride> = serde_json::from_str(&format!(
            r#"{{"{GPU}": {{"name": "gpu", "defaultInstanceType": "ml.g5.xlarge", "privateSpace": true}}}}"#
        ))
        .unwrap();
        let map = GroupMap::build(&[DS.into(), GPU.into()], &defaults(), &overrides).unwrap();
        let ds = map.get(DS).unwrap();
        let gpu = map.get(&GPU.to_uppercase()).unwrap();
        assert_eq!(
            ds.profile.default_instance_type.as_deref(),
            Some("ml.t3.medium")
        );
        assert!(!ds.private_space);
        assert_eq!(
            gpu.profile.default_instance_type.as_deref(),
            Some("ml.g5.xlarge")
        );
        assert_eq!(
            gpu.profile.execution_role_arn,
            ds.profile.execution_role_arn
        );
        assert_eq!(gpu.label.as_deref(), Some("gpu"));
        assert!(gpu.private_space);
        assert_ne!(ds.profile.fingerprint(), gpu.profile.fingerprint());
        assert_eq!(
            ds.profile.fingerprint(),
            map.get(DS).unwrap().profile.fingerprint()
        );
        assert_eq!(map.groups()[0].group_id, DS);
        assert!(!map.contains("11111111-1111-1111-1111-111111111111"));
    }

    #[test]
    fn bad_settings_name_their_place() {
        let cases: Vec<(SettingsOverride, &str)> = vec![
            (
                SettingsOverride {
                    execution_role_arn: Some("studio-exec".into()),
                    ..Default::default()
                },
                "defaults: executionRoleArn",
            ),
            (
                SettingsOverride {
                    default_instance_type: Some("ml.banana.huge".into()),
                    ..Default::default()
                },
                "defaults: defaultInstanceType",
            ),
            (
                SettingsOverride {
                    idle_timeout_minutes: Some(5),
                    ..Default::default()
                },
                "defaults: idleTimeoutMinutes",
            ),
            (
                SettingsOverride {
                    security_group_ids: Some(vec!["default".into()]),
                    ..Default::default()
                },
                "defaults: securityGroupIds",
            ),
            (
                SettingsOverride {
                    security_group_ids: Some((0..6).map(|i| format!("sg-0000000{i}")).collect()),
                    ..Default::default()
                },
                "defaults: securityGroupIds",
            ),
        ];
        for (d, place) in cases {
            let e = GroupMap::build(&[DS.into()], &d, &BTreeMap::new()).unwrap_err();
            assert_eq!(e.place, place, "{e}");
        }
        let e =
            GroupMap::build(&["data-science".into()], &defaults(), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.place, "group data-science");
        let e =
            GroupMap::build(&[DS.into(), DS.into()], &defaults(), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.expected, "each group once");
        assert!(
            GroupMap::build(&[], &defaults(), &BTreeMap::new())
                .unwrap()
                .is_empty()
        );
        let typo: BTreeMap<String, SettingsOverride> =
            [(GPU.to_string(), SettingsOverride::default())].into();
        let e = GroupMap::build(&[DS.into()], &defaults(), &typo).unwrap_err();
        assert_eq!(e.place, format!("group {GPU}"));
        let bad_group: BTreeMap<String, SettingsOverride> = [(
            DS.to_string(),
            SettingsOverride {
                idle_timeout_minutes: Some(1_000_000),
                ..Default::default()
            },
        )]
        .into();
        let e = GroupMap::build(&[DS.into()], &defaults(), &bad_group).unwrap_err();
        assert_eq!(e.place, format!("group {DS}: idleTimeoutMinutes"));
    }

    #[test]
    fn unknown_override_keys_are_refused() {
        let r: Result<SettingsOverride, _> =
            serde_json::from_str(r#"{"defaultInstancetype": "ml.t3.medium"}"#);
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("unknown field `defaultInstancetype`")
        );
    }

    #[test]
    fn group_ids() {
        assert!(is_group_id(DS));
        assert!(is_group_id(
            "1234567890-9a6763d7-0001-70f0-3861-d4cfe87e1540"
        ));
        assert!(!is_group_id("9a6763d7-0001-70f0-3861"));
        assert!(!is_group_id("zz6763d7-0001-70f0-3861-d4cfe87e1540"));
        assert!(!is_group_id(
            "123456789x-9a6763d7-0001-70f0-3861-d4cfe87e1540"
        ));
    }
}
