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
pub mod shared_spaces;
pub mod trigger;

/// The function's name: its idempotency-table namespace (the lease item is `provision-users#lease`) and its
/// metrics dimension.
pub const FUNCTION_NAME: &str = "provision-users";

/// Every metric provision-users emits (the dashboard reads only these).
pub const METRICS: studio_ops_shared::metrics::Catalogue = studio_ops_shared::metrics::Catalogue {
    function: FUNCTION_NAME,
    metrics: &[
        studio_ops_shared::metrics::RUN_COMPLETED,
        "Members",
        "ManagedProfiles",
        "ReconcileBlocked",
        "ProfilesCreated",
        "ProfilesUpdated",
        "ProfilesDeprovisioned",
        "ActionsFailed",
        "ActionsLeftForRetry",
        "ReconcileMs",
    ],
};
