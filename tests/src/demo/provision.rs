//! The provision-users chapter: two data scientists join the team's Identity Center group and get their Studio
//! profiles; a preview shows what a leaver's removal will do; the leaver's apps, private space and profile go.

use std::collections::BTreeMap;

use aws_sdk_identitystore::types::{MemberId, Name};
use provision_users::handler::Outcome as Answer;
use serde_json::{Value, json};

use super::Chapter;
use crate::runtime_api::Outcome;
use crate::sim::admin::{SeedApp, SeedRequest, SeedSpace};
use crate::world::{World, WorldError, fixture};

fn sdk_err(e: impl std::error::Error) -> WorldError {
    WorldError::Other(studio_ops_shared::error::error_chain(&e))
}

/// The CloudTrail event of a membership call, with this world's ids.
fn membership_event(
    file: &str,
    store: &str,
    group: &str,
    user: &str,
    membership: &str,
) -> Result<Value, WorldError> {
    let mut e = fixture(&format!("provision-users/{file}"))?;
    let p = &mut e["detail"]["requestParameters"];
    p["identityStoreId"] = json!(store);
    if p.get("groupId").is_some() {
        p["groupId"] = json!(group);
    }
    if p.get("memberId").is_some() {
        p["memberId"]["userId"] = json!(user);
    }
    if p.get("membershipId").is_some() {
        p["membershipId"] = json!(membership);
    }
    Ok(e)
}

/// One line of what provision-users answered: its outcome, what a preview would do, what a run did, and why.
fn brief(outcome: &Outcome) -> String {
    let Outcome::Response(v) = outcome else {
        return format!("{outcome:?}");
    };
    let answer = match serde_json::from_value::<Answer>(v.clone()) {
        Ok(answer) => answer,
        Err(e) => return format!("unreadable answer ({e}): {v}"),
    };
    let (name, plan, report) = match &answer {
        Answer::Ignored { .. } => ("ignored", None, None),
        Answer::AlreadyRunning { .. } => ("already-running", None, None),
        Answer::DryRun { plan, .. } => ("dry-run", Some(plan), None),
        Answer::Blocked { plan, .. } => ("blocked", Some(plan), None),
        Answer::Reconciled { plan, report, .. } => ("reconciled", Some(plan), Some(report)),
    };
    let mut parts = vec![name.to_string()];
    let mut list = |label: &str, names: Vec<&str>| {
        if !names.is_empty() {
            parts.push(format!("{label} {}", names.join(", ")));
        }
    };
    if let (Answer::DryRun { .. }, Some(plan)) = (&answer, plan) {
        list(
            "would create",
            plan.create
                .iter()
                .map(|c| c.profile_name.as_str())
                .collect(),
        );
        list(
            "would deprovision",
            plan.deprovision
                .iter()
                .map(|d| d.profile_name.as_str())
                .collect(),
        );
    }
    if let Some(report) = report {
        list(
            "created",
            report
                .provisioned
                .iter()
                .map(|p| p.user_profile_name.as_str())
                .collect(),
        );
        list(
            "deprovisioned",
            report
                .deprovisioned
                .iter()
                .map(|d| d.user_profile_name.as_str())
                .collect(),
        );
        list(
            "failed",
            report.failed.iter().map(|f| f.subject.as_str()).collect(),
        );
    }
    if let Some(d) = plan.and_then(|p| p.deprovision.first()) {
        parts.push(format!("because {}", d.reason));
    }
    parts.join("; ")
}

/// The data-science group's team shared space (ProvisionGroupSettings' sharedSpaces).
pub const TEAM_SPACE: &str = "churn-team-lab";

pub async fn run(world: &mut World) -> Result<Chapter, WorldError> {
    let mut chapter = Chapter::new("Morning: the Studio domain follows the data-science group");
    let store = world
        .template
        .parameters
        .get("IdentityStoreId")
        .cloned()
        .unwrap_or_else(|| "d-9067000000".into());
    let ids = aws_sdk_identitystore::Client::new(world.moto_sdk());
    let group = ids
        .create_group()
        .identity_store_id(&store)
        .display_name("data-science")
        .send()
        .await
        .map_err(sdk_err)?
        .group_id()
        .to_string();
    // provision-users manages this group; profiles may go as soon as their user leaves (no grace in the demo).
    world
        .host(
            "provision-users",
            BTreeMap::from([
                ("STUDIO_OPS_PROVISION_GROUP_IDS".to_string(), group.clone()),
                (
                    "STUDIO_OPS_DEPROVISION_GRACE_SECONDS".to_string(),
                    "0".to_string(),
                ),
                ("STUDIO_OPS_PRIVATE_SPACE".to_string(), "true".to_string()),
                // The group's team shared space: JupyterLab, real-time collaboration.
                (
                    "STUDIO_OPS_GROUP_SETTINGS".to_string(),
                    json!({ &group: { "sharedSpaces": [{
                        "name": TEAM_SPACE,
                        "appType": "JupyterLab",
                        "defaultInstanceType": "ml.t3.medium",
                        "ebsSizeGb": 50,
                        "idleTimeoutMinutes": 120
                    }]}})
                    .to_string(),
                ),
            ]),
            1,
        )
        .await?;
    chapter.line(format!(
        "Identity Center group data-science ({group}) in store {store}"
    ));

    let mut members = Vec::new();
    for user in ["ana.silva@example.com", "li.wei@example.com"] {
        let user_id = ids
            .create_user()
            .identity_store_id(&store)
            .user_name(user)
            .display_name(user)
            .name(
                Name::builder()
                    .given_name("Data")
                    .family_name("Scientist")
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err)?
            .user_id()
            .to_string();
        let membership = ids
            .create_group_membership()
            .identity_store_id(&store)
            .group_id(&group)
            .member_id(MemberId::UserId(user_id.clone()))
            .send()
            .await
            .map_err(sdk_err)?
            .membership_id()
            .to_string();
        let event = membership_event(
            "identitystore-create-group-membership.json",
            &store,
            &group,
            &user_id,
            &membership,
        )?;
        let invocations = world.put_event(&event).await?;
        chapter.record(&invocations);
        if let Some(inv) = invocations.iter().find(|i| i.function == "provision-users") {
            chapter.line(format!("admin adds {user}: {}", brief(&inv.outcome)));
        }
        members.push((user, user_id, membership));
    }

    let state = world.sim().admin().state().await?;
    let team_space = state.spaces.iter().find(|s| s.space_name == TEAM_SPACE);
    match team_space {
        Some(s) => chapter.line(format!(
            "team shared space {} ({}, owner {}) created for data-science",
            s.space_name,
            s.sharing_type.as_deref().unwrap_or("?"),
            s.owner_user_profile_name
                .as_deref()
                .unwrap_or("none: the team's")
        )),
        None => chapter.fail(format!("no team shared space {TEAM_SPACE}")),
    }
    chapter.fact("teamSharedSpace", TEAM_SPACE);
    for p in &state.user_profiles {
        chapter.line(format!(
            "  profile {:<28} SSO user {:<24} {}",
            p.user_profile_name,
            p.sso_user_value.clone().unwrap_or_default(),
            p.status
        ));
    }
    let profile_of = |user: &str| {
        state
            .user_profiles
            .iter()
            .find(|p| p.sso_user_value.as_deref() == Some(user))
            .map(|p| p.user_profile_name.clone())
    };
    let (Some(_ana), Some(li)) = (
        profile_of("ana.silva@example.com"),
        profile_of("li.wei@example.com"),
    ) else {
        chapter.fail("both users should have a profile mapped to their SSO user name");
        return Ok(chapter);
    };

    // Li works for a while: a JupyterLab app runs in Li's private space, and a Code Editor on the profile.
    let li_space = state
        .spaces
        .iter()
        .find(|s| s.owner_user_profile_name.as_deref() == Some(li.as_str()))
        .map(|s| s.space_name.clone());
    let domain = world.names.domain_id.clone();
    let mut seed = SeedRequest {
        apps: vec![SeedApp {
            domain_id: domain.clone(),
            user_profile_name: Some(li.clone()),
            app_type: "CodeEditor".into(),
            instance_type: Some("ml.t3.medium".into()),
            ..SeedApp::default()
        }],
        ..SeedRequest::default()
    };
    let space = match li_space {
        Some(s) => s,
        None => {
            let name = format!("{li}-lab");
            seed.spaces.push(SeedSpace {
                domain_id: domain.clone(),
                space_name: name.clone(),
                owner_user_profile_name: Some(li.clone()),
                sharing_type: Some("Private".into()),
                app_type: Some("JupyterLab".into()),
                ..SeedSpace::default()
            });
            name
        }
    };
    seed.apps.push(SeedApp {
        domain_id: domain.clone(),
        space_name: Some(space.clone()),
        app_type: "JupyterLab".into(),
        instance_type: Some("ml.g4dn.xlarge".into()),
        ..SeedApp::default()
    });
    world.sim().admin().seed(&seed).await?;
    chapter.line(format!(
        "{li} runs a Code Editor and a GPU JupyterLab in private space {space}"
    ));

    // Li leaves the team.
    let (_, li_id, li_membership) = members[1].clone();
    ids.delete_group_membership()
        .identity_store_id(&store)
        .membership_id(&li_membership)
        .send()
        .await
        .map_err(sdk_err)?;
    let (preview, _) = world
        .invoke("provision-users", json!({"dryRun": true}))
        .await?;
    chapter.record(std::slice::from_ref(&preview));
    chapter.line(format!(
        "preview (dryRun) after li.wei leaves the group: {}",
        brief(&preview.outcome)
    ));

    let event = membership_event(
        "identitystore-delete-group-membership.json",
        &store,
        &group,
        &li_id,
        &li_membership,
    )?;
    let invocations = world.put_event(&event).await?;
    chapter.record(&invocations);
    if let Some(inv) = invocations.iter().find(|i| i.function == "provision-users") {
        chapter.line(format!(
            "the removal event (membership id only) reconciles: {}",
            brief(&inv.outcome)
        ));
    }
    // The same CloudTrail event delivered twice changes nothing more.
    let again = world.put_event(&event).await?;
    chapter.record(&again);

    let state = world.sim().admin().state().await?;
    let li_left: Vec<String> = state
        .apps
        .iter()
        .filter(|a| {
            a.user_profile_name.as_deref() == Some(li.as_str())
                || a.space_name.as_deref() == Some(space.as_str())
        })
        .filter(|a| a.status != "Deleted")
        .map(|a| format!("{} {}", a.app_type, a.status))
        .collect();
    let profile_gone = !state
        .user_profiles
        .iter()
        .any(|p| p.user_profile_name == li);
    let space_gone = !state.spaces.iter().any(|s| s.space_name == space);
    chapter.line(format!(
        "{li}: apps left {li_left:?}, private space {}, profile {} (home-directory data on EFS is kept)",
        if space_gone { "deleted" } else { "still there" },
        if profile_gone { "deleted" } else { "still there" }
    ));
    if !(li_left.is_empty() && profile_gone && space_gone) {
        chapter.fail("the leaver's apps, private space and profile should be gone");
    }
    if !state
        .user_profiles
        .iter()
        .any(|p| p.sso_user_value.as_deref() == Some("ana.silva@example.com"))
    {
        chapter.fail("ana's profile must stay");
    }
    chapter.fact("group", group);
    Ok(chapter)
}
