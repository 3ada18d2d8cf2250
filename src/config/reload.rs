//! Reload: which keys a new reading of the file changed, and which of them the daemon applies
//! while it runs (the live keys); every other change takes effect at the next start.

use serde_json::Value;

use super::{Config, Settings};

/// The keys a reload applies at once. Everything else needs a restart.
pub const LIVE_KEYS: [&str; 4] = [
    "ingest.max_rows_per_second",
    "ingest.max_bytes_per_second",
    "ingest.min_batches_in_flight",
    "ingest.max_batches_in_flight",
];

/// Whether a reload applies `key` at once.
pub fn is_live(key: &str) -> bool {
    LIVE_KEYS.contains(&key)
}

/// What a reload found, as full key names (`ingest.max_rows_per_second`, `watch.settle`,
/// `source` for the `[[source]]` rules as a whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Live keys whose value changed since the last reading: applied now.
    pub applied: Vec<String>,
    /// Other keys whose value differs from the one the daemon started with: they take effect
    /// at the next start (reported at every reload until then).
    pub need_restart: Vec<String>,
}

impl Changes {
    /// What the daemon does with `new`, given the file it started with (`started`) and the
    /// last one it read (`last`).
    pub fn between(started: &Settings, last: &Settings, new: &Settings) -> Self {
        let applied = changed_keys(&last.as_read, &new.as_read)
            .into_iter()
            .filter(|k| is_live(k))
            .collect();
        let need_restart = changed_keys(&started.as_read, &new.as_read)
            .into_iter()
            .filter(|k| !is_live(k))
            .collect();
        Self {
            applied,
            need_restart,
        }
    }
}

/// Every key whose value differs between two readings, sorted. A key set in one and left out
/// (at its default) in the other counts as changed only if the values differ.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    diff("", &as_value(old), &as_value(new), &mut out);
    out.sort();
    out
}

fn as_value(config: &Config) -> Value {
    // Every field is a string, number, bool, list or table of those: this cannot fail.
    serde_json::to_value(config).unwrap_or(Value::Null)
}

fn diff(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, a_value) in a {
                let full = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                diff(&full, a_value, b.get(key).unwrap_or(&Value::Null), out);
            }
        }
        (a, b) if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        let config: Config = toml::from_str(text).unwrap();
        Settings::validate(config, None, None).unwrap()
    }

    #[test]
    fn changed_keys_are_named_in_full() {
        let a = settings("[ingest]\nmax_rows_per_second = 1000\n");
        let b = settings(
            "[ingest]\nmax_rows_per_second = 2000\n[watch]\nsettle = \"7s\"\n\
             [database]\nlocal_datacenter = \"dc1\"\n[retention.done]\nmax_age = \"1d\"\n",
        );
        assert_eq!(
            changed_keys(&a.as_read, &b.as_read),
            vec![
                "database.local_datacenter",
                "ingest.max_rows_per_second",
                "retention.done.max_age",
                "watch.settle",
            ]
        );
        assert!(changed_keys(&a.as_read, &a.as_read).is_empty());
    }

    #[test]
    fn a_default_written_out_is_no_change() {
        let a = settings("");
        let b = settings("[ingest]\nbatch_rows = 100\n[watch]\nmode = \"notify\"\n");
        assert!(changed_keys(&a.as_read, &b.as_read).is_empty());
    }

    #[test]
    fn lists_and_source_rules_count_as_one_key() {
        let a = settings("[database]\ncontact_points = [\"a\", \"b\"]\n");
        let b = settings(
            "[database]\ncontact_points = [\"a\", \"c\"]\n\
             [[source]]\npattern = \"*.csv\"\nlayout = \"csv\"\n",
        );
        assert_eq!(
            changed_keys(&a.as_read, &b.as_read),
            vec!["database.contact_points", "source"]
        );
    }

    /// The password is compared by digest: a change is seen, the value never shown.
    #[test]
    fn a_changed_password_is_seen_but_never_shown() {
        let a = settings("[database]\nusername = \"u\"\npassword = \"first-secret\"\n");
        let b = settings("[database]\nusername = \"u\"\npassword = \"second-secret\"\n");
        assert_eq!(
            changed_keys(&a.as_read, &b.as_read),
            vec!["database.password"]
        );
        let shown = serde_json::to_string(&b.as_read).unwrap();
        assert!(!shown.contains("second-secret"), "{shown}");
    }

    #[test]
    fn live_keys_apply_and_the_rest_waits_for_a_restart() {
        let started = settings("[ingest]\nmax_rows_per_second = 1000\n");
        let last = settings("[ingest]\nmax_rows_per_second = 1000\n[watch]\nsettle = \"7s\"\n");
        let new = settings(
            "[ingest]\nmax_rows_per_second = 5000\nmax_batches_in_flight = 64\n\
             batch_rows = 50\n[watch]\nsettle = \"7s\"\n",
        );
        let changes = Changes::between(&started, &last, &new);
        assert_eq!(
            changes.applied,
            vec!["ingest.max_batches_in_flight", "ingest.max_rows_per_second"]
        );
        // watch.settle did not change since the last reading, but it is still not in force.
        assert_eq!(
            changes.need_restart,
            vec!["ingest.batch_rows", "watch.settle"]
        );
        for key in LIVE_KEYS {
            assert!(is_live(key));
        }
        assert!(!is_live("ingest.initial_batches_in_flight"));
    }
}
