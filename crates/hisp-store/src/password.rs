//! Password hashes: Argon2id in the PHC string format, so the parameters
//! travel with each hash and can be raised later without breaking old ones.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::StoreError;

/// The shortest password the store accepts.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, 2 passes,
/// 1 lane, the OWASP recommendation) and a random 16-byte salt.
pub(crate) fn hash(password: &str) -> Result<String, StoreError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StoreError::Invalid {
            what: "password",
            value: "(not shown)".into(),
            reason: format!("it must be at least {MIN_PASSWORD_LEN} characters long"),
        });
    }
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| StoreError::Password {
        reason: format!("no random salt: {e}"),
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Password {
        reason: e.to_string(),
    })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Password {
            reason: e.to_string(),
        })
}

/// Whether `password` matches the PHC string `phc`. The comparison is
/// constant-time (argon2 compares the outputs with `subtle`).
pub(crate) fn verify(password: &str, phc: &str) -> Result<bool, StoreError> {
    let parsed = PasswordHash::new(phc).map_err(|e| StoreError::Password {
        reason: format!("stored hash does not parse: {e}"),
    })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Spends the time of one verification for a user that does not exist, so
/// the time of a failed login does not tell whether the name exists.
pub(crate) fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a password of anybody").ok());
    if let Some(phc) = dummy {
        let _ = verify(password, phc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_an_argon2id_phc_string_that_verifies_only_its_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify("correct horse battery", &h).unwrap());
        assert!(!verify("correct horse batterY", &h).unwrap());
        assert_ne!(h, hash("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            hash("short"),
            Err(StoreError::Invalid {
                what: "password",
                ..
            })
        ));
    }
}
