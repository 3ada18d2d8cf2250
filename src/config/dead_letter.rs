//! `[dead_letter]`: the budget of each input file's dead-letter log, so that one bad file cannot
//! fill the disk its state folder shares with the inbox.

use serde::{Deserialize, Serialize};

use super::KeyError;

/// Smallest `max_bytes_per_file`: room for a few entries with a whole kept raw line (512 bytes
/// of text, up to six bytes each once JSON-escaped), so that `max_lines_per_file` alone decides
/// whether lines are kept.
pub const MIN_BYTES_PER_FILE: u64 = 16 * 1024;

/// `[dead_letter]`: how much of a file's rejects its dead-letter log keeps in full. Counts per
/// reason of every reject are kept whatever the budget (the log's last line, the metrics, the
/// load history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// The first this many rejected lines of a file are kept in full (0: only the counts).
    pub max_lines_per_file: u64,
    /// Bytes of kept lines per file; once the next line would pass it, no more are written.
    pub max_bytes_per_file: u64,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            max_lines_per_file: 1000,
            max_bytes_per_file: 4 * 1024 * 1024,
        }
    }
}

impl DeadLetterConfig {
    /// Checks the byte budget has room for whole entries.
    pub(super) fn validate(&self) -> Result<(), KeyError> {
        if self.max_bytes_per_file < MIN_BYTES_PER_FILE {
            return Err(KeyError::new(
                "dead_letter.max_bytes_per_file",
                format!(
                    "{} is below {MIN_BYTES_PER_FILE}, too small for whole entries \
                     (to keep no lines, set max_lines_per_file = 0)",
                    self.max_bytes_per_file
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_a_thousand_lines_within_four_mib() {
        let c = DeadLetterConfig::default();
        assert_eq!(c.max_lines_per_file, 1000);
        assert_eq!(c.max_bytes_per_file, 4 * 1024 * 1024);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn keys_parse_and_unknown_ones_are_refused() {
        let c: DeadLetterConfig =
            toml::from_str("max_lines_per_file = 0\nmax_bytes_per_file = 65536\n").unwrap();
        assert_eq!(c.max_lines_per_file, 0);
        assert_eq!(c.max_bytes_per_file, 65536);
        assert!(c.validate().is_ok(), "0 lines: counts only");
        let err = toml::from_str::<DeadLetterConfig>("max_line_per_file = 5\n").unwrap_err();
        assert!(err.to_string().contains("max_line_per_file"), "{err}");
    }

    #[test]
    fn a_byte_budget_too_small_for_whole_entries_is_refused() {
        let c = DeadLetterConfig {
            max_bytes_per_file: MIN_BYTES_PER_FILE - 1,
            ..DeadLetterConfig::default()
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "dead_letter.max_bytes_per_file");
        assert!(
            err.reason.contains("max_lines_per_file = 0"),
            "{}",
            err.reason
        );
        let edge = DeadLetterConfig {
            max_bytes_per_file: MIN_BYTES_PER_FILE,
            ..DeadLetterConfig::default()
        };
        assert!(edge.validate().is_ok());
    }
}
