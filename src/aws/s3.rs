//! The S3 adapters of the ports: the audit bucket's client (every request carries the expected
//! bucket owner), listing for the backfill, and the state store of the ledger.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::retry;
use crate::ports::{
    BoxFuture, ListError, ListObjects, Listed, Page, Precondition, StateError, StateStore, Stored,
    MAX_STATE_BYTES,
};

/// `ListObjectsV2` returns at most this many keys a page (S3 API reference; the default too).
pub const LIST_PAGE_KEYS: i32 = 1000;

/// An S3 client whose request builders always carry the expected bucket owner.
///
/// Every call to the audit bucket goes through one of these methods, so `EXPECTED_BUCKET_OWNER`
/// cannot be forgotten: S3 then refuses (403) any bucket owned by another account.
#[derive(Debug, Clone)]
pub struct BucketClient {
    client: aws_sdk_s3::Client,
    region: String,
    expected_owner: Option<String>,
}

/// The audit bucket's client, as the handler and the backfill name it.
pub type AuditBucket = BucketClient;

impl BucketClient {
    /// Wraps a client; `region` is the one the client was built for (informational).
    pub fn new(
        client: aws_sdk_s3::Client,
        region: impl Into<String>,
        expected_owner: Option<String>,
    ) -> BucketClient {
        BucketClient {
            client,
            region: region.into(),
            expected_owner,
        }
    }

    /// The region the client signs for and sends to.
    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn expected_owner(&self) -> Option<&str> {
        self.expected_owner.as_deref()
    }

    /// The bare client, e.g. to read its configuration. Requests built from it directly do NOT
    /// carry the expected owner: use the methods below for requests.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder {
        self.client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }

    pub fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::head_object::builders::HeadObjectFluentBuilder {
        self.client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }

    pub fn list_objects_v2(
        &self,
        bucket: &str,
    ) -> aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2FluentBuilder {
        self.client
            .list_objects_v2()
            .bucket(bucket)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }

    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }

    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::delete_object::builders::DeleteObjectFluentBuilder {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }

    pub fn head_bucket(
        &self,
        bucket: &str,
    ) -> aws_sdk_s3::operation::head_bucket::builders::HeadBucketFluentBuilder {
        self.client
            .head_bucket()
            .bucket(bucket)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }
}

/// Where the ledger, the cursor and the lease live.
#[derive(Debug, Clone)]
pub struct StateBucket {
    /// The function's own credentials; carries the expected owner when this is the audit bucket.
    pub s3: BucketClient,
    pub bucket: String,
    /// Ends with `/`.
    pub prefix: String,
}

impl ListObjects for BucketClient {
    fn list_page<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
        delimiter: Option<&'a str>,
        token: Option<String>,
    ) -> BoxFuture<'a, Result<Page, ListError>> {
        Box::pin(async move {
            let out = self
                .list_objects_v2(bucket)
                .prefix(prefix)
                .max_keys(LIST_PAGE_KEYS)
                .set_delimiter(delimiter.map(str::to_owned))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|err| ListError {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                    message: DisplayErrorContext(&err).to_string(),
                    retryable: retry::classify(&err).retryable,
                })?;
            let listed_at = crate::time::now_ms();
            let objects = out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(Listed {
                        key: o.key()?.to_string(),
                        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        // S3 always sends it; without it, the listing time sorts the object
                        // last, where it is checked against the ledger rather than skipped.
                        last_modified_ms: o
                            .last_modified()
                            .and_then(|t| t.to_millis().ok())
                            .unwrap_or(listed_at),
                    })
                })
                .collect();
            let prefixes = out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect();
            let next = if out.is_truncated() == Some(true) {
                out.next_continuation_token().map(str::to_owned)
            } else {
                None
            };
            Ok(Page {
                objects,
                prefixes,
                next,
            })
        })
    }
}

impl StateStore for StateBucket {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, StateError>> {
        Box::pin(async move {
            let out = match self.s3.get_object(&self.bucket, key).send().await {
                Ok(out) => out,
                Err(err) => {
                    let code = err.code().unwrap_or_default();
                    if code == "NoSuchKey" || status(&err) == Some(404) && code != "NoSuchBucket" {
                        return Ok(None);
                    }
                    return Err(store_error(self.location(key), &err));
                }
            };
            let etag = out.e_tag().unwrap_or_default().to_string();
            let size = out.content_length().unwrap_or(0);
            if usize::try_from(size).map_or(true, |n| n > MAX_STATE_BYTES) {
                // Forged: never read into memory.
                return Err(StateError::Corrupt {
                    location: self.location(key),
                    reason: format!(
                        "{size} bytes, more than the {MAX_STATE_BYTES} a state object may have"
                    ),
                });
            }
            let body = out.body.collect().await.map_err(|e| StateError::Store {
                location: self.location(key),
                message: format!("reading the body failed: {e}"),
                retryable: true,
            })?;
            Ok(Some(Stored {
                body: body.into_bytes().to_vec(),
                etag,
            }))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        condition: Precondition,
    ) -> BoxFuture<'a, Result<String, StateError>> {
        Box::pin(async move {
            let mut request = self
                .s3
                .put_object(&self.bucket, key)
                .content_type("application/json")
                .body(ByteStream::from(body));
            request = match condition {
                Precondition::None => request,
                Precondition::IfAbsent => request.if_none_match("*"),
                Precondition::IfMatch(etag) => request.if_match(etag),
            };
            match request.send().await {
                Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
                // 412 Precondition Failed; 409 ConditionalRequestConflict when a concurrent
                // conditional write is in progress. Both mean another writer got there first.
                Err(err)
                    if matches!(status(&err), Some(412 | 409))
                        || matches!(
                            err.code(),
                            Some("PreconditionFailed" | "ConditionalRequestConflict")
                        ) =>
                {
                    Err(StateError::Conflict {
                        location: self.location(key),
                    })
                }
                // `If-Match` on a key that was deleted meanwhile: the object we meant is gone.
                Err(err) if err.code() == Some("NoSuchKey") => Err(StateError::Conflict {
                    location: self.location(key),
                }),
                Err(err) => Err(store_error(self.location(key), &err)),
            }
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, StateError>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let out = self
                    .s3
                    .list_objects_v2(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|err| store_error(self.location(prefix), &err))?;
                keys.extend(
                    out.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
                token = out.next_continuation_token().map(str::to_owned);
                if keys.len() >= max || token.is_none() {
                    keys.truncate(max);
                    return Ok(keys);
                }
            }
        })
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    match err {
        SdkError::ServiceError(context) => Some(context.raw().status().as_u16()),
        _ => None,
    }
}

fn store_error<E>(location: String, err: &SdkError<E, HttpResponse>) -> StateError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    StateError::Store {
        location,
        message: DisplayErrorContext(err).to_string(),
        retryable: retry::classify(err).retryable,
    }
}
