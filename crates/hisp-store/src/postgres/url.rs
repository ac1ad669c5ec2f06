//! `[store] url`: the PostgreSQL database, as a URL in libpq's form,
//! `postgres://USER@HOST:PORT/DATABASE?sslmode=...`.
//!
//! The URL never carries the password: one written there would sit in the
//! configuration file and in every log line or error that names the
//! database. It is refused here, and the password is given to
//! [`PostgresPool::open`](super::PostgresPool::open) separately.
//!
//! The `postgres` crate reads libpq's URLs but knows only the `sslmode`s
//! `disable`, `prefer` and `require`; `verify-ca`, `verify-full` and
//! `sslrootcert` are read here and carried out by the TLS connector
//! (`tls.rs`), and the rest of the URL is the crate's to read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use crate::error::StoreError;

/// How the connection to the server is protected: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain otherwise, the certificate not
    /// checked (libpq's default, and the default here).
    Prefer,
    /// TLS or no connection; the certificate is checked against
    /// `sslrootcert` when the URL names one (as libpq does), else not.
    Require,
    /// TLS, the server's certificate chain checked against `sslrootcert`
    /// (or the system's CA certificates), not its name.
    VerifyCa,
    /// TLS, the chain checked and the certificate issued to the host
    /// named in the URL.
    VerifyFull,
}

impl SslMode {
    /// The name in the URL (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the connection must be TLS.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checked PostgreSQL URL without a password.
#[derive(Debug, Clone)]
pub struct PostgresUrl {
    text: String,
    config: ::postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<PathBuf>,
}

impl PostgresUrl {
    /// Checks `text`: a `postgres://` (or `postgresql://`) URL naming a
    /// host, without a password, with a known `sslmode`. A refusal is
    /// [`StoreError::Invalid`] saying why, showing the URL with any
    /// password in it blanked out.
    pub fn parse(text: &str) -> Result<PostgresUrl, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            what: "PostgreSQL URL",
            value: redacted(text),
            reason,
        };
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(invalid(
                "it must start with postgres:// (or postgresql://)".into(),
            ));
        }
        let (base, query) = text.split_once('?').unwrap_or((text, ""));
        let mut ssl_mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            match decode(key).as_str() {
                "sslmode" => {
                    ssl_mode = match decode(value).as_str() {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(invalid(format!(
                                "sslmode '{other}' is none of disable, prefer, require, \
                                 verify-ca, verify-full"
                            )))
                        }
                    };
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(decode(value))),
                _ => passed.push(pair),
            }
        }
        // The crate connects with TLS required for the verify modes too;
        // the checks they add are the connector's.
        passed.push(match ssl_mode {
            SslMode::Disable => "sslmode=disable",
            SslMode::Prefer => "sslmode=prefer",
            _ => "sslmode=require",
        });
        let config: ::postgres::Config = format!("{base}?{}", passed.join("&"))
            .parse()
            .map_err(|e: ::postgres::Error| invalid(super::errors::describe(&e)))?;
        if config.get_password().is_some() {
            return Err(invalid(
                "it holds a password, which must not be written in the URL".into(),
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(invalid("it names no host".into()));
        }
        Ok(PostgresUrl {
            text: text.to_string(),
            config,
            ssl_mode,
            root_cert,
        })
    }

    /// The URL as given (it holds no password).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How the connection is protected.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The CA certificates (PEM) the server's certificate is checked
    /// against, from `sslrootcert`.
    pub fn root_cert(&self) -> Option<&Path> {
        self.root_cert.as_deref()
    }

    /// The database's name, when the URL gives one.
    pub fn database(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    /// The `postgres` crate's settings for connecting, without a password.
    pub(crate) fn config(&self) -> &::postgres::Config {
        &self.config
    }
}

impl FromStr for PostgresUrl {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PostgresUrl::parse(s)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `text` with the password of its user information and of a `password=`
/// parameter replaced by `***`, for showing a refused URL.
fn redacted(text: &str) -> String {
    let (base, query) = match text.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (text, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, hosts)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{hosts}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if percent_decode_str(key).decode_utf8_lossy() == "password" => {
                    format!("{key}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        match PostgresUrl::parse(text) {
            Err(e @ StoreError::Invalid { .. }) => e.to_string(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_url_without_password_is_read_with_its_ssl_mode() {
        let u =
            PostgresUrl::parse("postgres://hisp@db.example:5433/hisp?sslmode=verify-full").unwrap();
        assert_eq!(u.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(u.database(), Some("hisp"));
        assert_eq!(u.config().get_ports(), [5433]);
        assert_eq!(u.config().get_user(), Some("hisp"));
        assert_eq!(
            u.config().get_ssl_mode(),
            ::postgres::config::SslMode::Require
        );
        assert_eq!(
            u.to_string(),
            "postgres://hisp@db.example:5433/hisp?sslmode=verify-full"
        );
        let u = PostgresUrl::parse("postgresql://hisp@localhost/hisp").unwrap();
        assert_eq!(u.ssl_mode(), SslMode::Prefer);
        assert!(!u.ssl_mode().requires_tls());
        let u = PostgresUrl::parse(
            "postgres://hisp@localhost/hisp?sslmode=verify-ca&sslrootcert=%2Fetc%2Fhisp%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(u.ssl_mode(), SslMode::VerifyCa);
        assert_eq!(u.root_cert(), Some(Path::new("/etc/hisp/ca.pem")));
        assert_eq!(
            u.config().get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_showing_it() {
        let e = refusal("postgres://hisp:s3cret@db.example/hisp");
        assert_eq!(
            e,
            "invalid PostgreSQL URL 'postgres://hisp:***@db.example/hisp': it holds a password, \
             which must not be written in the URL"
        );
        let e = refusal("postgres://hisp@db.example/hisp?sslmode=require&password=s3cret");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("password=***"), "{e}");
    }

    #[test]
    fn other_urls_are_refused_saying_why() {
        assert!(refusal("mysql://db.example/hisp")
            .ends_with("it must start with postgres:// (or postgresql://)"));
        assert!(
            refusal("postgres://hisp@db.example/hisp?sslmode=allow").ends_with(
                "sslmode 'allow' is none of disable, prefer, require, verify-ca, verify-full"
            )
        );
        assert!(refusal("postgres:///hisp").ends_with("it names no host"));
        let e = refusal("postgres://hisp@db.example/hisp?colour=blue");
        assert!(e.contains("colour"), "{e}");
    }
}
