//! The Studio ports over one `aws-sdk-sagemaker` client, with a client-side rate limit per SageMaker operation (the
//! account's quotas are per API), so that a large sweep runs every operation at its own limit and none beyond it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::Stream;

use aws_sdk_sagemaker::types::AppType;
use studio_ops_shared::sagemaker::{add_tags, list_tags, timestamp};
use studio_ops_shared::throttle::OperationLimiter;
use studio_ops_shared::throttle::RateLimit;
use studio_ops_shared::{AwsCall, AwsCallError};

use crate::decision::{AppListing, AppOwner, IdleSetting, IdleSettings, Tags};
use crate::ports::{
    AppDescription, DeleteOutcome, ListApps, ProfileDescription, ReadOwners, SpaceDescription,
    StopApps, Tagging,
};

/// A minutes setting as SageMaker gives it; absent, negative or zero is no setting.
fn minutes(m: Option<i32>) -> Option<u32> {
    m.and_then(|m| u32::try_from(m).ok()).filter(|m| *m > 0)
}

/// The idle settings of a domain's `DefaultUserSettings` or a profile's `UserSettings`.
fn idle_settings_of(settings: Option<&aws_sdk_sagemaker::types::UserSettings>) -> IdleSettings {
    use aws_sdk_sagemaker::types::LifecycleManagement;
    let Some(settings) = settings else {
        return IdleSettings::new();
    };
    let lab = settings
        .jupyter_lab_app_settings()
        .and_then(|s| s.app_lifecycle_management())
        .and_then(|m| m.idle_settings());
    let editor = settings
        .code_editor_app_settings()
        .and_then(|s| s.app_lifecycle_management())
        .and_then(|m| m.idle_settings());
    [("JupyterLab", lab), ("CodeEditor", editor)]
        .into_iter()
        .filter_map(|(app_type, idle)| {
            let idle = idle?;
            let setting = IdleSetting {
                enabled: idle
                    .lifecycle_management()
                    .map(|l| *l == LifecycleManagement::Enabled),
                timeout_minutes: minutes(idle.idle_timeout_in_minutes()),
            };
            Some((app_type.to_string(), setting))
        })
        .collect()
}

/// Adapter over one SageMaker client. Every request (each page of a listing too) first takes a token from its
/// operation's bucket.
#[derive(Clone)]
pub struct SageMakerStudio {
    client: aws_sdk_sagemaker::Client,
    limiter: Arc<OperationLimiter>,
}

/// ListApps and ListSpaces return at most this many items per page.
const PAGE_SIZE: i32 = 100;

/// One `ListApps` entry as the sweep sees it; entries without an owner, type or name are logged and skipped.
fn app_listing(domain_id: &str, a: &aws_sdk_sagemaker::types::AppDetails) -> Option<AppListing> {
    let owner = match (a.user_profile_name(), a.space_name()) {
        (_, Some(s)) if !s.is_empty() => AppOwner::Space(s.to_string()),
        (Some(u), _) if !u.is_empty() => AppOwner::UserProfile(u.to_string()),
        _ => {
            tracing::warn!(domain_id, app = ?a.app_name(), "ListApps returned an app with neither user profile nor space; skipped");
            return None;
        }
    };
    let (Some(app_type), Some(app_name)) = (a.app_type(), a.app_name()) else {
        tracing::warn!(
            domain_id,
            "ListApps returned an app without type or name; skipped"
        );
        return None;
    };
    Some(AppListing {
        domain_id: a.domain_id().unwrap_or(domain_id).to_string(),
        owner,
        app_type: app_type.as_str().to_string(),
        app_name: app_name.to_string(),
        status: a
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        instance_type: a
            .resource_spec()
            .and_then(|r| r.instance_type())
            .map(|t| t.as_str().to_string()),
        created: timestamp(a.creation_time()),
    })
}

impl SageMakerStudio {
    pub fn new(client: aws_sdk_sagemaker::Client, rate: RateLimit) -> Self {
        Self::with_limiter(client, Arc::new(OperationLimiter::new(rate)))
    }

    /// An adapter whose requests take their tokens from `limiter` (shared with whoever else holds it).
    pub fn with_limiter(client: aws_sdk_sagemaker::Client, limiter: Arc<OperationLimiter>) -> Self {
        Self { client, limiter }
    }

    async fn token(&self, operation: &'static str) {
        self.limiter.ready(operation).await;
    }
}

impl ListApps for SageMakerStudio {
    async fn list_domains(&self) -> Result<Vec<String>, AwsCallError> {
        let pages = self.client.list_domains().into_paginator().send();
        let mut ids = Vec::new();
        self.limiter
            .each_page(
                "ListDomains",
                pages,
                |p| p.next_token(),
                |page| {
                    ids.extend(
                        page.domains()
                            .iter()
                            .filter_map(|d| d.domain_id().map(str::to_string)),
                    );
                },
            )
            .await
            .call("ListDomains")?;
        Ok(ids)
    }

    fn app_pages<'a>(
        &'a self,
        domain_id: &'a str,
    ) -> impl Stream<Item = Result<Vec<AppListing>, AwsCallError>> + Send + 'a {
        let pages = self
            .client
            .list_apps()
            .domain_id_equals(domain_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        // As in `OperationLimiter::each_page`, but as a stream: a token only for a page that will really be
        // requested. After an error the stream ends; the caller reports the domain.
        futures::stream::unfold((pages, true), move |(mut pages, more)| async move {
            if !more {
                return None;
            }
            self.token("ListApps").await;
            match pages.next().await? {
                Err(e) => Some((Err(AwsCallError::from_sdk("ListApps", &e)), (pages, false))),
                Ok(page) => {
                    let more = page.next_token().is_some_and(|t| !t.is_empty());
                    let apps = page
                        .apps()
                        .iter()
                        .filter_map(|a| app_listing(domain_id, a))
                        .collect();
                    Some((Ok(apps), (pages, more)))
                }
            }
        })
    }

    async fn list_space_owners(
        &self,
        domain_id: &str,
    ) -> Result<BTreeMap<String, String>, AwsCallError> {
        let pages = self
            .client
            .list_spaces()
            .domain_id_equals(domain_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut owners = BTreeMap::new();
        self.limiter
            .each_page(
                "ListSpaces",
                pages,
                |p| p.next_token(),
                |page| {
                    for s in page.spaces() {
                        if let (Some(name), Some(owner)) = (
                            s.space_name(),
                            s.ownership_settings_summary()
                                .and_then(|o| o.owner_user_profile_name()),
                        ) {
                            owners.insert(name.to_lowercase(), owner.to_string());
                        }
                    }
                },
            )
            .await
            .call("ListSpaces")?;
        Ok(owners)
    }

    async fn describe_app(&self, app: &AppListing) -> Result<Option<AppDescription>, AwsCallError> {
        self.token("DescribeApp").await;
        let out = self
            .client
            .describe_app()
            .domain_id(&app.domain_id)
            .set_user_profile_name(app.owner.user_profile().map(str::to_string))
            .set_space_name(app.owner.space().map(str::to_string))
            .app_type(AppType::from(app.app_type.as_str()))
            .app_name(&app.app_name)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => return AwsCallError::from_sdk("DescribeApp", &e).absent(),
        };
        let arn = out
            .app_arn()
            .ok_or_else(|| AwsCallError::malformed("DescribeApp", "AppArn"))?;
        Ok(Some(AppDescription {
            arn: arn.to_string(),
            status: out
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            instance_type: out
                .resource_spec()
                .and_then(|r| r.instance_type())
                .map(|t| t.as_str().to_string()),
            created: timestamp(out.creation_time()),
            last_health_check: timestamp(out.last_health_check_timestamp()),
            last_user_activity: timestamp(out.last_user_activity_timestamp()),
        }))
    }
}

impl ReadOwners for SageMakerStudio {
    async fn domain_idle_settings(&self, domain_id: &str) -> Result<IdleSettings, AwsCallError> {
        self.token("DescribeDomain").await;
        let out = self
            .client
            .describe_domain()
            .domain_id(domain_id)
            .send()
            .await
            .call("DescribeDomain")?;
        Ok(idle_settings_of(out.default_user_settings()))
    }

    async fn describe_space(
        &self,
        domain_id: &str,
        space_name: &str,
    ) -> Result<SpaceDescription, AwsCallError> {
        self.token("DescribeSpace").await;
        let out = self
            .client
            .describe_space()
            .domain_id(domain_id)
            .space_name(space_name)
            .send()
            .await
            .call("DescribeSpace")?;
        let arn = out
            .space_arn()
            .ok_or_else(|| AwsCallError::malformed("DescribeSpace", "SpaceArn"))?;
        let mut timeouts = BTreeMap::new();
        if let Some(settings) = out.space_settings() {
            let lab = settings
                .jupyter_lab_app_settings()
                .and_then(|s| s.app_lifecycle_management())
                .and_then(|m| m.idle_settings())
                .and_then(|i| i.idle_timeout_in_minutes());
            let editor = settings
                .code_editor_app_settings()
                .and_then(|s| s.app_lifecycle_management())
                .and_then(|m| m.idle_settings())
                .and_then(|i| i.idle_timeout_in_minutes());
            for (app_type, m) in [("JupyterLab", lab), ("CodeEditor", editor)] {
                if let Some(m) = minutes(m) {
                    timeouts.insert(app_type.to_string(), m);
                }
            }
        }
        Ok(SpaceDescription {
            arn: arn.to_string(),
            owner_user_profile: out
                .ownership_settings()
                .and_then(|o| o.owner_user_profile_name())
                .map(str::to_string),
            idle_timeout_minutes: timeouts,
        })
    }

    async fn describe_user_profile(
        &self,
        domain_id: &str,
        user_profile_name: &str,
    ) -> Result<ProfileDescription, AwsCallError> {
        self.token("DescribeUserProfile").await;
        let out = self
            .client
            .describe_user_profile()
            .domain_id(domain_id)
            .user_profile_name(user_profile_name)
            .send()
            .await
            .call("DescribeUserProfile")?;
        let arn = out
            .user_profile_arn()
            .ok_or_else(|| AwsCallError::malformed("DescribeUserProfile", "UserProfileArn"))?;
        Ok(ProfileDescription {
            arn: arn.to_string(),
            idle: idle_settings_of(out.user_settings()),
        })
    }
}

impl Tagging for SageMakerStudio {
    async fn list_tags(&self, arn: &str) -> Result<Tags, AwsCallError> {
        list_tags(&self.client, &self.limiter, arn).await
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> Result<(), AwsCallError> {
        add_tags(&self.client, &self.limiter, arn, tags).await
    }

    async fn delete_tags(&self, arn: &str, keys: &[&str]) -> Result<(), AwsCallError> {
        self.token("DeleteTags").await;
        self.client
            .delete_tags()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.iter().map(|k| k.to_string()).collect()))
            .send()
            .await
            .call("DeleteTags")?;
        Ok(())
    }
}

impl StopApps for SageMakerStudio {
    async fn delete_app(&self, app: &AppListing) -> Result<DeleteOutcome, AwsCallError> {
        self.token("DeleteApp").await;
        let result = self
            .client
            .delete_app()
            .domain_id(&app.domain_id)
            .set_user_profile_name(app.owner.user_profile().map(str::to_string))
            .set_space_name(app.owner.space().map(str::to_string))
            .app_type(AppType::from(app.app_type.as_str()))
            .app_name(&app.app_name)
            .send()
            .await;
        match result {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(e) => {
                let err = AwsCallError::from_sdk("DeleteApp", &e);
                if err.is("ResourceNotFound") {
                    Ok(DeleteOutcome::AlreadyGone)
                } else if err.is("ResourceInUse") {
                    Ok(DeleteOutcome::InUse(err.message))
                } else {
                    Err(err)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemaker::operation::delete_app::{DeleteAppError, DeleteAppOutput};
    use aws_sdk_sagemaker::operation::describe_app::{DescribeAppError, DescribeAppOutput};
    use aws_sdk_sagemaker::types::Tag;
    use aws_sdk_sagemaker::types::error::{ResourceInUse, ResourceNotFound};
    use aws_sdk_sagemaker::types::{AppStatus, ResourceSpec};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use jiff::Timestamp;
    use std::num::NonZeroU32;

    fn meta(code: &str, message: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message(message)
            .build()
    }

    fn rate() -> RateLimit {
        RateLimit {
            per_second: NonZeroU32::new(100).unwrap(),
            burst: NonZeroU32::new(100).unwrap(),
        }
    }

    fn space_app() -> AppListing {
        AppListing {
            domain_id: "d-1".into(),
            owner: AppOwner::Space("ana-space".into()),
            app_type: "JupyterLab".into(),
            app_name: "default".into(),
            status: "InService".into(),
            instance_type: None,
            created: None,
        }
    }

    #[tokio::test]
    async fn delete_app_maps_not_found_and_in_use_and_sends_space_name() {
        let ok = mock!(aws_sdk_sagemaker::Client::delete_app)
            .match_requests(|r| {
                r.space_name() == Some("ana-space") && r.user_profile_name().is_none()
            })
            .then_output(|| DeleteAppOutput::builder().build());
        let gone = mock!(aws_sdk_sagemaker::Client::delete_app).then_error(|| {
            DeleteAppError::ResourceNotFound(
                ResourceNotFound::builder()
                    .message("gone")
                    .meta(meta("ResourceNotFound", "gone"))
                    .build(),
            )
        });
        let busy = mock!(aws_sdk_sagemaker::Client::delete_app).then_error(|| {
            DeleteAppError::ResourceInUse(
                ResourceInUse::builder()
                    .message("Deleting")
                    .meta(meta("ResourceInUse", "App is Deleting"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sagemaker, RuleMode::Sequential, [&ok, &gone, &busy]);
        let studio = SageMakerStudio::new(client, rate());
        assert_eq!(
            studio.delete_app(&space_app()).await.unwrap(),
            DeleteOutcome::Deleted
        );
        assert_eq!(
            studio.delete_app(&space_app()).await.unwrap(),
            DeleteOutcome::AlreadyGone
        );
        assert!(
            matches!(studio.delete_app(&space_app()).await.unwrap(), DeleteOutcome::InUse(m) if m.contains("Deleting"))
        );
    }

    #[tokio::test]
    async fn describe_app_reads_timestamps_and_treats_not_found_as_gone() {
        let found = mock!(aws_sdk_sagemaker::Client::describe_app).then_output(|| {
            DescribeAppOutput::builder()
                .app_arn(
                    "arn:aws:sagemaker:us-east-1:123456789012:app/d-1/ana-space/jupyterlab/default",
                )
                .status(AppStatus::InService)
                .creation_time(aws_sdk_sagemaker::primitives::DateTime::from_secs(
                    1_700_000_000,
                ))
                .last_health_check_timestamp(aws_sdk_sagemaker::primitives::DateTime::from_millis(
                    1_700_000_600_500,
                ))
                .resource_spec(
                    ResourceSpec::builder()
                        .instance_type("ml.g5.xlarge".into())
                        .build(),
                )
                .build()
        });
        let missing = mock!(aws_sdk_sagemaker::Client::describe_app).then_error(|| {
            DescribeAppError::ResourceNotFound(
                ResourceNotFound::builder()
                    .message("no")
                    .meta(meta("ResourceNotFound", "no"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sagemaker, RuleMode::Sequential, [&found, &missing]);
        let studio = SageMakerStudio::new(client, rate());
        let d = studio.describe_app(&space_app()).await.unwrap().unwrap();
        assert_eq!(d.status, "InService");
        assert_eq!(d.instance_type.as_deref(), Some("ml.g5.xlarge"));
        assert_eq!(
            d.created,
            Some(Timestamp::from_second(1_700_000_000).unwrap())
        );
        assert_eq!(
            d.last_health_check,
            Some(Timestamp::from_millisecond(1_700_000_600_500).unwrap())
        );
        assert_eq!(d.last_user_activity, None);
        assert_eq!(studio.describe_app(&space_app()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn each_request_takes_exactly_one_token_of_its_operation() {
        use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
        let tag = |k: &str| Tag::builder().key(k).value("v").build();
        let single = mock!(aws_sdk_sagemaker::Client::list_tags)
            .then_output(move || ListTagsOutput::builder().tags(tag("a")).build());
        let first = mock!(aws_sdk_sagemaker::Client::list_tags)
            .match_requests(|r| r.next_token().is_none())
            .then_output(move || {
                ListTagsOutput::builder()
                    .tags(tag("b"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_sagemaker::Client::list_tags)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(move || ListTagsOutput::builder().tags(tag("c")).build());
        let client = mock_client!(
            aws_sdk_sagemaker,
            RuleMode::Sequential,
            [&single, &first, &second]
        );
        // One token per second: none comes back while the test runs, so the count below is exact.
        let limiter = Arc::new(OperationLimiter::new(RateLimit {
            per_second: NonZeroU32::MIN,
            burst: NonZeroU32::new(4).unwrap(),
        }));
        let studio = SageMakerStudio::with_limiter(client, limiter.clone());
        assert_eq!(studio.list_tags("arn:1").await.unwrap().len(), 1);
        let two_pages = studio.list_tags("arn:2").await.unwrap();
        assert_eq!(two_pages.keys().collect::<Vec<_>>(), ["b", "c"]);
        // Three requests were sent: one token of the burst of four is left, and other operations are untouched.
        assert!(limiter.try_ready("ListTags"), "a request took two tokens");
        assert!(!limiter.try_ready("ListTags"), "a request took no token");
        assert!(limiter.try_ready("DescribeApp"));
        assert_eq!(
            single.num_calls() + first.num_calls() + second.num_calls(),
            3
        );
    }
}
