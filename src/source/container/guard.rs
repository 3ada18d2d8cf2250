//! Readers that guard a unit's decoded stream: a cap on its decoded bytes, and errors that name
//! the unit.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use super::ContainerError;

/// Which of the [`super::Limits`] set a unit's decoded-bytes limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitRule {
    /// `max_ratio` times the compressed size (the ratio given).
    Ratio(u64),
    /// `ratio_floor`, the allowance of small units.
    Floor,
    /// `max_unit_bytes`, the limit of every unit.
    Absolute,
}

impl fmt::Display for LimitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitRule::Ratio(r) => write!(f, "{r} times the compressed size, Limits::max_ratio"),
            LimitRule::Floor => f.write_str("the allowance of small units, Limits::ratio_floor"),
            LimitRule::Absolute => f.write_str("the limit of any unit, Limits::max_unit_bytes"),
        }
    }
}

/// Fails once more than `limit` bytes came out of `inner`.
pub(super) struct Capped<R> {
    inner: R,
    unit: Arc<str>,
    decoded: u64,
    compressed: u64,
    limit: u64,
    rule: LimitRule,
}

impl<R> Capped<R> {
    pub(super) fn new(
        inner: R,
        unit: &Arc<str>,
        compressed: u64,
        limit: u64,
        rule: LimitRule,
    ) -> Self {
        Self {
            inner,
            unit: Arc::clone(unit),
            decoded: 0,
            compressed,
            limit,
            rule,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.decoded += n as u64;
        if self.decoded > self.limit {
            return Err(ContainerError::TooLarge {
                unit: self.unit.to_string(),
                what: "decoded more than",
                decoded: self.limit,
                compressed: self.compressed,
                limit: self.limit,
                rule: self.rule,
            }
            .into());
        }
        Ok(n)
    }
}

/// Turns every error of `inner` that is not already a [`ContainerError`] into one naming the
/// unit: a read error of the file system as [`ContainerError::Read`], anything else (a
/// decoder's complaint) as [`ContainerError::Corrupt`] with the decoded offset it came at.
pub(super) struct Labeled<R> {
    inner: R,
    unit: Arc<str>,
    /// What is decoded, for the message (`gzip file`, `Deflate64 zip member`, ...).
    what: &'static str,
    decoded: u64,
}

impl<R> Labeled<R> {
    pub(super) fn new(inner: R, unit: &Arc<str>, what: &'static str) -> Self {
        Self {
            inner,
            unit: Arc::clone(unit),
            what,
            decoded: 0,
        }
    }
}

impl<R: Read> Read for Labeled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.decoded += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) if ContainerError::of(&e).is_some() => Err(e),
            Err(e) if e.raw_os_error().is_some() => Err(ContainerError::Read {
                unit: self.unit.to_string(),
                source: e,
            }
            .into()),
            Err(e) => Err(ContainerError::Corrupt {
                unit: self.unit.to_string(),
                what: self.what,
                detail: format!("{e} (after {} decoded bytes)", self.decoded),
            }
            .into()),
        }
    }
}
