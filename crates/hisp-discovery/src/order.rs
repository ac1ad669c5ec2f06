//! The order in which sources decide (Certificate Discovery for Direct, as
//! the Direct Certificate Discovery Tool checks it): DNS address-bound, DNS
//! domain-bound, LDAP address-bound, LDAP domain-bound. The first source
//! that returns any certificate decides. When none of its certificates is
//! usable the answer is "no usable certificate", with no fall-back to the
//! next source; within its set, every usable certificate is used and the
//! others are dropped.

use hisp_trust::{
    judge, Anchors, Binding, Intermediates, Purpose, Question, Remote, RevocationMode,
};
use openssl::x509::X509;

use crate::dns::{owner_name, DnsDiscovery};
use crate::ldap::LdapDiscovery;
use crate::types::{FoundCert, Query, Source, SourceResult};

/// The sources to ask, in the order of the specification.
pub struct Discoverer {
    dns: DnsDiscovery,
    ldap: LdapDiscovery,
}

/// What a judgement of the found certificates needs.
pub struct TrustContext<'a> {
    /// Anchors a recipient certificate must chain to (the local domain's
    /// outgoing anchors) as they are now.
    pub anchors: &'a Anchors,
    /// Intermediates kept locally.
    pub intermediates: &'a [X509],
    /// Validation time, Unix seconds.
    pub at: i64,
    /// What to do when a CRL cannot be had.
    pub revocation: RevocationMode,
    /// Network access for caIssuers and CRLs, with their caches.
    pub remote: &'a Remote,
}

/// One certificate found, with the judgement of it.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Where it came from.
    pub found: FoundCert,
    /// Which lookup found it.
    pub query: Query,
    /// The certificate, when its DER decoded.
    pub cert: Option<X509>,
    /// How it is bound to the address.
    pub binding: Binding,
    /// Usable for encrypting to the address.
    pub usable: bool,
    /// Not usable now, but perhaps later (a CRL or issuer out of reach).
    pub temporary: bool,
    /// Why not usable, or what made it usable.
    pub reason: String,
}

/// The answer for one address.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The address asked about.
    pub address: String,
    /// At least one usable, trusted certificate exists.
    pub usable: bool,
    /// Nothing can be said now (a source did not answer, a CRL was out of
    /// reach): ask again later. Never "no certificate".
    pub temporary: bool,
    /// The verdict in words.
    pub reason: String,
    /// Every certificate of the deciding source, usable or not.
    pub certificates: Vec<Judged>,
}

impl Discovery {
    /// The usable certificates (to encrypt to).
    pub fn usable_certs(&self) -> Vec<X509> {
        self.certificates
            .iter()
            .filter(|j| j.usable)
            .filter_map(|j| j.cert.clone())
            .collect()
    }
}

impl Discoverer {
    /// Sources built by the caller (name servers, timeouts).
    pub fn new(dns: DnsDiscovery, ldap: LdapDiscovery) -> Self {
        Discoverer { dns, ldap }
    }

    /// Finds and judges the certificates of `address` (`user@domain`).
    pub async fn discover(&self, address: &str, trust: &TrustContext<'_>) -> Discovery {
        let address = address.trim().to_string();
        let Some((_, domain)) = address.rsplit_once('@') else {
            return refused(
                &address,
                format!("{address} is not a Direct address (user@domain)"),
            );
        };
        let domain = domain.to_ascii_lowercase();
        let steps = [
            (Source::Dns, Query::Address),
            (Source::Dns, Query::Domain),
            (Source::Ldap, Query::Address),
            (Source::Ldap, Query::Domain),
        ];
        let mut looked = Vec::new();
        for (source, query) in steps {
            let result = match (source, query) {
                (Source::Dns, _) => match owner_name(&address, query) {
                    Ok(name) => self.dns.lookup(&name).await,
                    Err(e) => return refused(&address, e.to_string()),
                },
                (Source::Ldap, Query::Address) => self.ldap.lookup(&domain, &address).await,
                (Source::Ldap, Query::Domain) => self.ldap.lookup(&domain, &domain).await,
            };
            let what = format!("{source} {}", query_name(query));
            match result {
                SourceResult::NotFound => looked.push(what),
                SourceResult::Temporary(why) => {
                    // A source that could not be asked decides nothing: a
                    // later source's answer might be the wrong certificate.
                    return Discovery {
                        address: address.clone(),
                        usable: false,
                        temporary: true,
                        reason: format!("temporary failure at {what}: {why}"),
                        certificates: Vec::new(),
                    };
                }
                SourceResult::Found(found) => {
                    return judge_off_async(|| decide(&address, query, &what, found, trust));
                }
            }
        }
        refused(
            &address,
            format!(
                "no certificate for {address} in {} (not a Direct address)",
                looked.join(", ")
            ),
        )
    }
}

/// Runs `judge` (path validation, which may fetch CRLs and issuers over
/// HTTP with a blocking client) so that it does not hold up other tasks: on
/// a multi-threaded tokio runtime the worker thread hands its tasks to
/// another first (`block_in_place`); elsewhere (a current-thread runtime in
/// tests, no runtime) it just runs.
fn judge_off_async<T>(judge: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(judge)
        }
        _ => judge(),
    }
}

fn query_name(query: Query) -> &'static str {
    match query {
        Query::Address => "address-bound",
        Query::Domain => "domain-bound",
    }
}

fn refused(address: &str, reason: String) -> Discovery {
    Discovery {
        address: address.to_string(),
        usable: false,
        temporary: false,
        reason,
        certificates: Vec::new(),
    }
}

/// The deciding source's certificates, each judged for encryption to `address`.
fn decide(
    address: &str,
    query: Query,
    what: &str,
    found: Vec<FoundCert>,
    trust: &TrustContext<'_>,
) -> Discovery {
    let mut certificates = Vec::with_capacity(found.len());
    for f in found {
        let judged = match X509::from_der(&f.der) {
            Ok(cert) => {
                let verdict = judge(
                    &Question {
                        cert: &cert,
                        purpose: Purpose::Encrypt,
                        expected: address,
                        anchors: trust.anchors,
                        intermediates: Intermediates {
                            message: &[],
                            local: trust.intermediates,
                        },
                        at: trust.at,
                        revocation: trust.revocation,
                    },
                    trust.remote,
                );
                Judged {
                    found: f,
                    query,
                    cert: Some(cert),
                    binding: verdict.binding,
                    usable: verdict.usable,
                    temporary: verdict.temporary,
                    reason: verdict.reason,
                }
            }
            Err(e) => Judged {
                reason: format!("the certificate at {} does not decode: {e}", f.owner),
                found: f,
                query,
                cert: None,
                binding: Binding::None,
                usable: false,
                temporary: false,
            },
        };
        certificates.push(judged);
    }
    let usable = certificates.iter().filter(|c| c.usable).count();
    let temporary = usable == 0 && certificates.iter().any(|c| c.temporary);
    let reason = if usable > 0 {
        format!(
            "{usable} usable certificate(s) of {} found in {what}",
            certificates.len()
        )
    } else {
        let why: Vec<&str> = certificates.iter().map(|c| c.reason.as_str()).collect();
        format!(
            "no usable certificate: {} found in {what}, none usable ({}); the next source is not asked",
            certificates.len(),
            why.join("; ")
        )
    };
    Discovery {
        address: address.to_string(),
        usable: usable > 0,
        temporary,
        reason,
        certificates,
    }
}
