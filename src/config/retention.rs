//! `[retention]`: how long the archive folders keep their files, and the free-space floor below
//! which the daemon stops claiming.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::KeyError;

/// One GiB, the default free-space floor.
const GIB: u64 = 1024 * 1024 * 1024;

/// `[retention]`: limits per archive folder, how often they are applied, and the free-space
/// floor. By default nothing is ever deleted (no folder has a limit) and claiming pauses below
/// 1 GiB free on the state root's filesystem.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How often the folders are swept (also once at start).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Claiming pauses while fewer bytes than this are free on the state root's filesystem
    /// (0: no byte floor).
    pub min_free_bytes: u64,
    /// Claiming pauses while less than this share (percent, 0 to 100) of that filesystem is free
    /// (0: no percentage floor). With both set, the higher floor holds.
    pub min_free_percent: f64,
    /// How often free space is checked (it is also checked before every claim).
    #[serde(with = "humantime_serde")]
    pub space_check_interval: Duration,
    /// `done/`: files loaded.
    pub done: FolderRetention,
    /// `duplicates/`: files whose content was already loaded.
    pub duplicates: FolderRetention,
    /// `failed/`: files not loaded, each removed together with its `*.error.json`.
    pub failed: FolderRetention,
    /// `dead-letter/`: the rejected-row logs.
    pub dead_letter: FolderRetention,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            min_free_bytes: GIB,
            min_free_percent: 0.0,
            space_check_interval: Duration::from_secs(5),
            done: FolderRetention::default(),
            duplicates: FolderRetention::default(),
            failed: FolderRetention::default(),
            dead_letter: FolderRetention::default(),
        }
    }
}

/// The limits of one folder. Neither set (the default): the folder keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FolderRetention {
    /// Files whose modification time is older than this are retired.
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Above this total size, the oldest files are retired until the folder fits.
    pub max_bytes: Option<u64>,
    /// What retiring a file means.
    pub action: RetentionAction,
}

impl FolderRetention {
    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.max_age.is_some() || self.max_bytes.is_some()
    }
}

/// What happens to a file past its folder's limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionAction {
    /// The file (and a failed file's sidecar) is deleted.
    #[default]
    Delete,
}

impl RetentionConfig {
    /// Each folder by the name of its key, in a fixed order.
    pub fn folders(&self) -> [(&'static str, &FolderRetention); 4] {
        [
            ("done", &self.done),
            ("duplicates", &self.duplicates),
            ("failed", &self.failed),
            ("dead_letter", &self.dead_letter),
        ]
    }

    /// The free-space floor in bytes on a filesystem of `total` bytes: the higher of the two.
    pub fn floor_bytes(&self, total: u64) -> u64 {
        let by_share = (total as f64 * self.min_free_percent / 100.0).ceil() as u64;
        self.min_free_bytes.max(by_share)
    }

    pub(super) fn validate(&self) -> Result<(), KeyError> {
        for (key, interval) in [
            ("retention.interval", self.interval),
            ("retention.space_check_interval", self.space_check_interval),
        ] {
            if interval.is_zero() {
                return Err(KeyError::new(key, "must be above zero"));
            }
        }
        if !(0.0..=100.0).contains(&self.min_free_percent) {
            return Err(KeyError::new(
                "retention.min_free_percent",
                format!(
                    "{} is not a percentage from 0 to 100",
                    self.min_free_percent
                ),
            ));
        }
        for (name, folder) in self.folders() {
            folder.validate(name)?;
        }
        Ok(())
    }
}

impl FolderRetention {
    fn validate(&self, name: &str) -> Result<(), KeyError> {
        let keep_forever = "leave the key out to keep files forever";
        if self.max_age.is_some_and(|a| a.is_zero()) {
            return Err(KeyError::new(
                format!("retention.{name}.max_age"),
                format!("must be above zero ({keep_forever})"),
            ));
        }
        if self.max_bytes == Some(0) {
            return Err(KeyError::new(
                format!("retention.{name}.max_bytes"),
                format!("must be above zero ({keep_forever})"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RetentionConfig {
        #[derive(Deserialize)]
        struct File {
            retention: RetentionConfig,
        }
        toml::from_str::<File>(text).unwrap().retention
    }

    #[test]
    fn defaults_delete_nothing_and_keep_a_one_gib_floor() {
        let r = RetentionConfig::default();
        assert!(r.folders().iter().all(|(_, f)| !f.is_limited()));
        assert_eq!(r.floor_bytes(100 * GIB), GIB);
        assert!(r.validate().is_ok());
    }

    #[test]
    fn folder_limits_parse() {
        let r = parse(
            "[retention]\ninterval = \"10m\"\nmin_free_percent = 5\n\
             [retention.done]\nmax_age = \"90days\"\n\
             [retention.failed]\nmax_bytes = 1000\naction = \"delete\"\n",
        );
        assert_eq!(r.interval, Duration::from_secs(600));
        assert_eq!(r.done.max_age, Some(Duration::from_secs(90 * 86400)));
        assert_eq!(r.done.max_bytes, None);
        assert_eq!(r.failed.max_bytes, Some(1000));
        assert!(!r.duplicates.is_limited() && !r.dead_letter.is_limited());
        // The higher floor holds: 5% of 100 GiB is above 1 GiB.
        assert_eq!(r.floor_bytes(100 * GIB), 5 * GIB);
        assert_eq!(r.floor_bytes(GIB), GIB);
    }

    #[test]
    fn unknown_keys_and_actions_are_refused() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            retention: RetentionConfig,
        }
        for text in [
            "[retention.done]\nmax_agee = \"1d\"\n",
            "[retention.done]\naction = \"shred\"\n",
            "[retention.inbox]\nmax_age = \"1d\"\n",
        ] {
            assert!(toml::from_str::<File>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn unusable_values_name_their_key() {
        let cases = [
            ("[retention]\ninterval = \"0s\"\n", "retention.interval"),
            (
                "[retention]\nspace_check_interval = \"0s\"\n",
                "retention.space_check_interval",
            ),
            (
                "[retention]\nmin_free_percent = 101\n",
                "retention.min_free_percent",
            ),
            (
                "[retention.duplicates]\nmax_age = \"0s\"\n",
                "retention.duplicates.max_age",
            ),
            (
                "[retention.dead_letter]\nmax_bytes = 0\n",
                "retention.dead_letter.max_bytes",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).validate().unwrap_err();
            assert_eq!(err.key, key, "{text}");
        }
    }
}
