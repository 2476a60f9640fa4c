//! The one backoff rule of every call this crate retries itself (the Firehose sink's batches,
//! the fan-out's refused queue entries): "full jitter", a uniform draw below a ceiling that
//! doubles at each retry up to a maximum, so concurrent callers spread out instead of retrying
//! in step.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// The wait before retry number `retry` (1 = the first retry): a uniform draw in
/// `[0, min(max, base * 2^(retry-1))]`; `draw` is a uniform random `u64` ([`jitter_draw`]).
pub fn full_jitter(base: Duration, max: Duration, retry: u32, draw: u64) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let ceiling = base.saturating_mul(factor).min(max);
    let nanos = (ceiling.as_nanos() * u128::from(draw)) >> 64;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A uniform random `u64` for jitter. `RandomState` is seeded from the OS once and differs on
/// every construction; jitter needs no more than that, and it spares a dependency.
pub fn jitter_draw() -> u64 {
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum_and_the_draw_scales_below_it() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let ceiling = |retry| full_jitter(base, max, retry, u64::MAX);
        assert!(ceiling(1) <= base && ceiling(1) > base * 99 / 100);
        assert!(ceiling(2) > base * 199 / 100 && ceiling(2) <= base * 2);
        assert!(ceiling(10) <= max && ceiling(10) > max * 99 / 100);
        assert!(ceiling(100) <= max, "no overflow");
        assert_eq!(full_jitter(base, max, 3, 0), Duration::ZERO);
        let half = full_jitter(base, max, 3, u64::MAX / 2);
        assert!(half > base * 199 / 100 && half <= base * 2, "{half:?}");
    }

    #[test]
    fn jitter_draws_differ() {
        let draws: std::collections::HashSet<u64> = (0..32).map(|_| jitter_draw()).collect();
        assert!(draws.len() > 30);
    }
}
