//! Reading the files and streams a command is given, naming them in every error.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use hisp_smime::KeyPair;
use openssl::x509::X509;

/// Reads a whole file.
pub fn read_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Reads the certificates in a file: one DER certificate, or one or more PEM ones.
pub fn read_certs(path: &Path, what: &str) -> anyhow::Result<Vec<X509>> {
    let bytes = read_file(path, what)?;
    let certs = if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        X509::stack_from_pem(&bytes)
    } else {
        X509::from_der(&bytes).map(|c| vec![c])
    }
    .with_context(|| format!("{what} {} is not a PEM or DER certificate", path.display()))?;
    if certs.is_empty() {
        bail!("{what} {} holds no certificate", path.display());
    }
    Ok(certs)
}

/// Reads a certificate and its private key.
pub fn read_pair(cert: &Path, key: &Path, what: &str) -> anyhow::Result<KeyPair> {
    let cert_bytes = read_file(cert, &format!("{what} certificate"))?;
    let key_bytes = read_file(key, &format!("{what} key"))?;
    KeyPair::from_bytes(&cert_bytes, &key_bytes).with_context(|| {
        format!(
            "{what} certificate {} and key {}",
            cert.display(),
            key.display()
        )
    })
}

/// Reads all of stdin; an empty stdin is an error, since every command that
/// reads it needs a message.
pub fn read_stdin(what: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} from stdin"))?;
    if bytes.is_empty() {
        bail!("no {what} on stdin");
    }
    Ok(bytes)
}

/// Writes bytes to stdout and flushes.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
