//! The list of every key the config file accepts, kept equal to the serde structs by a test.

/// Every key of the config file, as `section.key`: `[database.tls]`'s `ca_file` is
/// `database.tls.ca_file`, a `[[source]]` rule's `pattern` is `source.pattern`, a retention
/// folder's `max_age` is `retention.done.max_age`. `database.replication.datacenters` and
/// `source.symbol_map` are keys whose values are tables of the user's own names.
///
/// The tests below check that these are exactly the keys the structs have and that each is
/// accepted (every struct denies unknown keys); `tests/docs.rs` checks that each is documented in
/// `docs/configuration.md`.
pub const KEYS: &[&str] = &[
    "database.contact_points",
    "database.keyspace",
    "database.bars_table",
    "database.history_table",
    "database.days_table",
    "database.bars_table_options",
    "database.replication.class",
    "database.replication.factor",
    "database.replication.datacenters",
    "database.local_datacenter",
    "database.consistency",
    "database.request_timeout",
    "database.connect_timeout",
    "database.username",
    "database.password",
    "database.password_file",
    "database.tls.enabled",
    "database.tls.ca_file",
    "database.tls.cert_file",
    "database.tls.key_file",
    "database.tls.server_name",
    "database.manage_schema",
    "paths.inbox",
    "paths.state_root",
    "input.timezone",
    "input.adjustment",
    "ingest.instance",
    "ingest.batch_rows",
    "ingest.batch_max_bytes",
    "ingest.max_batches_in_flight",
    "ingest.min_batches_in_flight",
    "ingest.initial_batches_in_flight",
    "ingest.max_rows_per_second",
    "ingest.max_bytes_per_second",
    "ingest.files_in_parallel",
    "ingest.reject_threshold",
    "ingest.retry_initial",
    "ingest.retry_max",
    "ingest.shutdown_deadline",
    "watch.mode",
    "watch.rescan_interval",
    "watch.poll_interval",
    "watch.settle",
    "watch.changed_backoff",
    "watch.changed_backoff_max",
    "metrics.listen",
    "retention.interval",
    "retention.min_free_bytes",
    "retention.min_free_percent",
    "retention.space_check_interval",
    "retention.done.max_age",
    "retention.done.max_bytes",
    "retention.done.action",
    "retention.duplicates.max_age",
    "retention.duplicates.max_bytes",
    "retention.duplicates.action",
    "retention.failed.max_age",
    "retention.failed.max_bytes",
    "retention.failed.action",
    "retention.dead_letter.max_age",
    "retention.dead_letter.max_bytes",
    "retention.dead_letter.action",
    "dead_letter.max_lines_per_file",
    "dead_letter.max_bytes_per_file",
    "storage.layout",
    "coverage.watch",
    "coverage.refresh_interval",
    "source.name",
    "source.pattern",
    "source.layout",
    "source.timezone",
    "source.stamp",
    "source.interval",
    "source.epoch_unit",
    "source.symbol",
    "source.symbol_pattern",
    "source.symbol_map",
    "source.gate",
    "source.gate_min_bars",
];

/// Keys whose value is a table of the user's own names (not a section of keys).
#[cfg(test)]
const MAP_KEYS: &[&str] = &["database.replication.datacenters", "source.symbol_map"];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::{Config, FolderRetention, Secret, SourceConfig, StorageLayout};
    use super::{KEYS, MAP_KEYS};

    /// The keys of a serialized config: every leaf, `[[source]]` through its first rule.
    fn keys_of(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) if !MAP_KEYS.contains(&prefix) => {
                for (name, child) in map {
                    let key = match prefix {
                        "" => name.clone(),
                        _ => format!("{prefix}.{name}"),
                    };
                    keys_of(child, &key, out);
                }
            }
            serde_json::Value::Array(items) if prefix == "source" => {
                keys_of(&items[0], prefix, out);
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    fn listed() -> BTreeSet<String> {
        KEYS.iter().map(|k| k.to_string()).collect()
    }

    /// Fails naming the keys the structs have and KEYS lacks, and the other way round.
    fn assert_listed(found: &BTreeSet<String>, context: &str) {
        let listed = listed();
        let unlisted: Vec<_> = found.difference(&listed).collect();
        let no_key: Vec<_> = listed.difference(found).collect();
        assert!(
            unlisted.is_empty() && no_key.is_empty(),
            "keys not in config::KEYS (add them there and to docs/configuration.md): \
             {unlisted:?}; in KEYS but not in the structs: {no_key:?}\n{context}"
        );
    }

    /// A config with every optional key set and one `[[source]]` rule, so that serializing it
    /// writes every key.
    fn populated() -> Config {
        let mut c = Config::default();
        c.database.password = Secret::new("secret");
        c.database.password_file = Some(PathBuf::from("/etc/bar-ingest/db-password"));
        c.database.replication.datacenters.insert("dc1".into(), 3);
        c.database.tls.ca_file = Some(PathBuf::from("/etc/ca.pem"));
        c.database.tls.cert_file = Some(PathBuf::from("/etc/client.pem"));
        c.database.tls.key_file = Some(PathBuf::from("/etc/client.key"));
        c.database.tls.server_name = Some("scylla.example.com".into());
        c.ingest.min_batches_in_flight = Some(4);
        c.ingest.initial_batches_in_flight = Some(32);
        c.storage.layout = Some(StorageLayout::Both);
        let limited = FolderRetention {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: Some(1 << 30),
            ..FolderRetention::default()
        };
        let r = &mut c.retention;
        for folder in [
            &mut r.done,
            &mut r.duplicates,
            &mut r.failed,
            &mut r.dead_letter,
        ] {
            *folder = limited.clone();
        }
        let mut rule = SourceConfig::default();
        for field in [
            &mut rule.name,
            &mut rule.pattern,
            &mut rule.timezone,
            &mut rule.stamp,
            &mut rule.interval,
            &mut rule.epoch_unit,
            &mut rule.symbol,
            &mut rule.symbol_pattern,
        ] {
            *field = Some("x".into());
        }
        rule.symbol_map.insert("FB".into(), "META".into());
        c.source.push(rule);
        c
    }

    /// KEYS names exactly the structs' keys, optional ones included (a default config with one
    /// default rule serializes `None` as null, so no key is left out).
    #[test]
    fn keys_are_exactly_the_structs_keys() {
        let mut config = Config::default();
        config.source.push(SourceConfig::default());
        let mut found = BTreeSet::new();
        keys_of(&serde_json::to_value(&config).unwrap(), "", &mut found);
        assert_listed(&found, "");
        assert_eq!(KEYS.len(), listed().len(), "a key is listed twice");
    }

    /// Every key is accepted: a file setting all of them, written by serializing a config with
    /// every key set, parses back.
    #[test]
    fn every_key_is_accepted() {
        let value = toml::Value::try_from(populated()).unwrap();
        let text = toml::to_string(&value).unwrap();
        let parsed: Result<Config, _> = toml::from_str(&text);
        assert!(parsed.is_ok(), "{text}\n{parsed:?}");
        let mut found = BTreeSet::new();
        keys_of(&serde_json::to_value(&value).unwrap(), "", &mut found);
        assert_listed(&found, &text);
    }

    /// A key not in KEYS is refused at the top and in every section: every struct denies
    /// unknown keys.
    #[test]
    fn unknown_keys_are_refused_in_every_section() {
        let mut sections = BTreeSet::from([String::new()]);
        for key in KEYS.iter().filter(|k| !MAP_KEYS.contains(k)) {
            let parts: Vec<&str> = key.split('.').collect();
            for n in 1..parts.len() {
                sections.insert(parts[..n].join("."));
            }
        }
        for section in &sections {
            let text = match section.as_str() {
                "" => "not_a_key = 1\n".to_owned(),
                "source" => "[[source]]\npattern = \"*\"\nnot_a_key = 1\n".to_owned(),
                s => format!("[{s}]\nnot_a_key = 1\n"),
            };
            let err = toml::from_str::<Config>(&text)
                .expect_err(&text)
                .to_string();
            assert!(err.contains("unknown field `not_a_key`"), "{text}: {err}");
        }
        assert!(sections.len() > 10, "{sections:?}");
    }
}
