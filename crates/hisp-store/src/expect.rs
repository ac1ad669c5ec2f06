//! What tracking expects of an outbound message, following the
//! Implementation Guide for Delivery Notification in Direct 1.0: ordinary
//! mail requests MDNs and is failed (with a DSN to its sender) when they do
//! not come in time; the MDNs and DSNs hisp sends itself expect nothing back.

use std::fmt;

/// What tracking expects after a message is relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expectation {
    /// Ordinary mail: a `processed` MDN is expected, and a `dispatched` one
    /// too when `final_delivery` was requested. A recipient without them in
    /// time is failed and its sender gets a DSN.
    Mail {
        /// Whether the sender asked for final delivery notification
        /// (`X-DIRECT-FINAL-DESTINATION-DELIVERY`), so only a `dispatched`
        /// MDN completes a recipient.
        final_delivery: bool,
    },
    /// An MDN or DSN sent by hisp: tracked until relayed only. It expects no
    /// MDN, never times out, and its failure causes no DSN.
    Notification,
    /// A plain e-mail telling a portal user that new secure mail waits
    /// (issue 11 item 9): not sealed, relayed through the `[notify]` smart
    /// host to the user's ordinary address, tracked until relayed only, like
    /// a [`Notification`](Expectation::Notification).
    PortalNotice,
}

impl Expectation {
    /// Every expectation.
    pub const ALL: [Expectation; 4] = [
        Expectation::Mail {
            final_delivery: false,
        },
        Expectation::Mail {
            final_delivery: true,
        },
        Expectation::Notification,
        Expectation::PortalNotice,
    ];

    /// `mail`, `mail-final-delivery`, `notification` or `portal-notice`:
    /// the name in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Mail {
                final_delivery: false,
            } => "mail",
            Expectation::Mail {
                final_delivery: true,
            } => "mail-final-delivery",
            Expectation::Notification => "notification",
            Expectation::PortalNotice => "portal-notice",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Expectation> {
        Expectation::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether MDNs are expected (and a missing one ends in a DSN).
    pub fn expects_mdn(self) -> bool {
        matches!(self, Expectation::Mail { .. })
    }
}

impl Default for Expectation {
    /// What [`Store::enqueue`](crate::Store::enqueue) stores: ordinary mail
    /// without final delivery notification.
    fn default() -> Expectation {
        Expectation::Mail {
            final_delivery: false,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_differ() {
        for e in Expectation::ALL {
            assert_eq!(Expectation::from_name(e.as_str()), Some(e));
        }
        assert_eq!(Expectation::from_name("Mail"), None);
        assert!(!Expectation::Notification.expects_mdn());
        assert!(!Expectation::PortalNotice.expects_mdn());
        assert!(Expectation::default().expects_mdn());
    }
}
