//! The ports provision-users talks through — the identity store, and the Studio domain in four small roles
//! (profiles, tags, spaces, apps) — and the plain data they exchange. A failed AWS call is a
//! [`studio_ops_shared::AwsCallError`] (after the SDK's own retries); the domain outcomes a call can have
//! (created or already there, gone, busy) are the small enums below. The adapters in `adapters/` implement them.

use std::collections::BTreeMap;
use std::future::Future;

use jiff::Timestamp;
use studio_ops_shared::AwsCallError;

use crate::settings::{ProfileSettings, SharedSpaceSpec};

/// The Identity Center identity store (the adapter is bound to one store).
pub trait IdentityPort: Send + Sync {
    /// The group's display name, or `None` when the group does not exist.
    fn group_name(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The user ids of every member of the group (all pages).
    fn group_member_ids(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// The user's `UserName` (what Studio SSO matches on), or `None` when the user does not exist.
    fn user_name(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
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
    /// `SpaceSettings.AppType`, when SageMaker says.
    pub app_type: Option<String>,
    /// The space's ARN (DescribeSpace says it; ListSpaces does not).
    pub arn: Option<String>,
    /// Its EBS volume size (DescribeSpace), which SageMaker can grow but not shrink.
    pub ebs_size_gb: Option<u32>,
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

/// The domain's user profiles (the adapter is bound to one domain).
pub trait ProfilePort: Send + Sync {
    /// Whether the configured domain exists.
    fn domain_exists(&self) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    fn list_profiles(
        &self,
    ) -> impl Future<Output = Result<Vec<ProfileSummary>, AwsCallError>> + Send;
    fn describe_profile(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ProfileDetail>, AwsCallError>> + Send;
    fn create_profile(
        &self,
        profile: &NewProfile,
    ) -> impl Future<Output = Result<Created, AwsCallError>> + Send;
    fn update_profile(
        &self,
        name: &str,
        settings: &ProfileSettings,
    ) -> impl Future<Output = Result<Change, AwsCallError>> + Send;
    fn delete_profile(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Change, AwsCallError>> + Send;
}

/// Tags on a Studio resource (profiles carry what provision-users knows about them in tags).
pub trait TagPort: Send + Sync {
    fn list_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsCallError>> + Send;
    fn add_tags(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// The domain's spaces.
pub trait SpacePort: Send + Sync {
    fn list_spaces(&self) -> impl Future<Output = Result<Vec<SpaceSummary>, AwsCallError>> + Send;
    fn describe_space(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<SpaceSummary>, AwsCallError>> + Send;
    fn create_space(
        &self,
        space: &NewSpace,
    ) -> impl Future<Output = Result<Created, AwsCallError>> + Send;
    fn delete_space(&self, name: &str)
    -> impl Future<Output = Result<Change, AwsCallError>> + Send;
    /// Creates a team shared space (no owner: it is the team's) with its settings and tags.
    fn create_shared_space(
        &self,
        spec: &SharedSpaceSpec,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Created, AwsCallError>> + Send;
    /// Gives a team shared space its declared settings (`UpdateSpace`; the app type never changes).
    fn update_shared_space(
        &self,
        spec: &SharedSpaceSpec,
    ) -> impl Future<Output = Result<Change, AwsCallError>> + Send;
}

/// The apps of a user profile or a space.
pub trait AppPort: Send + Sync {
    fn list_apps(
        &self,
        owner: &AppOwner,
    ) -> impl Future<Output = Result<Vec<AppRef>, AwsCallError>> + Send;
    /// The app's current status, or `None` when it no longer exists.
    fn describe_app(
        &self,
        app: &AppRef,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    fn delete_app(&self, app: &AppRef)
    -> impl Future<Output = Result<Change, AwsCallError>> + Send;
}

/// The Studio domain as the reconcile uses it: every role above, from one adapter.
pub trait StudioPort: ProfilePort + TagPort + SpacePort + AppPort {}

impl<T: ProfilePort + TagPort + SpacePort + AppPort> StudioPort for T {}

/// SageMaker's error codes for "no such resource" and "busy / already exists".
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFound";
pub const RESOURCE_IN_USE: &str = "ResourceInUse";
