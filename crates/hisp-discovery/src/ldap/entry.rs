//! Search result entries: their attributes, and the certificates in them.
//!
//! No I/O: entries come in as the BER structure ldap3 hands over, so this is
//! tested with hand-built entries.

use ldap3::asn1::StructureTag;
use openssl::pkcs7::Pkcs7;
use openssl::x509::X509;

/// The certificate attribute of RFC 4523 §2.1 (values transferred with the
/// `;binary` option, RFC 4522).
pub(crate) const USER_CERTIFICATE: &str = "userCertificate";
/// The S/MIME attribute of RFC 2798 §2.8: a PKCS#7 SignedData carrying certificates.
pub(crate) const USER_SMIME_CERTIFICATE: &str = "userSMIMECertificate";

/// One entry of a search result, as sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// The entry's DN.
    pub(crate) dn: String,
    /// Its attributes in the order sent, with their raw values.
    pub(crate) attributes: Vec<RawAttribute>,
}

/// One attribute of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawAttribute {
    /// The attribute description as sent, options included (`userCertificate;binary`).
    pub(crate) description: String,
    /// The values, as octets.
    pub(crate) values: Vec<Vec<u8>>,
}

impl RawAttribute {
    /// True when the attribute type (the description without options) is
    /// `name`; attribute types compare without regard to case (RFC 4512 §2.5).
    pub(crate) fn is(&self, name: &str) -> bool {
        let base = self.description.split(';').next().unwrap_or_default();
        base.eq_ignore_ascii_case(name)
    }
}

/// Where a SearchResultEntry does not have the shape of RFC 4511 §4.5.2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed search result entry: {0}")]
pub(crate) struct MalformedEntry(&'static str);

/// Reads a SearchResultEntry (RFC 4511 §4.5.2: `[APPLICATION 4] SEQUENCE {
/// objectName, attributes SEQUENCE OF SEQUENCE { type, vals SET OF value } }`).
///
/// ldap3's own `SearchEntry::construct` panics on malformed input and sorts
/// values by whether they are UTF-8; this keeps every value as octets.
pub(crate) fn parse_entry(tag: StructureTag) -> Result<RawEntry, MalformedEntry> {
    let mut parts = tag
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .ok_or(MalformedEntry("not a SearchResultEntry"))?
        .into_iter();
    let dn = parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .ok_or(MalformedEntry("no objectName"))?;
    let dn = String::from_utf8(dn).map_err(|_| MalformedEntry("objectName is not UTF-8"))?;
    let list = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or(MalformedEntry("no attribute list"))?;
    let attributes = list
        .into_iter()
        .map(parse_attribute)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RawEntry { dn, attributes })
}

fn parse_attribute(tag: StructureTag) -> Result<RawAttribute, MalformedEntry> {
    let mut parts = tag
        .expect_constructed()
        .ok_or(MalformedEntry("attribute is not a SEQUENCE"))?
        .into_iter();
    let description = parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .ok_or(MalformedEntry("attribute without a type"))?;
    let description = String::from_utf8(description)
        .map_err(|_| MalformedEntry("attribute type is not UTF-8"))?;
    let values = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or(MalformedEntry("attribute without a value set"))?
        .into_iter()
        .map(|v| {
            v.expect_primitive()
                .ok_or(MalformedEntry("attribute value is not an OCTET STRING"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RawAttribute {
        description,
        values,
    })
}

/// The certificates of an entry, DER, each once, in the order found.
///
/// `userCertificate` values are taken as DER certificates (RFC 4523 §2.1).
/// `userSMIMECertificate` values are PKCS#7 SignedData blobs (RFC 2798
/// §2.8), DER; every certificate they carry is returned. Values in any other
/// form (base64 or PEM text, as some directories hold) are not accepted: they
/// are skipped with a warning naming the entry and the attribute.
pub(crate) fn certificates(entry: &RawEntry) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut keep = |der: Vec<u8>| {
        if !found.contains(&der) {
            found.push(der);
        }
    };
    for attribute in &entry.attributes {
        if attribute.is(USER_CERTIFICATE) {
            for value in &attribute.values {
                match certificate_der(value) {
                    Ok(der) => keep(der),
                    Err(reason) => skip(entry, attribute, reason),
                }
            }
        } else if attribute.is(USER_SMIME_CERTIFICATE) {
            for value in &attribute.values {
                match pkcs7_certificates(value) {
                    Ok(ders) => ders.into_iter().for_each(&mut keep),
                    Err(reason) => skip(entry, attribute, reason),
                }
            }
        }
    }
    found
}

fn skip(entry: &RawEntry, attribute: &RawAttribute, reason: &str) {
    tracing::warn!(
        dn = %entry.dn,
        attribute = %attribute.description,
        reason,
        "skipping an LDAP attribute value that is not a DER certificate"
    );
}

/// Checks that `value` is exactly one DER certificate and returns its encoding.
fn certificate_der(value: &[u8]) -> Result<Vec<u8>, &'static str> {
    let cert = X509::from_der(value).map_err(|_| "not a DER X.509 certificate")?;
    let der = cert
        .to_der()
        .map_err(|_| "certificate cannot be re-encoded")?;
    if der.len() != value.len() {
        return Err("data after the certificate");
    }
    Ok(der)
}

/// The certificates carried by a DER PKCS#7 SignedData.
fn pkcs7_certificates(value: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let pkcs7 = Pkcs7::from_der(value).map_err(|_| "not a DER PKCS#7 structure")?;
    let certs = pkcs7
        .signed()
        .ok_or("PKCS#7 is not SignedData")?
        .certificates()
        .ok_or("PKCS#7 SignedData carries no certificates")?;
    certs
        .iter()
        .map(|c| c.to_der().map_err(|_| "certificate cannot be re-encoded"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::{TagClass, PL};

    fn primitive(id: u64, bytes: &[u8]) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::P(bytes.to_vec()),
        }
    }

    fn constructed(class: TagClass, id: u64, inner: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class,
            id,
            payload: PL::C(inner),
        }
    }

    fn entry_tag(dn: &str, attrs: &[(&str, Vec<Vec<u8>>)]) -> StructureTag {
        let list = attrs
            .iter()
            .map(|(name, values)| {
                let set = values.iter().map(|v| primitive(4, v)).collect();
                constructed(
                    TagClass::Universal,
                    16,
                    vec![
                        primitive(4, name.as_bytes()),
                        constructed(TagClass::Universal, 17, set),
                    ],
                )
            })
            .collect();
        constructed(
            TagClass::Application,
            4,
            vec![
                primitive(4, dn.as_bytes()),
                constructed(TagClass::Universal, 16, list),
            ],
        )
    }

    fn test_certs(n: usize) -> (Vec<X509>, openssl::pkey::PKey<openssl::pkey::Private>) {
        let ca = hisp_ca::CertificateAuthority::create("Entry Test CA", &Default::default())
            .expect("CA");
        let issued: Vec<_> = (0..n)
            .map(|i| {
                hisp_ca::issue(
                    &ca,
                    &hisp_ca::Binding::Address(format!("u{i}@example.test")),
                    &Default::default(),
                )
                .expect("issue")
            })
            .collect();
        let key = issued[0].key.clone();
        (issued.into_iter().map(|i| i.cert).collect(), key)
    }

    #[test]
    fn parses_dn_and_binary_values() {
        let tag = entry_tag(
            "cn=a,dc=example,dc=test",
            &[("userCertificate;binary", vec![vec![0x30, 0x80, 0xff]])],
        );
        let entry = parse_entry(tag).expect("entry");
        assert_eq!(entry.dn, "cn=a,dc=example,dc=test");
        assert_eq!(entry.attributes[0].values, [vec![0x30, 0x80, 0xff]]);
        assert!(entry.attributes[0].is("usercertificate"));
    }

    #[test]
    fn rejects_a_tag_that_is_not_an_entry() {
        let tag = constructed(TagClass::Application, 5, vec![]);
        assert_eq!(
            parse_entry(tag),
            Err(MalformedEntry("not a SearchResultEntry"))
        );
    }

    #[test]
    fn user_certificate_values_are_der_certificates_rfc4523_2_1() {
        let (certs, _) = test_certs(2);
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().expect("der")).collect();
        let entry = parse_entry(entry_tag(
            "cn=a",
            &[("userCertificate;binary", ders.clone())],
        ))
        .expect("e");
        assert_eq!(certificates(&entry), ders);
    }

    #[test]
    fn base64_text_and_garbage_values_are_skipped() {
        let (certs, _) = test_certs(1);
        let der = certs[0].to_der().expect("der");
        let text = openssl::base64::encode_block(&der).into_bytes();
        let mut trailing = der.clone();
        trailing.push(0);
        let entry = parse_entry(entry_tag(
            "cn=a",
            &[(
                "userCertificate",
                vec![text, b"junk".to_vec(), trailing, der.clone()],
            )],
        ))
        .expect("entry");
        assert_eq!(certificates(&entry), [der]);
    }

    #[test]
    fn user_smime_certificate_yields_the_certificates_it_carries_rfc2798_2_8() {
        let (certs, key) = test_certs(2);
        let mut extra = openssl::stack::Stack::new().expect("stack");
        extra.push(certs[1].clone()).expect("push");
        let p7 = Pkcs7::sign(
            &certs[0],
            &key,
            &extra,
            b"",
            openssl::pkcs7::Pkcs7Flags::BINARY | openssl::pkcs7::Pkcs7Flags::DETACHED,
        )
        .expect("sign");
        let entry = parse_entry(entry_tag(
            "cn=a",
            &[("userSMIMECertificate", vec![p7.to_der().expect("der")])],
        ))
        .expect("entry");
        let mut found = certificates(&entry);
        let mut expected: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().expect("d")).collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_certificate_in_both_attributes_is_returned_once() {
        let (certs, key) = test_certs(1);
        let der = certs[0].to_der().expect("der");
        let p7 = Pkcs7::sign(
            &certs[0],
            &key,
            &openssl::stack::Stack::new().expect("stack"),
            b"",
            openssl::pkcs7::Pkcs7Flags::BINARY | openssl::pkcs7::Pkcs7Flags::DETACHED,
        )
        .expect("sign");
        let entry = parse_entry(entry_tag(
            "cn=a",
            &[
                ("userCertificate;binary", vec![der.clone()]),
                ("userSMIMECertificate", vec![p7.to_der().expect("der")]),
                ("mail", vec![b"u0@example.test".to_vec()]),
            ],
        ))
        .expect("entry");
        assert_eq!(certificates(&entry), [der]);
    }
}
