//! Value parsers for the chapters' numeric flags (`#[arg(long, value_parser = flag::steps)]`).
//! A zero, negative, non-finite or out-of-range value is refused where the arguments are
//! parsed, and clap prints the flag with the reason: `invalid value '0' for '--steps <STEPS>':
//! 0 is out of range (1 to 100000)`. The library's entry points refuse the same values with an
//! error of their own, for callers that do not come through these flags.
use std::ops::RangeInclusive;

fn whole(s: &str, range: RangeInclusive<u64>) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number from {} to {}", range.start(), range.end()))?;
    if !range.contains(&n) {
        return Err(format!("{n} is out of range ({} to {})", range.start(), range.end()));
    }
    Ok(n)
}

fn real(s: &str, ok: impl Fn(f64) -> bool) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !x.is_finite() || !ok(x) {
        return Err(format!("{x} must be zero or positive (a finite number)"));
    }
    Ok(x)
}

/// Optimisation steps: 1 to 100,000.
pub fn steps(s: &str) -> Result<usize, String> {
    whole(s, 1..=100_000).map(|n| n as usize)
}

/// A count of things (images, views, samples, frames, groups, top-k, epochs, a checkpoint's
/// interval): 1 to 1,000,000.
pub fn count(s: &str) -> Result<usize, String> {
    whole(s, 1..=1_000_000).map(|n| n as usize)
}

/// Images in one batch: 1 to 4,096.
pub fn batch(s: &str) -> Result<usize, String> {
    whole(s, 1..=4096).map(|n| n as usize)
}

/// An image's side in pixels: 16 to 4,096.
pub fn pixels(s: &str) -> Result<usize, String> {
    whole(s, 16..=4096).map(|n| n as usize)
}

/// An image's side in pixels, as `u32`: 16 to 4,096.
pub fn pixels_u32(s: &str) -> Result<u32, String> {
    whole(s, 16..=4096).map(|n| n as u32)
}

/// A weight or an exponent that may be 0 but not negative: a finite number ≥ 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    real(s, |x| x >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_negative_and_out_of_range_values_are_refused_with_the_range() {
        assert_eq!(steps("128"), Ok(128));
        assert_eq!(steps("0").unwrap_err(), "0 is out of range (1 to 100000)");
        assert!(steps("-3").unwrap_err().contains("not a whole number from 1 to 100000"));
        assert!(steps("1e9").is_err() && steps("100001").is_err());
        assert_eq!(batch("4096"), Ok(4096));
        assert!(batch("4097").is_err() && count("0").is_err());
        assert!(pixels("15").is_err() && pixels_u32("4097").is_err());
        assert_eq!(pixels_u32("224"), Ok(224));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert_eq!(non_negative("-10").unwrap_err(), "-10 must be zero or positive (a finite number)");
        assert!(non_negative("inf").is_err() && non_negative("NaN").is_err() && non_negative("x").is_err());
    }
}
