//! The idle decision table: from what ListApps, DescribeApp and the tags say about one app, and the policy, decide
//! whether to keep it, warn its owner, wait out the grace period or stop it — always with the reason. Pure: no AWS, no
//! clock (`now` is passed in).

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

use crate::policy::{FREE_APP_TYPE, FREE_INSTANCE_TYPE, Policy};

/// Tag on the app: when its owner was warned (RFC 3339). Where versions before the sweep-state table kept the
/// warning; it is read only from apps whose tags a sweep reads anyway, honoured once and removed (`state.rs`).
pub const WARNING_TAG: &str = "studio-ops:idle-warning-at";
/// Tag on the app, its space or its user profile: keep the app until this time (RFC 3339).
pub const KEEP_ALIVE_TAG: &str = "studio-ops:keep-alive-until";
/// A warning stamped this far in the future is not believed (clock skew is allowed up to it).
const FUTURE_WARNING_TOLERANCE: SignedDuration = SignedDuration::from_mins(5);

pub type Tags = BTreeMap<String, String>;

/// Who an app belongs to; AWS calls must carry exactly one of `UserProfileName` and `SpaceName`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppOwner {
    UserProfile(String),
    Space(String),
}

impl AppOwner {
    pub fn user_profile(&self) -> Option<&str> {
        match self {
            AppOwner::UserProfile(u) => Some(u),
            AppOwner::Space(_) => None,
        }
    }

    pub fn space(&self) -> Option<&str> {
        match self {
            AppOwner::Space(s) => Some(s),
            AppOwner::UserProfile(_) => None,
        }
    }
}

impl fmt::Display for AppOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppOwner::UserProfile(u) => write!(f, "user profile {u}"),
            AppOwner::Space(s) => write!(f, "space {s}"),
        }
    }
}

/// What ListApps says about one app: enough to pass over most apps without another call.
#[derive(Debug, Clone, PartialEq)]
pub struct AppListing {
    pub domain_id: String,
    pub owner: AppOwner,
    pub app_type: String,
    pub app_name: String,
    pub status: String,
    pub instance_type: Option<String>,
    /// `CreationTime`: tells this app from an older one of the same name.
    pub created: Option<Timestamp>,
}

impl AppListing {
    /// A stable identity for de-duplication and logs: domain/owner/type/name, case-folded as SageMaker does.
    pub fn key(&self) -> String {
        let owner = match &self.owner {
            AppOwner::UserProfile(u) => format!("user/{u}"),
            AppOwner::Space(s) => format!("space/{s}"),
        };
        format!(
            "{}/{owner}/{}/{}",
            self.domain_id, self.app_type, self.app_name
        )
        .to_lowercase()
    }
}

/// Why an app is passed over from its listing alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screened {
    FreeApp,
    AppTypeNotSwept(String),
    NotInService(String),
    ExcludedUser(String),
    ExcludedSpace(String),
}

impl Screened {
    /// The key under which the sweep summary counts it.
    pub fn key(&self) -> String {
        match self {
            Screened::FreeApp => "free-app".into(),
            Screened::AppTypeNotSwept(_) => "app-type-not-swept".into(),
            Screened::NotInService(status) => format!("status-{}", status.to_lowercase()),
            Screened::ExcludedUser(_) => "excluded-user".into(),
            Screened::ExcludedSpace(_) => "excluded-space".into(),
        }
    }
}

impl fmt::Display for Screened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Screened::FreeApp => write!(
                f,
                "free app (classic JupyterServer or a system instance): never touched"
            ),
            Screened::AppTypeNotSwept(t) => write!(f, "app type {t} is not swept"),
            Screened::NotInService(s) => write!(f, "status {s}: only InService apps are swept"),
            Screened::ExcludedUser(u) => write!(f, "user profile {u} is excluded by configuration"),
            Screened::ExcludedSpace(s) => write!(f, "space {s} is excluded by configuration"),
        }
    }
}

/// Passes over apps that must not be described at all: free, not swept, not InService, excluded by name.
pub fn screen(app: &AppListing, policy: &Policy) -> Option<Screened> {
    if app.app_type == FREE_APP_TYPE
        || app
            .instance_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(FREE_INSTANCE_TYPE))
    {
        return Some(Screened::FreeApp);
    }
    if !policy.sweeps_app_type(&app.app_type) {
        return Some(Screened::AppTypeNotSwept(app.app_type.clone()));
    }
    if app.status != "InService" {
        return Some(Screened::NotInService(app.status.clone()));
    }
    match &app.owner {
        AppOwner::UserProfile(u) if policy.excludes_user(u) => {
            Some(Screened::ExcludedUser(u.clone()))
        }
        AppOwner::Space(s) if policy.excludes_space(s) => Some(Screened::ExcludedSpace(s.clone())),
        _ => None,
    }
}

/// What DescribeApp, the sweep state and (once read) the app's tags say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppFacts {
    pub instance_type: Option<String>,
    pub created: Option<Timestamp>,
    pub last_health_check: Option<Timestamp>,
    pub last_user_activity: Option<Timestamp>,
    /// When the owner was warned, as the sweep state remembers it.
    pub warning: Option<Timestamp>,
    /// The app's tags; empty until the decision asks for them.
    pub tags: Tags,
}

impl AppFacts {
    /// The idle evidence DescribeApp alone gives: user activity that is not a health check, else the creation time.
    pub fn reading_evidence(&self) -> Option<Timestamp> {
        let created = self.created?;
        Some(match (self.last_user_activity, self.last_health_check) {
            (Some(ua), hc) if Some(ua) != hc && ua > created => ua,
            _ => created,
        })
    }
}

/// What the app's space and user profile say; loaded only for apps the sweep would act on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnerFacts {
    /// The space's tags (space apps only).
    pub space_tags: Option<Tags>,
    /// The tags of the user profile that owns the app or its private space.
    pub profile_tags: Option<Tags>,
    /// The owner to warn: the app's user profile, or the private space's owner.
    pub owner_user_profile: Option<String>,
    /// The space's SageMaker built-in idle timeout for this app type, when it has one.
    pub builtin_idle_minutes: Option<u32>,
}

/// SageMaker's built-in idle shutdown setting (`AppLifecycleManagement.IdleSettings`) at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdleSetting {
    /// `LifecycleManagement`: ENABLED / DISABLED, when stated at this level.
    pub enabled: Option<bool>,
    pub timeout_minutes: Option<u32>,
}

/// Idle settings per app type (`JupyterLab`, `CodeEditor`).
pub type IdleSettings = BTreeMap<String, IdleSetting>;

/// The app types SageMaker's built-in idle shutdown covers.
pub const BUILTIN_IDLE_APP_TYPES: &[&str] = &["JupyterLab", "CodeEditor"];

/// Whether SageMaker's built-in idle shutdown governs a space app, and after how many minutes (0 = its default).
/// Enabled at the owner's profile, else at the domain; the timeout is the space's, else the profile's, else the
/// domain's — the order in which Studio resolves them.
pub fn builtin_idle_minutes(
    space_timeout: Option<u32>,
    profile: Option<IdleSetting>,
    domain: Option<IdleSetting>,
) -> Option<u32> {
    let enabled = profile
        .and_then(|p| p.enabled)
        .or(domain.and_then(|d| d.enabled))
        .unwrap_or(false);
    enabled.then(|| {
        space_timeout
            .or(profile.and_then(|p| p.timeout_minutes))
            .or(domain.and_then(|d| d.timeout_minutes))
            .unwrap_or(0)
    })
}

/// Where a tag was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSource {
    App,
    Space,
    UserProfile,
}

impl fmt::Display for TagSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TagSource::App => "app",
            TagSource::Space => "space",
            TagSource::UserProfile => "user profile",
        })
    }
}

/// The latest evidence that someone uses (or wants) the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// `LastUserActivityTimestamp`, where it differs from `LastHealthCheckTimestamp`.
    UserActivity(Timestamp),
    /// `CreationTime`: the app was never used, or its activity cannot be told from health checks.
    CreationTime(Timestamp),
    /// A keep-alive tag (still running or expired).
    KeepAlive { until: Timestamp, on: TagSource },
}

impl Evidence {
    pub fn at(&self) -> Timestamp {
        match self {
            Evidence::UserActivity(t) | Evidence::CreationTime(t) => *t,
            Evidence::KeepAlive { until, .. } => *until,
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::UserActivity(t) => write!(f, "last user activity {}", short(*t)),
            Evidence::CreationTime(t) => {
                write!(f, "no user activity seen since creation {}", short(*t))
            }
            Evidence::KeepAlive { until, on } => {
                write!(f, "keep-alive tag on the {on} until {}", short(*until))
            }
        }
    }
}

/// Why the decision was made; the key counts it in the sweep summary, the text goes to logs, report and alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Exempt {
        tag: String,
        on: TagSource,
    },
    NoIdleRule {
        instance_type: String,
    },
    NoCreationTime,
    Active {
        evidence: Evidence,
        idle_for: SignedDuration,
        limit_minutes: u32,
        pattern: String,
    },
    KeepAlive {
        until: Timestamp,
        on: TagSource,
    },
    BuiltinIdleShutdown {
        timeout_minutes: u32,
    },
    Idle {
        evidence: Evidence,
        idle_for: SignedDuration,
        limit_minutes: u32,
        pattern: String,
    },
    UptimeCap {
        uptime: SignedDuration,
        cap_minutes: u32,
        pattern: String,
    },
}

impl Reason {
    pub fn key(&self) -> &'static str {
        match self {
            Reason::Exempt { .. } => "excluded-tag",
            Reason::NoIdleRule { .. } => "no-idle-rule",
            Reason::NoCreationTime => "no-creation-time",
            Reason::Active { .. } => "active",
            Reason::KeepAlive { .. } => "keep-alive",
            Reason::BuiltinIdleShutdown { .. } => "builtin-idle-shutdown",
            Reason::Idle { .. } => "idle",
            Reason::UptimeCap { .. } => "uptime-cap",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Exempt { tag, on } => write!(f, "exempt: tag {tag} on the {on}"),
            Reason::NoIdleRule { instance_type } => {
                write!(
                    f,
                    "no idle rule matches instance type {instance_type}; kept"
                )
            }
            Reason::NoCreationTime => write!(f, "DescribeApp returned no CreationTime; kept"),
            Reason::Active {
                evidence,
                idle_for,
                limit_minutes,
                pattern,
            } => write!(
                f,
                "active: idle {} min < {limit_minutes} min limit for {pattern} ({evidence})",
                whole_minutes(*idle_for)
            ),
            Reason::KeepAlive { until, on } => {
                write!(
                    f,
                    "kept alive until {} by the keep-alive tag on the {on}",
                    short(*until)
                )
            }
            Reason::BuiltinIdleShutdown { timeout_minutes: 0 } => write!(
                f,
                "the space has SageMaker's built-in idle shutdown (its default timeout); swept only beyond the uptime cap"
            ),
            Reason::BuiltinIdleShutdown { timeout_minutes } => write!(
                f,
                "the space has SageMaker's built-in idle shutdown ({timeout_minutes} min); swept only beyond the uptime cap"
            ),
            Reason::Idle {
                evidence,
                idle_for,
                limit_minutes,
                pattern,
            } => write!(
                f,
                "idle {} min >= {limit_minutes} min limit for {pattern} ({evidence})",
                whole_minutes(*idle_for)
            ),
            Reason::UptimeCap {
                uptime,
                cap_minutes,
                pattern,
            } => write!(
                f,
                "running {} min >= {cap_minutes} min uptime cap for {pattern}, regardless of activity",
                whole_minutes(*uptime)
            ),
        }
    }
}

/// What to do with the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Keep,
    /// Keep, and remove a warning tag that no longer holds.
    ClearWarning,
    /// The app would be acted on, but its space and user profile (keep-alive, exemption, built-in idle shutdown)
    /// have not been looked at yet: load them and decide again.
    LoadOwnerFacts,
    /// Tag the warning time and tell the owner. `episode` names this idle spell so that overlapping sweeps warn once.
    Warn {
        stops_at: Timestamp,
        episode: String,
    },
    AwaitGrace {
        warned_at: Timestamp,
        stops_at: Timestamp,
    },
    Stop {
        warned_at: Timestamp,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::ClearWarning => "clear-warning",
            Action::LoadOwnerFacts => "load-owner-facts",
            Action::Warn { .. } => "warn",
            Action::AwaitGrace { .. } => "await-grace",
            Action::Stop { .. } => "stop",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub reason: Reason,
    /// How long the app has been idle by the winning evidence (0 while kept alive).
    pub idle_for: SignedDuration,
    /// Things the owner or operator should know: unreadable tags, ignored keep-alives, stale warnings.
    pub notes: Vec<String>,
}

impl Decision {
    /// The reason with its notes, as one line.
    pub fn explain(&self) -> String {
        if self.notes.is_empty() {
            self.reason.to_string()
        } else {
            format!("{}; {}", self.reason, self.notes.join("; "))
        }
    }

    pub fn idle_minutes(&self) -> u64 {
        u64::try_from(whole_minutes(self.idle_for)).unwrap_or(0)
    }
}

/// Decides one app. `owner` is `None` until the app's tags and its owner's facts are loaded; the table asks for them
/// (`Action::LoadOwnerFacts`) before it would ever warn or stop, since they can only hold the app back. The warning
/// is the state's; without one, an old warning tag (read with the tags) stands in for it.
pub fn decide(
    app: &AppFacts,
    owner: Option<&OwnerFacts>,
    policy: &Policy,
    now: Timestamp,
) -> Decision {
    let mut notes = Vec::new();
    let warning_tag_present = app.warning.is_some() || app.tags.contains_key(WARNING_TAG);
    let warned_at = match app.warning {
        Some(w) => Some(w),
        None => read_time_tag(&app.tags, WARNING_TAG, TagSource::App, &mut notes),
    };
    let keep = |reason: Reason, idle_for: SignedDuration, notes: Vec<String>| Decision {
        action: if warning_tag_present {
            Action::ClearWarning
        } else {
            Action::Keep
        },
        reason,
        idle_for,
        notes,
    };

    let mut tag_sets: Vec<(TagSource, &Tags)> = vec![(TagSource::App, &app.tags)];
    if let Some(o) = owner {
        tag_sets.extend(o.space_tags.as_ref().map(|t| (TagSource::Space, t)));
        tag_sets.extend(o.profile_tags.as_ref().map(|t| (TagSource::UserProfile, t)));
    }
    for (on, tags) in &tag_sets {
        if let Some(tag) = policy
            .exempt_tags
            .iter()
            .find(|e| tags.iter().any(|(k, v)| e.matches(k, v)))
        {
            return keep(
                Reason::Exempt {
                    tag: tag.to_string(),
                    on: *on,
                },
                SignedDuration::ZERO,
                notes,
            );
        }
    }

    let instance_type = app.instance_type.as_deref().unwrap_or("unknown");
    let Some(rule) = policy.rule_for(instance_type) else {
        return keep(
            Reason::NoIdleRule {
                instance_type: instance_type.to_string(),
            },
            SignedDuration::ZERO,
            notes,
        );
    };
    let Some(created) = app.created else {
        return keep(Reason::NoCreationTime, SignedDuration::ZERO, notes);
    };
    let uptime = non_negative(now.duration_since(created));
    let cap_hit = rule.uptime_cap().filter(|cap| uptime >= *cap);

    let evidence = latest_evidence(app, created, &tag_sets, policy, now, &mut notes);
    let idle_for = non_negative(now.duration_since(evidence.at()));
    let idle_hit = idle_for >= rule.idle_limit();

    let candidate = if let Some(cap_minutes) = cap_hit.and(rule.max_uptime_minutes) {
        Reason::UptimeCap {
            uptime,
            cap_minutes,
            pattern: rule.pattern.clone(),
        }
    } else if let Some(timeout_minutes) = owner.and_then(|o| o.builtin_idle_minutes) {
        return keep(
            Reason::BuiltinIdleShutdown { timeout_minutes },
            idle_for,
            notes,
        );
    } else if idle_hit {
        Reason::Idle {
            evidence,
            idle_for,
            limit_minutes: rule.idle_minutes,
            pattern: rule.pattern.clone(),
        }
    } else {
        let reason = match evidence {
            Evidence::KeepAlive { until, on } if until > now => Reason::KeepAlive { until, on },
            _ => Reason::Active {
                evidence,
                idle_for,
                limit_minutes: rule.idle_minutes,
                pattern: rule.pattern.clone(),
            },
        };
        return keep(reason, idle_for, notes);
    };

    let is_cap = matches!(candidate, Reason::UptimeCap { .. });
    let valid_warning = warned_at.filter(|w| {
        let fresh = *w >= created && (is_cap || *w >= evidence.at());
        let believable = *w <= now + FUTURE_WARNING_TOLERANCE;
        if !fresh {
            notes.push(format!(
                "the warning of {} predates the latest activity; warning again",
                short(*w)
            ));
        } else if !believable {
            notes.push(format!(
                "the warning tag {} is in the future; warning again",
                short(*w)
            ));
        }
        fresh && believable
    });
    let action = match valid_warning {
        None => Action::Warn {
            stops_at: now + policy.grace,
            episode: if is_cap {
                "uptime-cap".to_string()
            } else {
                format!("idle-since-{}", evidence.at().as_second())
            },
        },
        Some(w) if now >= w + policy.grace => Action::Stop { warned_at: w },
        Some(w) => Action::AwaitGrace {
            warned_at: w,
            stops_at: w + policy.grace,
        },
    };
    // Waiting out the grace needs nothing more; a warning or a stop needs the tags and the owner's facts first.
    let action = match action {
        Action::Warn { .. } | Action::Stop { .. } if owner.is_none() => Action::LoadOwnerFacts,
        action => action,
    };
    Decision {
        action,
        reason: candidate,
        idle_for,
        notes,
    }
}

/// The latest of: user activity that is not a health check, the creation time, and keep-alive tags within the horizon.
fn latest_evidence(
    app: &AppFacts,
    created: Timestamp,
    tag_sets: &[(TagSource, &Tags)],
    policy: &Policy,
    now: Timestamp,
    notes: &mut Vec<String>,
) -> Evidence {
    let mut best = Evidence::CreationTime(created);
    match (app.last_user_activity, app.last_health_check) {
        (Some(ua), Some(hc)) if ua == hc => notes.push(
            "LastUserActivityTimestamp equals LastHealthCheckTimestamp, so it is a health check, not a person".into(),
        ),
        (Some(ua), _) if ua > best.at() => best = Evidence::UserActivity(ua),
        _ => {}
    }
    for (on, tags) in tag_sets {
        let Some(until) = read_time_tag(tags, KEEP_ALIVE_TAG, *on, notes) else {
            continue;
        };
        if until > now + policy.max_keep_alive {
            notes.push(format!(
                "the keep-alive tag on the {on} ({}) is more than {} h ahead and is ignored",
                short(until),
                policy.max_keep_alive.as_hours()
            ));
            continue;
        }
        if until > best.at() {
            best = Evidence::KeepAlive { until, on: *on };
        }
    }
    best
}

/// Reads a time tag; an unreadable one is noted and ignored.
fn read_time_tag(
    tags: &Tags,
    key: &str,
    on: TagSource,
    notes: &mut Vec<String>,
) -> Option<Timestamp> {
    let raw = tags.get(key)?;
    match parse_tag_time(raw) {
        Some(t) => Some(t),
        None => {
            notes.push(format!(
                "tag {key} on the {on} is unreadable ({raw:?}; expected a time such as 2026-11-25T18:00:00Z) and is ignored"
            ));
            None
        }
    }
}

/// A time as people write it in a tag: RFC 3339 (`2026-11-25T18:00:00Z`, `2026-11-25T19:00:00+01:00`), a date and
/// time without offset (taken as UTC), or a date alone (meaning through that day, UTC).
pub fn parse_tag_time(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Some(t);
    }
    let utc = jiff::tz::TimeZone::UTC;
    if raw.contains('T') {
        let dt = raw.parse::<jiff::civil::DateTime>().ok()?;
        return utc.to_timestamp(dt).ok();
    }
    let date = raw.parse::<jiff::civil::Date>().ok()?;
    utc.to_timestamp(
        date.tomorrow()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight()),
    )
    .ok()
}

fn non_negative(d: SignedDuration) -> SignedDuration {
    d.max(SignedDuration::ZERO)
}

pub fn whole_minutes(d: SignedDuration) -> i64 {
    d.as_secs() / 60
}

/// A timestamp to the second, for messages.
pub fn short(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ExemptTag, LimitRule};
    use std::collections::BTreeSet;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-11-24T21:00:00Z";

    fn now() -> Timestamp {
        t(NOW)
    }

    fn ago(minutes: i64) -> Timestamp {
        now() - SignedDuration::from_mins(minutes)
    }

    fn policy() -> Policy {
        Policy::default()
    }

    /// A GPU app created `created_min` ago whose last real activity was `active_min` ago (health check later).
    fn gpu(created_min: i64, active_min: Option<i64>) -> AppFacts {
        AppFacts {
            instance_type: Some("ml.g5.xlarge".into()),
            created: Some(ago(created_min)),
            last_health_check: Some(ago(1)),
            last_user_activity: active_min.map(ago),
            tags: Tags::new(),
            warning: None,
        }
    }

    fn cpu(created_min: i64, active_min: Option<i64>) -> AppFacts {
        AppFacts {
            instance_type: Some("ml.t3.medium".into()),
            ..gpu(created_min, active_min)
        }
    }

    fn tagged(mut app: AppFacts, k: &str, v: &str) -> AppFacts {
        app.tags.insert(k.into(), v.into());
        app
    }

    fn owner() -> OwnerFacts {
        OwnerFacts {
            space_tags: None,
            profile_tags: Some(Tags::new()),
            owner_user_profile: Some("ana".into()),
            builtin_idle_minutes: None,
        }
    }

    fn decide_full(app: &AppFacts) -> Decision {
        decide(app, Some(&owner()), &policy(), now())
    }

    #[test]
    fn recent_user_activity_keeps_the_app() {
        let d = decide_full(&gpu(600, Some(20)));
        assert_eq!(d.action, Action::Keep);
        assert_eq!(d.reason.key(), "active");
        assert_eq!(d.idle_minutes(), 20);
        assert!(
            d.explain().contains("idle 20 min < 60 min limit for ml.g*"),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn idle_gpu_app_is_warned_with_stop_time_and_episode() {
        let d = decide_full(&gpu(600, Some(90)));
        assert_eq!(
            d.action,
            Action::Warn {
                stops_at: now() + SignedDuration::from_mins(30),
                episode: format!("idle-since-{}", ago(90).as_second())
            }
        );
        assert_eq!(d.reason.key(), "idle");
        assert!(
            d.explain()
                .contains("idle 90 min >= 60 min limit for ml.g*"),
            "{}",
            d.explain()
        );
        assert!(
            d.explain().contains("last user activity"),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn cpu_limit_is_longer_than_gpu_limit() {
        assert_eq!(decide_full(&cpu(600, Some(90))).action, Action::Keep);
        assert!(matches!(
            decide_full(&cpu(600, Some(181))).action,
            Action::Warn { .. }
        ));
    }

    #[test]
    fn health_check_pollution_is_not_activity() {
        // The control plane wrote the health-check time into LastUserActivityTimestamp: that is no evidence.
        let mut app = gpu(300, None);
        app.last_health_check = Some(ago(2));
        app.last_user_activity = Some(ago(2));
        let d = decide_full(&app);
        assert!(matches!(d.action, Action::Warn { .. }), "{d:?}");
        assert_eq!(d.idle_minutes(), 300);
        assert!(
            d.explain().contains("health check, not a person"),
            "{}",
            d.explain()
        );
        assert!(
            d.explain().contains("no user activity seen since creation"),
            "{}",
            d.explain()
        );
        // The same timestamps one second apart are a person.
        app.last_user_activity = Some(ago(2) + SignedDuration::from_secs(1));
        assert_eq!(decide_full(&app).action, Action::Keep);
    }

    #[test]
    fn never_used_app_counts_from_creation() {
        let young = decide_full(&gpu(30, None));
        assert_eq!(young.action, Action::Keep);
        assert!(young.explain().contains("since creation"));
        assert!(matches!(
            decide_full(&gpu(61, None)).action,
            Action::Warn { .. }
        ));
        // Activity before creation (a recreated app's stale value) does not beat the creation time.
        let stale = gpu(30, Some(600));
        assert_eq!(decide_full(&stale).action, Action::Keep);
    }

    #[test]
    fn future_user_activity_is_clamped_to_zero_idle() {
        let mut app = gpu(600, None);
        app.last_user_activity = Some(now() + SignedDuration::from_mins(3));
        let d = decide_full(&app);
        assert_eq!(d.action, Action::Keep);
        assert_eq!(d.idle_minutes(), 0);
    }

    #[test]
    fn keep_alive_on_app_space_or_profile() {
        let until = (now() + SignedDuration::from_hours(2)).to_string();
        let on_app = tagged(gpu(600, Some(300)), KEEP_ALIVE_TAG, &until);
        let d = decide_full(&on_app);
        assert_eq!(d.action, Action::Keep);
        assert_eq!(
            d.reason,
            Reason::KeepAlive {
                until: until.parse().unwrap(),
                on: TagSource::App
            }
        );

        let idle = gpu(600, Some(300));
        let mut o = owner();
        o.space_tags = Some(Tags::from([(KEEP_ALIVE_TAG.to_string(), until.clone())]));
        let d = decide(&idle, Some(&o), &policy(), now());
        assert_eq!(d.reason.key(), "keep-alive");
        assert!(d.explain().contains("on the space"));

        let mut o = owner();
        o.profile_tags = Some(Tags::from([(KEEP_ALIVE_TAG.to_string(), until)]));
        let d = decide(&idle, Some(&o), &policy(), now());
        assert!(
            d.explain().contains("on the user profile"),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn expired_keep_alive_starts_the_idle_clock_at_its_expiry() {
        let app = tagged(gpu(600, Some(300)), KEEP_ALIVE_TAG, &ago(20).to_string());
        let d = decide_full(&app);
        assert_eq!(d.action, Action::Keep);
        assert_eq!(d.reason.key(), "active");
        assert_eq!(d.idle_minutes(), 20);
        let app = tagged(gpu(600, Some(300)), KEEP_ALIVE_TAG, &ago(61).to_string());
        let d = decide_full(&app);
        assert!(matches!(d.action, Action::Warn { .. }));
        assert!(
            d.explain().contains("keep-alive tag on the app until"),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn tag_times_as_people_write_them() {
        assert_eq!(
            parse_tag_time("2026-11-25T18:00:00Z"),
            Some(t("2026-11-25T18:00:00Z"))
        );
        assert_eq!(
            parse_tag_time(" 2026-11-25T19:00:00+01:00 "),
            Some(t("2026-11-25T18:00:00Z"))
        );
        assert_eq!(
            parse_tag_time("2026-11-25T18:00"),
            Some(t("2026-11-25T18:00:00Z"))
        );
        assert_eq!(
            parse_tag_time("2026-11-25"),
            Some(t("2026-11-26T00:00:00Z"))
        );
        for bad in ["tomorrow", "", "18:00", "2026-13-01", "1764093600"] {
            assert_eq!(parse_tag_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn unreadable_or_far_keep_alive_is_ignored_and_said() {
        let app = tagged(gpu(600, Some(300)), KEEP_ALIVE_TAG, "tomorrow");
        let d = decide_full(&app);
        assert!(matches!(d.action, Action::Warn { .. }));
        assert!(
            d.explain().contains("unreadable (\"tomorrow\""),
            "{}",
            d.explain()
        );
        let far = (now() + SignedDuration::from_hours(24 * 30)).to_string();
        let d = decide_full(&tagged(gpu(600, Some(300)), KEEP_ALIVE_TAG, &far));
        assert!(matches!(d.action, Action::Warn { .. }));
        assert!(
            d.explain().contains("more than 168 h ahead"),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn uptime_cap_applies_regardless_of_activity_and_keep_alive() {
        let until = (now() + SignedDuration::from_hours(2)).to_string();
        let app = tagged(gpu(25 * 60, Some(1)), KEEP_ALIVE_TAG, &until);
        let d = decide_full(&app);
        assert_eq!(
            d.action,
            Action::Warn {
                stops_at: now() + SignedDuration::from_mins(30),
                episode: "uptime-cap".into()
            }
        );
        assert!(
            d.explain()
                .contains("1500 min >= 1440 min uptime cap for ml.g*"),
            "{}",
            d.explain()
        );
        // CPU has no cap by default.
        assert_eq!(decide_full(&cpu(100 * 60, Some(2))).action, Action::Keep);
    }

    #[test]
    fn exclusion_tags_on_app_space_or_profile() {
        let exempt = tagged(gpu(25 * 60, None), "studio-ops:idle-shutdown", "exempt");
        let d = decide_full(&exempt);
        assert_eq!(d.action, Action::Keep);
        assert_eq!(
            d.reason,
            Reason::Exempt {
                tag: "studio-ops:idle-shutdown=exempt".into(),
                on: TagSource::App
            }
        );

        let mut o = owner();
        o.profile_tags = Some(Tags::from([(
            "studio-ops:idle-shutdown".to_string(),
            "exempt".to_string(),
        )]));
        let d = decide(&gpu(600, None), Some(&o), &policy(), now());
        assert_eq!(d.reason.key(), "excluded-tag");
        assert!(d.explain().contains("user profile"));

        let p = Policy {
            exempt_tags: vec![ExemptTag::parse("team:always-on").unwrap()],
            ..policy()
        };
        let mut o = owner();
        o.space_tags = Some(Tags::from([(
            "team:always-on".to_string(),
            "yes".to_string(),
        )]));
        assert_eq!(
            decide(&gpu(600, None), Some(&o), &p, now()).reason.key(),
            "excluded-tag"
        );
        // A value mismatch does not exempt.
        let not = tagged(gpu(600, None), "studio-ops:idle-shutdown", "please");
        assert!(matches!(decide_full(&not).action, Action::Warn { .. }));
    }

    #[test]
    fn owner_facts_are_loaded_before_any_warning_or_stop() {
        let d = decide(&gpu(600, Some(90)), None, &policy(), now());
        assert_eq!(d.action, Action::LoadOwnerFacts);
        assert_eq!(d.reason.key(), "idle");
        // Apps that are kept need no owner facts.
        assert_eq!(
            decide(&gpu(600, Some(5)), None, &policy(), now()).action,
            Action::Keep
        );
        let warned = tagged(gpu(600, Some(5)), WARNING_TAG, &ago(40).to_string());
        assert_eq!(
            decide(&warned, None, &policy(), now()).action,
            Action::ClearWarning
        );
    }

    #[test]
    fn builtin_idle_shutdown_space_is_left_to_sagemaker_within_the_cap() {
        let mut o = owner();
        o.space_tags = Some(Tags::new());
        o.builtin_idle_minutes = Some(60);
        let d = decide(&gpu(600, Some(300)), Some(&o), &policy(), now());
        assert_eq!(d.action, Action::Keep);
        assert_eq!(
            d.reason,
            Reason::BuiltinIdleShutdown {
                timeout_minutes: 60
            }
        );
        // Beyond the cap the sweep is the backstop.
        let d = decide(&gpu(25 * 60, Some(300)), Some(&o), &policy(), now());
        assert_eq!(d.reason.key(), "uptime-cap");
        assert!(matches!(d.action, Action::Warn { .. }));
        // A CPU app in such a space has no cap: never touched.
        assert_eq!(
            decide(&cpu(100 * 60, Some(3000)), Some(&o), &policy(), now())
                .reason
                .key(),
            "builtin-idle-shutdown"
        );
    }

    #[test]
    fn builtin_idle_shutdown_is_resolved_like_studio_does() {
        let on = |t: Option<u32>| {
            Some(IdleSetting {
                enabled: Some(true),
                timeout_minutes: t,
            })
        };
        let off = Some(IdleSetting {
            enabled: Some(false),
            timeout_minutes: Some(60),
        });
        let unstated = |t: Option<u32>| {
            Some(IdleSetting {
                enabled: None,
                timeout_minutes: t,
            })
        };
        // Domain enables it: the space's own timeout wins, then the profile's, then the domain's.
        assert_eq!(
            builtin_idle_minutes(Some(90), None, on(Some(120))),
            Some(90)
        );
        assert_eq!(
            builtin_idle_minutes(None, unstated(Some(45)), on(Some(120))),
            Some(45)
        );
        assert_eq!(builtin_idle_minutes(None, None, on(Some(120))), Some(120));
        assert_eq!(builtin_idle_minutes(None, None, on(None)), Some(0));
        // The profile's switch overrides the domain's, either way.
        assert_eq!(builtin_idle_minutes(Some(90), off, on(Some(120))), None);
        assert_eq!(builtin_idle_minutes(None, on(Some(30)), off), Some(30));
        // Nothing enabled: a space timeout alone does not switch it on.
        assert_eq!(builtin_idle_minutes(Some(90), None, None), None);
        assert_eq!(builtin_idle_minutes(Some(90), unstated(None), off), None);
        let d = Decision {
            action: Action::Keep,
            reason: Reason::BuiltinIdleShutdown { timeout_minutes: 0 },
            idle_for: SignedDuration::ZERO,
            notes: vec![],
        };
        assert!(d.explain().contains("its default timeout"));
    }

    #[test]
    fn warned_app_waits_out_the_grace_then_stops() {
        let waiting = tagged(gpu(600, Some(120)), WARNING_TAG, &ago(10).to_string());
        assert_eq!(
            decide_full(&waiting).action,
            Action::AwaitGrace {
                warned_at: ago(10),
                stops_at: ago(10) + SignedDuration::from_mins(30)
            }
        );
        let due = tagged(gpu(600, Some(120)), WARNING_TAG, &ago(30).to_string());
        assert_eq!(
            decide_full(&due).action,
            Action::Stop { warned_at: ago(30) }
        );
        let p = Policy {
            grace: SignedDuration::from_mins(45),
            ..policy()
        };
        assert!(matches!(
            decide(&due, Some(&owner()), &p, now()).action,
            Action::AwaitGrace { .. }
        ));
    }

    #[test]
    fn resumed_activity_clears_the_warning() {
        let app = tagged(gpu(600, Some(5)), WARNING_TAG, &ago(40).to_string());
        let d = decide_full(&app);
        assert_eq!(d.action, Action::ClearWarning);
        assert_eq!(d.reason.key(), "active");
    }

    #[test]
    fn a_warning_older_than_the_latest_activity_is_stale() {
        // Warned 200 min ago, active 100 min ago, idle again since: warn anew instead of stopping.
        let app = tagged(gpu(600, Some(100)), WARNING_TAG, &ago(200).to_string());
        let d = decide_full(&app);
        assert!(matches!(d.action, Action::Warn { .. }), "{d:?}");
        assert!(d.explain().contains("predates the latest activity"));
        // A warning from before the app was (re)created is stale too.
        let app = tagged(gpu(90, None), WARNING_TAG, &ago(100).to_string());
        assert!(matches!(decide_full(&app).action, Action::Warn { .. }));
        // The cap ignores activity, so a warning after creation holds.
        let app = tagged(gpu(25 * 60, Some(1)), WARNING_TAG, &ago(31).to_string());
        assert_eq!(
            decide_full(&app).action,
            Action::Stop { warned_at: ago(31) }
        );
    }

    #[test]
    fn unreadable_or_future_warning_is_replaced() {
        let app = tagged(gpu(600, Some(120)), WARNING_TAG, "soon");
        let d = decide_full(&app);
        assert!(matches!(d.action, Action::Warn { .. }));
        assert!(d.explain().contains("unreadable"));
        let app = tagged(
            gpu(600, Some(120)),
            WARNING_TAG,
            &(now() + SignedDuration::from_hours(48)).to_string(),
        );
        let d = decide_full(&app);
        assert!(matches!(d.action, Action::Warn { .. }));
        assert!(d.explain().contains("in the future"));
        // An unreadable warning on an active app is removed.
        let app = tagged(gpu(600, Some(3)), WARNING_TAG, "soon");
        assert_eq!(decide_full(&app).action, Action::ClearWarning);
    }

    #[test]
    fn unknown_instance_type_or_unmatched_rule_is_kept_and_reported() {
        let p = Policy {
            rules: vec![LimitRule::new("ml.g*", 60, None)],
            ..policy()
        };
        let d = decide(&cpu(6000, None), Some(&owner()), &p, now());
        assert_eq!(d.action, Action::Keep);
        assert_eq!(
            d.reason,
            Reason::NoIdleRule {
                instance_type: "ml.t3.medium".into()
            }
        );
        let mut app = gpu(6000, None);
        app.instance_type = None;
        let d = decide(&app, Some(&owner()), &p, now());
        assert_eq!(
            d.reason,
            Reason::NoIdleRule {
                instance_type: "unknown".into()
            }
        );
        // The default catch-all rule covers an unknown instance type.
        assert!(matches!(
            decide(&app, Some(&owner()), &policy(), now()).action,
            Action::Warn { .. }
        ));
    }

    #[test]
    fn missing_creation_time_is_kept() {
        let mut app = gpu(6000, None);
        app.created = None;
        assert_eq!(decide_full(&app).reason, Reason::NoCreationTime);
    }

    fn listing(
        app_type: &str,
        owner: AppOwner,
        status: &str,
        instance: Option<&str>,
    ) -> AppListing {
        AppListing {
            domain_id: "d-1".into(),
            owner,
            app_type: app_type.into(),
            app_name: "default".into(),
            status: status.into(),
            instance_type: instance.map(str::to_string),
            created: None,
        }
    }

    #[test]
    fn screening_by_app_type_status_and_names() {
        let user = || AppOwner::UserProfile("ana".into());
        let p = Policy {
            excluded_users: BTreeSet::from(["bob".to_string()]),
            excluded_spaces: BTreeSet::from(["shared-demo".to_string()]),
            ..policy()
        };
        for billable in [
            "JupyterLab",
            "CodeEditor",
            "KernelGateway",
            "RSessionGateway",
        ] {
            assert_eq!(
                screen(
                    &listing(billable, user(), "InService", Some("ml.t3.medium")),
                    &p
                ),
                None,
                "{billable}"
            );
        }
        assert_eq!(
            screen(
                &listing("JupyterServer", user(), "InService", Some("system")),
                &p
            ),
            Some(Screened::FreeApp)
        );
        assert_eq!(
            screen(&listing("JupyterServer", user(), "InService", None), &p),
            Some(Screened::FreeApp)
        );
        assert_eq!(
            screen(
                &listing("KernelGateway", user(), "InService", Some("system")),
                &p
            ),
            Some(Screened::FreeApp)
        );
        assert_eq!(
            screen(&listing("TensorBoard", user(), "InService", None), &p),
            Some(Screened::AppTypeNotSwept("TensorBoard".into()))
        );
        for status in ["Pending", "Deleting", "Failed", "Deleted"] {
            let s = screen(&listing("JupyterLab", user(), status, None), &p).unwrap();
            assert_eq!(s.key(), format!("status-{}", status.to_lowercase()));
        }
        let bob = listing(
            "KernelGateway",
            AppOwner::UserProfile("Bob".into()),
            "InService",
            None,
        );
        assert_eq!(screen(&bob, &p), Some(Screened::ExcludedUser("Bob".into())));
        let space = listing(
            "JupyterLab",
            AppOwner::Space("shared-demo".into()),
            "InService",
            None,
        );
        assert_eq!(screen(&space, &p).unwrap().key(), "excluded-space");
        let p = Policy {
            app_types: vec!["JupyterLab".into()],
            ..policy()
        };
        assert_eq!(
            screen(&listing("CodeEditor", user(), "InService", None), &p)
                .unwrap()
                .key(),
            "app-type-not-swept"
        );
    }

    #[test]
    fn space_apps_use_the_same_table() {
        let mut o = owner();
        o.space_tags = Some(Tags::new());
        let d = decide(&gpu(600, Some(90)), Some(&o), &policy(), now());
        assert!(matches!(d.action, Action::Warn { .. }));
        assert_eq!(
            listing(
                "JupyterLab",
                AppOwner::Space("Ana-Space".into()),
                "InService",
                None
            )
            .key(),
            "d-1/space/ana-space/jupyterlab/default"
        );
    }
}
