//! Everything that calls an AWS SDK: client construction and region detection ([`clients`]),
//! the S3 adapters of the ports ([`s3`]: listing and state; [`object`]: streamed bodies), the
//! Firehose sink ([`firehose`]), the backfill's queue ([`sqs`]) and its age metric ([`metric`]), the doctor's questions ([`inspect`]) and the one classifier of
//! SDK errors ([`retry`]) they all use.
//!
//! This module imports only the ports, the sink, the settings and the core; nothing in the
//! domain imports it. `runtime` wires it in.

pub mod clients;
pub mod firehose;
pub mod inspect;
pub mod lake;
pub mod metric;
pub mod object;
mod put_body;
pub mod retry;
pub mod s3;
pub mod sqs;
pub mod upload;

pub use clients::{clients, clients_from_config, ClientError, Clients};
pub use firehose::{FirehoseSink, RetryPolicy};
pub use inspect::{doctor_clients, AwsInspect};
pub use metric::CloudWatchMetrics;
pub use object::{open_object, BodyReader, SourceError};
pub use s3::{AuditBucket, BucketClient, StateBucket};
pub use sqs::SqsQueue;
