//! Keeping budgets, the last step of a sweep: per domain, each account's spend this month (the ledger as metering
//! left it) against its budget (`budget.rs`), then what `budget::decide` says — a notice (claimed in the ledger
//! first, so that two sweeps cannot both send it, and taken back if it cannot be published), or a stop of the
//! account's running billable apps with one `Budget Alert` naming them. A user's group is read (their profile's
//! tags, once per sweep) only when their spend could reach the lowest budget's notice threshold. In a dry run, or
//! with the budgets in dry-run mode, every decision is reported and nothing is sent or stopped.

use std::collections::BTreeMap;

use jiff::Timestamp;
use studio_ops_shared::events::suite::{BudgetAlert, SuiteEvent};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::publisher::PublishEvents;

use crate::budget::{GROUP_TAG, Mode, Notice, Standing, Step, decide};
use crate::decision::{AppListing, AppOwner};
use crate::ledger::{Account, month_bounds, month_of, parse_month};
use crate::ports::{DeleteOutcome, FailureQueues, SpendLedger, Studio, SweepState};
use crate::report::{BudgetLine, MAX_BUDGET_LINES};
use crate::sweep::{DomainSpend, Run, Sweeper, Tally};
use crate::weekly::Stop;
use studio_ops_shared::prices::round_usd;

/// One account's month: what it spent (priced hours) and its running apps with their hourly prices.
#[derive(Default)]
struct AccountMonth {
    spent: f64,
    running: Vec<(AppListing, Option<f64>)>,
}

/// A time to the second, as alerts and reports show it.
fn seconds(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

fn label(app: &AppListing) -> String {
    match &app.owner {
        AppOwner::Space(s) => format!("{} {} (space {s})", app.app_type, app.app_name),
        AppOwner::UserProfile(_) => format!("{} {}", app.app_type, app.app_name),
    }
}

impl<S, P, I, D, Q> Sweeper<'_, S, P, I, D, Q>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    /// Checks every account of every metered domain against its budget and acts on it; a sweep limited to one user
    /// checks only that user's budget (it listed no one else's apps).
    pub(crate) async fn keep_budgets(
        &self,
        run: &Run,
        tally: &mut Tally,
        spends: Vec<DomainSpend>,
        only_user: Option<&str>,
    ) {
        let budgets = &self.config.budgets;
        if !budgets.enabled() {
            return;
        }
        let month = month_of(run.now);
        let month_end = parse_month(&month).map_or(run.now.as_second(), |m| month_bounds(m).1);
        for spend in spends {
            let mut accounts: BTreeMap<Account, AccountMonth> = BTreeMap::new();
            for usage in spend.records.values() {
                accounts.entry(usage.account.clone()).or_default().spent +=
                    usage.usd().unwrap_or(0.0);
            }
            for (app, account, price) in spend.running {
                accounts
                    .entry(account)
                    .or_default()
                    .running
                    .push((app, price));
            }
            for (account, held) in accounts {
                let in_scope = match (only_user, &account) {
                    (None, _) => true,
                    (Some(user), Account::User(u)) => u.eq_ignore_ascii_case(user),
                    (Some(_), Account::Space(_) | Account::Repository(_)) => false,
                };
                if !in_scope {
                    continue;
                }
                let Some(budget) = self
                    .budget_of(&spend.domain, &account, held.spent, run)
                    .await
                else {
                    continue;
                };
                let hourly: f64 = held.running.iter().filter_map(|(_, p)| *p).sum();
                let standing = Standing::new(
                    budget,
                    round_usd(held.spent),
                    hourly,
                    run.now.as_second(),
                    month_end,
                );
                let notices = spend
                    .notices
                    .get(&account.key())
                    .cloned()
                    .unwrap_or_default();
                let step = decide(
                    &standing,
                    budgets.warn_at_percent,
                    &notices,
                    budgets.extension(&account),
                    self.config.policy.grace,
                    run.now,
                );
                let under = standing.percent() < f64::from(budgets.warn_at_percent);
                if step == Step::Nothing && (under || notices == Default::default()) {
                    continue; // under the threshold (again, after a raise): not worth a line
                }
                let line = self
                    .act_on_budget(
                        run,
                        &spend.domain,
                        &month,
                        &account,
                        &standing,
                        step,
                        &held.running,
                    )
                    .await;
                tally.report.budget_notices +=
                    u32::from(line.step.ends_with("-notice") && !line.step.starts_with("would"));
                if line.step == "stopped" {
                    tally.report.stopped_for_budget += line.apps.len() as u32;
                }
                tracing::info!(domain_id = %spend.domain, account = %line.account, step = %line.step, reason = %line.reason, "budget");
                if tally.report.budgets.len() < MAX_BUDGET_LINES {
                    tally.report.budgets.push(line);
                } else {
                    tally.report.budgets_omitted += 1;
                }
            }
        }
    }

    /// The account's budget, if it has one; a user's group is read only when it could matter.
    async fn budget_of(
        &self,
        domain: &str,
        account: &Account,
        spent: f64,
        run: &Run,
    ) -> Option<f64> {
        let budgets = &self.config.budgets;
        if let Some(known) = budgets.known_budget(account) {
            return known;
        }
        let Account::User(user) = account else {
            return None;
        };
        if !budgets.worth_reading_group(spent) {
            return None;
        }
        match self.profile(domain, user, run).await {
            Ok(facts) => budgets.user_budget(user, facts.tags.get(GROUP_TAG).map(String::as_str)),
            Err(e) => {
                // Without the group the budget is unknown; the default would be a guess. The next sweep reads again.
                tracing::warn!(domain_id = domain, user, error = %e, "cannot read the profile's group; its budget is checked next sweep");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn act_on_budget(
        &self,
        run: &Run,
        domain: &str,
        month: &str,
        account: &Account,
        standing: &Standing,
        step: Step,
        running: &[(AppListing, Option<f64>)],
    ) -> BudgetLine {
        let would = run.dry_run || self.config.budgets.mode == Mode::DryRun;
        let mut line = BudgetLine {
            domain_id: domain.to_string(),
            account: account.key(),
            budget_usd: standing.budget_usd,
            spent_usd: standing.spent_usd,
            projected_usd: round_usd(standing.projected_usd),
            percent: (standing.percent() * 10.0).round() / 10.0,
            step: String::new(),
            until: None,
            apps: Vec::new(),
            reason: standing.reason(month),
        };
        let prefix = if would { "would-" } else { "" };
        match step {
            Step::Nothing => line.step = "notice-sent-before".into(),
            Step::Extended(until) => {
                line.step = "extended".into();
                line.until = Some(seconds(until));
            }
            Step::Grace(until) => {
                line.step = "grace".into();
                line.until = Some(seconds(until));
            }
            Step::Notify { notice, stops_at } => {
                line.step = format!("{prefix}{}-notice", notice.level());
                line.until = stops_at.map(seconds);
                if !would {
                    line.step = self
                        .notify(
                            run,
                            domain,
                            month,
                            account,
                            standing,
                            notice,
                            stops_at,
                            &line.reason,
                        )
                        .await;
                }
            }
            Step::Stop => {
                line.apps = running.iter().map(|(app, _)| label(app)).collect();
                if would {
                    line.step = "would-stop".into();
                    return line;
                }
                let mut stopped = Vec::new();
                let mut failed = 0;
                for (app, price) in running {
                    match self.ports.studio.delete_app(app).await {
                        Ok(DeleteOutcome::Deleted) => {
                            stopped.push(label(app));
                            let stop = Stop {
                                domain_id: domain.to_string(),
                                account: account.clone(),
                                space: app.owner.space().map(str::to_string),
                                app_type: app.app_type.clone(),
                                app_name: app.app_name.clone(),
                                instance_type: app
                                    .instance_type
                                    .clone()
                                    .unwrap_or_else(|| "unknown".into()),
                                usd_per_hour: *price,
                                at: Timestamp::now().as_second(),
                                cause: "budget".into(),
                                idle_minutes: 0,
                            };
                            if let Err(e) = self.ports.state.record_stop(&stop).await {
                                tracing::warn!(app = %app.key(), error = %e, "the stop is not kept for the weekly digest");
                            }
                        }
                        // Gone already, or changing state: the next sweep looks again.
                        Ok(DeleteOutcome::AlreadyGone | DeleteOutcome::InUse(_)) => {}
                        Err(e) => {
                            tracing::warn!(app = %app.key(), error = %e, "cannot stop the app for the budget; the next sweep tries again");
                            failed += 1;
                        }
                    }
                }
                line.step = if failed > 0 {
                    "failed".into()
                } else {
                    "stopped".into()
                };
                line.apps = stopped.clone();
                if !stopped.is_empty() {
                    let alert = self.alert(
                        domain,
                        month,
                        account,
                        standing,
                        "enforced",
                        None,
                        stopped,
                        &line.reason,
                    );
                    if let Err(e) = self.ports.publisher.publish(&[alert]).await {
                        tracing::error!(error = %e, account = %account.key(), "budget stop notice not published");
                    }
                }
            }
        }
        line
    }

    /// Claims `notice`, publishes it, and takes the claim back if it cannot be published. Returns the line's step.
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        run: &Run,
        domain: &str,
        month: &str,
        account: &Account,
        standing: &Standing,
        notice: Notice,
        stops_at: Option<Timestamp>,
        reason: &str,
    ) -> String {
        let ledger = &self.ports.state;
        match ledger
            .claim_notice(domain, month, account, notice, run.now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return "notice-sent-before".into(),
            Err(e) => {
                tracing::warn!(error = %e, account = %account.key(), "cannot claim the budget notice; the next sweep tries again");
                return "failed".into();
            }
        }
        let alert = self.alert(
            domain,
            month,
            account,
            standing,
            notice.level(),
            stops_at,
            Vec::new(),
            reason,
        );
        match self.ports.publisher.publish(&[alert]).await {
            Ok(()) => format!("{}-notice", notice.level()),
            Err(e) => {
                tracing::warn!(error = %e, account = %account.key(), "budget notice not published; its claim is taken back");
                if let Err(e) = ledger
                    .release_notice(domain, month, account, notice, run.now)
                    .await
                {
                    tracing::error!(error = %e, account = %account.key(), "budget notice claim not taken back: this notice is not sent this month");
                }
                "failed".into()
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        &self,
        domain: &str,
        month: &str,
        account: &Account,
        standing: &Standing,
        level: &str,
        stops_at: Option<Timestamp>,
        stopped_apps: Vec<String>,
        reason: &str,
    ) -> SuiteEvent {
        let (user, space) = match account {
            Account::User(u) => (Some(u.clone()), None),
            Account::Space(s) => (None, Some(s.clone())),
            // Repositories have no budget: no alert is ever made for one.
            Account::Repository(_) => (None, None),
        };
        BudgetAlert {
            domain_id: domain.to_string(),
            level: level.to_string(),
            user_profile_name: user,
            space_name: space,
            month: month.to_string(),
            budget_usd: standing.budget_usd,
            spent_usd: standing.spent_usd,
            projected_usd: round_usd(standing.projected_usd),
            hourly_cost_usd: round_usd(standing.hourly_cost_usd),
            stops_at: stops_at.map(seconds),
            stopped_apps,
            reason: reason.to_string(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use studio_ops_shared::events::schedule::RunRequest;
    use studio_ops_shared::events::suite::SuiteEvent;

    use crate::adapters::memory::*;
    use crate::decision::AppOwner;
    use crate::report::SweepReport;

    /// Ana's GPU app, running 10 h at $1.41/h ($14.10 by now), in use; Bob's small app.
    fn studio() -> FakeStudio {
        let mut s = FakeStudio::default();
        s.add(
            "gpu",
            user("ana"),
            "JupyterLab",
            "InService",
            "ml.g5.xlarge",
            600,
            Some(1),
        );
        s.add(
            "cpu",
            user("bob"),
            "JupyterLab",
            "InService",
            "ml.t3.medium",
            600,
            Some(1),
        );
        s
    }

    const BUDGETS: &str = r#"{"mode":"enforce","userMonthlyUsd":15,"users":{"bob":100}}"#;
    /// Apps in use all day: only a budget stops them.
    const NEVER_IDLE: (&str, &str) = (
        "STUDIO_OPS_IDLE_LIMITS",
        r#"[{"match":"*","idleMinutes":1440}]"#,
    );

    async fn sweep_at(h: &TestHandler, minutes: i64) -> SweepReport {
        h.sweep(
            &RunRequest::default(),
            now() + SignedDuration::from_mins(minutes),
            far_deadline(),
        )
        .await
        .unwrap()
    }

    fn budget_alerts(h: &TestHandler) -> Vec<(String, Vec<String>)> {
        events(h)
            .into_iter()
            .filter_map(|e| match e {
                SuiteEvent::BudgetAlert(a) => Some((a.level, a.stopped_apps)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_user_is_noticed_at_80_percent_then_warned_and_stopped_at_the_budget_once() {
        let h = handler(studio(), &[("STUDIO_OPS_BUDGETS", BUDGETS), NEVER_IDLE]);
        // $14.10 of $15: 94 % → the approaching notice, once.
        let first = sweep_at(&h, 0).await;
        assert_eq!(first.budgets.len(), 1, "{:#?}", first.budgets);
        assert_eq!(first.budgets[0].account, "user/ana");
        assert_eq!(first.budgets[0].step, "approaching-notice");
        assert!(
            first.budgets[0]
                .reason
                .contains("of the $15.00 monthly budget"),
            "{:?}",
            first.budgets[0]
        );
        assert_eq!(budget_alerts(&h), [("approaching".to_string(), vec![])]);
        sweep_at(&h, 0).await;
        assert!(
            budget_alerts(&h).is_empty(),
            "a duplicate delivery sends nothing"
        );
        // 40 min later: $15.04 → the exceeded notice, the grace period, then the stop.
        let over = sweep_at(&h, 40).await;
        assert_eq!(over.budgets[0].step, "exceeded-notice");
        assert_eq!(budget_alerts(&h), [("exceeded".to_string(), vec![])]);
        let waiting = sweep_at(&h, 55).await;
        assert_eq!(waiting.budgets[0].step, "grace");
        assert_eq!(
            h.ports().studio.calls_of("DeleteApp"),
            0,
            "the app is in use: only the budget stops it"
        );
        let stop = sweep_at(&h, 71).await;
        assert_eq!(stop.budgets[0].step, "stopped");
        assert_eq!(stop.stopped_for_budget, 1);
        let kept = h.ports().state.stops.lock().unwrap().clone();
        assert_eq!(
            kept.values().map(|s| s.cause.as_str()).collect::<Vec<_>>(),
            ["budget"],
            "the budget's stop is kept for the digests"
        );
        assert_eq!(h.ports().studio.calls_of("DeleteApp gpu"), 1);
        assert_eq!(
            h.ports().studio.calls_of("DeleteApp cpu"),
            0,
            "Bob is within his budget"
        );
        assert_eq!(
            budget_alerts(&h),
            [("enforced".to_string(), vec!["JupyterLab gpu".to_string()])]
        );
    }

    #[tokio::test]
    async fn two_overlapping_sweeps_send_one_notice() {
        // Both read the month before either claims the notice (the app reads pause them): the claim decides.
        let mut s = studio();
        s.describe_delay = Some(std::time::Duration::from_millis(20));
        let h = handler(s, &[("STUDIO_OPS_BUDGETS", BUDGETS), NEVER_IDLE]);
        let (a, b) = tokio::join!(sweep_at(&h, 0), sweep_at(&h, 0));
        let mut steps = [a.budgets[0].step.clone(), b.budgets[0].step.clone()];
        steps.sort();
        assert_eq!(steps, ["approaching-notice", "notice-sent-before"]);
        assert_eq!(budget_alerts(&h).len(), 1);
    }

    #[tokio::test]
    async fn a_sweep_limited_to_one_user_checks_only_that_users_budget() {
        let h = handler(studio(), &[("STUDIO_OPS_BUDGETS", BUDGETS), NEVER_IDLE]);
        sweep_at(&h, 0).await; // meters everyone
        budget_alerts(&h);
        h.ports().state.notices.lock().unwrap().clear();
        let bob = RunRequest {
            user_profile_name: Some("bob".into()),
            ..RunRequest::default()
        };
        let r = h
            .sweep(&bob, now() + SignedDuration::from_mins(40), far_deadline())
            .await
            .unwrap();
        assert!(r.budgets.is_empty(), "{:#?}", r.budgets);
        assert!(
            budget_alerts(&h).is_empty(),
            "ana is not in this sweep's scope"
        );
    }

    #[tokio::test]
    async fn an_extension_or_the_dry_run_mode_stops_nothing() {
        let extended = r#"{"mode":"enforce","userMonthlyUsd":10,"extensions":{"user/ana":"2026-11-30T00:00:00Z"}}"#;
        let h = handler(studio(), &[("STUDIO_OPS_BUDGETS", extended)]);
        let r = sweep_at(&h, 0).await;
        assert_eq!(r.budgets[0].step, "extended");
        assert!(budget_alerts(&h).is_empty());

        let h = handler(
            studio(),
            &[(
                "STUDIO_OPS_BUDGETS",
                r#"{"mode":"dry-run","userMonthlyUsd":10}"#,
            )],
        );
        let r = sweep_at(&h, 0).await;
        assert_eq!(r.budgets[0].step, "would-exceeded-notice");
        assert!(budget_alerts(&h).is_empty());
        assert!(
            h.ports().state.notices.lock().unwrap().is_empty(),
            "a dry run claims nothing"
        );
    }

    #[tokio::test]
    async fn a_notice_that_cannot_be_published_is_sent_by_the_next_sweep() {
        let h = handler(studio(), &[("STUDIO_OPS_BUDGETS", BUDGETS)]);
        let fail = |on: bool| {
            h.ports()
                .publisher
                .fail_budget_alerts
                .store(on, std::sync::atomic::Ordering::SeqCst)
        };
        fail(true);
        let r = sweep_at(&h, 0).await;
        assert_eq!(r.budgets[0].step, "failed");
        assert!(budget_alerts(&h).is_empty());
        fail(false);
        sweep_at(&h, 1).await;
        assert_eq!(budget_alerts(&h), [("approaching".to_string(), vec![])]);
    }

    #[tokio::test]
    async fn a_group_budget_is_read_from_the_profile_only_near_a_budget() {
        let budgets = r#"{"mode":"enforce","userMonthlyUsd":1000}"#;
        let groups = r#"{"g-small":{"monthlyBudgetUsd":12}}"#;
        let s = studio();
        s.tags.lock().unwrap().insert(
            "arn:user-profile/ana".into(),
            [("studio-ops:group-id".to_string(), "g-small".to_string())].into(),
        );
        let h = handler(
            s,
            &[
                ("STUDIO_OPS_BUDGETS", budgets),
                ("STUDIO_OPS_BUDGET_GROUP_SETTINGS", groups),
            ],
        );
        let r = sweep_at(&h, 0).await;
        assert_eq!(r.budgets.len(), 1, "{:#?}", r.budgets);
        assert_eq!(r.budgets[0].budget_usd, 12.0);
        assert_eq!(r.budgets[0].step, "exceeded-notice");
        // Bob ($6) is far from the lowest budget's threshold: the budgets read no profile of his (the idle side's
        // own reads aside).
        let without = handler(studio(), &[]);
        sweep_at(&without, 0).await;
        assert_eq!(
            h.ports().studio.calls_of("DescribeUserProfile bob"),
            without.ports().studio.calls_of("DescribeUserProfile bob")
        );
        assert_eq!(
            h.ports().studio.calls_of("DescribeUserProfile ana"),
            without
                .ports()
                .studio
                .calls_of("DescribeUserProfile ana")
                .max(1)
        );
    }

    #[tokio::test]
    async fn a_shared_space_has_its_own_budget() {
        let mut s = FakeStudio::default();
        let shared = AppOwner::Space("team-lab".into());
        s.add(
            "lab",
            shared,
            "JupyterLab",
            "InService",
            "ml.g5.xlarge",
            600,
            Some(1),
        );
        let h = handler(
            s,
            &[(
                "STUDIO_OPS_BUDGETS",
                r#"{"mode":"enforce","spaces":{"team-lab":10}}"#,
            )],
        );
        let r = sweep_at(&h, 0).await;
        assert_eq!(r.budgets[0].account, "space/team-lab");
        assert_eq!(r.budgets[0].step, "exceeded-notice");
    }
}
