//! Portal accounts: the people (patients, providers) who read and write
//! their mail through the patient portal. Each belongs to one local Direct
//! address and logs in with it; unlike a submission account
//! ([`Account`](crate::Account)) it sends only as that address.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::error::StoreError;
use hisp_address::DirectAddress;

/// The row id of a portal account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortalUserId(pub i64);

/// An ordinary e-mail address, where a portal user is told that new secure
/// mail is waiting. Its syntax is the one a Direct address has (dot-atom
/// local part of at most 64 characters, LDH domain; RFC 5321 §4.1.2 without
/// quoted local parts or address literals), so it can go into a header field
/// or an SMTP envelope as it is: no spaces, no control characters, no
/// angle brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(DirectAddress);

impl EmailAddress {
    /// Parses an e-mail address; the domain is lower-cased.
    pub fn parse(text: &str) -> Result<EmailAddress, StoreError> {
        // The same grammar as a Direct address: one parser for both, so an
        // address the notifier writes into a header is never looser than
        // the ones the gateway accepts.
        DirectAddress::parse(text)
            .map(EmailAddress)
            .map_err(|e| StoreError::Invalid {
                what: "e-mail address",
                value: e.value().to_string(),
                reason: e.reason().to_string(),
            })
    }

    /// The address as text.
    pub fn as_string(&self) -> String {
        self.0.to_string()
    }

    /// The address as the queue holds recipients (same grammar).
    pub(crate) fn as_recipient(&self) -> &DirectAddress {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EmailAddress {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

/// Whether and where a portal user is told about new secure mail. The
/// notice goes out only when `notify` is on and `email` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// The user wants an e-mail when new secure mail arrives (on unless
    /// the user opted out).
    pub notify: bool,
    /// The user's ordinary e-mail address, if given.
    pub email: Option<EmailAddress>,
}

impl NotifySettings {
    /// Where to send a notice about new mail: the e-mail address when the
    /// user wants notices and gave one.
    pub fn notify_to(&self) -> Option<&EmailAddress> {
        self.email.as_ref().filter(|_| self.notify)
    }
}

impl Default for NotifySettings {
    /// Notices on, no e-mail address yet.
    fn default() -> Self {
        NotifySettings {
            notify: true,
            email: None,
        }
    }
}

/// A portal account as stored. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalUser {
    /// Row id.
    pub id: PortalUserId,
    /// The local address it logs in with and owns the mailbox of, spelt
    /// as the address was first added.
    pub address: DirectAddress,
    /// Notification settings.
    pub settings: NotifySettings,
    /// When it was disabled; a disabled account cannot log in.
    pub disabled_at: Option<OffsetDateTime>,
    /// When it was added.
    pub added_at: OffsetDateTime,
}

impl PortalUser {
    /// Whether the account may log in.
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_settings_send_only_when_on_and_an_address_is_given() {
        let email = EmailAddress::parse("pat@Mail.Example").unwrap();
        assert_eq!(email.to_string(), "pat@mail.example");
        let on = NotifySettings {
            notify: true,
            email: Some(email.clone()),
        };
        assert_eq!(on.notify_to(), Some(&email));
        let off = NotifySettings {
            notify: false,
            ..on.clone()
        };
        assert_eq!(off.notify_to(), None);
        assert_eq!(NotifySettings::default().notify_to(), None);
    }

    #[test]
    fn e_mail_addresses_that_could_inject_header_text_are_refused() {
        for bad in [
            "pat@mail.example\r\nBcc: x@y.example",
            "Pat <pat@mail.example>",
            "pat mail@example.org",
            "pat",
            "",
        ] {
            match EmailAddress::parse(bad) {
                Err(StoreError::Invalid { what, .. }) => assert_eq!(what, "e-mail address"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
