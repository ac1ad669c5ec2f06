//! Sealing for the backbone: one message per destination domain, signed by
//! the sender and encrypted to every usable certificate of every recipient
//! in that domain (Applicability Statement 1.3; RFC 5652 §6: one
//! RecipientInfo per certificate).

use hisp_smime::{seal, SealOptions, Signer, SmimeError};
use openssl::x509::X509;

/// The recipients of one domain and the certificates to encrypt to.
#[derive(Clone)]
pub struct Destination {
    /// The destination domain, lower case.
    pub domain: String,
    /// Its recipients, as given.
    pub recipients: Vec<String>,
    /// Every usable certificate of every recipient (duplicates removed).
    pub certs: Vec<X509>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("domain", &self.domain)
            .field("recipients", &self.recipients)
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// Groups recipients (each with its discovered usable certificates) by
/// domain, in the order the domains first appear.
pub fn destinations(recipients: &[(String, Vec<X509>)]) -> Vec<Destination> {
    let mut out: Vec<Destination> = Vec::new();
    for (address, certs) in recipients {
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let index = match out.iter().position(|d| d.domain == domain) {
            Some(i) => i,
            None => {
                out.push(Destination {
                    domain,
                    recipients: Vec::new(),
                    certs: Vec::new(),
                });
                out.len() - 1
            }
        };
        let dest = &mut out[index];
        dest.recipients.push(address.clone());
        for cert in certs {
            let der = cert.to_der().unwrap_or_default();
            if !dest
                .certs
                .iter()
                .any(|c| c.to_der().map(|d| d == der).unwrap_or(false))
            {
                dest.certs.push(cert.clone());
            }
        }
    }
    out
}

/// Seals `message` for one destination.
pub fn seal_for(
    message: &[u8],
    signer: &Signer,
    destination: &Destination,
    options: &SealOptions,
) -> Result<Vec<u8>, SmimeError> {
    seal(message, signer, &destination.certs, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
    use hisp_smime::{open, KeyPair, OpenOptions};

    #[test]
    fn one_message_per_domain_encrypted_to_all_its_recipients_certificates() {
        let ca = CertificateAuthority::create("Out CA", &CaOptions::default()).unwrap();
        let leaf = |a: &str| {
            let i = issue(&ca, &Binding::Address(a.into()), &IssueOptions::default()).unwrap();
            KeyPair::new(i.cert, i.key).unwrap()
        };
        let alice = leaf("alice@a.example");
        let bob = leaf("bob@b.example");
        let bob2 = leaf("bob@b.example");
        let carol = leaf("carol@B.example");
        let dave = leaf("dave@d.example");
        let dests = destinations(&[
            (
                "bob@b.example".into(),
                vec![bob.cert.clone(), bob2.cert.clone()],
            ),
            ("dave@d.example".into(), vec![dave.cert.clone()]),
            (
                "carol@B.example".into(),
                vec![carol.cert.clone(), bob.cert.clone()],
            ),
        ]);
        assert_eq!(dests.len(), 2);
        assert_eq!(dests[0].domain, "b.example");
        assert_eq!(
            dests[0].recipients,
            vec!["bob@b.example", "carol@B.example"]
        );
        assert_eq!(dests[0].certs.len(), 3, "duplicates are removed");
        let msg = b"From: alice@a.example\r\nTo: bob@b.example, carol@B.example\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <o@a.example>\r\n\r\nhi\r\n";
        let sealed =
            seal_for(msg, &Signer::new(alice), &dests[0], &SealOptions::default()).unwrap();
        for keys in [&bob, &bob2, &carol] {
            let opened = open(
                &sealed,
                &OpenOptions {
                    keys: std::slice::from_ref(keys),
                },
            )
            .unwrap();
            assert_eq!(opened.message, msg);
        }
        // d.example's recipient cannot read b.example's copy.
        assert!(open(
            &sealed,
            &OpenOptions {
                keys: std::slice::from_ref(&dave),
            },
        )
        .is_err());
    }
}
