//! The column encodings of a day cell: decimal scaling checked bit for bit, zigzag, LEB128
//! varints, and the reader that takes them back out of untrusted bytes.

use super::CellError;

/// Largest decimal scale tried: a column is stored as `n / 10^k` for the smallest `k` in
/// `0..=MAX_DECIMAL_SCALE` that round-trips every value, else as raw doubles. `10^15` is exact
/// as an `f64`, so `n as f64 / 10^k` is one correctly rounded division in any language.
pub const MAX_DECIMAL_SCALE: u8 = 15;

/// `10^k` as `f64`, `k` in `0..=MAX_DECIMAL_SCALE` (each exact).
const POW10: [f64; MAX_DECIMAL_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Largest magnitude of a scaled integer: every integer up to `2^53` is exact as an `f64`, so
/// the decoder's conversion is exact too.
pub const MAX_SCALED_MAGNITUDE: i64 = 1 << 53;

/// Longest LEB128 encoding of a `u64`.
const MAX_VARINT_BYTES: usize = 10;

/// How one value column (open, high, low, close, volume) is stored in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    /// Code 0: each value's IEEE 754 bits, 8 bytes little-endian.
    Raw,
    /// Code 1: each value as the zigzag varint of `n`, value = `n / 10^scale`.
    Decimal { scale: u8 },
    /// Code 2: like `Decimal`, but each `n` after the first as the difference from the one
    /// before it (the first as is).
    DecimalDelta { scale: u8 },
}

impl ValueEncoding {
    /// The encoding's code and scale bytes, as the header stores them.
    pub fn to_bytes(self) -> [u8; 2] {
        match self {
            Self::Raw => [0, 0],
            Self::Decimal { scale } => [1, scale],
            Self::DecimalDelta { scale } => [2, scale],
        }
    }

    /// The encoding of a column descriptor, checked.
    pub fn from_bytes(column: &'static str, code: u8, scale: u8) -> Result<Self, CellError> {
        let bad = || CellError::BadEncoding {
            column,
            code,
            scale,
        };
        match code {
            0 if scale == 0 => Ok(Self::Raw),
            1 if scale <= MAX_DECIMAL_SCALE => Ok(Self::Decimal { scale }),
            2 if scale <= MAX_DECIMAL_SCALE => Ok(Self::DecimalDelta { scale }),
            _ => Err(bad()),
        }
    }
}

/// How the times are stored: the header holds the first; the body the differences to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEncoding {
    /// Code 0: each difference in whole minutes (every difference is a multiple of 60,000 ms).
    Minutes,
    /// Code 1: each difference in milliseconds.
    Millis,
}

/// Milliseconds per minute.
pub const MINUTE_MILLIS: u64 = 60_000;

impl TimeEncoding {
    /// The descriptor bytes (code, 0).
    pub fn to_bytes(self) -> [u8; 2] {
        match self {
            Self::Minutes => [0, 0],
            Self::Millis => [1, 0],
        }
    }

    /// The time encoding of a descriptor, checked.
    pub fn from_bytes(code: u8, scale: u8) -> Result<Self, CellError> {
        match (code, scale) {
            (0, 0) => Ok(Self::Minutes),
            (1, 0) => Ok(Self::Millis),
            _ => Err(CellError::BadEncoding {
                column: "time",
                code,
                scale,
            }),
        }
    }

    /// Minutes when every difference between consecutive times is whole minutes.
    pub fn choose(times: &[i64]) -> Self {
        let whole = times
            .windows(2)
            .all(|w| (w[1].wrapping_sub(w[0]) as u64).is_multiple_of(MINUTE_MILLIS));
        if whole { Self::Minutes } else { Self::Millis }
    }
}

/// `n` when `value` is exactly `n / 10^scale` (same bits back) and `|n| <= 2^53`.
#[inline]
pub fn scaled(value: f64, scale: u8) -> Option<i64> {
    let p = POW10[usize::from(scale)];
    let r = (value * p).round();
    // Also refuses the infinities (above the bound) and NaN.
    if r.is_nan() || r.abs() > MAX_SCALED_MAGNITUDE as f64 {
        return None;
    }
    let n = r as i64;
    ((n as f64 / p).to_bits() == value.to_bits()).then_some(n)
}

/// The value of `n / 10^scale`, as the decoder computes it.
#[inline]
pub fn unscaled(n: i64, scale: u8) -> f64 {
    n as f64 / POW10[usize::from(scale)]
}

/// The smallest scale at which every value round-trips, with the scaled integers written into
/// `ints` (cleared first); `None` when there is none (the column is stored raw).
pub fn decimal_scale(values: &[f64], ints: &mut Vec<i64>) -> Option<u8> {
    // Every scale below a value's own smallest scale fails for that value, so the column's
    // smallest scale is at least the largest of them; checking at the running maximum first
    // keeps this to about one test per value.
    let mut floor = 0u8;
    for &v in values {
        if scaled(v, floor).is_none() {
            let own = (0..=MAX_DECIMAL_SCALE).find(|&k| scaled(v, k).is_some())?;
            floor = floor.max(own);
        }
    }
    'scale: for k in floor..=MAX_DECIMAL_SCALE {
        ints.clear();
        for &v in values {
            match scaled(v, k) {
                Some(n) => ints.push(n),
                None => continue 'scale,
            }
        }
        return Some(k);
    }
    None
}

/// Zigzag: small magnitudes of either sign become small unsigned numbers.
#[inline]
pub fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `x` as an unsigned LEB128 varint (7 bits a byte, low first, high bit = more).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Reads a cell body front to back; every read is bounds-checked and says what it was reading.
#[derive(Debug)]
pub struct BodyReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BodyReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// One unsigned varint; refuses one that runs past the body or past 64 bits.
    #[inline]
    pub fn varint(&mut self, column: &'static str) -> Result<u64, CellError> {
        // The common case: ten bytes or more left, so no bounds check per byte.
        let Some(window) = self.bytes.get(self.pos..self.pos + MAX_VARINT_BYTES) else {
            return self.varint_near_end(column);
        };
        let mut x = 0u64;
        for (i, &b) in window.iter().enumerate() {
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == MAX_VARINT_BYTES - 1 && b > 1 {
                    break;
                }
                self.pos += i + 1;
                return Ok(x);
            }
        }
        Err(self.bad_varint(column))
    }

    #[cold]
    fn bad_varint(&self, column: &'static str) -> CellError {
        CellError::BadVarint {
            column,
            offset: self.pos,
        }
    }

    /// [`Self::varint`] within the last ten bytes of the body, every byte checked.
    #[cold]
    fn varint_near_end(&mut self, column: &'static str) -> Result<u64, CellError> {
        let mut x = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let Some(&b) = self.bytes.get(self.pos + i) else {
                return Err(CellError::BodyTruncated {
                    column,
                    offset: self.pos,
                });
            };
            let bits = u64::from(b & 0x7f);
            // The tenth byte may carry only the top bit of a u64.
            if i == MAX_VARINT_BYTES - 1 && bits > 1 {
                return Err(CellError::BadVarint {
                    column,
                    offset: self.pos,
                });
            }
            x |= bits << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(x);
            }
        }
        Err(CellError::BadVarint {
            column,
            offset: self.pos,
        })
    }

    /// One little-endian `u64` (a raw double's bits).
    #[inline]
    pub fn u64_le(&mut self, column: &'static str) -> Result<u64, CellError> {
        let end = self.pos + 8;
        let Some(b) = self.bytes.get(self.pos..end) else {
            return Err(CellError::BodyTruncated {
                column,
                offset: self.pos,
            });
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        self.pos = end;
        Ok(u64::from_le_bytes(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_scale_is_the_smallest_exact_one() {
        let mut ints = Vec::new();
        assert_eq!(decimal_scale(&[1.0, 2.0, 300.0], &mut ints), Some(0));
        assert_eq!(ints, [1, 2, 300]);
        assert_eq!(decimal_scale(&[187.1234, 187.5, 0.1], &mut ints), Some(4));
        assert_eq!(ints, [1_871_234, 1_875_000, 1_000]);
        assert_eq!(decimal_scale(&[1234.567891], &mut ints), Some(6));
        assert_eq!(decimal_scale(&[], &mut ints), Some(0));
    }

    #[test]
    fn values_that_are_not_short_decimals_have_no_scale() {
        let mut ints = Vec::new();
        for awkward in [
            1.0 / 3.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0,
            1e300,
            // 2^53 + 2 is an integer but past the exact range.
            9_007_199_254_740_994.0,
        ] {
            assert_eq!(
                decimal_scale(&[1.5, awkward], &mut ints),
                None,
                "{awkward:e}"
            );
        }
    }

    #[test]
    fn zigzag_round_trips_the_extremes() {
        for x in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(x)), x);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        let mut out = Vec::new();
        for x in [0, 127, 128, 300, u64::MAX] {
            out.clear();
            put_varint(&mut out, x);
            let mut r = BodyReader::new(&out);
            assert_eq!(r.varint("open"), Ok(x));
            assert_eq!(r.remaining(), 0);
        }
        let eleven = [0xffu8; 11];
        assert!(matches!(
            BodyReader::new(&eleven).varint("open"),
            Err(CellError::BadVarint { .. })
        ));
        let mut tenth_too_big = [0xffu8; 10];
        tenth_too_big[9] = 0x02;
        assert!(matches!(
            BodyReader::new(&tenth_too_big).varint("open"),
            Err(CellError::BadVarint { .. })
        ));
        assert!(matches!(
            BodyReader::new(&[0x80]).varint("open"),
            Err(CellError::BodyTruncated { .. })
        ));
    }
}
