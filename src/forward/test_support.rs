//! Test helpers shared by the forwarder's and the handler's unit tests: objects in memory, a
//! writer the test keeps a handle to, gzip.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use flate2::write::GzEncoder;

use crate::ports::{Fetch, FetchError, Fetched, ObjectRef};

pub const KEY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";
pub const LINE: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";

/// Objects in memory, by key.
#[derive(Default)]
pub struct Memory(pub HashMap<String, Vec<u8>>);

impl Fetch for Memory {
    async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
        match self.0.get(&object.key) {
            Some(bytes) => Ok(Fetched {
                body: Box::new(io::Cursor::new(bytes.clone())),
                size: Some(bytes.len() as u64),
                etag: Some("\"etag\"".into()),
                last_modified_ms: None,
            }),
            None => Err(FetchError {
                message: format!("s3://{}/{} does not exist", object.bucket, object.key),
                retryable: false,
            }),
        }
    }
}

/// A `Write` the test keeps a handle to.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Shared {
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }
}

pub fn gzip(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}
