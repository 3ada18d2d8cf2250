//! A byte range of a file read with positioned reads, so that several readers of one
//! descriptor (and its duplicates, which share the offset) never move each other.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// Reads `file` from `pos` up to `end` (None: to the end of the file, wherever it is then).
pub(super) struct Positioned {
    file: File,
    pos: u64,
    end: Option<u64>,
}

impl Positioned {
    pub(super) fn new(file: File, start: u64, end: Option<u64>) -> Self {
        Self {
            file,
            pos: start,
            end,
        }
    }
}

impl Read for Positioned {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = match self.end {
            Some(end) => usize::try_from(end.saturating_sub(self.pos)).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        loop {
            match self.file.read_at(&mut buf[..want], self.pos) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Seek for Positioned {
    /// `SeekFrom::End` counts from `end`, or from the file's size when there is none.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => {
                let end = match self.end {
                    Some(end) => end,
                    None => self.file.metadata()?.len(),
                };
                end.checked_add_signed(d)
            }
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        Ok(self.pos)
    }
}

/// Reads the first bytes of `file` into `buf` (fewer if the file is shorter); returns how many.
pub(super) fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    read_fully_at(file, buf, 0)
}

/// Reads `buf.len()` bytes of `file` at `offset`, fewer only at the end of the file.
pub(super) fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
