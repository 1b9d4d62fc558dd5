//! The simulator's admin API under `/_sim/`: request/response types shared by the server and
//! the typed [`AdminClient`] that tests, the demo and benchmarks use to set knobs, seed state,
//! simulate activity and read statistics.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::knobs::{Knobs, KnobsPatch, Stats};

/// `POST /_sim/seed`: bulk creation with explicit timestamps. Items are created in the order
/// domains, user profiles, spaces, apps, so one call can seed a whole world.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedRequest {
    pub domains: Vec<SeedDomain>,
    pub user_profiles: Vec<SeedUserProfile>,
    pub spaces: Vec<SeedSpace>,
    pub apps: Vec<SeedApp>,
}

/// A domain to seed. Without `domain_id` one is generated (see [`SeedResponse::domain_ids`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedDomain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<String>,
    pub domain_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_user_settings: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

/// A user profile to seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedUserProfile {
    pub domain_id: String,
    pub user_profile_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<Timestamp>,
    /// `InService` (default), `Pending`, `Failed`, `Updating`, ... (sticky).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Sets `SingleSignOnUserIdentifier` = `UserName` and `SingleSignOnUserValue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sso_user_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_settings: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

/// A space to seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedSpace {
    pub domain_id: String,
    pub space_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_user_profile_name: Option<String>,
    /// `Private` or `Shared`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing_type: Option<String>,
    /// Stored as `SpaceSettings.AppType` unless `space_settings` says otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_settings: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// An app to seed; exactly one of `user_profile_name` / `space_name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedApp {
    pub domain_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_profile_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_name: Option<String>,
    pub app_type: String,
    /// Defaults to `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// `InService` (default), `Pending`, `Deleting`, `Deleted` or `Failed`. A seeded
    /// `Pending`/`Deleting` status is sticky unless `transition_after_ms` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `Pending` becomes `InService` / `Deleting` becomes `Deleted` this long after seeding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition_after_ms: Option<u64>,
    /// Defaults to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Timestamp>,
    /// Defaults to `creation_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_health_check: Option<Timestamp>,
    /// Defaults to `creation_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_user_activity: Option<Timestamp>,
    /// Shorthand for `resource_spec = {"InstanceType": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_spec: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The answer to `POST /_sim/seed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedResponse {
    /// The ids of the seeded domains, in request order.
    pub domain_ids: Vec<String>,
    pub user_profiles: usize,
    pub spaces: usize,
    pub apps: usize,
}

/// What `POST /_sim/activity` simulates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Genuine user activity: only `LastUserActivityTimestamp` moves.
    #[default]
    UserActivity,
    /// A control-plane health check: `LastHealthCheckTimestamp` moves, and so does
    /// `LastUserActivityTimestamp` while the knob `health_check_sets_activity` is on.
    HealthCheck,
}

/// `POST /_sim/activity`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActivityRequest {
    pub domain_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_profile_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_name: Option<String>,
    pub app_type: String,
    /// Defaults to `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    pub kind: ActivityKind,
    /// Defaults to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// A domain in `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainState {
    pub domain_id: String,
    pub domain_name: String,
    pub arn: String,
    pub status: String,
    pub creation_time: Timestamp,
    pub tags: BTreeMap<String, String>,
}

/// A user profile in `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfileState {
    pub domain_id: String,
    pub user_profile_name: String,
    pub arn: String,
    pub status: String,
    pub creation_time: Timestamp,
    pub last_modified_time: Timestamp,
    pub sso_user_value: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A space in `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceState {
    pub domain_id: String,
    pub space_name: String,
    pub arn: String,
    pub status: String,
    pub owner_user_profile_name: Option<String>,
    pub sharing_type: Option<String>,
    pub app_type: Option<String>,
    pub creation_time: Timestamp,
    pub tags: BTreeMap<String, String>,
}

/// An app in `GET /_sim/state` (and the answer of `POST /_sim/activity`), with effective
/// status and timestamps as `DescribeApp` would show them now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppState {
    pub domain_id: String,
    pub user_profile_name: Option<String>,
    pub space_name: Option<String>,
    pub app_type: String,
    pub app_name: String,
    pub arn: String,
    pub status: String,
    pub creation_time: Timestamp,
    pub last_health_check: Timestamp,
    pub last_user_activity: Timestamp,
    pub instance_type: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// `GET /_sim/state`: everything the simulator holds (sorted by creation time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateDump {
    pub domains: Vec<DomainState>,
    pub user_profiles: Vec<UserProfileState>,
    pub spaces: Vec<SpaceState>,
    pub apps: Vec<AppState>,
}

impl StateDump {
    /// The apps with the given status.
    pub fn apps_with_status(&self, status: &str) -> Vec<&AppState> {
        self.apps.iter().filter(|a| a.status == status).collect()
    }
}

/// Errors of the admin client.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("admin endpoint answered {status}: {body}")]
    Status { status: u16, body: String },
}

/// A typed client for the admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the simulator at `base_url` (e.g. `http://127.0.0.1:4567`).
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, AdminError> {
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(AdminError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(resp.json::<T>().await?)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/_sim/{path}", self.base)
    }

    /// `GET /_sim/knobs`.
    pub async fn knobs(&self) -> Result<Knobs, AdminError> {
        self.send(self.http.get(self.url("knobs"))).await
    }

    /// `POST /_sim/knobs` with a partial update; returns the knobs now in force.
    pub async fn set_knobs(&self, patch: &KnobsPatch) -> Result<Knobs, AdminError> {
        self.send(self.http.post(self.url("knobs")).json(patch))
            .await
    }

    /// `POST /_sim/seed`.
    pub async fn seed(&self, req: &SeedRequest) -> Result<SeedResponse, AdminError> {
        self.send(self.http.post(self.url("seed")).json(req)).await
    }

    /// `POST /_sim/activity`.
    pub async fn activity(&self, req: &ActivityRequest) -> Result<AppState, AdminError> {
        self.send(self.http.post(self.url("activity")).json(req))
            .await
    }

    /// `GET /_sim/stats`.
    pub async fn stats(&self) -> Result<Stats, AdminError> {
        self.send(self.http.get(self.url("stats"))).await
    }

    /// `POST /_sim/stats/reset`.
    pub async fn reset_stats(&self) -> Result<Stats, AdminError> {
        self.send(self.http.post(self.url("stats/reset"))).await
    }

    /// `GET /_sim/state`.
    pub async fn state(&self) -> Result<StateDump, AdminError> {
        self.send(self.http.get(self.url("state"))).await
    }

    /// `POST /_sim/reset`: empty world, start-up knobs, fresh RNG, zero statistics.
    pub async fn reset(&self) -> Result<(), AdminError> {
        let _: Value = self.send(self.http.post(self.url("reset"))).await?;
        Ok(())
    }
}
