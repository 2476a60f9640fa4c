//! `parse` on the two other inputs, so users can replay what the function received:
//!
//! - a CloudTrail file, told by its name (`<account>_CloudTrail_<region>_<time>_<unique>.json[.gz]`):
//!   its events of `CLOUDTRAIL_EVENT_SOURCES` (default: Redshift's) as the trail loop writes them,
//!   streamed; `source.bucket` is `null`.
//! - a saved CloudWatch Logs subscription event, told by its content: the event Lambda receives
//!   (`{"awslogs": {"data": ...}}`) or its decoded payload (`{"logEvents": [...], ...}`). The
//!   region is `AWS_REGION` (the function's), `null` when unset.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::{write_all, FileError, FileSummary};
use crate::cloudtrail::{has_trail_name, parse_trail_key, EventSources, TrailProvenance};
use crate::cloudwatch::batch_group;
use crate::events::decode_log_batch;
use crate::pipeline::{self, BatchSpec, Output, TrailSpec};

/// Largest file read to see whether it is a subscription event: Lambda's payload limit is
/// 6 MB, so a larger file is not one.
const MAX_EVENT_FILE: u64 = 8 * 1024 * 1024;

/// Parses `path` when it is a trail file or a saved subscription event; `None` otherwise (the
/// caller reads it as an audit log).
pub(super) fn parse_other(
    path: &Path,
    shown: &str,
    output: Output,
    out: &mut impl Write,
) -> Option<Result<FileSummary, FileError>> {
    match parse_trail_key(shown) {
        Ok(name) => return Some(trail(path, shown, &name, output, out)),
        // A bad time, account or region in a trail's name: its reason, not the audit parser's.
        Err(e) if has_trail_name(shown) && !e.is_not_events() => {
            return Some(Err(FileError::Batch(e.to_string())))
        }
        Err(_) => {}
    }
    let mut text = Vec::new();
    let file = File::open(path).ok()?;
    file.take(MAX_EVENT_FILE).read_to_end(&mut text).ok()?;
    let batch = match decode_log_batch(&text)? {
        Ok(batch) => batch,
        Err(reason) => return Some(Err(FileError::Batch(reason))),
    };
    if batch.data.is_control() {
        return Some(Ok(FileSummary::default()));
    }
    let group = match batch_group(&batch.data) {
        Ok(group) => group,
        Err(e) => return Some(Err(FileError::Batch(e.to_string()))),
    };
    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let spec = BatchSpec {
        group: &group,
        output,
        region: region.as_deref(),
        max_line: None,
        sessions: None,
        collect: None,
    };
    Some(write_all(out, |emit| {
        pipeline::run_batch(&batch.data, &spec, emit)
    }))
}

fn trail(
    path: &Path,
    shown: &str,
    name: &crate::cloudtrail::TrailFileName,
    output: Output,
    out: &mut impl Write,
) -> Result<FileSummary, FileError> {
    let sources = std::env::var(crate::settings::var::CLOUDTRAIL_EVENT_SOURCES)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|list| EventSources::from_list(&list))
        .transpose()
        .map_err(|e| FileError::Batch(e.to_string()))?
        .unwrap_or_default();
    let provenance = TrailProvenance::new(Some(name), None, shown);
    let input = File::open(path).map_err(FileError::Open)?;
    let spec = TrailSpec {
        sources: &sources,
        format: output.format,
        provenance: &provenance,
        name: shown,
        max_line: None,
        redact: output.redact,
    };
    write_all(out, |emit| pipeline::run_trail(input, &spec, emit))
}
