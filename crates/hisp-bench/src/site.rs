//! One HISP of the benchmark: its directory, configuration and set-up,
//! made with the `hisp` command line as an administrator would.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context};

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
}

impl Site {
    /// A site under `dir` (created) with three free loopback ports.
    pub fn new(dir: PathBuf, domain: &'static str, address: &'static str) -> anyhow::Result<Site> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ports = free_ports(3);
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Ok(Site {
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

    /// The SQLite store `hisp serve` keeps under the data directory.
    pub fn database(&self) -> PathBuf {
        self.dir.join("data/hisp.db")
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
             [[route]]\ndomain = \"{}\"\nto = \"{}\"\n",
            self.submission,
            self.backbone,
            self.domain,
            peer.dns,
            self.dns,
            peer.domain,
            peer.backbone,
        );
        std::fs::write(self.config(), text).context("writing hisp.toml")
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
            .current_dir(&self.dir);
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
