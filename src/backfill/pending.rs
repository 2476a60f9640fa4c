//! Objects listed but not handled yet, in (last-modified, key) order.

use std::collections::BTreeMap;

use crate::ledger::Position;
use crate::ports::Listed;

/// Objects listed but not handled yet, in (last-modified, key) order, with the partition days
/// they lie in counted so the earliest is known at once.
#[derive(Default)]
pub(super) struct Pending {
    objects: BTreeMap<Position, (Listed, i64)>,
    days: BTreeMap<i64, usize>,
}

impl Pending {
    pub(super) fn insert(&mut self, position: Position, object: Listed, day: i64) {
        if self.objects.insert(position, (object, day)).is_none() {
            *self.days.entry(day).or_default() += 1;
        }
    }

    /// The first object if it was last modified before `horizon`.
    pub(super) fn first_before(&self, horizon: i64) -> bool {
        self.objects
            .first_key_value()
            .is_some_and(|(p, _)| p.last_modified_ms < horizon)
    }

    pub(super) fn pop_first(&mut self) -> Option<(Position, Listed, i64)> {
        let (position, (object, day)) = self.objects.pop_first()?;
        if let Some(count) = self.days.get_mut(&day) {
            *count -= 1;
            if *count == 0 {
                self.days.remove(&day);
            }
        }
        Some((position, object, day))
    }

    pub(super) fn len(&self) -> usize {
        self.objects.len()
    }

    /// When the first object (the oldest) was last modified.
    pub(super) fn oldest_last_modified_ms(&self) -> Option<i64> {
        self.objects
            .first_key_value()
            .map(|(p, _)| p.last_modified_ms)
    }

    pub(super) fn earliest_day(&self) -> Option<i64> {
        self.days.keys().next().copied()
    }
}
