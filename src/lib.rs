//! Forward Amazon Redshift audit logs from S3 to Amazon Data Firehose as typed JSON records.
//!
//! The parsing core (`logs`, `key`, `decode`, `output`) knows nothing of AWS; the edges
//! (`events`, `source`, `sink`, `handler`, `backfill`, `ledger`, `settings`, `runtime`) adapt it
//! to S3, Firehose and Lambda.

pub mod backfill;
pub mod cli;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod decode;
pub mod events;
pub mod handler;
pub mod key;
pub mod ledger;
pub mod logs;
pub mod output;
pub mod runtime;
pub mod settings;
pub mod sink;
pub mod source;
