//! The PostgreSQL server of a `--store postgres` run: one server on a free
//! loopback port, its data directory in the run's temporary directory,
//! with one database, one role and one password per HISP.
//!
//! Written here rather than taken from `hisp-testpg`, whose server does not
//! fit a measurement: it is one per process in the system's temporary
//! directory, stopped only at exit, and it runs with `fsync=off` and
//! `synchronous_commit=off`, which would measure a store that loses
//! commits. This one runs with PostgreSQL's own defaults for durability, as
//! an installation would, and stops when the run ends.
//!
//! PostgreSQL refuses to run as root: as root the server runs as Debian's
//! `postgres` user (the run's directory is then opened for traversal, and
//! the data directory given to that user). The superuser reaches the server
//! only through the unix socket in the server's directory; over TCP each
//! role logs in with its password (SCRAM-SHA-256).

use std::fs::{File, Permissions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{chown, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server, stopped (fast shutdown) by
/// [`Server::stop`] or when dropped.
pub struct Server {
    child: Child,
    /// The server's directory: `data/`, the unix socket, the log.
    dir: PathBuf,
    port: u16,
}

/// A reading of the server's CPU time, seconds.
#[derive(Debug, Clone, Copy)]
pub struct ServerCpu {
    /// Every process of the server, ended ones included.
    pub total: f64,
    /// Of that, the backends serving the benchmark's own reads.
    pub bench: f64,
}

/// One HISP's database on the server: what its `[store]` section names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// The database, and the role that owns it (the same name).
    pub name: String,
    /// The role's password.
    pub password: String,
    /// The server's TCP port on 127.0.0.1.
    pub port: u16,
}

impl Database {
    /// The `[store] url`: the database over TCP on loopback as its owner,
    /// with no password in it (hisp refuses one there) and no TLS (the
    /// benchmark measures the store, not a TLS layer on loopback).
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}?sslmode=disable",
            self.name, self.port, self.name
        )
    }

    /// Writes the password to `path` as its first line, readable by its
    /// owner only (0600 from creation on), as `[store] password_file` wants.
    pub fn write_password_file(&self, path: &Path) -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(file, "{}", self.password).context("writing the store password")
    }

    /// A client connection as the database's owner, over TCP as hisp
    /// connects: for the benchmark's reads of the store.
    pub fn connect(&self) -> anyhow::Result<postgres::Client> {
        let mut config = postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(&self.name)
            .password(&self.password)
            .dbname(&self.name)
            .application_name("hisp-bench")
            .connect_timeout(Duration::from_secs(10));
        config
            .connect(postgres::NoTls)
            .with_context(|| format!("connecting to the database {}", self.name))
    }
}

impl Server {
    /// `initdb` into `dir/data` and `postgres` on a free port of 127.0.0.1,
    /// with `settings` (`NAME=VALUE`, each a `-c` of `postgres`) after the
    /// benchmark's own; returns once it accepts connections.
    pub fn start(dir: &Path, settings: &[String]) -> anyhow::Result<Server> {
        if let Some(bad) = settings.iter().find(|s| !s.contains('=')) {
            bail!("--postgres-setting {bad:?}: give NAME=VALUE");
        }
        let bin = binaries()?;
        let run_as = run_as()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(user) = run_as {
            // The server's user must reach its directory through the run's.
            let mut at = dir.parent();
            while let Some(parent) = at {
                if parent.as_os_str().is_empty() || parent == Path::new("/") {
                    break;
                }
                let mode = std::fs::metadata(parent)?.permissions().mode();
                if mode & 0o001 == 0 {
                    std::fs::set_permissions(parent, Permissions::from_mode(mode | 0o011))?;
                }
                at = parent.parent();
            }
            chown(dir, Some(user.uid), Some(user.gid))
                .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
        }
        let data = dir.join("data");
        let out = command(&bin.join("initdb"), run_as, dir)
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["--username=postgres", "--encoding=UTF8", "--locale=C"])
            .args(["--no-instructions", "-D"])
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", bin.join("initdb").display()))?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut last = None;
        // A port found free can be taken before the server binds it: try
        // another.
        for _ in 0..3 {
            let port = free_port()?;
            match launch(&bin, run_as, dir, &data, port, settings) {
                Ok(child) => {
                    return Ok(Server {
                        child,
                        dir: dir.to_path_buf(),
                        port,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("postgres did not start")))
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates the role and database `name` (the role owning the database)
    /// with a fresh random password.
    pub fn create_database(&self, name: &str) -> anyhow::Result<Database> {
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            bail!("{name:?}: a database name here is lower-case letters and _ only");
        }
        let password = random_hex(16)?;
        let mut admin = self.admin("postgres")?;
        // Two statements: CREATE DATABASE cannot run in a transaction, which
        // a batch of several is.
        admin.batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name} OWNER {name}"))?;
        Ok(Database {
            name: name.to_string(),
            password,
            port: self.port,
        })
    }

    /// The server's version (`SHOW server_version`).
    pub fn version(&self) -> anyhow::Result<String> {
        let row = self
            .admin("postgres")?
            .query_one("SHOW server_version", &[])?;
        Ok(row.get(0))
    }

    /// CPU seconds (user + system) of the server so far: the postmaster,
    /// its live processes (the backends serving hisp's connections, the
    /// writers) and those that ended (proc(5): cutime and cstime of the
    /// postmaster, which reaps them); apart, the backends serving the
    /// benchmark's own reads (`application_name` `hisp-bench`), which are
    /// not hisp's work.
    pub fn cpu_secs(&self) -> anyhow::Result<ServerCpu> {
        let bench: Vec<u32> = self
            .admin("postgres")?
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'hisp-bench'",
                &[],
            )?
            .iter()
            .filter_map(|r| u32::try_from(r.get::<_, i32>(0)).ok())
            .collect();
        let pid = self.pid();
        let (own, reaped) = stat_times(pid)?;
        let mut cpu = ServerCpu {
            total: own + reaped,
            bench: 0.0,
        };
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may end between listing and reading: skip it.
            if parent_of(child) == Some(pid) {
                let secs = stat_times(child).map_or(0.0, |(own, _)| own);
                cpu.total += secs;
                if bench.contains(&child) {
                    cpu.bench += secs;
                }
            }
        }
        Ok(cpu)
    }

    /// Fast shutdown (SIGINT: open sessions are ended), waiting up to 30 s,
    /// then SIGKILL.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("pid")?;
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("postgres did not stop within 30 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// A superuser connection to `database` through the unix socket.
    fn admin(&self, database: &str) -> anyhow::Result<postgres::Client> {
        admin_config(&self.dir, self.port, database)
            .connect(postgres::NoTls)
            .context("connecting to PostgreSQL as its superuser")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn admin_config(dir: &Path, port: u16, database: &str) -> postgres::Config {
    let mut config = postgres::Config::new();
    config
        .host_path(dir)
        .port(port)
        .user("postgres")
        .dbname(database)
        .connect_timeout(Duration::from_secs(5));
    config
}

/// Starts `postgres` on `port` and waits until it accepts connections.
fn launch(
    bin: &Path,
    run_as: Option<RunAs>,
    dir: &Path,
    data: &Path,
    port: u16,
    settings: &[String],
) -> anyhow::Result<Child> {
    let log = File::create(dir.join("server.log"))?;
    let mut cmd = command(&bin.join("postgres"), run_as, dir);
    cmd.arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
        .arg(dir)
        .args(["-c", "ssl=off", "-c", "max_connections=100"])
        .args(settings.iter().flat_map(|s| ["-c", s.as_str()]))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child
    // before exec.
    unsafe {
        cmd.pre_exec(|| {
            // Fast shutdown should the benchmark die without stopping it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting postgres")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            bail!("postgres exited ({status}) at start:\n{log}");
        }
        if admin_config(dir, port, "postgres")
            .connect(postgres::NoTls)
            .is_ok()
        {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("postgres did not accept connections within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The user the server runs as when the benchmark runs as root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// As root: Debian's `postgres` user. Otherwise: none (the server runs as
/// the user running the benchmark).
fn run_as() -> anyhow::Result<Option<RunAs>> {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam returns NULL or a pointer to a static record, read
    // at once (no other thread of the benchmark calls it).
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        bail!(
            "running as root, and there is no postgres user to run PostgreSQL as \
             (Debian's postgresql package makes it)"
        );
    }
    // SAFETY: non-null, as checked.
    let pw = unsafe { &*pw };
    Ok(Some(RunAs {
        uid: pw.pw_uid,
        gid: pw.pw_gid,
    }))
}

/// A command run as the server's user, in `dir`.
fn command(program: &Path, run_as: Option<RunAs>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("LC_ALL", "C");
    if let Some(user) = run_as {
        // std drops the supplementary groups when root sets a uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

/// The directory holding `initdb` and `postgres`: the newest version under
/// Debian's `/usr/lib/postgresql`, else the first `PATH` entry with both.
fn binaries() -> anyhow::Result<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
        .context(
            "--store postgres needs the PostgreSQL server (initdb, postgres) in \
             /usr/lib/postgresql/<version>/bin or on the PATH: apt-get install postgresql",
        )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// utime + stime and cutime + cstime of `pid`, in seconds (proc(5): fields
/// 14 to 17 of /proc/PID/stat, in clock ticks).
fn stat_times(pid: u32) -> anyhow::Result<(f64, f64)> {
    let fields = stat_fields(pid)?;
    let ticks = |n: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(n - 3)
            .context("/proc/PID/stat field")?
            .parse::<u64>()? as f64)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Ok((
        (ticks(14)? + ticks(15)?) / hz,
        (ticks(16)? + ticks(17)?) / hz,
    ))
}

/// The parent process id of `pid` (field 4 of /proc/PID/stat).
fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).ok()?.get(1)?.parse().ok()
}

/// The fields of /proc/PID/stat from field 3 (the state) on: the command
/// name (field 2) is in parentheses and may hold spaces.
fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .context("/proc/PID/stat")?;
    Ok(after.split_whitespace().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Database {
        Database {
            name: "hisp_receiver".into(),
            password: "0123456789abcdef".into(),
            port: 54321,
        }
    }

    #[test]
    fn the_url_names_host_port_database_and_owner_and_holds_no_password() {
        let db = database();
        assert_eq!(
            db.url(),
            "postgres://hisp_receiver@127.0.0.1:54321/hisp_receiver?sslmode=disable"
        );
        assert!(!db.url().contains(&db.password));
    }

    #[test]
    fn the_password_file_is_owner_only_with_the_password_as_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store-password");
        let db = database();
        db.write_password_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(db.password.as_str()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // An existing file is never overwritten (nor its mode widened).
        assert!(db.write_password_file(&path).is_err());
    }

    #[test]
    fn reads_cpu_times_of_its_own_process() {
        let (own, reaped) = stat_times(std::process::id()).unwrap();
        assert!(own >= 0.0 && reaped >= 0.0);
        // SAFETY: getppid cannot fail.
        let parent = unsafe { libc::getppid() };
        assert_eq!(parent_of(std::process::id()), u32::try_from(parent).ok());
    }
}
