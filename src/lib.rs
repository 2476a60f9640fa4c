//! Forward Amazon Redshift audit logs from S3 to Amazon Data Firehose as typed JSON records.
//!
//! Imports point one way (DESIGN.md, "Layout"; checked by `tests/layout.rs`):
//!
//! - core: `logs`, `decode`, `key`, `time`, `output` (formats, no AWS, no async), `lake` (OCSF as
//!   Parquet for Security Lake);
//! - ports: `ports` (traits the domain needs, in-memory twins), `sink` (the sink port);
//! - domain: `events`, `settings`, `ledger`, `sessions`, `pipeline`, `report`, `metrics`;
//! - use cases: `forward`, then `backfill` and `doctor`, then `handler`;
//! - edges: `aws` (every SDK call), `runtime` (wiring), `diagnose` (the doctor's wiring),
//!   `progress` (the backfill's progress display), `cli`.

pub mod aws;
pub mod aws_names;
pub mod backfill;
pub mod cli;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod decode;
pub mod diagnose;
pub mod doctor;
pub mod events;
pub mod forward;
pub mod handler;
pub mod key;
pub mod lake;
pub mod ledger;
pub mod logs;
pub mod mask;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod ports;
pub mod progress;
pub mod redact;
pub mod report;
pub mod runtime;
pub mod sessions;
pub mod settings;
pub mod sink;
pub mod time;
