//! Adapter: the Studio ports (profiles, tags, spaces, apps) over one `aws-sdk-sagemaker` client and one Studio
//! domain. Every request (each page of a listing too) first takes a token from its operation's rate limiter, so
//! that a 1,000-profile reconcile stays under the account's per-API SageMaker limits, which Studio's own console
//! and idle-shutdown share. A failed call is retried by the SDK alone (its standard mode, configured in
//! `studio_ops_shared::aws`); what is left is an `AwsCallError`, or a domain outcome (gone, busy, exists).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use aws_sdk_sagemaker::types::{
    AppInstanceType, AppLifecycleManagement, AppType, CodeEditorAppSettings, EbsStorageSettings,
    IdleSettings, JupyterLabAppSettings, LifecycleManagement, OwnershipSettings, ResourceSpec,
    SharingType, SpaceAppLifecycleManagement, SpaceCodeEditorAppSettings, SpaceIdleSettings,
    SpaceJupyterLabAppSettings, SpaceSettings, SpaceSharingSettings, SpaceStorageSettings,
    UserSettings,
};
use studio_ops_shared::sagemaker::{self, sdk_tags, timestamp};
use studio_ops_shared::throttle::{OperationLimiter, RateLimit};
use studio_ops_shared::{AwsCall, AwsCallError};

use crate::ports::{
    AppOwner, AppPort, AppRef, Change, Created, NewProfile, NewSpace, ProfileDetail, ProfilePort,
    ProfileSummary, RESOURCE_IN_USE, RESOURCE_NOT_FOUND, SpacePort, SpaceSummary, TagPort,
};
use crate::settings::{ProfileSettings, SharedSpaceSpec, SpaceAppType};

#[derive(Clone)]
pub struct SageMakerStudio {
    client: aws_sdk_sagemaker::Client,
    domain_id: String,
    limiter: Arc<OperationLimiter>,
}

/// ListUserProfiles, ListSpaces and ListApps pages.
const PAGE_SIZE: i32 = 100;

impl SageMakerStudio {
    /// `calls_per_second` is both the steady rate and the burst, for each SageMaker operation.
    pub fn new(
        client: aws_sdk_sagemaker::Client,
        domain_id: impl Into<String>,
        calls_per_second: NonZeroU32,
    ) -> Self {
        Self {
            client,
            domain_id: domain_id.into(),
            limiter: Arc::new(OperationLimiter::new(RateLimit::per_second(
                calls_per_second,
            ))),
        }
    }

    async fn token(&self, operation: &'static str) {
        self.limiter.ready(operation).await;
    }
}

/// The `UserSettings` for a profile; `None` leaves everything to the domain's defaults.
pub fn user_settings(s: &ProfileSettings) -> Option<UserSettings> {
    if *s == ProfileSettings::default() {
        return None;
    }
    let spec = s.default_instance_type.as_deref().map(|t| {
        ResourceSpec::builder()
            .instance_type(AppInstanceType::from(t))
            .build()
    });
    let lifecycle = s.idle_timeout_minutes.map(|m| {
        AppLifecycleManagement::builder()
            .idle_settings(
                IdleSettings::builder()
                    .lifecycle_management(LifecycleManagement::Enabled)
                    .idle_timeout_in_minutes(i32::try_from(m).unwrap_or(i32::MAX))
                    .build(),
            )
            .build()
    });
    let mut b = UserSettings::builder().set_execution_role(s.execution_role_arn.clone());
    if !s.security_group_ids.is_empty() {
        b = b.set_security_groups(Some(s.security_group_ids.clone()));
    }
    if spec.is_some() || lifecycle.is_some() {
        b = b
            .jupyter_lab_app_settings(
                JupyterLabAppSettings::builder()
                    .set_default_resource_spec(spec.clone())
                    .set_app_lifecycle_management(lifecycle.clone())
                    .build(),
            )
            .code_editor_app_settings(
                CodeEditorAppSettings::builder()
                    .set_default_resource_spec(spec)
                    .set_app_lifecycle_management(lifecycle)
                    .build(),
            );
    }
    Some(b.build())
}

/// A delete/update answer: ResourceNotFound is done, ResourceInUse is "not now".
/// A team shared space's `SpaceSettings`: its app's default instance type and idle shutdown, and its volume size;
/// the app type only on creation.
fn shared_space_settings(spec: &SharedSpaceSpec, with_app_type: bool) -> SpaceSettings {
    let resource = spec.default_instance_type.as_deref().map(|t| {
        ResourceSpec::builder()
            .instance_type(AppInstanceType::from(t))
            .build()
    });
    let lifecycle = spec.idle_timeout_minutes.map(|m| {
        SpaceAppLifecycleManagement::builder()
            .idle_settings(
                SpaceIdleSettings::builder()
                    .idle_timeout_in_minutes(i32::try_from(m).unwrap_or(i32::MAX))
                    .build(),
            )
            .build()
    });
    let mut settings = SpaceSettings::builder();
    settings = match spec.app_type {
        SpaceAppType::JupyterLab => settings.jupyter_lab_app_settings(
            SpaceJupyterLabAppSettings::builder()
                .set_default_resource_spec(resource)
                .set_app_lifecycle_management(lifecycle)
                .build(),
        ),
        SpaceAppType::CodeEditor => settings.code_editor_app_settings(
            SpaceCodeEditorAppSettings::builder()
                .set_default_resource_spec(resource)
                .set_app_lifecycle_management(lifecycle)
                .build(),
        ),
    };
    if with_app_type {
        settings = settings.app_type(AppType::from(spec.app_type.as_str()));
    }
    if let Some(gb) = spec.ebs_size_gb {
        settings = settings.space_storage_settings(
            SpaceStorageSettings::builder()
                .ebs_storage_settings(
                    EbsStorageSettings::builder()
                        .ebs_volume_size_in_gb(i32::try_from(gb).unwrap_or(i32::MAX))
                        .build(),
                )
                .build(),
        );
    }
    settings.build()
}

fn change<T>(result: Result<T, AwsCallError>) -> Result<Change, AwsCallError> {
    match result {
        Ok(_) => Ok(Change::Accepted),
        Err(e) if e.is(RESOURCE_NOT_FOUND) => Ok(Change::AlreadyGone),
        Err(e) if e.is(RESOURCE_IN_USE) => Ok(Change::Busy(e.message)),
        Err(e) => Err(e),
    }
}

/// A create answer: ResourceInUse means the name exists already.
fn created<T>(result: Result<T, AwsCallError>) -> Result<Created, AwsCallError> {
    match result {
        Ok(_) => Ok(Created::Created),
        Err(e) if e.is(RESOURCE_IN_USE) => Ok(Created::AlreadyExists),
        Err(e) => Err(e),
    }
}

/// A SageMaker status enum as text (empty when absent).
fn status<S: AsRef<str>>(s: Option<S>) -> String {
    s.map(|s| s.as_ref().to_string()).unwrap_or_default()
}

impl ProfilePort for SageMakerStudio {
    async fn domain_exists(&self) -> Result<bool, AwsCallError> {
        self.token("DescribeDomain").await;
        let found = self
            .client
            .describe_domain()
            .domain_id(&self.domain_id)
            .send()
            .await
            .call("DescribeDomain")
            .map(|_| Some(()))
            .or_else(AwsCallError::absent)?;
        Ok(found.is_some())
    }

    async fn list_profiles(&self) -> Result<Vec<ProfileSummary>, AwsCallError> {
        let pages = self
            .client
            .list_user_profiles()
            .domain_id_equals(&self.domain_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        self.limiter
            .each_page(
                "ListUserProfiles",
                pages,
                |p| p.next_token(),
                |page| {
                    for p in page.user_profiles() {
                        let Some(name) = p.user_profile_name() else {
                            continue;
                        };
                        out.push(ProfileSummary {
                            name: name.to_string(),
                            status: status(p.status()),
                            created: timestamp(p.creation_time()),
                        });
                    }
                },
            )
            .await
            .call("ListUserProfiles")?;
        Ok(out)
    }

    async fn describe_profile(&self, name: &str) -> Result<Option<ProfileDetail>, AwsCallError> {
        self.token("DescribeUserProfile").await;
        let Some(out) = self
            .client
            .describe_user_profile()
            .domain_id(&self.domain_id)
            .user_profile_name(name)
            .send()
            .await
            .call("DescribeUserProfile")
            .map(Some)
            .or_else(AwsCallError::absent)?
        else {
            return Ok(None);
        };
        let arn = out
            .user_profile_arn()
            .ok_or_else(|| AwsCallError::malformed("DescribeUserProfile", "UserProfileArn"))?;
        Ok(Some(ProfileDetail {
            name: out.user_profile_name().unwrap_or(name).to_string(),
            arn: arn.to_string(),
            status: status(out.status()),
            created: timestamp(out.creation_time()),
            sso_user_value: out.single_sign_on_user_value().map(str::to_string),
            home_efs_uid: out.home_efs_file_system_uid().map(str::to_string),
        }))
    }

    async fn create_profile(&self, profile: &NewProfile) -> Result<Created, AwsCallError> {
        self.token("CreateUserProfile").await;
        created(
            self.client
                .create_user_profile()
                .domain_id(&self.domain_id)
                .user_profile_name(&profile.name)
                .single_sign_on_user_identifier("UserName")
                .single_sign_on_user_value(&profile.sso_user_name)
                .set_user_settings(user_settings(&profile.settings))
                .set_tags(Some(sdk_tags(&profile.tags)))
                .send()
                .await
                .call("CreateUserProfile"),
        )
    }

    async fn update_profile(
        &self,
        name: &str,
        settings: &ProfileSettings,
    ) -> Result<Change, AwsCallError> {
        self.token("UpdateUserProfile").await;
        change(
            self.client
                .update_user_profile()
                .domain_id(&self.domain_id)
                .user_profile_name(name)
                .set_user_settings(user_settings(settings))
                .send()
                .await
                .call("UpdateUserProfile"),
        )
    }

    async fn delete_profile(&self, name: &str) -> Result<Change, AwsCallError> {
        self.token("DeleteUserProfile").await;
        change(
            self.client
                .delete_user_profile()
                .domain_id(&self.domain_id)
                .user_profile_name(name)
                .send()
                .await
                .call("DeleteUserProfile"),
        )
    }
}

impl TagPort for SageMakerStudio {
    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsCallError> {
        sagemaker::list_tags(&self.client, &self.limiter, arn).await
    }

    async fn add_tags(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsCallError> {
        sagemaker::add_tags(&self.client, &self.limiter, arn, tags).await
    }
}

impl SpacePort for SageMakerStudio {
    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>, AwsCallError> {
        let pages = self
            .client
            .list_spaces()
            .domain_id_equals(&self.domain_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        self.limiter
            .each_page(
                "ListSpaces",
                pages,
                |p| p.next_token(),
                |page| {
                    for s in page.spaces() {
                        let Some(name) = s.space_name() else {
                            continue;
                        };
                        out.push(SpaceSummary {
                            name: name.to_string(),
                            status: status(s.status()),
                            owner: s
                                .ownership_settings_summary()
                                .and_then(|o| o.owner_user_profile_name())
                                .map(str::to_string),
                            sharing: s
                                .space_sharing_settings_summary()
                                .and_then(|x| x.sharing_type())
                                .map(|t| t.as_str().to_string()),
                            app_type: s
                                .space_settings_summary()
                                .and_then(|x| x.app_type())
                                .map(|t| t.as_str().to_string()),
                            arn: None,
                            ebs_size_gb: None,
                        });
                    }
                },
            )
            .await
            .call("ListSpaces")?;
        Ok(out)
    }

    async fn describe_space(&self, name: &str) -> Result<Option<SpaceSummary>, AwsCallError> {
        self.token("DescribeSpace").await;
        let found = self
            .client
            .describe_space()
            .domain_id(&self.domain_id)
            .space_name(name)
            .send()
            .await
            .call("DescribeSpace")
            .map(Some)
            .or_else(AwsCallError::absent)?;
        Ok(found.map(|out| SpaceSummary {
            name: out.space_name().unwrap_or(name).to_string(),
            status: status(out.status()),
            owner: out
                .ownership_settings()
                .and_then(|o| o.owner_user_profile_name())
                .map(str::to_string),
            sharing: out
                .space_sharing_settings()
                .and_then(|x| x.sharing_type())
                .map(|t| t.as_str().to_string()),
            app_type: out
                .space_settings()
                .and_then(|x| x.app_type())
                .map(|t| t.as_str().to_string()),
            arn: out.space_arn().map(str::to_string),
            ebs_size_gb: out
                .space_settings()
                .and_then(|x| x.space_storage_settings())
                .and_then(|x| x.ebs_storage_settings())
                .and_then(|e| e.ebs_volume_size_in_gb())
                .and_then(|gb| u32::try_from(gb).ok()),
        }))
    }

    async fn create_shared_space(
        &self,
        spec: &SharedSpaceSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<Created, AwsCallError> {
        self.token("CreateSpace").await;
        created(
            self.client
                .create_space()
                .domain_id(&self.domain_id)
                .space_name(&spec.name)
                .space_display_name(spec.display_name.as_deref().unwrap_or(&spec.name))
                .space_sharing_settings(
                    SpaceSharingSettings::builder()
                        .sharing_type(SharingType::Shared)
                        .build(),
                )
                .space_settings(shared_space_settings(spec, true))
                .set_tags(Some(sdk_tags(tags)))
                .send()
                .await
                .call("CreateSpace"),
        )
    }

    async fn update_shared_space(&self, spec: &SharedSpaceSpec) -> Result<Change, AwsCallError> {
        self.token("UpdateSpace").await;
        change(
            self.client
                .update_space()
                .domain_id(&self.domain_id)
                .space_name(&spec.name)
                .space_display_name(spec.display_name.as_deref().unwrap_or(&spec.name))
                // SageMaker refuses a new app type: the settings are sent without it.
                .space_settings(shared_space_settings(spec, false))
                .send()
                .await
                .call("UpdateSpace"),
        )
    }

    async fn create_space(&self, space: &NewSpace) -> Result<Created, AwsCallError> {
        let jupyter = space.instance_type.as_deref().map(|t| {
            SpaceJupyterLabAppSettings::builder()
                .default_resource_spec(
                    ResourceSpec::builder()
                        .instance_type(AppInstanceType::from(t))
                        .build(),
                )
                .build()
        });
        self.token("CreateSpace").await;
        created(
            self.client
                .create_space()
                .domain_id(&self.domain_id)
                .space_name(&space.name)
                .space_display_name(&space.display_name)
                .ownership_settings(
                    OwnershipSettings::builder()
                        .owner_user_profile_name(&space.owner)
                        .build(),
                )
                .space_sharing_settings(
                    SpaceSharingSettings::builder()
                        .sharing_type(SharingType::Private)
                        .build(),
                )
                .space_settings(
                    SpaceSettings::builder()
                        .app_type(AppType::JupyterLab)
                        .set_jupyter_lab_app_settings(jupyter)
                        .build(),
                )
                .set_tags(Some(sdk_tags(&space.tags)))
                .send()
                .await
                .call("CreateSpace"),
        )
    }

    async fn delete_space(&self, name: &str) -> Result<Change, AwsCallError> {
        self.token("DeleteSpace").await;
        change(
            self.client
                .delete_space()
                .domain_id(&self.domain_id)
                .space_name(name)
                .send()
                .await
                .call("DeleteSpace"),
        )
    }
}

impl AppPort for SageMakerStudio {
    async fn list_apps(&self, owner: &AppOwner) -> Result<Vec<AppRef>, AwsCallError> {
        let req = self
            .client
            .list_apps()
            .domain_id_equals(&self.domain_id)
            .max_results(PAGE_SIZE);
        let req = match owner {
            AppOwner::User(u) => req.user_profile_name_equals(u),
            AppOwner::Space(s) => req.space_name_equals(s),
        };
        let pages = req.into_paginator().send();
        let mut out = Vec::new();
        self.limiter
            .each_page(
                "ListApps",
                pages,
                |p| p.next_token(),
                |page| {
                    for a in page.apps() {
                        let (Some(app_type), Some(app_name)) = (a.app_type(), a.app_name()) else {
                            continue;
                        };
                        let app_owner = match (a.user_profile_name(), a.space_name()) {
                            (_, Some(s)) => AppOwner::Space(s.to_string()),
                            (Some(u), None) => AppOwner::User(u.to_string()),
                            (None, None) => owner.clone(),
                        };
                        out.push(AppRef {
                            owner: app_owner,
                            app_type: app_type.as_str().to_string(),
                            app_name: app_name.to_string(),
                            status: status(a.status()),
                        });
                    }
                },
            )
            .await
            .call("ListApps")?;
        Ok(out)
    }

    async fn describe_app(&self, app: &AppRef) -> Result<Option<String>, AwsCallError> {
        self.token("DescribeApp").await;
        let req = self
            .client
            .describe_app()
            .domain_id(&self.domain_id)
            .app_type(AppType::from(app.app_type.as_str()))
            .app_name(&app.app_name);
        let req = match &app.owner {
            AppOwner::User(u) => req.user_profile_name(u),
            AppOwner::Space(s) => req.space_name(s),
        };
        let found = req
            .send()
            .await
            .call("DescribeApp")
            .map(Some)
            .or_else(AwsCallError::absent)?;
        Ok(found.map(|out| status(out.status())))
    }

    async fn delete_app(&self, app: &AppRef) -> Result<Change, AwsCallError> {
        self.token("DeleteApp").await;
        let req = self
            .client
            .delete_app()
            .domain_id(&self.domain_id)
            .app_type(AppType::from(app.app_type.as_str()))
            .app_name(&app.app_name);
        let req = match &app.owner {
            AppOwner::User(u) => req.user_profile_name(u),
            AppOwner::Space(s) => req.space_name(s),
        };
        change(req.send().await.call("DeleteApp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_settings_cover_jupyterlab_and_code_editor() {
        assert_eq!(user_settings(&ProfileSettings::default()), None);
        let s = user_settings(&ProfileSettings {
            execution_role_arn: Some("arn:aws:iam::123456789012:role/x".into()),
            security_group_ids: vec!["sg-00000000".into()],
            default_instance_type: Some("ml.g5.xlarge".into()),
            idle_timeout_minutes: Some(120),
        })
        .unwrap();
        assert_eq!(s.execution_role(), Some("arn:aws:iam::123456789012:role/x"));
        assert_eq!(s.security_groups(), ["sg-00000000".to_string()]);
        for (spec, life) in [
            (
                s.jupyter_lab_app_settings()
                    .and_then(|j| j.default_resource_spec()),
                s.jupyter_lab_app_settings()
                    .and_then(|j| j.app_lifecycle_management()),
            ),
            (
                s.code_editor_app_settings()
                    .and_then(|j| j.default_resource_spec()),
                s.code_editor_app_settings()
                    .and_then(|j| j.app_lifecycle_management()),
            ),
        ] {
            assert_eq!(
                spec.and_then(|r| r.instance_type()),
                Some(&AppInstanceType::MlG5Xlarge)
            );
            let idle = life.and_then(|l| l.idle_settings()).unwrap();
            assert_eq!(idle.idle_timeout_in_minutes(), Some(120));
            assert_eq!(
                idle.lifecycle_management(),
                Some(&LifecycleManagement::Enabled)
            );
        }
        let role_only = user_settings(&ProfileSettings {
            execution_role_arn: Some("arn:aws:iam::123456789012:role/x".into()),
            ..ProfileSettings::default()
        })
        .unwrap();
        assert!(role_only.jupyter_lab_app_settings().is_none());
        assert!(role_only.security_groups().is_empty());
    }

    // The SDK's standard retry is the one retry layer (it replaced the adapter's own `persist` loop, whose tests
    // these are): the client as `main` builds it, answering from mocks.
    mod sdk_retry {
        use super::*;
        use aws_sdk_sagemaker::config::{BehaviorVersion, Credentials, Region};
        use aws_sdk_sagemaker::operation::describe_user_profile::DescribeUserProfileOutput;
        use aws_smithy_mocks::{
            MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock,
        };
        use studio_ops_shared::ErrorClass;
        use studio_ops_shared::aws::{
            THROTTLED_MAX_ATTEMPTS, retry_partition, throttled_retry_config, timeout_config,
        };
        use studio_ops_shared::config::AwsClientSettings;

        fn studio(rule: &Rule) -> SageMakerStudio {
            // A long operation budget: the paused clock must not cut the backoff short.
            let settings = AwsClientSettings {
                operation_timeout: std::time::Duration::from_secs(600),
                ..AwsClientSettings::default()
            };
            let config = aws_sdk_sagemaker::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                .http_client(create_mock_http_client())
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::Sequential)
                        .with_rule(rule),
                )
                .retry_config(throttled_retry_config(&settings))
                .timeout_config(timeout_config(&settings))
                .retry_partition(retry_partition("provision-users-test"))
                .build();
            SageMakerStudio::new(
                aws_sdk_sagemaker::Client::from_conf(config),
                "d-studioops0001",
                NonZeroU32::MAX,
            )
        }

        fn error(code: &str) -> Option<String> {
            Some(format!(
                r#"{{"__type":"{code}","message":"{code} from the mock"}}"#
            ))
        }

        fn profile() -> DescribeUserProfileOutput {
            DescribeUserProfileOutput::builder()
                .user_profile_name("ana")
                .user_profile_arn("arn:aws:sagemaker:us-east-1:123456789012:user-profile/d/ana")
                .build()
        }

        #[tokio::test(start_paused = true)]
        async fn a_throttled_call_is_tried_again_until_it_answers() {
            let rule = mock!(aws_sdk_sagemaker::Client::describe_user_profile)
                .sequence()
                .http_status(400, error("ThrottlingException"))
                .times(2)
                .output(profile)
                .build();
            let found = studio(&rule).describe_profile("ana").await;
            assert_eq!(found.map(|p| p.map(|p| p.name)), Ok(Some("ana".into())));
            assert_eq!(rule.num_calls(), 3);
        }

        #[tokio::test(start_paused = true)]
        async fn a_call_throttled_every_time_gives_up_after_max_attempts_and_a_bad_one_is_not_repeated()
         {
            let rule = mock!(aws_sdk_sagemaker::Client::describe_user_profile)
                .sequence()
                .http_status(400, error("ThrottlingException"))
                .repeatedly()
                .build();
            let err = studio(&rule).describe_profile("ana").await.unwrap_err();
            assert_eq!(err.class, ErrorClass::Retryable, "{err}");
            assert!(err.is("ThrottlingException"), "{err:?}");
            let attempts = THROTTLED_MAX_ATTEMPTS as usize;
            assert_eq!(rule.num_calls(), attempts, "no second retry layer on top");

            let rule = mock!(aws_sdk_sagemaker::Client::describe_user_profile)
                .sequence()
                .http_status(400, error("ValidationException"))
                .repeatedly()
                .build();
            let err = studio(&rule).describe_profile("ana").await.unwrap_err();
            assert_eq!(err.class, ErrorClass::NonRetryable, "{err}");
            assert_eq!(rule.num_calls(), 1, "a NonRetryable error is not repeated");
        }
    }
}
