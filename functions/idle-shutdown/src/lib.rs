//! idle-shutdown: finds idle billable Studio apps, warns their owners, stops them and reports the money saved.
//!
//! Path of a sweep: `events/idle-shutdown/*.json` → [`trigger`] (the schedule or a run request) → [`handler`]
//! (lease, dispatch, typed outcome) → [`sweep`] (list, screen, read, decide with [`decision`]) and [`act`] (warn,
//! stop), remembering with [`state`] → [`ports`] (the Studio roles, the sweep state) → [`adapters::sagemaker`],
//! [`adapters::dynamodb`].

pub mod act;
pub mod adapters;
pub mod config;
pub mod decision;
pub mod error;
pub mod handler;
pub mod policy;
pub mod ports;
pub mod prices;
pub mod report;
pub mod state;
pub mod sweep;
pub mod trigger;
