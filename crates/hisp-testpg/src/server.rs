//! The one server of a test process: started on first use, stopped at exit.

use std::fs::{File, Permissions};
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{binaries, tls, TEST_ROLE};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The prefix of the server's temporary directory; a later run removes
/// those whose process is gone.
const DIR_PREFIX: &str = "hisp-testpg-";

/// A running test server. There is one per process ([`Server::shared`]).
pub struct Server {
    dir: PathBuf,
    port: u16,
    pid: u32,
    password: String,
    ca_file: PathBuf,
}

/// The user the server runs as, when the tests run as root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

impl Server {
    /// The server of this process, started on first call.
    ///
    /// # Panics
    ///
    /// When it could not start; every later call panics with the same
    /// message.
    pub fn shared() -> &'static Server {
        match SERVER.get_or_init(start) {
            Ok(server) => server,
            Err(e) => panic!("no PostgreSQL for this test: {e}"),
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the server (the postmaster).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The password of the role [`TEST_ROLE`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The CA certificate of the server's TLS certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A superuser connection to `database` through the unix socket.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub fn admin(&self, database: &str) -> postgres::Client {
        self.try_admin(database)
            .unwrap_or_else(|e| panic!("cannot reach the test server as its superuser: {e}"))
    }

    pub(crate) fn try_admin(&self, database: &str) -> Result<postgres::Client, postgres::Error> {
        admin_config(&self.dir, self.port, database).connect(postgres::NoTls)
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

fn start() -> Result<Server, String> {
    let bin = binaries::find()?;
    remove_stale_dirs();
    let run_as = run_as()?;
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?
        .keep();
    std::fs::write(dir.join("owner"), std::process::id().to_string())
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let data = dir.join("data");
    tls::write(&dir)?;
    std::fs::set_permissions(dir.join("server.key"), Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot narrow the key's mode: {e}"))?;
    if let Some(user) = run_as {
        for path in [dir.join("server.key"), dir.join("server.crt"), dir.clone()] {
            chown(&path, Some(user.uid), Some(user.gid))
                .map_err(|e| format!("cannot give {} to the server's user: {e}", path.display()))?;
        }
    }

    let out = command(&bin.join("initdb"), run_as, &dir)
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
        .args(["--locale=C", "--no-sync", "--no-instructions", "-D"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.join("initdb").display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The superuser only through the socket; every TCP login with a
    // password.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .map_err(|e| format!("cannot write pg_hba.conf: {e}"))?;

    let mut last = String::new();
    // A free port can be taken by someone else between looking and
    // binding: try again on another.
    for _ in 0..3 {
        let port = free_port()?;
        match launch(&bin, run_as, &dir, &data, port) {
            Ok(pid) => {
                let password = random_hex(16)?;
                let mut admin = admin_config(&dir, port, "postgres")
                    .connect(postgres::NoTls)
                    .map_err(|e| format!("cannot reach the started server: {e}"))?;
                admin
                    .batch_execute(&format!(
                        "CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{password}'"
                    ))
                    .map_err(|e| format!("cannot create the role {TEST_ROLE}: {e}"))?;
                // SAFETY: registers a plain `extern "C"` function taking
                // nothing, as atexit requires.
                unsafe { libc::atexit(stop_at_exit) };
                return Ok(Server {
                    ca_file: dir.join("ca.crt"),
                    dir,
                    port,
                    pid,
                    password,
                });
            }
            Err(e) => last = e,
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(last)
}

/// Starts `postgres` and waits until it accepts connections; its process id.
///
/// The server is spawned from a thread that lives as long as the process,
/// because the kernel sends the parent-death signal when the spawning
/// *thread* ends, and a test's thread ends with the test.
fn launch(
    bin: &Path,
    run_as: Option<RunAs>,
    dir: &Path,
    data: &Path,
    port: u16,
) -> Result<u32, String> {
    let log = File::create(dir.join("server.log"))
        .map_err(|e| format!("cannot create the server's log: {e}"))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot share the server's log: {e}"))?;
    let mut cmd = command(&bin.join("postgres"), run_as, dir);
    cmd.arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
        .arg(dir)
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
        .args(["-c", "ssl=on"])
        .arg("-c")
        .arg(format!(
            "ssl_cert_file={}",
            dir.join("server.crt").display()
        ))
        .arg("-c")
        .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child
    // before exec.
    unsafe {
        cmd.pre_exec(|| {
            // Fast shutdown when the test process dies without stopping it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel::<Result<Child, String>>();
    std::thread::Builder::new()
        .name("hisp-testpg".into())
        .spawn(move || {
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start postgres: {e}"));
            let ok = child.is_ok();
            let _ = tx.send(child);
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .map_err(|e| format!("cannot start the server's thread: {e}"))?;
    let mut child = rx
        .recv()
        .map_err(|_| "the server's thread ended".to_string())??;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!("postgres exited ({status}) at start:\n{log}"));
        }
        if admin_config(dir, port, "postgres")
            .connect(postgres::NoTls)
            .is_ok()
        {
            // The Child is dropped without waiting; `stop_at_exit` reaps it.
            return Ok(pid);
        }
        if Instant::now() > deadline {
            // SAFETY: a signal to the child just started.
            unsafe { libc::kill(pid as i32, libc::SIGQUIT) };
            let _ = child.wait();
            return Err(format!(
                "postgres did not accept connections within {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A command run as the server's user, in `dir` (the tests' working
/// directory may not be readable by that user).
fn command(program: &Path, run_as: Option<RunAs>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("LC_ALL", "C");
    if let Some(user) = run_as {
        // std drops the supplementary groups when root sets a uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

/// When root: the `postgres` user, else `nobody`. Otherwise: none (the
/// server runs as the user running the tests).
fn run_as() -> Result<Option<RunAs>, String> {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Ok(None);
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: getpwnam returns NULL or a pointer to a static record,
        // read at once (the tests' other threads do not call it).
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: non-null, as checked.
            let pw = unsafe { &*pw };
            return Ok(Some(RunAs {
                uid: pw.pw_uid,
                gid: pw.pw_gid,
            }));
        }
    }
    Err("running as root, and there is no postgres or nobody user to run the server as".into())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buf).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Stops the server (fast shutdown, then immediate after a while) and
/// removes its directory. Registered with `atexit` once the server runs.
extern "C" fn stop_at_exit() {
    let Some(Ok(server)) = SERVER.get() else {
        return;
    };
    let pid = server.pid as libc::pid_t;
    // SAFETY: signals to and reaping of this process's own child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, libc::WNOHANG) == 0 {
            if Instant::now() > deadline {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_dir_all(&server.dir);
}

/// Removes the directories of earlier runs whose test process is gone (it
/// was killed before it could remove its own; its server stopped on the
/// parent-death signal).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours {
            continue;
        }
        let path = entry.path();
        let alive = |file: PathBuf| {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
                // SAFETY: signal 0 only checks that the process exists.
                .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0)
        };
        // A directory without its owner file is being made right now.
        if !path.join("owner").exists() {
            continue;
        }
        if !alive(path.join("owner")) && !alive(path.join("data").join("postmaster.pid")) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
