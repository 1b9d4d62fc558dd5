//! The idle-shutdown chapter: a forgotten GPU notebook is warned, then stopped after the grace period; an app in
//! use keeps running; a space app that is used again loses its warning; the sweep reports the dollars saved.

use std::collections::BTreeMap;
use std::time::Duration;

use idle_shutdown::decision::WARNING_TAG;
use idle_shutdown::handler::Outcome as IdleOutcome;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::Chapter;
use crate::runtime_api::Outcome;
use crate::sim::admin::{
    ActivityKind, ActivityRequest, SeedApp, SeedRequest, SeedSpace, SeedUserProfile,
};
use crate::world::{World, WorldError};

fn ago(minutes: u64) -> Timestamp {
    Timestamp::now() - Duration::from_secs(minutes * 60)
}

fn app(
    domain: &str,
    owner: (&str, &str),
    app_type: &str,
    instance: &str,
    created: u64,
    active: u64,
) -> SeedApp {
    let (kind, name) = owner;
    SeedApp {
        domain_id: domain.to_string(),
        user_profile_name: (kind == "user").then(|| name.to_string()),
        space_name: (kind == "space").then(|| name.to_string()),
        app_type: app_type.to_string(),
        creation_time: Some(ago(created)),
        last_health_check: Some(ago(1)),
        last_user_activity: Some(ago(active)),
        instance_type: Some(instance.to_string()),
        ..SeedApp::default()
    }
}

fn summary(outcome: &Outcome) -> String {
    let Outcome::Response(answer) = outcome else {
        return format!("{outcome:?}");
    };
    match IdleOutcome::deserialize(answer) {
        Ok(IdleOutcome::Swept(r)) => format!(
            "scanned {}, warned {}, stopped {}, failed {}, saving ${:.4}/h",
            r.scanned, r.warned, r.stopped, r.failed, r.estimated_hourly_savings_usd
        ),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("unreadable answer ({e}): {answer}"),
    }
}

/// Runs the chapter; the world must host `idle-shutdown` (and `notify` to hear about it).
pub async fn run(world: &World) -> Result<Chapter, WorldError> {
    let mut chapter = Chapter::new("Evening: idle apps are warned, then stopped");
    let domain = world.names.domain_id.clone();
    let admin = world.sim().admin();
    admin
        .seed(&SeedRequest {
            user_profiles: ["maria-lopez", "tom-baker"]
                .iter()
                .map(|u| SeedUserProfile {
                    domain_id: domain.clone(),
                    user_profile_name: u.to_string(),
                    ..SeedUserProfile::default()
                })
                .collect(),
            spaces: vec![SeedSpace {
                domain_id: domain.clone(),
                space_name: "forecasting-lab".into(),
                sharing_type: Some("Shared".into()),
                app_type: Some("CodeEditor".into()),
                ..SeedSpace::default()
            }],
            apps: vec![
                // Forgotten since lunch on a GPU: idle 4 h > 60 min.
                app(
                    &domain,
                    ("user", "maria-lopez"),
                    "JupyterLab",
                    "ml.g4dn.xlarge",
                    300,
                    240,
                ),
                // Used ten minutes ago: keeps running.
                app(
                    &domain,
                    ("user", "tom-baker"),
                    "JupyterLab",
                    "ml.t3.medium",
                    120,
                    10,
                ),
                // The free classic Studio app: never touched.
                SeedApp {
                    app_type: "JupyterServer".into(),
                    instance_type: Some("system".into()),
                    ..app(
                        &domain,
                        ("user", "tom-baker"),
                        "JupyterServer",
                        "system",
                        600,
                        600,
                    )
                },
                // Warned ten minutes ago by the previous release, which kept the warning in a tag on the app: the
                // sweep honours it once (no second warning, the same grace), moves it to its state table and
                // removes the tag.
                SeedApp {
                    tags: BTreeMap::from([(WARNING_TAG.to_string(), ago(10).to_string())]),
                    ..app(
                        &domain,
                        ("user", "tom-baker"),
                        "KernelGateway",
                        "ml.g4dn.xlarge",
                        200,
                        120,
                    )
                },
                // A shared space's Code Editor, idle 3.5 h > 180 min on CPU.
                app(
                    &domain,
                    ("space", "forecasting-lab"),
                    "CodeEditor",
                    "ml.m5.xlarge",
                    400,
                    210,
                ),
            ],
            ..SeedRequest::default()
        })
        .await?;
    chapter.line("seeded: maria's GPU JupyterLab idle 4 h, tom's JupyterLab used 10 min ago, tom's free JupyterServer, tom's GPU kernel idle 2 h and warned 10 min ago by the previous release (old warning tag), the forecasting-lab space's Code Editor idle 3.5 h");

    let (preview, _) = world
        .invoke("idle-shutdown", json!({"dryRun": true, "domainId": domain}))
        .await?;
    chapter.line(format!(
        "dry run: {} — nothing changed",
        summary(&preview.outcome)
    ));
    chapter.record(std::slice::from_ref(&preview));

    let (first, after) = world.invoke("idle-shutdown", json!({})).await?;
    chapter.line(format!("sweep 1: {}", summary(&first.outcome)));
    chapter.record(std::slice::from_ref(&first));
    chapter.record(&after);
    let tagged = admin
        .state()
        .await?
        .apps
        .iter()
        .filter(|a| a.tags.contains_key(WARNING_TAG))
        .count();
    chapter.line(format!(
        "old warning tags left on apps: {tagged} (the sweep state holds the warnings now)"
    ));
    if tagged != 0 {
        chapter.fail("the old warning tag was not moved to the sweep state");
    }

    // Half an hour later: the grace period has passed (the warnings the sweep recorded in its state table are
    // backdated rather than waiting) and someone opens the forecasting-lab editor again.
    let state = admin.state().await?;
    let recorded = crate::sweep_state::warnings(world, &state.apps)
        .await
        .map_err(|e| WorldError::Other(e.to_string()))?;
    let mut warned = 0;
    for a in state
        .apps
        .iter()
        .filter(|a| recorded.contains_key(&crate::sweep_state::key_of(a)))
    {
        warned += 1;
        crate::sweep_state::warn_at(world, a, ago(31))
            .await
            .map_err(|e| WorldError::Other(e.to_string()))?;
    }
    chapter.line(format!(
        "{warned} app(s) have a warning on record; 31 minutes pass"
    ));
    admin
        .activity(&ActivityRequest {
            domain_id: domain.clone(),
            space_name: Some("forecasting-lab".into()),
            app_type: "CodeEditor".into(),
            kind: ActivityKind::UserActivity,
            ..ActivityRequest::default()
        })
        .await?;
    chapter.line("someone types in the forecasting-lab Code Editor");

    let (second, after) = world.invoke("idle-shutdown", json!({})).await?;
    chapter.line(format!("sweep 2: {}", summary(&second.outcome)));
    chapter.record(std::slice::from_ref(&second));
    chapter.record(&after);

    let state = admin.state().await?;
    let recorded = crate::sweep_state::warnings(world, &state.apps)
        .await
        .map_err(|e| WorldError::Other(e.to_string()))?;
    let status: BTreeMap<String, (String, bool)> = state
        .apps
        .iter()
        .map(|a| {
            let owner = a
                .user_profile_name
                .clone()
                .or_else(|| a.space_name.clone())
                .unwrap_or_default();
            (
                format!("{owner}/{}", a.app_type),
                (
                    a.status.clone(),
                    recorded.contains_key(&crate::sweep_state::key_of(a)),
                ),
            )
        })
        .collect();
    for (app, (s, tag)) in &status {
        chapter.line(format!(
            "  {app:<32} {s:<9}{}",
            if *tag { " (warned)" } else { "" }
        ));
    }
    let expect = |key: &str, want: &[&str]| {
        status
            .get(key)
            .is_some_and(|(s, _)| want.contains(&s.as_str()))
    };
    if !expect("maria-lopez/JupyterLab", &["Deleting", "Deleted"]) {
        chapter.fail("maria's idle GPU app was not stopped");
    }
    if !expect("tom-baker/JupyterLab", &["InService"])
        || !expect("tom-baker/JupyterServer", &["InService"])
    {
        chapter.fail("an app in use or the free app was stopped");
    }
    if !expect("tom-baker/KernelGateway", &["Deleting", "Deleted"]) {
        chapter
            .fail("the app warned by the previous release was not stopped after its grace period");
    }
    if !expect("forecasting-lab/CodeEditor", &["InService"])
        || status
            .get("forecasting-lab/CodeEditor")
            .is_some_and(|(_, tag)| *tag)
    {
        chapter.fail("the space app used again should run on without its warning");
    }
    chapter.fact("apps", &status);
    Ok(chapter)
}
