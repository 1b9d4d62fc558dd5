//! The artifacts port over S3: PutObject of the script-mode source archive, encrypted with the configured
//! KMS key (else SSE-S3).

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use studio_ops_shared::{AwsCall, AwsCallError, ErrorClass};

use crate::paths::S3Location;
use crate::ports::Artifacts;

#[derive(Clone)]
pub struct S3Artifacts {
    client: Client,
}

impl S3Artifacts {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl Artifacts for S3Artifacts {
    async fn put(
        &self,
        s3_uri: &str,
        bytes: Vec<u8>,
        content_type: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), AwsCallError> {
        // A URI the plan built from the configuration: no call was made, and retrying cannot fix it.
        let location = S3Location::parse(s3_uri).map_err(|e| AwsCallError {
            operation: "PutObject",
            class: ErrorClass::NonRetryable,
            code: None,
            message: e.to_string(),
        })?;
        let request = self
            .client
            .put_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        let request = match kms_key_id {
            Some(key) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key),
            None => request.server_side_encryption(ServerSideEncryption::Aes256),
        };
        request.send().await.call("PutObject")?;
        Ok(())
    }
}
