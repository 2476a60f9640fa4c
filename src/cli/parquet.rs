//! `parse --format parquet --out DIR FILE...`: each input's `ocsf` lines written as the
//! Security Lake objects the function would put in the lake (`lake::local`), one line per
//! object written on stdout (its path, rows and bytes), errors on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{parse_path, FileError};
use crate::lake::local::DirWriter;
use crate::logs::LogType;
use crate::pipeline::Output;

pub(super) fn run(
    log_type: Option<LogType>,
    output: Output,
    files: &[PathBuf],
    dir: &Path,
) -> ExitCode {
    let mut failed = false;
    for path in files {
        let shown = path.display().to_string();
        let mut objects = DirWriter::new(dir, &shown);
        match parse_path(path, log_type, output, &mut objects) {
            Ok(summary) => match objects.finish() {
                Ok((written, stats)) => {
                    if let Some((line, reason)) = &summary.first_error {
                        crate::report::eprint(&format!(
                            "{shown}: {} of {} records could not be parsed and were written as base_event (first at line {line}: {reason})",
                            summary.parse_errors, summary.records
                        ));
                    }
                    for object in written {
                        println!(
                            "{}",
                            crate::mask::clean(&object.display().to_string(), 4096)
                        );
                    }
                    crate::report::eprint(&format!(
                        "{shown}: {} rows in {} objects, {} bytes, {} rows out of time order",
                        stats.lake_rows,
                        stats.lake_objects,
                        stats.lake_bytes,
                        stats.rows_out_of_order
                    ));
                }
                Err(e) => {
                    crate::report::eprint(&format!(
                        "{shown}: writing the Parquet objects failed: {e}"
                    ));
                    failed = true;
                }
            },
            Err(e) => {
                objects.abandon();
                let e = match e {
                    FileError::Write(e) => format!("writing the Parquet objects failed: {e}"),
                    e => e.to_string(),
                };
                crate::report::eprint(&format!("{shown}: {e}"));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
