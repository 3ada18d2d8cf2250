//! Binary: whether a unit's first decoded bytes are a binary format rather than text (a
//! Databento DBN file, Parquet, Arrow, a spreadsheet, UTF-16 text or other non-text bytes), so
//! that it is refused at once with one reason instead of line by line.

/// Share of control bytes (other than tab, `\n`, `\r`, form feed) in the first bytes above which
/// a unit is binary. Text has none; a text file with a stray NUL in one line is far below it;
/// compressed or structured binary data is far above it (about one byte in eight is a control
/// byte in random data, and zeros pad most binary formats).
const MAX_CONTROL_SHARE: f64 = 0.1;

/// Leading bytes of binary formats vendors or users hand over instead of a text file, and how
/// each is named in the refusal.
const MAGIC: [(&[u8], &str); 4] = [
    (b"PAR1", "a Parquet file"),
    (b"ARROW1", "an Arrow IPC file"),
    (
        b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
        "an old Excel (OLE) document",
    ),
    (b"SQLite format 3\0", "an SQLite database"),
];

/// What the unit starting with `head` looks like when it is not text, in words (`a Databento DBN
/// file (version 2)`); None for text (or too little to tell).
pub fn looks_binary(head: &[u8]) -> Option<String> {
    if let [b'D', b'B', b'N', version, ..] = head
        && (1..=9).contains(version)
    {
        return Some(format!("a Databento DBN file (version {version})"));
    }
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some((*what).to_owned());
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Some("UTF-16 text (bar files are read as UTF-8)".to_owned());
    }
    if head.is_empty() {
        return None;
    }
    let controls = head
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F)
        .count();
    (controls as f64 / head.len() as f64 > MAX_CONTROL_SHARE).then(|| {
        let nul = head.iter().position(|&b| b == 0);
        match nul {
            Some(at) => format!("binary data, not text (a NUL byte at offset {at})"),
            None => "binary data, not text (control bytes)".to_owned(),
        }
    })
}

/// What to do with a binary unit, for its refusal.
pub const WHAT_TO_DO: &str = "bar files are text: export it as CSV (for Databento, `dbn --csv` \
                              or the API's `encoding=csv`) and drop the CSV";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_formats_are_named_and_text_is_not() {
        let cases: [(&[u8], Option<&str>); 10] = [
            (
                b"DBN\x02\x10\x00\x00\x00GLBX",
                Some("Databento DBN file (version 2)"),
            ),
            (b"PAR1\x15\x04\x15", Some("Parquet")),
            (b"ARROW1\0\0", Some("Arrow")),
            (b"\xFF\xFEt\0i\0m\0e\0", Some("UTF-16")),
            (
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                Some("NUL byte at offset 0"),
            ),
            (b"2024-01-02 10:00:00,1,2,0.5,1.5,7\n", None),
            (
                b"2024-03-11 10:00:00,1\x000,11,9,10.5,100\n2024-03-11 10:01:00,1,1,1,1,1\n",
                None,
            ),
            (b"ticker,volume\r\nA,1\r\n", None),
            (b"DBNA,1,2", None),
            (b"", None),
        ];
        for (head, want) in cases {
            let got = looks_binary(head);
            match want {
                Some(needle) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(needle)),
                    "{head:?}: {got:?}"
                ),
                None => assert_eq!(got, None, "{head:?}"),
            }
        }
        // Latin-1 text is no binary: its lines are rejected one by one as today.
        assert_eq!(looks_binary(b"Caf\xE9,1,2\n"), None);
    }
}
