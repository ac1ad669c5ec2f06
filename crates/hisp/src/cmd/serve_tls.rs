//! The TLS of `hisp serve` from `[smtp]`: the listeners' STARTTLS
//! certificate and key (read and checked at start) and the delivering
//! client's trust roots (`relay_ca_file`, else the system's CA bundle).

use std::path::PathBuf;

use anyhow::Context;
use hisp_gateway::server::ServerPem;
use hisp_smtp::tls::{client_config_with_roots, server_config_from_pem};
use hisp_smtp::ClientConfig;
use tracing::info;

use crate::config::{Config, RelayTls};

/// The TLS settings of the listeners and of the delivering client.
pub struct Tls {
    /// For STARTTLS on both listeners; `None`: not offered.
    pub server: Option<ServerPem>,
    /// The delivering client.
    pub client: ClientConfig,
}

/// `[smtp] tls_cert` and `tls_key`, read and checked now so that a bad file
/// stops `hisp serve` at start rather than failing each STARTTLS.
pub fn server_tls(config: &Config) -> anyhow::Result<Option<ServerPem>> {
    let (cert, key) = match (&config.smtp.tls_cert, &config.smtp.tls_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            anyhow::bail!("[smtp] tls_cert is set but tls_key is not: set both or neither")
        }
        (None, Some(_)) => {
            anyhow::bail!("[smtp] tls_key is set but tls_cert is not: set both or neither")
        }
    };
    let chain = std::fs::read(cert)
        .with_context(|| format!("cannot read [smtp] tls_cert {}", cert.display()))?;
    let key_pem = std::fs::read(key)
        .with_context(|| format!("cannot read [smtp] tls_key {}", key.display()))?;
    server_config_from_pem(&chain, &key_pem).with_context(|| {
        format!(
            "bad TLS certificate or key ([smtp] tls_cert {}, tls_key {})",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Some(ServerPem {
        chain,
        key: key_pem,
    }))
}

/// Where the system's CA bundle usually is; `SSL_CERT_FILE` wins.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The delivering client as `[smtp] relay_tls` and `relay_ca_file` say.
pub fn client_tls(config: &Config, helo_name: &str) -> anyhow::Result<ClientConfig> {
    let mode = config.smtp.relay_tls;
    if mode == RelayTls::Off {
        return Ok(ClientConfig::new(helo_name, None));
    }
    let (pem, source) = match &config.smtp.relay_ca_file {
        Some(file) => {
            let pem = std::fs::read(file)
                .with_context(|| format!("cannot read [smtp] relay_ca_file {}", file.display()))?;
            (pem, format!("[smtp] relay_ca_file {}", file.display()))
        }
        None => system_roots().with_context(|| {
            format!("[smtp] relay_tls = \"{mode}\" needs CA certificates: set relay_ca_file")
        })?,
    };
    let roots = client_config_with_roots(&pem).with_context(|| format!("bad {source}"))?;
    info!(relay_tls = %mode, roots = %source, "delivering client");
    let mut client = ClientConfig::new(helo_name, Some(roots));
    client.require_tls = mode == RelayTls::Required;
    Ok(client)
}

/// The system's CA bundle and where it was found. Certificates in it that
/// rustls cannot take as roots are left out.
fn system_roots() -> anyhow::Result<(Vec<u8>, String)> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let path = from_env
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
        .context("no system CA bundle found")?;
    let source = format!("system CA bundle {}", path.display());
    let pem =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read the {source}"))?;
    if client_config_with_roots(pem.as_bytes()).is_ok() {
        return Ok((pem.into_bytes(), source));
    }
    let end = "-----END CERTIFICATE-----";
    let usable: String = pem
        .split_inclusive(end)
        .filter(|block| block.contains(end) && client_config_with_roots(block.as_bytes()).is_ok())
        .collect();
    if usable.is_empty() {
        anyhow::bail!("no usable certificate in the {source}");
    }
    Ok((usable.into_bytes(), source))
}
