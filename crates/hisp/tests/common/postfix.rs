//! A private Postfix instance for tests: its own configuration, queue and
//! data directories in a temporary directory, one SMTP listener on a free
//! loopback port, relaying everything it accepts from loopback to one relay
//! host (a HISP's submission listener) with SASL AUTH. Runs in the
//! foreground (`postfix start-fg`), logs to its stdout, and is stopped when
//! dropped.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Postfix.
pub struct Postfix {
    /// Where its smtpd listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
}

/// What it relays to and how it logs in there.
pub struct Relay<'a> {
    pub host: SocketAddr,
    pub user: &'a str,
    pub password: &'a str,
}

impl Postfix {
    /// Starts Postfix listening on `port`, relaying to `relay`; waits until it
    /// takes connections.
    pub fn start(port: u16, relay: &Relay) -> Postfix {
        let dir = tempfile::tempdir().unwrap();
        // The daemons run as the postfix user and must reach their queue.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path();
        for sub in ["etc", "queue", "data"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        let chown = Command::new("chown")
            .args(["postfix:postfix"])
            .arg(root.join("data"))
            .status()
            .expect("chown (is postfix installed?)");
        assert!(chown.success());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        fs::write(root.join("etc/main.cf"), main_cf(root, relay)).unwrap();
        fs::write(root.join("etc/master.cf"), master_cf(addr)).unwrap();
        fs::write(
            root.join("etc/sasl_passwd"),
            format!(
                "[{}]:{} {}:{}\n",
                relay.host.ip(),
                relay.host.port(),
                relay.user,
                relay.password
            ),
        )
        .unwrap();
        let log = File::create(root.join("postfix.log")).unwrap();
        let child = Command::new("postfix")
            .arg("-c")
            .arg(root.join("etc"))
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("postfix start-fg (apt-get install postfix)");
        let mut postfix = Postfix { addr, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = postfix.child.try_wait() {
                panic!("postfix exited with {status}:\n{}", postfix.log());
            }
            assert!(
                Instant::now() < deadline,
                "postfix did not listen:\n{}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    /// Everything Postfix logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.config_dir())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main_cf(root: &Path, relay: &Relay) -> String {
    let r = root.display();
    format!(
        "compatibility_level = 3.6\n\
         queue_directory = {r}/queue\n\
         data_directory = {r}/data\n\
         meta_directory = /etc/postfix\n\
         daemon_directory = /usr/lib/postfix/sbin\n\
         command_directory = /usr/sbin\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         myhostname = portal.test\n\
         mydomain = portal.test\n\
         myorigin = portal.test\n\
         mydestination =\n\
         alias_maps =\n\
         alias_database =\n\
         mynetworks = 127.0.0.0/8\n\
         smtpd_relay_restrictions = permit_mynetworks, reject\n\
         relayhost = [{}]:{}\n\
         smtp_sasl_auth_enable = yes\n\
         smtp_sasl_password_maps = texthash:{r}/etc/sasl_passwd\n\
         smtp_sasl_security_options = noanonymous\n\
         smtp_tls_security_level = none\n\
         smtputf8_enable = no\n\
         maillog_file = /dev/stdout\n",
        relay.host.ip(),
        relay.host.port(),
    )
}

/// The smtpd listener and the internal services a relay needs; nothing
/// chrooted.
fn master_cf(addr: SocketAddr) -> String {
    format!(
        "{addr} inet n - n - - smtpd\n\
         pickup unix n - n 60 1 pickup\n\
         cleanup unix n - n - 0 cleanup\n\
         qmgr unix n - n 300 1 qmgr\n\
         rewrite unix - - n - - trivial-rewrite\n\
         bounce unix - - n - 0 bounce\n\
         defer unix - - n - 0 bounce\n\
         trace unix - - n - 0 bounce\n\
         verify unix - - n - 1 verify\n\
         flush unix n - n 1000? 0 flush\n\
         proxymap unix - - n - - proxymap\n\
         smtp unix - - n - - smtp\n\
         relay unix - - n - - smtp\n\
         showq unix n - n - - showq\n\
         error unix - - n - - error\n\
         retry unix - - n - - error\n\
         discard unix - - n - - discard\n\
         anvil unix - - n - 1 anvil\n\
         scache unix - - n - 1 scache\n\
         postlog unix-dgram n - n - 1 postlogd\n"
    )
}
