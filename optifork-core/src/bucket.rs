//! Stable bucketing: which of 10,000 buckets a unit (a user id) falls into for a salt.
//!
//! The algorithm is part of OptiFork's public contract and must never change: every SDK, every
//! binding and every platform must put the same user in the same bucket forever. It is
//! specified in `docs/bucketing.md` and pinned by `tests/vectors/bucketing.json`.
//!
//! ```text
//! seed   = XXH64(utf8(salt), 0)
//! bucket = XXH64(utf8(unit), seed) mod 10000
//! ```
//!
//! XXH64 is specified byte for byte (<https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md>)
//! and independently implemented in most languages. Seeding the unit's hash with the salt's
//! hash keeps salts independent without any ambiguity about where the salt ends and the unit
//! begins, and lets the compiled engine precompute the seed once per flag.

use xxhash_rust::xxh64::xxh64;

/// The number of buckets: one bucket is 0.01% of traffic.
pub const BUCKETS: u32 = 10_000;

/// The XXH64 seed derived from a salt (`XXH64(salt, 0)`).
pub fn salt_seed(salt: &str) -> u64 {
    xxh64(salt.as_bytes(), 0)
}

/// The bucket (0..10000) of `unit` under the salt whose seed is `seed`.
#[inline]
pub fn bucket_with_seed(seed: u64, unit: &str) -> u32 {
    (xxh64(unit.as_bytes(), seed) % u64::from(BUCKETS)) as u32
}

/// The bucket (0..10000) of `unit` under `salt`.
///
/// ```
/// let b = optifork_core::bucket("new_checkout", "user-123");
/// assert!(b < 10_000);
/// assert_eq!(b, optifork_core::bucket("new_checkout", "user-123"));
/// ```
pub fn bucket(salt: &str, unit: &str) -> u32 {
    bucket_with_seed(salt_seed(salt), unit)
}

/// Converts a percentage (0–100, at most two decimals) to basis points (0–10000).
pub(crate) fn percent_to_bp(pct: f64) -> Result<u32, String> {
    if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
        return Err(format!("percentage must be between 0 and 100, got {pct}"));
    }
    let bp = (pct * 100.0).round();
    if (bp - pct * 100.0).abs() > 1e-6 {
        return Err(format!(
            "percentage {pct} is finer than the 0.01% a bucket can express"
        ));
    }
    Ok(bp as u32)
}

/// Variant ranges laid over the bucket space.
///
/// Variant `i` owns buckets `[start_i, start_i + width_i)` where `start_i` is the sum of the
/// weights before it and `width_i = floor(weight_i * allocation / 10000)` (all in basis
/// points). With a full allocation the ranges tile the space; a smaller allocation shrinks
/// each range from its end, so raising the allocation only ever adds users, each to the variant
/// it would have had at 100%.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `(start, end)` per variant, in the variants' order.
    ranges: Box<[(u32, u32)]>,
}

impl Layout {
    /// A layout for weights (basis points, summing to 10000) at an allocation (basis points).
    pub(crate) fn new(weights: &[u32], allocation: u32) -> Layout {
        let mut start = 0u32;
        let ranges = weights
            .iter()
            .map(|&w| {
                let width = (u64::from(w) * u64::from(allocation) / u64::from(BUCKETS)) as u32;
                let range = (start, start + width);
                start += w;
                range
            })
            .collect();
        Layout { ranges }
    }

    /// The variant index whose range holds `bucket`, if any.
    #[inline]
    pub(crate) fn variant(&self, bucket: u32) -> Option<usize> {
        self.ranges
            .iter()
            .position(|&(start, end)| bucket >= start && bucket < end)
    }

    /// Whether exactly one variant can be served (no hashing is needed).
    pub(crate) fn single(&self) -> Option<usize> {
        let mut live = self
            .ranges
            .iter()
            .enumerate()
            .filter(|(_, (s, e))| e > s)
            .map(|(i, _)| i);
        match (live.next(), live.next()) {
            (Some(i), None) if self.ranges[i] == (0, BUCKETS) => Some(i),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_to_bp_accepts_two_decimals_and_rejects_finer() {
        assert_eq!(percent_to_bp(33.33), Ok(3333));
        assert_eq!(percent_to_bp(0.01), Ok(1));
        assert_eq!(percent_to_bp(100.0), Ok(10000));
        assert!(percent_to_bp(33.333).is_err());
        assert!(percent_to_bp(-1.0).is_err());
        assert!(percent_to_bp(100.01).is_err());
        assert!(percent_to_bp(f64::NAN).is_err());
    }

    #[test]
    fn layout_at_full_allocation_tiles_the_bucket_space() {
        let l = Layout::new(&[5000, 3000, 2000], BUCKETS);
        assert_eq!(l.variant(0), Some(0));
        assert_eq!(l.variant(4999), Some(0));
        assert_eq!(l.variant(5000), Some(1));
        assert_eq!(l.variant(7999), Some(1));
        assert_eq!(l.variant(8000), Some(2));
        assert_eq!(l.variant(9999), Some(2));
    }

    #[test]
    fn layout_at_partial_allocation_shrinks_each_range_from_its_end() {
        let l = Layout::new(&[5000, 5000], 2000);
        assert_eq!(l.variant(0), Some(0));
        assert_eq!(l.variant(999), Some(0));
        assert_eq!(l.variant(1000), None);
        assert_eq!(l.variant(5000), Some(1));
        assert_eq!(l.variant(5999), Some(1));
        assert_eq!(l.variant(6000), None);
    }

    #[test]
    fn single_is_only_set_when_one_variant_takes_everything() {
        assert_eq!(Layout::new(&[0, 10000], BUCKETS).single(), Some(1));
        assert_eq!(Layout::new(&[5000, 5000], BUCKETS).single(), None);
        assert_eq!(Layout::new(&[10000], 5000).single(), None);
    }
}
