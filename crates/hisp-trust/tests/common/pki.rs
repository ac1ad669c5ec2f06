//! Certificates and CRLs made at test time. Roots and plain leaves come from
//! hisp-ca; certificates with CRL distribution points, caIssuers URLs or odd
//! names are built here with the openssl crate, signed by a hisp-ca key.

use std::process::Command;

use hisp_ca::{CaOptions, CertificateAuthority, Validity};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Builder, X509CrlBuilder, X509Extension, X509NameBuilder, X509RevokedBuilder, X509,
};

use super::{now, DAY};

/// A root CA valid from yesterday for ten years.
pub fn root(cn: &str) -> CertificateAuthority {
    CertificateAuthority::create(cn, &CaOptions::default()).unwrap()
}

/// Key usage of a built certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ku {
    Sign,
    Encrypt,
    Both,
    /// No keyUsage extension at all.
    Absent,
    /// keyCertSign and cRLSign (a CA).
    Ca,
}

/// What to put in a built certificate.
#[derive(Clone)]
pub struct Spec {
    pub cn: String,
    pub emails: Vec<String>,
    pub dns: Vec<String>,
    pub subject_email: Option<String>,
    pub ku: Ku,
    pub not_before: i64,
    pub not_after: i64,
    pub crl_url: Option<String>,
    pub aia_url: Option<String>,
}

impl Spec {
    /// An address-bound end-entity certificate, valid now for a year.
    pub fn address(address: &str) -> Spec {
        Spec {
            cn: address.to_string(),
            emails: vec![address.to_string()],
            dns: Vec::new(),
            subject_email: None,
            ku: Ku::Both,
            not_before: now() - DAY,
            not_after: now() + 365 * DAY,
            crl_url: None,
            aia_url: None,
        }
    }

    /// A CA certificate, valid now for five years.
    pub fn ca(cn: &str) -> Spec {
        Spec {
            cn: cn.to_string(),
            emails: Vec::new(),
            dns: Vec::new(),
            subject_email: None,
            ku: Ku::Ca,
            not_before: now() - DAY,
            not_after: now() + 5 * 365 * DAY,
            crl_url: None,
            aia_url: None,
        }
    }

    pub fn crl(mut self, url: &str) -> Spec {
        self.crl_url = Some(url.to_string());
        self
    }

    pub fn aia(mut self, url: &str) -> Spec {
        self.aia_url = Some(url.to_string());
        self
    }

    pub fn ku(mut self, ku: Ku) -> Spec {
        self.ku = ku;
        self
    }
}

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else if n < 0x100 {
        vec![0x81, n as u8]
    } else {
        vec![0x82, (n >> 8) as u8, n as u8]
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

fn raw_ext(oid: &str, der: &[u8]) -> X509Extension {
    let oid = Asn1Object::from_str(oid).unwrap();
    let value = Asn1OctetString::new_from_bytes(der).unwrap();
    X509Extension::new_from_der(&oid, false, &value).unwrap()
}

/// RFC 5280 §4.2.1.13: SEQUENCE { DistributionPoint { [0] { [0] { [6] uri } } } }.
fn crl_dp_ext(url: &str) -> X509Extension {
    let uri = tlv(0x86, url.as_bytes());
    let full_name = tlv(0xa0, &uri);
    let dp_name = tlv(0xa0, &full_name);
    let dp = tlv(0x30, &dp_name);
    raw_ext("2.5.29.31", &tlv(0x30, &dp))
}

/// RFC 5280 §4.2.2.1: SEQUENCE { AccessDescription { id-ad-caIssuers, [6] uri } }.
fn aia_ext(url: &str) -> X509Extension {
    let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let mut ad = oid.to_vec();
    ad.extend(tlv(0x86, url.as_bytes()));
    raw_ext("1.3.6.1.5.5.7.1.1", &tlv(0x30, &tlv(0x30, &ad)))
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(127, MsbOption::ONE, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// Builds a certificate per `spec`, issued and signed by `issuer`.
pub fn build(issuer: &CertificateAuthority, spec: &Spec) -> (X509, PKey<Private>) {
    let key = key();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", &spec.cn).unwrap();
    if let Some(e) = &spec.subject_email {
        name.append_entry_by_text("emailAddress", e).unwrap();
    }
    let name = name.build();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.cert().subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(spec.not_before).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(spec.not_after).unwrap())
        .unwrap();
    let is_ca = spec.ku == Ku::Ca;
    let mut bc = BasicConstraints::new();
    bc.critical();
    if is_ca {
        bc.ca();
    }
    b.append_extension(bc.build().unwrap()).unwrap();
    let mut ku = KeyUsage::new();
    ku.critical();
    let ku = match spec.ku {
        Ku::Sign => Some(ku.digital_signature()),
        Ku::Encrypt => Some(ku.key_encipherment()),
        Ku::Both => Some(ku.digital_signature().key_encipherment()),
        Ku::Ca => Some(ku.key_cert_sign().crl_sign()),
        Ku::Absent => None,
    };
    if let Some(ku) = ku {
        b.append_extension(ku.build().unwrap()).unwrap();
    }
    if !is_ca {
        let eku = ExtendedKeyUsage::new().email_protection().build().unwrap();
        b.append_extension(eku).unwrap();
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(issuer.cert()), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(issuer.cert()), None))
        .unwrap();
    b.append_extension(aki).unwrap();
    if !spec.emails.is_empty() || !spec.dns.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for e in &spec.emails {
            san.email(e);
        }
        for d in &spec.dns {
            san.dns(d);
        }
        let san = san
            .build(&b.x509v3_context(Some(issuer.cert()), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    if let Some(url) = &spec.crl_url {
        b.append_extension(crl_dp_ext(url)).unwrap();
    }
    if let Some(url) = &spec.aia_url {
        b.append_extension(aia_ext(url)).unwrap();
    }
    b.sign(issuer.key(), MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// Builds an intermediate CA per `spec` (whose `ku` should be `Ku::Ca`).
pub fn build_ca(issuer: &CertificateAuthority, spec: &Spec) -> CertificateAuthority {
    let (cert, key) = build(issuer, spec);
    CertificateAuthority::from_parts(cert, key).unwrap()
}

/// A CRL by `ca` listing `revoked` (revoked yesterday), DER, current from
/// `this_update` to `next_update`.
pub fn crl(
    ca: &CertificateAuthority,
    revoked: &[&X509],
    this_update: i64,
    next_update: i64,
) -> Vec<u8> {
    let mut b = X509CrlBuilder::new().unwrap();
    b.set_issuer_name(ca.cert().subject_name()).unwrap();
    b.set_last_update(&Asn1Time::from_unix(this_update).unwrap())
        .unwrap();
    b.set_next_update(&Asn1Time::from_unix(next_update).unwrap())
        .unwrap();
    let ctx_builder = X509Builder::new().unwrap();
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&ctx_builder.x509v3_context(Some(ca.cert()), None))
        .unwrap();
    b.append_extension(aki).unwrap();
    b.append_extension(raw_ext("2.5.29.20", &[0x02, 0x01, 0x01]))
        .unwrap();
    for cert in revoked {
        let mut r = X509RevokedBuilder::new().unwrap();
        r.set_serial_number(cert.serial_number()).unwrap();
        r.set_revocation_date(&Asn1Time::from_unix(now() - DAY).unwrap())
            .unwrap();
        b.add_revoked(r.build()).unwrap();
    }
    b.sort().unwrap();
    b.sign(ca.key(), MessageDigest::sha256()).unwrap();
    b.build().unwrap().to_der().unwrap()
}

/// An intermediate made by hisp-ca (no CRL DP, no AIA).
pub fn plain_intermediate(root: &CertificateAuthority, cn: &str) -> CertificateAuthority {
    root.create_intermediate(
        cn,
        &CaOptions {
            bits: 2048,
            validity: Validity::Days(1000),
        },
    )
    .unwrap()
}

/// A PKCS#7 certs-only bundle of `certs` made by the `openssl crl2pkcs7`
/// command (an independent producer), DER or PEM.
pub fn p7b(certs: &[&X509], der: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("certs.pem");
    let out_path = dir.path().join("bundle.p7b");
    let mut pem = Vec::new();
    for c in certs {
        pem.extend(c.to_pem().unwrap());
    }
    std::fs::write(&pem_path, pem).unwrap();
    let status = Command::new("openssl")
        .args(["crl2pkcs7", "-nocrl", "-certfile"])
        .arg(&pem_path)
        .args(["-outform", if der { "DER" } else { "PEM" }, "-out"])
        .arg(&out_path)
        .status()
        .unwrap();
    assert!(status.success(), "openssl crl2pkcs7 failed");
    std::fs::read(out_path).unwrap()
}
