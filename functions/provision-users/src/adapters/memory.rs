//! In-memory fakes of the ports for the unit tests, beside the adapters they imitate: an identity store of fixed
//! members and names, and a domain of profiles (spaces and apps are empty). Both count their calls, so that a test
//! can say "no AWS call was made". Also the fixtures and the configuration the unit tests share.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use serde_json::Value;
use studio_ops_shared::AwsCallError;
use studio_ops_shared::config::Env;

use crate::config::Config;
use crate::plan::{MANAGED_BY, TAG_GROUP_ID, TAG_MANAGED_BY, TAG_SETTINGS, TAG_USER_ID};
use crate::ports::{
    AppOwner, AppPort, AppRef, Change, Created, IdentityPort, NewProfile, NewSpace, ProfileDetail,
    ProfilePort, ProfileSummary, SpacePort, SpaceSummary, TagPort,
};
use crate::settings::ProfileSettings;

/// The configured group of the test configuration.
pub const DS: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";

/// An event of `events/provision-users/`.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../events/provision-users/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The test configuration (group [`DS`]), with `extra` variables set over it.
pub fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("STUDIO_OPS_EVENT_BUS", "studio-ops"),
        ("STUDIO_OPS_IDEMPOTENCY_TABLE", "idem"),
        ("STUDIO_OPS_DOMAIN_ID", "d-studioops0001"),
        ("STUDIO_OPS_IDENTITY_STORE_ID", "d-9067000000"),
        ("STUDIO_OPS_PROVISION_GROUP_IDS", DS),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_env(&Env::new(&vars)).unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// Counts every call; answers from fixed data.
#[derive(Default)]
pub struct FakeIdentity {
    pub members: Vec<String>,
    pub names: HashMap<String, String>,
    pub calls: AtomicUsize,
}

impl IdentityPort for FakeIdentity {
    async fn group_name(&self, _: &str) -> Result<Option<String>, AwsCallError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Some("data-science".into()))
    }
    async fn group_member_ids(&self, _: &str) -> Result<Vec<String>, AwsCallError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.members.clone())
    }
    async fn user_name(&self, id: &str) -> Result<Option<String>, AwsCallError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.names.get(id).cloned())
    }
}

/// Profile name → (detail, tags).
type FakeProfiles = BTreeMap<String, (ProfileDetail, BTreeMap<String, String>)>;

/// An in-memory domain of profiles; apps and spaces are empty.
#[derive(Default)]
pub struct FakeStudio {
    profiles: Mutex<FakeProfiles>,
    pub reads: AtomicUsize,
    pub writes: AtomicUsize,
}

impl FakeStudio {
    /// A domain with these (profile name, user id) profiles, managed by studio-ops for group [`DS`].
    pub fn with_managed(names: &[(&str, &str)]) -> Self {
        let s = Self::default();
        let fp = ProfileSettings::default().fingerprint();
        for (name, user) in names {
            let detail = ProfileDetail {
                name: name.to_string(),
                arn: format!("arn:{name}"),
                status: "InService".into(),
                created: "2026-01-01T00:00:00Z".parse().ok(),
                sso_user_value: Some(name.to_string()),
                home_efs_uid: None,
            };
            let tags = [
                (TAG_MANAGED_BY, MANAGED_BY),
                (TAG_USER_ID, user),
                (TAG_GROUP_ID, DS),
                (TAG_SETTINGS, fp.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            s.profiles().insert(name.to_string(), (detail, tags));
        }
        s
    }
    fn profiles(&self) -> MutexGuard<'_, FakeProfiles> {
        self.profiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
    /// The names of the profiles there are now.
    pub fn names(&self) -> Vec<String> {
        self.profiles().keys().cloned().collect()
    }
}

impl ProfilePort for FakeStudio {
    async fn domain_exists(&self) -> Result<bool, AwsCallError> {
        self.read();
        Ok(true)
    }
    async fn list_profiles(&self) -> Result<Vec<ProfileSummary>, AwsCallError> {
        self.read();
        Ok(self
            .profiles()
            .values()
            .map(|(d, _)| ProfileSummary {
                name: d.name.clone(),
                status: d.status.clone(),
                created: d.created,
            })
            .collect())
    }
    async fn describe_profile(&self, name: &str) -> Result<Option<ProfileDetail>, AwsCallError> {
        self.read();
        Ok(self.profiles().get(name).map(|(d, _)| d.clone()))
    }
    async fn create_profile(&self, p: &NewProfile) -> Result<Created, AwsCallError> {
        self.write();
        let mut profiles = self.profiles();
        if profiles.contains_key(&p.name) {
            return Ok(Created::AlreadyExists);
        }
        let detail = ProfileDetail {
            name: p.name.clone(),
            arn: format!("arn:{}", p.name),
            status: "InService".into(),
            created: Some(Timestamp::now()),
            sso_user_value: Some(p.sso_user_name.clone()),
            home_efs_uid: None,
        };
        profiles.insert(p.name.clone(), (detail, p.tags.clone()));
        Ok(Created::Created)
    }
    async fn update_profile(&self, _: &str, _: &ProfileSettings) -> Result<Change, AwsCallError> {
        self.write();
        Ok(Change::Accepted)
    }
    async fn delete_profile(&self, name: &str) -> Result<Change, AwsCallError> {
        self.write();
        Ok(match self.profiles().remove(name) {
            Some(_) => Change::Accepted,
            None => Change::AlreadyGone,
        })
    }
}

impl TagPort for FakeStudio {
    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsCallError> {
        self.read();
        Ok(self
            .profiles()
            .values()
            .find(|(d, _)| d.arn == arn)
            .map(|(_, t)| t.clone())
            .unwrap_or_default())
    }
    async fn add_tags(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), AwsCallError> {
        self.write();
        Ok(())
    }
}

impl SpacePort for FakeStudio {
    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>, AwsCallError> {
        self.read();
        Ok(vec![])
    }
    async fn describe_space(&self, _: &str) -> Result<Option<SpaceSummary>, AwsCallError> {
        self.read();
        Ok(None)
    }
    async fn create_space(&self, _: &NewSpace) -> Result<Created, AwsCallError> {
        self.write();
        Ok(Created::Created)
    }
    async fn delete_space(&self, _: &str) -> Result<Change, AwsCallError> {
        self.write();
        Ok(Change::AlreadyGone)
    }
    async fn create_shared_space(
        &self,
        _: &crate::settings::SharedSpaceSpec,
        _: &BTreeMap<String, String>,
    ) -> Result<Created, AwsCallError> {
        Ok(Created::Created)
    }
    async fn update_shared_space(
        &self,
        _: &crate::settings::SharedSpaceSpec,
    ) -> Result<Change, AwsCallError> {
        Ok(Change::Accepted)
    }
}

impl AppPort for FakeStudio {
    async fn list_apps(&self, _: &AppOwner) -> Result<Vec<AppRef>, AwsCallError> {
        self.read();
        Ok(vec![])
    }
    async fn describe_app(&self, _: &AppRef) -> Result<Option<String>, AwsCallError> {
        self.read();
        Ok(None)
    }
    async fn delete_app(&self, _: &AppRef) -> Result<Change, AwsCallError> {
        self.write();
        Ok(Change::AlreadyGone)
    }
}
