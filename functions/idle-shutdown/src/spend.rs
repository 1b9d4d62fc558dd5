//! The spend report use case: `{"report": "spend", "month": "2026-12"}` → the month's records of every domain in
//! scope (one query each) → `ledger::report`. Reads only; a domain whose ledger cannot be read is named in the
//! answer and left out of the totals.

use jiff::Timestamp;
use studio_ops_shared::events::schedule::RunRequest;
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::publisher::PublishEvents;

use crate::error::HandlerError;
use crate::ledger::{self, SpendReport, month_of};
use crate::ports::{FailureQueues, SpendLedger, Studio, SweepState};
use crate::sweep::Sweeper;
use crate::trigger::SpendRequest;

impl<S, P, I, D, Q> Sweeper<'_, S, P, I, D, Q>
where
    S: Studio,
    P: PublishEvents,
    I: IdempotencyStore,
    D: SweepState + SpendLedger,
    Q: FailureQueues,
{
    /// The spend report asked for, the current month (at `now`) unless the request names one.
    pub(crate) async fn spend_report(
        &self,
        request: &SpendRequest,
        now: Timestamp,
    ) -> Result<SpendReport, HandlerError> {
        let month = request.month.clone().unwrap_or_else(|| month_of(now));
        let scope = RunRequest {
            dry_run: true,
            domain_id: request.domain_id.clone(),
            user_profile_name: None,
        };
        let domains = self.domains(&scope).await?;
        let months = futures::future::join_all(
            domains
                .iter()
                .map(|domain| self.ports.state.month(domain, &month, true)),
        )
        .await;
        let mut usages = Vec::new();
        let mut failed = Vec::new();
        for (domain, records) in domains.iter().zip(months) {
            match records {
                Ok(records) => usages.extend(records.usages),
                Err(e) => {
                    tracing::warn!(domain_id = %domain, error = %e, "cannot read the domain's spend ledger");
                    failed.push(domain.clone());
                }
            }
        }
        if !domains.is_empty() && failed.len() == domains.len() {
            return Err(HandlerError::Ledger(format!(
                "the spend ledger of {} could not be read",
                failed.join(", ")
            )));
        }
        Ok(ledger::report(&month, &usages, failed))
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use lambda_runtime::Context;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::adapters::memory::*;
    use crate::ledger::Account;
    use studio_ops_shared::prices::round_usd;

    async fn sweep_at(h: &TestHandler, at: Timestamp, dry_run: bool) -> crate::report::SweepReport {
        let request = RunRequest {
            dry_run,
            ..RunRequest::default()
        };
        h.sweep(&request, at, far_deadline()).await.unwrap()
    }

    #[tokio::test]
    async fn every_running_app_is_metered_once_per_reading_and_billed_to_its_owner() {
        let h = handler(spend_studio(), &[]);
        let dry = sweep_at(&h, now(), true).await;
        assert_eq!((dry.metered, dry.ledger_writes), (3, 0));
        assert!(
            h.ports().state.records().is_empty(),
            "a dry run writes nothing"
        );

        let first = sweep_at(&h, now(), false).await;
        assert_eq!((first.metered, first.ledger_writes), (3, 3));
        // 2 h × 1.41 + 1 h × 0.05; the unpriced half hour counts no dollars.
        assert_eq!(first.month_to_date_usd, 2.87);
        assert_eq!(first.metered_usd, 2.87, "all of it is this sweep's growth");
        let records = h.ports().state.records();
        let accounts: Vec<&Account> = records.iter().map(|u| &u.account).collect();
        assert!(
            accounts.contains(&&Account::User("bob".into())),
            "{accounts:?}"
        );
        assert!(accounts.contains(&&Account::Space("team-lab".into())));

        // The same sweep delivered again writes nothing new; a later one moves every record on.
        let again = sweep_at(&h, now(), false).await;
        assert_eq!(again.ledger_writes, 0);
        assert_eq!(again.metered_usd, 0.0, "a duplicate adds no spend");
        let later = sweep_at(&h, now() + SignedDuration::from_mins(15), false).await;
        assert_eq!(later.ledger_writes, 3);
        assert_eq!(later.month_to_date_usd, 3.235);
        // The dashboard's spend per day sums the growth: it adds up to the month.
        assert_eq!(round_usd(first.metered_usd + later.metered_usd), 3.235);
        // An older sweep arriving late cannot move the ledger back, nor add spend.
        let late = sweep_at(&h, now() + SignedDuration::from_mins(5), false).await;
        assert_eq!(late.metered_usd, 0.0);
        let gpu = h
            .ports()
            .state
            .records()
            .into_iter()
            .find(|u| u.app_name == "gpu")
            .unwrap();
        assert_eq!(gpu.seconds, 135 * 60);
    }

    #[tokio::test]
    async fn the_spend_report_answers_the_months_totals() {
        let h = handler(spend_studio(), &[]);
        sweep_at(&h, now(), false).await;
        let answer = h
            .answer(
                serde_json::json!({"report": "spend", "month": "2026-11"}),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(answer["outcome"], "spend");
        assert_eq!(answer["month"], "2026-11");
        assert_eq!(answer["total"]["usd"], 2.87);
        assert_eq!(answer["users"][0]["name"], "ana");
        assert_eq!(answer["users"][0]["usd"], 2.82);
        assert_eq!(answer["users"][1]["name"], "bob");
        assert_eq!(answer["spaces"][0]["name"], "team-lab");
        assert_eq!(answer["spaces"][0]["unpricedHours"], 0.5);
        assert_eq!(answer["unpricedInstanceTypes"]["ml.p5.48xlarge"], 0.5);
        assert_eq!(answer["domains"][0]["byDay"]["2026-11-24"]["hours"], 3.5);
        // Another month holds nothing; a report changes nothing.
        let empty = h
            .answer(
                serde_json::json!({"report": "spend", "month": "2026-10"}),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(empty["total"]["usd"], 0.0);
        assert_eq!(h.ports().studio.calls_of("DeleteApp"), 0);
    }

    #[tokio::test]
    async fn a_ledger_that_cannot_be_written_fails_soft_and_the_next_sweep_catches_up() {
        let h = handler(spend_studio(), &[]);
        h.ports().state.fail_ledger.store(true, Ordering::SeqCst);
        let report = sweep_at(&h, now(), false).await;
        assert_eq!((report.ledger_writes, report.ledger_writes_failed), (0, 3));
        assert_eq!(
            report.month_to_date_usd, 0.0,
            "an unread ledger gives no total"
        );
        h.ports().state.fail_ledger.store(false, Ordering::SeqCst);
        let next = sweep_at(&h, now() + SignedDuration::from_mins(15), false).await;
        assert_eq!(next.ledger_writes, 3);
        let gpu = h
            .ports()
            .state
            .records()
            .into_iter()
            .find(|u| u.app_name == "gpu")
            .unwrap();
        assert_eq!(
            gpu.seconds,
            135 * 60,
            "the missed reading is caught up, from creation"
        );
        assert!(
            h.answer(serde_json::json!({"report": "spend"}), Context::default())
                .await
                .is_ok()
        );
        h.ports().state.fail_ledger.store(true, Ordering::SeqCst);
        let err = h
            .answer(serde_json::json!({"report": "spend"}), Context::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("spend ledger"), "{err}");
    }
}
