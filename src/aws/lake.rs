//! The Security Lake port over S3: PutObject and multipart uploads into each custom source's
//! location, each class with its own client: the source's provider role assumed (with
//! `SECURITY_LAKE_EXTERNAL_ID`) when the entry names one, else the function's own credentials.
//! A role is assumed once and its credentials cached and renewed by the client.

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_sdk_s3::config::{Region, SharedCredentialsProvider};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::clients::{s3_client, timeouts, STS_ATTEMPT_TIMEOUT, STS_OPERATION_TIMEOUT};
use super::retry;
use crate::lake::Class;
use crate::settings::lake::SecurityLake;
use crate::sink::lake::{LakeObject, LakeStore, Location, StoreError};

/// Session name of the assumed provider roles, shown in the lake account's CloudTrail.
pub const LAKE_SESSION_NAME: &str = "redshift-audit-forwarder-lake";

/// The lake's buckets, a client per class.
#[derive(Debug, Clone)]
pub struct LakeBuckets {
    clients: Vec<(Class, aws_sdk_s3::Client)>,
}

/// The region of a Security Lake bucket from its name (`aws-security-data-lake-<region>-<id>`).
pub fn lake_region(bucket: &str) -> Option<&str> {
    let rest = bucket.strip_prefix("aws-security-data-lake-")?;
    let (region, id) = rest.rsplit_once('-')?;
    (!id.is_empty() && crate::aws_names::is_region(region)).then_some(region)
}

/// The clients of every source, and the locations the sink writes to.
pub async fn lake_buckets(
    base: &SdkConfig,
    lake: &SecurityLake,
    path_style: bool,
) -> (LakeBuckets, Vec<Location>) {
    let home = base.region().cloned();
    let mut clients = Vec::new();
    let mut locations = Vec::new();
    for source in &lake.sources {
        let provider = match &source.role_arn {
            Some(role) => {
                let sts = base
                    .to_builder()
                    .timeout_config(timeouts(STS_ATTEMPT_TIMEOUT, STS_OPERATION_TIMEOUT))
                    .build();
                let mut builder = AssumeRoleProvider::builder(role.as_str())
                    .session_name(LAKE_SESSION_NAME)
                    .configure(&sts);
                if let Some(id) = &lake.external_id {
                    builder = builder.external_id(id.as_str());
                }
                Some(SharedCredentialsProvider::new(builder.build().await))
            }
            None => None,
        };
        let region = lake_region(&source.bucket)
            .map(|r| Region::new(r.to_string()))
            .or(home.clone())
            .unwrap_or_else(|| Region::new("us-east-1"));
        clients.push((source.class, s3_client(base, region, provider, path_style)));
        locations.push(Location {
            class: source.class,
            bucket: source.bucket.clone(),
            prefix: source.prefix.clone(),
        });
    }
    (LakeBuckets { clients }, locations)
}

impl LakeBuckets {
    fn client(&self, object: &LakeObject) -> Result<&aws_sdk_s3::Client, StoreError> {
        self.clients
            .iter()
            .find(|(c, _)| *c == object.class)
            .map(|(_, client)| client)
            .ok_or_else(|| StoreError {
                message: format!("no client for {}", object.class.name()),
                retryable: false,
            })
    }
}

fn failed<E>(
    what: &str,
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let c = retry::classify(err);
    StoreError {
        message: format!("{what}: {}: {}", c.code, c.message),
        retryable: c.retryable,
    }
}

impl LakeStore for LakeBuckets {
    async fn put(&self, object: &LakeObject, body: Vec<u8>) -> Result<(), StoreError> {
        self.client(object)?
            .put_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .content_type("application/vnd.apache.parquet")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| failed("PutObject", &e))?;
        Ok(())
    }

    async fn create_upload(&self, object: &LakeObject) -> Result<String, StoreError> {
        let out = self
            .client(object)?
            .create_multipart_upload()
            .bucket(&object.bucket)
            .key(&object.key)
            .content_type("application/vnd.apache.parquet")
            .send()
            .await
            .map_err(|e| failed("CreateMultipartUpload", &e))?;
        out.upload_id.ok_or_else(|| StoreError {
            message: "CreateMultipartUpload: no upload id in the answer".into(),
            retryable: true,
        })
    }

    async fn upload_part(
        &self,
        object: &LakeObject,
        upload: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<String, StoreError> {
        let out = self
            .client(object)?
            .upload_part()
            .bucket(&object.bucket)
            .key(&object.key)
            .upload_id(upload)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| failed("UploadPart", &e))?;
        out.e_tag.ok_or_else(|| StoreError {
            message: "UploadPart: no ETag in the answer".into(),
            retryable: true,
        })
    }

    async fn complete(
        &self,
        object: &LakeObject,
        upload: &str,
        parts: Vec<(i32, String)>,
    ) -> Result<(), StoreError> {
        let parts = parts
            .into_iter()
            .map(|(n, etag)| CompletedPart::builder().part_number(n).e_tag(etag).build())
            .collect();
        self.client(object)?
            .complete_multipart_upload()
            .bucket(&object.bucket)
            .key(&object.key)
            .upload_id(upload)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed("CompleteMultipartUpload", &e))?;
        Ok(())
    }

    async fn abort(&self, object: &LakeObject, upload: &str) -> Result<(), StoreError> {
        self.client(object)?
            .abort_multipart_upload()
            .bucket(&object.bucket)
            .key(&object.key)
            .upload_id(upload)
            .send()
            .await
            .map_err(|e| failed("AbortMultipartUpload", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lake_buckets_region_comes_from_its_name() {
        assert_eq!(
            lake_region("aws-security-data-lake-eu-west-1-abcdef0123456789"),
            Some("eu-west-1")
        );
        assert_eq!(lake_region("my-bucket"), None);
        assert_eq!(lake_region("aws-security-data-lake-nowhere-x"), None);
    }
}
