//! idle-shutdown: finds idle billable Studio apps, warns their owners, stops them and reports the money saved.

pub mod config;
pub mod error;
pub mod handler;
