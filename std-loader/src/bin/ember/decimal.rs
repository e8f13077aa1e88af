//! Decimal figures (milliseconds, percentages, rates) printed from integer
//! arithmetic: formatting an `f64` brings the standard library's float
//! printer (about 12 KiB of code and tables) into the static binary, for a
//! handful of numbers the CLI shows.

use core::fmt;
use core::time::Duration;

/// A non-negative number with a fixed count of decimals, rounded half up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal {
    /// The value times `10^places`.
    scaled: u128,
    places: u32,
}

impl Decimal {
    /// `num * mul / den` with `places` decimals; a zero `den` counts as 1.
    pub(crate) fn ratio(num: u128, den: u128, mul: u128, places: u32) -> Self {
        let den = den.max(1);
        let top = num
            .saturating_mul(mul)
            .saturating_mul(10u128.saturating_pow(places));
        // Half up: (2 * top + den) / (2 * den).
        let scaled = top.saturating_mul(2).saturating_add(den) / den.saturating_mul(2);
        Self { scaled, places }
    }

    /// `part` as a percentage of `whole`, two decimals.
    pub(crate) fn percent(part: u64, whole: u64) -> Self {
        Self::ratio(part.into(), whole.into(), 100, 2)
    }

    /// `d` in milliseconds, three decimals.
    pub(crate) fn ms(d: Duration) -> Self {
        Self::ratio(d.as_nanos(), 1_000_000, 1, 3)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = 10u128.saturating_pow(self.places);
        write!(f, "{}", self.scaled / unit)?;
        if self.places > 0 {
            let width = self.places as usize;
            write!(f, ".{:0width$}", self.scaled % unit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_the_float_formatter() {
        // Each against `format!("{:.N}", f64)` of the same figure.
        for (part, whole) in [
            (0u64, 7u64),
            (1, 3),
            (2, 3),
            (5, 8),
            (123_456, 5_300_000),
            (7, 7),
            (9, 0),
        ] {
            let float = part as f64 * 100.0 / whole.max(1) as f64;
            assert_eq!(
                Decimal::percent(part, whole).to_string(),
                format!("{float:.2}")
            );
        }
        for ns in [
            0u64,
            1,
            499_999,
            500_000,
            1_234_567,
            987_654_321,
            12_000_000_000,
        ] {
            let d = Duration::from_nanos(ns);
            let float = d.as_secs_f64() * 1e3;
            assert_eq!(Decimal::ms(d).to_string(), format!("{float:.3}"), "{ns} ns");
        }
        assert_eq!(
            Decimal::ratio(194, 2_500_000_000, 1_000_000_000, 1).to_string(),
            "77.6"
        );
    }
}
