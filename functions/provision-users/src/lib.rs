//! provision-users: makes the Studio domain's user profiles follow the configured Identity Center group(s).

pub mod adapters;
pub mod brake;
pub mod config;
pub mod error;
pub mod handler;
pub mod naming;
pub mod plan;
pub mod ports;
pub mod reconcile;
pub mod settings;
pub mod trigger;

/// The function's name: its idempotency-table namespace (the lease item is `provision-users#lease`) and its
/// metrics dimension.
pub const FUNCTION_NAME: &str = "provision-users";
