//! What a sweep asks of SageMaker, as small role traits (listing apps, reading the facts of their owners, tagging,
//! stopping), the plain data they exchange, and the bundle of adapters the handler is built with. A failed call is
//! always a [`AwsCallError`]; the real domain outcomes (an app that is gone, a delete that met a busy app) are values.
//! `adapters::sagemaker` implements the Studio traits over the SDK, `adapters::dynamodb` the sweep state,
//! `adapters::memory` both in memory for the unit tests.

use std::collections::BTreeMap;
use std::future::Future;

use futures::Stream;
use jiff::Timestamp;
use studio_ops_shared::AwsCallError;

use crate::budget::{Notice, Notices};
use crate::decision::{AppListing, IdleSettings, Tags};
use crate::ledger::{Account, Usage};
use crate::state::{DomainState, StateChange};
use crate::weekly::{Lag, Stop};

/// The adapters the handler talks through; built once in `main` (or by tests, pointed at the local world).
pub struct Ports<S, P, I, D, Q> {
    /// SageMaker Studio, through all four roles below.
    pub studio: S,
    /// The suite's event bus.
    pub publisher: P,
    /// The idempotency table (warning claims and the sweep lease).
    pub idempotency: I,
    /// The function's tables: the sweep state (warnings, readings, unreached apps) and the spend ledger.
    pub state: D,
    /// The suite's failure queues, for the team digest.
    pub queues: Q,
}

/// What DescribeApp says.
#[derive(Debug, Clone, PartialEq)]
pub struct AppDescription {
    pub arn: String,
    pub status: String,
    pub instance_type: Option<String>,
    pub created: Option<Timestamp>,
    pub last_health_check: Option<Timestamp>,
    pub last_user_activity: Option<Timestamp>,
}

/// What DescribeSpace says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpaceDescription {
    pub arn: String,
    pub owner_user_profile: Option<String>,
    /// The space's own built-in idle timeout per app type (`JupyterLab`, `CodeEditor`), where set.
    pub idle_timeout_minutes: BTreeMap<String, u32>,
}

/// What DescribeUserProfile says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileDescription {
    pub arn: String,
    /// The profile's built-in idle shutdown settings per app type, where set.
    pub idle: IdleSettings,
}

/// How a DeleteApp ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// This call stopped the app.
    Deleted,
    /// `ResourceNotFound`: someone else (another sweep, the owner) already deleted it.
    AlreadyGone,
    /// `ResourceInUse`: the app is changing state; the next sweep looks again.
    InUse(String),
}

/// Finding the apps to sweep.
pub trait ListApps: Send + Sync {
    fn list_domains(&self) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// The apps of a domain (all statuses), one item per page as it arrives, so that a sweep works on the first page
    /// while the next is read. An error is the last item.
    fn app_pages<'a>(
        &'a self,
        domain_id: &'a str,
    ) -> impl Stream<Item = Result<Vec<AppListing>, AwsCallError>> + Send + 'a;
    /// Space name (lower case) → owner user profile, for the spaces of a domain that have an owner.
    fn list_space_owners(
        &self,
        domain_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsCallError>> + Send;
    /// `None` when the app no longer exists.
    fn describe_app(
        &self,
        app: &AppListing,
    ) -> impl Future<Output = Result<Option<AppDescription>, AwsCallError>> + Send;
}

/// The facts of an app's owner: its space, its user profile, its domain's defaults.
pub trait ReadOwners: Send + Sync {
    /// The built-in idle shutdown settings of the domain's `DefaultUserSettings`.
    fn domain_idle_settings(
        &self,
        domain_id: &str,
    ) -> impl Future<Output = Result<IdleSettings, AwsCallError>> + Send;
    fn describe_space(
        &self,
        domain_id: &str,
        space_name: &str,
    ) -> impl Future<Output = Result<SpaceDescription, AwsCallError>> + Send;
    fn describe_user_profile(
        &self,
        domain_id: &str,
        user_profile_name: &str,
    ) -> impl Future<Output = Result<ProfileDescription, AwsCallError>> + Send;
}

/// Reading and writing the tags of an app, a space or a user profile.
pub trait Tagging: Send + Sync {
    fn list_tags(&self, arn: &str) -> impl Future<Output = Result<Tags, AwsCallError>> + Send;
    fn add_tags(
        &self,
        arn: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    fn delete_tags(
        &self,
        arn: &str,
        keys: &[&str],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// Stopping an app.
pub trait StopApps: Send + Sync {
    fn delete_app(
        &self,
        app: &AppListing,
    ) -> impl Future<Output = Result<DeleteOutcome, AwsCallError>> + Send;
}

/// What a sweep remembers between invocations (`state.rs`).
pub trait SweepState: Send + Sync {
    /// Everything remembered about a domain: one query, read page by page.
    fn load(
        &self,
        domain_id: &str,
    ) -> impl Future<Output = Result<DomainState, AwsCallError>> + Send;
    /// Saves changes to a domain's state (at most 25 at a time: one batch write).
    fn save(
        &self,
        domain_id: &str,
        changes: &[StateChange],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// A domain's month in the spend ledger: the usage records and the budget notices sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonthLedger {
    pub usages: Vec<Usage>,
    /// By account key (`user/ana`).
    pub notices: BTreeMap<String, Notices>,
}

/// The spend ledger (`ledger.rs`) and the budget notices of each month (`budget.rs`).
pub trait SpendLedger: Send + Sync {
    /// A domain's month (`2026-12`): one query, read page by page. With `days: false` the records come without
    /// their per-day seconds (what a sweep needs: a month's records of a large team run to tens of thousands).
    fn month(
        &self,
        domain_id: &str,
        month: &str,
        days: bool,
    ) -> impl Future<Output = Result<MonthLedger, AwsCallError>> + Send;
    /// Writes a record unless the ledger holds a later reading of it (`ledger::supersedes`); `false` then.
    fn record(&self, usage: &Usage) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Records that `notice` goes to `account` this month, unless it already went: `false` then (a conditional
    /// write: two sweeps cannot both send it).
    fn claim_notice(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Takes back a claim made `at` whose notice could not be published, so that the next sweep sends it.
    fn release_notice(
        &self,
        domain_id: &str,
        month: &str,
        account: &Account,
        notice: Notice,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Keeps an app the sweep stopped, for the digests (its key is deterministic: writing it twice is writing it once).
    fn record_stop(&self, stop: &Stop) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The apps stopped in a domain's month.
    fn stops(
        &self,
        domain_id: &str,
        month: &str,
    ) -> impl Future<Output = Result<Vec<Stop>, AwsCallError>> + Send;
    /// Keeps a sweep that could not keep up, for the team digest.
    fn record_lag(&self, lag: &Lag) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The month's sweeps that could not keep up.
    fn lags(&self, month: &str) -> impl Future<Output = Result<Vec<Lag>, AwsCallError>> + Send;
}

/// The suite's failure queues: how many events wait in one (the team digest's "failed invocations").
pub trait FailureQueues: Send + Sync {
    /// The messages waiting in the queue at `queue_url` (visible ones: what an admin has to look at).
    fn waiting(&self, queue_url: &str) -> impl Future<Output = Result<u32, AwsCallError>> + Send;
}

/// Everything a sweep asks of Studio: the four roles together, as one adapter usually provides them.
pub trait Studio: ListApps + ReadOwners + Tagging + StopApps {}

impl<T: ListApps + ReadOwners + Tagging + StopApps> Studio for T {}
