//! Logged-in sessions: a random token in an HttpOnly, SameSite=Strict
//! cookie, and with each a CSRF token that every state-changing request
//! must carry in `X-CSRF-Token` (issue 11, "The API").
//!
//! Sessions live in the memory of the serving process: a restart logs
//! everyone out, which the API allows (the client logs in again on 401).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use hisp_store::DirectAddress;
use rand::RngCore;
use time::{Duration, OffsetDateTime};

/// The session cookie's name.
pub const COOKIE: &str = "hisp_session";

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long a session lasts after login.
pub const LIFETIME: Duration = Duration::hours(8);

/// Sessions held at most; the oldest go first when more log in.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The portal account's address: the only mailbox this session sees.
    pub address: DirectAddress,
    /// The token state-changing requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: OffsetDateTime,
}

/// The sessions of one serving process.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `address` at `now`; returns the cookie token
    /// and the session.
    pub fn start(&self, address: DirectAddress, now: OffsetDateTime) -> (String, Session) {
        let token = random_token();
        let session = Session {
            address,
            csrf_token: random_token(),
            expires_at: now + LIFETIME,
        };
        let mut map = self.lock();
        map.retain(|_, s| s.expires_at > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(t, _)| t.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session of `token` at `now`.
    pub fn get(&self, token: &str, now: OffsetDateTime) -> Option<Session> {
        let mut map = self.lock();
        match map.get(token) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// 32 random bytes from the operating system's generator, as 64 hex digits.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Compares two tokens in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value starting a session (`Secure` under HTTPS).
pub fn set_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        LIFETIME.whole_seconds()
    )
}

/// The `Set-Cookie` value ending a session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> DirectAddress {
        DirectAddress::parse("pat@a.example").unwrap()
    }

    #[test]
    fn a_session_ends_after_its_lifetime_or_at_logout() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let sessions = Sessions::default();
        let (token, s) = sessions.start(addr(), t0);
        assert_eq!(token.len(), 64);
        assert_ne!(token, s.csrf_token);
        assert_eq!(sessions.get(&token, t0 + Duration::hours(7)), Some(s));
        assert_eq!(sessions.get(&token, t0 + LIFETIME), None);
        let (token, _) = sessions.start(addr(), t0);
        sessions.end(&token);
        assert_eq!(sessions.get(&token, t0), None);
    }

    #[test]
    fn cookies_are_read_by_name_and_set_http_only_strict() {
        assert_eq!(
            cookie_value("a=1; hisp_session=abc; b=2", COOKIE),
            Some("abc")
        );
        assert_eq!(cookie_value("xhisp_session=abc", COOKIE), None);
        let c = set_cookie("abc", false);
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        assert!(!c.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert!(tokens_equal("abcd", "abcd"));
        assert!(!tokens_equal("abcd", "abce"));
        assert!(!tokens_equal("abcd", "abc"));
    }
}
