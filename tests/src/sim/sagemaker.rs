//! The simulated SageMaker Studio control plane: domains, user profiles, spaces, apps (with
//! their status lifecycle and activity timestamps) and tags, held in memory and answered in the
//! shapes of botocore's SageMaker model. Operations not handled here are forwarded to moto by
//! the caller.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::admin::{
    ActivityKind, ActivityRequest, AppState, DomainState, SeedRequest, SeedResponse, SpaceState,
    StateDump, UserProfileState,
};
use super::knobs::Knobs;
use super::protocol::{
    AwsError, Input, NAME_PATTERN, SortKey, epoch, invalid_token, is_domain_id, is_sagemaker_name,
    paginate, paginate_offset,
};

/// The app types the simulator accepts (botocore's `AppType` enum).
pub const APP_TYPES: &[&str] = &[
    "JupyterServer",
    "KernelGateway",
    "DetailedProfiler",
    "TensorBoard",
    "CodeEditor",
    "JupyterLab",
    "RStudioServerPro",
    "RSessionGateway",
    "Canvas",
];

/// The SageMaker operations the simulator answers itself.
pub const IMPLEMENTED_OPS: &[&str] = &[
    "CreateDomain",
    "DescribeDomain",
    "ListDomains",
    "CreateUserProfile",
    "DescribeUserProfile",
    "ListUserProfiles",
    "UpdateUserProfile",
    "DeleteUserProfile",
    "CreateSpace",
    "DescribeSpace",
    "ListSpaces",
    "UpdateSpace",
    "DeleteSpace",
    "CreateApp",
    "DescribeApp",
    "ListApps",
    "DeleteApp",
    "AddTags",
    "ListTags",
    "DeleteTags",
];

const SORT_ORDERS: &[&str] = &["Ascending", "Descending"];
const MAX_TAGS: usize = 50;

/// What the world did with a call.
#[derive(Debug)]
pub enum Outcome {
    /// Answered here.
    Done(Result<Value, AwsError>),
    /// Not ours: forward to moto unchanged.
    Forward,
}

type Tags = Vec<(String, String)>;

#[derive(Debug, Clone)]
struct Domain {
    id: String,
    name: String,
    arn: String,
    created: Timestamp,
    modified: Timestamp,
    auth_mode: String,
    default_user_settings: Value,
    /// Other create-time members echoed by DescribeDomain.
    extra: Map<String, Value>,
    next_uid: u64,
    tags: Tags,
}

#[derive(Debug, Clone)]
struct UserProfile {
    domain_id: String,
    name: String,
    arn: String,
    created: Timestamp,
    modified: Timestamp,
    status: String,
    gone_at: Option<Timestamp>,
    sso_value: Option<String>,
    user_settings: Option<Value>,
    efs_uid: String,
    tags: Tags,
}

#[derive(Debug, Clone)]
struct Space {
    domain_id: String,
    name: String,
    arn: String,
    created: Timestamp,
    modified: Timestamp,
    status: String,
    gone_at: Option<Timestamp>,
    settings: Option<Value>,
    owner: Option<String>,
    sharing: Option<String>,
    display_name: Option<String>,
    efs_uid: String,
    tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    User(String),
    Space(String),
}

#[derive(Debug, Clone)]
struct App {
    domain_id: String,
    owner: Owner,
    app_type: String,
    name: String,
    arn: String,
    created: Timestamp,
    status: String,
    /// When a `Pending` app becomes `InService` / a `Deleting` app becomes `Deleted`.
    transition_at: Option<Timestamp>,
    in_service_since: Timestamp,
    last_health_check: Timestamp,
    last_user_activity: Timestamp,
    resource_spec: Value,
    failure_reason: Option<String>,
    tags: Tags,
}

/// The in-memory SageMaker state.
#[derive(Debug)]
pub struct World {
    region: String,
    account: String,
    seed: u64,
    rng: StdRng,
    domains: BTreeMap<String, Domain>,
    profiles: BTreeMap<String, UserProfile>,
    spaces: BTreeMap<String, Space>,
    apps: BTreeMap<String, App>,
}

fn after(t: Timestamp, ms: u64) -> Timestamp {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    t.saturating_add(SignedDuration::from_millis(ms))
        .unwrap_or(t)
}

fn key(t: Timestamp, arn: &str) -> SortKey {
    (t.as_nanosecond(), arn.to_owned())
}

fn tags_json(tags: &Tags) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

fn tags_map(tags: &Tags) -> BTreeMap<String, String> {
    tags.iter().cloned().collect()
}

fn parse_tags(list: Option<&Vec<Value>>) -> Result<Tags, AwsError> {
    let mut out: Tags = Vec::new();
    for t in list.into_iter().flatten() {
        let k = t
            .get("Key")
            .and_then(Value::as_str)
            .ok_or_else(|| AwsError::missing("Tags.member.Key"))?;
        let v = t.get("Value").and_then(Value::as_str).unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{k}' at 'tags.member.key' failed to satisfy \
                 constraint: Member must have length between 1 and 128"
            )));
        }
        merge_tag(&mut out, k, v);
    }
    if out.len() > MAX_TAGS {
        return Err(AwsError::validation(format!(
            "Too many tags: a resource can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(out)
}

fn merge_tag(tags: &mut Tags, k: &str, v: &str) {
    match tags.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_owned(),
        None => tags.push((k.to_owned(), v.to_owned())),
    }
}

fn map_tags(m: &BTreeMap<String, String>) -> Tags {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn default_resource_spec(app_type: &str) -> Value {
    match app_type {
        "JupyterServer" => json!({ "InstanceType": "system" }),
        "Canvas" | "RStudioServerPro" => json!({ "InstanceType": "system" }),
        _ => json!({ "InstanceType": "ml.t3.medium" }),
    }
}

fn shallow_merge(base: &mut Option<Value>, patch: &Map<String, Value>) {
    let mut m = match base.take() {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in patch {
        m.insert(k.clone(), v.clone());
    }
    *base = Some(Value::Object(m));
}

impl World {
    /// An empty world.
    pub fn new(region: &str, account: &str, seed: u64) -> Self {
        Self {
            region: region.to_owned(),
            account: account.to_owned(),
            seed,
            rng: StdRng::seed_from_u64(seed),
            domains: BTreeMap::new(),
            profiles: BTreeMap::new(),
            spaces: BTreeMap::new(),
            apps: BTreeMap::new(),
        }
    }

    /// Drops everything and re-seeds the id generator.
    pub fn reset(&mut self) {
        *self = Self::new(&self.region.clone(), &self.account.clone(), self.seed);
    }

    fn prefix(&self) -> String {
        format!("arn:aws:sagemaker:{}:{}:", self.region, self.account)
    }

    fn domain_arn(&self, id: &str) -> String {
        format!("{}domain/{}", self.prefix(), id.to_lowercase())
    }

    fn profile_arn(&self, domain: &str, name: &str) -> String {
        format!(
            "{}user-profile/{}/{}",
            self.prefix(),
            domain.to_lowercase(),
            name.to_lowercase()
        )
    }

    fn space_arn(&self, domain: &str, name: &str) -> String {
        format!(
            "{}space/{}/{}",
            self.prefix(),
            domain.to_lowercase(),
            name.to_lowercase()
        )
    }

    fn app_arn(&self, domain: &str, owner: &Owner, app_type: &str, name: &str) -> String {
        let o = match owner {
            Owner::User(n) | Owner::Space(n) => n,
        };
        format!(
            "{}app/{}/{}/{}/{}",
            self.prefix(),
            domain.to_lowercase(),
            o.to_lowercase(),
            app_type.to_lowercase(),
            name.to_lowercase()
        )
    }

    fn new_domain_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let id: String = (0..12)
                .map(|_| {
                    let i = self.rng.random_range(0..ALPHABET.len());
                    char::from(ALPHABET.get(i).copied().unwrap_or(b'a'))
                })
                .collect();
            let id = format!("d-{id}");
            if !self.domains.contains_key(&id) {
                return id;
            }
        }
    }

    fn domain(&self, id: &str) -> Result<&Domain, AwsError> {
        self.domains
            .get(id)
            .ok_or_else(|| AwsError::not_found(format!("Domain '{id}' does not exist.")))
    }

    fn next_uid(&mut self, domain: &str) -> String {
        match self.domains.get_mut(domain) {
            Some(d) => {
                d.next_uid += 1;
                d.next_uid.to_string()
            }
            None => "200001".to_owned(),
        }
    }

    fn profile_exists(&self, domain: &str, name: &str) -> bool {
        self.profiles.contains_key(&self.profile_arn(domain, name))
    }

    /// Applies lifecycle transitions that are due and removes resources whose deletion has
    /// completed.
    pub fn settle(&mut self, now: Timestamp) {
        for app in self.apps.values_mut() {
            if let Some(t) = app.transition_at
                && t <= now
            {
                match app.status.as_str() {
                    "Pending" => {
                        app.status = "InService".to_owned();
                        app.in_service_since = t;
                        app.transition_at = None;
                    }
                    "Deleting" => {
                        app.status = "Deleted".to_owned();
                        app.transition_at = None;
                    }
                    _ => app.transition_at = None,
                }
            }
        }
        let gone_profiles: Vec<String> = self
            .profiles
            .iter()
            .filter(|(_, p)| p.gone_at.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for arn in gone_profiles {
            if let Some(p) = self.profiles.remove(&arn) {
                let owner = Owner::User(p.name.to_lowercase());
                self.apps.retain(|_, a| {
                    !(a.domain_id == p.domain_id
                        && lower_owner(&a.owner) == owner
                        && a.status == "Deleted")
                });
            }
        }
        let gone_spaces: Vec<String> = self
            .spaces
            .iter()
            .filter(|(_, s)| s.gone_at.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for arn in gone_spaces {
            if let Some(s) = self.spaces.remove(&arn) {
                let owner = Owner::Space(s.name.to_lowercase());
                self.apps.retain(|_, a| {
                    !(a.domain_id == s.domain_id
                        && lower_owner(&a.owner) == owner
                        && a.status == "Deleted")
                });
            }
        }
    }

    /// Answers one SageMaker operation.
    pub fn call(&mut self, op: &str, input: &Input, knobs: &Knobs, now: Timestamp) -> Outcome {
        self.settle(now);
        let r = match op {
            "CreateDomain" => self.create_domain(input, now),
            "DescribeDomain" => self.describe_domain(input),
            "ListDomains" => self.list_domains(input),
            "CreateUserProfile" => self.create_user_profile(input, now),
            "DescribeUserProfile" => self.describe_user_profile(input),
            "ListUserProfiles" => self.list_user_profiles(input),
            "UpdateUserProfile" => self.update_user_profile(input, now),
            "DeleteUserProfile" => self.delete_user_profile(input, knobs, now),
            "CreateSpace" => self.create_space(input, now),
            "DescribeSpace" => self.describe_space(input),
            "ListSpaces" => self.list_spaces(input),
            "UpdateSpace" => self.update_space(input, now),
            "DeleteSpace" => self.delete_space(input, knobs, now),
            "CreateApp" => self.create_app(input, knobs, now),
            "DescribeApp" => self.describe_app(input, knobs, now),
            "ListApps" => self.list_apps(input),
            "DeleteApp" => self.delete_app(input, knobs, now),
            "AddTags" | "ListTags" | "DeleteTags" => {
                let arn = match input.req_str("ResourceArn") {
                    Ok(a) => a,
                    Err(e) => return Outcome::Done(Err(e)),
                };
                if !self.is_local_arn(arn) {
                    return Outcome::Forward;
                }
                match op {
                    "AddTags" => self.add_tags(input, now),
                    "ListTags" => self.list_tags(input),
                    _ => self.delete_tags(input, now),
                }
            }
            _ => return Outcome::Forward,
        };
        Outcome::Done(r)
    }

    // ----- domains -----

    fn create_domain(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let name = input.req_name("DomainName")?.to_owned();
        let auth = input
            .opt_enum("AuthMode", &["SSO", "IAM"])?
            .ok_or_else(|| AwsError::missing("AuthMode"))?
            .to_owned();
        let dus = input
            .opt_object("DefaultUserSettings")?
            .ok_or_else(|| AwsError::missing("DefaultUserSettings"))?
            .clone();
        let tags = parse_tags(input.opt_list("Tags")?)?;
        let mut extra = Map::new();
        for m in [
            "DomainSettings",
            "SubnetIds",
            "VpcId",
            "AppNetworkAccessType",
            "HomeEfsFileSystemKmsKeyId",
            "KmsKeyId",
            "AppSecurityGroupManagement",
            "TagPropagation",
            "DefaultSpaceSettings",
        ] {
            if let Some(v) = input.value(m) {
                extra.insert(m.to_owned(), v.clone());
            }
        }
        let id = self.new_domain_id();
        let arn = self.domain_arn(&id);
        let d = Domain {
            id: id.clone(),
            name,
            arn: arn.clone(),
            created: now,
            modified: now,
            auth_mode: auth,
            default_user_settings: Value::Object(dus),
            extra,
            next_uid: 200_000,
            tags,
        };
        let url = self.domain_url(&id);
        self.domains.insert(id.clone(), d);
        Ok(json!({ "DomainArn": arn, "DomainId": id, "Url": url }))
    }

    fn domain_url(&self, id: &str) -> String {
        format!("https://{id}.studio.{}.sagemaker.aws", self.region)
    }

    fn describe_domain(&self, input: &Input) -> Result<Value, AwsError> {
        let id = input.req_domain_id("DomainId")?;
        let d = self.domain(id)?;
        let mut out = Map::new();
        for (k, v) in &d.extra {
            out.insert(k.clone(), v.clone());
        }
        let base = json!({
            "DomainArn": d.arn,
            "DomainId": d.id,
            "DomainName": d.name,
            "HomeEfsFileSystemId": format!("fs-{}", d.id.trim_start_matches("d-").chars().take(8).collect::<String>()),
            "Status": "InService",
            "CreationTime": epoch(d.created),
            "LastModifiedTime": epoch(d.modified),
            "AuthMode": d.auth_mode,
            "DefaultUserSettings": d.default_user_settings,
            "Url": self.domain_url(&d.id),
        });
        if let Value::Object(m) = base {
            out.extend(m);
        }
        Ok(Value::Object(out))
    }

    fn list_domains(&self, input: &Input) -> Result<Value, AwsError> {
        let max = input.max_results(1, 100, 10)?;
        let token = input.opt_str("NextToken")?;
        let items: Vec<(SortKey, Value)> = self
            .domains
            .values()
            .map(|d| {
                (
                    key(d.created, &d.arn),
                    json!({
                        "DomainArn": d.arn,
                        "DomainId": d.id,
                        "DomainName": d.name,
                        "Status": "InService",
                        "CreationTime": epoch(d.created),
                        "LastModifiedTime": epoch(d.modified),
                        "Url": self.domain_url(&d.id),
                    }),
                )
            })
            .collect();
        let (page, next) = paginate("ListDomains", items, false, token, max)?;
        Ok(with_token(json!({ "Domains": page }), next))
    }

    // ----- user profiles -----

    fn create_user_profile(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let domain = input.req_domain_id("DomainId")?.to_owned();
        let name = input.req_name("UserProfileName")?.to_owned();
        let sso_id = input.opt_str("SingleSignOnUserIdentifier")?;
        if let Some(v) = sso_id
            && v != "UserName"
        {
            return Err(AwsError::pattern(
                "SingleSignOnUserIdentifier",
                v,
                "UserName",
            ));
        }
        let sso_value = input.opt_str("SingleSignOnUserValue")?.map(str::to_owned);
        if sso_id.is_some() != sso_value.is_some() {
            return Err(AwsError::validation(
                "SingleSignOnUserIdentifier and SingleSignOnUserValue must be specified together",
            ));
        }
        let tags = parse_tags(input.opt_list("Tags")?)?;
        let settings = input
            .opt_object("UserSettings")?
            .cloned()
            .map(Value::Object);
        self.domain(&domain)?;
        let arn = self.profile_arn(&domain, &name);
        if self.profiles.contains_key(&arn) {
            return Err(AwsError::in_use(format!(
                "User profile '{name}' already exists in domain '{domain}'."
            )));
        }
        let uid = self.next_uid(&domain);
        self.profiles.insert(
            arn.clone(),
            UserProfile {
                domain_id: domain,
                name,
                arn: arn.clone(),
                created: now,
                modified: now,
                status: "InService".to_owned(),
                gone_at: None,
                sso_value,
                user_settings: settings,
                efs_uid: uid,
                tags,
            },
        );
        Ok(json!({ "UserProfileArn": arn }))
    }

    fn profile_for(&self, input: &Input) -> Result<&UserProfile, AwsError> {
        let domain = input.req_domain_id("DomainId")?;
        let name = input.req_name("UserProfileName")?;
        self.profiles
            .get(&self.profile_arn(domain, name))
            .ok_or_else(|| {
                AwsError::not_found(format!(
                    "User profile '{name}' does not exist in domain '{domain}'."
                ))
            })
    }

    fn describe_user_profile(&self, input: &Input) -> Result<Value, AwsError> {
        let p = self.profile_for(input)?;
        let mut out = json!({
            "DomainId": p.domain_id,
            "UserProfileArn": p.arn,
            "UserProfileName": p.name,
            "HomeEfsFileSystemUid": p.efs_uid,
            "Status": p.status,
            "LastModifiedTime": epoch(p.modified),
            "CreationTime": epoch(p.created),
        });
        if let Some(m) = out.as_object_mut() {
            if let Some(v) = &p.sso_value {
                m.insert("SingleSignOnUserIdentifier".into(), json!("UserName"));
                m.insert("SingleSignOnUserValue".into(), json!(v));
            }
            if let Some(s) = &p.user_settings {
                m.insert("UserSettings".into(), s.clone());
            }
        }
        Ok(out)
    }

    fn list_user_profiles(&self, input: &Input) -> Result<Value, AwsError> {
        let max = input.max_results(1, 100, 10)?;
        let token = input.opt_str("NextToken")?;
        let desc = input.opt_enum("SortOrder", SORT_ORDERS)? == Some("Descending");
        let by_modified = input.opt_enum("SortBy", &["CreationTime", "LastModifiedTime"])?
            == Some("LastModifiedTime");
        let domain = input.opt_domain_id("DomainIdEquals")?;
        let contains = input
            .opt_name("UserProfileNameContains")?
            .map(str::to_lowercase);
        let items: Vec<(SortKey, Value)> = self
            .profiles
            .values()
            .filter(|p| domain.is_none_or(|d| p.domain_id == d))
            .filter(|p| {
                contains
                    .as_deref()
                    .is_none_or(|c| p.name.to_lowercase().contains(c))
            })
            .map(|p| {
                let t = if by_modified { p.modified } else { p.created };
                (
                    key(t, &p.arn),
                    json!({
                        "DomainId": p.domain_id,
                        "UserProfileName": p.name,
                        "Status": p.status,
                        "CreationTime": epoch(p.created),
                        "LastModifiedTime": epoch(p.modified),
                    }),
                )
            })
            .collect();
        let (page, next) = paginate("ListUserProfiles", items, desc, token, max)?;
        Ok(with_token(json!({ "UserProfiles": page }), next))
    }

    fn update_user_profile(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let arn = self.profile_for(input)?.arn.clone();
        let patch = input.opt_object("UserSettings")?.cloned();
        let p = self
            .profiles
            .get_mut(&arn)
            .ok_or_else(|| AwsError::not_found("User profile does not exist."))?;
        if p.status == "Deleting" {
            return Err(AwsError::in_use(format!(
                "User profile '{}' is being deleted.",
                p.name
            )));
        }
        if let Some(patch) = patch {
            shallow_merge(&mut p.user_settings, &patch);
        }
        p.modified = now;
        Ok(json!({ "UserProfileArn": arn }))
    }

    fn delete_user_profile(
        &mut self,
        input: &Input,
        knobs: &Knobs,
        now: Timestamp,
    ) -> Result<Value, AwsError> {
        let p = self.profile_for(input)?;
        let (arn, domain, lname) = (p.arn.clone(), p.domain_id.clone(), p.name.to_lowercase());
        if p.status == "Deleting" {
            return Err(AwsError::in_use(format!(
                "User profile '{}' is already being deleted.",
                p.name
            )));
        }
        let live_apps = self
            .apps
            .values()
            .filter(|a| {
                a.domain_id == domain && lower_owner(&a.owner) == Owner::User(lname.clone())
            })
            .filter(|a| a.status != "Deleted")
            .count();
        if live_apps > 0 {
            return Err(AwsError::in_use(format!(
                "User profile '{}' has {live_apps} app(s) that are not deleted; delete them first.",
                p.name
            )));
        }
        let owned_spaces = self
            .spaces
            .values()
            .filter(|s| {
                s.domain_id == domain
                    && s.owner.as_deref().map(str::to_lowercase).as_deref() == Some(lname.as_str())
            })
            .count();
        if owned_spaces > 0 {
            return Err(AwsError::in_use(format!(
                "User profile '{}' owns {owned_spaces} space(s); delete them first.",
                p.name
            )));
        }
        if let Some(p) = self.profiles.get_mut(&arn) {
            p.status = "Deleting".to_owned();
            p.modified = now;
            p.gone_at = Some(after(now, knobs.user_profile_deleting_ms));
        }
        self.settle(now);
        Ok(json!({}))
    }

    // ----- spaces -----

    fn create_space(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let domain = input.req_domain_id("DomainId")?.to_owned();
        let name = input.req_name("SpaceName")?.to_owned();
        let tags = parse_tags(input.opt_list("Tags")?)?;
        let settings = input.opt_object("SpaceSettings")?.cloned();
        if let Some(t) = settings
            .as_ref()
            .and_then(|s| s.get("AppType"))
            .and_then(Value::as_str)
            && !APP_TYPES.contains(&t)
        {
            return Err(AwsError::not_in_enum("SpaceSettings.AppType", t, APP_TYPES));
        }
        let owner = match input.opt_object("OwnershipSettings")? {
            Some(o) => Some(
                o.get("OwnerUserProfileName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AwsError::missing("OwnershipSettings.OwnerUserProfileName"))?
                    .to_owned(),
            ),
            None => None,
        };
        let sharing = match input.opt_object("SpaceSharingSettings")? {
            Some(o) => {
                let t = o
                    .get("SharingType")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AwsError::missing("SpaceSharingSettings.SharingType"))?;
                if !["Private", "Shared"].contains(&t) {
                    return Err(AwsError::not_in_enum(
                        "SpaceSharingSettings.SharingType",
                        t,
                        &["Private", "Shared"],
                    ));
                }
                Some(t.to_owned())
            }
            None => None,
        };
        let display = input.opt_str("SpaceDisplayName")?.map(str::to_owned);
        self.domain(&domain)?;
        if let Some(o) = &owner
            && !self.profile_exists(&domain, o)
        {
            return Err(AwsError::not_found(format!(
                "User profile '{o}' does not exist in domain '{domain}'."
            )));
        }
        let arn = self.space_arn(&domain, &name);
        if self.spaces.contains_key(&arn) {
            return Err(AwsError::in_use(format!(
                "Space '{name}' already exists in domain '{domain}'."
            )));
        }
        let uid = self.next_uid(&domain);
        self.spaces.insert(
            arn.clone(),
            Space {
                domain_id: domain,
                name,
                arn: arn.clone(),
                created: now,
                modified: now,
                status: "InService".to_owned(),
                gone_at: None,
                settings: settings.map(Value::Object),
                owner,
                sharing,
                display_name: display,
                efs_uid: uid,
                tags,
            },
        );
        Ok(json!({ "SpaceArn": arn }))
    }

    fn space_for(&self, input: &Input) -> Result<&Space, AwsError> {
        let domain = input.req_domain_id("DomainId")?;
        let name = input.req_name("SpaceName")?;
        self.spaces
            .get(&self.space_arn(domain, name))
            .ok_or_else(|| {
                AwsError::not_found(format!(
                    "Space '{name}' does not exist in domain '{domain}'."
                ))
            })
    }

    fn describe_space(&self, input: &Input) -> Result<Value, AwsError> {
        let s = self.space_for(input)?;
        let mut out = json!({
            "DomainId": s.domain_id,
            "SpaceArn": s.arn,
            "SpaceName": s.name,
            "HomeEfsFileSystemUid": s.efs_uid,
            "Status": s.status,
            "LastModifiedTime": epoch(s.modified),
            "CreationTime": epoch(s.created),
            "Url": format!("{}/jupyterlab/default", self.domain_url(&s.domain_id)),
        });
        if let Some(m) = out.as_object_mut() {
            if let Some(v) = &s.settings {
                m.insert("SpaceSettings".into(), v.clone());
            }
            if let Some(o) = &s.owner {
                m.insert(
                    "OwnershipSettings".into(),
                    json!({ "OwnerUserProfileName": o }),
                );
            }
            if let Some(t) = &s.sharing {
                m.insert("SpaceSharingSettings".into(), json!({ "SharingType": t }));
            }
            if let Some(d) = &s.display_name {
                m.insert("SpaceDisplayName".into(), json!(d));
            }
        }
        Ok(out)
    }

    fn list_spaces(&self, input: &Input) -> Result<Value, AwsError> {
        let max = input.max_results(1, 100, 10)?;
        let token = input.opt_str("NextToken")?;
        let desc = input.opt_enum("SortOrder", SORT_ORDERS)? == Some("Descending");
        let by_modified = input.opt_enum("SortBy", &["CreationTime", "LastModifiedTime"])?
            == Some("LastModifiedTime");
        let domain = input.opt_domain_id("DomainIdEquals")?;
        let contains = input.opt_name("SpaceNameContains")?.map(str::to_lowercase);
        let items: Vec<(SortKey, Value)> = self
            .spaces
            .values()
            .filter(|s| domain.is_none_or(|d| s.domain_id == d))
            .filter(|s| {
                contains
                    .as_deref()
                    .is_none_or(|c| s.name.to_lowercase().contains(c))
            })
            .map(|s| {
                let t = if by_modified { s.modified } else { s.created };
                let mut item = json!({
                    "DomainId": s.domain_id,
                    "SpaceName": s.name,
                    "Status": s.status,
                    "CreationTime": epoch(s.created),
                    "LastModifiedTime": epoch(s.modified),
                });
                if let Some(m) = item.as_object_mut() {
                    let mut summary = Map::new();
                    if let Some(settings) = s.settings.as_ref().and_then(Value::as_object) {
                        for k in ["AppType", "SpaceStorageSettings", "RemoteAccess"] {
                            if let Some(v) = settings.get(k) {
                                summary.insert(k.to_owned(), v.clone());
                            }
                        }
                    }
                    if !summary.is_empty() {
                        m.insert("SpaceSettingsSummary".into(), Value::Object(summary));
                    }
                    if let Some(t) = &s.sharing {
                        m.insert(
                            "SpaceSharingSettingsSummary".into(),
                            json!({ "SharingType": t }),
                        );
                    }
                    if let Some(o) = &s.owner {
                        m.insert(
                            "OwnershipSettingsSummary".into(),
                            json!({ "OwnerUserProfileName": o }),
                        );
                    }
                    if let Some(d) = &s.display_name {
                        m.insert("SpaceDisplayName".into(), json!(d));
                    }
                }
                (key(t, &s.arn), item)
            })
            .collect();
        let (page, next) = paginate("ListSpaces", items, desc, token, max)?;
        Ok(with_token(json!({ "Spaces": page }), next))
    }

    fn update_space(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let arn = self.space_for(input)?.arn.clone();
        let patch = input.opt_object("SpaceSettings")?.cloned();
        let display = input.opt_str("SpaceDisplayName")?.map(str::to_owned);
        let s = self
            .spaces
            .get_mut(&arn)
            .ok_or_else(|| AwsError::not_found("Space does not exist."))?;
        if s.status == "Deleting" {
            return Err(AwsError::in_use(format!(
                "Space '{}' is being deleted.",
                s.name
            )));
        }
        if let Some(patch) = patch {
            if let (Some(new), Some(old)) = (
                patch.get("AppType").and_then(Value::as_str),
                s.settings
                    .as_ref()
                    .and_then(|v| v.get("AppType"))
                    .and_then(Value::as_str),
            ) && new != old
            {
                return Err(AwsError::validation(
                    "The app type of a space cannot be changed.",
                ));
            }
            shallow_merge(&mut s.settings, &patch);
        }
        if display.is_some() {
            s.display_name = display;
        }
        s.modified = now;
        Ok(json!({ "SpaceArn": arn }))
    }

    fn delete_space(
        &mut self,
        input: &Input,
        knobs: &Knobs,
        now: Timestamp,
    ) -> Result<Value, AwsError> {
        let s = self.space_for(input)?;
        let (arn, domain, lname) = (s.arn.clone(), s.domain_id.clone(), s.name.to_lowercase());
        if s.status == "Deleting" {
            return Err(AwsError::in_use(format!(
                "Space '{}' is already being deleted.",
                s.name
            )));
        }
        let live = self
            .apps
            .values()
            .filter(|a| {
                a.domain_id == domain
                    && lower_owner(&a.owner) == Owner::Space(lname.clone())
                    && a.status != "Deleted"
            })
            .count();
        if live > 0 {
            return Err(AwsError::in_use(format!(
                "Space '{}' has {live} app(s) that are not deleted; delete them first.",
                s.name
            )));
        }
        if let Some(s) = self.spaces.get_mut(&arn) {
            s.status = "Deleting".to_owned();
            s.modified = now;
            s.gone_at = Some(after(now, knobs.space_deleting_ms));
        }
        self.settle(now);
        Ok(json!({}))
    }

    // ----- apps -----

    fn app_owner(&self, input: &Input) -> Result<Owner, AwsError> {
        let user = input.opt_name("UserProfileName")?;
        let space = input.opt_name("SpaceName")?;
        match (user, space) {
            (Some(u), None) => Ok(Owner::User(u.to_owned())),
            (None, Some(s)) => Ok(Owner::Space(s.to_owned())),
            _ => Err(AwsError::validation(
                "Exactly one of UserProfileName and SpaceName must be specified.",
            )),
        }
    }

    fn app_type(input: &Input) -> Result<&str, AwsError> {
        input
            .opt_enum("AppType", APP_TYPES)?
            .ok_or_else(|| AwsError::missing("AppType"))
    }

    fn create_app(
        &mut self,
        input: &Input,
        knobs: &Knobs,
        now: Timestamp,
    ) -> Result<Value, AwsError> {
        let domain = input.req_domain_id("DomainId")?.to_owned();
        let owner = self.app_owner(input)?;
        let app_type = Self::app_type(input)?.to_owned();
        let name = input.req_name("AppName")?.to_owned();
        let tags = parse_tags(input.opt_list("Tags")?)?;
        let spec = match input.opt_object("ResourceSpec")? {
            Some(s) => {
                if let Some(t) = s.get("InstanceType")
                    && !t.is_string()
                {
                    return Err(AwsError::validation(
                        "ResourceSpec.InstanceType must be a string",
                    ));
                }
                Value::Object(s.clone())
            }
            None => default_resource_spec(&app_type),
        };
        self.domain(&domain)?;
        match &owner {
            Owner::User(u) => {
                let p = self
                    .profiles
                    .get(&self.profile_arn(&domain, u))
                    .ok_or_else(|| {
                        AwsError::not_found(format!(
                            "User profile '{u}' does not exist in domain '{domain}'."
                        ))
                    })?;
                if p.status == "Deleting" {
                    return Err(AwsError::in_use(format!(
                        "User profile '{u}' is being deleted."
                    )));
                }
            }
            Owner::Space(s) => {
                let sp = self
                    .spaces
                    .get(&self.space_arn(&domain, s))
                    .ok_or_else(|| {
                        AwsError::not_found(format!(
                            "Space '{s}' does not exist in domain '{domain}'."
                        ))
                    })?;
                if sp.status == "Deleting" {
                    return Err(AwsError::in_use(format!("Space '{s}' is being deleted.")));
                }
            }
        }
        let arn = self.app_arn(&domain, &owner, &app_type, &name);
        if let Some(existing) = self.apps.get(&arn)
            && !matches!(existing.status.as_str(), "Deleted" | "Failed")
        {
            return Err(AwsError::in_use(format!(
                "App '{name}' of type {app_type} already exists with status {}.",
                existing.status
            )));
        }
        let (status, transition_at) = if knobs.app_pending_ms == 0 {
            ("InService", None)
        } else {
            ("Pending", Some(after(now, knobs.app_pending_ms)))
        };
        self.apps.insert(
            arn.clone(),
            App {
                domain_id: domain,
                owner,
                app_type,
                name,
                arn: arn.clone(),
                created: now,
                status: status.to_owned(),
                transition_at,
                in_service_since: now,
                last_health_check: now,
                last_user_activity: now,
                resource_spec: spec,
                failure_reason: None,
                tags,
            },
        );
        Ok(json!({ "AppArn": arn }))
    }

    fn app_for(&self, input: &Input) -> Result<&App, AwsError> {
        let domain = input.req_domain_id("DomainId")?;
        let owner = self.app_owner(input)?;
        let app_type = Self::app_type(input)?;
        let name = input.req_name("AppName")?;
        self.apps
            .get(&self.app_arn(domain, &owner, app_type, name))
            .filter(|a| lower_owner(&a.owner) == lower_owner(&owner))
            .ok_or_else(|| {
                AwsError::not_found(format!(
                    "App '{name}' of type {app_type} does not exist in domain '{domain}'."
                ))
            })
    }

    /// The health-check and activity timestamps as they are now, including automatic health
    /// checks that the knobs schedule.
    fn effective_times(app: &App, knobs: &Knobs, now: Timestamp) -> (Timestamp, Timestamp) {
        let (mut hc, mut ua) = (app.last_health_check, app.last_user_activity);
        if knobs.health_check_interval_ms > 0 && app.status == "InService" {
            let since = app.in_service_since.as_millisecond();
            let elapsed = now.as_millisecond().saturating_sub(since);
            let interval = i64::try_from(knobs.health_check_interval_ms).unwrap_or(i64::MAX);
            let n = elapsed / interval;
            if n >= 1
                && let Ok(auto) =
                    Timestamp::from_millisecond(since.saturating_add(n.saturating_mul(interval)))
                && auto > hc
            {
                hc = auto;
                if knobs.health_check_sets_activity && auto > ua {
                    ua = auto;
                }
            }
        }
        (hc, ua)
    }

    fn describe_app(
        &self,
        input: &Input,
        knobs: &Knobs,
        now: Timestamp,
    ) -> Result<Value, AwsError> {
        let a = self.app_for(input)?;
        let (hc, ua) = Self::effective_times(a, knobs, now);
        let mut out = json!({
            "AppArn": a.arn,
            "AppType": a.app_type,
            "AppName": a.name,
            "DomainId": a.domain_id,
            "Status": a.status,
            "LastHealthCheckTimestamp": epoch(hc),
            "LastUserActivityTimestamp": epoch(ua),
            "CreationTime": epoch(a.created),
            "ResourceSpec": a.resource_spec,
        });
        if let Some(m) = out.as_object_mut() {
            match &a.owner {
                Owner::User(u) => m.insert("UserProfileName".into(), json!(u)),
                Owner::Space(s) => m.insert("SpaceName".into(), json!(s)),
            };
            if let Some(f) = &a.failure_reason {
                m.insert("FailureReason".into(), json!(f));
            }
        }
        Ok(out)
    }

    fn list_apps(&self, input: &Input) -> Result<Value, AwsError> {
        let max = input.max_results(1, 100, 10)?;
        let token = input.opt_str("NextToken")?;
        let desc = input.opt_enum("SortOrder", SORT_ORDERS)? == Some("Descending");
        input.opt_enum("SortBy", &["CreationTime"])?;
        let domain = input.opt_domain_id("DomainIdEquals")?;
        let user = input
            .opt_name("UserProfileNameEquals")?
            .map(str::to_lowercase);
        let space = input.opt_name("SpaceNameEquals")?.map(str::to_lowercase);
        let items: Vec<(SortKey, Value)> = self
            .apps
            .values()
            .filter(|a| domain.is_none_or(|d| a.domain_id == d))
            .filter(|a| match (&user, &lower_owner(&a.owner)) {
                (None, _) => true,
                (Some(u), Owner::User(o)) => u == o,
                (Some(_), Owner::Space(_)) => false,
            })
            .filter(|a| match (&space, &lower_owner(&a.owner)) {
                (None, _) => true,
                (Some(s), Owner::Space(o)) => s == o,
                (Some(_), Owner::User(_)) => false,
            })
            .map(|a| {
                let mut item = json!({
                    "DomainId": a.domain_id,
                    "AppType": a.app_type,
                    "AppName": a.name,
                    "Status": a.status,
                    "CreationTime": epoch(a.created),
                    "ResourceSpec": a.resource_spec,
                });
                if let Some(m) = item.as_object_mut() {
                    match &a.owner {
                        Owner::User(u) => m.insert("UserProfileName".into(), json!(u)),
                        Owner::Space(s) => m.insert("SpaceName".into(), json!(s)),
                    };
                }
                (key(a.created, &a.arn), item)
            })
            .collect();
        let (page, next) = paginate("ListApps", items, desc, token, max)?;
        Ok(with_token(json!({ "Apps": page }), next))
    }

    fn delete_app(
        &mut self,
        input: &Input,
        knobs: &Knobs,
        now: Timestamp,
    ) -> Result<Value, AwsError> {
        let a = self.app_for(input)?;
        let arn = a.arn.clone();
        match a.status.as_str() {
            "InService" | "Failed" => {}
            "Deleted" => {
                return Err(AwsError::not_found(format!(
                    "App '{}' has already been deleted.",
                    a.name
                )));
            }
            s => {
                return Err(AwsError::in_use(format!(
                    "App '{}' is in status {s} and cannot be deleted now.",
                    a.name
                )));
            }
        }
        let (hc, ua) = Self::effective_times(a, knobs, now);
        if let Some(a) = self.apps.get_mut(&arn) {
            a.last_health_check = hc;
            a.last_user_activity = ua;
            if knobs.app_deleting_ms == 0 {
                a.status = "Deleted".to_owned();
                a.transition_at = None;
            } else {
                a.status = "Deleting".to_owned();
                a.transition_at = Some(after(now, knobs.app_deleting_ms));
            }
        }
        Ok(json!({}))
    }

    // ----- tags -----

    fn is_local_arn(&self, arn: &str) -> bool {
        let prefix = self.prefix();
        let lower = arn.to_lowercase();
        let Some(rest) = lower.strip_prefix(&prefix) else {
            return false;
        };
        ["domain/", "user-profile/", "space/", "app/"]
            .iter()
            .any(|k| rest.starts_with(k))
    }

    fn tags_of_mut(&mut self, arn: &str) -> Option<&mut Tags> {
        let arn = arn.to_lowercase();
        if let Some(a) = self.apps.get_mut(&arn) {
            return Some(&mut a.tags);
        }
        if let Some(p) = self.profiles.get_mut(&arn) {
            return Some(&mut p.tags);
        }
        if let Some(s) = self.spaces.get_mut(&arn) {
            return Some(&mut s.tags);
        }
        self.domains
            .values_mut()
            .find(|d| d.arn == arn)
            .map(|d| &mut d.tags)
    }

    fn add_tags(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let arn = input.req_str("ResourceArn")?.to_owned();
        let new = parse_tags(Some(
            input
                .opt_list("Tags")?
                .ok_or_else(|| AwsError::missing("Tags"))?,
        ))?;
        let _ = now;
        let tags = self
            .tags_of_mut(&arn)
            .ok_or_else(|| AwsError::not_found(format!("Resource '{arn}' does not exist.")))?;
        let mut merged = tags.clone();
        for (k, v) in &new {
            merge_tag(&mut merged, k, v);
        }
        if merged.len() > MAX_TAGS {
            return Err(AwsError::validation(format!(
                "Too many tags: a resource can have at most {MAX_TAGS} tags"
            )));
        }
        *tags = merged;
        Ok(json!({ "Tags": tags_json(&new) }))
    }

    fn list_tags(&mut self, input: &Input) -> Result<Value, AwsError> {
        let arn = input.req_str("ResourceArn")?.to_owned();
        let max = input.max_results(50, i64::from(i32::MAX), 50)?;
        let token = input.opt_str("NextToken")?.map(str::to_owned);
        let tags = self
            .tags_of_mut(&arn)
            .ok_or_else(|| AwsError::not_found(format!("Resource '{arn}' does not exist.")))?
            .clone();
        let (page, next) =
            paginate_offset("ListTags", &tags, token.as_deref(), max, invalid_token)?;
        Ok(with_token(json!({ "Tags": tags_json(&page) }), next))
    }

    fn delete_tags(&mut self, input: &Input, now: Timestamp) -> Result<Value, AwsError> {
        let arn = input.req_str("ResourceArn")?.to_owned();
        let keys: Vec<String> = input
            .opt_list("TagKeys")?
            .ok_or_else(|| AwsError::missing("TagKeys"))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let _ = now;
        let tags = self
            .tags_of_mut(&arn)
            .ok_or_else(|| AwsError::not_found(format!("Resource '{arn}' does not exist.")))?;
        tags.retain(|(k, _)| !keys.contains(k));
        Ok(json!({}))
    }

    // ----- admin -----

    /// Bulk creation for `POST /_sim/seed`. Validates everything it creates; on error, items
    /// created before the failing one stay.
    pub fn seed(&mut self, req: SeedRequest, now: Timestamp) -> Result<SeedResponse, String> {
        let mut resp = SeedResponse::default();
        for d in req.domains {
            if !is_sagemaker_name(&d.domain_name) {
                return Err(format!("bad domain_name '{}'", d.domain_name));
            }
            let id = match d.domain_id {
                Some(id) if is_domain_id(&id) => id,
                Some(id) => return Err(format!("bad domain_id '{id}'")),
                None => self.new_domain_id(),
            };
            if self.domains.contains_key(&id) {
                return Err(format!("domain {id} already exists"));
            }
            let created = d.creation_time.unwrap_or(now);
            let arn = self.domain_arn(&id);
            self.domains.insert(
                id.clone(),
                Domain {
                    id: id.clone(),
                    name: d.domain_name,
                    arn,
                    created,
                    modified: created,
                    auth_mode: d.auth_mode.unwrap_or_else(|| "IAM".to_owned()),
                    default_user_settings: d.default_user_settings.unwrap_or_else(|| {
                        json!({ "ExecutionRole": format!("arn:aws:iam::{}:role/studio-exec", self.account) })
                    }),
                    extra: Map::new(),
                    next_uid: 200_000,
                    tags: map_tags(&d.tags),
                },
            );
            resp.domain_ids.push(id);
        }
        for p in req.user_profiles {
            if !self.domains.contains_key(&p.domain_id) {
                return Err(format!("domain {} does not exist", p.domain_id));
            }
            if !is_sagemaker_name(&p.user_profile_name) {
                return Err(format!(
                    "bad user_profile_name '{}' (must match {NAME_PATTERN})",
                    p.user_profile_name
                ));
            }
            let arn = self.profile_arn(&p.domain_id, &p.user_profile_name);
            if self.profiles.contains_key(&arn) {
                return Err(format!(
                    "user profile {} already exists",
                    p.user_profile_name
                ));
            }
            let created = p.creation_time.unwrap_or(now);
            let uid = self.next_uid(&p.domain_id);
            self.profiles.insert(
                arn.clone(),
                UserProfile {
                    domain_id: p.domain_id,
                    name: p.user_profile_name,
                    arn,
                    created,
                    modified: p.last_modified_time.unwrap_or(created),
                    status: p.status.unwrap_or_else(|| "InService".to_owned()),
                    gone_at: None,
                    sso_value: p.sso_user_value,
                    user_settings: p.user_settings,
                    efs_uid: uid,
                    tags: map_tags(&p.tags),
                },
            );
            resp.user_profiles += 1;
        }
        for s in req.spaces {
            if !self.domains.contains_key(&s.domain_id) {
                return Err(format!("domain {} does not exist", s.domain_id));
            }
            if !is_sagemaker_name(&s.space_name) {
                return Err(format!("bad space_name '{}'", s.space_name));
            }
            if let Some(o) = &s.owner_user_profile_name
                && !self.profile_exists(&s.domain_id, o)
            {
                return Err(format!("owner user profile {o} does not exist"));
            }
            let arn = self.space_arn(&s.domain_id, &s.space_name);
            if self.spaces.contains_key(&arn) {
                return Err(format!("space {} already exists", s.space_name));
            }
            let mut settings = s.space_settings;
            if let Some(t) = s.app_type {
                if !APP_TYPES.contains(&t.as_str()) {
                    return Err(format!("bad app_type {t}"));
                }
                let mut m = match settings.take() {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                m.entry("AppType").or_insert(json!(t));
                settings = Some(Value::Object(m));
            }
            let created = s.creation_time.unwrap_or(now);
            let uid = self.next_uid(&s.domain_id);
            self.spaces.insert(
                arn.clone(),
                Space {
                    domain_id: s.domain_id,
                    name: s.space_name,
                    arn,
                    created,
                    modified: s.last_modified_time.unwrap_or(created),
                    status: s.status.unwrap_or_else(|| "InService".to_owned()),
                    gone_at: None,
                    settings,
                    owner: s.owner_user_profile_name,
                    sharing: s.sharing_type,
                    display_name: s.display_name,
                    efs_uid: uid,
                    tags: map_tags(&s.tags),
                },
            );
            resp.spaces += 1;
        }
        for a in req.apps {
            if !self.domains.contains_key(&a.domain_id) {
                return Err(format!("domain {} does not exist", a.domain_id));
            }
            let owner = match (a.user_profile_name, a.space_name) {
                (Some(u), None) => {
                    if !self.profile_exists(&a.domain_id, &u) {
                        return Err(format!("user profile {u} does not exist"));
                    }
                    Owner::User(u)
                }
                (None, Some(s)) => {
                    if !self.spaces.contains_key(&self.space_arn(&a.domain_id, &s)) {
                        return Err(format!("space {s} does not exist"));
                    }
                    Owner::Space(s)
                }
                _ => {
                    return Err(
                        "an app needs exactly one of user_profile_name and space_name".into(),
                    );
                }
            };
            if !APP_TYPES.contains(&a.app_type.as_str()) {
                return Err(format!("bad app_type '{}'", a.app_type));
            }
            let name = a.app_name.unwrap_or_else(|| "default".to_owned());
            if !is_sagemaker_name(&name) {
                return Err(format!("bad app_name '{name}'"));
            }
            let status = a.status.unwrap_or_else(|| "InService".to_owned());
            if !["Pending", "InService", "Deleting", "Deleted", "Failed"].contains(&status.as_str())
            {
                return Err(format!("bad app status '{status}'"));
            }
            let created = a.creation_time.unwrap_or(now);
            let spec = match (a.resource_spec, a.instance_type) {
                (Some(Value::Object(mut m)), it) => {
                    if let Some(it) = it {
                        m.insert("InstanceType".into(), json!(it));
                    }
                    Value::Object(m)
                }
                (_, Some(it)) => json!({ "InstanceType": it }),
                (_, None) => default_resource_spec(&a.app_type),
            };
            let arn = self.app_arn(&a.domain_id, &owner, &a.app_type, &name);
            self.apps.insert(
                arn.clone(),
                App {
                    domain_id: a.domain_id,
                    owner,
                    app_type: a.app_type,
                    name,
                    arn,
                    created,
                    transition_at: a.transition_after_ms.map(|ms| after(now, ms)),
                    status,
                    in_service_since: created,
                    last_health_check: a.last_health_check.unwrap_or(created),
                    last_user_activity: a.last_user_activity.unwrap_or(created),
                    resource_spec: spec,
                    failure_reason: a.failure_reason,
                    tags: map_tags(&a.tags),
                },
            );
            resp.apps += 1;
        }
        Ok(resp)
    }

    /// `POST /_sim/activity`.
    pub fn activity(
        &mut self,
        req: &ActivityRequest,
        knobs: &Knobs,
        now: Timestamp,
    ) -> Result<AppState, String> {
        self.settle(now);
        let owner = match (&req.user_profile_name, &req.space_name) {
            (Some(u), None) => Owner::User(u.clone()),
            (None, Some(s)) => Owner::Space(s.clone()),
            _ => return Err("exactly one of user_profile_name and space_name".into()),
        };
        let name = req.app_name.clone().unwrap_or_else(|| "default".to_owned());
        let arn = self.app_arn(&req.domain_id, &owner, &req.app_type, &name);
        let at = req.at.unwrap_or(now);
        let app = self
            .apps
            .get_mut(&arn)
            .ok_or_else(|| format!("app {arn} does not exist"))?;
        let (hc, ua) = Self::effective_times(app, knobs, now);
        app.last_health_check = hc;
        app.last_user_activity = ua;
        match req.kind {
            ActivityKind::UserActivity => app.last_user_activity = at,
            ActivityKind::HealthCheck => {
                app.last_health_check = at;
                if knobs.health_check_sets_activity {
                    app.last_user_activity = at;
                }
            }
        }
        let app = app.clone();
        Ok(self.app_state(&app, knobs, now))
    }

    fn app_state(&self, a: &App, knobs: &Knobs, now: Timestamp) -> AppState {
        let (hc, ua) = Self::effective_times(a, knobs, now);
        let (user, space) = match &a.owner {
            Owner::User(u) => (Some(u.clone()), None),
            Owner::Space(s) => (None, Some(s.clone())),
        };
        AppState {
            domain_id: a.domain_id.clone(),
            user_profile_name: user,
            space_name: space,
            app_type: a.app_type.clone(),
            app_name: a.name.clone(),
            arn: a.arn.clone(),
            status: a.status.clone(),
            creation_time: a.created,
            last_health_check: hc,
            last_user_activity: ua,
            instance_type: a
                .resource_spec
                .get("InstanceType")
                .and_then(Value::as_str)
                .map(str::to_owned),
            tags: tags_map(&a.tags),
        }
    }

    /// `GET /_sim/state`.
    pub fn dump(&mut self, knobs: &Knobs, now: Timestamp) -> StateDump {
        self.settle(now);
        let mut domains: Vec<DomainState> = self
            .domains
            .values()
            .map(|d| DomainState {
                domain_id: d.id.clone(),
                domain_name: d.name.clone(),
                arn: d.arn.clone(),
                status: "InService".to_owned(),
                creation_time: d.created,
                tags: tags_map(&d.tags),
            })
            .collect();
        domains.sort_by(|a, b| (a.creation_time, &a.arn).cmp(&(b.creation_time, &b.arn)));
        let mut user_profiles: Vec<UserProfileState> = self
            .profiles
            .values()
            .map(|p| UserProfileState {
                domain_id: p.domain_id.clone(),
                user_profile_name: p.name.clone(),
                arn: p.arn.clone(),
                status: p.status.clone(),
                creation_time: p.created,
                last_modified_time: p.modified,
                sso_user_value: p.sso_value.clone(),
                tags: tags_map(&p.tags),
            })
            .collect();
        user_profiles.sort_by(|a, b| (a.creation_time, &a.arn).cmp(&(b.creation_time, &b.arn)));
        let mut spaces: Vec<SpaceState> = self
            .spaces
            .values()
            .map(|s| SpaceState {
                domain_id: s.domain_id.clone(),
                space_name: s.name.clone(),
                arn: s.arn.clone(),
                status: s.status.clone(),
                owner_user_profile_name: s.owner.clone(),
                sharing_type: s.sharing.clone(),
                app_type: s
                    .settings
                    .as_ref()
                    .and_then(|v| v.get("AppType"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                creation_time: s.created,
                tags: tags_map(&s.tags),
            })
            .collect();
        spaces.sort_by(|a, b| (a.creation_time, &a.arn).cmp(&(b.creation_time, &b.arn)));
        let mut apps: Vec<AppState> = self
            .apps
            .values()
            .map(|a| self.app_state(a, knobs, now))
            .collect();
        apps.sort_by(|a, b| (a.creation_time, &a.arn).cmp(&(b.creation_time, &b.arn)));
        StateDump {
            domains,
            user_profiles,
            spaces,
            apps,
        }
    }
}

fn lower_owner(o: &Owner) -> Owner {
    match o {
        Owner::User(u) => Owner::User(u.to_lowercase()),
        Owner::Space(s) => Owner::Space(s.to_lowercase()),
    }
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let (Some(t), Some(m)) = (next, v.as_object_mut()) {
        m.insert("NextToken".into(), json!(t));
    }
    v
}
