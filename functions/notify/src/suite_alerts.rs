//! The suite's own events as alerts: one function per detail-type saying what happened, to whom, the numbers,
//! and what to do next.

use std::collections::BTreeMap;

use serde_json::Value;
use studio_ops_shared::events::suite::{
    AppIdleWarning, AppStopped, BudgetAlert, IdleSweepCompleted, ModelRegistered,
    ProvisioningBlocked, ProvisioningFailed, PushCaughtUp, SharedSpaceReady, SharedSpaceRemoved,
    SpendDigest, SpendLine, SuiteEvent, TeamDigest, TrainingFailed, TrainingRejected,
    TrainingStarted, UserDeprovisioned, UserProvisioned,
};
use studio_ops_shared::events::time::LenientTime;

use crate::content::{
    self, Alert, Body, EventType, MetricRow, MetricTable, Routing, Severity, dollars, number,
    routing_value, short_commit, shown, subject_name,
};
use crate::context::AlertContext;
use crate::links;

/// Profiles listed by name in a blocked-provisioning alert; the rest are counted.
const MAX_LISTED_PROFILES: usize = 20;

/// The alert for a suite event.
pub fn alert(event: &SuiteEvent, ctx: &AlertContext) -> Alert {
    let draft = match event {
        SuiteEvent::UserProvisioned(d) => user_provisioned(d, ctx),
        SuiteEvent::UserDeprovisioned(d) => user_deprovisioned(d, ctx),
        SuiteEvent::ProvisioningBlocked(d) => provisioning_blocked(d, ctx),
        SuiteEvent::ProvisioningFailed(d) => provisioning_failed(d, ctx),
        SuiteEvent::SharedSpaceReady(d) => shared_space_ready(d, ctx),
        SuiteEvent::SharedSpaceRemoved(d) => shared_space_removed(d, ctx),
        SuiteEvent::AppIdleWarning(d) => app_idle_warning(d, ctx),
        SuiteEvent::AppStopped(d) => app_stopped(d, ctx),
        SuiteEvent::IdleSweepCompleted(d) => idle_sweep_completed(d),
        SuiteEvent::TrainingStarted(d) => training_started(d, ctx),
        SuiteEvent::TrainingRejected(d) => training_rejected(d, ctx),
        SuiteEvent::TrainingFailed(d) => training_failed(d, ctx),
        SuiteEvent::ModelRegistered(d) => model_registered(d, ctx),
        SuiteEvent::PushCaughtUp(d) => push_caught_up(d, ctx),
        SuiteEvent::BudgetAlert(d) => budget_alert(d, ctx),
        SuiteEvent::SpendDigest(d) => spend_digest(d, ctx),
        SuiteEvent::TeamDigest(d) => team_digest(d),
    };
    Alert {
        event_type: EventType::of_suite(event),
        severity: draft.severity,
        subject: draft.subject,
        summary: draft.summary,
        facts: draft.body.facts,
        metrics: draft.metrics,
        next_steps: draft.body.next_steps,
        links: draft.body.links,
        routing: draft.routing,
        origin: ctx.origin.clone(),
        details: event.detail(),
    }
}

/// What each kind decides; `alert` adds what they all share.
struct Draft {
    severity: Severity,
    subject: String,
    summary: String,
    body: Body,
    metrics: Option<MetricTable>,
    routing: Routing,
}

impl Draft {
    fn new(severity: Severity, subject: String, summary: String) -> Self {
        Self {
            severity,
            subject,
            summary,
            body: Body::default(),
            metrics: None,
            routing: Routing::default(),
        }
    }

    fn route(
        mut self,
        domain: Option<&str>,
        model_group: Option<&str>,
        user: Option<&str>,
    ) -> Self {
        self.routing = Routing {
            domain: routing_value(domain),
            model_group: routing_value(model_group),
            user: routing_value(user),
        };
        self
    }
}

fn studio_link(ctx: &AlertContext, domain: Option<&str>) -> Option<String> {
    ctx.domain(domain)
        .and_then(|d| links::studio(ctx.region(), d))
}

/// An event's time in `format` (UTC), from the parsed time (never a slice of the event's text).
fn time_as(text: &str, format: &str) -> Option<String> {
    LenientTime::parse(text)
        .ok()
        .map(|t| t.0.strftime(format).to_string())
}

/// `21:45 UTC` for a time today-ish, with the full timestamp kept in the facts.
fn clock(text: &str) -> Option<String> {
    time_as(text, "%H:%M UTC")
}

/// `2026-12-02 19:40 UTC`.
fn day_and_clock(text: &str) -> Option<String> {
    time_as(text, "%Y-%m-%d %H:%M UTC")
}

/// A reason placed before our own full stop: no doubled `..`.
fn clause(text: &str) -> String {
    shown(text).trim_end_matches(['.', ' ']).to_string()
}

fn minutes(n: u64) -> String {
    if n >= 120 {
        format!("{n} min ({}h{:02})", n / 60, n % 60)
    } else {
        format!("{n} min")
    }
}

/// `JupyterLab app default`, naming the space when there is one.
fn app_label(app_type: &str, app_name: &str, space: Option<&str>) -> String {
    match space.filter(|s| !s.trim().is_empty()) {
        Some(s) => format!(
            "{} {} in space {}",
            shown(app_type),
            shown(app_name),
            shown(s)
        ),
        None => format!("{} {}", shown(app_type), shown(app_name)),
    }
}

fn commit_label(commit: &str, branch: Option<&str>, repository: Option<&str>) -> String {
    let mut s = short_commit(commit);
    if let Some(b) = branch {
        s.push_str(&format!(" on {}", shown(b)));
    }
    if let Some(r) = repository {
        s.push_str(&format!(" ({})", shown(r)));
    }
    s
}

fn user_provisioned(d: &UserProvisioned, ctx: &AlertContext) -> Draft {
    let mut a = Draft::new(
        Severity::Info,
        format!("Studio access ready for {}", subject_name(&d.user_name)),
        format!(
            "A SageMaker Studio user profile was created for {} in domain {}.",
            shown(&d.user_name),
            shown(&d.domain_id)
        ),
    );
    let b = &mut a.body;
    b.fact("User", &d.user_name);
    b.fact("Studio profile", &d.user_profile_name);
    b.fact("Domain", &d.domain_id);
    b.fact_opt("Private space", d.private_space.as_deref());
    b.fact("Identity Center user", &d.user_id);
    b.fact("Group", &d.group_id);
    b.step("Open Studio from the AWS access portal (IAM Identity Center) and choose the SageMaker Studio application: you land in your own profile.");
    if let Some(space) = d.private_space.as_deref().filter(|s| !s.trim().is_empty()) {
        b.step(format!(
            "Your private JupyterLab space {} is ready: start it from Studio > JupyterLab.",
            shown(space)
        ));
    }
    b.link("Studio", studio_link(ctx, Some(&d.domain_id)));
    b.link("Domain", links::domain_console(ctx.region(), &d.domain_id));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        Some(&d.user_profile_name),
    )
}

fn user_deprovisioned(d: &UserDeprovisioned, ctx: &AlertContext) -> Draft {
    let mut a = Draft::new(
        Severity::Info,
        format!(
            "Studio profile {} removed",
            subject_name(&d.user_profile_name)
        ),
        format!(
            "The Studio user profile {} was deleted because its user is no longer in the group: {} app(s) stopped, {} private space(s) deleted.",
            shown(&d.user_profile_name),
            d.apps_deleted,
            d.spaces_deleted
        ),
    );
    let b = &mut a.body;
    b.fact("Studio profile", &d.user_profile_name);
    b.fact("Domain", &d.domain_id);
    b.fact_opt("Identity Center user", d.user_id.as_deref());
    b.fact("Apps stopped", d.apps_deleted.to_string());
    b.fact("Spaces deleted", d.spaces_deleted.to_string());
    b.step("Home-directory data on the domain's EFS volume is kept: an admin can recover files from it.");
    b.step("If this was a mistake, add the user back to the group: the next reconcile recreates the profile.");
    b.link("Domain", links::domain_console(ctx.region(), &d.domain_id));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        Some(&d.user_profile_name),
    )
}

fn provisioning_blocked(d: &ProvisioningBlocked, ctx: &AlertContext) -> Draft {
    let mut a = Draft::new(
        Severity::Error,
        format!(
            "Provisioning blocked: would remove {} of {} profiles",
            d.would_deprovision, d.managed_profiles
        ),
        format!(
            "provision-users stopped before deprovisioning anyone: {}. Nothing was changed.",
            clause(&d.reason)
        ),
    );
    let b = &mut a.body;
    b.fact("Domain", &d.domain_id);
    b.fact(
        "Would remove",
        format!(
            "{} of {} managed profiles",
            d.would_deprovision, d.managed_profiles
        ),
    );
    b.fact("Reason", &d.reason);
    if !d.profiles.is_empty() {
        let listed: Vec<String> = d
            .profiles
            .iter()
            .take(MAX_LISTED_PROFILES)
            .map(|p| shown(p))
            .collect();
        let mut text = listed.join(", ");
        if d.profiles.len() > MAX_LISTED_PROFILES {
            text.push_str(&format!(
                " and {} more",
                d.profiles.len() - MAX_LISTED_PROFILES
            ));
        }
        b.fact("Profiles", text);
    }
    b.step("Check the Identity Center group and the identity store first: an outage or a wrong group id looks like everyone leaving.");
    b.step("Preview the plan: invoke provision-users with {\"dryRun\": true}.");
    b.step("If the removals are intended, remove the users in smaller batches or raise the safety brake for one run.");
    b.link("Domain", links::domain_console(ctx.region(), &d.domain_id));
    a.route(ctx.domain(Some(&d.domain_id)), None, None)
}

fn provisioning_failed(d: &ProvisioningFailed, ctx: &AlertContext) -> Draft {
    let who = d.user_profile_name.as_deref().unwrap_or("the domain");
    let mut a = Draft::new(
        Severity::Error,
        format!(
            "Provisioning failed: {} {}",
            subject_name(&d.action),
            subject_name(who)
        ),
        format!(
            "provision-users could not {} {}: {}.",
            shown(&d.action),
            shown(who),
            clause(&d.reason)
        ),
    );
    let b = &mut a.body;
    b.fact("Action", &d.action);
    b.fact_opt("Studio profile", d.user_profile_name.as_deref());
    b.fact("Domain", &d.domain_id);
    b.fact("Reason", &d.reason);
    b.step("provision-users tries again on the next reconcile (the daily run or the next group change).");
    b.step("If it keeps failing, check the profile in the SageMaker console and provision-users' logs.");
    b.link("Domain", links::domain_console(ctx.region(), &d.domain_id));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        d.user_profile_name.as_deref(),
    )
}

fn app_idle_warning(d: &AppIdleWarning, ctx: &AlertContext) -> Draft {
    let when = clock(&d.stops_at).unwrap_or_else(|| shown(&d.stops_at));
    let mut a = Draft::new(
        Severity::Warning,
        format!(
            "Your idle {} app ({}) stops at {}",
            subject_name(&d.app_type),
            subject_name(&d.instance_type),
            subject_name(&when)
        ),
        format!(
            "Your {} app on {} has been idle for {}. studio-ops will stop it at {} unless it is used before then.",
            app_label(&d.app_type, &d.app_name, d.space_name.as_deref()),
            shown(&d.instance_type),
            minutes(d.idle_minutes),
            when
        ),
    );
    let b = &mut a.body;
    b.fact(
        "App",
        app_label(&d.app_type, &d.app_name, d.space_name.as_deref()),
    );
    b.fact_opt("Studio profile", d.user_profile_name.as_deref());
    b.fact("Instance", &d.instance_type);
    b.fact("Idle for", minutes(d.idle_minutes));
    b.fact("Stops at", &d.stops_at);
    b.fact_opt(
        "Costs",
        d.hourly_cost_usd
            .map(|c| format!("{} per hour", dollars(c))),
    );
    b.fact("Why", &d.reason);
    b.fact("Domain", &d.domain_id);
    b.step(format!(
        "To keep it, use the app before {when} (run a cell, edit a file): the next sweep sees the activity and cancels the stop."
    ));
    b.step("For a long unattended job, tag the app, its space or your profile with studio-ops:keep-alive-until = an ISO-8601 time.");
    b.step("Otherwise save your work: running kernels and unsaved state end when the app stops; files in your home directory are kept.");
    b.link("Studio", studio_link(ctx, Some(&d.domain_id)));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        d.user_profile_name.as_deref(),
    )
}

fn app_stopped(d: &AppStopped, ctx: &AlertContext) -> Draft {
    let mut a = Draft::new(
        Severity::Warning,
        format!(
            "Your idle {} app ({}) was stopped",
            subject_name(&d.app_type),
            subject_name(&d.instance_type)
        ),
        format!(
            "Your {} app on {} was idle for {} and has been stopped{}.",
            app_label(&d.app_type, &d.app_name, d.space_name.as_deref()),
            shown(&d.instance_type),
            minutes(d.idle_minutes),
            d.hourly_cost_usd
                .map(|c| format!("; this saves about {} per hour", dollars(c)))
                .unwrap_or_default()
        ),
    );
    let b = &mut a.body;
    b.fact(
        "App",
        app_label(&d.app_type, &d.app_name, d.space_name.as_deref()),
    );
    b.fact_opt("Studio profile", d.user_profile_name.as_deref());
    b.fact("Instance", &d.instance_type);
    b.fact("Idle for", minutes(d.idle_minutes));
    b.fact_opt(
        "Saves",
        d.hourly_cost_usd
            .map(|c| format!("{} per hour", dollars(c))),
    );
    b.fact("Why", &d.reason);
    b.fact("Domain", &d.domain_id);
    b.step("Your files are kept: start the app again from Studio when you need it.");
    b.step("For a long unattended job, tag the app, its space or your profile with studio-ops:keep-alive-until = an ISO-8601 time.");
    b.link("Studio", studio_link(ctx, Some(&d.domain_id)));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        d.user_profile_name.as_deref(),
    )
}

fn budget_alert(d: &BudgetAlert, ctx: &AlertContext) -> Draft {
    let whose = match (&d.space_name, &d.user_profile_name) {
        (Some(space), _) => format!("The shared space {}'s", shown(space)),
        (None, _) => "Your".to_string(),
    };
    let spent = format!(
        "{} of {} ({:.0}%)",
        dollars(d.spent_usd),
        dollars(d.budget_usd),
        if d.budget_usd > 0.0 {
            100.0 * d.spent_usd / d.budget_usd
        } else {
            0.0
        }
    );
    let (severity, subject, summary) = match d.level.as_str() {
        "approaching" => (
            Severity::Info,
            format!("{whose} Studio spend for {} is at {spent}", d.month),
            format!(
                "{whose} Studio apps have cost {spent} of this month's budget. At the current rate the month ends at {}; at the budget the running apps are stopped.",
                dollars(d.projected_usd)
            ),
        ),
        "exceeded" => {
            let when = d
                .stops_at
                .as_deref()
                .map(|t| clock(t).unwrap_or_else(|| shown(t)))
                .unwrap_or_else(|| "the next sweep".into());
            (
                Severity::Warning,
                format!(
                    "{whose} Studio budget for {} is spent: apps stop at {}",
                    d.month,
                    subject_name(&when)
                ),
                format!(
                    "{whose} Studio apps have cost {spent}: the monthly budget is spent. The running apps stop at {when}, and apps started later this month are stopped by the next sweep, unless an admin raises the budget or grants an extension."
                ),
            )
        }
        _ => (
            Severity::Warning,
            format!(
                "{whose} Studio apps were stopped: the budget for {} is spent",
                d.month
            ),
            format!(
                "{} app{} stopped for the budget ({spent}). Apps started again this month are stopped by the next sweep until an admin raises the budget or grants an extension.",
                d.stopped_apps.len(),
                if d.stopped_apps.len() == 1 {
                    " was"
                } else {
                    "s were"
                }
            ),
        ),
    };
    let mut a = Draft::new(severity, subject, summary);
    let b = &mut a.body;
    b.fact_opt("Studio profile", d.user_profile_name.as_deref());
    b.fact_opt("Shared space", d.space_name.as_deref());
    b.fact("Month", &d.month);
    b.fact("Budget", dollars(d.budget_usd));
    b.fact("Spent", dollars(d.spent_usd));
    b.fact("Projected", dollars(d.projected_usd));
    if d.hourly_cost_usd > 0.0 {
        b.fact(
            "Running apps cost",
            format!("{} per hour", dollars(d.hourly_cost_usd)),
        );
    }
    b.fact_opt("Stops at", d.stops_at.as_deref());
    if !d.stopped_apps.is_empty() {
        b.fact("Stopped", d.stopped_apps.join(", "));
    }
    b.fact("Why", &d.reason);
    b.fact("Domain", &d.domain_id);
    match d.level.as_str() {
        "approaching" => {
            b.step("Stop the apps you are not using (File > Shut Down in JupyterLab) and pick smaller instances where you can.");
            b.step("If the work needs more this month, ask an admin to raise your budget before it is reached.");
        }
        _ => {
            b.step("Save your work now: running kernels and unsaved state end when the apps stop; files in your home directory are kept.");
            b.step("An admin can raise the budget or grant a time-boxed extension (docs/cost.md); the next sweep then leaves the apps running.");
        }
    }
    b.link("Studio", studio_link(ctx, Some(&d.domain_id)));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        d.user_profile_name.as_deref(),
    )
}

/// `ml.g5.xlarge 12.5 h $17.63, ml.t3.medium 3 h $0.15`.
fn spend_lines(lines: &[SpendLine]) -> String {
    lines
        .iter()
        .map(|l| {
            format!(
                "{} {} h {}",
                shown(&l.name),
                number(l.hours),
                dollars(l.usd)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn spend_digest(d: &SpendDigest, ctx: &AlertContext) -> Draft {
    // The counts cover every stop (the list stops at 20); an event without them is read from its list.
    let (idle, for_budget) = if d.idle_stops > 0 || d.budget_stops > 0 {
        (d.idle_stops as usize, d.budget_stops as usize)
    } else {
        let b = d.stopped.iter().filter(|s| s.cause == "budget").count();
        (d.stopped.len() - b, b)
    };
    let stopped = idle + for_budget;
    let subject = format!(
        "Your Studio week {}: {} for {} h{}",
        d.week,
        dollars(d.usd),
        number(d.hours),
        match (idle, for_budget) {
            (0, 0) => String::new(),
            (i, 0) => format!(", {i} idle app(s) stopped"),
            (0, b) => format!(", {b} app(s) stopped for the budget"),
            (i, b) => format!(", {} app(s) stopped", i + b),
        }
    );
    let budget = match (d.budget_status.as_str(), d.budget_usd) {
        ("exceeded", Some(b)) => {
            format!("spent: {} of {}", dollars(d.month_to_date_usd), dollars(b))
        }
        ("approaching", Some(b)) => format!(
            "approaching: {} of {}",
            dollars(d.month_to_date_usd),
            dollars(b)
        ),
        ("within", Some(b)) => {
            format!("within: {} of {}", dollars(d.month_to_date_usd), dollars(b))
        }
        ("set-by-group", _) => {
            "set by your group (a Budget Alert tells you when it nears)".to_string()
        }
        _ => "none set".to_string(),
    };
    let summary = format!(
        "From {} to {} your Studio apps ran {} h and cost {}. {}This month so far: {}, on course for {} by its end.",
        d.from,
        d.to,
        number(d.hours),
        dollars(d.usd),
        match (idle, for_budget) {
            (0, 0) => String::new(),
            (i, 0) => format!(
                "The idle sweep stopped {i} app(s) you had left running idle, which saved about {}. ",
                dollars(d.saved_usd)
            ),
            (0, b) => format!("{b} app(s) were stopped because the month's budget was spent. "),
            (i, b) => format!(
                "The idle sweep stopped {i} app(s) you had left running idle, which saved about {}; {b} were stopped because the month's budget was spent. ",
                dollars(d.saved_usd)
            ),
        },
        dollars(d.month_to_date_usd),
        dollars(d.projected_usd)
    );
    let mut a = Draft::new(Severity::Info, subject, summary);
    let b = &mut a.body;
    b.fact("Studio profile", &d.user_profile_name);
    b.fact("Week", format!("{} ({} to {})", d.week, d.from, d.to));
    b.fact(
        "Cost",
        format!("{} for {} h", dollars(d.usd), number(d.hours)),
    );
    if d.unpriced_hours > 0.0 {
        b.fact(
            "Not priced",
            format!(
                "{} h of instance types the price table lacks",
                number(d.unpriced_hours)
            ),
        );
    }
    b.fact("By kind", spend_lines(&d.by_kind));
    b.fact("By app type", spend_lines(&d.by_app_type));
    b.fact("By instance type", spend_lines(&d.by_instance_type));
    if idle > 0 {
        b.fact(
            "Saved",
            format!("about {} (docs/cost.md, Savings)", dollars(d.saved_usd)),
        );
    }
    if stopped > 0 {
        let listed: Vec<String> = d
            .stopped
            .iter()
            .map(|s| {
                let when = day_and_clock(&s.at);
                format!(
                    "{} on {} ({}{})",
                    shown(&s.app),
                    shown(&s.instance_type),
                    if s.cause == "budget" {
                        "budget".to_string()
                    } else {
                        format!("idle {}", minutes(s.idle_minutes))
                    },
                    when.map(|w| format!(", {w}")).unwrap_or_default()
                )
            })
            .collect();
        let more = if d.stopped_omitted > 0 {
            format!(" and {} more", d.stopped_omitted)
        } else {
            String::new()
        };
        b.fact("Stopped", format!("{}{more}", listed.join("; ")));
    }
    b.fact(
        "Month",
        format!(
            "{}: {} so far, projected {}",
            d.month,
            dollars(d.month_to_date_usd),
            dollars(d.projected_usd)
        ),
    );
    b.fact("Budget", budget);
    b.fact("Domain", &d.domain_id);
    if idle > 0 {
        b.step("Shut apps down when you stop working (File > Shut Down in JupyterLab): the sweep stops them only after they have idled, and the idle time is billed.");
    }
    b.step(
        "Pick the smallest instance that does the job; a GPU instance left idle costs the most.",
    );
    b.link("Studio", studio_link(ctx, Some(&d.domain_id)));
    a.route(
        ctx.domain(Some(&d.domain_id)),
        None,
        Some(&d.user_profile_name),
    )
}

fn team_digest(d: &TeamDigest) -> Draft {
    let behind = d.sweeps_behind > 0 || !d.failed_domains.is_empty();
    // Counts from the event: added without overflow whatever they say.
    let failures = d
        .failed_invocations
        .unwrap_or(0)
        .saturating_add(d.undelivered_events.unwrap_or(0));
    let subject = format!(
        "Team Studio week {}: {}, saved about {}{}",
        d.week,
        dollars(d.usd),
        dollars(d.saved_usd),
        if behind || failures > 0 {
            " - needs a look"
        } else {
            ""
        }
    );
    let summary = format!(
        "From {} to {} the team's Studio apps ran {} h and cost {} across {} account(s); the idle sweep stopped {} idle app(s), which saved about {}{}.",
        d.from,
        d.to,
        number(d.hours),
        dollars(d.usd),
        d.accounts,
        d.apps_stopped.saturating_sub(d.apps_stopped_for_budget),
        dollars(d.saved_usd),
        if d.apps_stopped_for_budget > 0 {
            format!(
                ", and {} app(s) were stopped for spent budgets",
                d.apps_stopped_for_budget
            )
        } else {
            String::new()
        }
    );
    let severity = if behind || failures > 0 {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut a = Draft::new(severity, subject, summary);
    let b = &mut a.body;
    b.fact("Week", format!("{} ({} to {})", d.week, d.from, d.to));
    b.fact(
        "Cost",
        format!("{} for {} h", dollars(d.usd), number(d.hours)),
    );
    b.fact(
        "Saved",
        format!(
            "about {} by {} idle stop(s)",
            dollars(d.saved_usd),
            d.apps_stopped.saturating_sub(d.apps_stopped_for_budget)
        ),
    );
    b.fact(
        "Top spenders",
        d.top_spenders
            .iter()
            .map(|s| {
                format!(
                    "{} {} ({} h)",
                    shown(&s.account),
                    dollars(s.usd),
                    number(s.hours)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    b.fact(
        "Most idle stops",
        d.top_idle
            .iter()
            .map(|s| {
                format!(
                    "{} {} stop(s), saved {}",
                    shown(&s.account),
                    s.idle_stops,
                    dollars(s.saved_usd)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    if !d.unpriced_instance_types.is_empty() {
        b.fact(
            "Not priced",
            d.unpriced_instance_types
                .iter()
                .map(|l| format!("{} {} h", shown(&l.name), number(l.hours)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    b.fact(
        "Sweeps behind",
        if d.sweeps_behind == 0 {
            "none: every sweep kept up".to_string()
        } else {
            format!(
                "{} (at most {} apps left for the next sweep)",
                d.sweeps_behind, d.most_apps_not_reached
            )
        },
    );
    if !d.failed_domains.is_empty() {
        b.fact("Ledger not read", d.failed_domains.join(", "));
    }
    b.fact_opt(
        "Failed invocations",
        d.failed_invocations
            .map(|n| format!("{n} waiting in the failed-invocation queue")),
    );
    b.fact_opt(
        "Undelivered events",
        d.undelivered_events
            .map(|n| format!("{n} waiting in the delivery dead-letter queue")),
    );
    b.fact("User digests", d.user_digests.to_string());
    b.fact("Domains", d.domains.join(", "));
    if !d.unpriced_instance_types.is_empty() {
        b.step("Add the unpriced instance types to IdlePriceOverrides (docs/cost.md): until then their hours count no dollars.");
    }
    if behind {
        b.step("Some sweeps could not keep up: see the dashboard's \"Is the sweep keeping up?\" and docs/idle-shutdown.md on the sweep's budget.");
    }
    if failures > 0 {
        b.step("Events wait in the failure queues: docs/deploy.md (\"The suite\") says how to read and redrive them.");
    }
    b.step("The whole picture, by day: the studio-ops CloudWatch dashboard.");
    a
}

fn idle_sweep_completed(d: &IdleSweepCompleted) -> Draft {
    let behind = d.apps_behind > 0;
    let trouble = d.failed > 0 || d.not_reached > 0 || behind;
    let mut subject = format!(
        "{}Idle sweep: {} stopped, {} warned",
        if d.dry_run { "[dry run] " } else { "" },
        d.stopped,
        d.warned
    );
    if d.failed > 0 {
        subject.push_str(&format!(", {} failed", d.failed));
    }
    if d.estimated_hourly_savings_usd > 0.0 {
        subject.push_str(&format!(
            ", saves {}/h",
            dollars(d.estimated_hourly_savings_usd)
        ));
    }
    let mut a = Draft::new(
        if trouble {
            Severity::Warning
        } else {
            Severity::Info
        },
        subject,
        format!(
            "The idle sweep{} looked at {} app(s): {} stopped, {} warned, {} failed{}.",
            if d.dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            },
            d.scanned,
            d.stopped,
            d.warned,
            d.failed,
            if d.not_reached > 0 {
                format!(", {} not reached before the deadline", d.not_reached)
            } else {
                String::new()
            }
        ),
    );
    let b = &mut a.body;
    b.fact("Scanned", d.scanned.to_string());
    b.fact("Stopped", d.stopped.to_string());
    b.fact("Warned", d.warned.to_string());
    b.fact("Failed", d.failed.to_string());
    if d.not_reached > 0 {
        b.fact("Not reached", d.not_reached.to_string());
    }
    if behind {
        b.fact(
            "Falling behind",
            format!(
                "{} app(s) not examined for {} sweeps or more",
                d.apps_behind, d.apps_not_examined_for_sweeps
            ),
        );
    }
    if !d.skipped.is_empty() {
        let skipped: Vec<String> = d
            .skipped
            .iter()
            .map(|(why, n)| format!("{} {n}", shown(why)))
            .collect();
        b.fact("Skipped", skipped.join(", "));
    }
    b.fact(
        "Estimated savings",
        format!("{} per hour", dollars(d.estimated_hourly_savings_usd)),
    );
    if d.failed > 0 {
        b.step(
            "Check idle-shutdown's logs for the apps that failed: the next sweep tries them again.",
        );
    }
    if behind {
        b.step(
            "The sweep cannot keep up: some apps went unexamined for two sweeps or more. Raise \
             STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND (if the account's SageMaker quota allows) or lengthen the \
             schedule interval; see docs/idle-shutdown.md.",
        );
    } else if d.not_reached > 0 {
        b.step(
            "The sweep ran out of time before reaching every app: the next sweep starts with them.",
        );
    }
    if !trouble {
        b.step("No action needed.");
    }
    a
}

fn training_started(d: &TrainingStarted, ctx: &AlertContext) -> Draft {
    let mut a = Draft::new(
        Severity::Info,
        format!(
            "Training started: {} @ {}",
            subject_name(&d.model),
            subject_name(&short_commit(&d.commit_id))
        ),
        format!(
            "A push to {} ({}) started training job {} for model {}.",
            shown(&d.repository),
            shown(&d.branch),
            shown(&d.training_job_name),
            shown(&d.model)
        ),
    );
    let region = ctx.region();
    let b = &mut a.body;
    b.fact("Model", &d.model);
    b.fact("Training job", &d.training_job_name);
    b.fact(
        "Instances",
        format!("{} x {}", d.instance_count, shown(&d.instance_type)),
    );
    b.fact(
        "Worst-case cost",
        match (d.max_cost_usd, &d.cost_basis) {
            (Some(_), Some(basis)) => shown(basis),
            (Some(usd), None) => format!("${usd:.2}"),
            (None, Some(basis)) => format!("unknown: {}", shown(basis)),
            (None, None) => "not estimated".to_string(),
        },
    );
    b.fact(
        "Commit",
        commit_label(&d.commit_id, Some(&d.branch), Some(&d.repository)),
    );
    b.fact_opt("Author", d.author.as_deref());
    b.step("Follow the job on its page or in its logs; another alert follows when the model is registered or the job fails.");
    b.link(
        "Training job",
        links::training_job_console(region, &d.training_job_name),
    );
    b.link(
        "Logs",
        links::training_job_logs(region, &d.training_job_name),
    );
    a.route(ctx.domain(None), Some(&d.model), d.author.as_deref())
}

fn training_rejected(d: &TrainingRejected, ctx: &AlertContext) -> Draft {
    let location = match d.line {
        Some(line) => format!("{}:{line}", d.file),
        None => d.file.clone(),
    };
    let mut a = Draft::new(
        Severity::Warning,
        format!("Training rejected: {}", subject_name(&location)),
        format!(
            "The training manifest {} in commit {} was rejected, so no training started: {}.",
            shown(&d.file),
            short_commit(&d.commit_id),
            clause(&d.reason)
        ),
    );
    let b = &mut a.body;
    b.fact(
        "File",
        match d.line {
            Some(line) => format!("{}, line {line}", shown(&d.file)),
            None => shown(&d.file),
        },
    );
    b.fact("Reason", &d.reason);
    b.fact(
        "Commit",
        commit_label(&d.commit_id, Some(&d.branch), Some(&d.repository)),
    );
    b.fact_opt("Author", d.author.as_deref());
    b.step(format!(
        "Fix {} (see the manifest reference in the README) and push again.",
        match d.line {
            Some(line) => format!("line {line} of {}", shown(&d.file)),
            None => shown(&d.file),
        }
    ));
    b.step("Settings such as the execution role, network and output location come from the function's configuration and cannot be set in a manifest.");
    a.route(ctx.domain(None), None, d.author.as_deref())
}

fn shared_space_ready(d: &SharedSpaceReady, ctx: &AlertContext) -> Draft {
    let app = if d.app_type == "CodeEditor" {
        "Code Editor"
    } else {
        "JupyterLab"
    };
    let team = d.group_name.as_deref().unwrap_or(&d.group_id);
    let (verb, summary) = if d.change == "updated" {
        (
            "updated",
            format!(
                "The team shared space {} of {} has its new settings; a running app picks them up when it is next started.",
                shown(&d.space_name),
                shown(team)
            ),
        )
    } else {
        (
            "ready",
            format!(
                "The team shared space {} ({app}) is ready for {}: open it from Studio's Spaces, and work on the same files together.",
                shown(&d.space_name),
                shown(team)
            ),
        )
    };
    let mut a = Draft::new(
        Severity::Info,
        format!("Shared space {verb}: {}", subject_name(&d.space_name)),
        summary,
    );
    let b = &mut a.body;
    b.fact("Space", shown(&d.space_name));
    b.fact("App", app);
    b.fact("Group", shown(team));
    b.fact_opt("Default instance type", d.instance_type.as_deref());
    b.step("Open it in Studio: Home → Spaces (or the JupyterLab / Code Editor tile) → the space → Run space → Open.");
    b.step("Everything saved there is shared with the whole domain; keep personal work in your private space.");
    a.route(ctx.domain(Some(&d.domain_id)), None, None)
}

fn shared_space_removed(d: &SharedSpaceRemoved, ctx: &AlertContext) -> Draft {
    let mut a = Draft::new(
        Severity::Warning,
        format!("Shared space removed: {}", subject_name(&d.space_name)),
        format!(
            "The team shared space {} was removed because its group no longer declares it ({} app(s) stopped first). Its files are gone with it.",
            shown(&d.space_name),
            d.apps_deleted
        ),
    );
    let b = &mut a.body;
    b.fact("Space", shown(&d.space_name));
    b.fact("Group", shown(&d.group_id));
    b.fact("Apps stopped", d.apps_deleted.to_string());
    b.step("If this was a mistake, declare the space again in ProvisionGroupSettings: the next reconcile creates it (empty).");
    a.route(ctx.domain(Some(&d.domain_id)), None, None)
}

fn push_caught_up(d: &PushCaughtUp, ctx: &AlertContext) -> Draft {
    let range = match &d.from_commit {
        Some(from) => format!("{}..{}", short_commit(from), short_commit(&d.to_commit)),
        None => format!("new branch at {}", short_commit(&d.to_commit)),
    };
    let mut a = Draft::new(
        Severity::Info,
        format!("Push caught up: {}", subject_name(&d.branch)),
        format!(
            "CodeCommit did not deliver a push to {} ({range}), so the hourly catch-up evaluated it: {} training job(s) started, {} manifest(s) rejected.",
            shown(&d.branch),
            d.started.len(),
            d.rejected.len()
        ),
    );
    let b = &mut a.body;
    b.fact(
        "Commit",
        commit_label(&d.to_commit, Some(&d.branch), Some(&d.repository)),
    );
    b.fact_opt(
        "Previously evaluated",
        d.from_commit.as_deref().map(short_commit),
    );
    if !d.started.is_empty() {
        b.fact("Jobs started", d.started.join(", "));
    }
    if !d.rejected.is_empty() {
        b.fact("Rejected", d.rejected.join(", "));
    }
    b.fact_opt("Author", d.author.as_deref());
    b.step("Nothing to do: the push was trained late rather than never. If this repeats, check the CodeCommit → EventBridge rule of the stack.");
    let region = ctx.region();
    for job in d.started.iter().take(3) {
        b.link("Training job", links::training_job_console(region, job));
    }
    a.route(ctx.domain(None), None, d.author.as_deref())
}

fn training_failed(d: &TrainingFailed, ctx: &AlertContext) -> Draft {
    let verb = if d.status == "Stopped" {
        "stopped"
    } else {
        "failed"
    };
    let mut a = Draft::new(
        Severity::Error,
        format!(
            "Training {verb}: {} ({})",
            subject_name(&d.model),
            subject_name(&d.training_job_name)
        ),
        format!(
            "Training job {} for model {} {verb}: {}.",
            shown(&d.training_job_name),
            shown(&d.model),
            clause(&d.failure_reason)
        ),
    );
    let region = ctx.region();
    let b = &mut a.body;
    b.fact("Model", &d.model);
    b.fact("Training job", &d.training_job_name);
    b.fact("Status", &d.status);
    b.fact("Reason", &d.failure_reason);
    b.fact_opt(
        "Commit",
        d.commit_id.as_deref().map(|c| commit_label(c, None, None)),
    );
    b.fact_opt("Author", d.author.as_deref());
    b.step("Read the reason and the job's logs, fix the cause and push a new commit: a new commit trains again.");
    b.link(
        "Training job",
        links::training_job_console(region, &d.training_job_name),
    );
    b.link(
        "Logs",
        links::training_job_logs(region, &d.training_job_name),
    );
    a.route(ctx.domain(None), Some(&d.model), d.author.as_deref())
}

fn model_registered(d: &ModelRegistered, ctx: &AlertContext) -> Draft {
    let version = d
        .model_package_arn
        .rsplit('/')
        .next()
        .filter(|v| v.parse::<u64>().is_ok())
        .map(|v| format!("v{v}"));
    let mut a = Draft::new(
        Severity::Info,
        format!(
            "Model registered: {}{} pending approval",
            subject_name(&d.model_package_group_name),
            version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        ),
        format!(
            "Training job {} finished and model {} was registered{} in group {}, pending approval.",
            shown(&d.training_job_name),
            shown(&d.model),
            version
                .as_deref()
                .map(|v| format!(" as {v}"))
                .unwrap_or_default(),
            shown(&d.model_package_group_name)
        ),
    );
    let region = ctx.region();
    let b = &mut a.body;
    b.fact("Model", &d.model);
    b.fact("Model group", &d.model_package_group_name);
    b.fact_opt("Version", version.as_deref());
    b.fact("Training job", &d.training_job_name);
    b.fact_opt(
        "Commit",
        d.commit_id.as_deref().map(|c| commit_label(c, None, None)),
    );
    b.fact_opt(
        "MLflow run",
        content::mlflow_run(d.mlflow_run_id.as_deref(), d.mlflow_run_url.as_deref()),
    );
    b.fact_opt("Author", d.author.as_deref());
    b.fact("Package ARN", &d.model_package_arn);
    b.step(format!(
        "A reviewer approves or rejects it in Studio (Models > Registered models > {}); an alert follows either way.",
        shown(&d.model_package_group_name)
    ));
    b.link(
        "Model registry",
        links::model_group_console(region, &d.model_package_group_name),
    );
    b.link(
        "Training job",
        links::training_job_console(region, &d.training_job_name),
    );
    a.metrics = metrics_table(&d.metrics);
    a.route(
        ctx.domain(None),
        Some(&d.model_package_group_name),
        d.author.as_deref(),
    )
}

fn metrics_table(metrics: &BTreeMap<String, f64>) -> Option<MetricTable> {
    let rows: Vec<MetricRow> = metrics
        .iter()
        .map(|(name, value)| MetricRow {
            name: name.clone(),
            value: *value,
            baseline: None,
        })
        .collect();
    (!rows.is_empty()).then(|| MetricTable {
        caption: "Metrics".to_string(),
        rows,
    })
}

/// A sweep that warned, stopped, failed and missed nothing: worth a log line, not an e-mail every 15 minutes.
pub fn is_quiet_sweep(event: &SuiteEvent) -> bool {
    matches!(event, SuiteEvent::IdleSweepCompleted(d)
        if d.warned == 0 && d.stopped == 0 && d.failed == 0 && d.not_reached == 0 && d.apps_behind == 0)
}

/// The identity of a suite event for deduplication: detail-type plus a hash of the detail in canonical form
/// (keys sorted, unknown fields included), so a republished fact is the same key and any change is a new one.
pub fn dedup_key(detail_type: &str, detail: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut canonical = String::new();
    write_canonical(detail, &mut canonical);
    let hash = Sha256::digest(canonical.as_bytes());
    format!("suite|{detail_type}|{}", hex::encode(&hash[..16]))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_budget_level_says_what_happened_and_whom_it_concerns() {
        let base = BudgetAlert {
            domain_id: "d-1".into(),
            level: "approaching".into(),
            user_profile_name: Some("ana".into()),
            space_name: None,
            month: "2026-12".into(),
            budget_usd: 100.0,
            spent_usd: 85.0,
            projected_usd: 130.0,
            hourly_cost_usd: 1.41,
            stops_at: None,
            stopped_apps: vec![],
            reason: "spent $85.00 of the $100.00 monthly budget (85%)".into(),
        };
        let ctx = AlertContext::default();
        let a = budget_alert(&base, &ctx);
        assert_eq!(a.severity, Severity::Info);
        assert!(
            a.subject.contains("at $85.00 of $100.00 (85%)"),
            "{}",
            a.subject
        );
        let enforced = BudgetAlert {
            level: "enforced".into(),
            spent_usd: 101.0,
            stopped_apps: vec!["JupyterLab default".into(), "KernelGateway k".into()],
            ..base.clone()
        };
        let a = budget_alert(&enforced, &ctx);
        assert_eq!(a.severity, Severity::Warning);
        assert!(
            a.summary.starts_with("2 apps were stopped"),
            "{}",
            a.summary
        );
        let space = BudgetAlert {
            user_profile_name: None,
            space_name: Some("team-lab".into()),
            ..base
        };
        let a = budget_alert(&space, &ctx);
        assert!(a.subject.contains("team-lab"), "{}", a.subject);
    }

    #[test]
    fn dedup_key_ignores_key_order_but_not_values() {
        let a = dedup_key(
            "App Stopped",
            &json!({"a": 1, "b": {"x": [1, 2], "y": "z"}}),
        );
        let b = dedup_key(
            "App Stopped",
            &json!({"b": {"y": "z", "x": [1, 2]}, "a": 1}),
        );
        let c = dedup_key(
            "App Stopped",
            &json!({"a": 2, "b": {"x": [1, 2], "y": "z"}}),
        );
        let d = dedup_key(
            "App Idle Warning",
            &json!({"a": 1, "b": {"x": [1, 2], "y": "z"}}),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(a.starts_with("suite|App Stopped|") && a.len() < 100);
    }

    #[test]
    fn quiet_sweeps_are_recognised() {
        let quiet = SuiteEvent::IdleSweepCompleted(IdleSweepCompleted {
            scanned: 10,
            ..Default::default()
        });
        assert!(is_quiet_sweep(&quiet));
        let busy = SuiteEvent::IdleSweepCompleted(IdleSweepCompleted {
            scanned: 10,
            not_reached: 1,
            ..Default::default()
        });
        assert!(!is_quiet_sweep(&busy));
        let behind = SuiteEvent::IdleSweepCompleted(IdleSweepCompleted {
            scanned: 10,
            apps_behind: 3,
            apps_not_examined_for_sweeps: 2,
            ..Default::default()
        });
        assert!(!is_quiet_sweep(&behind));
    }

    #[test]
    fn digests_with_absurd_counts_are_rendered_not_panicked_on() {
        let user = SpendDigest {
            user_profile_name: "ana".into(),
            idle_stops: u32::MAX,
            budget_stops: u32::MAX,
            stopped_omitted: u32::MAX,
            ..Default::default()
        };
        let a = spend_digest(&user, &AlertContext::default());
        assert!(a.subject.contains("app(s) stopped"), "{}", a.subject);
        let team = TeamDigest {
            failed_invocations: Some(u32::MAX),
            undelivered_events: Some(u32::MAX),
            apps_stopped_for_budget: u32::MAX,
            ..Default::default()
        };
        let t = team_digest(&team);
        assert_eq!(t.severity, Severity::Warning);
    }

    #[test]
    fn clock_and_minutes() {
        assert_eq!(clock("2026-11-24T21:45:00Z").as_deref(), Some("21:45 UTC"));
        assert_eq!(clock("soon"), None);
        assert_eq!(
            day_and_clock("2026-12-02T20:40:00+01:00").as_deref(),
            Some("2026-12-02 19:40 UTC")
        );
        assert_eq!(day_and_clock("\u{2003}2026-12-02T19:40:00Z\u{2003}é"), None);
        assert_eq!(minutes(75), "75 min");
        assert_eq!(minutes(150), "150 min (2h30)");
    }

    #[test]
    fn a_digest_tells_idle_stops_and_their_savings_from_stops_for_the_budget() {
        use studio_ops_shared::events::suite::StoppedApp;
        let stop = |cause: &str| StoppedApp {
            app: "JupyterLab default".into(),
            instance_type: "ml.g5.xlarge".into(),
            cause: cause.into(),
            at: "2026-12-02T19:40:00Z".into(),
            idle_minutes: 75,
            saved_usd: (cause == "idle").then_some(3.0),
        };
        let digest = |stopped: Vec<StoppedApp>| SpendDigest {
            user_profile_name: "ana".into(),
            week: "2026-W49".into(),
            saved_usd: if stopped.iter().any(|s| s.cause == "idle") {
                3.0
            } else {
                0.0
            },
            stopped,
            budget_status: "no-budget".into(),
            ..Default::default()
        };
        let budget = spend_digest(&digest(vec![stop("budget")]), &AlertContext::default());
        assert!(
            budget.subject.ends_with("1 app(s) stopped for the budget"),
            "{}",
            budget.subject
        );
        assert!(!budget.summary.contains("saved"), "{}", budget.summary);
        assert!(budget.body.facts.iter().all(|f| f.label != "Saved"));
        let idle = spend_digest(&digest(vec![stop("idle")]), &AlertContext::default());
        assert!(
            idle.subject.ends_with("1 idle app(s) stopped"),
            "{}",
            idle.subject
        );
        assert!(
            idle.summary.contains("saved about $3.00"),
            "{}",
            idle.summary
        );
        let quiet = spend_digest(&digest(vec![]), &AlertContext::default());
        assert!(quiet.subject.ends_with(" h"), "{}", quiet.subject);
    }

    #[test]
    fn a_sweep_that_cannot_keep_up_says_so_and_what_to_raise() {
        let d = IdleSweepCompleted {
            scanned: 20_000,
            examined: 9_000,
            not_reached: 11_000,
            apps_behind: 1_200,
            apps_not_examined_for_sweeps: 3,
            ..Default::default()
        };
        let a = idle_sweep_completed(&d);
        assert_eq!(a.severity, Severity::Warning);
        let behind = a
            .body
            .facts
            .iter()
            .find(|f| f.label == "Falling behind")
            .unwrap();
        assert_eq!(
            behind.value,
            "1200 app(s) not examined for 3 sweeps or more"
        );
        assert!(
            a.body.next_steps[0].contains("STUDIO_OPS_IDLE_SAGEMAKER_CALLS_PER_SECOND"),
            "{:?}",
            a.body.next_steps
        );
        // Only cut short: the next sweep continues, nothing to raise yet.
        let cut = idle_sweep_completed(&IdleSweepCompleted {
            not_reached: 5,
            ..Default::default()
        });
        assert!(!cut.body.facts.iter().any(|f| f.label == "Falling behind"));
        assert!(cut.body.next_steps[0].contains("next sweep starts with them"));
    }

    #[test]
    fn long_profile_lists_are_counted() {
        let d = ProvisioningBlocked {
            domain_id: "d-x".into(),
            would_deprovision: 30,
            managed_profiles: 31,
            reason: "r".into(),
            profiles: (0..30).map(|i| format!("p{i}")).collect(),
        };
        let a = provisioning_blocked(&d, &AlertContext::default());
        let profiles = a.body.facts.iter().find(|f| f.label == "Profiles").unwrap();
        assert!(
            profiles.value.ends_with("p19 and 10 more"),
            "{}",
            profiles.value
        );
    }
}
