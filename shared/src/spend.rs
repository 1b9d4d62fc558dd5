//! The spend ledger's records, one format for the two functions that write them: idle-shutdown meters Studio apps
//! (kind `studio-app`), train-on-push records what a finished training job cost (kind `training-job`). In the spend
//! table (`SpendTable`): partition `pk` = `<domain>#<month>`, sort key `sk` = the record's key; attributes `kind`,
//! `account` (`user/ana`, `space/team-lab`, `repository/models`), `space`, `appType`, `appName`, `instanceType`,
//! `created`, `until`, `seconds` (N), `days` (M: `2026-12-05` → N seconds), `usdPerHour` and `usd` (N, absent when
//! unpriced), `expiration` (N: [`LEDGER_RETENTION`] after the month). A record is written whole with a conditional
//! put that only a later reading passes ([`put_usage`]), so a record written twice, or replayed, counts once.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::error::AwsCallError;

/// The kind of spend a Studio app's run time is.
pub const KIND_STUDIO_APP: &str = "studio-app";
/// The kind of spend a training job's billed time is.
pub const KIND_TRAINING_JOB: &str = "training-job";
/// How long a month's spend records are kept after the month: a year and a month, for a year-on-year comparison.
pub const LEDGER_RETENTION: SignedDuration = SignedDuration::from_hours(400 * 24);

/// Who a usage is billed to: the user profile (its own apps, its private spaces' apps, the training jobs of its
/// commits), the shared space, or the repository (a training job whose author maps to no profile).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Account {
    User(String),
    Space(String),
    Repository(String),
}

impl Account {
    /// `user/ana`, `space/team-lab`, `repository/models`: the form items and budgets name an account by (lower case).
    pub fn key(&self) -> String {
        match self {
            Account::User(u) => format!("user/{}", u.to_lowercase()),
            Account::Space(s) => format!("space/{}", s.to_lowercase()),
            Account::Repository(r) => format!("repository/{}", r.to_lowercase()),
        }
    }

    /// Reads [`Account::key`]'s form.
    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, name) = key.split_once('/')?;
        if name.is_empty() {
            return None;
        }
        match kind {
            "user" => Some(Account::User(name.to_string())),
            "space" => Some(Account::Space(name.to_string())),
            "repository" => Some(Account::Repository(name.to_string())),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Account::User(n) | Account::Space(n) | Account::Repository(n) => n,
        }
    }
}

/// One app incarnation's run time within one month, as known up to `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub domain_id: String,
    /// `2026-12`.
    pub month: String,
    /// The record's key within its domain and month ([`usage_key`]).
    pub key: String,
    pub kind: String,
    pub account: Account,
    /// The space the app ran in, if any.
    pub space: Option<String>,
    pub app_type: String,
    pub app_name: String,
    pub instance_type: String,
    /// The incarnation's `CreationTime` (seconds).
    pub created: i64,
    /// Metered up to this time (seconds, exclusive).
    pub until: i64,
    /// Run seconds within the month, up to `until`.
    pub seconds: i64,
    /// Run seconds per day of the month (`2026-12-05` → seconds); they add up to `seconds`.
    pub days: BTreeMap<String, i64>,
    /// The hourly price it is counted at; `None`: unpriced, counted in hours only.
    pub usd_per_hour: Option<f64>,
}

impl Usage {
    pub fn hours(&self) -> f64 {
        self.seconds as f64 / 3600.0
    }

    /// What it cost, if priced.
    pub fn usd(&self) -> Option<f64> {
        self.usd_per_hour.map(|p| p * self.hours())
    }
}

/// `2026-12` for a time (UTC).
pub fn month_of(t: Timestamp) -> String {
    let d = t.to_zoned_datetime(TimeZone::UTC).date();
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Reads a month (`2026-12`), refusing anything else.
pub fn parse_month(month: &str) -> Option<Date> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok()
}

/// A day's first second (UTC).
pub fn day_start(day: Date) -> i64 {
    day.to_zoned_datetime(TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or(i64::MAX)
}

/// A month's first and one-past-last second (UTC).
pub fn month_bounds(first: Date) -> (i64, i64) {
    let first = first.first_of_month();
    let next = first.checked_add(1.month()).unwrap_or(first);
    (day_start(first), day_start(next))
}

/// The partition of a domain's month in the spend table.
pub fn ledger_partition(domain_id: &str, month: &str) -> String {
    format!("{domain_id}#{month}")
}

/// When a month's items expire: [`LEDGER_RETENTION`] after the month (after `fallback` if the month does not read).
pub fn month_expiry(month: &str, fallback: i64) -> i64 {
    parse_month(month).map_or(fallback, |m| month_bounds(m).1) + LEDGER_RETENTION.as_secs()
}

/// The ledger item of a record (the whole record: a put replaces the item).
pub fn usage_item(usage: &Usage) -> HashMap<String, AttributeValue> {
    let expires = month_expiry(&usage.month, usage.until);
    let mut item = HashMap::from([
        (
            "pk".to_string(),
            s(ledger_partition(&usage.domain_id, &usage.month)),
        ),
        ("sk".to_string(), s(&usage.key)),
        ("kind".to_string(), s(&usage.kind)),
        ("account".to_string(), s(usage.account.key())),
        ("appType".to_string(), s(&usage.app_type)),
        ("appName".to_string(), s(&usage.app_name)),
        ("instanceType".to_string(), s(&usage.instance_type)),
        ("created".to_string(), n(usage.created)),
        ("until".to_string(), n(usage.until)),
        ("seconds".to_string(), n(usage.seconds)),
        (
            "days".to_string(),
            AttributeValue::M(
                usage
                    .days
                    .iter()
                    .map(|(d, secs)| (d.clone(), n(*secs)))
                    .collect(),
            ),
        ),
        ("expiration".to_string(), n(expires)),
    ]);
    if let Some(space) = &usage.space {
        item.insert("space".into(), s(space));
    }
    if let Some(price) = usage.usd_per_hour {
        item.insert("usdPerHour".into(), AttributeValue::N(price.to_string()));
        if let Some(usd) = usage.usd() {
            item.insert("usd".into(), AttributeValue::N(format!("{usd:.6}")));
        }
    }
    item
}

/// A ledger item as written by [`usage_item`]; `None` for one that does not read (reported, never guessed).
pub fn usage_of(
    domain_id: &str,
    month: &str,
    item: &HashMap<String, AttributeValue>,
) -> Option<Usage> {
    let days = match item.get("days") {
        // Left out by the sweep's projection.
        None => BTreeMap::new(),
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(d, v)| Some((d.clone(), v.as_n().ok()?.parse().ok()?)))
            .collect::<Option<BTreeMap<String, i64>>>()?,
        Some(_) => return None,
    };
    let usd_per_hour = match item.get("usdPerHour") {
        None => None,
        Some(v) => Some(v.as_n().ok()?.parse::<f64>().ok()?),
    };
    Some(Usage {
        domain_id: domain_id.to_string(),
        month: month.to_string(),
        key: string(item, "sk")?.to_string(),
        kind: string(item, "kind")?.to_string(),
        account: Account::from_key(string(item, "account")?)?,
        space: string(item, "space").map(str::to_string),
        app_type: string(item, "appType")?.to_string(),
        app_name: string(item, "appName")?.to_string(),
        instance_type: string(item, "instanceType")?.to_string(),
        created: number(item, "created")?,
        until: number(item, "until")?,
        seconds: number(item, "seconds")?,
        days,
        usd_per_hour,
    })
}

/// Writes a record unless the ledger holds a later reading of it (`until` later or equal): `false` then — a value,
/// not an error.
pub async fn put_usage(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    usage: &Usage,
) -> Result<bool, AwsCallError> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(usage_item(usage)))
        .condition_expression("attribute_not_exists(#until) OR #until < :until")
        .expression_attribute_names("#until", "until")
        .expression_attribute_values(":until", n(usage.until))
        .send()
        .await;
    conditional(result, "PutItem")
}

/// A DynamoDB string attribute (the spend table's and idle-shutdown's sweep-state items).
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A DynamoDB number attribute.
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item's number attribute, if it reads as a whole number.
pub fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// An item's string attribute.
pub fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// A conditional write's answer: `true` when it passed, `false` when its condition failed — a value, not an error.
pub fn conditional<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    operation: &'static str,
) -> Result<bool, AwsCallError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(AwsCallError::from_sdk(operation, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spend_record_reads_back_as_written() {
        let usage = Usage {
            domain_id: "d-test".into(),
            month: "2026-12".into(),
            key: "app#space/team/jupyterlab/default#1796076000".into(),
            kind: KIND_STUDIO_APP.into(),
            account: Account::Space("team".into()),
            space: Some("team".into()),
            app_type: "JupyterLab".into(),
            app_name: "default".into(),
            instance_type: "ml.g5.xlarge".into(),
            created: 1_796_076_000,
            until: 1_796_083_200,
            seconds: 7200,
            days: BTreeMap::from([("2026-12-01".into(), 7200)]),
            usd_per_hour: Some(1.41),
        };
        let item = usage_item(&usage);
        assert_eq!(string(&item, "pk"), Some("d-test#2026-12"));
        assert_eq!(usage_of("d-test", "2026-12", &item), Some(usage.clone()));
        let unpriced = Usage {
            usd_per_hour: None,
            ..usage
        };
        let item = usage_item(&unpriced);
        assert!(!item.contains_key("usd"));
        assert_eq!(usage_of("d-test", "2026-12", &item), Some(unpriced.clone()));
        let repository = Usage {
            account: Account::Repository("models".into()),
            kind: KIND_TRAINING_JOB.into(),
            ..unpriced.clone()
        };
        let item = usage_item(&repository);
        assert_eq!(string(&item, "account"), Some("repository/models"));
        assert_eq!(usage_of("d-test", "2026-12", &item), Some(repository));
        let mut broken = item.clone();
        broken.insert("account".into(), s("group/x"));
        assert_eq!(usage_of("d-test", "2026-12", &broken), None);
    }
}
