//! provision-users handler: a membership event, the daily schedule or a manual invoke → (unless the event is
//! about another group) a reconcile of the configured groups → the plan, the brake, the actions, the events.

use jiff::Timestamp;
use lambda_runtime::Context;
use serde_json::{Value, json};
use studio_ops_shared::events::identity::{self, CloudTrailCall, MembershipSignal};
use studio_ops_shared::events::schedule::{self, RunRequest};
use studio_ops_shared::events::suite::{ProvisioningBlocked, ProvisioningFailed, SuiteEvent};
use studio_ops_shared::events::{EventError, detail_type, event_id, parse_envelope};
use studio_ops_shared::idempotency::IdempotencyStore;
use studio_ops_shared::lease::{self, Exclusive};
use studio_ops_shared::metrics::{MetricSet, Unit};
use studio_ops_shared::publisher::PublishEvents;
use studio_ops_shared::{ErrorClass, Failure};

use crate::brake::Verdict;
use crate::config::Config;
use crate::error::HandlerError;
use crate::ports::{IdentityPort, StudioPort};
use crate::reconcile::{Deadline, Reconciler, Report};

/// What invoked the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Membership(MembershipSignal),
    Run(RunRequest),
}

pub fn parse_trigger(event: &Value) -> Result<Trigger, EventError> {
    match detail_type(event) {
        Some(identity::DETAIL_TYPE) => {
            let envelope = parse_envelope::<CloudTrailCall>(identity::DETAIL_TYPE, event)?;
            envelope.detail.membership_signal().map(Trigger::Membership)
        }
        Some(schedule::DETAIL_TYPE) | None => RunRequest::from_invocation(event).map(Trigger::Run),
        Some(other) => Err(EventError::new(
            "provision-users",
            "detail-type",
            format!("unexpected detail-type {other:?}"),
        )),
    }
}

/// What a trigger asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Acknowledge and do nothing (no AWS call): the reason is logged and returned.
    Ignore(String),
    /// Reconcile the configured groups; a targeted run concerns one profile and bypasses the brake.
    Reconcile {
        dry_run: bool,
        only_profile: Option<String>,
    },
}

/// Decides what a trigger asks for. Events never name users reliably (and deletes name only the
/// membership), so any event about a configured group — or about an unknown group — means "reconcile".
pub fn scope(trigger: &Trigger, config: &Config) -> Result<Scope, HandlerError> {
    if config.groups.is_empty() {
        return Err(HandlerError::NotConfigured);
    }
    let reconcile = Scope::Reconcile {
        dry_run: false,
        only_profile: None,
    };
    match trigger {
        Trigger::Membership(MembershipSignal::CallFailed { error_code }) => Ok(Scope::Ignore(
            format!("the identity-store call failed ({error_code}); nothing changed"),
        )),
        Trigger::Membership(signal) => {
            let store = match signal {
                MembershipSignal::Added {
                    identity_store_id, ..
                }
                | MembershipSignal::Removed {
                    identity_store_id, ..
                } => identity_store_id.as_deref(),
                _ => None,
            };
            if let Some(store) = store
                && store != config.identity_store_id
            {
                return Ok(Scope::Ignore(format!(
                    "the event is about identity store {store}, not {}",
                    config.identity_store_id
                )));
            }
            match signal.group_id() {
                Some(group) if !config.groups.contains(group) => Ok(Scope::Ignore(format!(
                    "group {group} is not one of the configured groups"
                ))),
                _ => Ok(reconcile),
            }
        }
        Trigger::Run(run) => {
            if let Some(domain) = &run.domain_id
                && domain != &config.domain_id
            {
                return Err(HandlerError::WrongDomain {
                    requested: domain.clone(),
                    configured: config.domain_id.clone(),
                });
            }
            Ok(Scope::Reconcile {
                dry_run: run.dry_run,
                only_profile: run.user_profile_name.clone(),
            })
        }
    }
}

/// The adapters the handler works through, built once in `main` (or pointed at the local world in tests).
pub struct Ports<I, S, P, L> {
    pub identity: I,
    pub studio: S,
    pub publisher: P,
    /// The one-reconcile-at-a-time lease (the suite's table, item `provision-users#lease`).
    pub lease: L,
}

pub struct Handler<I, S, P, L> {
    config: Config,
    ports: Ports<I, S, P, L>,
}

/// How long a membership event waits at most for a running reconcile to finish before Lambda's retry takes over
/// (capped further by half of the invocation's remaining time, so that the reconcile still fits).
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
const LEASE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

impl<I: IdentityPort, S: StudioPort, P: PublishEvents, L: IdempotencyStore> Handler<I, S, P, L> {
    pub fn new(config: Config, ports: Ports<I, S, P, L>) -> Self {
        Self { config, ports }
    }

    /// The adapters (tests read what a recording publisher holds).
    pub fn ports(&self) -> &Ports<I, S, P, L> {
        &self.ports
    }

    pub async fn handle(&self, event: Value, context: Context) -> Result<Value, HandlerError> {
        let trigger = parse_trigger(&event)?;
        let id = event_id(&event).to_string();
        match scope(&trigger, &self.config)? {
            Scope::Ignore(reason) => {
                tracing::info!(event_id = %id, reason = %reason, "event acknowledged and ignored");
                Ok(json!({"outcome": "ignored", "reason": reason}))
            }
            Scope::Reconcile {
                dry_run,
                only_profile,
            } => {
                tracing::info!(event_id = %id, trigger = ?trigger, dry_run, only_profile = ?only_profile, "reconcile requested");
                let deadline = Deadline::from_context(&context);
                // Boxed: the reconcile's future is deep (streams of retried SDK calls) and this keeps the
                // Lambda runtime's future type within the compiler's limits.
                let run = || Box::pin(self.reconcile(dry_run, only_profile, deadline));
                if dry_run {
                    // A preview changes nothing: it needs no lease.
                    return run().await;
                }
                // One reconcile at a time (two would race on one profile): the lease lapses at this deadline.
                let until = deadline.wall_clock();
                let holder = lease::holder(&context.request_id);
                let ran = match trigger {
                    // A membership change must be applied after a running reconcile, not dropped: wait for it.
                    Trigger::Membership(_) => {
                        let wait = LEASE_WAIT.min(deadline.remaining() / 2);
                        lease::exclusive_after_wait(
                            &self.ports.lease,
                            &holder,
                            until,
                            Timestamp::now() + wait,
                            LEASE_POLL,
                            run,
                        )
                        .await?
                    }
                    Trigger::Run(_) => {
                        lease::exclusive(&self.ports.lease, &holder, until, run).await?
                    }
                };
                match ran {
                    Exclusive::Ran(outcome) => Ok(outcome),
                    Exclusive::AlreadyRunning => match trigger {
                        Trigger::Membership(_) => Err(HandlerError::Busy),
                        Trigger::Run(_) => {
                            tracing::info!(event_id = %id, "another reconcile holds the lease; this run does nothing");
                            Ok(lease::already_running(crate::FUNCTION_NAME))
                        }
                    },
                }
            }
        }
    }

    async fn reconcile(
        &self,
        dry_run: bool,
        only_profile: Option<String>,
        deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        let started = std::time::Instant::now();
        let domain = &self.config.domain_id;
        let reconciler = Reconciler::new(
            &self.ports.identity,
            &self.ports.studio,
            &self.config,
            deadline,
        );
        let observation = match reconciler.observe().await {
            Ok(o) => o,
            Err(e) => {
                // A transient failure is Lambda's to retry; anything else needs a person.
                if e.class() == ErrorClass::NonRetryable && !dry_run {
                    let failed: SuiteEvent = ProvisioningFailed {
                        domain_id: domain.clone(),
                        user_profile_name: None,
                        action: "read groups and profiles".into(),
                        reason: e.to_string(),
                    }
                    .into();
                    if let Err(p) = self.ports.publisher.publish(&[failed]).await {
                        tracing::error!(error = %p, "could not publish Provisioning Failed");
                    }
                }
                return Err(e.into());
            }
        };
        let mut plan = reconciler.plan(&observation, Timestamp::now());
        if let Some(p) = &only_profile {
            plan = plan.restrict_to(p);
        }
        // An admin naming one profile has decided: the brake guards only unattended runs.
        let verdict = if only_profile.is_some() {
            Verdict::Proceed
        } else {
            let count = u32::try_from(plan.deprovision.len()).unwrap_or(u32::MAX);
            self.config.brake.check(count, plan.managed_profiles)
        };
        tracing::info!(
            members = observation.members.len(),
            managed_profiles = plan.managed_profiles,
            create = plan.create.len(),
            update = plan.update.len(),
            create_space = plan.create_space.len(),
            deprovision = plan.deprovision.len(),
            skipped = plan.skipped.len(),
            unchanged = plan.unchanged,
            brake = ?verdict,
            "plan"
        );
        let mut metrics = MetricSet::for_function("provision-users");
        metrics.put("Members", observation.members.len() as f64, Unit::Count);
        metrics.put(
            "ManagedProfiles",
            f64::from(plan.managed_profiles),
            Unit::Count,
        );

        if dry_run {
            let brake = match &verdict {
                Verdict::Proceed => json!({"blocked": false}),
                Verdict::Blocked { reason } => json!({"blocked": true, "reason": reason}),
            };
            return Ok(json!({
                "outcome": "dry-run",
                "domainId": domain,
                "summary": plan.summary(),
                "brake": brake,
                "plan": plan,
            }));
        }

        if let Verdict::Blocked { reason } = verdict {
            tracing::warn!(reason = %reason, "reconcile blocked by the safety brake; nothing changed");
            let blocked: SuiteEvent = ProvisioningBlocked {
                domain_id: domain.clone(),
                would_deprovision: u32::try_from(plan.deprovision.len()).unwrap_or(u32::MAX),
                managed_profiles: plan.managed_profiles,
                reason: reason.clone(),
                profiles: plan
                    .deprovision
                    .iter()
                    .map(|d| d.profile_name.clone())
                    .collect(),
            }
            .into();
            self.ports.publisher.publish(&[blocked]).await?;
            metrics.put("ReconcileBlocked", 1.0, Unit::Count);
            metrics.emit();
            return Ok(json!({
                "outcome": "blocked",
                "domainId": domain,
                "reason": reason,
                "summary": plan.summary(),
                "plan": plan,
            }));
        }

        let report = reconciler.apply(&plan, &observation).await;
        let events = report.events(domain);
        tracing::info!(summary = %report.summary(), events = events.len(), "reconcile applied");
        record(&mut metrics, &report, started);
        metrics.emit();
        if let Err(e) = self.ports.publisher.publish(&events).await {
            // The changes are made and will not be made again: keep the facts in the log at least.
            let details: Vec<Value> = events
                .iter()
                .map(|e| json!({"detail-type": e.detail_type(), "detail": e.detail()}))
                .collect();
            let details = Value::Array(details);
            tracing::error!(error = %e, events = %details, "suite events not published");
            return Err(e.into());
        }
        if !report.is_complete() {
            return Err(HandlerError::Incomplete(report.summary()));
        }
        Ok(json!({
            "outcome": "reconciled",
            "domainId": domain,
            "summary": report.summary(),
            "plan": plan,
            "report": report,
        }))
    }
}

fn record(metrics: &mut MetricSet, report: &Report, started: std::time::Instant) {
    let count = |n: usize| n as f64;
    metrics.put(
        "ProfilesCreated",
        count(report.provisioned.len()),
        Unit::Count,
    );
    metrics.put("ProfilesUpdated", count(report.updated.len()), Unit::Count);
    metrics.put(
        "ProfilesDeprovisioned",
        count(report.deprovisioned.len()),
        Unit::Count,
    );
    metrics.put("ActionsFailed", count(report.failed.len()), Unit::Count);
    metrics.put(
        "ActionsLeftForRetry",
        count(report.retry_later.len() + report.not_reached.len()),
        Unit::Count,
    );
    metrics.put(
        "ReconcileMs",
        started.elapsed().as_millis() as f64,
        Unit::Milliseconds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use studio_ops_shared::config::Env;
    use studio_ops_shared::idempotency::MemoryIdempotencyStore;
    use studio_ops_shared::publisher::RecordingPublisher;

    use crate::plan::{MANAGED_BY, TAG_GROUP_ID, TAG_MANAGED_BY, TAG_SETTINGS, TAG_USER_ID};
    use crate::ports::{
        AppOwner, AppRef, Change, Created, NewProfile, NewSpace, PortError, ProfileDetail,
        ProfileSummary, SpaceSummary,
    };
    use crate::settings::ProfileSettings;

    const DS: &str = "9a6763d7-0001-70f0-3861-d4cfe87e1540";

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/provision-users/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn config(extra: &[(&str, &str)]) -> Config {
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
        Config::from_env(&Env::new(&vars)).unwrap()
    }

    /// Counts every call; answers from fixed data.
    #[derive(Default)]
    struct FakeIdentity {
        members: Vec<String>,
        names: HashMap<String, String>,
        calls: AtomicUsize,
    }

    impl IdentityPort for FakeIdentity {
        async fn group_name(&self, _: &str) -> Result<Option<String>, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Some("data-science".into()))
        }
        async fn group_member_ids(&self, _: &str) -> Result<Vec<String>, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.members.clone())
        }
        async fn user_name(&self, id: &str) -> Result<Option<String>, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.names.get(id).cloned())
        }
    }

    /// Profile name → (detail, tags).
    type FakeProfiles = BTreeMap<String, (ProfileDetail, BTreeMap<String, String>)>;

    /// An in-memory domain of profiles; apps and spaces are empty.
    #[derive(Default)]
    struct FakeStudio {
        profiles: Mutex<FakeProfiles>,
        reads: AtomicUsize,
        writes: AtomicUsize,
    }

    impl FakeStudio {
        fn with_managed(names: &[(&str, &str)]) -> Self {
            let s = Self::default();
            let fp = ProfileSettings::default().fingerprint();
            for (name, user) in names {
                let detail = ProfileDetail {
                    name: name.to_string(),
                    arn: format!("arn:{name}"),
                    status: "InService".into(),
                    created: Some("2026-01-01T00:00:00Z".parse().unwrap()),
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
                s.profiles
                    .lock()
                    .unwrap()
                    .insert(name.to_string(), (detail, tags));
            }
            s
        }
        fn read(&self) {
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
        fn write(&self) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        fn names(&self) -> Vec<String> {
            self.profiles.lock().unwrap().keys().cloned().collect()
        }
    }

    impl StudioPort for FakeStudio {
        async fn domain_exists(&self) -> Result<bool, PortError> {
            self.read();
            Ok(true)
        }
        async fn list_profiles(&self) -> Result<Vec<ProfileSummary>, PortError> {
            self.read();
            Ok(self
                .profiles
                .lock()
                .unwrap()
                .values()
                .map(|(d, _)| ProfileSummary {
                    name: d.name.clone(),
                    status: d.status.clone(),
                    created: d.created,
                })
                .collect())
        }
        async fn describe_profile(&self, name: &str) -> Result<Option<ProfileDetail>, PortError> {
            self.read();
            Ok(self
                .profiles
                .lock()
                .unwrap()
                .get(name)
                .map(|(d, _)| d.clone()))
        }
        async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
            self.read();
            Ok(self
                .profiles
                .lock()
                .unwrap()
                .values()
                .find(|(d, _)| d.arn == arn)
                .map(|(_, t)| t.clone())
                .unwrap_or_default())
        }
        async fn add_tags(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), PortError> {
            self.write();
            Ok(())
        }
        async fn create_profile(&self, p: &NewProfile) -> Result<Created, PortError> {
            self.write();
            let mut profiles = self.profiles.lock().unwrap();
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
        async fn update_profile(&self, _: &str, _: &ProfileSettings) -> Result<Change, PortError> {
            self.write();
            Ok(Change::Accepted)
        }
        async fn delete_profile(&self, name: &str) -> Result<Change, PortError> {
            self.write();
            Ok(match self.profiles.lock().unwrap().remove(name) {
                Some(_) => Change::Accepted,
                None => Change::AlreadyGone,
            })
        }
        async fn list_spaces(&self) -> Result<Vec<SpaceSummary>, PortError> {
            self.read();
            Ok(vec![])
        }
        async fn describe_space(&self, _: &str) -> Result<Option<SpaceSummary>, PortError> {
            self.read();
            Ok(None)
        }
        async fn create_space(&self, _: &NewSpace) -> Result<Created, PortError> {
            self.write();
            Ok(Created::Created)
        }
        async fn delete_space(&self, _: &str) -> Result<Change, PortError> {
            self.write();
            Ok(Change::AlreadyGone)
        }
        async fn list_apps(&self, _: &AppOwner) -> Result<Vec<AppRef>, PortError> {
            self.read();
            Ok(vec![])
        }
        async fn describe_app(&self, _: &AppRef) -> Result<Option<String>, PortError> {
            self.read();
            Ok(None)
        }
        async fn delete_app(&self, _: &AppRef) -> Result<Change, PortError> {
            self.write();
            Ok(Change::AlreadyGone)
        }
    }

    fn handler(
        identity: FakeIdentity,
        studio: FakeStudio,
        extra: &[(&str, &str)],
    ) -> Handler<FakeIdentity, FakeStudio, RecordingPublisher, MemoryIdempotencyStore> {
        Handler::new(
            config(extra),
            Ports {
                identity,
                studio,
                publisher: RecordingPublisher::default(),
                lease: MemoryIdempotencyStore::default(),
            },
        )
    }

    fn event_with_group(name: &str, group: &str) -> Value {
        let mut e = fixture(name);
        e["detail"]["requestParameters"]["groupId"] = json!(group);
        e
    }

    #[test]
    fn every_fixture_parses() {
        assert!(matches!(
            parse_trigger(&fixture("identitystore-create-group-membership.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Added { .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("identitystore-delete-group-membership.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Removed { group_id: None, .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("sso-directory-add-member-to-group.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Added { .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("sso-directory-remove-member-from-group.json")).unwrap(),
            Trigger::Membership(MembershipSignal::Removed {
                group_id: Some(_),
                ..
            })
        ));
        assert_eq!(
            parse_trigger(&fixture("identitystore-scim-patch-group.json")).unwrap(),
            Trigger::Membership(MembershipSignal::GroupPatched { group_id: None })
        );
        assert_eq!(
            parse_trigger(&fixture("scheduled-event.json")).unwrap(),
            Trigger::Run(RunRequest::default())
        );
        assert!(matches!(
            parse_trigger(&fixture("manual-dry-run.json")).unwrap(),
            Trigger::Run(RunRequest { dry_run: true, .. })
        ));
        assert!(matches!(
            parse_trigger(&fixture("manual-targeted-run.json")).unwrap(),
            Trigger::Run(RunRequest {
                user_profile_name: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn malformed_event_names_the_field() {
        let mut event = fixture("identitystore-create-group-membership.json");
        event["detail"]["eventSource"] = json!(42);
        let err = parse_trigger(&event).unwrap_err();
        assert_eq!(err.path, "detail.eventSource");
        let err =
            parse_trigger(&json!({"detail-type": "Object Created", "detail": {}})).unwrap_err();
        assert_eq!(err.path, "detail-type");
    }

    #[test]
    fn scope_of_each_trigger() {
        let c = config(&[]);
        let reconcile = Scope::Reconcile {
            dry_run: false,
            only_profile: None,
        };
        let of = |e: Value| scope(&parse_trigger(&e).unwrap(), &c).unwrap();
        assert_eq!(
            of(fixture("identitystore-create-group-membership.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("sso-directory-add-member-to-group.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("sso-directory-remove-member-from-group.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("identitystore-delete-group-membership.json")),
            reconcile
        );
        assert_eq!(
            of(fixture("identitystore-scim-patch-group.json")),
            reconcile
        );
        assert_eq!(of(fixture("scheduled-event.json")), reconcile);
        assert_eq!(
            of(fixture("manual-dry-run.json")),
            Scope::Reconcile {
                dry_run: true,
                only_profile: None
            }
        );
        assert_eq!(
            of(fixture(
                "identitystore-create-group-membership-other-group.json"
            )),
            Scope::Ignore(
                "group 34887428-4081-7042-c3c6-928d413009e7 is not one of the configured groups"
                    .into()
            )
        );
        let mut other_store = fixture("identitystore-create-group-membership.json");
        other_store["detail"]["requestParameters"]["identityStoreId"] = json!("d-0000000000");
        assert!(matches!(of(other_store), Scope::Ignore(r) if r.contains("d-0000000000")));
        let mut failed = fixture("identitystore-create-group-membership.json");
        failed["detail"]["errorCode"] = json!("AccessDeniedException");
        assert!(matches!(of(failed), Scope::Ignore(r) if r.contains("AccessDeniedException")));
        let err = scope(&parse_trigger(&json!({"domainId": "d-other"})).unwrap(), &c).unwrap_err();
        assert_eq!(err.class(), ErrorClass::NonRetryable);
        assert!(err.to_string().contains("d-other"), "{err}");
        let unconfigured = config(&[("STUDIO_OPS_PROVISION_GROUP_IDS", "")]);
        let err = scope(&Trigger::Run(RunRequest::default()), &unconfigured).unwrap_err();
        assert!(matches!(err, HandlerError::NotConfigured));
        assert!(
            err.to_string().contains("STUDIO_OPS_PROVISION_GROUP_IDS"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn other_group_events_make_no_calls() {
        let h = handler(FakeIdentity::default(), FakeStudio::default(), &[]);
        let out = h
            .handle(
                fixture("identitystore-create-group-membership-other-group.json"),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(out["outcome"], "ignored");
        assert_eq!(h.ports.identity.calls.load(Ordering::SeqCst), 0);
        assert_eq!(h.ports.studio.reads.load(Ordering::SeqCst), 0);
        assert!(h.ports.publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn dry_run_returns_the_plan_and_changes_nothing() {
        let identity = FakeIdentity {
            members: vec!["u1".into()],
            names: [("u1".to_string(), "ana@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::with_managed(&[("bob", "u2")]), &[]);
        let out = h
            .handle(fixture("manual-dry-run.json"), Context::default())
            .await
            .unwrap();
        assert_eq!(out["outcome"], "dry-run");
        assert_eq!(
            out["summary"],
            "1 to create, 0 to update, 0 private spaces to create, 1 to deprovision, 0 skipped, 0 unchanged, 1 managed"
        );
        assert_eq!(out["plan"]["create"][0]["profileName"], "ana-example-com");
        assert_eq!(out["plan"]["deprovision"][0]["profileName"], "bob");
        // 1 of 1 managed profiles is 100 %, but a single deprovision always passes the share rule.
        assert_eq!(out["brake"]["blocked"], false);
        assert_eq!(h.ports.studio.writes.load(Ordering::SeqCst), 0);
        assert!(h.ports.publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn reconcile_creates_deprovisions_and_publishes() {
        let identity = FakeIdentity {
            members: vec!["u1".into(), "u3".into()],
            names: [("u1".to_string(), "ana@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::with_managed(&[("bob", "u2")]), &[]);
        let out = h
            .handle(
                event_with_group("sso-directory-add-member-to-group.json", DS),
                Context::default(),
            )
            .await
            .unwrap();
        assert_eq!(out["outcome"], "reconciled", "{out}");
        assert_eq!(h.ports.studio.names(), vec!["ana-example-com".to_string()]);
        let events = h.ports.publisher.taken();
        let types: Vec<&str> = events.iter().map(SuiteEvent::detail_type).collect();
        assert_eq!(types, vec!["User Provisioned", "User Deprovisioned"]);
        let SuiteEvent::UserProvisioned(p) = &events[0] else {
            panic!()
        };
        assert_eq!(p.user_name, "ana@example.com");
        assert_eq!(p.group_name.as_deref(), Some("data-science"));
        // u3 has no user in the identity store: skipped with a reason.
        assert_eq!(out["plan"]["skipped"][0]["subject"], "u3");
        // Again: nothing to do, nothing published.
        let out = h
            .handle(fixture("scheduled-event.json"), Context::default())
            .await
            .unwrap();
        assert_eq!(out["report"]["provisioned"], json!([]));
        assert!(h.ports.publisher.taken().is_empty());
    }

    #[tokio::test]
    async fn the_brake_blocks_everything_and_says_why() {
        let managed: Vec<(String, String)> = (0..5)
            .map(|i| (format!("user-{i}"), format!("u{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = managed
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let identity = FakeIdentity {
            // Three of five left (60 %) and somebody new arrived: nothing at all happens.
            members: vec!["u0".into(), "u1".into(), "new".into()],
            names: [("new".to_string(), "new@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::with_managed(&refs), &[]);
        let out = h
            .handle(fixture("scheduled-event.json"), Context::default())
            .await
            .unwrap();
        assert_eq!(out["outcome"], "blocked");
        assert_eq!(h.ports.studio.writes.load(Ordering::SeqCst), 0);
        let events = h.ports.publisher.taken();
        let [SuiteEvent::ProvisioningBlocked(b)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(b.would_deprovision, 3);
        assert_eq!(b.managed_profiles, 5);
        assert_eq!(
            b.reason,
            "would deprovision 3 of 5 managed profiles (60%), above the 20% brake"
        );
        assert_eq!(b.profiles, vec!["user-2", "user-3", "user-4"]);
        // The admin approves one by naming it: the brake does not apply to a targeted run.
        let out = h
            .handle(json!({"userProfileName": "user-3"}), Context::default())
            .await
            .unwrap();
        assert_eq!(out["outcome"], "reconciled");
        assert_eq!(
            h.ports.studio.names(),
            vec!["user-0", "user-1", "user-2", "user-4"]
        );
    }

    #[tokio::test]
    async fn no_time_left_means_not_reached_and_a_retryable_error() {
        let identity = FakeIdentity {
            members: vec!["u1".into()],
            names: [("u1".to_string(), "ana@example.com".to_string())].into(),
            ..FakeIdentity::default()
        };
        let h = handler(identity, FakeStudio::default(), &[]);
        let mut ctx = Context::default();
        ctx.deadline = (jiff::Timestamp::now().as_millisecond() + 5_000) as u64;
        let err = h
            .handle(fixture("scheduled-event.json"), ctx)
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(err.to_string().contains("1 not reached"), "{err}");
        assert_eq!(h.ports.studio.writes.load(Ordering::SeqCst), 0);
    }
}
