//! The decisions a listener delegates to the gateway.

use async_trait::async_trait;

use crate::reply::Reply;
use crate::session::{Envelope, Session};

/// A submission account the gateway authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name, as the gateway knows it.
    pub name: String,
}

impl Account {
    /// An account called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Account { name: name.into() }
    }
}

/// The gateway's answers to what a session asks. The session handles the protocol
/// (sequence, syntax, limits); every decision about people, addresses and messages is
/// made here, and a refusal is returned as the [`Reply`] to send.
#[async_trait]
pub trait Policy: Send + Sync {
    /// Checks a user name and password (AUTH PLAIN or LOGIN). The default refuses all.
    async fn authenticate(
        &self,
        session: &Session,
        user: &str,
        password: &str,
    ) -> Result<Account, Reply> {
        let _ = (session, user, password);
        Err(Reply::auth_failed())
    }

    /// Accepts or refuses the reverse-path of MAIL FROM (empty for `<>`). On submission
    /// the session has already required AUTH. The default accepts.
    async fn mail_from(&self, session: &Session, from: &str) -> Result<(), Reply> {
        let _ = (session, from);
        Ok(())
    }

    /// Accepts or refuses one RCPT TO. `envelope` holds the sender and the recipients
    /// accepted so far. Discovery happens here.
    async fn rcpt_to(&self, session: &Session, envelope: &Envelope, to: &str) -> Result<(), Reply>;

    /// Takes the message (dot-unstuffed, with the trace field prepended) and returns the
    /// reply to the final dot. The session sends nothing before this returns, so a 250
    /// reply must mean the message is committed durably (RFC 5321 §6.1).
    async fn data(&self, session: &Session, envelope: &Envelope, message: Vec<u8>) -> Reply;
}
