//! 10 (with `DESTINATIONS` naming the lake): `lake`: every class the enabled log types need has
//! a custom source, and each source's location is writable with its credentials (its provider
//! role assumed, when the entry names one). The probe starts a multipart upload under the
//! location and aborts it: `CreateMultipartUpload` needs `s3:PutObject`, as the function's
//! writes do, and no object ever appears in the lake, where an empty or foreign file would
//! break the crawler's table.

use crate::lake::Class;
use crate::ports::BoxFuture;
use crate::settings::lake::needed_classes;
use crate::sink::lake::{LakeObject, LakeStore, StoreError};

use super::{Check, Doctor, Status};

/// Where the probe's upload is started, under each location.
pub const LAKE_PROBE: &str = "redshift-audit-forwarder-doctor-probe.parquet";

/// Starts and aborts an upload (object safe, for the doctor).
pub trait LakeProbe: Send + Sync {
    fn probe<'a>(&'a self, object: &'a LakeObject) -> BoxFuture<'a, Result<(), StoreError>>;
}

impl<T: LakeStore> LakeProbe for T {
    fn probe<'a>(&'a self, object: &'a LakeObject) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let upload = self.create_upload(object).await?;
            self.abort(object, &upload).await
        })
    }
}

impl Doctor {
    /// The lake check, when the lake is a destination.
    pub(super) async fn lake(&self) -> Option<Check> {
        let (n, name) = (11, "lake");
        let lake = self.settings.destinations.security_lake.as_ref()?;
        let needed = needed_classes(&self.settings.log_types, self.settings.cloudtrail);
        let missing: Vec<&str> = needed
            .iter()
            .filter(|c| !lake.sources.iter().any(|s| s.class == **c))
            .map(|c| c.name())
            .collect();
        if !missing.is_empty() {
            return Some(Check::not_ok(
                n,
                name,
                Status::Failed,
                format!("no custom source for {}", missing.join(", ")),
                "Create a Security Lake custom source for each class (docs/SECURITY_LAKE.md) and add it to SECURITY_LAKE_SOURCES.",
            ));
        }
        let Some(probe) = &self.lake else {
            return Some(Check::not_ok(
                n,
                name,
                Status::Failed,
                "the lake's clients could not be built",
                "Check SECURITY_LAKE_SOURCES and AWS_REGION, then run the doctor again.",
            ));
        };
        let mut written = Vec::new();
        for source in &lake.sources {
            let object = LakeObject {
                class: source.class,
                bucket: source.bucket.clone(),
                key: format!("{}{LAKE_PROBE}", source.prefix),
            };
            let shown = format!("s3://{}/{}", source.bucket, source.prefix);
            let how = source
                .role_arn
                .as_deref()
                .map_or("the function's own role".to_string(), |r| {
                    format!("role {r}")
                });
            if let Err(e) = probe.probe(&object).await {
                return Some(Check::not_ok(
                    n,
                    name,
                    Status::Failed,
                    format!(
                        "{}: cannot write {shown} with {how}: {e}",
                        source.class.name()
                    ),
                    fix_for(source.role_arn.is_some()),
                ));
            }
            written.push(format!("{} -> {shown}", source.class.name()));
        }
        let unused: Vec<&str> = Class::ALL
            .iter()
            .filter(|c| !lake.sources.iter().any(|s| s.class == **c))
            .map(|c| c.name())
            .collect();
        let mut detail = format!("writable: {}", written.join(", "));
        if !unused.is_empty() {
            detail.push_str(&format!(
                "; no source for {} (not needed by LOG_TYPES)",
                unused.join(", ")
            ));
        }
        Some(Check::ok(n, name, detail))
    }
}

fn fix_for(role: bool) -> &'static str {
    if role {
        "Check that the provider role trusts this function's role with SECURITY_LAKE_EXTERNAL_ID as external ID, and that the function may sts:AssumeRole it (the template grants it)."
    } else {
        "Grant the function s3:PutObject and s3:AbortMultipartUpload under the location (the template does), or give the source's provider role in SECURITY_LAKE_SOURCES."
    }
}
