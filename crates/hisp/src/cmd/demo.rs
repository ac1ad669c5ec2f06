//! `hisp demo`: `hisp serve` with a demo set-up made on first start, so a
//! newcomer can send a Direct message with `swaks` and see it land.
//!
//! The data dir gets two demo domains ([`PATIENTS`] and [`CLINIC`]), a CA
//! per domain in `<data_dir>/demo-ca/<domain>`, one address per domain with
//! a certificate from its domain's CA, each CA as an anchor (both ways) of
//! the other domain, and the submission account [`ACCOUNT`], which may send
//! as [`PATIENT`]. Its password is generated and printed at the start that
//! creates it, and never again: only its hash is stored.
//!
//! It also serves the portal (`[portal] listen`, 127.0.0.1:8080 unless the
//! config says otherwise) and prints its URL at every start; the portal
//! accounts of [`PATIENT`] and [`PROVIDER`] are made with generated
//! passwords, printed once like the submission account's, and a welcome
//! message from the provider is queued to the patient exactly once
//! (`demo_portal.rs`).
//!
//! Each step is skipped when its result is already there, so an interrupted
//! first start is completed by the next one. A data dir holding other
//! domains is refused: the demo never touches a real HISP's store.
//!
//! Both domains are served by this one process, yet mail between them
//! travels the Direct way (`[smtp] seal_local_mail`, turned on unless the
//! config says otherwise): the worker discovers the recipient through the
//! built-in DNS responder, seals the message with the sender's key and
//! delivers it by the domain's `[[route]]` to this process's own backbone
//! listener, where it is decrypted, verified, judged against the anchors
//! and filed in the recipient's Inbox, as mail from another HISP would be.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_store::{
    DirectAddress, Direction, Domain, Grant, NewAnchor, NewCertificate, Store, UserName,
};

use super::demo_portal;
use crate::config::{Config, RouteConfig};

/// The patients' demo domain (a portal's).
pub const PATIENTS: &str = "patients.demo.test";
/// The providers' demo domain (a clinic's EHR).
pub const CLINIC: &str = "clinic.demo.test";
/// The demo patient, the address the demo account sends as.
pub const PATIENT: &str = "patient@patients.demo.test";
/// The demo provider.
pub const PROVIDER: &str = "provider@clinic.demo.test";
/// The demo submission account.
pub const ACCOUNT: &str = "demo";

/// Sets up the demo in the configured data dir when it is not there yet,
/// then runs `hisp serve` with the demo's routes, discovery and portal, and
/// queues the welcome message (once) as soon as it serves. `config_path`
/// is the `--config` file, named in the advice printed.
pub fn demo(mut config: Config, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(data_dir) = config.data_dir.clone() else {
        bail!(
            "no data_dir configured: `hisp demo` keeps its domains, CAs and store there; \
             run it with --config config/demo.toml"
        );
    };
    complete_config(&mut config);
    let store = crate::store::open(&config)?;
    let account_password = provision(&*store, &data_dir)?;
    let mut text = match &account_password {
        Some(password) => format!(
            "hisp demo: created {PATIENTS} and {CLINIC}, their CAs (in {}), \
             {PATIENT} and {PROVIDER}, each domain trusting the other\n\
             hisp demo: submission account: user {ACCOUNT} password: {password}\n",
            data_dir.join("demo-ca").display()
        ),
        None => format!(
            "hisp demo: demo set-up found in {}; the password of {ACCOUNT} was shown at \
             its first start\n",
            data_dir.display()
        ),
    };
    let accounts = demo_portal::accounts(&*store)?;
    text.push_str(&portal_text(&config, config_path, &accounts));
    if account_password.is_some() || accounts.iter().any(|a| a.new_password.is_some()) {
        text.push_str("hisp demo: (each password is shown once: only its hash is stored)\n");
    }
    crate::input::write_stdout(text.as_bytes())?;
    let provider = store
        .portal_user(&DirectAddress::parse(PROVIDER)?)
        .context("cannot read the demo provider's portal account")?;
    crate::cmd::serve::serve_store_then(&config, Some(store), Some(demo_portal::welcome(provider)))
}

/// What the demo says about the portal: its URL, and each portal account's
/// password when the account was made now, else where the passwords went
/// and how to set new ones.
fn portal_text(
    config: &Config,
    config_path: Option<&Path>,
    accounts: &[demo_portal::DemoAccount],
) -> String {
    let mut text = String::new();
    if let Some(url) = demo_portal::url(&config.portal) {
        text.push_str(&format!("hisp demo: portal: {url}\n"));
    }
    let (new, old): (Vec<_>, Vec<_>) = accounts.iter().partition(|a| a.new_password.is_some());
    for account in &new {
        if let Some(password) = &account.new_password {
            text.push_str(&format!(
                "hisp demo: portal account: {} password: {password}\n",
                account.address
            ));
        }
    }
    if !old.is_empty() {
        let names: Vec<String> = old.iter().map(|a| a.address.to_string()).collect();
        let config = config_path.map_or_else(String::new, |p| format!("--config {} ", p.display()));
        text.push_str(&format!(
            "hisp demo: the portal passwords of {} were shown at the first start; \
             a new one: hisp {config}portal-user passwd ADDRESS --generate\n",
            names.join(" and ")
        ));
    }
    text
}

/// Fills in what the demo needs and the config leaves out: a route for each
/// demo domain to the backbone listener, the DNS responder on 127.0.0.1:5353,
/// discovery through it, sealing of mail between the demo domains, and the
/// portal on 127.0.0.1:8080.
fn complete_config(config: &mut Config) {
    config.smtp.seal_local_mail.get_or_insert(true);
    let backbone = config.smtp.backbone_listen;
    // A wildcard listener is reached through loopback.
    let to = if backbone.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), backbone.port())
    } else {
        backbone
    };
    for domain in [PATIENTS, CLINIC] {
        if !config.routes.iter().any(|r| r.domain == domain) {
            config.routes.push(RouteConfig {
                domain: domain.to_string(),
                to,
            });
        }
    }
    config
        .portal
        .listen
        .get_or_insert(demo_portal::DEFAULT_LISTEN);
    let responder = *config
        .dns_responder
        .listen
        .get_or_insert(SocketAddr::from(([127, 0, 0, 1], 5353)));
    if config.discovery.nameservers.is_empty() {
        config.discovery.nameservers.push(responder);
    }
}

/// Makes whatever part of the demo set-up is missing; the new account's
/// password when the account was made now.
fn provision(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Option<String>> {
    let patients = Domain::parse(PATIENTS)?;
    let clinic = Domain::parse(CLINIC)?;
    let others: Vec<String> = store
        .domains()?
        .into_iter()
        .map(|d| d.domain)
        .filter(|d| *d != patients && *d != clinic)
        .map(|d| d.to_string())
        .collect();
    if !others.is_empty() {
        bail!(
            "the data dir {} holds domains that are not the demo's ({}): \
             `hisp demo` runs only on a data dir of its own",
            data_dir.display(),
            others.join(", ")
        );
    }
    let ca_root = data_dir.join("demo-ca");
    let patients_ca = ca(&ca_root, &patients)?;
    let clinic_ca = ca(&ca_root, &clinic)?;
    for (domain, own_ca, peer_ca, address) in [
        (&patients, &patients_ca, &clinic_ca, PATIENT),
        (&clinic, &clinic_ca, &patients_ca, PROVIDER),
    ] {
        if store.domain(domain).is_err() {
            store.add_domain(domain, &[])?;
        }
        let address = DirectAddress::parse(address)?;
        if store.address(&address).is_err() {
            let issued = issue(
                own_ca,
                &Binding::Address(address.to_string()),
                &IssueOptions::default(),
            )
            .with_context(|| format!("cannot issue a certificate for {address}"))?;
            let der = issued.cert.to_der().context("encoding a certificate")?;
            let cert = NewCertificate::new(&der, Some(&issued.key_pem()?))?;
            store.add_address(&address, &[cert])?;
        }
        if store.anchors(Some(domain))?.is_empty() {
            let der = peer_ca.cert().to_der().context("encoding a CA")?;
            store.add_anchors(domain, Direction::Both, &[NewAnchor::from_der(&der)?])?;
        }
    }
    let account = UserName::parse(ACCOUNT)?;
    if store.user(&account).is_ok() {
        return Ok(None);
    }
    let password = super::user::generate_password()?;
    store.add_user(&account, &password)?;
    store.grant(&account, &Grant::parse(PATIENT)?)?;
    Ok(Some(password))
}

/// The demo CA of `domain`: loaded from `<root>/<domain>`, or made there.
fn ca(root: &Path, domain: &Domain) -> anyhow::Result<CertificateAuthority> {
    let dir = root.join(domain.as_str());
    if dir.join("ca.pem").exists() {
        return CertificateAuthority::load(&dir)
            .with_context(|| format!("cannot load the demo CA in {}", dir.display()));
    }
    let ca = CertificateAuthority::create(&format!("{domain} demo CA"), &CaOptions::default())
        .context("cannot create a demo CA")?;
    ca.save(&dir)
        .with_context(|| format!("cannot save the demo CA in {}", dir.display()))?;
    Ok(ca)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_fills_in_routes_to_the_backbone_and_discovery_through_the_responder() {
        let mut c = Config::parse("[smtp]\nbackbone_listen = \"0.0.0.0:2525\"\n").unwrap();
        complete_config(&mut c);
        let routes: Vec<(String, String)> = c
            .routes
            .iter()
            .map(|r| (r.domain.clone(), r.to.to_string()))
            .collect();
        assert_eq!(
            routes,
            [
                (PATIENTS.to_string(), "127.0.0.1:2525".to_string()),
                (CLINIC.to_string(), "127.0.0.1:2525".to_string())
            ]
        );
        assert_eq!(
            c.dns_responder.listen.unwrap().to_string(),
            "127.0.0.1:5353"
        );
        assert_eq!(c.discovery.nameservers[0].to_string(), "127.0.0.1:5353");
        assert!(c.smtp.seal_local(), "demo mail is sealed");
        assert_eq!(c.portal.listen.unwrap().to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn a_configured_portal_listener_is_kept() {
        let mut c = Config::parse("[portal]\nlisten = \"127.0.0.1:9090\"\n").unwrap();
        complete_config(&mut c);
        assert_eq!(c.portal.listen.unwrap().to_string(), "127.0.0.1:9090");
    }

    #[test]
    fn configured_routes_and_nameservers_are_kept() {
        let mut c = Config::parse(
            "[discovery]\nnameservers = [\"127.0.0.1:53\"]\n\
             [[route]]\ndomain = \"clinic.demo.test\"\nto = \"127.0.0.1:25\"\n",
        )
        .unwrap();
        complete_config(&mut c);
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].to.to_string(), "127.0.0.1:25");
        assert_eq!(c.discovery.nameservers.len(), 1);
        let mut c = Config::parse("[smtp]\nseal_local_mail = false\n").unwrap();
        complete_config(&mut c);
        assert!(!c.smtp.seal_local(), "an explicit false is kept");
    }

    #[test]
    fn shipped_demo_config_parses_with_the_newcomer_ports() {
        let c = Config::parse(include_str!("../../../../config/demo.toml")).unwrap();
        assert_eq!(c.smtp.submission_listen.to_string(), "127.0.0.1:2587");
        assert_eq!(c.smtp.backbone_listen.to_string(), "127.0.0.1:2525");
        assert_eq!(
            c.dns_responder.listen.unwrap().to_string(),
            "127.0.0.1:5353"
        );
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.smtp.seal_local_mail, Some(true));
        assert_eq!(c.portal.listen.unwrap().to_string(), "127.0.0.1:8080");
    }
}
