//! Where records go: Firehose batching and retry, stdout.
