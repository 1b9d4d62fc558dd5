//! Integration tests of the Studio/CodeCommit simulator and the moto launcher, driven through
//! the real `aws-sdk-sagemaker` and `aws-sdk-codecommit` clients (and raw HTTP for the
//! botocore-model oracle).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_codecommit as cc;
use aws_sdk_sagemaker as sm;
use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sm::types::{
    AppInstanceType, AppStatus, AppType, AuthMode, OwnershipSettings, ResourceSpec, SharingType,
    SortOrder, SpaceSettings, SpaceSharingSettings, Tag, UserSettings,
};
use studio_ops_tests::moto::{Moto, local_sdk_config, local_sdk_config_with_retry};
use studio_ops_tests::sim::admin::{
    ActivityKind, ActivityRequest, SeedApp, SeedDomain, SeedRequest, SeedSpace, SeedUserProfile,
};
use studio_ops_tests::sim::{self, KnobsPatch, RateLimit, SimConfig, SimHandle};
use tempfile::TempDir;

const ROLE: &str = "arn:aws:iam::123456789012:role/studio-exec";

struct Env {
    sim: SimHandle,
    _git: TempDir,
}

async fn start_sim(moto_url: Option<String>, git_root: Option<PathBuf>) -> Env {
    let git = TempDir::new().unwrap();
    let cfg = SimConfig {
        moto_url,
        git_root: git_root.unwrap_or_else(|| git.path().to_path_buf()),
        seed: 7,
        ..SimConfig::default()
    };
    let sim = sim::start(cfg).await.unwrap();
    Env { sim, _git: git }
}

async fn sm_client(url: &str) -> sm::Client {
    sm::Client::new(&local_sdk_config(url).await)
}

async fn sm_client_retry(url: &str, retry: RetryConfig) -> sm::Client {
    sm::Client::new(&local_sdk_config_with_retry(url, retry).await)
}

async fn cc_client(url: &str) -> cc::Client {
    cc::Client::new(&local_sdk_config(url).await)
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

async fn create_domain(c: &sm::Client) -> String {
    let out = c
        .create_domain()
        .domain_name("studio")
        .auth_mode(AuthMode::Iam)
        .default_user_settings(UserSettings::builder().execution_role(ROLE).build())
        .subnet_ids("subnet-1")
        .vpc_id("vpc-1")
        .tags(Tag::builder().key("team").value("ml").build())
        .send()
        .await
        .unwrap();
    let id = out.domain_id().unwrap().to_owned();
    assert!(id.starts_with("d-") && id.len() == 14, "{id}");
    assert_eq!(
        out.domain_arn().unwrap(),
        format!("arn:aws:sagemaker:us-east-1:123456789012:domain/{id}")
    );
    id
}

async fn create_user(c: &sm::Client, domain: &str, name: &str) {
    c.create_user_profile()
        .domain_id(domain)
        .user_profile_name(name)
        .send()
        .await
        .unwrap();
}

fn millis(dt: &aws_smithy_types::DateTime) -> i64 {
    (dt.as_secs_f64() * 1000.0).round() as i64
}

fn ago(d: SignedDuration) -> Timestamp {
    Timestamp::now().checked_sub(d).unwrap()
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// SageMaker
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn domains_create_describe_list() {
    let env = start_sim(None, None).await;
    let c = sm_client(env.sim.url()).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(create_domain(&c).await);
    }
    let d = c.describe_domain().domain_id(&ids[0]).send().await.unwrap();
    assert_eq!(d.domain_name(), Some("studio"));
    assert_eq!(d.status().map(|s| s.as_str()), Some("InService"));
    assert_eq!(d.vpc_id(), Some("vpc-1"));
    assert_eq!(
        d.default_user_settings().and_then(|u| u.execution_role()),
        Some(ROLE)
    );
    let listed: Vec<_> = c
        .list_domains()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        2,
        "default page size 10 gives two pages of 12"
    );
    let n: usize = listed.iter().map(|p| p.domains().len()).sum();
    assert_eq!(n, 12);

    let err = c
        .describe_domain()
        .domain_id("d-doesnotexist")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::describe_domain::DescribeDomainError::ResourceNotFound(_))
    ));
}

#[tokio::test]
async fn user_profiles_crud_pagination_and_errors() {
    let env = start_sim(None, None).await;
    let c = sm_client(env.sim.url()).await;
    let domain = create_domain(&c).await;

    c.create_user_profile()
        .domain_id(&domain)
        .user_profile_name("Alice")
        .single_sign_on_user_identifier("UserName")
        .single_sign_on_user_value("alice@example.com")
        .user_settings(UserSettings::builder().execution_role(ROLE).build())
        .tags(Tag::builder().key("owner").value("alice").build())
        .send()
        .await
        .unwrap();
    for i in 0..119 {
        create_user(&c, &domain, &format!("user-{i:03}")).await;
    }

    let d = c
        .describe_user_profile()
        .domain_id(&domain)
        .user_profile_name("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(d.user_profile_name(), Some("Alice"));
    assert_eq!(d.status().map(|s| s.as_str()), Some("InService"));
    assert_eq!(d.single_sign_on_user_identifier(), Some("UserName"));
    assert_eq!(d.single_sign_on_user_value(), Some("alice@example.com"));
    assert_eq!(
        d.user_settings().and_then(|u| u.execution_role()),
        Some(ROLE)
    );
    assert!(d.home_efs_file_system_uid().is_some());
    assert!(d.creation_time().is_some() && d.last_modified_time().is_some());
    assert_eq!(
        d.user_profile_arn().unwrap(),
        format!("arn:aws:sagemaker:us-east-1:123456789012:user-profile/{domain}/alice")
    );

    // > 100 items through the SDK paginator.
    let all: Vec<_> = c
        .list_user_profiles()
        .domain_id_equals(&domain)
        .max_results(25)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 120);
    let mut names: Vec<_> = all.iter().filter_map(|p| p.user_profile_name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 120);

    let desc = c
        .list_user_profiles()
        .domain_id_equals(&domain)
        .sort_order(SortOrder::Descending)
        .max_results(100)
        .send()
        .await
        .unwrap();
    let times: Vec<i64> = desc
        .user_profiles()
        .iter()
        .map(|p| millis(p.creation_time().unwrap()))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    assert!(desc.next_token().is_some());

    let filtered = c
        .list_user_profiles()
        .user_profile_name_contains("user-01")
        .max_results(100)
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.user_profiles().len(), 10);

    // Duplicate (case-insensitive) -> ResourceInUse.
    let err = c
        .create_user_profile()
        .domain_id(&domain)
        .user_profile_name("ALICE")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_service_error(),
            Some(sm::operation::create_user_profile::CreateUserProfileError::ResourceInUse(_))
        ),
        "{err:?}"
    );
    // Bad name -> ValidationException.
    let err = c
        .create_user_profile()
        .domain_id(&domain)
        .user_profile_name("bad_name!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(err.message().unwrap().contains("regular expression"));
    // Missing domain -> ResourceNotFound.
    let err = c
        .create_user_profile()
        .domain_id("d-missing00000")
        .user_profile_name("bob")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFound");

    // Update merges settings.
    c.update_user_profile()
        .domain_id(&domain)
        .user_profile_name("Alice")
        .user_settings(UserSettings::builder().security_groups("sg-123").build())
        .send()
        .await
        .unwrap();
    let d = c
        .describe_user_profile()
        .domain_id(&domain)
        .user_profile_name("Alice")
        .send()
        .await
        .unwrap();
    let us = d.user_settings().unwrap();
    assert_eq!(us.execution_role(), Some(ROLE));
    assert_eq!(us.security_groups(), ["sg-123".to_owned()]);

    // Delete, then it is gone.
    c.delete_user_profile()
        .domain_id(&domain)
        .user_profile_name("Alice")
        .send()
        .await
        .unwrap();
    let err = c
        .describe_user_profile()
        .domain_id(&domain)
        .user_profile_name("Alice")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::describe_user_profile::DescribeUserProfileError::ResourceNotFound(_))
    ));
    let err = c
        .delete_user_profile()
        .domain_id(&domain)
        .user_profile_name("Alice")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_user_profile::DeleteUserProfileError::ResourceNotFound(_))
    ));
}

#[tokio::test]
async fn spaces_crud_pagination_and_in_use() {
    let env = start_sim(None, None).await;
    let c = sm_client(env.sim.url()).await;
    let domain = create_domain(&c).await;
    create_user(&c, &domain, "alice").await;

    c.create_space()
        .domain_id(&domain)
        .space_name("alice-lab")
        .space_display_name("Alice's lab")
        .space_settings(
            SpaceSettings::builder()
                .app_type(AppType::JupyterLab)
                .build(),
        )
        .ownership_settings(
            OwnershipSettings::builder()
                .owner_user_profile_name("alice")
                .build(),
        )
        .space_sharing_settings(
            SpaceSharingSettings::builder()
                .sharing_type(SharingType::Private)
                .build(),
        )
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .unwrap();
    // Bulk: 130 more spaces seeded with explicit creation times.
    let base = ago(SignedDuration::from_hours(24));
    let seed = SeedRequest {
        spaces: (0..130)
            .map(|i| SeedSpace {
                domain_id: domain.clone(),
                space_name: format!("shared-{i:03}"),
                sharing_type: Some("Shared".into()),
                app_type: Some("CodeEditor".into()),
                creation_time: Some(base.checked_add(SignedDuration::from_secs(i)).unwrap()),
                ..SeedSpace::default()
            })
            .collect(),
        ..SeedRequest::default()
    };
    assert_eq!(env.sim.admin().seed(&seed).await.unwrap().spaces, 130);

    let d = c
        .describe_space()
        .domain_id(&domain)
        .space_name("alice-lab")
        .send()
        .await
        .unwrap();
    assert_eq!(d.space_display_name(), Some("Alice's lab"));
    assert_eq!(
        d.ownership_settings()
            .and_then(|o| o.owner_user_profile_name()),
        Some("alice")
    );
    assert_eq!(
        d.space_sharing_settings()
            .and_then(|s| s.sharing_type())
            .cloned(),
        Some(SharingType::Private)
    );
    assert_eq!(
        d.space_settings().and_then(|s| s.app_type()).cloned(),
        Some(AppType::JupyterLab)
    );
    assert_eq!(
        d.space_arn().unwrap(),
        format!("arn:aws:sagemaker:us-east-1:123456789012:space/{domain}/alice-lab")
    );

    let all: Vec<_> = c
        .list_spaces()
        .domain_id_equals(&domain)
        .max_results(40)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 131);
    let lab = all
        .iter()
        .find(|s| s.space_name() == Some("alice-lab"))
        .unwrap();
    assert_eq!(
        lab.ownership_settings_summary()
            .and_then(|o| o.owner_user_profile_name()),
        Some("alice")
    );
    assert_eq!(
        lab.space_sharing_settings_summary()
            .and_then(|s| s.sharing_type())
            .cloned(),
        Some(SharingType::Private)
    );
    assert_eq!(
        lab.space_settings_summary()
            .and_then(|s| s.app_type())
            .cloned(),
        Some(AppType::JupyterLab)
    );
    // Ascending by creation time: seeded (yesterday) first, the new one last.
    assert_eq!(all.last().and_then(|s| s.space_name()), Some("alice-lab"));
    assert_eq!(all.first().and_then(|s| s.space_name()), Some("shared-000"));

    // Update.
    c.update_space()
        .domain_id(&domain)
        .space_name("alice-lab")
        .space_display_name("Renamed")
        .send()
        .await
        .unwrap();

    // Space with a live app -> DeleteSpace is ResourceInUse; owner profile cannot go either.
    c.create_app()
        .domain_id(&domain)
        .space_name("alice-lab")
        .app_type(AppType::JupyterLab)
        .app_name("default")
        .send()
        .await
        .unwrap();
    let err = c
        .delete_space()
        .domain_id(&domain)
        .space_name("alice-lab")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_space::DeleteSpaceError::ResourceInUse(_))
    ));
    let err = c
        .delete_user_profile()
        .domain_id(&domain)
        .user_profile_name("alice")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_user_profile::DeleteUserProfileError::ResourceInUse(_))
    ));
    c.delete_app()
        .domain_id(&domain)
        .space_name("alice-lab")
        .app_type(AppType::JupyterLab)
        .app_name("default")
        .send()
        .await
        .unwrap();
    c.delete_space()
        .domain_id(&domain)
        .space_name("alice-lab")
        .send()
        .await
        .unwrap();
    let err = c
        .describe_space()
        .domain_id(&domain)
        .space_name("alice-lab")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::describe_space::DescribeSpaceError::ResourceNotFound(_))
    ));
    c.delete_user_profile()
        .domain_id(&domain)
        .user_profile_name("alice")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn apps_lifecycle_with_delays() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    admin
        .set_knobs(&KnobsPatch {
            app_pending_ms: Some(800),
            app_deleting_ms: Some(800),
            user_profile_deleting_ms: Some(800),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let c = sm_client(env.sim.url()).await;
    let domain = create_domain(&c).await;
    create_user(&c, &domain, "bob").await;

    let arn = c
        .create_app()
        .domain_id(&domain)
        .user_profile_name("bob")
        .app_type(AppType::KernelGateway)
        .app_name("datascience-1-0-ml-t3-medium-1234")
        .resource_spec(
            ResourceSpec::builder()
                .instance_type(AppInstanceType::MlT3Medium)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .app_arn()
        .unwrap()
        .to_owned();
    assert_eq!(
        arn,
        format!(
            "arn:aws:sagemaker:us-east-1:123456789012:app/{domain}/bob/kernelgateway/datascience-1-0-ml-t3-medium-1234"
        )
    );
    let describe = || async {
        c.describe_app()
            .domain_id(&domain)
            .user_profile_name("bob")
            .app_type(AppType::KernelGateway)
            .app_name("datascience-1-0-ml-t3-medium-1234")
            .send()
            .await
            .unwrap()
    };
    let delete = || async {
        c.delete_app()
            .domain_id(&domain)
            .user_profile_name("bob")
            .app_type(AppType::KernelGateway)
            .app_name("datascience-1-0-ml-t3-medium-1234")
            .send()
            .await
    };
    let first = describe().await;
    assert_eq!(first.status(), Some(&AppStatus::Pending));
    assert_eq!(
        first.resource_spec().and_then(|r| r.instance_type()),
        Some(&AppInstanceType::MlT3Medium)
    );
    // Creating it again while Pending -> ResourceInUse.
    let err = c
        .create_app()
        .domain_id(&domain)
        .user_profile_name("bob")
        .app_type(AppType::KernelGateway)
        .app_name("datascience-1-0-ml-t3-medium-1234")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::create_app::CreateAppError::ResourceInUse(_))
    ));
    // Deleting while Pending -> ResourceInUse.
    let err = delete().await.unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_app::DeleteAppError::ResourceInUse(_))
    ));
    // The profile cannot be deleted while the app lives.
    let err = c
        .delete_user_profile()
        .domain_id(&domain)
        .user_profile_name("bob")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_user_profile::DeleteUserProfileError::ResourceInUse(_))
    ));

    assert!(
        eventually(Duration::from_secs(10), || async {
            describe().await.status() == Some(&AppStatus::InService)
        })
        .await
    );
    delete().await.unwrap();
    assert_eq!(describe().await.status(), Some(&AppStatus::Deleting));
    let err = delete().await.unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_app::DeleteAppError::ResourceInUse(_))
    ));
    assert!(
        eventually(Duration::from_secs(10), || async {
            describe().await.status() == Some(&AppStatus::Deleted)
        })
        .await
    );
    // Deleted apps stay listed with status Deleted; deleting again is ResourceNotFound.
    let listed = c
        .list_apps()
        .domain_id_equals(&domain)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.apps().len(), 1);
    assert_eq!(listed.apps()[0].status(), Some(&AppStatus::Deleted));
    let err = delete().await.unwrap_err();
    assert!(
        matches!(
            err.as_service_error(),
            Some(sm::operation::delete_app::DeleteAppError::ResourceNotFound(
                _
            ))
        ),
        "{err:?}"
    );
    // Absent app -> ResourceNotFound.
    let err = c
        .delete_app()
        .domain_id(&domain)
        .user_profile_name("bob")
        .app_type(AppType::JupyterServer)
        .app_name("default")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::delete_app::DeleteAppError::ResourceNotFound(
            _
        ))
    ));
    let err = c
        .describe_app()
        .domain_id(&domain)
        .user_profile_name("bob")
        .app_type(AppType::JupyterServer)
        .app_name("default")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(sm::operation::describe_app::DescribeAppError::ResourceNotFound(_))
    ));

    // Now the profile can be deleted: Deleting, then gone.
    c.delete_user_profile()
        .domain_id(&domain)
        .user_profile_name("bob")
        .send()
        .await
        .unwrap();
    let d = c
        .describe_user_profile()
        .domain_id(&domain)
        .user_profile_name("bob")
        .send()
        .await
        .unwrap();
    assert_eq!(d.status().map(|s| s.as_str()), Some("Deleting"));
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.describe_user_profile()
                .domain_id(&domain)
                .user_profile_name("bob")
                .send()
                .await
                .is_err()
        })
        .await
    );
}

#[tokio::test]
async fn apps_list_pagination_filters_and_validation() {
    let env = start_sim(None, None).await;
    let c = sm_client(env.sim.url()).await;
    let domain = create_domain(&c).await;
    let base = ago(SignedDuration::from_hours(48));
    let mut seed = SeedRequest {
        user_profiles: ["u1", "u2"]
            .iter()
            .map(|u| SeedUserProfile {
                domain_id: domain.clone(),
                user_profile_name: (*u).into(),
                ..SeedUserProfile::default()
            })
            .collect(),
        spaces: vec![SeedSpace {
            domain_id: domain.clone(),
            space_name: "team".into(),
            app_type: Some("JupyterLab".into()),
            ..SeedSpace::default()
        }],
        ..SeedRequest::default()
    };
    for i in 0..250i64 {
        let (user, space) = match i % 3 {
            0 => (Some("u1".to_owned()), None),
            1 => (Some("u2".to_owned()), None),
            _ => (None, Some("team".to_owned())),
        };
        seed.apps.push(SeedApp {
            domain_id: domain.clone(),
            user_profile_name: user,
            space_name: space,
            app_type: "KernelGateway".into(),
            app_name: Some(format!("kg-{i:03}")),
            creation_time: Some(base.checked_add(SignedDuration::from_mins(i)).unwrap()),
            instance_type: Some("ml.m5.large".into()),
            ..SeedApp::default()
        });
    }
    let r = env.sim.admin().seed(&seed).await.unwrap();
    assert_eq!((r.user_profiles, r.spaces, r.apps), (2, 1, 250));

    let all: Vec<_> = c
        .list_apps()
        .domain_id_equals(&domain)
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    let t: Vec<i64> = all
        .iter()
        .map(|a| millis(a.creation_time().unwrap()))
        .collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "ascending by default");
    assert_eq!(
        all[0].resource_spec().and_then(|r| r.instance_type()),
        Some(&AppInstanceType::MlM5Large)
    );

    let desc: Vec<_> = c
        .list_apps()
        .sort_by(sm::types::AppSortKey::CreationTime)
        .sort_order(SortOrder::Descending)
        .max_results(33)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(desc.len(), 250);
    assert_eq!(desc[0].app_name(), Some("kg-249"));

    let u1: Vec<_> = c
        .list_apps()
        .user_profile_name_equals("u1")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(u1.len(), 84);
    assert!(u1.iter().all(|a| a.user_profile_name() == Some("u1")));
    let team: Vec<_> = c
        .list_apps()
        .space_name_equals("team")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(team.len(), 83);
    assert!(
        team.iter()
            .all(|a| a.space_name() == Some("team") && a.user_profile_name().is_none())
    );

    // Default page size is 10.
    let page = c.list_apps().send().await.unwrap();
    assert_eq!(page.apps().len(), 10);
    assert!(page.next_token().is_some());

    // MaxResults out of range.
    for bad in [0, 101] {
        let err = c.list_apps().max_results(bad).send().await.unwrap_err();
        assert_eq!(code(&err), "ValidationException", "MaxResults {bad}");
    }
    // Garbled and foreign NextTokens.
    let err = c
        .list_apps()
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let spaces_token = c
        .list_user_profiles()
        .max_results(1)
        .send()
        .await
        .unwrap()
        .next_token()
        .unwrap()
        .to_owned();
    let err = c
        .list_apps()
        .next_token(spaces_token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    // CreateApp with both owners, with neither, with a bad app type.
    let err = c
        .create_app()
        .domain_id(&domain)
        .user_profile_name("u1")
        .space_name("team")
        .app_type(AppType::JupyterLab)
        .app_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = c
        .create_app()
        .domain_id(&domain)
        .app_type(AppType::JupyterLab)
        .app_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = c
        .create_app()
        .domain_id(&domain)
        .user_profile_name("u1")
        .app_type(AppType::from("NotAnAppType"))
        .app_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = c
        .create_app()
        .domain_id(&domain)
        .user_profile_name("nobody")
        .app_type(AppType::JupyterLab)
        .app_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFound");
}

#[tokio::test]
async fn tags_on_every_arn_kind() {
    let env = start_sim(None, None).await;
    let c = sm_client(env.sim.url()).await;
    let domain = create_domain(&c).await;
    let domain_arn = c
        .describe_domain()
        .domain_id(&domain)
        .send()
        .await
        .unwrap()
        .domain_arn()
        .unwrap()
        .to_owned();
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let user_arn = c
        .create_user_profile()
        .domain_id(&domain)
        .user_profile_name("carol")
        .tags(tag("owner", "carol"))
        .send()
        .await
        .unwrap()
        .user_profile_arn()
        .unwrap()
        .to_owned();
    let space_arn = c
        .create_space()
        .domain_id(&domain)
        .space_name("carol-space")
        .tags(tag("purpose", "eda"))
        .send()
        .await
        .unwrap()
        .space_arn()
        .unwrap()
        .to_owned();
    let app_arn = c
        .create_app()
        .domain_id(&domain)
        .user_profile_name("carol")
        .app_type(AppType::JupyterServer)
        .app_name("default")
        .tags(tag("cost-center", "42"))
        .send()
        .await
        .unwrap()
        .app_arn()
        .unwrap()
        .to_owned();

    let list = |arn: String| {
        let c = c.clone();
        async move {
            let tags: Vec<Tag> = c
                .list_tags()
                .resource_arn(arn)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .unwrap();
            tags.into_iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    assert_eq!(list(domain_arn.clone()).await["team"], "ml");
    assert_eq!(list(user_arn.clone()).await["owner"], "carol");
    assert_eq!(list(space_arn.clone()).await["purpose"], "eda");
    assert_eq!(list(app_arn.clone()).await["cost-center"], "42");

    for arn in [&domain_arn, &user_arn, &space_arn, &app_arn] {
        let out = c
            .add_tags()
            .resource_arn(arn)
            .tags(tag("studio-ops:managed", "true"))
            .tags(tag("extra", "1"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.tags().len(), 2);
        c.delete_tags()
            .resource_arn(arn)
            .tag_keys("extra")
            .send()
            .await
            .unwrap();
        let tags = list(arn.clone()).await;
        assert_eq!(tags["studio-ops:managed"], "true");
        assert!(!tags.contains_key("extra"));
        assert_eq!(tags.len(), 2, "{arn}: {tags:?}");
    }
    // Overwrite keeps one entry per key.
    c.add_tags()
        .resource_arn(&app_arn)
        .tags(tag("cost-center", "43"))
        .send()
        .await
        .unwrap();
    assert_eq!(list(app_arn.clone()).await["cost-center"], "43");

    let err = c
        .list_tags()
        .resource_arn(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:user-profile/{domain}/nobody"
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFound");
    let err = c
        .add_tags()
        .resource_arn(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:app/{domain}/carol/jupyterserver/nope"
        ))
        .tags(tag("a", "b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFound");
    let err = c
        .list_tags()
        .resource_arn(&app_arn)
        .max_results(10)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    // Tags seeded through the admin API show in the state dump too.
    let state = env.sim.admin().state().await.unwrap();
    assert_eq!(state.apps[0].tags["cost-center"], "43");
}

#[tokio::test]
async fn activity_and_health_check_timestamps() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    let c = sm_client(env.sim.url()).await;
    let created = ago(SignedDuration::from_hours(5));
    let activity = ago(SignedDuration::from_hours(3));
    let health = ago(SignedDuration::from_mins(1));
    let seeded = admin
        .seed(&SeedRequest {
            domains: vec![SeedDomain {
                domain_name: "seeded".into(),
                ..SeedDomain::default()
            }],
            ..SeedRequest::default()
        })
        .await
        .unwrap();
    let domain = seeded.domain_ids[0].clone();
    admin
        .seed(&SeedRequest {
            user_profiles: vec![SeedUserProfile {
                domain_id: domain.clone(),
                user_profile_name: "dave".into(),
                creation_time: Some(created),
                ..SeedUserProfile::default()
            }],
            apps: vec![SeedApp {
                domain_id: domain.clone(),
                user_profile_name: Some("dave".into()),
                app_type: "JupyterLab".into(),
                creation_time: Some(created),
                last_user_activity: Some(activity),
                last_health_check: Some(health),
                instance_type: Some("ml.g5.xlarge".into()),
                ..SeedApp::default()
            }],
            ..SeedRequest::default()
        })
        .await
        .unwrap();
    let describe = || async {
        c.describe_app()
            .domain_id(&domain)
            .user_profile_name("dave")
            .app_type(AppType::JupyterLab)
            .app_name("default")
            .send()
            .await
            .unwrap()
    };
    let d = describe().await;
    assert_eq!(millis(d.creation_time().unwrap()), created.as_millisecond());
    assert_eq!(
        millis(d.last_user_activity_timestamp().unwrap()),
        activity.as_millisecond()
    );
    assert_eq!(
        millis(d.last_health_check_timestamp().unwrap()),
        health.as_millisecond()
    );
    assert_eq!(
        d.resource_spec().and_then(|r| r.instance_type()),
        Some(&AppInstanceType::MlG5Xlarge)
    );

    let req = |kind, at| ActivityRequest {
        domain_id: domain.clone(),
        user_profile_name: Some("dave".into()),
        app_type: "JupyterLab".into(),
        kind,
        at: Some(at),
        ..ActivityRequest::default()
    };
    // Genuine user activity moves only LastUserActivityTimestamp.
    let u = ago(SignedDuration::from_mins(30));
    let s = admin
        .activity(&req(ActivityKind::UserActivity, u))
        .await
        .unwrap();
    assert_eq!(s.last_user_activity, u);
    assert_eq!(
        s.last_health_check.as_millisecond(),
        health.as_millisecond()
    );
    // A health check pollutes activity (the real control plane's behaviour by default).
    let h = ago(SignedDuration::from_secs(10));
    admin
        .activity(&req(ActivityKind::HealthCheck, h))
        .await
        .unwrap();
    let d = describe().await;
    assert_eq!(
        millis(d.last_health_check_timestamp().unwrap()),
        h.as_millisecond()
    );
    assert_eq!(
        millis(d.last_user_activity_timestamp().unwrap()),
        h.as_millisecond()
    );
    // With the knob off, a health check leaves activity alone.
    admin
        .set_knobs(&KnobsPatch {
            health_check_sets_activity: Some(false),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let h2 = ago(SignedDuration::from_secs(5));
    admin
        .activity(&req(ActivityKind::HealthCheck, h2))
        .await
        .unwrap();
    let d = describe().await;
    assert_eq!(
        millis(d.last_health_check_timestamp().unwrap()),
        h2.as_millisecond()
    );
    assert_eq!(
        millis(d.last_user_activity_timestamp().unwrap()),
        h.as_millisecond()
    );

    // Automatic health checks every second since the app became InService (5 h ago).
    admin
        .set_knobs(&KnobsPatch {
            health_check_interval_ms: Some(1000),
            health_check_sets_activity: Some(true),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let before = Timestamp::now();
    let d = describe().await;
    let hc = millis(d.last_health_check_timestamp().unwrap());
    assert!(hc > h2.as_millisecond());
    assert!(hc >= before.as_millisecond() - 1000 && hc <= Timestamp::now().as_millisecond());
    assert_eq!(millis(d.last_user_activity_timestamp().unwrap()), hc);

    let err = admin
        .activity(&ActivityRequest {
            domain_id: domain.clone(),
            user_profile_name: Some("dave".into()),
            app_type: "CodeEditor".into(),
            ..ActivityRequest::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn throttling_surfaces_when_retries_are_exhausted() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    let mut limits = BTreeMap::new();
    limits.insert(
        "ListApps".to_owned(),
        RateLimit {
            rps: 0.0,
            burst: 0.0,
        },
    );
    admin
        .set_knobs(&KnobsPatch {
            rate_limits: Some(limits),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let c = sm_client_retry(
        env.sim.url(),
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(20)),
    )
    .await;
    let err = c.list_apps().send().await.unwrap_err();
    assert_eq!(code(&err), "ThrottlingException");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let stats = admin.stats().await.unwrap();
    assert_eq!(
        stats.throttled_of("ListApps"),
        3,
        "the SDK retried: {stats:?}"
    );
    assert_eq!(stats.calls_of("ListApps"), 3);
    // Other operations are not limited.
    c.list_domains().send().await.unwrap();
    assert_eq!(admin.stats().await.unwrap().throttled_of("ListDomains"), 0);
}

#[tokio::test]
async fn throttling_is_absorbed_by_standard_retry_when_the_bucket_refills() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    let mut limits = BTreeMap::new();
    limits.insert(
        "*".to_owned(),
        RateLimit {
            rps: 4.0,
            burst: 1.0,
        },
    );
    admin
        .set_knobs(&KnobsPatch {
            rate_limits: Some(limits),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let c = sm_client_retry(
        env.sim.url(),
        RetryConfig::standard()
            .with_max_attempts(10)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(1)),
    )
    .await;
    for _ in 0..4 {
        c.list_domains().send().await.unwrap();
    }
    let stats = admin.stats().await.unwrap();
    assert!(stats.throttled_of("ListDomains") >= 1, "{stats:?}");
    assert_eq!(
        stats.calls_of("ListDomains") - stats.throttled_of("ListDomains"),
        4
    );
}

#[tokio::test]
async fn server_faults_are_retried_by_the_sdk() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    let c = sm_client_retry(
        env.sim.url(),
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(20)),
    )
    .await;
    // The next two calls fail (500 InternalFailure, then 503 ServiceUnavailable).
    admin
        .set_knobs(&KnobsPatch {
            fail_next: Some(2),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    c.list_domains().send().await.unwrap();
    let stats = admin.stats().await.unwrap();
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.calls_of("ListDomains"), 3);
    assert_eq!(stats.errors["InternalFailure"], 1);
    assert_eq!(stats.errors["ServiceUnavailable"], 1);

    // Always failing: the 5xx surfaces after max attempts.
    admin
        .set_knobs(&KnobsPatch {
            fault_rate: Some(1.0),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let err = c.list_domains().send().await.unwrap_err();
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert!(matches!(status, Some(500 | 503)), "{err:?}");
    assert!(matches!(
        code(&err).as_str(),
        "InternalFailure" | "ServiceUnavailable"
    ));

    // A seeded 30% fault rate is absorbed by retries.
    admin
        .set_knobs(&KnobsPatch {
            fault_rate: Some(0.3),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    admin.reset_stats().await.unwrap();
    let c = sm_client_retry(
        env.sim.url(),
        RetryConfig::standard()
            .with_max_attempts(8)
            .with_initial_backoff(Duration::from_millis(2))
            .with_max_backoff(Duration::from_millis(10)),
    )
    .await;
    for _ in 0..20 {
        c.list_domains().send().await.unwrap();
    }
    let stats = admin.stats().await.unwrap();
    assert!(stats.faults_injected > 0);
    assert_eq!(stats.calls_of("ListDomains"), 20 + stats.faults_injected);
}

#[tokio::test]
async fn latency_knob_delays_calls() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    let mut per_op = BTreeMap::new();
    per_op.insert("ListDomains".to_owned(), 150);
    admin
        .set_knobs(&KnobsPatch {
            op_latency_ms: Some(per_op),
            ..KnobsPatch::default()
        })
        .await
        .unwrap();
    let c = sm_client(env.sim.url()).await;
    let t = std::time::Instant::now();
    c.list_domains().send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        admin.knobs().await.unwrap().op_latency_ms["ListDomains"],
        150
    );
    let err = admin
        .set_knobs(&KnobsPatch {
            fault_rate: Some(2.0),
            ..KnobsPatch::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn admin_seeds_thousands_and_resets() {
    let env = start_sim(None, None).await;
    let admin = env.sim.admin();
    let domain = "d-bulk00000001".to_owned();
    let now = Timestamp::now();
    let mut req = SeedRequest {
        domains: vec![SeedDomain {
            domain_id: Some(domain.clone()),
            domain_name: "bulk".into(),
            ..SeedDomain::default()
        }],
        ..SeedRequest::default()
    };
    for u in 0..500 {
        req.user_profiles.push(SeedUserProfile {
            domain_id: domain.clone(),
            user_profile_name: format!("user-{u}"),
            ..SeedUserProfile::default()
        });
        for (j, t) in ["JupyterLab", "CodeEditor", "KernelGateway", "JupyterServer"]
            .iter()
            .enumerate()
        {
            req.apps.push(SeedApp {
                domain_id: domain.clone(),
                user_profile_name: Some(format!("user-{u}")),
                app_type: (*t).into(),
                status: Some(if j == 3 { "Deleted" } else { "InService" }.into()),
                creation_time: Some(now.checked_sub(SignedDuration::from_hours(4)).unwrap()),
                last_user_activity: Some(now.checked_sub(SignedDuration::from_mins(u)).unwrap()),
                tags: [("owner".to_owned(), format!("user-{u}"))].into(),
                ..SeedApp::default()
            });
        }
    }
    let r = admin.seed(&req).await.unwrap();
    assert_eq!((r.user_profiles, r.apps), (500, 2000));
    assert_eq!(r.domain_ids, vec![domain.clone()]);
    let state = admin.state().await.unwrap();
    assert_eq!(state.apps.len(), 2000);
    assert_eq!(state.apps_with_status("Deleted").len(), 500);

    let c = sm_client(env.sim.url()).await;
    let apps: Vec<_> = c
        .list_apps()
        .domain_id_equals(&domain)
        .user_profile_name_equals("user-7")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(apps.len(), 4);

    // A bad seed is rejected with a message.
    let err = admin
        .seed(&SeedRequest {
            apps: vec![SeedApp {
                domain_id: domain.clone(),
                user_profile_name: Some("ghost".into()),
                app_type: "JupyterLab".into(),
                ..SeedApp::default()
            }],
            ..SeedRequest::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");

    assert!(admin.stats().await.unwrap().calls_of("ListApps") >= 1);
    assert_eq!(admin.reset_stats().await.unwrap().total_calls(), 0);
    admin.reset().await.unwrap();
    let state = admin.state().await.unwrap();
    assert!(state.apps.is_empty() && state.domains.is_empty());
}

#[tokio::test]
async fn unimplemented_operation_without_moto_is_unknown() {
    let env = start_sim(None, None).await;
    let c = sm_client(env.sim.url()).await;
    let err = c.list_training_jobs().send().await.unwrap_err();
    assert_eq!(code(&err), "UnknownOperationException");
}

#[tokio::test]
async fn unimplemented_operations_are_forwarded_to_moto() {
    let moto = Moto::start().await.unwrap();
    let env = start_sim(Some(moto.url().to_owned()), None).await;
    let c = sm_client(env.sim.url()).await;
    let arn = c
        .create_model_package_group()
        .model_package_group_name("studio-ops-models")
        .model_package_group_description("models trained on push")
        .send()
        .await
        .unwrap()
        .model_package_group_arn()
        .unwrap()
        .to_owned();
    assert!(
        arn.contains("model-package-group/studio-ops-models"),
        "{arn}"
    );
    let d = c
        .describe_model_package_group()
        .model_package_group_name("studio-ops-models")
        .send()
        .await
        .unwrap();
    assert_eq!(d.model_package_group_name(), Some("studio-ops-models"));
    assert_eq!(
        d.model_package_group_description(),
        Some("models trained on push")
    );
    let jobs = c.list_training_jobs().send().await.unwrap();
    assert!(jobs.training_job_summaries().is_empty());
    // A moto error passes through unchanged.
    let err = c
        .describe_model_package_group()
        .model_package_group_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.raw_response()
            .is_some_and(|r| r.status().as_u16() >= 400)
    );

    let stats = env.sim.admin().stats().await.unwrap();
    assert_eq!(stats.forwarded, 4);
    assert_eq!(stats.forwarded_ops["DescribeModelPackageGroup"], 2);
    // Studio operations are still answered by the simulator itself.
    let domain = create_domain(&c).await;
    assert!(domain.starts_with("d-"));
    assert_eq!(env.sim.admin().stats().await.unwrap().forwarded, 4);
    // Tags on ARNs the simulator does not own go to moto as well.
    c.add_tags()
        .resource_arn(&arn)
        .tags(Tag::builder().key("stage").value("dev").build())
        .send()
        .await
        .unwrap();
    let tags = c.list_tags().resource_arn(&arn).send().await.unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("stage") && t.value() == Some("dev")),
        "{tags:?}"
    );
    let stats = env.sim.admin().stats().await.unwrap();
    assert_eq!(stats.forwarded_ops["AddTags"], 1);
    assert_eq!(stats.forwarded_ops["ListTags"], 1);
    moto.reset().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// CodeCommit
// ---------------------------------------------------------------------------------------------

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0100")
        .env("GIT_COMMITTER_NAME", "CI Bot")
        .env("GIT_COMMITTER_EMAIL", "ci@example.com")
        .env("GIT_COMMITTER_DATE", "1700000100 +0000")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Repo {
    root: TempDir,
    c1: String,
    c2: String,
}

/// A bare repository `models.git` with two commits on `main` and a `feature` branch at the
/// first commit.
fn make_repo() -> Repo {
    use std::os::unix::fs::PermissionsExt;
    let root = TempDir::new().unwrap();
    let work = TempDir::new().unwrap();
    let w = work.path();
    git(w, &["-c", "init.defaultBranch=main", "init", "-q"]);
    std::fs::create_dir_all(w.join("src/util")).unwrap();
    std::fs::create_dir_all(w.join("scripts")).unwrap();
    std::fs::create_dir_all(w.join("data")).unwrap();
    std::fs::write(w.join("README.md"), "hello\n").unwrap();
    std::fs::write(w.join("src/app.py"), "print('app')\n").unwrap();
    std::fs::write(w.join("src/util/helpers.py"), "X = 1\n").unwrap();
    std::fs::write(w.join("scripts/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        w.join("scripts/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(w.join("data/keep.txt"), "keep\n").unwrap();
    std::fs::write(w.join("old.txt"), "old\n").unwrap();
    std::os::unix::fs::symlink("README.md", w.join("link")).unwrap();
    git(w, &["add", "-A"]);
    git(w, &["commit", "-q", "-m", "first commit"]);
    let c1 = git(w, &["rev-parse", "HEAD"]);
    git(w, &["branch", "feature"]);
    std::fs::write(w.join("README.md"), "hello, world\n").unwrap();
    std::fs::write(w.join("scripts/run.sh"), "#!/bin/sh\necho run fast\n").unwrap();
    std::fs::remove_file(w.join("old.txt")).unwrap();
    for i in 0..30 {
        std::fs::write(w.join(format!("data/f{i:02}.txt")), format!("{i}\n")).unwrap();
    }
    git(w, &["add", "-A"]);
    git(w, &["commit", "-q", "-m", "second commit\n\nwith a body"]);
    let c2 = git(w, &["rev-parse", "HEAD"]);
    let bare = root.path().join("models.git");
    git(
        root.path(),
        &[
            "clone",
            "-q",
            "--bare",
            w.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    Repo { root, c1, c2 }
}

#[tokio::test]
async fn codecommit_reads_from_real_git() {
    let repo = make_repo();
    let env = start_sim(None, Some(repo.root.path().to_path_buf())).await;
    let c = cc_client(env.sim.url()).await;

    let r = c
        .get_repository()
        .repository_name("models")
        .send()
        .await
        .unwrap();
    let md = r.repository_metadata().unwrap();
    assert_eq!(md.repository_name(), Some("models"));
    assert_eq!(md.default_branch(), Some("main"));
    assert_eq!(
        md.arn(),
        Some("arn:aws:codecommit:us-east-1:123456789012:models")
    );
    assert_eq!(md.repository_id().map(str::len), Some(36));

    let b = c
        .get_branch()
        .repository_name("models")
        .branch_name("main")
        .send()
        .await
        .unwrap();
    let b = b.branch().unwrap();
    assert_eq!(b.branch_name(), Some("main"));
    assert_eq!(b.commit_id(), Some(repo.c2.as_str()));
    let f = c
        .get_branch()
        .repository_name("models")
        .branch_name("feature")
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.branch().and_then(|b| b.commit_id()),
        Some(repo.c1.as_str())
    );

    let commit = c
        .get_commit()
        .repository_name("models")
        .commit_id(&repo.c2)
        .send()
        .await
        .unwrap();
    let commit = commit.commit().unwrap();
    assert_eq!(commit.commit_id(), Some(repo.c2.as_str()));
    assert_eq!(commit.parents(), std::slice::from_ref(&repo.c1));
    assert_eq!(commit.message(), Some("second commit\n\nwith a body\n"));
    let author = commit.author().unwrap();
    assert_eq!(author.name(), Some("Ada Lovelace"));
    assert_eq!(author.email(), Some("ada@example.com"));
    assert_eq!(author.date(), Some("1700000000 +0100"));
    assert_eq!(commit.committer().and_then(|u| u.name()), Some("CI Bot"));
    let tree = git(
        &repo.root.path().join("models.git"),
        &["rev-parse", &format!("{}^{{tree}}", repo.c2)],
    );
    assert_eq!(commit.tree_id(), Some(tree.as_str()));

    // Differences, paginated through the SDK paginator (7 per page).
    let pages: Vec<_> = c
        .get_differences()
        .repository_name("models")
        .before_commit_specifier(&repo.c1)
        .after_commit_specifier("main")
        .max_results(7)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 5);
    let diffs: Vec<_> = pages.iter().flat_map(|p| p.differences()).collect();
    assert_eq!(diffs.len(), 33);
    let kind = |path: &str| {
        diffs
            .iter()
            .find(|d| {
                d.after_blob().and_then(|b| b.path()) == Some(path)
                    || d.before_blob().and_then(|b| b.path()) == Some(path)
            })
            .and_then(|d| d.change_type())
            .map(|c| c.as_str().to_owned())
    };
    assert_eq!(kind("README.md").as_deref(), Some("M"));
    assert_eq!(kind("old.txt").as_deref(), Some("D"));
    assert_eq!(kind("data/f00.txt").as_deref(), Some("A"));
    let run = diffs
        .iter()
        .find(|d| d.after_blob().and_then(|b| b.path()) == Some("scripts/run.sh"))
        .unwrap();
    assert_eq!(run.after_blob().and_then(|b| b.mode()), Some("100755"));
    assert!(run.before_blob().and_then(|b| b.blob_id()).is_some());

    let data_only = c
        .get_differences()
        .repository_name("models")
        .before_commit_specifier(&repo.c1)
        .after_commit_specifier(&repo.c2)
        .after_path("data")
        .send()
        .await
        .unwrap();
    assert_eq!(data_only.differences().len(), 30);
    // Without a before commit, everything in the after commit is an addition.
    let initial = c
        .get_differences()
        .repository_name("models")
        .after_commit_specifier("feature")
        .send()
        .await
        .unwrap();
    assert_eq!(initial.differences().len(), 7);
    assert!(
        initial
            .differences()
            .iter()
            .all(|d| d.change_type().map(|c| c.as_str()) == Some("A"))
    );

    // Files.
    let readme = c
        .get_file()
        .repository_name("models")
        .file_path("README.md")
        .send()
        .await
        .unwrap();
    assert_eq!(readme.file_content().as_ref(), b"hello, world\n");
    assert_eq!(readme.file_size(), 13);
    assert_eq!(readme.commit_id(), repo.c2);
    assert_eq!(readme.file_mode().as_str(), "NORMAL");
    let old = c
        .get_file()
        .repository_name("models")
        .commit_specifier("feature")
        .file_path("/README.md")
        .send()
        .await
        .unwrap();
    assert_eq!(old.file_content().as_ref(), b"hello\n");
    let run = c
        .get_file()
        .repository_name("models")
        .commit_specifier(&repo.c2)
        .file_path("scripts/run.sh")
        .send()
        .await
        .unwrap();
    assert_eq!(run.file_mode().as_str(), "EXECUTABLE");
    let link = c
        .get_file()
        .repository_name("models")
        .file_path("link")
        .send()
        .await
        .unwrap();
    assert_eq!(link.file_mode().as_str(), "SYMLINK");
    assert_eq!(link.file_content().as_ref(), b"README.md");

    // Folders.
    let root = c
        .get_folder()
        .repository_name("models")
        .folder_path("/")
        .send()
        .await
        .unwrap();
    let names = |v: Vec<Option<&str>>| {
        let mut v: Vec<String> = v.into_iter().flatten().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(
            root.sub_folders()
                .iter()
                .map(|f| f.relative_path())
                .collect()
        ),
        ["data", "scripts", "src"]
    );
    assert_eq!(
        names(root.files().iter().map(|f| f.relative_path()).collect()),
        ["README.md"]
    );
    assert_eq!(
        names(
            root.symbolic_links()
                .iter()
                .map(|f| f.relative_path())
                .collect()
        ),
        ["link"]
    );
    assert_eq!(root.tree_id(), Some(tree.as_str()));
    let src = c
        .get_folder()
        .repository_name("models")
        .commit_specifier("main")
        .folder_path("src")
        .send()
        .await
        .unwrap();
    assert_eq!(
        names(src.files().iter().map(|f| f.absolute_path()).collect()),
        ["src/app.py"]
    );
    assert_eq!(
        names(
            src.sub_folders()
                .iter()
                .map(|f| f.absolute_path())
                .collect()
        ),
        ["src/util"]
    );
    let data = c
        .get_folder()
        .repository_name("models")
        .folder_path("data")
        .send()
        .await
        .unwrap();
    assert_eq!(data.files().len(), 31);
}

#[tokio::test]
async fn codecommit_errors_and_path_traversal() {
    let repo = make_repo();
    // A repository symlink pointing outside the git root must not be followed.
    let outside = make_repo();
    std::os::unix::fs::symlink(
        outside.root.path().join("models.git"),
        repo.root.path().join("escape.git"),
    )
    .unwrap();
    let env = start_sim(None, Some(repo.root.path().to_path_buf())).await;
    let c = cc_client(env.sim.url()).await;

    let err = c
        .get_repository()
        .repository_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_repository::GetRepositoryError::RepositoryDoesNotExistException(_))
    ));
    for bad in ["..", "../etc", "a/b", ".git", "x y"] {
        let err = c
            .get_repository()
            .repository_name(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidRepositoryNameException", "{bad}");
    }
    let err = c
        .get_repository()
        .repository_name("escape")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "RepositoryDoesNotExistException");

    let err = c
        .get_branch()
        .repository_name("models")
        .branch_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_branch::GetBranchError::BranchDoesNotExistException(_))
    ));
    let err = c
        .get_branch()
        .repository_name("models")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BranchNameRequiredException");
    let err = c
        .get_branch()
        .repository_name("models")
        .branch_name("../../HEAD")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidBranchNameException");

    let err = c
        .get_commit()
        .repository_name("models")
        .commit_id("deadbeef")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_commit::GetCommitError::InvalidCommitIdException(_))
    ));
    let err = c
        .get_commit()
        .repository_name("models")
        .commit_id("0123456789012345678901234567890123456789")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_commit::GetCommitError::CommitIdDoesNotExistException(_))
    ));

    let err = c
        .get_file()
        .repository_name("models")
        .commit_specifier("no-such-branch")
        .file_path("README.md")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_file::GetFileError::CommitDoesNotExistException(_))
    ));
    for spec in ["--output=/tmp/x", "main..feature", "HEAD@{1}", "a b"] {
        let err = c
            .get_file()
            .repository_name("models")
            .commit_specifier(spec)
            .file_path("README.md")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidCommitException", "{spec}");
    }
    let err = c
        .get_file()
        .repository_name("models")
        .file_path("missing.txt")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_file::GetFileError::FileDoesNotExistException(_))
    ));
    let err = c
        .get_file()
        .repository_name("models")
        .file_path("src")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "FileDoesNotExistException");
    for p in [
        "../../etc/passwd",
        "src/../README.md",
        "./README.md",
        "a//b",
    ] {
        let err = c
            .get_file()
            .repository_name("models")
            .file_path(p)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidPathException", "{p}");
        let err = c
            .get_folder()
            .repository_name("models")
            .folder_path(p)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidPathException", "{p}");
    }
    let err = c
        .get_folder()
        .repository_name("models")
        .folder_path("nope")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(cc::operation::get_folder::GetFolderError::FolderDoesNotExistException(_))
    ));
    let err = c
        .get_folder()
        .repository_name("models")
        .folder_path("README.md")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "FolderDoesNotExistException");

    let diff = || {
        c.get_differences()
            .repository_name("models")
            .before_commit_specifier(&repo.c1)
            .after_commit_specifier(&repo.c2)
    };
    let err = diff().next_token("garbage").send().await.unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(
            cc::operation::get_differences::GetDifferencesError::InvalidContinuationTokenException(
                _
            )
        )
    ));
    let err = diff().max_results(0).send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidMaxResultsException");
    let err = diff().after_path("nope").send().await.unwrap_err();
    assert_eq!(code(&err), "PathDoesNotExistException");
    let err = diff().after_path("../x").send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidPathException");
    let err = c
        .get_differences()
        .repository_name("models")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CommitRequiredException");
    let err = c
        .get_differences()
        .repository_name("models")
        .after_commit_specifier("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CommitDoesNotExistException");
}

// ---------------------------------------------------------------------------------------------
// botocore oracle
// ---------------------------------------------------------------------------------------------

fn botocore_model(service: &str, version: &str) -> Value {
    let path = studio_ops_tests::moto::venv_dir()
        .join("lib/python3.11/site-packages/botocore/data")
        .join(service)
        .join(version)
        .join("service-2.json.gz");
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "cannot read {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks that every key of `v` is a member of `shape` (recursively); returns the offending
/// paths.
fn check_shape(model: &Value, shape: &str, v: &Value, path: &str, bad: &mut Vec<String>) {
    let s = &model["shapes"][shape];
    match s["type"].as_str() {
        Some("structure") => {
            let Some(obj) = v.as_object() else {
                bad.push(format!("{path}: expected an object for {shape}"));
                return;
            };
            for (k, val) in obj {
                match s["members"].get(k) {
                    Some(m) => check_shape(
                        model,
                        m["shape"].as_str().unwrap(),
                        val,
                        &format!("{path}.{k}"),
                        bad,
                    ),
                    None => bad.push(format!("{path}.{k} is not a member of {shape}")),
                }
            }
        }
        Some("list") => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_shape(
                        model,
                        s["member"]["shape"].as_str().unwrap(),
                        item,
                        &format!("{path}[{i}]"),
                        bad,
                    );
                }
            }
            None => bad.push(format!("{path}: expected a list for {shape}")),
        },
        Some("map") => {
            if let Some(obj) = v.as_object() {
                for (k, val) in obj {
                    check_shape(
                        model,
                        s["value"]["shape"].as_str().unwrap(),
                        val,
                        &format!("{path}.{k}"),
                        bad,
                    );
                }
            }
        }
        Some("timestamp") if !v.is_number() => {
            bad.push(format!("{path}: timestamp must be epoch seconds"));
        }
        Some("string") if !v.is_string() => {
            bad.push(format!("{path}: expected a string"));
        }
        Some("string") => {
            if let Some(e) = s["enum"].as_array()
                && !e.contains(v)
            {
                bad.push(format!("{path}: {v} is not in the enum of {shape}"));
            }
        }
        Some("integer" | "long") if !v.is_i64() => {
            bad.push(format!("{path}: expected an integer"));
        }
        Some("boolean") if !v.is_boolean() => {
            bad.push(format!("{path}: expected a boolean"));
        }
        _ => {}
    }
}

async fn raw_call(http: &reqwest::Client, url: &str, target: &str, body: &Value) -> (u16, Value) {
    let resp = http
        .post(url)
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    (status, v)
}

fn check_op(model: &Value, op: &str, resp: &Value, bad: &mut Vec<String>) {
    let o = &model["operations"][op];
    assert!(o.is_object(), "{op} is not in the botocore model");
    match o["output"]["shape"].as_str() {
        Some(shape) => check_shape(model, shape, resp, op, bad),
        None => {
            if resp != &json!({}) {
                bad.push(format!("{op} has no output shape but answered {resp}"));
            }
        }
    }
}

/// A shared JupyterLab space with the settings provision-users declares (on creation the app type and sharing too).
fn team_space(domain: &str, create: bool) -> Value {
    let mut settings = json!({
        "JupyterLabAppSettings": {
            "DefaultResourceSpec": { "InstanceType": "ml.t3.medium" },
            "AppLifecycleManagement": { "IdleSettings": { "IdleTimeoutInMinutes": 120 } },
        },
        "SpaceStorageSettings": { "EbsStorageSettings": { "EbsVolumeSizeInGb": 50 } },
    });
    let mut body =
        json!({ "DomainId": domain, "SpaceName": "team-lab", "SpaceDisplayName": "Team lab" });
    if create {
        settings["AppType"] = json!("JupyterLab");
        body["SpaceSharingSettings"] = json!({ "SharingType": "Shared" });
        body["Tags"] = json!([{ "Key": "studio-ops:managed-by", "Value": "provision-users" }]);
    }
    body["SpaceSettings"] = settings;
    body
}

#[tokio::test]
async fn responses_match_the_botocore_model() {
    let model = botocore_model("sagemaker", "2017-07-24");
    for op in sim::sagemaker::IMPLEMENTED_OPS {
        assert!(
            model["operations"][op].is_object(),
            "{op} is not a SageMaker operation"
        );
    }
    let env = start_sim(None, None).await;
    let http = reqwest::Client::new();
    let url = env.sim.url();
    let (status, created) = raw_call(
        &http,
        url,
        "SageMaker.CreateDomain",
        &json!({
            "DomainName": "oracle",
            "AuthMode": "SSO",
            "DefaultUserSettings": { "ExecutionRole": ROLE, "SecurityGroups": ["sg-1"] },
            "DomainSettings": { "SecurityGroupIds": ["sg-2"] },
            "SubnetIds": ["subnet-1"],
            "VpcId": "vpc-1",
            "AppNetworkAccessType": "VpcOnly",
            "Tags": [{ "Key": "a", "Value": "b" }],
        }),
    )
    .await;
    assert_eq!(status, 200);
    let mut bad = Vec::new();
    check_op(&model, "CreateDomain", &created, &mut bad);
    let d = created["DomainId"].as_str().unwrap().to_owned();
    let app = |owner: (&str, &str)| json!({ "DomainId": d, owner.0: owner.1, "AppType": "JupyterLab", "AppName": "default" });
    let calls: Vec<(&str, Value)> = vec![
        ("DescribeDomain", json!({ "DomainId": d })),
        ("ListDomains", json!({})),
        (
            "CreateUserProfile",
            json!({
                "DomainId": d, "UserProfileName": "erin",
                "SingleSignOnUserIdentifier": "UserName", "SingleSignOnUserValue": "erin",
                "UserSettings": { "ExecutionRole": ROLE },
                "Tags": [{ "Key": "owner", "Value": "erin" }],
            }),
        ),
        (
            "DescribeUserProfile",
            json!({ "DomainId": d, "UserProfileName": "erin" }),
        ),
        ("ListUserProfiles", json!({ "MaxResults": 1 })),
        (
            "UpdateUserProfile",
            json!({ "DomainId": d, "UserProfileName": "erin",
                    "UserSettings": { "DefaultLandingUri": "studio::" } }),
        ),
        (
            "CreateSpace",
            json!({
                "DomainId": d, "SpaceName": "erin-space", "SpaceDisplayName": "Erin",
                "SpaceSettings": {
                    "AppType": "JupyterLab",
                    "SpaceStorageSettings": { "EbsStorageSettings": { "EbsVolumeSizeInGb": 5 } },
                    "JupyterLabAppSettings": { "DefaultResourceSpec": { "InstanceType": "ml.t3.medium" } },
                },
                "OwnershipSettings": { "OwnerUserProfileName": "erin" },
                "SpaceSharingSettings": { "SharingType": "Private" },
            }),
        ),
        (
            "DescribeSpace",
            json!({ "DomainId": d, "SpaceName": "erin-space" }),
        ),
        ("ListSpaces", json!({ "DomainIdEquals": d })),
        (
            "UpdateSpace",
            json!({ "DomainId": d, "SpaceName": "erin-space", "SpaceDisplayName": "E" }),
        ),
        ("CreateApp", {
            let mut v = app(("SpaceName", "erin-space"));
            v["ResourceSpec"] = json!({ "InstanceType": "ml.t3.medium" });
            v["Tags"] = json!([{ "Key": "k", "Value": "v" }]);
            v
        }),
        ("CreateApp", app(("UserProfileName", "erin"))),
        ("DescribeApp", app(("SpaceName", "erin-space"))),
        ("ListApps", json!({ "DomainIdEquals": d, "MaxResults": 1 })),
        ("ListApps", json!({ "SpaceNameEquals": "erin-space" })),
        // A team shared space as provision-users creates and updates it (adapters/sagemaker.rs).
        ("CreateSpace", team_space(&d, true)),
        ("UpdateSpace", team_space(&d, false)),
        (
            "DescribeSpace",
            json!({ "DomainId": d, "SpaceName": "team-lab" }),
        ),
    ];
    // The team space's requests hold only members of the model's input shapes.
    for (op, body) in calls.iter().filter(|(_, b)| b["SpaceName"] == "team-lab") {
        if let Some(shape) = model["operations"][op]["input"]["shape"].as_str() {
            check_shape(&model, shape, body, &format!("{op} request"), &mut bad);
        }
    }
    let mut answers: BTreeMap<String, Value> = BTreeMap::new();
    for (op, body) in &calls {
        let (status, resp) = raw_call(&http, url, &format!("SageMaker.{op}"), body).await;
        assert_eq!(status, 200, "{op}: {resp}");
        check_op(&model, op, &resp, &mut bad);
        answers.insert((*op).to_owned(), resp);
    }
    let space_arn = format!("arn:aws:sagemaker:us-east-1:123456789012:space/{d}/erin-space");
    for (op, body) in [
        (
            "AddTags",
            json!({ "ResourceArn": space_arn, "Tags": [{ "Key": "x", "Value": "y" }] }),
        ),
        ("ListTags", json!({ "ResourceArn": space_arn })),
        (
            "DeleteTags",
            json!({ "ResourceArn": space_arn, "TagKeys": ["x"] }),
        ),
    ] {
        let (status, resp) = raw_call(&http, url, &format!("SageMaker.{op}"), &body).await;
        assert_eq!(status, 200, "{op}: {resp}");
        check_op(&model, op, &resp, &mut bad);
        answers.insert(op.to_owned(), resp);
    }
    for (op, body) in [
        ("DeleteApp", app(("UserProfileName", "erin"))),
        ("DeleteApp", app(("SpaceName", "erin-space"))),
        (
            "DeleteSpace",
            json!({ "DomainId": d, "SpaceName": "erin-space" }),
        ),
        (
            "DeleteUserProfile",
            json!({ "DomainId": d, "UserProfileName": "erin" }),
        ),
    ] {
        let (status, resp) = raw_call(&http, url, &format!("SageMaker.{op}"), &body).await;
        assert_eq!(status, 200, "{op}: {resp}");
        check_op(&model, op, &resp, &mut bad);
        answers.insert(op.to_owned(), resp);
    }
    // Error answers use AWS's envelope.
    let (status, resp) = raw_call(
        &http,
        url,
        "SageMaker.DescribeSpace",
        &json!({ "DomainId": d, "SpaceName": "erin-space" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(resp["__type"], "ResourceNotFound");
    assert!(resp["message"].is_string());
    // Every implemented operation was exercised.
    for op in sim::sagemaker::IMPLEMENTED_OPS {
        assert!(
            answers.contains_key(*op) || *op == "CreateDomain",
            "{op} was not exercised by the oracle"
        );
    }
    assert!(
        bad.is_empty(),
        "responses outside the model:\n{}",
        bad.join("\n")
    );
}

#[tokio::test]
async fn codecommit_responses_match_the_botocore_model() {
    let model = botocore_model("codecommit", "2015-04-13");
    for op in sim::codecommit::IMPLEMENTED_OPS {
        assert!(
            model["operations"][op].is_object(),
            "{op} is not a CodeCommit operation"
        );
    }
    let repo = make_repo();
    let env = start_sim(None, Some(repo.root.path().to_path_buf())).await;
    let http = reqwest::Client::new();
    let mut bad = Vec::new();
    for (op, body) in [
        ("GetRepository", json!({ "repositoryName": "models" })),
        (
            "GetBranch",
            json!({ "repositoryName": "models", "branchName": "main" }),
        ),
        ("ListBranches", json!({ "repositoryName": "models" })),
        (
            "GetCommit",
            json!({ "repositoryName": "models", "commitId": repo.c2 }),
        ),
        (
            "GetDifferences",
            json!({ "repositoryName": "models", "beforeCommitSpecifier": repo.c1,
                    "afterCommitSpecifier": repo.c2, "MaxResults": 5 }),
        ),
        (
            "GetFile",
            json!({ "repositoryName": "models", "filePath": "README.md" }),
        ),
        (
            "GetFolder",
            json!({ "repositoryName": "models", "folderPath": "/" }),
        ),
        // Pull requests, in order: one merged (three-way), one closed unmerged.
        (
            "CreatePullRequest",
            json!({ "title": "main into feature",
                    "targets": [{ "repositoryName": "models", "sourceReference": "main", "destinationReference": "feature" }] }),
        ),
        ("GetPullRequest", json!({ "pullRequestId": "1" })),
        (
            "MergePullRequestByThreeWay",
            json!({ "pullRequestId": "1", "repositoryName": "models", "sourceCommitId": repo.c2 }),
        ),
        (
            "CreatePullRequest",
            json!({ "title": "feature into main",
                    "targets": [{ "repositoryName": "models", "sourceReference": "feature", "destinationReference": "main" }] }),
        ),
        (
            "UpdatePullRequestStatus",
            json!({ "pullRequestId": "2", "pullRequestStatus": "CLOSED" }),
        ),
        ("GetPullRequest", json!({ "pullRequestId": "2" })),
    ] {
        let (status, resp) = raw_call(
            &http,
            env.sim.url(),
            &format!("CodeCommit_20150413.{op}"),
            &body,
        )
        .await;
        assert_eq!(status, 200, "{op}: {resp}");
        check_op(&model, op, &resp, &mut bad);
    }
    assert!(
        bad.is_empty(),
        "responses outside the model:\n{}",
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn binary_prints_ready_line_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let git = TempDir::new().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_studio-sim"))
        .args(["--port", "0", "--seed", "3", "--git-root"])
        .arg(git.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("studio-sim listening on ")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let stats = sim::AdminClient::new(&url).stats().await.unwrap();
    assert_eq!(stats.total_calls(), 0);
    let c = sm_client(&url).await;
    c.list_domains().send().await.unwrap();

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.next_line().await.unwrap(), None);
}
