//! The committed vectors (tests/vectors, made by the openssl command line with
//! tests/vectors/make.sh): every NAME.eml is opened with the key pairs its
//! NAME.json names and must give exactly what NAME.json says. hisp-smime
//! verifies signatures and digests; whether a verified signer is trusted
//! (a path to anchors = [ca.pem], valid at 2027-06-01) is hisp-trust's
//! judgement, as in hisp itself: `expired-signer` and `untrusted-signer`
//! are its refusals.

mod common;

use common::{assert_bytes_eq, key_pair, vector_file, vectors_dir, Json, AT};
use hisp_smime::{open, OpenOptions, Opened};
use hisp_trust::{validate_path, Anchors, Intermediates, Remote};
use openssl::x509::X509;

/// The code of the vectors for a message that opened: `None` when a
/// verified signer has a valid path to an anchor at [`AT`], else
/// `expired-signer` when a certificate of the path was outside its validity
/// and `untrusted-signer` for any other path failure (the first signer's).
fn trust_refusal(opened: &Opened, anchors: &[X509], remote: &Remote) -> Option<&'static str> {
    let mut refusal = None;
    let anchors = Anchors::new(anchors.to_vec()).unwrap();
    for signer in opened.signers.iter().filter(|s| s.verified) {
        let intermediates = Intermediates {
            message: &opened.certificates,
            local: &[],
        };
        match validate_path(&signer.cert, &anchors, &intermediates, AT, remote) {
            Ok(_) => return None,
            Err(failure) => {
                refusal.get_or_insert(if failure.failure().is_validity() {
                    "expired-signer"
                } else {
                    "untrusted-signer"
                });
            }
        }
    }
    refusal
}

/// Opens vector NAME as its expectation file says and checks the result.
fn check_vector(name: &str) {
    let json_text = String::from_utf8(vector_file(&format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json is not UTF-8: {e}"));
    let expect = Json::parse(&json_text).unwrap_or_else(|e| panic!("{name}.json: {e}"));
    let sealed = vector_file(&format!("{name}.eml"));
    let anchors = [common::cert("ca")];
    let open_with: Vec<String> = match expect.get("open_with").and_then(Json::as_array) {
        Some(list) => list
            .iter()
            .map(|v| v.as_str().expect("open_with holds names").to_string())
            .collect(),
        None => vec!["bob".to_string()],
    };
    let ok = expect
        .get("ok")
        .and_then(Json::as_bool)
        .unwrap_or_else(|| panic!("{name}.json has no \"ok\""));
    let about = expect.get("about").and_then(Json::as_str).unwrap_or("");
    let remote = Remote::http();

    for recipient in &open_with {
        let keys = [key_pair(recipient)];
        let options = OpenOptions { keys: &keys };
        let context = format!("{name}.eml opened as {recipient} ({about})");
        let result = open(&sealed, &options)
            .map_err(|e| e.code())
            .and_then(|opened| match trust_refusal(&opened, &anchors, &remote) {
                Some(code) => Err(code),
                None => Ok(opened),
            });
        if !ok {
            let code = expect
                .get("code")
                .and_then(Json::as_str)
                .unwrap_or_else(|| panic!("{name}.json has ok=false and no code"));
            match result {
                Ok(opened) => panic!(
                    "{context}: expected refusal '{code}', but it opened ({} bytes, cipher {:?}, digest {:?})",
                    opened.message.len(),
                    opened.cipher,
                    opened.digest
                ),
                Err(e) => assert_eq!(e, code, "{context}: expected '{code}', got '{e}'"),
            }
            continue;
        }
        let opened = result.unwrap_or_else(|e| panic!("{context}: refused '{e}'"));
        let inner_file = expect
            .get("inner")
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("{name}.json has ok=true and no inner"));
        assert_bytes_eq(
            &opened.message,
            &vector_file(inner_file),
            &format!("{context}: inner message against {inner_file}"),
        );
        if let Some(wrapped) = expect.get("wrapped").and_then(Json::as_bool) {
            assert_eq!(opened.wrapped, wrapped, "{context}: wrapped");
        }
        if let Some(cipher) = expect.get("cipher") {
            assert_eq!(
                opened.cipher.map(|c| c.name()),
                cipher.as_str(),
                "{context}: cipher"
            );
        }
        if let Some(kt) = expect.get("key_transport") {
            assert_eq!(
                opened.key_transport.map(|k| k.name()),
                kt.as_str(),
                "{context}: key transport"
            );
        }
        if let Some(digest) = expect.get("digest").and_then(Json::as_str) {
            assert_eq!(opened.digest.name(), digest, "{context}: digest");
        }
        if let Some(n) = expect.get("signers").and_then(Json::as_f64) {
            assert_eq!(
                opened.signers.len(),
                n as usize,
                "{context}: number of signers"
            );
            assert!(
                opened.signers.iter().any(|s| s.verified),
                "{context}: no signer is reported verified: {:?}",
                opened
                    .signers
                    .iter()
                    .map(|s| (&s.subject, &s.problem))
                    .collect::<Vec<_>>()
            );
        }
    }
}

macro_rules! vectors {
    ($($test:ident => $vector:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_vector($vector);
            }
        )*

        /// Every vector named here, so a vector added to tests/vectors without a
        /// test here is noticed.
        const ALL: &[&str] = &[$($vector),*];
    };
}

vectors! {
    // Found by review: legacy types without smime-type, weak paths, the content type.
    opens_opaque_signed_data_without_smime_type_rfc8551_3_2_2 => "ok-legacy-opaque-without-smime-type",
    refuses_a_certificate_signed_with_md5_applicability_statement_1_3 => "refuse-md5-signed-certificate",
    refuses_a_dsa_1024_signer_security_level_2 => "refuse-dsa-1024-signer",
    refuses_signed_content_that_is_not_id_data_rfc5652_11_1 => "refuse-econtent-type-not-data",
    // Content encryption: Applicability Statement 1.3 requires AES; RFC 8551 §2.7.
    opens_aes128_cbc_rfc8551_2_7 => "ok-aes128-cbc",
    opens_aes192_cbc_rfc3565 => "ok-aes192-cbc",
    opens_aes256_cbc_applicability_statement_1_3 => "ok-aes256-cbc",
    opens_aes128_gcm_auth_enveloped_data_rfc5083_rfc5084 => "ok-aes128-gcm",
    opens_aes256_gcm_auth_enveloped_data_rfc5083_rfc5084 => "ok-aes256-gcm",
    // Key transport: RSAES-PKCS1-v1_5 and RSAES-OAEP (RFC 8551 §2.3, RFC 3560).
    opens_rsaes_oaep_sha1_key_transport_rfc3560 => "ok-oaep-sha1",
    opens_rsaes_oaep_sha256_key_transport_rfc3560 => "ok-oaep-sha256",
    opens_rsaes_oaep_sha256_with_aes256_gcm_rfc5084 => "ok-oaep-sha256-gcm",
    opens_recipient_named_by_subject_key_identifier_rfc5652_6_2_1 => "ok-recipient-keyid",
    each_recipient_opens_a_message_to_several_rfc5652_6_1 => "ok-bob-and-carol",
    // Signatures.
    accepts_sha384_signature_rfc8551_2_1 => "ok-sha384",
    accepts_sha512_signature_rfc8551_2_1 => "ok-sha512",
    opens_opaque_signed_data_rfc8551_3_5_2 => "ok-opaque-signed",
    verifies_signer_named_by_subject_key_identifier_rfc5652_5_3 => "ok-signer-keyid",
    verifies_signer_info_without_signed_attributes_rfc5652_5_4 => "ok-no-signed-attributes",
    one_trusted_signer_suffices_beside_an_expired_one_rfc5652_5_1 => "ok-two-signers-alice-expired",
    one_trusted_signer_suffices_beside_an_untrusted_one_rfc5652_5_1 => "ok-two-signers-alice-untrusted",
    opens_legacy_x_pkcs7_content_types_rfc8551_3_2 => "ok-legacy-smime",
    opens_legacy_x_pkcs7_opaque_signed_rfc8551_3_2 => "ok-legacy-smime-opaque",
    opens_signed_only_message_rfc8551_3_5_3 => "ok-signed-only",
    // Content, byte for byte (RFC 8551 §3.1.1 canonical form).
    opens_8bit_utf8_message_byte_for_byte_rfc8551_3_1_2 => "ok-utf8",
    opens_message_with_binary_attachment_byte_for_byte_rfc8551_3_1 => "ok-multipart",
    opens_outer_message_with_bare_lf_line_endings => "ok-lf-line-endings",
    // Header wrapping is optional for senders: Applicability Statement 1.3, RFC 8551 §3.1.
    unwrapped_text_message_takes_the_outer_headers_applicability_statement_1_3 => "ok-unwrapped-text",
    unwrapped_multipart_message_takes_the_outer_headers_applicability_statement_1_3 => "ok-unwrapped-multipart",
    unwrapped_whole_message_keeps_its_signed_fields_once_rfc5322_3_6 => "ok-unwrapped-whole-message",
    // Refusals.
    refuses_plain_message_as_not_smime_applicability_statement_1_3 => "refuse-not-smime",
    refuses_unsigned_message_applicability_statement_1_3 => "refuse-unsigned",
    refuses_message_not_encrypted_to_us_rfc5652_6_2 => "refuse-not-a-recipient",
    refuses_3des_content_encryption_applicability_statement_1_3 => "refuse-3des",
    refuses_sha1_signature_applicability_statement_1_3 => "refuse-sha1-signature",
    refuses_md5_signature_rfc8551_2_1 => "refuse-md5-signature",
    refuses_rsa_1024_signer_applicability_statement_1_3 => "refuse-weak-signer",
    refuses_signer_without_path_to_an_anchor_rfc5280_6_1 => "refuse-untrusted-signer",
    refuses_expired_signer_rfc5280_6_1_3 => "refuse-expired-signer",
    refuses_signature_without_signer_certificate_rfc5652_5_6 => "refuse-signer-certificate-missing",
    refuses_content_changed_after_signing_rfc5652_5_6 => "refuse-tampered-content",
    refuses_corrupted_signature_value_rfc5652_5_6 => "refuse-bad-signature",
    refuses_gcm_message_with_wrong_authentication_tag_rfc5083_2_2 => "refuse-gcm-bad-tag",
    refuses_truncated_base64_rfc2045_6_8 => "refuse-truncated-base64",
    refuses_truncated_enveloped_data_rfc5652_6_1 => "refuse-truncated-der",
    refuses_signature_part_that_is_not_cms_rfc8551_3_5_3 => "refuse-signature-not-cms",
    refuses_multipart_signed_without_signature_part_rfc1847_2_1 => "refuse-multipart-signed-one-part",
}

#[test]
fn every_vector_in_tests_vectors_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let mut named: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    named.sort();
    assert_eq!(
        on_disk, named,
        "tests/vectors/*.json and the vectors! list differ"
    );
    for name in &on_disk {
        assert!(
            vectors_dir().join(format!("{name}.eml")).is_file(),
            "{name}.json has no {name}.eml"
        );
    }
}
