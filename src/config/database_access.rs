//! How the database is accessed beyond where it is: the name node certificates are verified
//! against (`database.tls.server_name`), and the user name a refusal concerns.
//! (`database.manage_schema` needs no check.)

use rustls_pki_types::ServerName;

use super::{Database, KeyError, TlsConfig};

impl Database {
    /// The user name the cluster is logged in with, if any (for permission messages).
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }
}

impl TlsConfig {
    /// `server_name`, when set, is a DNS name or an IP address, and only used with TLS.
    pub(super) fn validate_server_name(&self) -> Result<(), KeyError> {
        let Some(name) = &self.server_name else {
            return Ok(());
        };
        const KEY: &str = "database.tls.server_name";
        if !self.enabled {
            return Err(KeyError::new(KEY, "set, but database.tls.enabled is false"));
        }
        ServerName::try_from(name.as_str()).map_err(|_| {
            KeyError::new(KEY, format!("`{name}` is not a DNS name or an IP address"))
        })?;
        Ok(())
    }

    /// The name to verify node certificates against, if one is set (else each node's address).
    pub fn verified_name(&self) -> Option<ServerName<'static>> {
        let name = self.server_name.as_deref()?;
        ServerName::try_from(name).ok().map(|n| n.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Settings};

    fn validate(text: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let text = text.replace("CA", &ca.display().to_string());
        let config: Config = toml::from_str(&text).map_err(|e| e.to_string())?;
        Settings::validate(config, None, None).map_err(|e| e.to_string())
    }

    #[test]
    fn server_name_is_a_dns_name_or_an_ip_and_needs_tls() {
        let tls = "[database.tls]\nenabled = true\nca_file = \"CA\"\n";
        for good in ["db-1.example.com", "scylla", "10.0.0.7"] {
            let s = validate(&format!("{tls}server_name = \"{good}\"\n")).unwrap();
            assert!(s.database.tls.verified_name().is_some(), "{good}");
        }
        for bad in ["", "bad name", "a..b"] {
            let err = validate(&format!("{tls}server_name = \"{bad}\"\n")).unwrap_err();
            assert!(err.contains("database.tls.server_name"), "{bad}: {err}");
        }
        let err = validate("[database.tls]\nserver_name = \"db\"\n").unwrap_err();
        assert!(
            err.contains("database.tls.server_name") && err.contains("enabled is false"),
            "{err}"
        );
        let plain = validate(tls).unwrap();
        assert!(plain.database.tls.verified_name().is_none());
    }

    #[test]
    fn manage_schema_defaults_to_true_and_can_be_turned_off() {
        assert!(validate("").unwrap().database.manage_schema);
        let off = validate("[database]\nmanage_schema = false\n").unwrap();
        assert!(!off.database.manage_schema);
    }
}
