//! Adapter: the identity port over one `aws-sdk-identitystore` client and one identity store. Retries are the
//! SDK's; a group or user that does not exist is `None`, any other failure an `AwsCallError`.

use aws_sdk_identitystore::types::MemberId;
use studio_ops_shared::{AwsCall, AwsCallError};

use crate::ports::IdentityPort;

/// The identity store's error code for "no such group or user".
const NOT_FOUND: &str = "ResourceNotFoundException";
/// ListGroupMemberships page size.
const PAGE_SIZE: i32 = 100;

#[derive(Clone)]
pub struct IdentityStore {
    client: aws_sdk_identitystore::Client,
    identity_store_id: String,
}

impl IdentityStore {
    pub fn new(
        client: aws_sdk_identitystore::Client,
        identity_store_id: impl Into<String>,
    ) -> Self {
        Self {
            client,
            identity_store_id: identity_store_id.into(),
        }
    }
}

impl IdentityPort for IdentityStore {
    async fn group_name(&self, group_id: &str) -> Result<Option<String>, AwsCallError> {
        let found = self
            .client
            .describe_group()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .send()
            .await
            .call("DescribeGroup")
            .map(Some)
            .or_else(not_found_is_none)?;
        Ok(found.map(|out| {
            out.display_name()
                .map_or_else(|| group_id.to_string(), str::to_string)
        }))
    }

    async fn group_member_ids(&self, group_id: &str) -> Result<Vec<String>, AwsCallError> {
        let mut pages = self
            .client
            .list_group_memberships()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.call("ListGroupMemberships")?;
            for membership in page.group_memberships() {
                // Identity Center groups hold users only; any other member kind has no Studio profile.
                if let Some(MemberId::UserId(id)) = membership.member_id() {
                    out.push(id.clone());
                }
            }
        }
        Ok(out)
    }

    async fn user_name(&self, user_id: &str) -> Result<Option<String>, AwsCallError> {
        let found = self
            .client
            .describe_user()
            .identity_store_id(&self.identity_store_id)
            .user_id(user_id)
            .send()
            .await
            .call("DescribeUser")
            .map(Some)
            .or_else(not_found_is_none)?;
        let Some(out) = found else {
            return Ok(None);
        };
        match out.user_name() {
            Some(name) if !name.trim().is_empty() => Ok(Some(name.to_string())),
            _ => Err(AwsCallError::malformed("DescribeUser", "UserName")),
        }
    }
}

fn not_found_is_none<T>(err: AwsCallError) -> Result<Option<T>, AwsCallError> {
    if err.is(NOT_FOUND) {
        Ok(None)
    } else {
        Err(err)
    }
}
