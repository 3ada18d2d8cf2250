//! Columns: the layouts whose first line is a header naming the columns (Polygon, Databento,
//! generic CSV): the header into the layout's column map, each later line cut into fields and
//! read through that map.
//!
//! A header the layout refuses (a column it needs is missing, a name twice, not a header at all)
//! is a `bad_header` rejection of line 1 saying what was expected and what was found; every later
//! line is then refused as `bad_header` too (its columns are unknown), so the file is accounted
//! line by line and never loaded under a wrong column map.

use std::io::{self, BufRead};

use super::lines::{Line, LineReader, MAX_LINE_BYTES};
use super::text;
use super::{BarTime, Parsed, Record, Source, Volume};
use crate::model::Symbol;
use crate::model::reject::{Defect, RejectReason, Rejection};

/// Most columns a header may name: a bar layout needs a handful; more is not a bar file.
pub const MAX_COLUMNS: usize = 64;

/// A record's values, as a layout's row reader makes them (the line and raw text are added by
/// [`HeaderSource`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    pub symbol: Option<Symbol>,
    pub time: BarTime,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: Volume,
}

/// One layout with a header: how its header becomes a column map, and how a line's fields
/// become values through that map.
pub trait Columnar {
    /// The column map a header gives.
    type Map;

    /// The layout's name and expected columns, for messages (`Polygon (ticker,volume,...)`).
    fn expected(&self) -> String;

    /// The column map of a header (lower-cased names, in file order), or what is wrong with it.
    fn map(&self, names: &[String]) -> Result<Self::Map, String>;

    /// The values of one data line, whose field count matches the header; `symbols` reads
    /// its symbol field.
    fn read(
        &self,
        map: &Self::Map,
        fields: &Fields<'_>,
        symbols: &mut SymbolCache,
    ) -> Result<Values, Defect>;
}

/// The fields of one line, trimmed of ASCII whitespace and of one pair of surrounding `"`.
#[derive(Debug)]
pub struct Fields<'a> {
    line: &'a [u8],
    /// (start, end) of each field in `line`.
    spans: &'a [(usize, usize)],
}

impl<'a> Fields<'a> {
    /// Field `i` (a column index from the header map).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (start, end) = self.spans[i];
        unquote(self.line[start..end].trim_ascii())
    }

    /// The fields of `line`, cut by [`split`] into `spans`.
    pub fn new(line: &'a [u8], spans: &'a [(usize, usize)]) -> Self {
        Self { line, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// `"x"` → `x`; anything else unchanged.
fn unquote(b: &[u8]) -> &[u8] {
    match b {
        [b'"', inner @ .., b'"'] => inner,
        _ => b,
    }
}

/// Cuts `line` at its commas into `spans` (cleared first), after checking it is text. Two
/// vectorised passes: the printable-ASCII check (the rest only when it fails) and the commas.
pub fn split(line: &[u8], spans: &mut Vec<(usize, usize)>) -> Result<(), Defect> {
    spans.clear();
    if !line.iter().all(|b| (0x20..0x7F).contains(b)) {
        text::check_text(line)?;
    }
    let mut start = 0;
    for comma in memchr::memchr_iter(b',', line) {
        spans.push((start, comma));
        start = comma + 1;
    }
    spans.push((start, line.len()));
    Ok(())
}

/// Whether a line reads as a header: at least two comma-separated fields, each starting with a
/// letter, `_` or `"` (a bar line starts with a digit: a date or a number).
pub fn looks_like_header(line: &[u8]) -> bool {
    let mut fields = line.split(|&b| b == b',');
    let starts_with_name = |f: &[u8]| {
        f.trim_ascii()
            .first()
            .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_' || c == b'"')
    };
    line.contains(&b',') && fields.all(starts_with_name)
}

/// The header's column names, lower-cased, trimmed and unquoted; or why it is no header.
pub fn header_names(line: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "line 1 is not UTF-8 text".to_string())?;
    let names: Vec<String> = text
        .split(',')
        .map(|f| String::from_utf8_lossy(unquote(f.trim().as_bytes())).to_ascii_lowercase())
        .collect();
    if names.len() > MAX_COLUMNS {
        return Err(format!(
            "{} columns, more than the limit of {MAX_COLUMNS}",
            names.len()
        ));
    }
    if !looks_like_header(line) {
        return Err("line 1 is not a header (a header names its columns)".into());
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(format!("column {name:?} is named twice"));
        }
    }
    Ok(names)
}

/// The index of the column named one of `aliases`, if any; an error when two columns are
/// (`volume` and `vol`: which one is meant is not for a reader to guess).
pub fn find(names: &[String], aliases: &[&str]) -> Result<Option<usize>, String> {
    let mut found = names
        .iter()
        .enumerate()
        .filter(|(_, n)| aliases.contains(&n.as_str()));
    match (found.next(), found.next()) {
        (Some((_, a)), Some((_, b))) => Err(format!("columns {a:?} and {b:?} name the same thing")),
        (first, _) => Ok(first.map(|(i, _)| i)),
    }
}

/// The index of a column the layout needs, or an error naming it.
pub fn require(names: &[String], aliases: &[&str]) -> Result<usize, String> {
    find(names, aliases)?.ok_or_else(|| match aliases {
        [one] => format!("no {one:?} column"),
        _ => format!("no column named any of {aliases:?}"),
    })
}

/// A symbol field, or a `bad_symbol` defect naming the column.
pub fn symbol(column: &str, b: &[u8]) -> Result<Symbol, Defect> {
    std::str::from_utf8(b)
        .ok()
        .and_then(Symbol::new)
        .ok_or_else(|| {
            Defect::new(
                RejectReason::BadSymbol,
                format!(
                    "{column} {:?} is not a valid symbol (1 to {} letters, digits, '.', '-')",
                    text::lossy(b),
                    Symbol::MAX_LEN
                ),
            )
        })
}

/// The last symbol read, so the lines of one symbol that follow each other (as in every
/// multi-symbol layout) are checked once.
#[derive(Debug, Default)]
pub struct SymbolCache {
    last: Option<(Vec<u8>, Symbol)>,
}

impl SymbolCache {
    /// The symbol of field `b` of column `column` (see [`symbol`]).
    #[inline]
    pub fn symbol(&mut self, column: &str, b: &[u8]) -> Result<Symbol, Defect> {
        if let Some((bytes, cached)) = &self.last
            && bytes.as_slice() == b
        {
            return Ok(cached.clone());
        }
        let fresh = symbol(column, b)?;
        self.last = Some((b.to_vec(), fresh.clone()));
        Ok(fresh)
    }
}

/// How far the header has been read.
#[derive(Debug)]
enum Header<M> {
    /// Line 1 not read yet.
    Unread,
    /// The header was accepted: the map and the number of columns.
    Mapped(M, usize),
    /// The header was refused (line 1 says why).
    Refused,
}

/// The records of a file in a layout with a header line, one per data line.
#[derive(Debug)]
pub struct HeaderSource<R, L: Columnar> {
    lines: LineReader<R>,
    layout: L,
    header: Header<L::Map>,
    /// Field spans of the current line, reused.
    spans: Vec<(usize, usize)>,
    symbols: SymbolCache,
}

impl<R: BufRead, L: Columnar> HeaderSource<R, L> {
    pub fn new(inner: R, layout: L) -> Self {
        Self {
            lines: LineReader::new(inner),
            layout,
            header: Header::Unread,
            spans: Vec::new(),
            symbols: SymbolCache::default(),
        }
    }
}

impl<R: BufRead, L: Columnar> Source for HeaderSource<R, L> {
    fn next_record(&mut self) -> io::Result<Option<Parsed<'_>>> {
        if let Header::Unread = self.header {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            match read_header(&self.layout, &line) {
                Ok(mapped) => self.header = mapped,
                Err(refused) => {
                    self.header = Header::Refused;
                    return Ok(Some(Err(refused)));
                }
            }
        }
        let Some(line) = self.lines.next_line()? else {
            return Ok(None);
        };
        let reading = Reading {
            layout: &self.layout,
            header: &self.header,
            spans: &mut self.spans,
            symbols: &mut self.symbols,
        };
        Ok(Some(reading.line(line)))
    }

    fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }
}

/// Line 1 into the column map, or its `bad_header` rejection.
fn read_header<L: Columnar>(layout: &L, line: &Line<'_>) -> Result<Header<L::Map>, Rejection> {
    let raw = line.raw();
    let names = if line.too_long {
        Err(format!("longer than {MAX_LINE_BYTES} bytes"))
    } else {
        header_names(line.bytes)
    };
    let mapped = names.and_then(|names| {
        let map = layout.map(&names)?;
        Ok(Header::Mapped(map, names.len()))
    });
    mapped.map_err(|why| {
        Defect::new(
            RejectReason::BadHeader,
            format!(
                "header {:?} is not the {} header: {why}",
                raw.text(),
                layout.expected()
            ),
        )
        .at(line.number, raw.text())
    })
}

/// What reading a data line uses of a [`HeaderSource`] (borrowed apart from its lines).
struct Reading<'s, L: Columnar> {
    layout: &'s L,
    header: &'s Header<L::Map>,
    spans: &'s mut Vec<(usize, usize)>,
    symbols: &'s mut SymbolCache,
}

impl<L: Columnar> Reading<'_, L> {
    /// One data line into a record, or its rejection.
    fn line<'a>(self, line: Line<'a>) -> Parsed<'a> {
        if let Some(rejection) = line.unreadable() {
            return Err(rejection);
        }
        let raw = line.raw();
        let reject = |defect: Defect| defect.at(line.number, raw.text());
        let Header::Mapped(map, width) = self.header else {
            return Err(reject(Defect::new(
                RejectReason::BadHeader,
                "the header on line 1 was refused, so this line's columns are unknown",
            )));
        };
        split(line.bytes, self.spans).map_err(reject)?;
        if self.spans.len() != *width {
            return Err(reject(Defect::new(
                RejectReason::FieldCount,
                format!(
                    "{} fields, expected {width} (the header's columns)",
                    self.spans.len()
                ),
            )));
        }
        let fields = Fields::new(line.bytes, self.spans);
        let v = self
            .layout
            .read(map, &fields, self.symbols)
            .map_err(reject)?;
        Ok(Record {
            line: line.number,
            raw,
            symbol: v.symbol,
            time: v.time,
            open: v.open,
            high: v.high,
            low: v.low,
            close: v.close,
            volume: v.volume,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_bar_lines_told_apart() {
        for header in [
            &b"timestamp,open,high,low,close,volume"[..],
            b"\"Date\", \"Open\",High",
            b"_ts,x",
        ] {
            assert!(looks_like_header(header), "{}", text::lossy(header));
        }
        for line in [
            &b"2024-01-02 10:00:00,1,2,0.5,1.5,7"[..],
            b"01/02/2024,09:30,1,2,0.5,1.5,7",
            b"timestamp",
            b"open,1.5",
            b"",
        ] {
            assert!(!looks_like_header(line), "{}", text::lossy(line));
        }
    }

    #[test]
    fn header_names_lowercase_trimmed_unquoted_and_unique() {
        assert_eq!(
            header_names(b" \"Ticker\" ,Volume,OPEN").unwrap(),
            ["ticker", "volume", "open"]
        );
        let twice = header_names(b"open,Open").unwrap_err();
        assert!(twice.contains("\"open\" is named twice"), "{twice}");
        let wide = vec!["c"; MAX_COLUMNS + 1].join(",");
        assert!(
            header_names(wide.as_bytes())
                .unwrap_err()
                .contains("65 columns")
        );
        assert!(header_names(b"2024-01-02,1").is_err());
    }

    #[test]
    fn the_symbol_cache_checks_each_new_symbol() {
        let mut cache = SymbolCache::default();
        for (field, want) in [
            ("aapl", Ok("AAPL")),
            ("aapl", Ok("AAPL")),
            ("I:SPX", Err(RejectReason::BadSymbol)),
            ("aapl", Ok("AAPL")),
            ("msft", Ok("MSFT")),
            ("I:SPX", Err(RejectReason::BadSymbol)),
        ] {
            let got = cache.symbol("ticker", field.as_bytes());
            assert_eq!(
                got.as_ref().map(Symbol::as_str).map_err(|d| d.reason),
                want,
                "{field}"
            );
        }
    }

    #[test]
    fn fields_split_trimmed_and_unquoted() {
        let mut spans = Vec::new();
        let line = b" a ,\"b\",,\"c";
        split(line, &mut spans).unwrap();
        let fields = Fields {
            line,
            spans: &spans,
        };
        let got: Vec<&[u8]> = (0..fields.len()).map(|i| fields.get(i)).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"\"c"]);
        assert_eq!(
            split(b"a,\x01", &mut spans).unwrap_err().reason,
            RejectReason::Binary
        );
        assert_eq!(
            split(b"a,\xFF", &mut spans).unwrap_err().reason,
            RejectReason::InvalidUtf8
        );
    }
}
