//! Every exit code of the binary, in one place (docs/commands.md lists them).

use std::process::ExitCode;

/// Everything the command was asked to do was done.
pub const OK: u8 = 0;
/// `load`: rows were rejected, or files failed, were quarantined or were empty.
pub const PARTIAL: u8 = 1;
/// The command could not run: a bad argument or config, a database unreachable at start, a
/// daemon that cannot start (clap uses 2 for its own usage errors too).
pub const CANNOT_RUN: u8 = 2;
/// `migrate`: stopped by SIGINT/SIGTERM (or --stop-after) before the end; run it again to
/// resume.
pub const INTERRUPTED: u8 = 3;
/// `migrate`: a day cell differs from its rows.
pub const MISMATCH: u8 = 1;
/// A second SIGTERM/SIGINT during a graceful stop exits with 128 + the signal's number.
pub const SIGNAL_BASE: i32 = 128;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
