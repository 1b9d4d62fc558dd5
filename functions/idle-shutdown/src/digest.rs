//! The weekly digests use case: `{"digest": "weekly"}` (the weekly schedule) → the last full ISO week's ledger
//! records (with their per-day seconds), stops and lagging sweeps → one `Spend Digest` per user with anything to
//! report and one `Team Digest` for the admins (`weekly.rs` computes them) → notify renders and routes them.
//!
//! Each digest is sent once per week whatever the deliveries: its key (`digest#<week>#<domain>#<account>`, and
//! `digest#<week>#team`) is claimed in the idempotency table before it is published and completed after, released
//! when publishing fails. A run that could not send every digest answers an error, so that the schedule's retry
//! sends the rest — and only the rest. A dry run (`"dryRun": true`) sends nothing and answers the digests.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use studio_ops_shared::Deadline;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::events::suite::{SpendDigest, SuiteEvent, TeamDigest};
use studio_ops_shared::idempotency::{Claim, IdempotencyStore};
use studio_ops_shared::metrics::{MetricSet, Unit};
use studio_ops_shared::publisher::PublishEvents;

use crate::error::HandlerError;
use crate::ledger::{Account, Usage, month_bounds, parse_month};
use crate::ports::{FailureQueues, SpendLedger, Studio, SweepState};
use crate::sweep::Sweeper;
use crate::trigger::DigestRequest;
use crate::weekly::{self, AccountWeek, Lag, MAX_STOPPED_LISTED, Stop, Week, lines, round_hours};
use studio_ops_shared::prices::round_usd;

/// How long a digest's claim holds without being completed: far more than one publish takes.
const CLAIM_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);
/// Digests shown in a dry run's answer (the answer stays small; the counts cover all).
const MAX_PREVIEWS: usize = 50;

/// What a digest run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestReport {
    pub week: String,
    pub from: String,
    pub to: String,
    pub dry_run: bool,
    /// User digests sent by this run (or that would be, in a dry run).
    pub sent: u32,
    /// User digests an earlier delivery of the schedule had sent.
    pub already_sent: u32,
    /// User digests that could not be published (the retry sends them).
    pub failed: u32,
    /// `sent`, `already-sent`, `would-send`, `failed`.
    pub team: String,
    #[serde(default)]
    pub failed_domains: Vec<String>,
    /// A dry run's digests (at most 50 users).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<SpendDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_preview: Option<TeamDigest>,
}

/// The week's ledger, as read.
#[derive(Default)]
struct WeekLedger {
    usages: Vec<Usage>,
    stops: Vec<Stop>,
    lags: Vec<Lag>,
    domains: Vec<String>,
    failed_domains: Vec<String>,
    /// Whether every month's lag records were read.
    lags_read: bool,
}

impl<S, P, I, D, Q> Sweeper<'_, S, P, I, D, Q>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    /// The week's digests: built from the ledger, each sent once.
    pub(crate) async fn digests(
        &self,
        request: &DigestRequest,
        now: Timestamp,
        deadline: Deadline,
        holder: &str,
    ) -> Result<DigestReport, HandlerError> {
        let week = match &request.week {
            Some(w) => Week::parse(w).ok_or_else(|| {
                HandlerError::Request(format!(
                    "week: expected an ISO week such as \"2026-W49\", found {w:?}"
                ))
            })?,
            // The schedule's own time when it says (a retried or redriven delivery still means its week).
            None => Week::last_before(request.scheduled_at().unwrap_or(now)),
        };
        let ledger = self.read_week(&week).await?;
        let accounts = weekly::accounts(&week, &ledger.usages, &ledger.stops);
        let (from, to) = week.first_and_last_day();
        let users: Vec<SpendDigest> = accounts
            .iter()
            .filter_map(|((domain, account), w)| {
                let Account::User(user) = account else {
                    return None;
                };
                Some(self.user_digest(&week, domain, user, account, w, &ledger.usages, now))
            })
            .collect();
        let mut report = DigestReport {
            week: week.id(),
            from: from.clone(),
            to: to.clone(),
            dry_run: request.dry_run,
            failed_domains: ledger.failed_domains.clone(),
            ..Default::default()
        };
        let mut team = team_digest(&week, &ledger, &accounts);
        team.user_digests = users.len() as u32;
        team.failed_invocations = self
            .waiting(self.config.failed_invocation_queue_url.as_deref())
            .await;
        team.undelivered_events = self.waiting(self.config.delivery_dlq_url.as_deref()).await;
        if request.dry_run {
            report.sent = users.len() as u32;
            report.team = "would-send".into();
            report.preview = users.into_iter().take(MAX_PREVIEWS).collect();
            report.team_preview = Some(team);
            return Ok(report);
        }
        // A claim covers one publish: if this run dies, Lambda's retry (a minute or two later) finds it lapsed.
        let until = deadline.wall_clock().min(now + CLAIM_WINDOW);
        for digest in users {
            let key = format!(
                "digest#{}#{}#user/{}",
                report.week,
                digest.domain_id,
                digest.user_profile_name.to_lowercase()
            );
            match self
                .send_once(&key, SuiteEvent::SpendDigest(digest), until, holder)
                .await
            {
                Sent::Now => report.sent += 1,
                Sent::Before => report.already_sent += 1,
                Sent::Failed => report.failed += 1,
            }
        }
        // The team's figures need every domain and the lag records: with any missing, the team digest waits for
        // the retry rather than go out with a hole in it.
        let complete = ledger.failed_domains.is_empty() && ledger.lags_read;
        let key = format!("digest#{}#team", report.week);
        report.team = if !complete {
            "waiting-for-the-ledger"
        } else {
            match self
                .send_once(&key, SuiteEvent::TeamDigest(team), until, holder)
                .await
            {
                Sent::Now => "sent",
                Sent::Before => "already-sent",
                Sent::Failed => "failed",
            }
        }
        .into();
        let mut metrics = MetricSet::of(&crate::METRICS);
        metrics.put(
            "DigestsSent",
            f64::from(report.sent + u32::from(report.team == "sent")),
            Unit::Count,
        );
        metrics.emit();
        if report.failed > 0 || report.team == "failed" {
            return Err(HandlerError::DigestsNotSent(format!(
                "{} of the week's digests could not be published ({} sent, {} sent before); a retry sends only those",
                report.failed + u32::from(report.team == "failed"),
                report.sent,
                report.already_sent
            )));
        }
        if !complete {
            return Err(HandlerError::DigestsNotSent(format!(
                "the ledger of {} or the lagging sweeps could not be read: {} user digests sent, the team digest and \
                 those domains' digests wait for the retry",
                if ledger.failed_domains.is_empty() {
                    "no domain".to_string()
                } else {
                    ledger.failed_domains.join(", ")
                },
                report.sent
            )));
        }
        Ok(report)
    }

    /// Every domain's records and stops of the months the week touches, and the lagging sweeps.
    async fn read_week(&self, week: &Week) -> Result<WeekLedger, HandlerError> {
        let scope = RunRequest {
            dry_run: true,
            ..RunRequest::default()
        };
        let mut out = WeekLedger {
            domains: self.domains(&scope).await?,
            lags_read: true,
            ..Default::default()
        };
        let ledger = &self.ports.state;
        let (start, end) = week.bounds();
        for domain in out.domains.clone() {
            let mut read = Ok(());
            for month in week.months() {
                let both = futures::future::try_join(
                    ledger.month(&domain, &month, true),
                    ledger.stops(&domain, &month),
                )
                .await;
                match both {
                    Ok((m, stops)) => {
                        out.usages.extend(m.usages);
                        out.stops.extend(stops);
                    }
                    Err(e) => read = Err(e),
                }
            }
            if let Err(e) = read {
                tracing::warn!(domain_id = %domain, error = %e, "cannot read the domain's ledger; left out of the digests");
                out.usages.retain(|u| u.domain_id != domain);
                out.stops.retain(|s| s.domain_id != domain);
                out.failed_domains.push(domain);
            }
        }
        if !out.domains.is_empty() && out.failed_domains.len() == out.domains.len() {
            return Err(HandlerError::Ledger(format!(
                "the spend ledger of {} could not be read",
                out.failed_domains.join(", ")
            )));
        }
        for month in week.months() {
            match ledger.lags(&month).await {
                Ok(lags) => out
                    .lags
                    .extend(lags.into_iter().filter(|l| l.at >= start && l.at < end)),
                Err(e) => {
                    tracing::warn!(month, error = %e, "cannot read the lagging sweeps");
                    out.lags_read = false;
                }
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn user_digest(
        &self,
        week: &Week,
        domain: &str,
        user: &str,
        account: &Account,
        w: &AccountWeek,
        usages: &[Usage],
        now: Timestamp,
    ) -> SpendDigest {
        let (from, to) = week.first_and_last_day();
        let month = to[..7].to_string();
        let month_to_date: f64 = usages
            .iter()
            .filter(|u| {
                u.domain_id == domain && u.month == month && u.account.key() == account.key()
            })
            .filter_map(Usage::usd)
            .sum();
        let month_end = parse_month(&month).map_or(0, |m| month_bounds(m).1);
        let days_left = ((month_end - now.as_second()).max(0) as f64 / 86_400.0).min(31.0);
        let projected = month_to_date + w.usd / 7.0 * days_left;
        let budgets = &self.config.budgets;
        let (budget_usd, budget_status) = if !budgets.enabled() {
            (None, "no-budget")
        } else {
            match budgets.known_budget(account) {
                None => (None, "set-by-group"),
                Some(None) => (None, "no-budget"),
                Some(Some(b)) if month_to_date >= b => (Some(b), "exceeded"),
                Some(Some(b))
                    if month_to_date >= b * f64::from(budgets.warn_at_percent) / 100.0 =>
                {
                    (Some(b), "approaching")
                }
                Some(Some(b)) => (Some(b), "within"),
            }
        };
        let mut stopped = w.stopped.clone();
        let stopped_omitted = stopped.len().saturating_sub(MAX_STOPPED_LISTED) as u32;
        stopped.truncate(MAX_STOPPED_LISTED);
        SpendDigest {
            domain_id: domain.to_string(),
            user_profile_name: user.to_string(),
            week: week.id(),
            from,
            to,
            hours: round_hours(w.seconds),
            usd: round_usd(w.usd),
            unpriced_hours: round_hours(w.unpriced_seconds),
            by_kind: lines(&w.by_kind),
            by_app_type: lines(&w.by_app_type),
            by_instance_type: lines(&w.by_instance_type),
            stopped,
            stopped_omitted,
            idle_stops: w.idle_stops,
            budget_stops: (w.stopped.len() as u32).saturating_sub(w.idle_stops),
            saved_usd: round_usd(w.saved_usd),
            month,
            month_to_date_usd: round_usd(month_to_date),
            budget_usd,
            projected_usd: round_usd(projected),
            budget_status: budget_status.into(),
        }
    }

    /// The messages waiting in a failure queue; `None` when it is not configured or cannot be read (the digest
    /// says so rather than guess).
    async fn waiting(&self, queue_url: Option<&str>) -> Option<u32> {
        let url = queue_url?;
        match self.ports.queues.waiting(url).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(queue_url = url, error = %e, "cannot read the failure queue's depth");
                None
            }
        }
    }

    /// Claims `key` for this run (`holder`: a retried claim call finds its own claim), publishes `event`,
    /// completes the claim; releases it when publishing fails. A claim another run holds is not "sent": that run may
    /// die before it publishes, so this one fails and the retry looks again.
    async fn send_once(
        &self,
        key: &str,
        event: SuiteEvent,
        until: Timestamp,
        holder: &str,
    ) -> Sent {
        let store = &self.ports.idempotency;
        match store.claim_for(key, until, holder).await {
            Ok(Claim::Acquired) => {}
            Ok(Claim::AlreadyCompleted(_)) => return Sent::Before,
            Ok(Claim::InProgress) => {
                tracing::warn!(
                    key,
                    "another run is sending this digest; the retry checks it went out"
                );
                return Sent::Failed;
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot claim the digest; the retry sends it");
                return Sent::Failed;
            }
        }
        if let Err(e) = self.ports.publisher.publish(&[event]).await {
            tracing::warn!(key, error = %e, "digest not published; the retry sends it");
            if let Err(e) = store.release_for(key, holder).await {
                tracing::warn!(key, error = %e, "digest claim not released; it lapses at this run's deadline");
            }
            return Sent::Failed;
        }
        if let Err(e) = store
            .complete(key, &serde_json::json!({"sent": true}))
            .await
        {
            // Published: a retry finds the claim in progress until it lapses, then could send it again.
            tracing::warn!(key, error = %e, "digest sent but not marked as sent");
        }
        Sent::Now
    }
}

enum Sent {
    Now,
    Before,
    Failed,
}

fn team_digest(
    week: &Week,
    ledger: &WeekLedger,
    accounts: &BTreeMap<(String, Account), AccountWeek>,
) -> TeamDigest {
    let (from, to) = week.first_and_last_day();
    TeamDigest {
        week: week.id(),
        from,
        to,
        domains: ledger.domains.clone(),
        failed_domains: ledger.failed_domains.clone(),
        hours: round_hours(accounts.values().map(|w| w.seconds).sum()),
        usd: round_usd(accounts.values().map(|w| w.usd).sum()),
        saved_usd: round_usd(accounts.values().map(|w| w.saved_usd).sum()),
        apps_stopped: accounts.values().map(|w| w.stopped.len() as u32).sum(),
        apps_stopped_for_budget: accounts
            .values()
            .flat_map(|w| &w.stopped)
            .filter(|s| s.cause == "budget")
            .count() as u32,
        accounts: accounts.values().filter(|w| w.seconds > 0).count() as u32,
        top_spenders: weekly::top_spenders(accounts),
        top_idle: weekly::idle_offenders(accounts),
        unpriced_instance_types: weekly::unpriced(week, &ledger.usages),
        sweeps_behind: ledger.lags.len() as u32,
        most_apps_not_reached: ledger.lags.iter().map(|l| l.not_reached).max().unwrap_or(0),
        failed_invocations: None,
        undelivered_events: None,
        user_digests: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use studio_ops_shared::ErrorClass;
    use studio_ops_shared::Failure;

    use super::*;
    use crate::adapters::memory::*;

    fn weekly(dry_run: bool) -> DigestRequest {
        DigestRequest {
            digest: "weekly".into(),
            week: Some("2026-W48".into()),
            dry_run,
            scheduled_time: None,
        }
    }

    /// The Monday after the week of [`now`] (Tuesday 24 November).
    fn monday() -> Timestamp {
        "2026-11-30T07:00:00Z".parse().unwrap()
    }

    async fn metered(h: &TestHandler) {
        let request = RunRequest::default();
        h.sweep(&request, now(), far_deadline()).await.unwrap();
    }

    fn digests(h: &TestHandler) -> (Vec<SpendDigest>, Vec<TeamDigest>) {
        let mut users = Vec::new();
        let mut teams = Vec::new();
        for e in h.ports().publisher.inner.taken() {
            match e {
                SuiteEvent::SpendDigest(d) => users.push(d),
                SuiteEvent::TeamDigest(d) => teams.push(d),
                _ => {}
            }
        }
        (users, teams)
    }

    #[tokio::test]
    async fn each_user_and_the_team_get_the_week_once_however_often_it_is_delivered() {
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        let first = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap();
        assert_eq!(
            (first.sent, first.already_sent, first.team.as_str()),
            (2, 0, "sent")
        );
        let (users, teams) = digests(&h);
        let ana = users.iter().find(|d| d.user_profile_name == "ana").unwrap();
        assert_eq!((ana.hours, ana.usd), (2.0, 2.82));
        assert_eq!(ana.by_instance_type[0].name, "ml.g5.xlarge");
        assert_eq!(
            (ana.from.as_str(), ana.to.as_str()),
            ("2026-11-23", "2026-11-29")
        );
        let bob = users.iter().find(|d| d.user_profile_name == "bob").unwrap();
        assert_eq!(
            (bob.hours, bob.usd),
            (1.0, 0.05),
            "a private space's app is its owner's"
        );
        assert_eq!(teams.len(), 1);
        let team = &teams[0];
        assert_eq!(team.user_digests, 2);
        assert_eq!(team.top_spenders[0].account, "user/ana");
        assert_eq!(team.unpriced_instance_types[0].name, "ml.p5.48xlarge");
        assert_eq!(team.unpriced_instance_types[0].hours, 0.5);
        // The schedule delivers again, twice: nothing more is sent.
        for _ in 0..2 {
            let again = h
                .digests(&weekly(false), monday(), far_deadline(), "run-1")
                .await
                .unwrap();
            assert_eq!(
                (again.sent, again.already_sent, again.team.as_str()),
                (0, 2, "already-sent")
            );
        }
        assert_eq!(digests(&h), (vec![], vec![]));
    }

    #[tokio::test]
    async fn a_digest_not_published_is_retried_and_only_it_is_sent_again() {
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        h.ports()
            .publisher
            .fail_team_digest
            .store(true, Ordering::SeqCst);
        let err = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        assert!(err.to_string().contains("1 of the week's digests"), "{err}");
        assert_eq!(digests(&h).0.len(), 2);
        h.ports()
            .publisher
            .fail_team_digest
            .store(false, Ordering::SeqCst);
        let retry = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap();
        assert_eq!(
            (retry.sent, retry.already_sent, retry.team.as_str()),
            (0, 2, "sent")
        );
        let (users, teams) = digests(&h);
        assert_eq!((users.len(), teams.len()), (0, 1));
    }

    #[tokio::test]
    async fn a_redriven_delivery_sends_the_week_of_its_schedule_not_of_its_arrival() {
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        let scheduled = DigestRequest {
            digest: "weekly".into(),
            week: None,
            dry_run: false,
            scheduled_time: Some("2026-11-30T07:00:00Z".into()),
        };
        // Redriven from the failure queue nine days later: still W48.
        let late = monday() + jiff::SignedDuration::from_hours(9 * 24);
        let report = h
            .digests(&scheduled, late, far_deadline(), "run-1")
            .await
            .unwrap();
        assert_eq!((report.week.as_str(), report.sent), ("2026-W48", 2));
    }

    #[tokio::test]
    async fn a_claim_another_run_holds_is_not_taken_for_sent() {
        use studio_ops_shared::idempotency::IdempotencyStore;
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        // Another run claimed Ana's digest and has not finished (it may die before it publishes).
        h.ports()
            .idempotency
            .claim_for(
                "digest#2026-W48#d-test#user/ana",
                far_deadline().wall_clock(),
                "run-0",
            )
            .await
            .unwrap();
        let err = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        let (users, _) = digests(&h);
        assert_eq!(
            users
                .iter()
                .map(|d| d.user_profile_name.as_str())
                .collect::<Vec<_>>(),
            ["bob"]
        );
    }

    #[tokio::test]
    async fn a_dry_run_shows_the_digests_and_sends_nothing() {
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        let dry = h
            .digests(&weekly(true), monday(), far_deadline(), "run-1")
            .await
            .unwrap();
        assert_eq!(
            (dry.sent, dry.team.as_str(), dry.preview.len()),
            (2, "would-send", 2)
        );
        assert!(dry.team_preview.is_some());
        assert_eq!(digests(&h), (vec![], vec![]));
        // A dry run claims nothing: the real run still sends.
        let real = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap();
        assert_eq!(real.sent, 2);
    }

    #[tokio::test]
    async fn stops_and_lagging_sweeps_of_the_week_reach_the_digests() {
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        let state = &h.ports().state;
        let at = now().as_second() + 600;
        state
            .record_stop(&Stop {
                domain_id: "d-test".into(),
                account: Account::User("ana".into()),
                space: None,
                app_type: "JupyterLab".into(),
                app_name: "gpu".into(),
                instance_type: "ml.g5.xlarge".into(),
                usd_per_hour: Some(1.41),
                at,
                cause: "idle".into(),
                idle_minutes: 70,
            })
            .await
            .unwrap();
        state
            .record_lag(&Lag {
                at,
                not_reached: 12,
                behind: 0,
                failed_domains: 0,
            })
            .await
            .unwrap();
        h.ports().publisher.inner.taken();
        h.digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap();
        let (users, teams) = digests(&h);
        let ana = users.iter().find(|d| d.user_profile_name == "ana").unwrap();
        assert_eq!(ana.stopped.len(), 1);
        // Never restarted: a day's price, the cap.
        assert_eq!(ana.saved_usd, 33.84);
        assert_eq!(
            (teams[0].sweeps_behind, teams[0].most_apps_not_reached),
            (1, 12)
        );
        assert_eq!(teams[0].top_idle[0].account, "user/ana");
    }

    #[tokio::test]
    async fn the_team_hears_how_many_events_wait_in_the_failure_queues() {
        let failed = "https://sqs.us-east-1.amazonaws.com/123456789012/failed";
        let dlq = "https://sqs.us-east-1.amazonaws.com/123456789012/gone";
        let h = handler(
            spend_studio(),
            &[
                ("STUDIO_OPS_FAILED_INVOCATION_QUEUE_URL", failed),
                ("STUDIO_OPS_DELIVERY_DLQ_URL", dlq),
            ],
        );
        h.ports()
            .queues
            .waiting
            .lock()
            .unwrap()
            .insert(failed.into(), 3);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        h.digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap();
        let team = &digests(&h).1[0];
        // A queue that cannot be read is said to be unread, not counted as empty.
        assert_eq!(
            (team.failed_invocations, team.undelivered_events),
            (Some(3), None)
        );
    }

    #[tokio::test]
    async fn the_team_digest_waits_for_a_ledger_read_in_full_and_the_retry_sends_only_it() {
        let h = handler(spend_studio(), &[]);
        metered(&h).await;
        h.ports().publisher.inner.taken();
        h.ports().state.fail_lags.store(true, Ordering::SeqCst);
        let err = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        let (users, teams) = digests(&h);
        assert_eq!(
            (users.len(), teams.len()),
            (2, 0),
            "the users' digests go out, the team's waits"
        );
        h.ports().state.fail_lags.store(false, Ordering::SeqCst);
        let retry = h
            .digests(&weekly(false), monday(), far_deadline(), "run-2")
            .await
            .unwrap();
        assert_eq!(
            (retry.sent, retry.already_sent, retry.team.as_str()),
            (0, 2, "sent")
        );
        let (users, teams) = digests(&h);
        assert_eq!((users.len(), teams.len()), (0, 1));
    }

    #[tokio::test]
    async fn a_week_with_no_ledger_to_read_is_an_error_to_retry() {
        let h = handler(spend_studio(), &[]);
        h.ports().state.fail_ledger.store(true, Ordering::SeqCst);
        let err = h
            .digests(&weekly(false), monday(), far_deadline(), "run-1")
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        assert!(digests(&h).1.is_empty());
    }
}
