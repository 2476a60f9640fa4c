//! Lambda event envelopes (S3, SNS, SQS, EventBridge, schedule) to object refs.
