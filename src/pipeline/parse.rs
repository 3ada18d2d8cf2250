//! Parse: bytes of a FirstRate-style file into numbered lines and raw fields, streaming.
//! (stub: being written)
