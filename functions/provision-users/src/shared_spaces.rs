//! Team shared spaces: the ones the configured groups declare (`sharedSpaces` in their settings) against the
//! domain's shared spaces provision-users tagged as its own → what to create, update and remove, and what to leave
//! alone and why. Only spaces carrying provision-users' mark are ever changed; a user's own shared space, or any
//! space of a declared name that is not ours, is reported and left alone. Pure: no AWS, no clock.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::plan::{MANAGED_BY, Skipped, TAG_MANAGED_BY, TAG_SETTINGS};
use crate::settings::{GroupMap, SharedSpaceSpec};

/// On a team shared space: the group that declares it.
pub const TAG_SHARED_SPACE_OF: &str = "studio-ops:shared-space-of";

/// A shared space of the domain as read (DescribeSpace and its tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingSharedSpace {
    pub name: String,
    pub arn: String,
    pub status: String,
    /// `SpaceSettings.AppType`, when SageMaker says.
    pub app_type: Option<String>,
    /// The EBS volume size, when SageMaker says.
    pub ebs_size_gb: Option<u32>,
    pub tags: BTreeMap<String, String>,
}

impl ExistingSharedSpace {
    /// Carries provision-users' mark and the group that declared it.
    pub fn is_managed(&self) -> bool {
        self.tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
            && self.tags.contains_key(TAG_SHARED_SPACE_OF)
    }

    fn group(&self) -> &str {
        self.tags
            .get(TAG_SHARED_SPACE_OF)
            .map_or("", String::as_str)
    }
}

/// A declared space to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSharedSpace {
    pub group_id: String,
    pub spec: SharedSpaceSpec,
}

/// A managed space whose declaration changed: new settings (UpdateSpace) and marks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSharedSpace {
    pub group_id: String,
    pub arn: String,
    pub spec: SharedSpaceSpec,
    pub reason: String,
}

/// A managed space no group declares any more: apps first, then the space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveSharedSpace {
    pub name: String,
    pub group_id: String,
}

/// What the reconcile would do with the team shared spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedSpacePlan {
    pub create: Vec<CreateSharedSpace>,
    pub update: Vec<UpdateSharedSpace>,
    pub remove: Vec<RemoveSharedSpace>,
    pub skipped: Vec<Skipped>,
    pub unchanged: u32,
    /// Live shared spaces provision-users manages (the brake's denominator for removals).
    pub managed: u32,
}

impl SharedSpacePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }
}

/// The tags a team shared space carries: the mark, its group and its settings' fingerprint.
pub fn tags(group_id: &str, spec: &SharedSpaceSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (TAG_SHARED_SPACE_OF.to_string(), group_id.to_string()),
        (TAG_SETTINGS.to_string(), spec.fingerprint()),
    ])
}

/// Declared against existing: `taken` holds every space name of the domain (lower case), managed or not.
pub fn plan(
    groups: &GroupMap,
    existing: &[ExistingSharedSpace],
    taken: &[String],
) -> SharedSpacePlan {
    let managed: HashMap<String, &ExistingSharedSpace> = existing
        .iter()
        .filter(|s| s.is_managed())
        .map(|s| (s.name.to_ascii_lowercase(), s))
        .collect();
    let mut out = SharedSpacePlan {
        managed: u32::try_from(managed.values().filter(|s| s.status != "Deleting").count())
            .unwrap_or(u32::MAX),
        ..SharedSpacePlan::default()
    };
    let mut declared = std::collections::HashSet::new();
    for group in groups.groups() {
        for spec in &group.shared_spaces {
            let key = spec.name.to_ascii_lowercase();
            declared.insert(key.clone());
            let Some(space) = managed.get(&key) else {
                if taken.iter().any(|t| t.eq_ignore_ascii_case(&spec.name)) {
                    out.skipped.push(Skipped::new(
                        &spec.name,
                        "a space of this name exists and is not a studio-ops team space: give the declared space another name",
                    ));
                } else {
                    out.create.push(CreateSharedSpace {
                        group_id: group.group_id.clone(),
                        spec: spec.clone(),
                    });
                }
                continue;
            };
            if space.status == "Deleting" {
                out.skipped.push(Skipped::new(
                    &spec.name,
                    "being deleted: the next run creates it again",
                ));
                continue;
            }
            if space
                .app_type
                .as_deref()
                .is_some_and(|t| t != spec.app_type.as_str())
            {
                out.skipped.push(Skipped::new(
                    &spec.name,
                    format!(
                        "SageMaker cannot change a space's app type ({} → {}): declare the space under a new name (the old one is then removed)",
                        space.app_type.as_deref().unwrap_or("?"),
                        spec.app_type.as_str()
                    ),
                ));
                continue;
            }
            if let (Some(now), Some(wanted)) = (space.ebs_size_gb, spec.ebs_size_gb)
                && wanted < now
            {
                out.skipped.push(Skipped::new(
                    &spec.name,
                    format!(
                        "SageMaker cannot shrink a space's volume ({now} → {wanted} GB): declare {now} GB or more"
                    ),
                ));
                continue;
            }
            let settings_changed =
                space.tags.get(TAG_SETTINGS).map(String::as_str) != Some(&spec.fingerprint());
            let group_changed = !space.group().eq_ignore_ascii_case(&group.group_id);
            if settings_changed || group_changed {
                out.update.push(UpdateSharedSpace {
                    group_id: group.group_id.clone(),
                    arn: space.arn.clone(),
                    spec: spec.clone(),
                    reason: if settings_changed {
                        "its declared settings changed".to_string()
                    } else {
                        format!("now declared by group {}", group.group_id)
                    },
                });
            } else {
                out.unchanged += 1;
            }
        }
    }
    let mut removals: Vec<&&ExistingSharedSpace> = managed
        .iter()
        .filter(|(key, _)| !declared.contains(*key))
        .map(|(_, s)| s)
        .filter(|s| s.status != "Deleting")
        .collect();
    removals.sort_by(|a, b| a.name.cmp(&b.name));
    out.remove = removals
        .into_iter()
        .map(|s| RemoveSharedSpace {
            name: s.name.clone(),
            group_id: s.group().to_string(),
        })
        .collect();
    out.create.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    out.update.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{SettingsOverride, SpaceAppType};

    const LAB: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";

    fn spec(name: &str, instance: &str) -> SharedSpaceSpec {
        SharedSpaceSpec {
            name: name.into(),
            app_type: SpaceAppType::JupyterLab,
            display_name: None,
            default_instance_type: Some(instance.into()),
            ebs_size_gb: Some(50),
            idle_timeout_minutes: Some(120),
        }
    }

    fn groups(spaces: Vec<SharedSpaceSpec>) -> GroupMap {
        let overrides = BTreeMap::from([(
            LAB.to_string(),
            SettingsOverride {
                shared_spaces: Some(spaces),
                ..SettingsOverride::default()
            },
        )]);
        GroupMap::build(&[LAB.to_string()], &SettingsOverride::default(), &overrides).unwrap()
    }

    fn managed(s: &SharedSpaceSpec) -> ExistingSharedSpace {
        ExistingSharedSpace {
            name: s.name.clone(),
            arn: format!(
                "arn:aws:sagemaker:us-east-1:123456789012:space/d-x/{}",
                s.name
            ),
            status: "InService".into(),
            app_type: Some(s.app_type.as_str().into()),
            ebs_size_gb: s.ebs_size_gb,
            tags: tags(LAB, s),
        }
    }

    #[test]
    fn declared_spaces_are_created_changed_ones_updated_and_dropped_ones_removed() {
        let team = spec("team-lab", "ml.t3.medium");
        let old = spec("old-lab", "ml.t3.medium");
        let mut bigger = team.clone();
        bigger.default_instance_type = Some("ml.m5.xlarge".into());
        let existing = vec![managed(&team), managed(&old)];
        let taken = vec!["team-lab".to_string(), "old-lab".to_string()];
        let p = plan(
            &groups(vec![bigger.clone(), spec("forecasting", "ml.t3.medium")]),
            &existing,
            &taken,
        );
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.create[0].spec.name, "forecasting");
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].spec, bigger);
        assert_eq!(
            p.remove,
            vec![RemoveSharedSpace {
                name: "old-lab".into(),
                group_id: LAB.into()
            }]
        );
        assert_eq!(p.managed, 2);
        // Once done, the same declaration plans nothing.
        let done = vec![
            managed(&bigger),
            managed(&spec("forecasting", "ml.t3.medium")),
        ];
        let again = plan(
            &groups(vec![bigger, spec("forecasting", "ml.t3.medium")]),
            &done,
            &["team-lab".into(), "forecasting".into()],
        );
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.unchanged, 2);
    }

    #[test]
    fn spaces_that_are_not_ours_are_never_touched() {
        let mine = spec("team-lab", "ml.t3.medium");
        // A user's own shared space of the declared name, and another user's unmarked one.
        let users = ExistingSharedSpace {
            tags: BTreeMap::from([("project".into(), "x".into())]),
            ..managed(&mine)
        };
        let p = plan(
            &groups(vec![mine]),
            &[users],
            &["team-lab".into(), "ana-notes".into()],
        );
        assert!(p.create.is_empty() && p.update.is_empty() && p.remove.is_empty());
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].reason.contains("not a studio-ops team space"));
        assert_eq!(p.managed, 0);
    }

    #[test]
    fn an_app_type_change_is_reported_not_attempted() {
        let lab = spec("team-lab", "ml.t3.medium");
        let mut editor = lab.clone();
        editor.app_type = SpaceAppType::CodeEditor;
        let p = plan(
            &groups(vec![editor]),
            &[managed(&lab)],
            &["team-lab".into()],
        );
        assert!(p.update.is_empty() && p.remove.is_empty() && p.create.is_empty());
        assert!(
            p.skipped[0]
                .reason
                .contains("cannot change a space's app type")
        );
    }

    #[test]
    fn a_smaller_volume_is_reported_not_attempted() {
        let lab = spec("team-lab", "ml.t3.medium");
        let mut smaller = lab.clone();
        smaller.ebs_size_gb = Some(20);
        let p = plan(
            &groups(vec![smaller]),
            &[managed(&lab)],
            &["team-lab".into()],
        );
        assert!(p.update.is_empty(), "{p:?}");
        assert!(
            p.skipped[0]
                .reason
                .contains("cannot shrink a space's volume (50 → 20 GB)")
        );
        let mut bigger = lab.clone();
        bigger.ebs_size_gb = Some(100);
        let p = plan(
            &groups(vec![bigger]),
            &[managed(&lab)],
            &["team-lab".into()],
        );
        assert_eq!(p.update.len(), 1);
    }

    #[test]
    fn a_space_being_deleted_waits_for_the_next_run() {
        let lab = spec("team-lab", "ml.t3.medium");
        let deleting = ExistingSharedSpace {
            status: "Deleting".into(),
            ..managed(&lab)
        };
        let p = plan(
            &groups(vec![lab]),
            std::slice::from_ref(&deleting),
            &["team-lab".into()],
        );
        assert!(p.create.is_empty());
        assert!(p.skipped[0].reason.contains("being deleted"));
        let p = plan(&groups(vec![]), &[deleting], &["team-lab".into()]);
        assert!(p.remove.is_empty(), "already on its way out");
    }
}
