//! provision-users: makes the Studio domain's user profiles follow the configured Identity Center group(s).

pub mod brake;
pub mod config;
pub mod error;
pub mod handler;
pub mod identity;
pub mod naming;
pub mod plan;
pub mod ports;
pub mod reconcile;
pub mod settings;
pub mod studio;

/// The function's name: its idempotency-table namespace (the lease item is `provision-users#lease`).
pub const FUNCTION_NAME: &str = "provision-users";
