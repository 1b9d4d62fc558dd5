//! provision-users: makes the Studio domain's user profiles follow the configured Identity Center group(s).

pub mod config;
pub mod error;
pub mod handler;
