//! Adapter: the studio port over one `aws-sdk-sagemaker` client and one Studio domain. Every request (each page
//! of a listing too) first takes a token from its operation's rate limiter, so that a 1,000-profile reconcile stays
//! under the account's per-API SageMaker limits, which Studio's own console and idle-shutdown share.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use studio_ops_shared::throttle::{OperationLimiter, RateLimit};

use aws_sdk_sagemaker::types::{
    AppInstanceType, AppLifecycleManagement, AppType, CodeEditorAppSettings, IdleSettings,
    JupyterLabAppSettings, LifecycleManagement, OwnershipSettings, ResourceSpec, SharingType,
    SpaceJupyterLabAppSettings, SpaceSettings, SpaceSharingSettings, Tag, UserSettings,
};

use crate::ports::{
    AppOwner, AppRef, Change, Created, NewProfile, NewSpace, PortError, ProfileDetail,
    ProfileSummary, RESOURCE_IN_USE, RESOURCE_NOT_FOUND, SpaceSummary, StudioPort, persist,
    timestamp,
};
use crate::settings::ProfileSettings;

#[derive(Clone)]
pub struct SageMakerStudio {
    client: aws_sdk_sagemaker::Client,
    domain_id: String,
    limiter: Arc<OperationLimiter>,
}

/// ListUserProfiles, ListSpaces, ListApps and ListTags pages.
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

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
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

/// `Ok(None)` for ResourceNotFound, the error otherwise.
fn absent<T>(err: PortError) -> Result<Option<T>, PortError> {
    if err.code.as_deref() == Some(RESOURCE_NOT_FOUND) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// A delete/update answer: ResourceNotFound is done, ResourceInUse is "not now".
fn change(result: Result<(), PortError>) -> Result<Change, PortError> {
    match result {
        Ok(()) => Ok(Change::Accepted),
        Err(e) => match e.code.as_deref() {
            Some(RESOURCE_NOT_FOUND) => Ok(Change::AlreadyGone),
            Some(RESOURCE_IN_USE) => Ok(Change::Busy(e.message)),
            _ => Err(e),
        },
    }
}

fn created(result: Result<(), PortError>) -> Result<Created, PortError> {
    match result {
        Ok(()) => Ok(Created::Created),
        Err(e) if e.code.as_deref() == Some(RESOURCE_IN_USE) => Ok(Created::AlreadyExists),
        Err(e) => Err(e),
    }
}

impl StudioPort for SageMakerStudio {
    async fn domain_exists(&self) -> Result<bool, PortError> {
        persist(|| async {
            self.token("DescribeDomain").await;
            match self
                .client
                .describe_domain()
                .domain_id(&self.domain_id)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) => absent::<()>(PortError::from_sdk("DescribeDomain", &e)).map(|_| false),
            }
        })
        .await
    }

    async fn list_profiles(&self) -> Result<Vec<ProfileSummary>, PortError> {
        persist(|| async {
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
                                status: p
                                    .status()
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_default(),
                                created: timestamp(p.creation_time()),
                            });
                        }
                    },
                )
                .await
                .map_err(|e| PortError::from_sdk("ListUserProfiles", &e))?;
            Ok(out)
        })
        .await
    }

    async fn describe_profile(&self, name: &str) -> Result<Option<ProfileDetail>, PortError> {
        persist(|| async {
            self.token("DescribeUserProfile").await;
            match self
                .client
                .describe_user_profile()
                .domain_id(&self.domain_id)
                .user_profile_name(name)
                .send()
                .await
            {
                Ok(out) => Ok(Some(ProfileDetail {
                    name: out.user_profile_name().unwrap_or(name).to_string(),
                    arn: out
                        .user_profile_arn()
                        .ok_or_else(|| {
                            PortError::malformed("DescribeUserProfile", "UserProfileArn")
                        })?
                        .to_string(),
                    status: out
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    created: timestamp(out.creation_time()),
                    sso_user_value: out.single_sign_on_user_value().map(str::to_string),
                    home_efs_uid: out.home_efs_file_system_uid().map(str::to_string),
                })),
                Err(e) => absent(PortError::from_sdk("DescribeUserProfile", &e)),
            }
        })
        .await
    }

    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        persist(|| async {
            let pages = self
                .client
                .list_tags()
                .resource_arn(arn)
                .max_results(PAGE_SIZE)
                .into_paginator()
                .send();
            let mut out = BTreeMap::new();
            self.limiter
                .each_page(
                    "ListTags",
                    pages,
                    |p| p.next_token(),
                    |page| {
                        for tag in page.tags() {
                            if let Some(k) = tag.key() {
                                out.insert(
                                    k.to_string(),
                                    tag.value().unwrap_or_default().to_string(),
                                );
                            }
                        }
                    },
                )
                .await
                .map_err(|e| PortError::from_sdk("ListTags", &e))?;
            Ok(out)
        })
        .await
    }

    async fn add_tags(&self, arn: &str, map: &BTreeMap<String, String>) -> Result<(), PortError> {
        persist(|| async {
            self.token("AddTags").await;
            self.client
                .add_tags()
                .resource_arn(arn)
                .set_tags(Some(tags(map)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| PortError::from_sdk("AddTags", &e))
        })
        .await
    }

    async fn create_profile(&self, profile: &NewProfile) -> Result<Created, PortError> {
        persist(|| async {
            self.token("CreateUserProfile").await;
            created(
                self.client
                    .create_user_profile()
                    .domain_id(&self.domain_id)
                    .user_profile_name(&profile.name)
                    .single_sign_on_user_identifier("UserName")
                    .single_sign_on_user_value(&profile.sso_user_name)
                    .set_user_settings(user_settings(&profile.settings))
                    .set_tags(Some(tags(&profile.tags)))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| PortError::from_sdk("CreateUserProfile", &e)),
            )
        })
        .await
    }

    async fn update_profile(
        &self,
        name: &str,
        settings: &ProfileSettings,
    ) -> Result<Change, PortError> {
        persist(|| async {
            self.token("UpdateUserProfile").await;
            change(
                self.client
                    .update_user_profile()
                    .domain_id(&self.domain_id)
                    .user_profile_name(name)
                    .set_user_settings(user_settings(settings))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| PortError::from_sdk("UpdateUserProfile", &e)),
            )
        })
        .await
    }

    async fn delete_profile(&self, name: &str) -> Result<Change, PortError> {
        persist(|| async {
            self.token("DeleteUserProfile").await;
            change(
                self.client
                    .delete_user_profile()
                    .domain_id(&self.domain_id)
                    .user_profile_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| PortError::from_sdk("DeleteUserProfile", &e)),
            )
        })
        .await
    }

    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>, PortError> {
        persist(|| async {
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
                                status: s
                                    .status()
                                    .map(|x| x.as_str().to_string())
                                    .unwrap_or_default(),
                                owner: s
                                    .ownership_settings_summary()
                                    .and_then(|o| o.owner_user_profile_name())
                                    .map(str::to_string),
                                sharing: s
                                    .space_sharing_settings_summary()
                                    .and_then(|x| x.sharing_type())
                                    .map(|t| t.as_str().to_string()),
                            });
                        }
                    },
                )
                .await
                .map_err(|e| PortError::from_sdk("ListSpaces", &e))?;
            Ok(out)
        })
        .await
    }

    async fn describe_space(&self, name: &str) -> Result<Option<SpaceSummary>, PortError> {
        persist(|| async {
            self.token("DescribeSpace").await;
            match self
                .client
                .describe_space()
                .domain_id(&self.domain_id)
                .space_name(name)
                .send()
                .await
            {
                Ok(out) => Ok(Some(SpaceSummary {
                    name: out.space_name().unwrap_or(name).to_string(),
                    status: out
                        .status()
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default(),
                    owner: out
                        .ownership_settings()
                        .and_then(|o| o.owner_user_profile_name())
                        .map(str::to_string),
                    sharing: out
                        .space_sharing_settings()
                        .and_then(|x| x.sharing_type())
                        .map(|t| t.as_str().to_string()),
                })),
                Err(e) => absent(PortError::from_sdk("DescribeSpace", &e)),
            }
        })
        .await
    }

    async fn create_space(&self, space: &NewSpace) -> Result<Created, PortError> {
        let jupyter = space.instance_type.as_deref().map(|t| {
            SpaceJupyterLabAppSettings::builder()
                .default_resource_spec(
                    ResourceSpec::builder()
                        .instance_type(AppInstanceType::from(t))
                        .build(),
                )
                .build()
        });
        persist(|| async {
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
                            .set_jupyter_lab_app_settings(jupyter.clone())
                            .build(),
                    )
                    .set_tags(Some(tags(&space.tags)))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| PortError::from_sdk("CreateSpace", &e)),
            )
        })
        .await
    }

    async fn delete_space(&self, name: &str) -> Result<Change, PortError> {
        persist(|| async {
            self.token("DeleteSpace").await;
            change(
                self.client
                    .delete_space()
                    .domain_id(&self.domain_id)
                    .space_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| PortError::from_sdk("DeleteSpace", &e)),
            )
        })
        .await
    }

    async fn list_apps(&self, owner: &AppOwner) -> Result<Vec<AppRef>, PortError> {
        persist(|| async {
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
                            let (Some(app_type), Some(app_name)) = (a.app_type(), a.app_name())
                            else {
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
                                status: a
                                    .status()
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_default(),
                            });
                        }
                    },
                )
                .await
                .map_err(|e| PortError::from_sdk("ListApps", &e))?;
            Ok(out)
        })
        .await
    }

    async fn describe_app(&self, app: &AppRef) -> Result<Option<String>, PortError> {
        persist(|| async {
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
            match req.send().await {
                Ok(out) => Ok(Some(
                    out.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                )),
                Err(e) => absent(PortError::from_sdk("DescribeApp", &e)),
            }
        })
        .await
    }

    async fn delete_app(&self, app: &AppRef) -> Result<Change, PortError> {
        persist(|| async {
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
            change(
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| PortError::from_sdk("DeleteApp", &e)),
            )
        })
        .await
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
}
