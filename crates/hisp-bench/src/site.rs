//! One HISP of the benchmark: its directory, configuration and set-up,
//! made with the `hisp` command line as an administrator would.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context};

use crate::pg;
use crate::watch::StoreAt;

/// The file, in a site's directory, holding its PostgreSQL password.
const PASSWORD_FILE: &str = "store-password";

/// A HISP's domain, its one address, where it listens and where it lives.
pub struct Site {
    /// The site's directory: `hisp.toml`, `data/` (store, CA), `certs/`.
    pub dir: PathBuf,
    /// The local domain.
    pub domain: &'static str,
    /// The one address with a certificate.
    pub address: &'static str,
    /// The submission listener (AUTH).
    pub submission: SocketAddr,
    /// The backbone listener (other HISPs).
    pub backbone: SocketAddr,
    /// The built-in DNS responder (UDP and TCP).
    pub dns: SocketAddr,
    /// Its store: SQLite under the data directory, or a PostgreSQL database
    /// ([`Site::use_postgres`]).
    pub store: StoreAt,
}

impl Site {
    /// A site under `dir` (created) with three free loopback ports.
    pub fn new(dir: PathBuf, domain: &'static str, address: &'static str) -> anyhow::Result<Site> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ports = free_ports(3);
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Ok(Site {
            store: StoreAt::Sqlite(dir.join("data/hisp.db")),
            dir,
            domain,
            address,
            submission: at(ports[0]),
            backbone: at(ports[1]),
            dns: at(ports[2]),
        })
    }

    /// `hisp.toml`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("hisp.toml")
    }

    /// Puts the site's store in `db`: its password goes into the site's
    /// `store-password` file (0600), which [`Site::write_config`] names.
    pub fn use_postgres(&mut self, db: pg::Database) -> anyhow::Result<()> {
        db.write_password_file(&self.dir.join(PASSWORD_FILE))?;
        self.store = StoreAt::Postgres(db);
        Ok(())
    }

    /// The site's CA certificate (made by `hisp cert ca`).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("data/ca/ca.pem")
    }

    /// The address's certificate (made by `hisp cert issue`).
    pub fn cert_pem(&self) -> PathBuf {
        self.dir.join("certs/cert.pem")
    }

    /// The address's private key.
    pub fn key_pem(&self) -> PathBuf {
        self.dir.join("certs/key.pem")
    }

    /// Writes `hisp.toml`: the listeners, discovery through `peer`'s DNS
    /// responder, a `[[route]]` to `peer`'s backbone, this site's own DNS
    /// responder, and `max_message_size` when given.
    pub fn write_config(&self, peer: &Site, max_message_size: Option<usize>) -> anyhow::Result<()> {
        let size =
            max_message_size.map_or_else(String::new, |n| format!("max_message_size = {n}\n"));
        let text = format!(
            "data_dir = \"data\"\n\
             [log]\nlevel = \"info\"\n\
             [smtp]\nsubmission_listen = \"{}\"\nbackbone_listen = \"{}\"\nhostname = \"hisp.{}\"\n{size}\
             [discovery]\nnameservers = [\"{}\"]\n\
             [dns_responder]\nlisten = \"{}\"\nmail_ip = \"127.0.0.1\"\n\
             [[route]]\ndomain = \"{}\"\nto = \"{}\"\n{}",
            self.submission,
            self.backbone,
            self.domain,
            peer.dns,
            self.dns,
            peer.domain,
            peer.backbone,
            self.store_section(),
        );
        std::fs::write(self.config(), text).context("writing hisp.toml")
    }

    /// The `[store]` section: none for SQLite (the default, under
    /// `data_dir`); for PostgreSQL the database's URL, the password file
    /// (relative to the config's directory) and the site's domain as the
    /// instance's name.
    fn store_section(&self) -> String {
        match &self.store {
            StoreAt::Sqlite(_) => String::new(),
            StoreAt::Postgres(db) => format!(
                "[store]\nurl = \"{}\"\npassword_file = \"{PASSWORD_FILE}\"\ninstance = \"{}\"\n",
                db.url(),
                self.domain
            ),
        }
    }

    /// Makes the site's CA (`hisp cert ca`).
    pub fn make_ca(&self, hisp: &Path) -> anyhow::Result<()> {
        let cn = format!("{} CA", self.domain);
        self.run(hisp, &["cert", "ca", "--cn", &cn], None)
    }

    /// The domain, the address with a certificate from the site's CA,
    /// `peer_ca` as an anchor of the domain, and, with `account`, a
    /// submission account that may send as the address.
    pub fn provision(
        &self,
        hisp: &Path,
        peer_ca: &Path,
        account: Option<(&str, &str)>,
    ) -> anyhow::Result<()> {
        self.run(hisp, &["domain", "add", self.domain], None)?;
        let certs = self.dir.join("certs");
        let out = certs.to_string_lossy();
        self.run(
            hisp,
            &["cert", "issue", "--address", self.address, "--out", &out],
            None,
        )?;
        let (cert, key) = (self.cert_pem(), self.key_pem());
        self.run(
            hisp,
            &[
                "address",
                "add",
                self.address,
                "--cert",
                &cert.to_string_lossy(),
                "--key",
                &key.to_string_lossy(),
            ],
            None,
        )?;
        self.run(
            hisp,
            &["anchor", "add", self.domain, &peer_ca.to_string_lossy()],
            None,
        )?;
        if let Some((name, password)) = account {
            let stdin = format!("{password}\n");
            self.run(
                hisp,
                &["user", "add", name, "--password-stdin"],
                Some(stdin.as_bytes()),
            )?;
            self.run(hisp, &["user", "grant", name, self.address], None)?;
        }
        Ok(())
    }

    /// Runs `hisp --config hisp.toml ARGS`, failing with its output unless it succeeds.
    fn run(&self, hisp: &Path, args: &[&str], stdin: Option<&[u8]>) -> anyhow::Result<()> {
        let mut cmd = Command::new(hisp);
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(&self.dir)
            // The password is the file's: a variable of the caller's would win.
            .env_remove("HISP_STORE_PASSWORD");
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", hisp.display()))?;
        if let (Some(bytes), Some(mut input)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            input.write_all(bytes).context("writing to hisp's stdin")?;
        }
        let out = child.wait_with_output().context("waiting for hisp")?;
        if !out.status.success() {
            bail!(
                "hisp {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// `n` distinct loopback ports free for both TCP and UDP (the DNS responder
/// takes both), held until all are chosen so none repeats. They are below
/// the kernel's ephemeral range (32768 up on Linux), so no outgoing
/// connection takes one between now and `hisp serve` binding it; each
/// process starts at its own offset.
pub fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id().wrapping_mul(7919)) % 12_000;
    let mut held = Vec::new();
    while held.len() < n {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(20_000 + (base + step) % 12_000).expect("below 32000");
        let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, udp, tcp));
        }
    }
    held.into_iter().map(|(port, _, _)| port).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn sites(dir: &Path) -> (Site, Site) {
        let a = Site::new(dir.join("sender"), "a.example", "sender@a.example").unwrap();
        let b = Site::new(dir.join("receiver"), "b.example", "provider@b.example").unwrap();
        (a, b)
    }

    fn config(site: &Site) -> (String, toml::Table) {
        let text = std::fs::read_to_string(site.config()).unwrap();
        let table = text.parse::<toml::Table>().expect("hisp.toml is TOML");
        (text, table)
    }

    #[test]
    fn an_sqlite_site_has_no_store_section() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = sites(dir.path());
        a.write_config(&b, None).unwrap();
        let (_, table) = config(&a);
        assert!(table.get("store").is_none(), "{table:#?}");
        assert_eq!(table["data_dir"].as_str(), Some("data"));
    }

    #[test]
    fn a_postgres_site_names_url_password_file_and_instance_and_never_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let (a, mut b) = sites(dir.path());
        let db = pg::Database {
            name: "hisp_receiver".into(),
            password: "fedcba9876543210".into(),
            port: 40000,
        };
        b.use_postgres(db.clone()).unwrap();
        b.write_config(&a, Some(40 << 20)).unwrap();
        let (text, table) = config(&b);
        let store = table["store"].as_table().expect("a [store] section");
        assert_eq!(store["url"].as_str(), Some(db.url().as_str()));
        assert_eq!(store["password_file"].as_str(), Some("store-password"));
        assert_eq!(store["instance"].as_str(), Some("b.example"));
        assert!(!text.contains(&db.password), "{text}");
        // The rest of the site is as with SQLite.
        assert_eq!(
            table["smtp"]["max_message_size"].as_integer(),
            Some(40 << 20)
        );
        assert_eq!(table["route"][0]["domain"].as_str(), Some("a.example"));
        let file = b.dir.join("store-password");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().lines().next(),
            Some(db.password.as_str())
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
