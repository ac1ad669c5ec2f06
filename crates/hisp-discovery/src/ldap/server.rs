//! Asking one LDAP server (RFC 4511) for the certificates of one `mail` value.

use std::net::SocketAddr;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope};

use super::entry::{self, USER_CERTIFICATE, USER_SMIME_CERTIFICATE};
use super::error::LdapError;
use super::locate::target_addresses;
use super::srv::SrvTarget;
use super::{LdapSettings, LDAP_CERT_TTL};
use crate::types::{FoundCert, Source};
use hickory_resolver::TokioResolver;

/// RFC 4511 Appendix A result codes the lookup reads.
const SUCCESS: u32 = 0;
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const REFERRAL: u32 = 10;
const NO_SUCH_OBJECT: u32 = 32;

/// SearchResultEntry's tag, [APPLICATION 4] (RFC 4511 §4.5.2).
const SEARCH_RESULT_ENTRY: u64 = 4;

/// The attributes asked for: the certificate attribute both with and
/// without `;binary` (RFC 4523 §2.1 requires the option; some servers answer
/// only without it), and the S/MIME one of RFC 2798.
const CERT_ATTRIBUTES: [&str; 3] = [
    "userCertificate;binary",
    USER_CERTIFICATE,
    USER_SMIME_CERTIFICATE,
];

/// What the root DSE is read for (RFC 4512 §5.1.2).
const NAMING_CONTEXTS: &str = "namingContexts";

/// Asks the server behind one SRV target. `Ok` means the server answered:
/// the certificates of the matching entries, or an empty list when it holds
/// none. `Err` means it could not be asked, and the next server may be tried.
pub(crate) async fn ask(
    resolver: &TokioResolver,
    target: &SrvTarget,
    filter: &str,
    settings: &LdapSettings,
) -> Result<Vec<FoundCert>, LdapError> {
    let server = target.to_string();
    let addresses = target_addresses(resolver, target).await?;
    let limit = settings.server_timeout;
    let asked = async {
        let mut ldap = connect(&server, &addresses, settings).await?;
        let found = search_server(&mut ldap, &server, filter, settings).await;
        if let Err(e) = ldap.unbind().await {
            tracing::debug!(%server, error = %e, "LDAP unbind failed");
        }
        found
    };
    match tokio::time::timeout(limit, asked).await {
        Ok(result) => result,
        Err(_) => Err(LdapError::Timeout { server, limit }),
    }
}

/// Opens a connection to the first address that accepts one.
async fn connect(
    server: &str,
    addresses: &[SocketAddr],
    settings: &LdapSettings,
) -> Result<Ldap, LdapError> {
    let mut last_error = None;
    for address in addresses {
        let url = format!("ldap://{address}");
        let conn_settings = LdapConnSettings::new().set_conn_timeout(settings.connect_timeout);
        match LdapConnAsync::with_settings(conn_settings, &url).await {
            Ok((conn, ldap)) => {
                ldap3::drive!(conn);
                tracing::debug!(%server, %address, "connected to LDAP server");
                return Ok(ldap);
            }
            Err(e) => {
                tracing::debug!(%server, %address, error = %e, "LDAP connection failed");
                last_error = Some(e);
            }
        }
    }
    Err(match last_error {
        Some(source) => LdapError::Connect {
            server: server.to_string(),
            source: Box::new(source),
        },
        None => LdapError::NoAddresses {
            server: server.to_string(),
        },
    })
}

/// Anonymous bind, root DSE, then the search below every naming context.
async fn search_server(
    ldap: &mut Ldap,
    server: &str,
    filter: &str,
    settings: &LdapSettings,
) -> Result<Vec<FoundCert>, LdapError> {
    let timeout = settings.operation_timeout;
    // Certificate Discovery for Direct: directories are searched anonymously.
    let bind = ldap
        .with_timeout(timeout)
        .simple_bind("", "")
        .await
        .map_err(protocol(server, "anonymous bind"))?;
    if bind.rc != SUCCESS {
        return Err(refused(server, "anonymous bind", bind.rc, bind.text));
    }

    let bases = naming_contexts(ldap, server, timeout).await?;
    if bases.is_empty() {
        tracing::info!(%server, "LDAP server publishes no naming contexts");
    }
    let mut found: Vec<FoundCert> = Vec::new();
    for base in &bases {
        let result = ldap
            .with_timeout(timeout)
            .search(base, Scope::Subtree, filter, CERT_ATTRIBUTES)
            .await
            .map_err(protocol(server, "search"))?;
        match result.1.rc {
            SUCCESS => {}
            NO_SUCH_OBJECT | REFERRAL => {
                tracing::debug!(%server, %base, rc = result.1.rc, "nothing below this base");
                continue;
            }
            SIZE_LIMIT_EXCEEDED => {
                tracing::warn!(%server, %base, "size limit exceeded; using the entries returned");
            }
            rc => return Err(refused(server, "search", rc, result.1.text)),
        }
        for cert in entries_to_certs(server, result.0) {
            if !found.iter().any(|f| f.der == cert.der) {
                found.push(cert);
            }
        }
    }
    Ok(found)
}

/// The naming contexts listed in the root DSE (RFC 4512 §5.1.2).
async fn naming_contexts(
    ldap: &mut Ldap,
    server: &str,
    timeout: std::time::Duration,
) -> Result<Vec<String>, LdapError> {
    let result = ldap
        .with_timeout(timeout)
        .search("", Scope::Base, "(objectClass=*)", [NAMING_CONTEXTS])
        .await
        .map_err(protocol(server, "root DSE read"))?;
    if result.1.rc != SUCCESS {
        return Err(refused(server, "root DSE read", result.1.rc, result.1.text));
    }
    let mut bases = Vec::new();
    for raw in result.0 {
        let Some(root) = parse(server, raw) else {
            continue;
        };
        for attribute in root.attributes.iter().filter(|a| a.is(NAMING_CONTEXTS)) {
            for value in &attribute.values {
                match String::from_utf8(value.clone()) {
                    Ok(base) => bases.push(base),
                    Err(_) => tracing::warn!(%server, "namingContexts value is not UTF-8"),
                }
            }
        }
    }
    Ok(bases)
}

fn entries_to_certs(server: &str, entries: Vec<ResultEntry>) -> Vec<FoundCert> {
    let mut certs = Vec::new();
    for raw in entries {
        let Some(entry) = parse(server, raw) else {
            continue;
        };
        let ders = entry::certificates(&entry);
        tracing::debug!(%server, dn = %entry.dn, certificates = ders.len(), "matching entry");
        certs.extend(ders.into_iter().map(|der| FoundCert {
            source: Source::Ldap,
            owner: entry.dn.clone(),
            der,
            ttl: LDAP_CERT_TTL,
        }));
    }
    certs
}

/// Reads a SearchResultEntry; references and malformed entries are skipped.
fn parse(server: &str, raw: ResultEntry) -> Option<entry::RawEntry> {
    if raw.0.id != SEARCH_RESULT_ENTRY {
        // A SearchResultReference: continuation references are not chased.
        tracing::debug!(%server, "ignoring a search result reference");
        return None;
    }
    match entry::parse_entry(raw.0) {
        Ok(entry) => Some(entry),
        Err(e) => {
            tracing::warn!(%server, error = %e, "skipping an LDAP entry");
            None
        }
    }
}

fn protocol(server: &str, operation: &'static str) -> impl FnOnce(ldap3::LdapError) -> LdapError {
    let server = server.to_string();
    move |source| LdapError::Protocol {
        server,
        operation,
        source: Box::new(source),
    }
}

fn refused(server: &str, operation: &'static str, code: u32, text: String) -> LdapError {
    LdapError::Refused {
        server: server.to_string(),
        operation,
        code,
        text,
    }
}
