//! The SageMaker plumbing more than one function's adapter needs, once: reading and writing a resource's tags
//! under the per-operation rate limit, and SageMaker's timestamps as `jiff` ones.

use std::collections::BTreeMap;

use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::Tag;
use jiff::Timestamp;

use crate::error::{AwsCall, AwsCallError};
use crate::throttle::OperationLimiter;

/// ListTags returns at most this many tags per page.
const TAG_PAGE_SIZE: i32 = 100;

/// A SageMaker timestamp as a `jiff` one (`None` when absent or out of range).
pub fn timestamp(t: Option<&DateTime>) -> Option<Timestamp> {
    t.and_then(|t| {
        let nanos = i32::try_from(t.subsec_nanos()).ok()?;
        Timestamp::new(t.secs(), nanos).ok()
    })
}

/// Tags as SageMaker takes them.
pub fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// All tags of a resource, every page read under the `ListTags` rate limit. A tag without a key is not a tag.
pub async fn list_tags(
    client: &aws_sdk_sagemaker::Client,
    limiter: &OperationLimiter,
    arn: &str,
) -> Result<BTreeMap<String, String>, AwsCallError> {
    let pages = client
        .list_tags()
        .resource_arn(arn)
        .max_results(TAG_PAGE_SIZE)
        .into_paginator()
        .send();
    let mut tags = BTreeMap::new();
    limiter
        .each_page(
            "ListTags",
            pages,
            |p| p.next_token(),
            |page| {
                for t in page.tags() {
                    if let Some(key) = t.key() {
                        tags.insert(key.to_string(), t.value().unwrap_or_default().to_string());
                    }
                }
            },
        )
        .await
        .call("ListTags")?;
    Ok(tags)
}

/// Adds (or overwrites) tags on a resource under the `AddTags` rate limit.
pub async fn add_tags(
    client: &aws_sdk_sagemaker::Client,
    limiter: &OperationLimiter,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsCallError> {
    limiter.ready("AddTags").await;
    client
        .add_tags()
        .resource_arn(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .call("AddTags")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_their_nanoseconds() {
        let t = DateTime::from_secs_and_nanos(1_795_000_000, 250_000_000);
        let ts = timestamp(Some(&t)).expect("in range");
        assert_eq!(ts.as_millisecond(), 1_795_000_000_250);
        assert_eq!(timestamp(None), None);
    }

    #[test]
    fn tags_keep_keys_and_values() {
        let tags = BTreeMap::from([("owner".to_string(), "ana".to_string())]);
        let sdk = sdk_tags(&tags);
        assert_eq!(sdk.len(), 1);
        assert_eq!((sdk[0].key(), sdk[0].value()), (Some("owner"), Some("ana")));
    }
}
