//! One local file uploaded to S3, streamed from disk: the Batch Operations manifest of
//! `backfill --manifest s3://...`.

use aws_config::SdkConfig;

use super::retry;

/// Uploads a local file (the Batch Operations manifest) to `s3://bucket/key` with the
/// function's own credentials, streamed from disk; `Err` says why and whether a retry helps.
pub async fn upload_file(
    base: &SdkConfig,
    bucket: &str,
    key: &str,
    path: &std::path::Path,
) -> Result<(), (String, bool)> {
    let config = aws_sdk_s3::config::Builder::from(base)
        .force_path_style(base.endpoint_url().is_some())
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
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
