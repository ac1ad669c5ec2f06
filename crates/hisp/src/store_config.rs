//! `[store]`: where the store is. Unset, it is SQLite, `<data_dir>/hisp.db`;
//! `url` names a PostgreSQL database instead, for several `hisp serve`
//! instances sharing one, each named by `instance`.
//!
//! The password is never in the configuration: the URL is refused when it
//! holds one, and the password comes from the environment
//! ([`PASSWORD_ENV`]) or from the file `password_file` names.

use std::path::PathBuf;

use anyhow::Context;
use hisp_store::PostgresUrl;
use serde::{Deserialize, Deserializer};

/// The environment variable that holds the PostgreSQL password.
pub const PASSWORD_ENV: &str = "HISP_STORE_PASSWORD";

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The PostgreSQL database, `postgres://USER@HOST:PORT/DATABASE
    /// ?sslmode=...`, without a password. Unset: the SQLite store in
    /// `data_dir`.
    #[serde(default, deserialize_with = "url")]
    pub url: Option<PostgresUrl>,
    /// A file holding the password of the URL's user (its first line),
    /// read when `HISP_STORE_PASSWORD` is not set. A relative path is
    /// taken relative to the directory of the config file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The most connections to the database one process keeps open.
    /// Unset: [`hisp_store::default_pool_size`] (four per processor core,
    /// at least 8).
    #[serde(default, deserialize_with = "pool_size")]
    pub pool_size: Option<u32>,
    /// This instance's name among those sharing the PostgreSQL database:
    /// its queue claims carry it, it frees only its own leases at start,
    /// and a second live process under the same name is refused. Letters,
    /// digits, `.`, `_` and `-`, at most 63. Unset: the host name.
    #[serde(default, deserialize_with = "instance")]
    pub instance: Option<String>,
}

impl StoreConfig {
    /// The instance name in force: `instance`, else the host name; an
    /// error saying to set `instance` when the host name cannot name one
    /// (never a name nobody chose).
    pub fn instance(&self) -> anyhow::Result<String> {
        if let Some(name) = &self.instance {
            return Ok(name.clone());
        }
        match crate::host::name() {
            Some(host) if instance_name_ok(&host) => Ok(host),
            Some(host) => anyhow::bail!(
                "the host name '{host}' cannot name this instance (1 to 63 letters, digits, '.', \
                 '_' or '-'): set [store] instance"
            ),
            None => anyhow::bail!("the host name is unknown: set [store] instance"),
        }
    }

    /// The pool size in force.
    pub fn pool_size(&self) -> u32 {
        self.pool_size.unwrap_or_else(hisp_store::default_pool_size)
    }

    /// The password: `HISP_STORE_PASSWORD` when set (and not empty), else
    /// the first line of `password_file`, else none (the server may let
    /// the user in without one, through `trust` or a client certificate).
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        if let Some(password) = std::env::var_os(PASSWORD_ENV).filter(|p| !p.is_empty()) {
            return password
                .into_string()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{PASSWORD_ENV} is not valid UTF-8"));
        }
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "cannot read the PostgreSQL password from [store] password_file {}",
                file.display()
            )
        })?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            anyhow::bail!(
                "[store] password_file {} is empty: its first line is the password",
                file.display()
            );
        }
        Ok(Some(password.to_string()))
    }
}

/// The message of a refused `[store] url` that holds a password, naming its
/// line but without the parser's quote of it (which would show the
/// password); `None` for every other error.
pub(crate) fn without_the_line(e: &toml::de::Error, text: &str) -> Option<String> {
    if !e.message().contains(PASSWORD_REFUSAL) {
        return None;
    }
    let line = e.span().map_or(0, |span| {
        text[..span.start.min(text.len())].matches('\n').count() + 1
    });
    Some(format!("[store] url at line {line}: {}", e.message()))
}

/// What [`PostgresUrl::parse`] says of a URL holding a password.
const PASSWORD_REFUSAL: &str = "which must not be written in the URL";

fn url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PostgresUrl>, D::Error> {
    let text = String::deserialize(deserializer)?;
    PostgresUrl::parse(&text).map(Some).map_err(|e| {
        let hint = match &e {
            hisp_store::StoreError::Invalid { reason, .. } if reason.contains(PASSWORD_REFUSAL) => {
                format!(
                    "; give the password in the environment variable {PASSWORD_ENV} or in the \
                     file named by [store] password_file"
                )
            }
            _ => String::new(),
        };
        serde::de::Error::custom(format!("{e}{hint}"))
    })
}

/// Whether `name` may name an instance.
fn instance_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn instance<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(deserializer)?;
    if instance_name_ok(&name) {
        Ok(Some(name))
    } else {
        Err(serde::de::Error::custom(format!(
            "instance '{name}' is not a name: 1 to 63 letters, digits, '.', '_' or '-'"
        )))
    }
}

fn pool_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(deserializer)? {
        0 => Err(serde::de::Error::custom(
            "pool_size is 0: the store needs at least one connection",
        )),
        n => Ok(Some(n)),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn store_is_sqlite_unless_a_url_is_given() {
        let c = Config::parse("").unwrap();
        assert!(c.store.url.is_none());
        assert!(c.store.password_file.is_none());
        assert_eq!(c.store.pool_size(), hisp_store::default_pool_size());
        assert!(c.store.pool_size() >= 8);
        let c = Config::parse(
            "[store]\nurl = \"postgres://hisp@db.example:5432/hisp?sslmode=verify-full\"\n\
             password_file = \"/etc/hisp/db-password\"\npool_size = 12\n",
        )
        .unwrap();
        let url = c.store.url.as_ref().unwrap();
        assert_eq!(url.ssl_mode(), hisp_store::SslMode::VerifyFull);
        assert_eq!(c.store.pool_size(), 12);
    }

    #[test]
    fn a_password_in_the_url_is_refused_saying_where_it_goes_without_showing_it() {
        let text = "data_dir = \"x\"\n[store]\nurl = \"postgres://hisp:s3cret@db.example/hisp\"\n";
        let e = Config::parse(text).unwrap_err();
        let shown = super::without_the_line(&e, text).unwrap();
        assert_eq!(
            shown,
            "[store] url at line 3: invalid PostgreSQL URL 'postgres://hisp:***@db.example/hisp': \
             it holds a password, which must not be written in the URL; give the password in the \
             environment variable HISP_STORE_PASSWORD or in the file named by [store] \
             password_file"
        );
        // Other errors keep the parser's quote of their line.
        let e = Config::parse("[store]\npool_size = 0\n").unwrap_err();
        assert_eq!(
            super::without_the_line(&e, "[store]\npool_size = 0\n"),
            None
        );
    }

    #[test]
    fn the_instance_is_the_configured_name_else_the_host_name() {
        let c = Config::parse("[store]\ninstance = \"mx-2.east\"\n").unwrap();
        assert_eq!(c.store.instance().unwrap(), "mx-2.east");
        let c = Config::parse("").unwrap();
        match crate::host::name().filter(|h| super::instance_name_ok(h)) {
            Some(host) => assert_eq!(c.store.instance().unwrap(), host),
            None => assert!(c.store.instance().is_err()),
        }
        for bad in ["", "mx 1", "mx/1", &"x".repeat(64)] {
            let e = Config::parse(&format!("[store]\ninstance = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a name"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_url_or_pool_size_is_refused_naming_it() {
        let e = Config::parse("[store]\nurl = \"mysql://db/hisp\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("it must start with postgres://"), "{e}");
        let e = Config::parse("[store]\npool_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pool_size is 0"), "{e}");
        let e = Config::parse("[store]\npassword = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `password`"), "{e}");
    }

    #[test]
    fn the_password_comes_from_the_file_when_the_environment_has_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-file\nsecond line\n").unwrap();
        std::fs::write(
            dir.path().join("hisp.toml"),
            "[store]\nurl = \"postgres://hisp@db/hisp\"\npassword_file = \"pw\"\n",
        )
        .unwrap();
        let c = Config::load(&dir.path().join("hisp.toml")).unwrap();
        assert_eq!(c.store.password_file, Some(dir.path().join("pw")));
        // The tests of this binary do not set HISP_STORE_PASSWORD.
        if std::env::var_os(super::PASSWORD_ENV).is_none() {
            assert_eq!(c.store.password().unwrap().as_deref(), Some("from-file"));
        }
        std::fs::write(dir.path().join("pw"), "").unwrap();
        if std::env::var_os(super::PASSWORD_ENV).is_none() {
            let e = c.store.password().unwrap_err().to_string();
            assert!(
                e.ends_with("is empty: its first line is the password"),
                "{e}"
            );
        }
    }
}
