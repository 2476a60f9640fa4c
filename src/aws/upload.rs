//! One local file uploaded to S3, streamed from disk: the Batch Operations manifest of
//! `backfill --manifest s3://...`.

use aws_config::SdkConfig;

use super::clients::{detect_region, in_region, path_style, s3_client, ClientError};
use super::retry;

/// Uploads a local file (the Batch Operations manifest) to `s3://bucket/key` with the
/// function's own credentials, streamed from disk, through an S3 client built as every other
/// (`clients::s3_client`: its timeouts, stall protection and addressing) in the bucket's own
/// region; `Err` says why and whether a retry helps.
pub async fn upload_file(
    base: &SdkConfig,
    bucket: &str,
    key: &str,
    path: &std::path::Path,
) -> Result<(), (String, bool)> {
    let failed = |e: ClientError| (e.to_string(), e.is_retryable());
    let region = base
        .region()
        .cloned()
        .ok_or_else(|| failed(ClientError::NoRegion))?;
    let home = s3_client(base, region, None, path_style(base));
    // The manifest's bucket may be in another region than the caller's: S3 names it.
    let client = match detect_region(&home, bucket, None, "--manifest").await {
        Ok(Some(region)) => in_region(&home, &region),
        Ok(None) => home,
        Err(e) => return Err(failed(e)),
    };
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .map_err(|e| (format!("reading {}: {e}", path.display()), false))?;
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("text/csv")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let c = retry::classify(&e);
            (format!("{}: {}", c.code, c.message), c.retryable)
        })?;
    Ok(())
}
