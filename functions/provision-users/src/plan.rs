//! The reconcile plan: desired (members of the configured groups) against actual (the domain's profiles that
//! carry the studio-ops tag) → what to create, update and deprovision, each with its reason, and what was
//! left alone and why. Pure: no AWS, no clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::naming::{self, NameStyle};
use crate::ports::SpaceSummary;
use crate::settings::GroupMap;

/// Marks a profile (or space) studio-ops created; profiles without it are never touched.
pub const TAG_MANAGED_BY: &str = "studio-ops:managed-by";
pub const MANAGED_BY: &str = "provision-users";
/// The Identity Center user id the profile belongs to (user names can change, ids cannot).
pub const TAG_USER_ID: &str = "studio-ops:identity-store-user-id";
/// The configured group whose settings the profile has.
pub const TAG_GROUP_ID: &str = "studio-ops:group-id";
/// The fingerprint of the settings the profile was last given.
pub const TAG_SETTINGS: &str = "studio-ops:settings";
/// On a private space: the profile it was made for.
pub const TAG_PROFILE: &str = "studio-ops:user-profile";

/// Profile statuses in which a profile can be deleted or updated.
const SETTLED: &[&str] = &["InService", "Failed", "Update_Failed", "Delete_Failed"];

/// One member of a configured group (after de-duplication across groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub group_id: String,
}

/// Members of the configured groups, in priority order: a user in several groups belongs to the first.
pub fn desired_members(groups: &[(String, Vec<String>)]) -> Vec<Member> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (group_id, users) in groups {
        for user_id in users {
            if seen.insert(user_id.clone()) {
                out.push(Member {
                    user_id: user_id.clone(),
                    group_id: group_id.clone(),
                });
            }
        }
    }
    out
}

/// A user profile of the domain with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingProfile {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub created: Option<Timestamp>,
    pub sso_user_value: Option<String>,
    pub home_efs_uid: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl ExistingProfile {
    pub fn is_managed(&self) -> bool {
        self.tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
    }

    pub fn user_id(&self) -> Option<&str> {
        self.tags.get(TAG_USER_ID).map(String::as_str)
    }

    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    fn is_deleting(&self) -> bool {
        self.status == "Deleting"
    }

    fn is_settled(&self) -> bool {
        SETTLED.contains(&self.status.as_str())
    }
}

/// What the domain holds now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Every profile of the domain (managed or not: all names count as taken).
    pub profiles: Vec<ExistingProfile>,
    pub spaces: Vec<SpaceSummary>,
}

impl Observed {
    /// Live managed profiles by user id: the oldest per user (duplicates are reported, not used).
    fn managed_by_user(&self) -> (HashMap<&str, &ExistingProfile>, Vec<Skipped>) {
        let mut live: Vec<&ExistingProfile> = self
            .profiles
            .iter()
            .filter(|p| p.is_managed() && !p.is_deleting())
            .collect();
        live.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        let mut by_user: HashMap<&str, &ExistingProfile> = HashMap::new();
        let mut skipped = Vec::new();
        for p in live {
            let Some(user) = p.user_id() else {
                skipped.push(Skipped::new(
                    &p.name,
                    format!("tagged {TAG_MANAGED_BY} but has no {TAG_USER_ID} tag; left alone"),
                ));
                continue;
            };
            match by_user.get(user) {
                Some(primary) => skipped.push(Skipped::new(
                    &p.name,
                    format!(
                        "a second managed profile of user {user} (the first is {}); left alone, delete it by hand if unwanted",
                        primary.name
                    ),
                )),
                None => {
                    by_user.insert(user, p);
                }
            }
        }
        (by_user, skipped)
    }
}

/// The user ids whose names must be looked up: members without a live managed profile.
pub fn users_to_resolve(members: &[Member], observed: &Observed) -> Vec<String> {
    let (by_user, _) = observed.managed_by_user();
    members
        .iter()
        .filter(|m| !by_user.contains_key(m.user_id.as_str()))
        .map(|m| m.user_id.clone())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateProfile {
    pub profile_name: String,
    pub user_id: String,
    pub user_name: String,
    pub group_id: String,
    /// The private space to create with it, if the group wants one.
    pub private_space: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfile {
    pub profile_name: String,
    #[serde(skip)]
    pub arn: String,
    pub user_id: String,
    pub group_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSpace {
    pub space_name: String,
    pub profile_name: String,
    pub user_id: String,
    pub group_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deprovision {
    pub profile_name: String,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    #[serde(skip)]
    pub home_efs_uid: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// A profile name or a user id.
    pub subject: String,
    pub reason: String,
}

impl Skipped {
    pub fn new(subject: &str, reason: impl Into<String>) -> Self {
        Self {
            subject: subject.to_string(),
            reason: reason.into(),
        }
    }
}

/// What a reconcile would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub create: Vec<CreateProfile>,
    pub update: Vec<UpdateProfile>,
    pub create_space: Vec<CreateSpace>,
    pub deprovision: Vec<Deprovision>,
    pub skipped: Vec<Skipped>,
    /// Members whose profile is as it should be.
    pub unchanged: u32,
    /// Live profiles studio-ops manages (the brake's denominator).
    pub managed_profiles: u32,
    /// The team shared spaces the groups declare (`shared_spaces::plan`).
    #[serde(default)]
    pub shared_spaces: Box<crate::shared_spaces::SharedSpacePlan>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.update.is_empty()
            && self.create_space.is_empty()
            && self.deprovision.is_empty()
            && self.shared_spaces.is_empty()
    }

    /// One line for logs and answers.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} to create, {} to update, {} private spaces to create, {} to deprovision, {} skipped, {} unchanged, {} managed",
            self.create.len(),
            self.update.len(),
            self.create_space.len(),
            self.deprovision.len(),
            self.skipped.len(),
            self.unchanged,
            self.managed_profiles
        );
        let shared = &self.shared_spaces;
        if !shared.is_empty() || !shared.skipped.is_empty() {
            line.push_str(&format!(
                "; shared spaces: {} to create, {} to update, {} to remove, {} skipped",
                shared.create.len(),
                shared.update.len(),
                shared.remove.len(),
                shared.skipped.len()
            ));
        }
        line
    }

    /// Keeps only what concerns one profile (an admin's targeted run).
    pub fn restrict_to(mut self, profile_name: &str) -> Self {
        let is = |n: &str| n.eq_ignore_ascii_case(profile_name);
        self.create.retain(|c| is(&c.profile_name));
        self.update.retain(|u| is(&u.profile_name));
        self.create_space.retain(|s| is(&s.profile_name));
        self.deprovision.retain(|d| is(&d.profile_name));
        self.skipped.retain(|s| is(&s.subject));
        // A targeted run is about one profile: team spaces wait for a full run.
        self.shared_spaces = Box::default();
        self
    }
}

/// Everything the plan is computed from.
pub struct PlanInput<'a> {
    pub members: &'a [Member],
    /// User names of the members that have no profile yet (see [`users_to_resolve`]).
    pub user_names: &'a HashMap<String, String>,
    pub observed: &'a Observed,
    pub groups: &'a GroupMap,
    pub style: NameStyle,
    /// Managed profiles younger than this are never deprovisioned (see docs: concurrency).
    pub grace: Duration,
    pub now: Timestamp,
}

fn label(groups: &GroupMap, group_id: &str) -> String {
    match groups.get(group_id).and_then(|g| g.label.as_deref()) {
        Some(l) => format!("{l} ({group_id})"),
        None => group_id.to_string(),
    }
}

/// Computes the plan.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let observed = input.observed;
    let (by_user, mut skipped) = observed.managed_by_user();
    let deleting: HashMap<&str, &ExistingProfile> = observed
        .profiles
        .iter()
        .filter(|p| p.is_managed() && p.is_deleting())
        .filter_map(|p| p.user_id().map(|u| (u, p)))
        .collect();
    let mut taken: HashSet<String> = observed
        .profiles
        .iter()
        .map(|p| p.name.to_ascii_lowercase())
        .collect();
    let space_owner: HashMap<String, &SpaceSummary> = observed
        .spaces
        .iter()
        .map(|s| (s.name.to_ascii_lowercase(), s))
        .collect();
    let mut out = Plan {
        managed_profiles: u32::try_from(by_user.len()).unwrap_or(u32::MAX),
        ..Plan::default()
    };

    // Members without a profile are named in a fixed order so that concurrent runs that see the same
    // world pick the same names (a collision then is a ResourceInUse on an identical create).
    let mut new_members: Vec<(&Member, &str)> = Vec::new();
    for m in input.members {
        let Some(group) = input.groups.get(&m.group_id) else {
            continue;
        };
        if let Some(p) = by_user.get(m.user_id.as_str()) {
            plan_existing(input, &mut out, m, p, group, &space_owner);
            continue;
        }
        if let Some(p) = deleting.get(m.user_id.as_str()) {
            skipped.push(Skipped::new(
                &m.user_id,
                format!(
                    "the previous profile {} is still being deleted; a later run creates the new one",
                    p.name
                ),
            ));
            continue;
        }
        match input.user_names.get(&m.user_id) {
            Some(name) => new_members.push((m, name)),
            None => skipped.push(Skipped::new(
                &m.user_id,
                "member of a configured group but not found in the identity store (a stale membership)",
            )),
        }
    }
    new_members.sort_by(|a, b| {
        (a.1.to_lowercase(), &a.0.user_id).cmp(&(b.1.to_lowercase(), &b.0.user_id))
    });
    for (m, user_name) in new_members {
        let Some(group) = input.groups.get(&m.group_id) else {
            continue;
        };
        let Some(profile_name) = naming::choose(user_name, &m.user_id, input.style, &taken) else {
            skipped.push(Skipped::new(
                &m.user_id,
                format!("no free profile name for {user_name}: every candidate is taken"),
            ));
            continue;
        };
        taken.insert(profile_name.to_ascii_lowercase());
        let private_space = if group.private_space {
            let space = naming::private_space_name(&profile_name);
            match space_owner.get(&space.to_ascii_lowercase()) {
                Some(s) if !s.is_owned_by(&profile_name) => {
                    skipped.push(Skipped::new(
                        &profile_name,
                        format!("private space name {space} is taken by another space; no private space made"),
                    ));
                    None
                }
                _ => Some(space),
            }
        } else {
            None
        };
        out.create.push(CreateProfile {
            reason: format!(
                "{user_name} is a member of group {} and has no Studio profile",
                label(input.groups, &m.group_id)
            ),
            profile_name,
            user_id: m.user_id.clone(),
            user_name: user_name.to_string(),
            group_id: m.group_id.clone(),
            private_space,
        });
    }

    let members: HashSet<&str> = input.members.iter().map(|m| m.user_id.as_str()).collect();
    let mut leaving: Vec<&&ExistingProfile> = by_user
        .iter()
        .filter(|(user, _)| !members.contains(*user))
        .map(|(_, p)| p)
        .collect();
    leaving.sort_by(|a, b| a.name.cmp(&b.name));
    for p in leaving {
        let who = p
            .sso_user_value
            .clone()
            .unwrap_or_else(|| "the user".to_string());
        let user_id = p.user_id().unwrap_or_default();
        if !p.is_settled() {
            skipped.push(Skipped::new(
                &p.name,
                format!(
                    "should be deprovisioned but its status is {}; a later run retries",
                    p.status
                ),
            ));
            continue;
        }
        // A creation time in the future (clock skew) counts as young: when in doubt, keep.
        let grace =
            jiff::SignedDuration::try_from(input.grace).unwrap_or(jiff::SignedDuration::MAX);
        if let Some(age) = p.created.map(|c| input.now.duration_since(c))
            && age < grace
        {
            skipped.push(Skipped::new(
                &p.name,
                format!(
                    "should be deprovisioned but was created {}s ago, within the {}s grace period",
                    age.as_secs().max(0),
                    input.grace.as_secs()
                ),
            ));
            continue;
        }
        out.deprovision.push(Deprovision {
            profile_name: p.name.clone(),
            user_id: Some(user_id.to_string()),
            user_name: p.sso_user_value.clone(),
            home_efs_uid: p.home_efs_uid.clone(),
            reason: format!("{who} ({user_id}) is no longer a member of any configured group"),
        });
    }
    skipped.append(&mut out.skipped);
    skipped.sort_by(|a, b| a.subject.cmp(&b.subject));
    out.skipped = skipped;
    out
}

fn plan_existing(
    input: &PlanInput<'_>,
    out: &mut Plan,
    m: &Member,
    p: &ExistingProfile,
    group: &crate::settings::GroupSettings,
    space_owner: &HashMap<String, &SpaceSummary>,
) {
    let wanted = group.profile.fingerprint();
    let group_tag = p.tag(TAG_GROUP_ID).unwrap_or_default();
    let reason = if !group_tag.eq_ignore_ascii_case(&m.group_id) {
        Some(format!(
            "moved from group {} to group {}",
            if group_tag.is_empty() {
                "(none)"
            } else {
                group_tag
            },
            label(input.groups, &m.group_id)
        ))
    } else if p.tag(TAG_SETTINGS) != Some(wanted.as_str()) {
        Some(format!(
            "the settings of group {} changed",
            label(input.groups, &m.group_id)
        ))
    } else {
        None
    };
    let mut changed = false;
    if let Some(reason) = reason {
        if p.is_settled() {
            changed = true;
            out.update.push(UpdateProfile {
                profile_name: p.name.clone(),
                arn: p.arn.clone(),
                user_id: m.user_id.clone(),
                group_id: m.group_id.clone(),
                reason,
            });
        } else {
            out.skipped.push(Skipped::new(
                &p.name,
                format!(
                    "{reason}, but its status is {}; a later run updates it",
                    p.status
                ),
            ));
        }
    }
    if group.private_space && p.status == "InService" {
        let space = naming::private_space_name(&p.name);
        match space_owner.get(&space.to_ascii_lowercase()) {
            None => {
                changed = true;
                out.create_space.push(CreateSpace {
                    space_name: space,
                    profile_name: p.name.clone(),
                    user_id: m.user_id.clone(),
                    group_id: m.group_id.clone(),
                    reason: format!(
                        "group {} gives its members a private space",
                        label(input.groups, &m.group_id)
                    ),
                });
            }
            Some(s) if !s.is_owned_by(&p.name) => out.skipped.push(Skipped::new(
                &p.name,
                format!(
                    "private space name {space} is taken by another space; no private space made"
                ),
            )),
            Some(_) => {}
        }
    }
    if !changed {
        out.unchanged += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingsOverride;

    const DS: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";
    const GPU: &str = "34887428-4081-7042-c3c6-928d413009e7";

    fn groups(private_space: bool) -> GroupMap {
        let defaults = SettingsOverride {
            default_instance_type: Some("ml.t3.medium".into()),
            private_space: Some(private_space),
            ..SettingsOverride::default()
        };
        let overrides: BTreeMap<String, SettingsOverride> = [(
            GPU.to_string(),
            SettingsOverride {
                name: Some("gpu".into()),
                default_instance_type: Some("ml.g5.xlarge".into()),
                ..SettingsOverride::default()
            },
        )]
        .into();
        GroupMap::build(&[DS.into(), GPU.into()], &defaults, &overrides).unwrap()
    }

    fn now() -> Timestamp {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    fn managed(name: &str, user: &str, group: &str, map: &GroupMap, age_s: i64) -> ExistingProfile {
        let fp = map.get(group).unwrap().profile.fingerprint();
        ExistingProfile {
            name: name.into(),
            arn: format!("arn:aws:sagemaker:us-east-1:123456789012:user-profile/d-1/{name}"),
            status: "InService".into(),
            created: Some(now() - jiff::SignedDuration::from_secs(age_s)),
            sso_user_value: Some(format!("{name}@example.com")),
            home_efs_uid: Some("200001".into()),
            tags: [
                (TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                (TAG_USER_ID.to_string(), user.to_string()),
                (TAG_GROUP_ID.to_string(), group.to_string()),
                (TAG_SETTINGS.to_string(), fp),
            ]
            .into(),
        }
    }

    fn unmanaged(name: &str) -> ExistingProfile {
        ExistingProfile {
            name: name.into(),
            arn: format!("arn:x/{name}"),
            status: "InService".into(),
            created: None,
            sso_user_value: None,
            home_efs_uid: None,
            tags: BTreeMap::new(),
        }
    }

    fn member(user: &str, group: &str) -> Member {
        Member {
            user_id: user.into(),
            group_id: group.into(),
        }
    }

    const DAY: i64 = 86_400;

    fn run(
        members: &[Member],
        names: &[(&str, &str)],
        observed: &Observed,
        map: &GroupMap,
    ) -> Plan {
        let user_names: HashMap<String, String> = names
            .iter()
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect();
        plan(&PlanInput {
            members,
            user_names: &user_names,
            observed,
            groups: map,
            style: NameStyle::Full,
            grace: Duration::from_secs(900),
            now: now(),
        })
    }

    #[test]
    fn first_group_wins_for_users_in_several_groups() {
        let m = desired_members(&[
            (DS.into(), vec!["u1".into(), "u2".into()]),
            (GPU.into(), vec!["u2".into(), "u3".into()]),
        ]);
        assert_eq!(
            m,
            vec![member("u1", DS), member("u2", DS), member("u3", GPU)]
        );
    }

    #[test]
    fn creates_missing_deprovisions_leavers_and_keeps_the_rest() {
        let map = groups(false);
        let observed = Observed {
            profiles: vec![
                managed("ana-example-com", "u1", DS, &map, DAY),
                managed("bob-example-com", "u2", DS, &map, DAY),
                unmanaged("admin"),
            ],
            spaces: vec![],
        };
        let members = [member("u1", DS), member("u3", GPU)];
        assert_eq!(
            users_to_resolve(&members, &observed),
            vec!["u3".to_string()]
        );
        let p = run(&members, &[("u3", "Cleo@Example.com")], &observed, &map);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.create[0].profile_name, "cleo-example-com");
        assert_eq!(p.create[0].group_id, GPU);
        assert_eq!(
            p.create[0].reason,
            "Cleo@Example.com is a member of group gpu (34887428-4081-7042-c3c6-928d413009e7) and has no Studio profile"
        );
        assert_eq!(p.deprovision.len(), 1);
        assert_eq!(p.deprovision[0].profile_name, "bob-example-com");
        assert_eq!(
            p.deprovision[0].reason,
            "bob-example-com@example.com (u2) is no longer a member of any configured group"
        );
        assert!(p.update.is_empty());
        assert_eq!(p.unchanged, 1);
        assert_eq!(p.managed_profiles, 2);
        assert!(!p.is_empty());
    }

    #[test]
    fn unmanaged_profiles_are_never_touched_but_their_names_are_taken() {
        let map = groups(false);
        let observed = Observed {
            profiles: vec![unmanaged("ana-example-com")],
            spaces: vec![],
        };
        let p = run(
            &[member("u1", DS)],
            &[("u1", "ana@example.com")],
            &observed,
            &map,
        );
        assert!(p.deprovision.is_empty());
        assert_eq!(
            p.create[0].profile_name,
            format!("ana-example-com-{}", naming::short_hash("u1", 8))
        );
        // No members at all: still nothing for unmanaged profiles.
        let p = run(&[], &[], &observed, &map);
        assert!(p.is_empty());
        assert_eq!(p.managed_profiles, 0);
    }

    #[test]
    fn colliding_new_users_get_distinct_deterministic_names() {
        let map = groups(false);
        let members = [member("u2", DS), member("u1", DS)];
        let names = [
            ("u1", "ana.silva@example.com"),
            ("u2", "Ana_Silva@example.com"),
        ];
        let p = run(&members, &names, &Observed::default(), &map);
        let got: Vec<&str> = p.create.iter().map(|c| c.profile_name.as_str()).collect();
        // Lower-cased, "ana.silva" sorts before "ana_silva" ('.' < '_'): u1 gets the plain name.
        assert_eq!(
            got,
            vec![
                "ana-silva-example-com".to_string(),
                format!("ana-silva-example-com-{}", naming::short_hash("u2", 8))
            ]
        );
        // Same input in another order: same names.
        let members_rev = [member("u1", DS), member("u2", DS)];
        assert_eq!(
            run(&members_rev, &names, &Observed::default(), &map).create,
            p.create
        );
    }

    #[test]
    fn group_move_and_settings_change_update_the_profile() {
        let map = groups(false);
        let mut stale = managed("cleo", "u3", DS, &map, DAY);
        stale
            .tags
            .insert(TAG_SETTINGS.into(), "000000000000".into());
        let observed = Observed {
            profiles: vec![managed("ana", "u1", DS, &map, DAY), stale],
            spaces: vec![],
        };
        let p = run(&[member("u1", GPU), member("u3", DS)], &[], &observed, &map);
        let reasons: Vec<(&str, &str)> = p
            .update
            .iter()
            .map(|u| (u.profile_name.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    "ana",
                    "moved from group 9a6763d7-0001-70f0-3861-d4cfe87e1540 to group gpu (34887428-4081-7042-c3c6-928d413009e7)"
                ),
                (
                    "cleo",
                    "the settings of group 9a6763d7-0001-70f0-3861-d4cfe87e1540 changed"
                ),
            ]
        );
        assert_eq!(p.update[0].group_id, GPU);
        assert_eq!(p.unchanged, 0);
    }

    #[test]
    fn young_busy_and_deleting_profiles_are_left_with_reasons() {
        let map = groups(false);
        let young = managed("young", "u1", DS, &map, 60);
        let mut pending = managed("pending", "u2", DS, &map, DAY);
        pending.status = "Pending".into();
        let mut deleting = managed("old-cleo", "u3", DS, &map, DAY);
        deleting.status = "Deleting".into();
        let observed = Observed {
            profiles: vec![young, pending, deleting],
            spaces: vec![],
        };
        // u3 is a member again while their old profile is still being deleted.
        let p = run(&[member("u3", DS)], &[("u3", "cleo")], &observed, &map);
        assert!(p.deprovision.is_empty() && p.create.is_empty());
        let reasons: Vec<(&str, &str)> = p
            .skipped
            .iter()
            .map(|s| (s.subject.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    "pending",
                    "should be deprovisioned but its status is Pending; a later run retries"
                ),
                (
                    "u3",
                    "the previous profile old-cleo is still being deleted; a later run creates the new one"
                ),
                (
                    "young",
                    "should be deprovisioned but was created 60s ago, within the 900s grace period"
                ),
            ]
        );
        assert_eq!(p.managed_profiles, 2);
    }

    #[test]
    fn duplicates_and_untagged_managed_profiles_are_reported_not_used() {
        let map = groups(false);
        let first = managed("ana", "u1", DS, &map, 2 * DAY);
        let second = managed("ana-2", "u1", DS, &map, DAY);
        let mut no_user = managed("ghost", "u9", DS, &map, DAY);
        no_user.tags.remove(TAG_USER_ID);
        let observed = Observed {
            profiles: vec![second, first, no_user],
            spaces: vec![],
        };
        let p = run(&[member("u1", DS)], &[], &observed, &map);
        assert!(p.is_empty());
        assert_eq!(p.unchanged, 1);
        assert_eq!(p.skipped.len(), 2);
        assert!(
            p.skipped[0].reason.contains("the first is ana"),
            "{:?}",
            p.skipped
        );
        assert_eq!(p.skipped[1].subject, "ghost");
    }

    #[test]
    fn stale_memberships_are_skipped() {
        let map = groups(false);
        let p = run(&[member("gone", DS)], &[], &Observed::default(), &map);
        assert!(p.create.is_empty());
        assert_eq!(p.skipped[0].subject, "gone");
    }

    #[test]
    fn private_spaces_for_new_and_existing_profiles() {
        let map = groups(true);
        let observed = Observed {
            profiles: vec![
                managed("ana", "u1", DS, &map, DAY),
                managed("bob", "u2", DS, &map, DAY),
            ],
            spaces: vec![
                SpaceSummary {
                    name: "bob-private".into(),
                    status: "InService".into(),
                    owner: Some("bob".into()),
                    sharing: Some("Private".into()),
                    app_type: None,
                    arn: None,
                    ebs_size_gb: None,
                },
                SpaceSummary {
                    name: "cleo-private".into(),
                    status: "InService".into(),
                    owner: Some("someone-else".into()),
                    sharing: Some("Private".into()),
                    app_type: None,
                    arn: None,
                    ebs_size_gb: None,
                },
            ],
        };
        let p = run(
            &[member("u1", DS), member("u2", DS), member("u3", DS)],
            &[("u3", "cleo")],
            &observed,
            &map,
        );
        assert_eq!(p.create_space.len(), 1);
        assert_eq!(p.create_space[0].space_name, "ana-private");
        assert_eq!(p.create[0].profile_name, "cleo");
        assert_eq!(p.create[0].private_space, None);
        assert!(
            p.skipped
                .iter()
                .any(|s| s.subject == "cleo" && s.reason.contains("cleo-private is taken"))
        );
        assert_eq!(p.unchanged, 1); // bob
    }

    #[test]
    fn restrict_to_one_profile() {
        let map = groups(false);
        let observed = Observed {
            profiles: vec![
                managed("ana", "u1", DS, &map, DAY),
                managed("bob", "u2", DS, &map, DAY),
            ],
            spaces: vec![],
        };
        let p = run(&[member("u3", DS)], &[("u3", "cleo")], &observed, &map).restrict_to("BOB");
        assert!(p.create.is_empty());
        assert_eq!(p.deprovision.len(), 1);
        assert_eq!(p.deprovision[0].profile_name, "bob");
    }

    #[test]
    fn plan_serializes_for_the_dry_run() {
        let map = groups(false);
        let p = run(
            &[member("u3", DS)],
            &[("u3", "cleo")],
            &Observed::default(),
            &map,
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["create"][0]["profileName"], "cleo");
        assert_eq!(v["create"][0]["userName"], "cleo");
        assert_eq!(v["managedProfiles"], 0);
        assert_eq!(
            p.summary(),
            "1 to create, 0 to update, 0 private spaces to create, 0 to deprovision, 0 skipped, 0 unchanged, 0 managed"
        );
        assert!(v["deprovision"].as_array().unwrap().is_empty());
    }
}
