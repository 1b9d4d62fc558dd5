//! idle-shutdown: finds idle billable Studio apps, warns their owners, stops them and reports the money saved.
//!
//! Path of a sweep: `events/idle-shutdown/*.json` → [`trigger`] (the schedule or a run request) → [`handler`]
//! (lease, dispatch, typed outcome) → [`sweep`] (list, screen, read, decide with [`decision`]) and [`act`] (warn,
//! stop), remembering with [`state`] and metering every running app into the spend ledger ([`ledger`]) → [`ports`]
//! (the Studio roles, the sweep state, the ledger) → [`adapters::sagemaker`], [`adapters::dynamodb`]. A spend
//! report (`{"report": "spend"}`) → [`handler`] → [`spend`] → [`ledger::report`].

pub mod act;
pub mod adapters;
pub mod budget;
pub mod config;
pub mod decision;
pub mod digest;
pub mod enforce;
pub mod error;
pub mod handler;
pub mod ledger;
pub mod meter;
pub mod policy;
pub mod ports;
pub mod report;
pub mod spend;
pub mod state;
pub mod sweep;
pub mod trigger;
pub mod weekly;

/// Every metric idle-shutdown emits (the dashboard reads only these).
pub const METRICS: studio_ops_shared::metrics::Catalogue = studio_ops_shared::metrics::Catalogue {
    function: report::FUNCTION_NAME,
    metrics: &[
        studio_ops_shared::metrics::RUN_COMPLETED,
        "AppsScanned",
        "AppsWarned",
        "AppsStopped",
        "AppsFailed",
        "AppsNotReached",
        "AppsExamined",
        "AppsBehind",
        "StateWritesFailed",
        "AppsMetered",
        "AccountsOverBudget",
        "BudgetNotices",
        "AppsStoppedForBudget",
        "MonthToDateUSD",
        "MeteredUSD",
        "LedgerWrites",
        "LedgerWritesFailed",
        "EstimatedHourlySavingsUSD",
        "DigestsSent",
    ],
};
