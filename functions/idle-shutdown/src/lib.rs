//! idle-shutdown: finds idle billable Studio apps, warns their owners, stops them and reports the money saved.
//!
//! Path of a sweep: `events/idle-shutdown/*.json` → [`handler`] (list, screen, describe, act, report) →
//! [`decision`] (the idle decision table) → [`studio`] (the SageMaker port and adapter).

pub mod config;
pub mod decision;
pub mod error;
pub mod handler;
pub mod policy;
pub mod prices;
pub mod report;
pub mod studio;
