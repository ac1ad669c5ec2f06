//! The test server's TLS certificate: a CA made for the run and a server
//! certificate for `localhost` and 127.0.0.1 issued by it, so that clients
//! can check the chain and the name (`sslmode=verify-full`).

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509Name, X509};

fn key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn name(cn: &str) -> Result<X509Name, ErrorStack> {
    let mut n = X509Name::builder()?;
    n.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(n.build())
}

fn builder(
    subject: &X509Name,
    issuer: &X509Name,
    key: &PKey<Private>,
) -> Result<X509Builder, ErrorStack> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    b.set_serial_number(&*serial.to_asn1_integer()?)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(2)?)?;
    Ok(b)
}

/// Writes `ca.crt`, `server.crt` and `server.key` into `dir`.
pub(crate) fn write(dir: &Path) -> Result<(), String> {
    make(dir).map_err(|e| format!("cannot make the test server's TLS certificate: {e}"))
}

fn make(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let ca_key = key()?;
    let ca_name = name("hisp test PostgreSQL CA")?;
    let mut ca = builder(&ca_name, &ca_name, &ca_key)?;
    ca.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    ca.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    ca.sign(&ca_key, MessageDigest::sha256())?;
    let ca: X509 = ca.build();

    let server_key = key()?;
    let mut server = builder(&name("localhost")?, &ca_name, &server_key)?;
    server.append_extension(BasicConstraints::new().build()?)?;
    server.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_agreement()
            .build()?,
    )?;
    server.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&server.x509v3_context(Some(&ca), None))?;
    server.append_extension(san)?;
    server.sign(&ca_key, MessageDigest::sha256())?;
    let server = server.build();

    std::fs::write(dir.join("ca.crt"), ca.to_pem()?)?;
    std::fs::write(dir.join("server.crt"), server.to_pem()?)?;
    std::fs::write(
        dir.join("server.key"),
        server_key.private_key_to_pem_pkcs8()?,
    )?;
    Ok(())
}
