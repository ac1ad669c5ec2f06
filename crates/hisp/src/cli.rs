//! The command line: every command, flag and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hisp_smime::{ContentCipher, KeyTransport};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// hisp: a Direct Project HISP.
#[derive(Debug, Parser)]
#[command(name = "hisp", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Defaults to $HISP_CONFIG; without either,
    /// built-in defaults are used.
    #[arg(long, global = true, env = "HISP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make test and demo certificates: a CA, and address- or domain-bound
    /// certificates it issues.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Seal (wrap, sign, encrypt) and open (decrypt, verify, unwrap) Direct messages.
    #[command(subcommand)]
    Smime(SmimeCommand),
}

/// `hisp cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create a self-signed root CA: writes ca.pem, ca.der and ca.key (mode 0600).
    Ca(CaArgs),
    /// Issue a certificate bound to one Direct address or one domain: writes
    /// cert.pem, cert.der and key.pem (mode 0600).
    Issue(IssueArgs),
}

/// `hisp cert ca`
#[derive(Debug, Args)]
pub struct CaArgs {
    /// Common name of the CA.
    #[arg(long, value_name = "NAME")]
    pub cn: String,
    /// Directory to write into (created if missing; existing files are never
    /// overwritten). Defaults to `<data_dir>/ca` when the config sets data_dir.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// RSA key size.
    #[arg(long, default_value_t = 2048, value_parser = parse_bits)]
    pub bits: u32,
    /// Days of validity from now.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
}

/// Which key usage an issued certificate gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageArg {
    /// digitalSignature and keyEncipherment: one certificate for both.
    Both,
    /// digitalSignature only: a signing certificate.
    Signing,
    /// keyEncipherment only: an encryption certificate.
    Encryption,
}

/// `hisp cert issue`
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Directory of the issuing CA (ca.pem and ca.key). Defaults to
    /// `<data_dir>/ca` when the config sets data_dir.
    #[arg(long, value_name = "DIR")]
    pub ca: Option<PathBuf>,
    /// Issue an address-bound certificate (subjectAltName rfc822Name).
    #[arg(
        long,
        value_name = "USER@DOMAIN",
        conflicts_with = "domain",
        required_unless_present = "domain"
    )]
    pub address: Option<String>,
    /// Issue a domain-bound certificate (subjectAltName dNSName).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Directory to write into (created if missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// RSA key size.
    #[arg(long, default_value_t = 2048, value_parser = parse_bits)]
    pub bits: u32,
    /// Days of validity (from now, from --not-before, or ending yesterday with --expired).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: Option<u32>,
    /// Start of validity, RFC 3339 (2024-01-31T00:00:00Z). May be in the past.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub not_before: Option<OffsetDateTime>,
    /// End of validity, RFC 3339. May be in the past, for expired test certificates.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub not_after: Option<OffsetDateTime>,
    /// Make a certificate that expired yesterday (for tests).
    #[arg(long, conflicts_with_all = ["not_before", "not_after"])]
    pub expired: bool,
    /// Key usage.
    #[arg(long, value_enum, default_value_t = UsageArg::Both)]
    pub usage: UsageArg,
}

/// `hisp smime ...`
#[derive(Debug, Subcommand)]
pub enum SmimeCommand {
    /// Seal an RFC 5322 message read from stdin: wrap, sign (SHA-256) and
    /// encrypt to every recipient. The sealed message goes to stdout.
    Seal(SealArgs),
    /// Open a sealed message read from stdin: decrypt, verify, check trust,
    /// unwrap. The inner message goes to stdout; exit 0 only when decrypted,
    /// verified and trusted.
    Open(OpenArgs),
}

/// `hisp smime seal`
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The sender's certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub signer_cert: PathBuf,
    /// The sender's private key (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub signer_key: PathBuf,
    /// A recipient's certificate (PEM or DER; a PEM file may hold several). Repeatable.
    #[arg(long = "recipient-cert", value_name = "FILE", required = true)]
    pub recipient_certs: Vec<PathBuf>,
    /// Content cipher: aes256-cbc, aes128-cbc or aes256-gcm. Default: [smime] cipher
    /// in the config, else aes256-cbc.
    #[arg(long, value_name = "CIPHER")]
    pub cipher: Option<ContentCipher>,
    /// Key transport: pkcs1, oaep-sha1 or oaep-sha256. Default: [smime]
    /// key_transport in the config, else pkcs1.
    #[arg(long, value_name = "ALG")]
    pub key_transport: Option<KeyTransport>,
    /// Copy the Subject to the outer (unprotected) headers. Default: [smime]
    /// copy_subject in the config, else off.
    #[arg(long)]
    pub copy_subject: bool,
}

/// `hisp smime open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// A recipient certificate (PEM or DER), paired in order with --key. Repeatable.
    #[arg(long = "cert", value_name = "FILE", required = true)]
    pub certs: Vec<PathBuf>,
    /// The private key of the --cert at the same position. Repeatable.
    #[arg(long = "key", value_name = "FILE", required = true)]
    pub keys: Vec<PathBuf>,
    /// A trust anchor (PEM or DER; a PEM file may hold several). Repeatable.
    #[arg(long = "anchor", value_name = "FILE", required = true)]
    pub anchors: Vec<PathBuf>,
    /// Check validity at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub at: Option<OffsetDateTime>,
    /// Write a JSON report to stdout instead of the inner message.
    #[arg(long)]
    pub json: bool,
}

fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        "4096" => Ok(4096),
        _ => Err("use 2048, 3072 or 4096".into()),
    }
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time like 2024-01-31T00:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
