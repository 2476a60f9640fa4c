//! The walk itself: the trees least advanced first, each tree's days in order, objects in
//! (last-modified, key) order as far as the days listed allow (see the module documentation).

use super::pending::Pending;
use super::{
    day_folder, day_of, first_day_for_cursor, first_day_for_start, is_behind_cursor, margin_ms,
    starts_in_time, Backfill, Event, Halt, Run, Stopped, TreeCursor, LEASE_TTL_MS, MS_PER_DAY,
};
use crate::forward::Forwarder;
use crate::ledger::{Cursor, Position};
use crate::ports::{Fetch, Listed};
use crate::sink::Sink;
use crate::time::parse_rfc3339_ms as rfc3339_to_ms;

impl Backfill {
    pub(super) async fn walk<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
    ) -> Result<(), Halt>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        if run.options.dry_run || run.options.retry_set_aside {
            self.set_aside_objects(forwarder, run).await?;
        }
        let trails = forwarder.filter.cloudtrail.is_some();
        let trees = self.find_trees(&mut run.summary, trails).await?;
        run.summary.trees = trees.len() as u64;
        if trees.is_empty() {
            tracing::warn!(bucket = %self.bucket, prefix = %self.prefix, "no day partitions (YYYY/MM/DD/) found under the audit prefix");
        }
        let mut cursors = Vec::with_capacity(trees.len());
        for (tree, years) in trees {
            run.summary.state_reads += 1;
            let stored = self.ledger.cursor(&self.bucket, &tree).await?;
            cursors.push(TreeCursor {
                position: stored.as_ref().and_then(|c| c.value.position.clone()),
                tree,
                years,
                stored,
                resume_day: None,
                pinned_day: None,
                floor_day: None,
            });
        }
        // Least advanced first, so a tree with a long history does not keep the others waiting.
        cursors.sort_by_key(|c| c.stored.as_ref().map(|s| s.value.resume_day));
        for mut cursor in cursors {
            let walked = self.walk_tree(forwarder, run, &mut cursor).await;
            // What the fan-out batched is sent before the cursor is saved, however the walk ended.
            let flushed = match &self.queue {
                Some(queue) if !run.options.dry_run => self.flush(&**queue, run, &mut cursor).await,
                _ => Ok(()),
            };
            let saved = self.save_cursor(run, &mut cursor).await;
            walked?;
            flushed?;
            saved?;
        }
        Ok(())
    }

    async fn walk_tree<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
    ) -> Result<(), Halt>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        let options = run.options;
        let start_ms = options.since_ms.or(self.start_time_ms);
        let stored = cursor.stored.as_ref().map(|s| s.value.clone());
        // A manual run from a time walks from there and ignores the cursor's position.
        let resume_from = stored.as_ref().filter(|_| options.since_ms.is_none());
        let Some(first_day) = self.first_day(run, cursor, resume_from).await? else {
            return Ok(());
        };
        let first_day = first_day.max(crate::ledger::EARLIEST_DAY);
        if let Some(c) = &stored {
            if first_day > c.resume_day {
                cursor.floor_day = Some(c.resume_day);
            }
        }
        let behind = resume_from.and_then(|c| c.position.clone());
        let today = day_of(self.clock.now_ms());
        let mut pending = Pending::default();
        for day in first_day..=today {
            // Not handled yet: what is pending, and this day onwards.
            cursor.resume_day = Some(pending.earliest_day().map_or(day, |d| d.min(day)));
            self.check_time(run)
                .await
                .inspect_err(|_| run.summary.freshness.left_behind(&pending))?;
            (run.on_event)(Event::Day {
                tree: &cursor.tree,
                day,
            });
            let folder = day_folder(&cursor.tree, day);
            let (objects, _) = self.list_all(&folder, None, &mut run.summary).await?;
            run.summary.days_walked += 1;
            run.summary.keys_listed += objects.len() as u64;
            let (mut admitted, mut admitted_bytes) = (0, 0);
            for object in objects {
                if let Some(position) =
                    self.admit(forwarder, run, &object, start_ms, behind.as_ref())
                {
                    admitted += 1;
                    admitted_bytes += object.size;
                    pending.insert(position, object, day);
                }
            }
            (run.on_event)(Event::Listed {
                objects: admitted,
                bytes: admitted_bytes,
            });
            // Everything last modified before the next day began is known now.
            let horizon = if day == today {
                i64::MAX
            } else {
                (day + 1) * MS_PER_DAY
            };
            while pending.first_before(horizon) {
                self.check_time(run)
                    .await
                    .inspect_err(|_| run.summary.freshness.left_behind(&pending))?;
                let Some((position, object, object_day)) = pending.pop_first() else {
                    break;
                };
                // Today's partition stays open: the next walk lists it again.
                let next = pending.earliest_day().map_or(day + 1, |d| d.min(day + 1));
                cursor.resume_day = Some(next.min(today));
                self.process(forwarder, run, cursor, position, &object, object_day)
                    .await?;
            }
        }
        cursor.resume_day = Some(today);
        Ok(())
    }

    /// The first day to list in a tree; see the module documentation. `None` when the tree
    /// holds no day partition at all.
    async fn first_day(
        &self,
        run: &mut Run<'_>,
        cursor: &mut TreeCursor,
        resume_from: Option<&Cursor>,
    ) -> Result<Option<i64>, Halt> {
        Ok(
            match (run.options.since_ms, resume_from, self.start_time_ms) {
                (Some(since), _, _) => Some(first_day_for_start(since)),
                (None, Some(c), start) => {
                    let from_cursor = first_day_for_cursor(c, self.lookback_days);
                    Some(start.map_or(from_cursor, |s| from_cursor.max(first_day_for_start(s))))
                }
                (None, None, Some(start)) => Some(first_day_for_start(start)),
                (None, None, None) => {
                    let years = std::mem::take(&mut cursor.years);
                    self.earliest_day(&cursor.tree, &years, &mut run.summary)
                        .await?
                }
            },
        )
    }

    /// Whether a listed object is one to handle in this walk (selected, in time, not well
    /// behind the cursor), counted either way; its position when it is.
    fn admit<F, M>(
        &self,
        forwarder: &Forwarder<F, M>,
        run: &mut Run<'_>,
        object: &Listed,
        start_ms: Option<i64>,
        behind: Option<&Position>,
    ) -> Option<Position> {
        let name = forwarder.filter.select(&object.key).ok()?;
        run.summary.objects_seen += 1;
        if let crate::events::Selected::AuditLog(audit) = &name {
            run.summary.freshness.see(audit);
        }
        if let Some(start) = start_ms {
            // A name that passed the filter always has a valid time.
            let file_ms = rfc3339_to_ms(name.file_time()).unwrap_or(i64::MAX);
            if !starts_in_time(file_ms, start) {
                run.summary.skipped_before_start += 1;
                return None;
            }
        }
        let position = Position {
            last_modified_ms: object.last_modified_ms,
            key: object.key.clone(),
        };
        if behind.is_some_and(|c| is_behind_cursor(&position, c)) {
            run.summary.skipped_before_cursor += 1;
            return None;
        }
        Some(position)
    }

    /// Checks the limits before starting another object; renews the lease when it runs low.
    pub(super) async fn check_time(&self, run: &mut Run<'_>) -> Result<(), Halt> {
        if let Some(max) = run.options.max_objects {
            if run.summary.sent + run.summary.enqueued >= max {
                return Err(Halt::Stop(Stopped::ObjectBudget));
            }
        }
        let now = self.clock.now_ms();
        if let Some(deadline) = run.options.deadline_ms {
            let margin = margin_ms(deadline - run.started_ms, run.slowest_ms);
            if deadline - now < margin {
                return Err(Halt::Stop(Stopped::Deadline));
            }
        }
        if let Some(held) = &mut run.lease {
            let wanted = self.lease_expiry(run.options, now);
            if held.lease.expires_at_ms - now < LEASE_TTL_MS / 2
                && wanted > held.lease.expires_at_ms
            {
                run.summary.state_writes += 1;
                self.ledger.renew_lease(held, wanted).await?;
            }
        }
        Ok(())
    }
}
