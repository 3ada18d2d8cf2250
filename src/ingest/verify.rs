//! What pass 2 may write: exactly the decoded content pass 1 validated. Pass 1 records the
//! content's length and a BLAKE3 hash per chunk ([`Recorded`]); pass 2 reads through
//! [`Verified`], which hands out a chunk only after its hash matched and stops at the recorded
//! length, so no row of content that differs from pass 1's, or that was appended after it, is
//! ever sent. A difference ends the read with a [`ContentChanged`] error (the unit is handed
//! back as changed).

use std::io::{self, Read};
use std::sync::Arc;

/// Bytes per verified chunk: pass 2 holds one chunk in memory, and a chunk's rows are sent
/// only once all of it matched.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// The decoded content pass 1 read: its length and the hash of each [`CHUNK_BYTES`] chunk (the
/// last one shorter).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Content {
    pub(crate) len: u64,
    pub(crate) chunks: Vec<blake3::Hash>,
}

/// Builds a [`Content`] from the bytes as they are read (pass 1).
#[derive(Default)]
pub(crate) struct Recorded {
    content: Content,
    chunk: blake3::Hasher,
    in_chunk: usize,
}

impl Recorded {
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.content.len += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = bytes.len().min(CHUNK_BYTES - self.in_chunk);
            self.chunk.update(&bytes[..take]);
            self.in_chunk += take;
            bytes = &bytes[take..];
            if self.in_chunk == CHUNK_BYTES {
                self.close_chunk();
            }
        }
    }

    fn close_chunk(&mut self) {
        self.content.chunks.push(self.chunk.finalize());
        self.chunk.reset();
        self.in_chunk = 0;
    }

    /// The content read so far, its last partial chunk included.
    pub(crate) fn content(&self) -> Content {
        let mut content = self.content.clone();
        if self.in_chunk > 0 {
            content.chunks.push(self.chunk.finalize());
        }
        content
    }
}

/// The unit's content differs from what pass 1 read: `what` says how.
#[derive(Debug, thiserror::Error)]
#[error("the content changed after it was validated: {what}")]
pub(crate) struct ContentChanged {
    pub(crate) what: String,
}

impl ContentChanged {
    /// Whether `e` (from a reader over [`Verified`]) says the content changed.
    pub(crate) fn is(e: &io::Error) -> bool {
        e.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<ContentChanged>().is_some())
    }
}

fn changed(what: String) -> io::Error {
    io::Error::other(ContentChanged { what })
}

/// Reads `inner` chunk by chunk, handing out a chunk only after it matched pass 1's, up to
/// pass 1's length; then checks that nothing follows.
pub(crate) struct Verified<R> {
    inner: R,
    expected: Arc<Content>,
    /// Index of the next chunk to read.
    next: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    pos: usize,
    /// The end was checked: nothing follows the recorded length.
    ended: bool,
}

impl<R: Read> Verified<R> {
    pub(crate) fn new(inner: R, expected: Arc<Content>) -> Self {
        Self {
            inner,
            expected,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            ended: false,
        }
    }

    /// Reads, hashes and checks the next chunk into `buf`; false at the recorded end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let Some(hash) = self.expected.chunks.get(self.next).copied() else {
            if !self.ended {
                let mut one = [0u8; 1];
                if fill(&mut self.inner, &mut one)? > 0 {
                    return Err(changed(format!(
                        "it is longer than the {} bytes validated (it grew)",
                        self.expected.len
                    )));
                }
                self.ended = true;
            }
            return Ok(false);
        };
        let start = self.next as u64 * CHUNK_BYTES as u64;
        let want = (self.expected.len - start).min(CHUNK_BYTES as u64) as usize;
        self.buf.resize(want, 0);
        let got = fill(&mut self.inner, &mut self.buf)?;
        if got < want {
            return Err(changed(format!(
                "it ends after {} bytes, not the {} validated (it shrank)",
                start + got as u64,
                self.expected.len
            )));
        }
        if blake3::hash(&self.buf) != hash {
            return Err(changed(format!(
                "bytes {start} to {} differ from those validated",
                start + want as u64
            )));
        }
        self.next += 1;
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() && !self.next_chunk()? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(bytes: &[u8], step: usize) -> Content {
        let mut r = Recorded::default();
        for part in bytes.chunks(step.max(1)) {
            r.update(part);
        }
        r.content()
    }

    fn read_all(bytes: &[u8], expected: Content) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Verified::new(bytes, Arc::new(expected))
            .read_to_end(&mut out)
            .map(|_| out)
    }

    #[test]
    fn the_same_bytes_read_back_whatever_the_read_sizes() {
        let bytes: Vec<u8> = (0..(CHUNK_BYTES * 2 + 123)).map(|i| i as u8).collect();
        for step in [1000, CHUNK_BYTES, CHUNK_BYTES + 1, 1 << 22] {
            let content = recorded(&bytes, step);
            assert_eq!(content.len, bytes.len() as u64);
            assert_eq!(content.chunks.len(), 3);
            assert_eq!(read_all(&bytes, content).unwrap(), bytes);
        }
        assert_eq!(read_all(b"", recorded(b"", 1)).unwrap(), b"");
    }

    #[test]
    fn a_longer_shorter_or_different_content_is_refused() {
        let bytes = vec![7u8; CHUNK_BYTES + 10];
        let content = recorded(&bytes, 4096);
        let mut longer = bytes.clone();
        longer.push(b'\n');
        let mut other = bytes.clone();
        other[CHUNK_BYTES + 5] = 8;
        for (what, changed) in [
            ("grew", &longer[..]),
            ("shrank", &bytes[..bytes.len() - 1]),
            ("differ", &other[..]),
        ] {
            let e = read_all(changed, content.clone()).unwrap_err();
            assert!(ContentChanged::is(&e), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    /// Nothing of a chunk that differs is handed out, not even its unchanged first bytes.
    #[test]
    fn no_byte_of_a_changed_chunk_is_handed_out() {
        let bytes = vec![1u8; CHUNK_BYTES * 2];
        let content = recorded(&bytes, CHUNK_BYTES);
        let mut other = bytes.clone();
        other[CHUNK_BYTES * 2 - 1] = 2;
        let mut reader = Verified::new(&other[..], Arc::new(content));
        let mut out = vec![0u8; 4096];
        let mut handed = 0;
        let err = loop {
            match reader.read(&mut out) {
                Ok(0) => panic!("read to the end of changed content"),
                Ok(n) => handed += n,
                Err(e) => break e,
            }
        };
        assert!(ContentChanged::is(&err));
        assert_eq!(handed, CHUNK_BYTES, "only the first, matching chunk");
    }
}
