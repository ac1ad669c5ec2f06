//! The portal part of `hisp demo`: the portal accounts of the demo patient
//! and the demo provider (passwords generated and shown once, hashed as
//! `hisp portal-user` hashes them), the portal's URL, and the welcome
//! message from the provider to the patient.
//!
//! The welcome message takes the path of any message sent through the
//! portal (`PortalSender`: composed with mail-builder, the recipient
//! discovered and judged, queued), then the demo's Direct path (sealed,
//! relayed to the own backbone listener, opened, judged, filed in the
//! patient's Inbox), so the patient's Inbox shows one unread message and
//! the patient has a provider to write to. It is queued with
//! `PortalSender::send_once` under [`WELCOME_MARK`]: the mark is written in
//! the enqueue's transaction, so however often the first start is
//! interrupted, the welcome is queued exactly once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context;
use hisp_gateway::compose::Draft;
use hisp_gateway::server::OnStart;
use hisp_gateway::PortalSender;
use hisp_store::{DirectAddress, NotifySettings, PortalUser, Store};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::demo::{PATIENT, PROVIDER};
use crate::config::PortalConfig;

/// Where the demo serves the portal unless the config says otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The name the welcome message is queued under (`Store::enqueue_once`).
pub const WELCOME_MARK: &str = "demo-welcome";

/// The welcome message's Subject.
pub const WELCOME_SUBJECT: &str = "Welcome to your secure messages";

/// The provider's display name in the welcome message's From.
const PROVIDER_NAME: &str = "Demo Provider";

/// The welcome message's text: short, says it is a demo, explains Reply.
const WELCOME_TEXT: &str = "\
Hello,

welcome! This is a demo message from your provider at the demo clinic. It
came to you as Direct secure mail: signed and encrypted by the clinic's
side, then opened and checked by yours, as it is between two HISPs.

To answer, open this message and choose Reply. Your reply travels back the
same way; under Sent Messages, its Direct Status shows when it has been
delivered to the clinic's system.

Best wishes,
Demo Provider
";

/// A demo portal account: its address and, when it was made now, its
/// generated password (shown once; only its hash is stored).
pub struct DemoAccount {
    /// The account's address.
    pub address: DirectAddress,
    /// The generated password, when the account was made by this start.
    pub new_password: Option<String>,
}

/// Makes the portal accounts of [`PATIENT`] and [`PROVIDER`] that are
/// missing, each with a generated password, as `hisp portal-user add
/// --generate` does (notices on, no e-mail address yet). An account already
/// there is left as it is.
pub fn accounts(store: &dyn Store) -> anyhow::Result<Vec<DemoAccount>> {
    let mut accounts = Vec::new();
    for address in [PATIENT, PROVIDER] {
        let address = DirectAddress::parse(address)?;
        let new_password = match store.portal_user(&address) {
            Ok(_) => None,
            Err(e) if e.is_not_found() => {
                let password = super::user::generate_password()?;
                let settings = NotifySettings {
                    notify: true,
                    email: None,
                };
                store
                    .add_portal_user(&address, &password, &settings)
                    .with_context(|| format!("cannot add the portal account of {address}"))?;
                info!(%address, "added demo portal account");
                Some(password)
            }
            Err(e) => return Err(e.into()),
        };
        accounts.push(DemoAccount {
            address,
            new_password,
        });
    }
    Ok(accounts)
}

/// The portal's URL as a browser on this machine reaches it: a wildcard
/// listener is reached through loopback. `None` when no portal is served.
pub fn url(portal: &PortalConfig) -> Option<String> {
    let listen = portal.listen?;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if portal.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    Some(format!(
        "{scheme}://{}/",
        SocketAddr::new(ip, listen.port())
    ))
}

/// The work `hisp serve` does for the demo once the DNS responder answers:
/// the welcome message from `provider` (its portal account) to the patient,
/// queued once.
pub fn welcome(provider: PortalUser) -> OnStart {
    Box::new(move |sender| Box::pin(async move { send_welcome(&sender, &provider).await }))
}

/// Queues the welcome message unless it was queued at an earlier start.
/// A failure is logged and the demo serves on; the next start tries again.
async fn send_welcome(sender: &PortalSender, provider: &PortalUser) {
    let draft = Draft {
        to: vec![PATIENT.to_string()],
        subject: WELCOME_SUBJECT.to_string(),
        text: WELCOME_TEXT.to_string(),
        attachments: Vec::new(),
    };
    let now = OffsetDateTime::now_utc();
    match sender
        .send_once(WELCOME_MARK, provider, Some(PROVIDER_NAME), draft, now)
        .await
    {
        Ok(Some(queued)) => {
            info!(msg_id = %queued.message_id, from = %provider.address, rcpt = PATIENT, "demo welcome message queued");
            let line = format!(
                "hisp demo: queued a welcome message from {PROVIDER} to {PATIENT}: \
                 log in to the portal as the patient to read and answer it\n"
            );
            if let Err(e) = crate::input::write_stdout(line.as_bytes()) {
                warn!(error = %e, "cannot say that the welcome message was queued");
            }
        }
        Ok(None) => info!("demo welcome message queued at an earlier start"),
        Err(e) => warn!(
            error = %e,
            "the demo welcome message was not sent; the next start tries again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(text: &str) -> PortalConfig {
        crate::config::Config::parse(text).unwrap().portal
    }

    #[test]
    fn the_url_names_the_listener_and_loopback_for_a_wildcard() {
        assert_eq!(url(&portal("")), None);
        assert_eq!(
            url(&portal("[portal]\nlisten = \"127.0.0.1:8080\"\n")).as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(
            url(&portal(
                "[portal]\nlisten = \"0.0.0.0:8443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
            ))
            .as_deref(),
            Some("https://127.0.0.1:8443/")
        );
        assert_eq!(
            url(&portal("[portal]\nlisten = \"[::]:8080\"\n")).as_deref(),
            Some("http://[::1]:8080/")
        );
    }

    #[test]
    fn the_welcome_text_says_it_is_a_demo_and_explains_reply() {
        assert!(WELCOME_TEXT.contains("demo message"));
        assert!(WELCOME_TEXT.contains("Reply"));
        assert!(WELCOME_TEXT.lines().count() < 15, "short");
    }
}
