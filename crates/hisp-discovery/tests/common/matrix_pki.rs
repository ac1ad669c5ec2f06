//! The discovery matrix's PKI: one anchor (a hisp-ca root), an intermediate
//! CA below it that is neither an anchor nor published, and a stranger root
//! nobody trusts. Their keys and a few end-entity keys are made once per test
//! run ([`pki`]); the end-entity certificates and CRLs are built per test with
//! the openssl crate, because they carry that test's CRL and caIssuers URLs
//! (its own loopback HTTP server). Adapted from hisp-trust's test PKI.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// One day in seconds.
pub const DAY: i64 = 86_400;

/// Now, Unix seconds.
pub fn now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit an i64")
}

/// The CAs and keys shared by every test of a run.
pub struct Pki {
    /// The trust anchor of every test.
    pub root: CertificateAuthority,
    /// Issued by `root`; no test configures or publishes it.
    pub intermediate: CertificateAuthority,
    /// A root that is no test's anchor.
    pub stranger: CertificateAuthority,
    leaf_keys: Vec<PKey<Private>>,
    next_key: AtomicUsize,
}

/// The run's PKI, made on first use (RSA key generation is the slow part).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root =
            CertificateAuthority::create("Matrix Root CA", &CaOptions::default()).expect("root CA");
        let intermediate = root
            .create_intermediate(
                "Matrix Intermediate CA",
                &CaOptions {
                    bits: 2048,
                    validity: Validity::Days(1000),
                },
            )
            .expect("intermediate CA");
        let stranger = CertificateAuthority::create("Matrix Stranger CA", &CaOptions::default())
            .expect("stranger CA");
        let leaf_keys = (0..4).map(|_| rsa_key()).collect();
        Pki {
            root,
            intermediate,
            stranger,
            leaf_keys,
            next_key: AtomicUsize::new(0),
        }
    })
}

impl Pki {
    /// The anchors every test trusts: the root alone.
    pub fn anchors(&self) -> Vec<X509> {
        vec![self.root.cert().clone()]
    }

    fn leaf_key(&self) -> &PKey<Private> {
        let i = self.next_key.fetch_add(1, Ordering::Relaxed);
        &self.leaf_keys[i % self.leaf_keys.len()]
    }
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("PKey")
}

/// What an end-entity certificate is bound to (its one subjectAltName).
#[derive(Debug, Clone)]
pub enum Bound {
    /// rfc822Name `user@domain`.
    Address(String),
    /// dNSName `domain`.
    Domain(String),
}

/// An end-entity certificate in the Direct profile, before it is built.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub bound: Bound,
    pub not_before: i64,
    pub not_after: i64,
    /// keyUsage keyEncipherment (with digitalSignature); false: signing only.
    pub encipherment: bool,
    pub crl_url: Option<String>,
    pub aia_url: Option<String>,
}

impl Leaf {
    /// An address-bound certificate, valid from yesterday for a year.
    pub fn address(address: &str) -> Leaf {
        Leaf::new(Bound::Address(address.to_string()))
    }

    /// A domain-bound certificate, valid from yesterday for a year.
    pub fn domain(domain: &str) -> Leaf {
        Leaf::new(Bound::Domain(domain.to_string()))
    }

    fn new(bound: Bound) -> Leaf {
        Leaf {
            bound,
            not_before: now() - DAY,
            not_after: now() + 365 * DAY,
            encipherment: true,
            crl_url: None,
            aia_url: None,
        }
    }

    /// Valid for thirty days that ended yesterday.
    pub fn expired(mut self) -> Leaf {
        self.not_before = now() - 31 * DAY;
        self.not_after = now() - DAY;
        self
    }

    /// keyUsage digitalSignature only: not for encryption.
    pub fn signing_only(mut self) -> Leaf {
        self.encipherment = false;
        self
    }

    /// With a CRL distribution point (RFC 5280 §4.2.1.13).
    pub fn crl(mut self, url: &str) -> Leaf {
        self.crl_url = Some(url.to_string());
        self
    }

    /// With a caIssuers URL (RFC 5280 §4.2.2.1).
    pub fn aia(mut self, url: &str) -> Leaf {
        self.aia_url = Some(url.to_string());
        self
    }

    /// The certificate, issued and signed by `issuer`.
    pub fn issued_by(&self, issuer: &CertificateAuthority) -> X509 {
        let key = pki().leaf_key();
        let mut b = X509Builder::new().expect("builder");
        b.set_version(2).expect("version");
        b.set_serial_number(&serial()).expect("serial");
        let cn = match &self.bound {
            Bound::Address(v) | Bound::Domain(v) => v,
        };
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", cn).expect("CN");
        let name = name.build();
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(issuer.cert().subject_name())
            .expect("issuer");
        b.set_pubkey(key).expect("key");
        b.set_not_before(&Asn1Time::from_unix(self.not_before).expect("time"))
            .expect("notBefore");
        b.set_not_after(&Asn1Time::from_unix(self.not_after).expect("time"))
            .expect("notAfter");
        let bc = BasicConstraints::new().critical().build().expect("bc");
        b.append_extension(bc).expect("bc");
        let mut ku = KeyUsage::new();
        ku.critical().digital_signature();
        if self.encipherment {
            ku.key_encipherment();
        }
        b.append_extension(ku.build().expect("ku")).expect("ku");
        let eku = ExtendedKeyUsage::new()
            .email_protection()
            .build()
            .expect("eku");
        b.append_extension(eku).expect("eku");
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(Some(issuer.cert()), None))
            .expect("ski");
        b.append_extension(ski).expect("ski");
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(issuer.cert()), None))
            .expect("aki");
        b.append_extension(aki).expect("aki");
        let mut san = SubjectAlternativeName::new();
        match &self.bound {
            Bound::Address(a) => san.email(a),
            Bound::Domain(d) => san.dns(d),
        };
        let san = san
            .build(&b.x509v3_context(Some(issuer.cert()), None))
            .expect("san");
        b.append_extension(san).expect("san");
        if let Some(url) = &self.crl_url {
            b.append_extension(crl_dp_ext(url)).expect("crl dp");
        }
        if let Some(url) = &self.aia_url {
            b.append_extension(aia_ext(url)).expect("aia");
        }
        b.sign(issuer.key(), MessageDigest::sha256()).expect("sign");
        b.build()
    }
}

/// A CRL by `ca` listing `revoked` (revoked two days ago), DER, current
/// from yesterday for a week.
pub fn crl(ca: &CertificateAuthority, revoked: &[&X509]) -> Vec<u8> {
    let mut b = X509CrlBuilder::new().expect("crl builder");
    b.set_issuer_name(ca.cert().subject_name()).expect("issuer");
    b.set_last_update(&Asn1Time::from_unix(now() - DAY).expect("time"))
        .expect("thisUpdate");
    b.set_next_update(&Asn1Time::from_unix(now() + 7 * DAY).expect("time"))
        .expect("nextUpdate");
    let context = X509Builder::new().expect("builder");
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&context.x509v3_context(Some(ca.cert()), None))
        .expect("aki");
    b.append_extension(aki).expect("aki");
    // cRLNumber 1 (RFC 5280 §5.2.3).
    b.append_extension(raw_ext("2.5.29.20", &[0x02, 0x01, 0x01]))
        .expect("crl number");
    for cert in revoked {
        let mut r = X509RevokedBuilder::new().expect("revoked");
        r.set_serial_number(cert.serial_number()).expect("serial");
        r.set_revocation_date(&Asn1Time::from_unix(now() - 2 * DAY).expect("time"))
            .expect("date");
        b.add_revoked(r.build()).expect("add");
    }
    b.sort().expect("sort");
    b.sign(ca.key(), MessageDigest::sha256()).expect("sign");
    b.build().expect("crl").to_der().expect("der")
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().expect("bn");
    bn.rand(127, MsbOption::ONE, false).expect("rand");
    bn.to_asn1_integer().expect("integer")
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..0x80 => vec![n as u8],
        0x80..0x100 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

fn raw_ext(oid: &str, der: &[u8]) -> X509Extension {
    let oid = Asn1Object::from_str(oid).expect("oid");
    let value = Asn1OctetString::new_from_bytes(der).expect("octets");
    X509Extension::new_from_der(&oid, false, &value).expect("extension")
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
