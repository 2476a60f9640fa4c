//! The walk's own state as the `doctor` sees it: every cursor and the lease, checked exactly as
//! the backfill checks them when it reads them, so the doctor fails where the walk would stop
//! (`NotRetryable.BackfillStateRefused`) instead of saying the state is fine.

use super::{check, Cursor, Ledger, CURSOR_DIR, CURSOR_REPAIR};
use crate::ports::StateError;

/// Cursors checked at most: one per partition tree (account and region), a few dozen in a large
/// deployment.
pub const MAX_LISTED_CURSORS: usize = 1000;

impl Ledger {
    /// The cursors (at most [`MAX_LISTED_CURSORS`]) and the lease the backfill would refuse,
    /// each as the error the walk would stop with (it names the key); empty when the walk can
    /// run. A cursor is checked against the tree it names, and must sit at that tree's key:
    /// one under another key is refused by whichever walk reads it.
    pub async fn refused_walk_state(&self) -> Result<Vec<StateError>, StateError> {
        let now = self.clock.now_ms();
        let mut refused = Vec::new();
        let folder = format!("{}{CURSOR_DIR}", self.prefix);
        for key in self.store.list(&folder, MAX_LISTED_CURSORS).await? {
            let Some(stored) = self.store.get(&key).await? else {
                continue;
            };
            let checked = check::decode::<Cursor>(&stored.body).and_then(|c| {
                if self.cursor_key(&c.bucket, &c.prefix) != key {
                    return Err(format!(
                        "it names the tree {}, whose cursor is not this key",
                        crate::mask::quote(&format!("s3://{}/{}", c.bucket, c.prefix))
                    ));
                }
                check::check_cursor(&c, &c.bucket, &c.prefix, now)
            });
            if let Err(reason) = checked {
                refused.push(self.refused(&key, reason, CURSOR_REPAIR));
            }
        }
        let lease_key = self.lease_key();
        if let Some(stored) = self.store.get(&lease_key).await? {
            if let Err(e) = self.read_lease(&lease_key, &stored.body, now) {
                refused.push(e);
            }
        }
        Ok(refused)
    }
}
