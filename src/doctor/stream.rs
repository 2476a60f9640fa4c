//! The doctor's check of the delivery stream: 8 `stream` (exists, `ACTIVE`, takes direct puts).

use super::{Check, Doctor, Status, NAMES};
use crate::ports::InspectError;

impl Doctor {
    /// 8: the delivery stream.
    pub(super) async fn stream(&self) -> Check {
        let (n, name) = (8, NAMES[7]);
        let stream = self.settings.delivery_stream.as_str();
        if !self.settings.destinations.firehose {
            return Check::ok(n, name, "Firehose is not a destination (DESTINATIONS)");
        }
        match self.inspect.stream(stream).await {
            Err(InspectError::NotFound(e)) => Check::not_ok(n, name, Status::Failed,
                format!("Firehose stream {stream:?} does not exist: {e}"),
                "Create the stream (Direct PUT) in the function's region, or set DELIVERY_STREAM to an existing stream's name."),
            Err(InspectError::Denied(e)) => Check::not_ok(n, name, Status::Failed,
                format!("cannot describe Firehose stream {stream:?}: {e}"),
                "Grant the function firehose:DescribeDeliveryStream and firehose:PutRecordBatch on the stream (the template does)."),
            Err(InspectError::Failed(e)) => Check::not_ok(n, name, Status::Failed,
                format!("cannot describe Firehose stream {stream:?}: {e}"),
                "Check the network path to Firehose and AWS_REGION, then run the doctor again."),
            Ok(s) if s.status != "ACTIVE" => Check::not_ok(n, name, Status::Failed,
                format!("Firehose stream {stream:?} is {}, not ACTIVE", s.status),
                "Wait until the stream is ACTIVE, or recreate it if it failed."),
            Ok(s) if s.stream_type != "DirectPut" => Check::not_ok(n, name, Status::Failed,
                format!("Firehose stream {stream:?} reads from {} and refuses direct puts", s.stream_type),
                "Point DELIVERY_STREAM at a Direct PUT stream: PutRecordBatch is refused by streams with a Kinesis or MSK source."),
            Ok(s) => Check::ok(n, name, format!("Firehose stream {stream:?} is ACTIVE, takes direct puts, and delivers to {}", s.destination)),
        }
    }
}
