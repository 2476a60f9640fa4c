//! Forward Amazon Redshift audit logs from S3 to Amazon Data Firehose as typed JSON records.
//!
//! The parsing core (`logs`, `key`, `output`) knows nothing of AWS; the edges (`source`, `sink`,
//! `events`, `handler`) adapt it to S3, Firehose and Lambda.

pub mod key;
pub mod logs;
pub mod events;
pub mod sink;
