//! TLS to the database server, as the URL's `sslmode` asks (libpq's
//! meanings), through OpenSSL.

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use postgres_openssl::MakeTlsConnector;

use super::url::{PostgresUrl, SslMode};
use crate::error::StoreError;

/// The connector for `url`'s connections:
///
/// - `disable`: never used.
/// - `prefer`, and `require` without `sslrootcert`: encrypted, the
///   certificate not checked (what libpq does: these modes protect against
///   a passive listener only).
/// - `require` with `sslrootcert`, and `verify-ca`: the chain checked
///   against `sslrootcert` (else the system's CA certificates), not the
///   name.
/// - `verify-full`: the chain checked and the certificate issued to the
///   host the URL names (a DNS name or an IP address).
///
/// TLS 1.2 at least.
pub(crate) fn connector(url: &PostgresUrl) -> Result<MakeTlsConnector, StoreError> {
    let invalid = |reason: String| StoreError::Invalid {
        what: "TLS settings of the PostgreSQL URL",
        value: url.to_string(),
        reason,
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| invalid(format!("OpenSSL cannot make a TLS context: {e}")))?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| invalid(format!("cannot require TLS 1.2: {e}")))?;
    let verify_chain = match url.ssl_mode() {
        SslMode::Disable | SslMode::Prefer => false,
        SslMode::Require => url.root_cert().is_some(),
        SslMode::VerifyCa | SslMode::VerifyFull => true,
    };
    if let Some(root) = url.root_cert().filter(|_| verify_chain) {
        builder.set_ca_file(root).map_err(|e| {
            invalid(format!(
                "cannot read the CA certificates of sslrootcert {}: {e}",
                root.display()
            ))
        })?;
    }
    builder.set_verify(if verify_chain {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    let verify_name = url.ssl_mode() == SslMode::VerifyFull;
    let mut connector = MakeTlsConnector::new(builder.build());
    connector.set_callback(move |config, _host| {
        config.set_verify_hostname(verify_name);
        Ok(())
    });
    Ok(connector)
}
