//! Decoding the SASL PLAIN (RFC 4616) and LOGIN responses used by AUTH (RFC 4954).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Why a SASL response could not be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// Not valid base64 (RFC 4954 §4: 501).
    #[error("response is not valid base64")]
    Base64,
    /// Not UTF-8, or not the `authzid NUL authcid NUL passwd` shape (RFC 4616 §2).
    #[error("malformed PLAIN response")]
    Malformed,
    /// An authorization identity other than the user itself.
    #[error("authorization identity differs from the user")]
    Authzid,
}

/// Decodes one base64 SASL response line (without CRLF); `=` is the empty response.
pub(crate) fn decode(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim();
    if line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Base64)
}

/// Splits a decoded PLAIN response into user and password.
pub(crate) fn plain(decoded: &[u8]) -> Result<(String, String), SaslError> {
    let text = std::str::from_utf8(decoded).map_err(|_| SaslError::Malformed)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if user.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::Authzid);
    }
    Ok((user.to_string(), password.to_string()))
}

/// Decodes a LOGIN step (user name or password) to text.
pub(crate) fn text(decoded: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(decoded).map_err(|_| SaslError::Malformed)
}

/// The base64 of `s`, for server challenges.
pub(crate) fn encode(s: &str) -> String {
    STANDARD.encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_splits_authcid_and_password_rfc4616_2() {
        let d = decode(&encode("\0alice\0secret")).unwrap();
        assert_eq!(plain(&d).unwrap(), ("alice".into(), "secret".into()));
        let d = decode(&encode("bob\0alice\0secret")).unwrap();
        assert_eq!(plain(&d), Err(SaslError::Authzid));
        assert_eq!(decode("!!"), Err(SaslError::Base64));
    }
}
