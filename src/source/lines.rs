//! Lines: a byte stream into numbered physical lines, streaming in bounded memory (the bottom
//! layer of every text layout).
//!
//! [`LineReader`] hands out one line at a time, borrowed: straight from the reader's buffer when
//! the whole line is in it (the common case), else from one reused buffer. A line longer than
//! [`MAX_LINE_BYTES`] is cut to that prefix and the rest skipped to the next `\n` without being
//! kept, so no input can make the reader hold more than a bounded amount of memory.

use std::io::{self, BufRead};

use super::RawLine;
use super::text;
use crate::model::reject::{Defect, RejectReason, Rejection};

/// Longest line accepted, in bytes (without its `\n` / `\r\n`). Real bar lines are ~50 bytes;
/// anything this long is not a bar, and keeping it whole would let one bad file take memory.
pub const MAX_LINE_BYTES: usize = 4096;

/// The UTF-8 byte order mark some tools write at the start of a text file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One physical line of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number in the file (what an editor shows).
    pub number: u64,
    /// The line without `\n` / `\r\n` (and without a BOM on line 1). When [`Self::too_long`],
    /// only the first [`MAX_LINE_BYTES`] bytes.
    pub bytes: &'a [u8],
    /// The line was longer than [`MAX_LINE_BYTES`]: `bytes` holds only a prefix.
    pub too_long: bool,
    /// Length of the whole line in bytes, as `bytes` would be had nothing been cut
    /// (for messages about over-long lines).
    pub len: u64,
}

impl<'a> Line<'a> {
    /// The line's text as a record keeps it.
    pub fn raw(&self) -> RawLine<'a> {
        RawLine {
            kept: self.bytes,
            len: self.len,
        }
    }

    /// The rejection of a line no layout reads (too long, or blank), else None.
    pub fn unreadable(&self) -> Option<Rejection> {
        if self.too_long {
            let defect = Defect::new(
                RejectReason::LineTooLong,
                format!(
                    "line is {} bytes, longer than the limit of {MAX_LINE_BYTES}",
                    self.len
                ),
            );
            return Some(defect.at(self.number, self.raw().text()));
        }
        text::is_blank(self.bytes).then(|| Rejection::blank_line(self.number))
    }
}

/// Streams the physical lines of a [`BufRead`], reusing one buffer; never holds the file in
/// memory.
#[derive(Debug)]
pub struct LineReader<R> {
    /// Where the bytes come from.
    inner: R,
    /// Bytes of the last line handed out straight from `inner`'s buffer: consumed on the next
    /// call, because the returned [`Line`] borrowed them until then.
    pending_consume: usize,
    /// Holds a line that straddles `inner`'s buffer boundary; at most `MAX_LINE_BYTES + 1` bytes
    /// (room for a `\r` that is stripped later), so memory stays bounded.
    spill: Vec<u8>,
    /// Number of the last line handed out.
    line_number: u64,
    /// Bytes consumed so far, terminators included (progress reporting).
    bytes_read: u64,
}

/// How much of a line [`LineReader`] keeps while looking for its end: the limit plus one byte for
/// a `\r` that may precede the `\n`.
const KEEP_BYTES: usize = MAX_LINE_BYTES + 1;

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            pending_consume: 0,
            spill: Vec::new(),
            line_number: 0,
            bytes_read: 0,
        }
    }

    /// Bytes consumed from the input so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next physical line, or Ok(None) at end of input. A last line without `\n` counts;
    /// the `\n` that ends the input does not start another one.
    #[inline]
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if self.pending_consume > 0 {
            self.inner.consume(self.pending_consume);
            self.pending_consume = 0;
        }
        self.spill.clear();
        // Total length of the line seen so far (including a possible trailing '\r').
        let mut seen: u64 = 0;
        // Whether the last byte seen so far is '\r' (it may be cut from `spill`).
        let mut ends_with_cr = false;
        loop {
            let (newline_at, available) = match self.inner.fill_buf() {
                Ok(buf) => (find_newline(buf), buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match newline_at {
                // The whole line is in `inner`'s buffer: hand it out from there.
                Some(end) if seen == 0 => {
                    self.pending_consume = end + 1;
                    self.bytes_read += end as u64 + 1;
                    self.line_number += 1;
                    let number = self.line_number;
                    let line = &self.inner.fill_buf()?[..end];
                    let cr = line.last() == Some(&b'\r');
                    return Ok(Some(finish_line(number, line, end as u64, cr)));
                }
                Some(end) => {
                    let buf = self.inner.fill_buf()?;
                    keep_prefix(&mut self.spill, &buf[..end]);
                    if end > 0 {
                        ends_with_cr = buf[end - 1] == b'\r';
                    }
                    seen += end as u64;
                    self.inner.consume(end + 1);
                    self.bytes_read += end as u64 + 1;
                    break;
                }
                None if available == 0 => {
                    if seen == 0 {
                        return Ok(None);
                    }
                    break;
                }
                None => {
                    let buf = self.inner.fill_buf()?;
                    keep_prefix(&mut self.spill, buf);
                    ends_with_cr = buf[available - 1] == b'\r';
                    seen += available as u64;
                    self.inner.consume(available);
                    self.bytes_read += available as u64;
                }
            }
        }
        self.line_number += 1;
        Ok(Some(finish_line(
            self.line_number,
            &self.spill,
            seen,
            ends_with_cr,
        )))
    }
}

/// Position of the first `\n` in `buf` (memchr: vectorised where the CPU allows).
#[inline]
fn find_newline(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

/// Appends as much of `bytes` to `spill` as fits in [`KEEP_BYTES`].
#[inline]
fn keep_prefix(spill: &mut Vec<u8>, bytes: &[u8]) {
    let room = KEEP_BYTES.saturating_sub(spill.len());
    spill.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Builds a [`Line`] from the kept bytes (the whole line or a prefix) and the line's full length
/// `len`, both still including a trailing `\r` when `ends_with_cr`: strips it, and the BOM on
/// line 1.
#[inline]
fn finish_line(number: u64, kept: &[u8], len: u64, ends_with_cr: bool) -> Line<'_> {
    let mut bytes = kept;
    let mut len = len;
    if ends_with_cr {
        len -= 1;
        if bytes.len() as u64 > len {
            bytes = &bytes[..bytes.len() - 1];
        }
    }
    if number == 1
        && let Some(rest) = bytes.strip_prefix(UTF8_BOM)
    {
        bytes = rest;
        len -= UTF8_BOM.len() as u64;
    }
    let too_long = len > MAX_LINE_BYTES as u64;
    if too_long {
        bytes = &bytes[..bytes.len().min(MAX_LINE_BYTES)];
    }
    Line {
        number,
        bytes,
        too_long,
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// Every line of `input` read with a buffer of `capacity` bytes, as (number, text, too_long, len).
    fn lines(input: &[u8], capacity: usize) -> Vec<(u64, Vec<u8>, bool, u64)> {
        let mut reader = LineReader::new(BufReader::with_capacity(capacity, input));
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().expect("reading a slice cannot fail") {
            out.push((line.number, line.bytes.to_vec(), line.too_long, line.len));
        }
        assert_eq!(reader.bytes_read(), input.len() as u64);
        out
    }

    fn texts(input: &[u8], capacity: usize) -> Vec<Vec<u8>> {
        lines(input, capacity).into_iter().map(|l| l.1).collect()
    }

    #[test]
    fn find_newline_agrees_with_a_byte_search() {
        for len in 0..40 {
            for at in 0..=len {
                let mut buf = vec![b'a'; len];
                if at < len {
                    buf[at] = b'\n';
                }
                // Bytes that differ from '\n' by one bit or in the high bit must not match.
                for b in buf.iter_mut().skip(at + 1) {
                    *b = 0x8A;
                }
                let want = buf.iter().position(|&b| b == b'\n');
                assert_eq!(find_newline(&buf), want, "len {len} at {at}");
                buf.iter_mut().take(at).for_each(|b| *b = 0x0B);
                assert_eq!(find_newline(&buf), want, "len {len} at {at}");
            }
        }
    }

    #[test]
    fn lines_numbered_with_lf_crlf_and_no_final_newline() {
        for cap in [1, 2, 3, 7, 64, 8192] {
            let got = lines(b"a,b\r\nc\n\nd\r\ne", cap);
            let want: Vec<(u64, Vec<u8>, bool, u64)> = vec![
                (1, b"a,b".to_vec(), false, 3),
                (2, b"c".to_vec(), false, 1),
                (3, b"".to_vec(), false, 0),
                (4, b"d".to_vec(), false, 1),
                (5, b"e".to_vec(), false, 1),
            ];
            assert_eq!(got, want, "capacity {cap}");
        }
    }

    #[test]
    fn final_newline_does_not_start_a_line() {
        assert_eq!(texts(b"x\n", 8), vec![b"x".to_vec()]);
        assert_eq!(texts(b"", 8), Vec::<Vec<u8>>::new());
        assert_eq!(texts(b"\n", 8), vec![b"".to_vec()]);
        assert_eq!(texts(b"\r\n\r\n", 8), vec![b"".to_vec(), b"".to_vec()]);
    }

    #[test]
    fn bom_stripped_from_line_one_only() {
        for cap in [1, 2, 4, 8192] {
            assert_eq!(
                texts(b"\xEF\xBB\xBFa\n\xEF\xBB\xBFb\n", cap),
                vec![b"a".to_vec(), b"\xEF\xBB\xBFb".to_vec()],
                "capacity {cap}"
            );
        }
    }

    #[test]
    fn lone_cr_inside_a_line_is_kept() {
        assert_eq!(texts(b"a\rb\r\n", 8), vec![b"a\rb".to_vec()]);
    }

    #[test]
    fn one_megabyte_line_is_cut_and_skipped() {
        let mut input = vec![b'x'; 1 << 20];
        input.extend_from_slice(b"\r\nnext\n");
        for cap in [100, 8192, 2 << 20] {
            let got = lines(&input, cap);
            assert_eq!(got.len(), 2, "capacity {cap}");
            let (number, bytes, too_long, len) = &got[0];
            assert_eq!((*number, *too_long, *len), (1, true, 1 << 20));
            assert_eq!(bytes.len(), MAX_LINE_BYTES);
            assert_eq!(got[1], (2, b"next".to_vec(), false, 4));
        }
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted_with_or_without_cr() {
        for ending in [&b"\n"[..], b"\r\n", b""] {
            let mut input = vec![b'y'; MAX_LINE_BYTES];
            input.extend_from_slice(ending);
            for cap in [10, 8192] {
                let got = lines(&input, cap);
                assert_eq!(got.len(), 1);
                assert!(!got[0].2, "ending {ending:?} capacity {cap}");
                assert_eq!(got[0].1.len(), MAX_LINE_BYTES);
            }
            let mut longer = vec![b'y'; MAX_LINE_BYTES + 1];
            longer.extend_from_slice(ending);
            assert!(lines(&longer, 10)[0].2, "one byte over, ending {ending:?}");
        }
    }

    #[test]
    fn spill_buffer_stays_bounded() {
        let input = vec![b'z'; 3 << 20];
        let mut reader = LineReader::new(BufReader::with_capacity(4096, &input[..]));
        let line = reader.next_line().unwrap().unwrap();
        assert!(line.too_long);
        assert!(reader.spill.capacity() <= 4 * KEEP_BYTES);
    }
}
