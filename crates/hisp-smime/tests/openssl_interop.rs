//! hisp-smime against an independent peer, the `openssl` command line, both ways.
//!
//! hisp -> openssl: messages sealed by `hisp_smime::seal` (alice signs, bob
//! receives) are decrypted and verified by `openssl cms`, and their shape is
//! checked the way the Direct Edge Testing Tool checks every message a HISP sends.
//!
//! openssl -> hisp: messages signed (`openssl cms -sign -md sha256`) and
//! encrypted (`openssl cms -encrypt`, every cipher and key transport) by openssl
//! are opened by `hisp_smime::open`, which must give back the inner message
//! byte for byte.
//!
//! The certificates are the committed test PKI in tests/vectors/pki.

mod common;

use common::{
    assert_bytes_eq, cert, cert_path, crlf, header_value, header_values, key_pair, key_path,
    multipart_parts, openssl, openssl_ok, parse_structured, split_entity, TempDir, AT,
};
use hisp_smime::{open, seal, ContentCipher, KeyTransport, OpenOptions, SealOptions, Signer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Messages to seal
// ---------------------------------------------------------------------------

/// The kinds of body the Edge Testing Tool and real portals send.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// 7bit text/plain, written with bare LF line endings (as a portal on Unix
    /// might hand it over), so canonicalisation is exercised.
    Text,
    /// 8bit UTF-8 text/plain, CRLF, with an RFC 2047 encoded Subject.
    Utf8,
    /// multipart/mixed with a text part and a binary PDF-like attachment in base64, CRLF.
    Pdf,
}

/// An RFC 5322 message of about `size` bytes; the same bytes for the same arguments.
fn message(kind: Body, size: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed ^ size as u64);
    let subject = match kind {
        Body::Utf8 => "=?UTF-8?B?R3LDvMOfZSwgWm/DqyDigJQgUsOpc3Vtw6k=?=".to_string(),
        _ => format!("Interop {kind:?} {size} bytes"),
    };
    let mut m = format!(
        "From: Alice Example <alice@a.example>\r\n\
         To: Bob Example <bob@b.example>\r\n\
         Subject: {subject}\r\n\
         Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <interop-{kind:?}-{size}-{seed}@a.example>\r\n\
         MIME-Version: 1.0\r\n"
    )
    .into_bytes();
    match kind {
        Body::Text => {
            m.extend_from_slice(
                b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
            );
            m.extend_from_slice(&text_lines(&mut rng, size, ASCII_WORDS));
            // Bare LF everywhere: hisp must canonicalise before signing.
            m.retain(|&b| b != b'\r');
        }
        Body::Utf8 => {
            m.extend_from_slice(
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            );
            m.extend_from_slice(&text_lines(&mut rng, size, UTF8_WORDS));
        }
        Body::Pdf => {
            let boundary = format!("=_interop_{seed}");
            m.extend_from_slice(
                format!(
                    "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
                     This is a multi-part message in MIME format.\r\n\r\n\
                     --{boundary}\r\n\
                     Content-Type: text/plain; charset=us-ascii\r\n\
                     Content-Transfer-Encoding: 7bit\r\n\r\n\
                     The report is attached.\r\n\r\n\
                     --{boundary}\r\n\
                     Content-Type: application/pdf; name=\"report.pdf\"\r\n\
                     Content-Transfer-Encoding: base64\r\n\
                     Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n"
                )
                .as_bytes(),
            );
            let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
            let mut random = vec![0u8; size * 3 / 4];
            rng.fill(&mut random[..]);
            pdf.extend_from_slice(&random);
            pdf.extend_from_slice(b"\n%%EOF\n");
            m.extend_from_slice(&base64_lines(&pdf));
            m.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
    }
    m
}

const ASCII_WORDS: &[&str] = &[
    "patient",
    "referral",
    "the",
    "of",
    "and",
    "blood",
    "pressure",
    "is",
    "stable",
    "follow-up",
    "in",
    "two",
    "weeks",
    "allergies:",
    "none",
    "known.",
    "medication",
    "5mg",
    "daily;",
    "discharge",
    "summary",
    "attached",
    "(see",
    "below)",
    "dr.",
    "smith",
    "A1c",
    "=",
    "6.1%",
];

const UTF8_WORDS: &[&str] = &[
    "Grüße",
    "Zoë",
    "café",
    "naïve",
    "résumé",
    "Ωmega",
    "日本語",
    "テキスト",
    "✓",
    "—",
    "Øresund",
    "Ärztin",
    "patient",
    "straße",
    "€12,50",
    "µg",
    "½",
    "Ñandú",
    "consulta",
    "añadir",
];

/// Lines of words, at most 76 characters, CRLF, about `size` bytes in all.
fn text_lines(rng: &mut StdRng, size: usize, words: &[&str]) -> Vec<u8> {
    let mut out = String::with_capacity(size + 80);
    let mut line = String::new();
    while out.len() + line.len() < size {
        let word = words[rng.gen_range(0..words.len())];
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > 76 {
            out.push_str(&line);
            out.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push_str("\r\n");
    out.into_bytes()
}

/// Base64 in 76-character CRLF lines (RFC 2045 §6.8), written here rather
/// than with hisp-smime's encoder so the test input does not depend on it.
fn base64_lines(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = Vec::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                text.push(b'=');
            }
        }
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 38 + 2);
    for line in text.chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// hisp -> openssl
// ---------------------------------------------------------------------------

fn alice() -> Signer {
    Signer::new(key_pair("alice"))
}

/// What openssl -print names each choice by.
fn cipher_oid(cipher: ContentCipher) -> &'static str {
    match cipher {
        ContentCipher::Aes256Cbc => "(2.16.840.1.101.3.4.1.42)",
        ContentCipher::Aes128Cbc => "(2.16.840.1.101.3.4.1.2)",
        ContentCipher::Aes192Cbc => "(2.16.840.1.101.3.4.1.22)",
        ContentCipher::Aes256Gcm => "(2.16.840.1.101.3.4.1.46)",
        ContentCipher::Aes128Gcm => "(2.16.840.1.101.3.4.1.6)",
    }
}

/// The RFC 5322 header fields of a message (its first header block).
fn subject_of(message: &[u8]) -> String {
    header_value(split_entity(message).0, "Subject")
}

/// The shape the Edge Testing Tool checks on the outside of every sealed message
/// (RFC 8551 §3.3, §3.4; RFC 2045).
fn assert_outer_shape(sealed: &[u8], options: &SealOptions, original: &[u8], what: &str) {
    let (header, body) = split_entity(sealed);
    assert!(
        header.is_ascii(),
        "{what}: outer headers are not ASCII:\n{}",
        String::from_utf8_lossy(header)
    );
    // seal promises CRLF line endings (RFC 5321 §2.3.8).
    for (i, w) in sealed.windows(2).enumerate() {
        assert!(
            !(w[1] == b'\n' && w[0] != b'\r'),
            "{what}: bare LF at byte {}",
            i + 1
        );
    }
    let text = String::from_utf8_lossy(header);
    let ct = parse_structured(&header_value(header, "Content-Type"));
    assert_eq!(
        ct.value, "application/pkcs7-mime",
        "{what}: outer Content-Type\n{text}"
    );
    let smime_type = if options.cipher.is_authenticated() {
        "authEnveloped-data"
    } else {
        "enveloped-data"
    };
    assert_eq!(
        ct.param("smime-type"),
        Some(smime_type),
        "{what}: smime-type\n{text}"
    );
    assert_eq!(
        ct.param("name"),
        Some("smime.p7m"),
        "{what}: name parameter\n{text}"
    );
    let cd = parse_structured(&header_value(header, "Content-Disposition"));
    assert_eq!(
        cd.value, "attachment",
        "{what}: Content-Disposition\n{text}"
    );
    assert_eq!(
        cd.param("filename"),
        Some("smime.p7m"),
        "{what}: filename\n{text}"
    );
    assert!(
        header_value(header, "Content-Transfer-Encoding").eq_ignore_ascii_case("base64"),
        "{what}: Content-Transfer-Encoding\n{text}"
    );
    assert_eq!(
        header_value(header, "MIME-Version"),
        "1.0",
        "{what}: MIME-Version\n{text}"
    );
    assert!(
        header_value(header, "From").contains("<alice@a.example>"),
        "{what}: outer From\n{text}"
    );
    assert!(
        header_value(header, "To").contains("bob@b.example"),
        "{what}: outer To\n{text}"
    );
    let subjects = header_values(header, "Subject");
    if options.copy_subject {
        assert_eq!(
            subjects.len(),
            1,
            "{what}: copy_subject but no outer Subject\n{text}"
        );
        let inner = subject_of(original);
        if inner.is_ascii() {
            assert_eq!(subjects[0], inner, "{what}: outer Subject");
        }
    } else {
        // The subject may carry health information; the outer headers travel in the clear.
        assert!(
            subjects.is_empty(),
            "{what}: Subject outside without copy_subject\n{text}"
        );
    }
    // RFC 2045 §6.8: encoded lines are at most 76 characters.
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            line.len() <= 76,
            "{what}: base64 line of {} characters",
            line.len()
        );
    }
}

/// openssl's -print of an EnvelopedData or AuthEnvelopedData: the content type,
/// content cipher and the key encryption algorithm of every RecipientInfo.
fn assert_enveloped_structure(
    sealed_path: &std::path::Path,
    options: &SealOptions,
    recipients: usize,
    what: &str,
) {
    let print = String::from_utf8_lossy(&openssl_ok([
        "cms".as_ref(),
        "-cmsout".as_ref(),
        "-print".as_ref(),
        "-inform".as_ref(),
        "SMIME".as_ref(),
        "-in".as_ref(),
        sealed_path.as_os_str(),
    ]))
    .into_owned();
    let lines: Vec<&str> = print.lines().collect();
    let content_type = lines
        .iter()
        .find(|l| l.trim_start().starts_with("contentType:"))
        .unwrap_or_else(|| panic!("{what}: no contentType in -print"));
    let want_type = if options.cipher.is_authenticated() {
        "(1.2.840.113549.1.9.16.1.23)" // id-ct-authEnvelopedData, RFC 5083
    } else {
        "(1.2.840.113549.1.7.3)" // id-envelopedData, RFC 5652 §6.1
    };
    assert!(content_type.contains(want_type), "{what}: {content_type}");

    let cipher_line = lines
        .iter()
        .position(|l| l.trim() == "contentEncryptionAlgorithm:")
        .map(|i| lines[i + 1])
        .unwrap_or_else(|| panic!("{what}: no contentEncryptionAlgorithm in -print"));
    assert!(
        cipher_line.contains(cipher_oid(options.cipher)),
        "{what}: content cipher is {cipher_line}, expected {}",
        options.cipher
    );

    let kea: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == "keyEncryptionAlgorithm:")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(kea.len(), recipients, "{what}: number of RecipientInfos");
    for &i in &kea {
        let algorithm = lines[i + 1];
        let params: String = lines[i + 2..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("encryptedKey:"))
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        match options.key_transport {
            KeyTransport::Pkcs1 => assert!(
                algorithm.contains("rsaEncryption (1.2.840.113549.1.1.1)"),
                "{what}: key encryption {algorithm}"
            ),
            KeyTransport::OaepSha1 => {
                assert!(
                    algorithm.contains("rsaesOaep (1.2.840.113549.1.1.7)"),
                    "{what}: key encryption {algorithm}"
                );
                // RFC 4055 §4.1: absent hashFunc and maskGenAlgorithm mean SHA-1 and MGF1-SHA-1.
                assert!(
                    !params.contains(":sha256")
                        && !params.contains(":sha384")
                        && !params.contains(":sha512"),
                    "{what}: OAEP-SHA1 parameters name another hash:\n{params}"
                );
            }
            KeyTransport::OaepSha256 => {
                assert!(
                    algorithm.contains("rsaesOaep (1.2.840.113549.1.1.7)"),
                    "{what}: key encryption {algorithm}"
                );
                assert!(
                    params.contains(":mgf1"),
                    "{what}: OAEP parameters:\n{params}"
                );
                assert_eq!(
                    params.matches(":sha256").count(),
                    2,
                    "{what}: OAEP hash and MGF1 hash must both be SHA-256:\n{params}"
                );
            }
        }
    }
}

/// Decrypts with openssl as RECIPIENT, checks the multipart/signed inside,
/// verifies it with openssl, and checks that the verified content is the
/// message/rfc822 wrapper of `original` (after CRLF canonicalisation).
fn openssl_decrypt_and_verify(
    dir: &TempDir,
    sealed_path: &std::path::Path,
    recipient: &str,
    original: &[u8],
    what: &str,
) {
    let signed_path = dir.join(&format!("signed-{recipient}.eml"));
    openssl_ok([
        "cms".as_ref(),
        "-decrypt".as_ref(),
        "-in".as_ref(),
        sealed_path.as_os_str(),
        "-recip".as_ref(),
        cert_path(recipient).as_os_str(),
        "-inkey".as_ref(),
        key_path(recipient).as_os_str(),
        "-out".as_ref(),
        signed_path.as_os_str(),
    ]);
    let signed = std::fs::read(&signed_path).unwrap();

    // RFC 8551 §3.5.3 / RFC 1847 §2.1: multipart/signed, two parts, the
    // protocol quoted, micalg naming the digest actually used.
    let (header, body) = split_entity(&signed);
    let htext = String::from_utf8_lossy(header).into_owned();
    let ct = parse_structured(&header_value(header, "Content-Type"));
    assert_eq!(
        ct.value, "multipart/signed",
        "{what}: inner Content-Type\n{htext}"
    );
    assert_eq!(
        ct.param("protocol"),
        Some("application/pkcs7-signature"),
        "{what}: protocol\n{htext}"
    );
    assert!(
        ct.quoted("protocol"),
        "{what}: protocol must be quoted (RFC 1847 §2.1)\n{htext}"
    );
    assert_eq!(
        ct.param("micalg"),
        Some("sha-256"),
        "{what}: micalg\n{htext}"
    );
    let boundary = ct
        .param("boundary")
        .unwrap_or_else(|| panic!("{what}: no boundary\n{htext}"))
        .to_string();
    let parts = multipart_parts(body, &boundary);
    assert_eq!(
        parts.len(),
        2,
        "{what}: multipart/signed must have exactly two parts"
    );
    let (sig_header, _) = split_entity(parts[1]);
    let sig_ct = parse_structured(&header_value(sig_header, "Content-Type"));
    assert_eq!(
        sig_ct.value, "application/pkcs7-signature",
        "{what}: signature part type"
    );
    assert!(
        header_value(sig_header, "Content-Transfer-Encoding").eq_ignore_ascii_case("base64"),
        "{what}: signature part must be base64"
    );

    // The SignedData's digest is SHA-256, agreeing with micalg.
    let print = String::from_utf8_lossy(&openssl_ok([
        "cms".as_ref(),
        "-cmsout".as_ref(),
        "-print".as_ref(),
        "-inform".as_ref(),
        "SMIME".as_ref(),
        "-in".as_ref(),
        signed_path.as_os_str(),
    ]))
    .into_owned();
    let lines: Vec<&str> = print.lines().collect();
    let digests: Vec<&str> = lines
        .windows(2)
        .filter(|w| matches!(w[0].trim(), "digestAlgorithms:" | "digestAlgorithm:"))
        .map(|w| w[1].trim())
        .collect();
    assert!(
        digests.len() >= 2,
        "{what}: digest algorithms not found in -print"
    );
    for d in &digests {
        assert!(
            d.contains("sha256 (2.16.840.1.101.3.4.2.1)"),
            "{what}: SignedData digest {d}, expected SHA-256"
        );
    }

    // The default purpose of `openssl cms -verify` is smimesign, which wants
    // keyUsage digitalSignature and extendedKeyUsage emailProtection; the test
    // PKI's leaves have both, so `-purpose any` is not needed, and not using it
    // checks that alice's certificate is fit for S/MIME signing as sent.
    let verified_path = dir.join(&format!("verified-{recipient}.eml"));
    let run = openssl([
        "cms".as_ref(),
        "-verify".as_ref(),
        "-in".as_ref(),
        signed_path.as_os_str(),
        "-CAfile".as_ref(),
        cert_path("ca").as_os_str(),
        "-attime".as_ref(),
        AT.to_string().as_ref(),
        "-out".as_ref(),
        verified_path.as_os_str(),
    ]);
    assert!(run.ok, "{what}: openssl cannot verify: {}", run.stderr);
    let verified = std::fs::read(&verified_path).unwrap();
    assert_bytes_eq(
        &verified,
        parts[0],
        &format!("{what}: verified content against the first part"),
    );

    // The verified content is the message/rfc822 wrapper of the original message.
    let (wrapper_header, inner) = split_entity(&verified);
    let wct = parse_structured(&header_value(wrapper_header, "Content-Type"));
    assert_eq!(wct.value, "message/rfc822", "{what}: wrapper Content-Type");
    assert_bytes_eq(
        inner,
        &crlf(original),
        &format!("{what}: wrapped message against the original"),
    );
    let (inner_header, _) = split_entity(inner);
    for name in [
        "Date",
        "From",
        "To",
        "Subject",
        "Message-ID",
        "MIME-Version",
    ] {
        assert_eq!(
            header_values(inner_header, name).len(),
            1,
            "{what}: the wrapped message must carry one {name}"
        );
    }
}

/// Seals `original` with OPTIONS to RECIPIENTS and checks it all with openssl.
fn seal_and_check(
    original: &[u8],
    options: SealOptions,
    recipients: &[&str],
    print: bool,
    what: &str,
) {
    let dir = TempDir::new("interop");
    let certs: Vec<_> = recipients.iter().map(|r| cert(r)).collect();
    let sealed = seal(original, &alice(), &certs, &options)
        .unwrap_or_else(|e| panic!("{what}: seal failed: {e}"));
    let sealed_path = dir.write("sealed.eml", &sealed);
    assert_outer_shape(&sealed, &options, original, what);
    if print {
        assert_enveloped_structure(&sealed_path, &options, recipients.len(), what);
    }
    for r in recipients {
        openssl_decrypt_and_verify(
            &dir,
            &sealed_path,
            r,
            original,
            &format!("{what}, decrypted by {r}"),
        );
    }
}

fn matrix(cipher: ContentCipher, key_transport: KeyTransport) {
    let options = SealOptions {
        cipher,
        key_transport,
        copy_subject: false,
    };
    for (n, kind) in [Body::Text, Body::Utf8, Body::Pdf].into_iter().enumerate() {
        for size in [KIB, 100 * KIB] {
            let original = message(kind, size, n as u64 + 1);
            let what = format!("{cipher}/{key_transport}, {kind:?} body of {size} bytes");
            seal_and_check(&original, options, &["bob"], true, &what);
        }
    }
}

macro_rules! openssl_opens {
    ($($test:ident => ($cipher:ident, $kt:ident),)*) => {
        $(
            #[test]
            fn $test() {
                matrix(ContentCipher::$cipher, KeyTransport::$kt);
            }
        )*
    };
}

// RFC 8551 §3.3 (EnvelopedData), §3.4 (AuthEnvelopedData), §3.5.3 (multipart/signed);
// Applicability Statement 1.3: AES content encryption, SHA-256 signatures.
openssl_opens! {
    openssl_opens_aes256_cbc_pkcs1_rfc8551_3_3 => (Aes256Cbc, Pkcs1),
    openssl_opens_aes256_cbc_oaep_sha1_rfc8551_3_3 => (Aes256Cbc, OaepSha1),
    openssl_opens_aes256_cbc_oaep_sha256_rfc8551_3_3 => (Aes256Cbc, OaepSha256),
    openssl_opens_aes128_cbc_pkcs1_rfc8551_3_3 => (Aes128Cbc, Pkcs1),
    openssl_opens_aes128_cbc_oaep_sha1_rfc8551_3_3 => (Aes128Cbc, OaepSha1),
    openssl_opens_aes128_cbc_oaep_sha256_rfc8551_3_3 => (Aes128Cbc, OaepSha256),
    openssl_opens_aes256_gcm_pkcs1_rfc8551_3_4 => (Aes256Gcm, Pkcs1),
    openssl_opens_aes256_gcm_oaep_sha1_rfc8551_3_4 => (Aes256Gcm, OaepSha1),
    openssl_opens_aes256_gcm_oaep_sha256_rfc8551_3_4 => (Aes256Gcm, OaepSha256),
}

/// One large message: a 10 MiB PDF attachment, the default cipher and key
/// transport. The -print of the EnvelopedData is skipped here (it would dump
/// 10 MiB as hex); the matrix above checks the structure.
#[test]
fn openssl_opens_a_10_mib_attachment_rfc8551_3_3() {
    let original = message(Body::Pdf, 10 * MIB, 7);
    seal_and_check(
        &original,
        SealOptions::default(),
        &["bob"],
        false,
        "aes256-cbc/pkcs1, 10 MiB PDF",
    );
}

/// RFC 5652 §6.1: one RecipientInfo per recipient; each decrypts alone.
#[test]
fn openssl_opens_for_each_of_two_recipients_rfc5652_6_1() {
    for (n, kt) in [KeyTransport::Pkcs1, KeyTransport::OaepSha256]
        .into_iter()
        .enumerate()
    {
        let options = SealOptions {
            key_transport: kt,
            ..SealOptions::default()
        };
        let original = message(Body::Text, 4 * KIB, 20 + n as u64);
        seal_and_check(
            &original,
            options,
            &["bob", "carol"],
            true,
            &format!("to bob and carol, {kt}"),
        );
    }
}

/// The Subject stays inside unless asked; asked, it goes outside as ASCII.
#[test]
fn copy_subject_puts_the_subject_outside_in_ascii_applicability_statement_1_3() {
    let options = SealOptions {
        copy_subject: true,
        ..SealOptions::default()
    };
    let original = message(Body::Text, KIB, 30);
    seal_and_check(
        &original,
        options,
        &["bob"],
        false,
        "copy_subject, ASCII subject",
    );

    let original = message(Body::Utf8, KIB, 31);
    seal_and_check(
        &original,
        options,
        &["bob"],
        false,
        "copy_subject, encoded-word subject",
    );

    // A raw UTF-8 Subject (RFC 6532) must not make the outer headers 8bit.
    let raw = "From: Alice Example <alice@a.example>\r\nTo: Bob Example <bob@b.example>\r\n\
               Subject: Befund für Zoë\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
               Message-ID: <raw-utf8@a.example>\r\nMIME-Version: 1.0\r\n\
               Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
               Grüße\r\n";
    let sealed = seal(raw.as_bytes(), &alice(), &[cert("bob")], &options).expect("seal");
    let (outer, _) = split_entity(&sealed);
    assert!(
        outer.is_ascii(),
        "outer headers:\n{}",
        String::from_utf8_lossy(outer)
    );
    let subject = header_value(outer, "Subject");
    assert!(
        subject.starts_with("=?"),
        "outer Subject should be an RFC 2047 encoded word: {subject}"
    );
}

// ---------------------------------------------------------------------------
// openssl -> hisp
// ---------------------------------------------------------------------------

/// openssl's key transport options for each of hisp's names.
fn openssl_key_transport(kt: KeyTransport) -> &'static [&'static str] {
    match kt {
        KeyTransport::Pkcs1 => &[],
        KeyTransport::OaepSha1 => &[
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha1",
        ],
        KeyTransport::OaepSha256 => &[
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
            "-keyopt",
            "rsa_mgf1_md:sha256",
        ],
    }
}

/// Signs the wrapped message with openssl, encrypts it with CIPHER_OPTION and
/// every key transport, and opens each with hisp.
fn hisp_opens_openssl(cipher_option: &str, expected: ContentCipher) {
    let dir = TempDir::new("openssl-to-hisp");
    let keys = [key_pair("bob")];
    let options = OpenOptions { keys: &keys };
    let bodies = [
        (Body::Text, KIB),
        (Body::Utf8, 100 * KIB),
        (Body::Pdf, 100 * KIB),
    ];
    for (n, (kind, size)) in bodies.into_iter().enumerate() {
        // openssl signs the canonical (CRLF) form; hand it canonical input so the
        // signed bytes are the message's bytes.
        let original = crlf(&message(kind, size, 40 + n as u64));
        let mut wrapper = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
        wrapper.extend_from_slice(&original);
        let wrapper_path = dir.write(&format!("wrapper-{n}.eml"), &wrapper);
        let signed_path = dir.join(&format!("signed-{n}.eml"));
        openssl_ok([
            "cms".as_ref(),
            "-sign".as_ref(),
            "-md".as_ref(),
            "sha256".as_ref(),
            "-crlfeol".as_ref(),
            "-signer".as_ref(),
            cert_path("alice").as_os_str(),
            "-inkey".as_ref(),
            key_path("alice").as_os_str(),
            "-in".as_ref(),
            wrapper_path.as_os_str(),
            "-out".as_ref(),
            signed_path.as_os_str(),
        ]);
        for kt in [
            KeyTransport::Pkcs1,
            KeyTransport::OaepSha1,
            KeyTransport::OaepSha256,
        ] {
            let sealed_path = dir.join(&format!("sealed-{n}-{kt}.eml"));
            let mut args: Vec<std::ffi::OsString> = vec![
                "cms".into(),
                "-encrypt".into(),
                cipher_option.into(),
                "-crlfeol".into(),
                "-in".into(),
                signed_path.clone().into(),
                "-out".into(),
                sealed_path.clone().into(),
                "-recip".into(),
                cert_path("bob").into(),
            ];
            args.extend(openssl_key_transport(kt).iter().map(|s| s.into()));
            openssl_ok(&args);
            let sealed = std::fs::read(&sealed_path).unwrap();
            let what = format!(
                "openssl cms -encrypt {cipher_option} ({kt}), {kind:?} body of {size} bytes"
            );
            let opened = open(&sealed, &options)
                .unwrap_or_else(|e| panic!("{what}: hisp refused it ({}): {e}", e.code()));
            assert_bytes_eq(
                &opened.message,
                &original,
                &format!("{what}: inner message"),
            );
            assert!(opened.wrapped, "{what}: wrapped");
            assert_eq!(opened.cipher, Some(expected), "{what}: cipher");
            assert_eq!(opened.key_transport, Some(kt), "{what}: key transport");
            assert_eq!(opened.digest.name(), "sha-256", "{what}: digest");
        }
    }
}

#[test]
fn hisp_opens_openssl_aes128_cbc_rfc8551_2_7() {
    hisp_opens_openssl("-aes128", ContentCipher::Aes128Cbc);
}

#[test]
fn hisp_opens_openssl_aes192_cbc_rfc3565() {
    hisp_opens_openssl("-aes192", ContentCipher::Aes192Cbc);
}

#[test]
fn hisp_opens_openssl_aes256_cbc_applicability_statement_1_3() {
    hisp_opens_openssl("-aes256", ContentCipher::Aes256Cbc);
}

#[test]
fn hisp_opens_openssl_aes128_gcm_rfc5084() {
    hisp_opens_openssl("-aes-128-gcm", ContentCipher::Aes128Gcm);
}

#[test]
fn hisp_opens_openssl_aes256_gcm_rfc5084() {
    hisp_opens_openssl("-aes-256-gcm", ContentCipher::Aes256Gcm);
}

/// Streaming senders write BER with indefinite lengths (`openssl cms -stream`);
/// CMS is BER-encoded (RFC 5652 §1.2), so hisp must read it, detached and
/// opaque, enveloped and signed.
#[test]
fn hisp_opens_streamed_ber_from_openssl_rfc5652_1_2() {
    let dir = TempDir::new("openssl-ber");
    let keys = [key_pair("bob")];
    let options = OpenOptions { keys: &keys };
    let original = crlf(&message(Body::Text, 20 * KIB, 77));
    let mut wrapper = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    wrapper.extend_from_slice(&original);
    let wrapper_path = dir.write("wrapper.eml", &wrapper);
    for (n, opaque) in [false, true].into_iter().enumerate() {
        let signed_path = dir.join(&format!("signed-{n}.eml"));
        let mut sign: Vec<std::ffi::OsString> = vec![
            "cms".into(),
            "-sign".into(),
            "-stream".into(),
            "-md".into(),
            "sha256".into(),
            "-crlfeol".into(),
            "-signer".into(),
            cert_path("alice").into(),
            "-inkey".into(),
            key_path("alice").into(),
            "-in".into(),
            wrapper_path.clone().into(),
            "-out".into(),
            signed_path.clone().into(),
        ];
        if opaque {
            sign.push("-nodetach".into());
        }
        openssl_ok(&sign);
        let sealed_path = dir.join(&format!("sealed-{n}.eml"));
        openssl_ok([
            "cms".as_ref(),
            "-encrypt".as_ref(),
            "-stream".as_ref(),
            "-aes256".as_ref(),
            "-crlfeol".as_ref(),
            "-in".as_ref(),
            signed_path.as_os_str(),
            "-out".as_ref(),
            sealed_path.as_os_str(),
            cert_path("bob").as_os_str(),
        ]);
        // The envelope really is BER: its ContentInfo has an indefinite length.
        let sealed = std::fs::read(&sealed_path).unwrap();
        let body_path = dir.write(&format!("body-{n}.b64"), split_entity(&sealed).1);
        let der = openssl_ok([
            "base64".as_ref(),
            "-d".as_ref(),
            "-in".as_ref(),
            body_path.as_os_str(),
        ]);
        assert_eq!(
            &der[..2],
            &[0x30, 0x80],
            "openssl -stream wrote definite lengths"
        );
        let opened =
            open(&sealed, &options).unwrap_or_else(|e| panic!("streamed (opaque: {opaque}): {e}"));
        assert_bytes_eq(&opened.message, &original, "streamed BER inner message");
        assert_eq!(opened.cipher, Some(ContentCipher::Aes256Cbc));
    }
}

/// The test's own base64 encoder (for the PDF attachments) agrees with openssl's decoder.
#[test]
fn test_base64_encoder_agrees_with_openssl() {
    let dir = TempDir::new("base64");
    let mut rng = StdRng::seed_from_u64(99);
    for len in [0usize, 1, 2, 3, 57, 58, 59, 1000] {
        let mut data = vec![0u8; len];
        rng.fill(&mut data[..]);
        let path = dir.write("b64.txt", &base64_lines(&data));
        let decoded = openssl_ok([
            "base64".as_ref(),
            "-d".as_ref(),
            "-in".as_ref(),
            path.as_os_str(),
        ]);
        assert_eq!(decoded, data, "length {len}");
    }
}
