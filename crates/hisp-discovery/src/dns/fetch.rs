//! Fetching the certificate an IPKIX CERT record points at (RFC 4398 §2.1:
//! type 4, "the URL of an X.509 data object").

use std::time::Duration;

use base64::Engine;

/// Largest body accepted: a certificate is a few KiB; anything near this is
/// not a certificate.
const MAX_BYTES: u64 = 256 * 1024;

/// The URL in the data of an IPKIX record, if it is one hisp fetches.
///
/// RFC 4398 §2.1 puts the URL in the certificate field as text; trailing NUL
/// or white space (seen from some publishing tools) is ignored.
pub(crate) fn ipkix_url(data: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(data)
        .map_err(|_| "the IPKIX record data is not a text URL".to_string())?;
    let url = text.trim_end_matches(['\0', ' ', '\n', '\r', '\t']).trim();
    let scheme = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if scheme.starts_with("http://") || scheme.starts_with("https://") {
        Ok(url.to_string())
    } else {
        Err(format!("the IPKIX URL '{url}' is not http or https"))
    }
}

/// GETs `url` and returns the certificate in it as DER (a DER body, or the
/// first PEM CERTIFICATE block). Blocking: call from `spawn_blocking`.
pub(crate) fn fetch_certificate(url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(3)
        .http_status_as_error(true)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BYTES)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    certificate_der(&body)
}

/// DER as is; PEM decoded; anything else refused.
fn certificate_der(body: &[u8]) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    // A DER certificate is a SEQUENCE (0x30).
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text =
        std::str::from_utf8(body).map_err(|_| "the body is neither DER nor PEM".to_string())?;
    let start = text
        .find(BEGIN)
        .ok_or_else(|| "the body is neither DER nor a PEM certificate".to_string())?
        + BEGIN.len();
    let len = text[start..]
        .find(END)
        .ok_or_else(|| "the PEM certificate has no END line".to_string())?;
    let b64: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the PEM certificate is not valid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_read_as_text_rfc_4398_2_1() {
        assert_eq!(
            ipkix_url(b"http://certs.example.org/a.der\0").unwrap(),
            "http://certs.example.org/a.der"
        );
        assert!(ipkix_url(b"ldap://x/cn=a")
            .unwrap_err()
            .contains("not http"));
        assert!(ipkix_url(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn pem_and_der_bodies_are_accepted() {
        assert_eq!(
            certificate_der(&[0x30, 0x03, 1, 2, 3]).unwrap(),
            vec![0x30, 3, 1, 2, 3]
        );
        let pem = "-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            certificate_der(pem.as_bytes()).unwrap(),
            vec![0x30, 3, 1, 2, 3]
        );
        assert!(certificate_der(b"<html>").is_err());
    }
}
