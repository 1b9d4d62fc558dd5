//! The ports provision-users talks through (Identity Store, the Studio domain) and the plain data they
//! exchange; the adapters in `identity.rs` and `studio.rs` implement them over the AWS SDK.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use jiff::Timestamp;
use studio_ops_shared::error::{classify_sdk_error, describe_sdk_error, sdk_error_code};
use studio_ops_shared::{ErrorClass, Failure};

use crate::settings::ProfileSettings;

/// An AWS call that failed after the SDK's own retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct PortError {
    /// The AWS operation, e.g. `CreateUserProfile`.
    pub operation: &'static str,
    pub class: ErrorClass,
    /// The AWS error code, when the service returned one.
    pub code: Option<String>,
    pub message: String,
}

impl PortError {
    pub fn from_sdk<E, R>(operation: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self {
            operation,
            class: classify_sdk_error(err),
            code: sdk_error_code(err).map(str::to_string),
            message: describe_sdk_error(err),
        }
    }

    /// An answer the adapter could not use (a required member missing); asking again would not help.
    pub fn malformed(operation: &'static str, what: &str) -> Self {
        Self {
            operation,
            class: ErrorClass::NonRetryable,
            code: None,
            message: format!("the answer has no {what}"),
        }
    }
}

impl Failure for PortError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// The Identity Center identity store (the adapter is bound to one store).
pub trait IdentityPort: Send + Sync {
    /// The group's display name, or `None` when the group does not exist.
    fn group_name(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// The user ids of every member of the group (all pages).
    fn group_member_ids(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
    /// The user's `UserName` (what Studio SSO matches on), or `None` when the user does not exist.
    fn user_name(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// A user profile as `ListUserProfiles` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSummary {
    pub name: String,
    pub status: String,
    pub created: Option<Timestamp>,
}

/// A user profile as `DescribeUserProfile` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileDetail {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub created: Option<Timestamp>,
    pub sso_user_value: Option<String>,
    pub home_efs_uid: Option<String>,
}

/// A space as `ListSpaces` / `DescribeSpace` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceSummary {
    pub name: String,
    pub status: String,
    pub owner: Option<String>,
    /// `Private` or `Shared`; `None` for spaces made before sharing settings existed (shared).
    pub sharing: Option<String>,
}

impl SpaceSummary {
    pub fn is_private(&self) -> bool {
        self.sharing.as_deref() == Some("Private")
    }

    pub fn is_owned_by(&self, profile: &str) -> bool {
        self.owner
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(profile))
    }
}

/// Who an app belongs to: a user profile (classic apps) or a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppOwner {
    User(String),
    Space(String),
}

/// One app, addressed the way DescribeApp/DeleteApp want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    pub owner: AppOwner,
    pub app_type: String,
    pub app_name: String,
    pub status: String,
}

impl std::fmt::Display for AppRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owner = match &self.owner {
            AppOwner::User(u) => format!("user {u}"),
            AppOwner::Space(s) => format!("space {s}"),
        };
        write!(f, "{} {} of {owner}", self.app_type, self.app_name)
    }
}

/// A profile to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProfile {
    pub name: String,
    /// The Identity Center `UserName` Studio matches at sign-in.
    pub sso_user_name: String,
    pub settings: ProfileSettings,
    pub tags: BTreeMap<String, String>,
}

/// A private JupyterLab space to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpace {
    pub name: String,
    pub owner: String,
    pub display_name: String,
    pub instance_type: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What a create call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// `ResourceInUse`: a resource with that name exists already (maybe ours, from a concurrent run).
    AlreadyExists,
}

/// What a delete or update call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The change was accepted.
    Accepted,
    /// `ResourceNotFound`: nothing left to delete.
    AlreadyGone,
    /// `ResourceInUse`: not now; the message says why.
    Busy(String),
}

/// The SageMaker Studio domain (the adapter is bound to one domain).
pub trait StudioPort: Send + Sync {
    /// Whether the configured domain exists.
    fn domain_exists(&self) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn list_profiles(&self) -> impl Future<Output = Result<Vec<ProfileSummary>, PortError>> + Send;
    fn describe_profile(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ProfileDetail>, PortError>> + Send;
    fn list_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, PortError>> + Send;
    fn add_tags(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn create_profile(
        &self,
        profile: &NewProfile,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;
    fn update_profile(
        &self,
        name: &str,
        settings: &ProfileSettings,
    ) -> impl Future<Output = Result<Change, PortError>> + Send;
    fn delete_profile(&self, name: &str) -> impl Future<Output = Result<Change, PortError>> + Send;
    fn list_spaces(&self) -> impl Future<Output = Result<Vec<SpaceSummary>, PortError>> + Send;
    fn describe_space(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<SpaceSummary>, PortError>> + Send;
    fn create_space(
        &self,
        space: &NewSpace,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;
    fn delete_space(&self, name: &str) -> impl Future<Output = Result<Change, PortError>> + Send;
    fn list_apps(
        &self,
        owner: &AppOwner,
    ) -> impl Future<Output = Result<Vec<AppRef>, PortError>> + Send;
    /// The app's current status, or `None` when it no longer exists.
    fn describe_app(
        &self,
        app: &AppRef,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    fn delete_app(&self, app: &AppRef) -> impl Future<Output = Result<Change, PortError>> + Send;
}

/// SageMaker's error codes for "no such resource" and "busy / already exists".
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFound";
pub const RESOURCE_IN_USE: &str = "ResourceInUse";

/// Extra attempts [`persist`] makes after the SDK's own retries gave up on a transient error.
pub const EXTRA_ATTEMPTS: u32 = 4;
/// The first pause of [`persist`]; it doubles after each attempt.
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Runs an AWS call again when it failed transiently (throttling, 5xx, timeouts) after the SDK's own retries,
/// pausing 0.5 s, 1 s, 2 s, 4 s (each shortened by a random quarter). The SDK's retry quota empties under
/// sustained throttling and then stops retrying at once; these pauses let the service (and the quota) recover.
/// Every call the ports make is safe to repeat: reads, deletes, and creates that answer ResourceInUse.
pub async fn persist<T, F, Fut>(mut call: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if e.class == ErrorClass::Retryable && attempt < EXTRA_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(operation = e.operation, attempt, error = %e, "transient failure; trying again");
                tokio::time::sleep(jittered(pause)).await;
                pause *= 2;
            }
            other => return other,
        }
    }
}

/// `pause` less up to a quarter, so that concurrent callers do not come back in step.
fn jittered(pause: Duration) -> Duration {
    let noise = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default(),
    );
    let quarter = u64::try_from(pause.as_millis() / 4).unwrap_or(0).max(1);
    pause.saturating_sub(Duration::from_millis(noise % quarter))
}

/// Converts an SDK timestamp.
pub fn timestamp(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    t.and_then(|t| Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).ok()?).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(class: ErrorClass) -> PortError {
        PortError {
            operation: "DescribeUserProfile",
            class,
            code: Some("ThrottlingException".into()),
            message: "Rate exceeded".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn persist_retries_transient_errors_then_gives_up() {
        let calls = AtomicU32::new(0);
        let r: Result<u32, PortError> = persist(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(err(ErrorClass::Retryable))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(r, Ok(2));
        calls.store(0, Ordering::SeqCst);
        let r: Result<u32, PortError> = persist(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err(ErrorClass::Retryable))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1 + EXTRA_ATTEMPTS);
        calls.store(0, Ordering::SeqCst);
        let r: Result<u32, PortError> = persist(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err(ErrorClass::NonRetryable))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a NonRetryable error is not repeated"
        );
    }

    #[test]
    fn jitter_shortens_by_at_most_a_quarter() {
        for _ in 0..100 {
            let j = jittered(Duration::from_millis(800));
            assert!(
                j > Duration::from_millis(600) && j <= Duration::from_millis(800),
                "{j:?}"
            );
        }
    }
}
