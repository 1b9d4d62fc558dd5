//! Adapter: the identity port over one `aws-sdk-identitystore` client and one identity store.

use aws_sdk_identitystore::types::MemberId;

use crate::ports::{IdentityPort, PortError, persist};

const NOT_FOUND: &str = "ResourceNotFoundException";

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
    async fn group_name(&self, group_id: &str) -> Result<Option<String>, PortError> {
        persist(|| async {
            match self
                .client
                .describe_group()
                .identity_store_id(&self.identity_store_id)
                .group_id(group_id)
                .send()
                .await
            {
                Ok(out) => Ok(Some(
                    out.display_name()
                        .map_or_else(|| group_id.to_string(), str::to_string),
                )),
                Err(e) => not_found_is_none(PortError::from_sdk("DescribeGroup", &e)),
            }
        })
        .await
    }

    async fn group_member_ids(&self, group_id: &str) -> Result<Vec<String>, PortError> {
        persist(|| async {
            let mut pages = self
                .client
                .list_group_memberships()
                .identity_store_id(&self.identity_store_id)
                .group_id(group_id)
                .max_results(100)
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| PortError::from_sdk("ListGroupMemberships", &e))?;
                for membership in page.group_memberships() {
                    // Identity Center groups hold users only; any other member kind has no Studio profile.
                    if let Some(MemberId::UserId(id)) = membership.member_id() {
                        out.push(id.clone());
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn user_name(&self, user_id: &str) -> Result<Option<String>, PortError> {
        persist(|| async {
            match self
                .client
                .describe_user()
                .identity_store_id(&self.identity_store_id)
                .user_id(user_id)
                .send()
                .await
            {
                Ok(out) => match out.user_name() {
                    Some(name) if !name.trim().is_empty() => Ok(Some(name.to_string())),
                    _ => Err(PortError::malformed("DescribeUser", "UserName")),
                },
                Err(e) => not_found_is_none(PortError::from_sdk("DescribeUser", &e)),
            }
        })
        .await
    }
}

fn not_found_is_none<T>(err: PortError) -> Result<Option<T>, PortError> {
    if err.code.as_deref() == Some(NOT_FOUND) {
        Ok(None)
    } else {
        Err(err)
    }
}
