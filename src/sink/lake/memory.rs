//! The lake's in-memory twin for tests: objects by (bucket, key), multipart uploads with their
//! parts, and a call that fails on demand (a cut part upload, a lost completion).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use super::{LakeObject, LakeStore, StoreError};

/// Which call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Put,
    Create,
    Part,
    /// The completion is applied but its answer lost (the caller sees an error).
    CompleteLost,
}

/// A multipart upload's object and its parts by number.
type Parts = (LakeObject, BTreeMap<i32, Vec<u8>>);

#[derive(Default)]
pub struct MemoryLake {
    objects: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    uploads: Mutex<HashMap<String, Parts>>,
    next: AtomicU64,
    /// The fault and how many calls of its kind pass before it strikes (once).
    fault: Mutex<Option<(Fault, AtomicI64)>>,
    pub aborted: AtomicU64,
}

impl MemoryLake {
    /// The `n`th call (from 0) of `kind` fails, once.
    pub fn fail(&self, kind: Fault, n: i64) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some((kind, AtomicI64::new(n)));
    }

    fn strikes(&self, kind: Fault) -> bool {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        let hit = match &*fault {
            Some((k, left)) if *k == kind => left.fetch_sub(1, Ordering::SeqCst) == 0,
            _ => false,
        };
        if hit {
            *fault = None;
        }
        hit
    }

    fn error(what: &str) -> StoreError {
        StoreError {
            message: format!("{what} failed (injected)"),
            retryable: true,
        }
    }

    /// Every complete object: (bucket, key) -> bytes.
    pub fn objects(&self) -> BTreeMap<(String, String), Vec<u8>> {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Multipart uploads neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl LakeStore for MemoryLake {
    async fn put(&self, object: &LakeObject, body: Vec<u8>) -> Result<(), StoreError> {
        if self.strikes(Fault::Put) {
            return Err(Self::error("PutObject"));
        }
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((object.bucket.clone(), object.key.clone()), body);
        Ok(())
    }

    async fn create_upload(&self, object: &LakeObject) -> Result<String, StoreError> {
        if self.strikes(Fault::Create) {
            return Err(Self::error("CreateMultipartUpload"));
        }
        let id = format!("upload-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), (object.clone(), BTreeMap::new()));
        Ok(id)
    }

    async fn upload_part(
        &self,
        _object: &LakeObject,
        upload: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<String, StoreError> {
        if self.strikes(Fault::Part) {
            return Err(Self::error("UploadPart"));
        }
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let (_, parts) = uploads
            .get_mut(upload)
            .ok_or_else(|| Self::error("no such upload"))?;
        parts.insert(number, body);
        Ok(format!("etag-{number}"))
    }

    async fn complete(
        &self,
        object: &LakeObject,
        upload: &str,
        parts: Vec<(i32, String)>,
    ) -> Result<(), StoreError> {
        let (_, stored) = self
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(upload)
            .ok_or_else(|| Self::error("no such upload"))?;
        let mut body = Vec::new();
        for (number, _) in &parts {
            body.extend_from_slice(
                stored
                    .get(number)
                    .ok_or_else(|| Self::error("no such part"))?,
            );
        }
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((object.bucket.clone(), object.key.clone()), body);
        if self.strikes(Fault::CompleteLost) {
            return Err(Self::error("CompleteMultipartUpload"));
        }
        Ok(())
    }

    async fn abort(&self, _object: &LakeObject, upload: &str) -> Result<(), StoreError> {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(upload);
        self.aborted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
