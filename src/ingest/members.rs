//! Members: orders the write timestamps of one delivery's units (a zip's members) whose symbols
//! share days, so that a later member replaces an earlier one over the days it covers.
//!
//! Every unit of a delivery is written at the delivery's claim time `T` (`claim_time`), so that
//! of two deliveries the later-claimed wins. Two members of one zip for the same symbol and day
//! would then write two day cells at the same `T`: the database keeps the larger byte string, so
//! one member's bars of that day were lost whole (and the bars table merged the two instead).
//! Each member is its own delivery, in the zip's order: a member whose days overlap an earlier
//! member's for a symbol is written at `T + k` µs, one above the highest earlier member it
//! overlaps, so its cells win and its range tombstone (`T + k - 1`) shadows the earlier one's.
//! A member sharing no symbol-day with an earlier one keeps `T` (the common case: one member
//! per symbol, or one day file per member). The offsets depend only on the members' order and
//! days, so a restart that resumes a member finds the same one. A member's `k` is at most the
//! number of members before it (a microsecond each).

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::model::Symbol;

/// The days each symbol's earlier members of one delivery cover, as one hull per symbol.
#[derive(Debug, Default)]
pub(crate) struct EarlierMembers {
    /// Per symbol: the first and last day covered by any earlier member, and the highest
    /// offset among them.
    hulls: HashMap<Symbol, Hull>,
}

#[derive(Debug, Clone, Copy)]
struct Hull {
    first: NaiveDate,
    last: NaiveDate,
    offset: i64,
}

impl EarlierMembers {
    /// The offset (µs above the claim time) of a member covering `days` (per symbol, first
    /// and last local day), and records it: 0 when no earlier member covers a day of one of
    /// its symbols, else one above the highest such member's. A hull per symbol is coarser
    /// than the members' exact days: a member may go above one it does not overlap, which
    /// changes no stored bar, only the offset's size.
    pub(crate) fn offset<'a>(
        &mut self,
        days: impl IntoIterator<Item = (&'a Symbol, NaiveDate, NaiveDate)> + Clone,
    ) -> i64 {
        let offset = days
            .clone()
            .into_iter()
            .filter_map(|(symbol, first, last)| {
                let h = self.hulls.get(symbol)?;
                (first <= h.last && h.first <= last).then_some(h.offset + 1)
            })
            .max()
            .unwrap_or(0);
        for (symbol, first, last) in days {
            let h = self.hulls.entry(symbol.clone()).or_insert(Hull {
                first,
                last,
                offset,
            });
            h.first = h.first.min(first);
            h.last = h.last.max(last);
            h.offset = h.offset.max(offset);
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 3, day).unwrap()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    #[test]
    fn only_members_sharing_a_symbols_days_go_above_the_earlier_ones() {
        let (a, b) = (sym("AAA"), sym("BBB"));
        let mut m = EarlierMembers::default();
        assert_eq!(m.offset([(&a, d(1), d(5))]), 0);
        // Another symbol, the same days: no overlap.
        assert_eq!(m.offset([(&b, d(1), d(5))]), 0);
        // AAA again, after its days: none shared.
        assert_eq!(m.offset([(&a, d(8), d(9))]), 0);
        // AAA over days the first two of its members covered: above both.
        assert_eq!(m.offset([(&a, d(5), d(8))]), 1);
        // A multi-symbol member sharing BBB's days: above BBB's member only.
        let c = sym("CCC");
        assert_eq!(m.offset([(&c, d(1), d(1)), (&b, d(2), d(2))]), 1);
        // Then AAA over 1 March: above the highest AAA member (1).
        assert_eq!(m.offset([(&a, d(1), d(1))]), 2);
        // CCC again on its day: above the multi-symbol member.
        assert_eq!(m.offset([(&c, d(1), d(1))]), 2);
    }
}
