//! Watch: reports complete candidate files in the inbox (notify events, rescans, or polling).
//! (stub: being written)
