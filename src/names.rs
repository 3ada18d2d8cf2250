//! File names: names derived from an input's name kept within the filesystem's limit (shortened
//! with a hash when they would not fit), and any name shown escaped in logs.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Longest file name (bytes) on the filesystems the daemon runs on (ext4, xfs, btrfs, NFS).
pub const NAME_MAX: usize = 255;

/// Hex digits of the hash that stands for the cut part of a shortened name.
const HASH_HEX: usize = 16;

/// `name` followed by `suffix`, as one file name of at most [`NAME_MAX`] bytes. When it would
/// not fit, the name is cut (at a UTF-8 boundary where it is UTF-8) and `~<hash>` of the whole
/// name is put before the suffix, so distinct names stay distinct, byte for byte (names that
/// differ only in invalid UTF-8 bytes too).
pub fn derived(name: &OsStr, suffix: &str) -> OsString {
    let bytes = name.as_bytes();
    if bytes.len() + suffix.len() <= NAME_MAX {
        let mut out = name.to_owned();
        out.push(suffix);
        return out;
    }
    let hash = blake3::hash(bytes).to_hex();
    let tag = format!("~{}", &hash[..HASH_HEX]);
    let room = NAME_MAX.saturating_sub(tag.len() + suffix.len());
    let mut cut = room.min(bytes.len());
    // Do not split a UTF-8 sequence: step back over continuation bytes.
    while cut > 0 && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut out = bytes[..cut].to_vec();
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(out)
}

/// A path for log lines and messages: control characters (a newline that would forge a log
/// line), backslashes and bytes that are not UTF-8 are written as escapes, so what is shown is
/// one line and tells apart names that differ only in such bytes.
pub struct Shown<'a>(pub &'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.as_os_str().as_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() || c == '\\' {
                    write!(f, "{}", c.escape_default())?;
                } else {
                    f.write_fmt(format_args!("{c}"))?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_only_gain_the_suffix() {
        assert_eq!(
            derived(OsStr::new("AAPL.txt"), ".error.json"),
            OsString::from("AAPL.txt.error.json")
        );
    }

    #[test]
    fn long_names_are_cut_to_fit_and_stay_distinct() {
        let a = format!("{}a", "x".repeat(300));
        let b = format!("{}b", "x".repeat(300));
        let da = derived(OsStr::new(&a), ".rejects.jsonl");
        let db = derived(OsStr::new(&b), ".rejects.jsonl");
        assert_eq!(da.len(), NAME_MAX);
        assert!(da.to_str().unwrap().ends_with(".rejects.jsonl"));
        assert_ne!(da, db);
        // Exactly at the limit: kept as is.
        let exact = "y".repeat(NAME_MAX - 5);
        assert_eq!(derived(OsStr::new(&exact), ".json").len(), NAME_MAX);
        assert!(
            !derived(OsStr::new(&exact), ".json")
                .to_str()
                .unwrap()
                .contains('~')
        );
    }

    #[test]
    fn a_cut_never_splits_a_utf8_character() {
        let name = "é".repeat(200); // 400 bytes
        let d = derived(OsStr::new(&name), ".tmp");
        assert!(d.len() <= NAME_MAX);
        assert!(d.to_str().is_some(), "still valid UTF-8");
    }

    #[test]
    fn names_differing_in_invalid_bytes_derive_distinct_names() {
        let a = OsString::from_vec(b"bad\xff.txt".to_vec());
        let b = OsString::from_vec(b"bad\xfe.txt".to_vec());
        assert_ne!(derived(&a, ".tmp"), derived(&b, ".tmp"));
        let long_a = OsString::from_vec([&[b'z'; 300][..], b"\xff"].concat());
        let long_b = OsString::from_vec([&[b'z'; 300][..], b"\xfe"].concat());
        assert_ne!(derived(&long_a, ".tmp"), derived(&long_b, ".tmp"));
    }

    #[test]
    fn shown_names_are_one_line_and_keep_bad_bytes_apart() {
        let forged = Path::new("x.txt\nERROR forged line");
        let shown = Shown(forged).to_string();
        assert!(!shown.contains('\n'));
        assert_eq!(shown, "x.txt\\nERROR forged line");
        let a = OsString::from_vec(b"bad\xff.txt".to_vec());
        let b = OsString::from_vec(b"bad\xfe.txt".to_vec());
        assert_eq!(Shown(Path::new(&a)).to_string(), "bad\\xff.txt");
        assert_ne!(
            Shown(Path::new(&a)).to_string(),
            Shown(Path::new(&b)).to_string()
        );
        assert_eq!(Shown(Path::new("a\\b")).to_string(), "a\\\\b");
    }
}
