//! The "end of the month" chapter: the spend ledger after the day's apps, a user crossing 80 % and then 100 % of a
//! small budget (a notice, then a warning with a grace period, then her apps stopped, and an app she starts later
//! stopped by the next sweep), the month's spend report, the weekly digests as the team receives them (sent once
//! however often the schedule delivers), and the dashboard checked against what the functions emit.
//! The world runs with [`DEMO_BUDGETS`] (`WorldConfig::team_day`): Nina has a $1 budget, nobody else has one.

use std::time::Duration;

use idle_shutdown::budget::Notice;
use idle_shutdown::handler::Outcome as IdleOutcome;
use idle_shutdown::ledger::Account;
use idle_shutdown::report::{BudgetLine, SweepReport};
use idle_shutdown::weekly::Week;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::Chapter;
use crate::runtime_api::Outcome;
use crate::sim::admin::{SeedApp, SeedRequest, SeedUserProfile};
use crate::world::{World, WorldError};

/// The template's `Budgets` in the demo's world: enforce, Nina's budget $1 (tiny, so that minutes of a GPU cross
/// it), nobody else's.
pub const DEMO_BUDGETS: &str = r#"{"mode":"enforce","warnAtPercent":80,"users":{"nina-patel":1}}"#;
const NINA: &str = "nina-patel";

fn ago(minutes: u64) -> Timestamp {
    Timestamp::now() - Duration::from_secs(minutes * 60)
}

fn gpu_app(domain: &str, app_type: &str, created: u64) -> SeedApp {
    SeedApp {
        domain_id: domain.to_string(),
        user_profile_name: Some(NINA.to_string()),
        app_type: app_type.to_string(),
        creation_time: Some(ago(created)),
        last_health_check: Some(ago(1)),
        last_user_activity: Some(ago(1)),
        instance_type: Some("ml.g5.xlarge".into()),
        ..SeedApp::default()
    }
}

fn report_of(outcome: &Outcome) -> Option<SweepReport> {
    let Outcome::Response(answer) = outcome else {
        return None;
    };
    match IdleOutcome::deserialize(answer) {
        Ok(IdleOutcome::Swept(r)) => Some(r),
        _ => None,
    }
}

fn nina(report: &SweepReport) -> Option<&BudgetLine> {
    report
        .budgets
        .iter()
        .find(|b| b.account == format!("user/{NINA}"))
}

async fn sweep(
    world: &World,
    chapter: &mut Chapter,
    label: &str,
) -> Result<Option<BudgetLine>, WorldError> {
    let (sweep, after) = world.invoke("idle-shutdown", json!({})).await?;
    chapter.record(std::slice::from_ref(&sweep));
    chapter.record(&after);
    let report = report_of(&sweep.outcome);
    let line = report.as_ref().and_then(nina).cloned();
    match (&report, &line) {
        (Some(r), Some(b)) => chapter.line(format!(
            "{label}: metered {} apps (${:.2} this month in the domain); nina {} — {}{}",
            r.metered,
            r.month_to_date_usd,
            b.step,
            b.reason,
            b.until
                .as_deref()
                .map(|u| format!(" (until {u})"))
                .unwrap_or_default()
        )),
        (Some(r), None) => chapter.line(format!(
            "{label}: metered {} apps; nina not near her budget",
            r.metered
        )),
        (None, _) => chapter.line(format!("{label}: {:?}", sweep.outcome)),
    }
    Ok(line)
}

/// Runs the chapter; the world must host `idle-shutdown` with [`DEMO_BUDGETS`] (and `notify` to hear about it).
pub async fn run(world: &World) -> Result<Chapter, WorldError> {
    let mut chapter = Chapter::new("End of the month: what Studio cost, and a budget that is kept");
    let domain = world.names.domain_id.clone();
    let admin = world.sim().admin();
    admin
        .seed(&SeedRequest {
            user_profiles: vec![SeedUserProfile {
                domain_id: domain.clone(),
                user_profile_name: NINA.into(),
                ..SeedUserProfile::default()
            }],
            apps: vec![gpu_app(&domain, "JupyterLab", 40)],
            ..SeedRequest::default()
        })
        .await?;
    chapter.line(
        "nina (budget $1/month) has worked 40 min on a GPU JupyterLab ($1.41/h) and is still at it",
    );

    let first = sweep(world, &mut chapter, "sweep 1").await?;
    if first.as_ref().map(|b| b.step.as_str()) != Some("approaching-notice") {
        chapter.fail(format!(
            "nina past 80 % should get the approaching notice: {first:?}"
        ));
    }

    admin
        .seed(&SeedRequest {
            apps: vec![gpu_app(&domain, "KernelGateway", 10)],
            ..SeedRequest::default()
        })
        .await?;
    chapter.line("she also started a GPU kernel 10 minutes ago");
    let second = sweep(world, &mut chapter, "sweep 2").await?;
    if second.as_ref().map(|b| b.step.as_str()) != Some("exceeded-notice") {
        chapter.fail(format!(
            "nina past 100 % should be warned her apps stop: {second:?}"
        ));
    }

    crate::sweep_state::backdate_notice(
        world,
        &domain,
        &Account::User(NINA.into()),
        Notice::Exceeded,
        ago(31),
    )
    .await
    .map_err(WorldError::Other)?;
    chapter.line(
        "the 30-minute grace period passes (the notice is backdated), and nobody raised her budget",
    );
    let third = sweep(world, &mut chapter, "sweep 3").await?;
    match &third {
        Some(b) if b.step == "stopped" && b.apps.len() == 2 => {
            chapter.line(format!("  stopped for the budget: {}", b.apps.join(", ")))
        }
        other => chapter.fail(format!(
            "nina's two GPU apps should be stopped for the budget: {other:?}"
        )),
    }
    let stopped = admin
        .state()
        .await?
        .apps
        .iter()
        .filter(|a| a.user_profile_name.as_deref() == Some(NINA))
        .filter(|a| a.status == "Deleting" || a.status == "Deleted")
        .count();
    if stopped != 2 {
        chapter.fail(format!("{stopped} of nina's 2 apps are stopping"));
    }

    admin
        .seed(&SeedRequest {
            apps: vec![gpu_app(&domain, "CodeEditor", 2)],
            ..SeedRequest::default()
        })
        .await?;
    chapter.line(
        "she opens a GPU Code Editor instead; the month is not over and her budget was not raised",
    );
    let fourth = sweep(world, &mut chapter, "sweep 4").await?;
    match &fourth {
        Some(b) if b.step == "stopped" && b.apps.len() == 1 => chapter.line(format!(
            "  stopped at once, no new warning: {}",
            b.apps.join(", ")
        )),
        other => chapter.fail(format!(
            "an app started after the stop should be stopped by the next sweep: {other:?}"
        )),
    }

    let (answer, _) = world
        .invoke("idle-shutdown", json!({"report": "spend"}))
        .await?;
    chapter.record(std::slice::from_ref(&answer));
    let Outcome::Response(report) = &answer.outcome else {
        chapter.fail(format!("the spend report failed: {:?}", answer.outcome));
        return Ok(chapter);
    };
    chapter.line(format!(
        "spend report {}: ${} for {} h ({} h unpriced)",
        report["month"],
        report["total"]["usd"],
        report["total"]["hours"],
        report["total"]["unpricedHours"]
    ));
    for kind in ["users", "spaces"] {
        for line in report[kind].as_array().into_iter().flatten().take(5) {
            chapter.line(format!(
                "  {:<7} {:<24} ${:<8} {} h",
                kind.trim_end_matches('s'),
                line["name"].as_str().unwrap_or("?"),
                line["usd"],
                line["hours"]
            ));
        }
    }
    if report["total"]["usd"].as_f64().unwrap_or(0.0) <= 0.0
        || !report["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|l| l["name"] == NINA))
    {
        chapter.fail("the spend report should show the month's dollars and nina's line");
    }
    chapter.fact("spendReport", report);
    digests(world, &mut chapter).await?;
    dashboard(&mut chapter);
    Ok(chapter)
}

/// A subscription that only digests pass (the filter policy admins use), and its queue's URL.
async fn digest_inbox(world: &World) -> Result<String, WorldError> {
    crate::world::subscribe_queue(
        world.moto_sdk(),
        &world.names.topic_arn,
        "digest-inbox",
        Some(r#"{"event_type": ["spend-digest", "team-digest"]}"#),
        false,
    )
    .await
}

/// The week's digests as the team receives them (through notify and the topic, to a subscription that filters on
/// `event_type`), and a second delivery of the schedule that sends nothing.
async fn digests(world: &World, chapter: &mut Chapter) -> Result<(), WorldError> {
    let inbox = digest_inbox(world).await?;
    let week = Week::last_before(Timestamp::now() + Duration::from_secs(7 * 86_400)).id();
    chapter.line(format!(
        "Monday: the weekly digests of {week} (the demo names this week; the schedule sends the last full one)"
    ));
    let request = json!({"digest": "weekly", "week": week});
    let (sent, after) = world.invoke("idle-shutdown", request.clone()).await?;
    chapter.record(std::slice::from_ref(&sent));
    chapter.record(&after);
    let received = world.drain_queue(&inbox).await?;
    let mut kinds = Vec::new();
    for envelope in &received {
        let subject = envelope["Subject"].as_str().unwrap_or("?");
        let doc: serde_json::Value = envelope["Message"]
            .as_str()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        kinds.push(doc["eventType"].as_str().unwrap_or("?").to_string());
        chapter.line(format!("  received: {subject}"));
        chapter.line(format!("    {}", doc["summary"].as_str().unwrap_or("")));
        for fact in doc["facts"].as_array().into_iter().flatten() {
            let label = fact["label"].as_str().unwrap_or("");
            if [
                "By instance type",
                "Stopped",
                "Budget",
                "Top spenders",
                "Most idle stops",
                "Sweeps behind",
                "Failed invocations",
            ]
            .contains(&label)
            {
                chapter.line(format!(
                    "    {label}: {}",
                    fact["value"].as_str().unwrap_or("")
                ));
            }
        }
    }
    kinds.sort();
    let users = kinds.iter().filter(|k| *k == "spend-digest").count();
    if users == 0 || kinds.iter().filter(|k| *k == "team-digest").count() != 1 {
        chapter.fail(format!(
            "each user with spend and the team should get a digest: {kinds:?}"
        ));
    }
    chapter.fact("digestsReceived", &received);
    let (again, after) = world.invoke("idle-shutdown", request).await?;
    chapter.record(std::slice::from_ref(&again));
    chapter.record(&after);
    let repeated = world.drain_queue(&inbox).await?;
    match &again.outcome {
        Outcome::Response(r) if r["sent"] == 0 && repeated.is_empty() => chapter.line(format!(
            "the schedule delivers again: nothing is sent twice ({} already sent, team {})",
            r["alreadySent"], r["team"]
        )),
        other => chapter.fail(format!(
            "a second delivery should send nothing: {other:?}, {} received",
            repeated.len()
        )),
    }
    Ok(())
}

/// The template's dashboard, read and checked against the functions' metrics (what `make deploy` would create).
fn dashboard(chapter: &mut Chapter) {
    let text = match crate::template::read_template_text(&crate::moto::workspace_root()) {
        Ok(t) => t,
        Err(e) => return chapter.fail(format!("the template: {e}")),
    };
    match crate::dashboard::check(&text) {
        Ok(boards) => {
            for b in boards {
                chapter.line(format!(
                    "dashboard {}: {} widgets, {} metrics and {} alarms, each one the code emits or the stack owns",
                    b.logical_id,
                    b.widgets,
                    b.metrics.len(),
                    b.alarms.len()
                ));
            }
        }
        Err(errors) => chapter.fail(format!(
            "the dashboard reads what nothing emits: {errors:?}"
        )),
    }
}
