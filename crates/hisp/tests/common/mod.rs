//! Helpers shared by the CLI tests: run the real `hisp` binary and the
//! `openssl` command, and make a CA with certificates in a temporary directory.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The result of running a command.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with both streams unless the exit code was 0.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout_text(),
            self.stderr
        );
        self
    }
}

fn run(mut cmd: Command, stdin: &[u8]) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("command starts");
    {
        let mut input = child.stdin.take().unwrap();
        // The command may exit before reading (bad arguments): ignore EPIPE.
        let _ = input.write_all(stdin);
    }
    Run::from(child.wait_with_output().unwrap())
}

/// The `hisp` binary with a clean environment (no HISP_CONFIG, no RUST_LOG).
pub fn hisp_cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hisp"));
    cmd.args(args)
        .env_remove("HISP_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `hisp` with `args` and `stdin`.
pub fn hisp<I, S>(args: I, stdin: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(hisp_cmd(args), stdin)
}

/// Runs the `openssl` command.
pub fn openssl<I, S>(args: I, stdin: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(cmd, stdin)
}

/// `openssl x509 -text -noout` of a certificate file.
pub fn x509_text(cert: &Path) -> String {
    openssl(
        [
            "x509".as_ref(),
            "-text".as_ref(),
            "-noout".as_ref(),
            "-in".as_ref(),
            cert.as_os_str(),
        ],
        b"",
    )
    .ok()
    .stdout_text()
}

/// The lines of openssl's text output after `heading`, up to the next heading.
pub fn text_section(text: &str, heading: &str) -> Vec<String> {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.contains(heading))
        .unwrap_or_else(|| panic!("no {heading} in\n{text}"));
    lines
        .next()
        .map(|l| l.trim().split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

/// Permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A path as a string argument.
pub fn s(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_string()
}

/// A temporary directory holding a CA (`ca/`) made by `hisp cert ca`.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir };
        hisp(
            [
                "cert",
                "ca",
                "--cn",
                "hisp test root",
                "--out",
                &s(&pki.ca_dir()),
            ],
            b"",
        )
        .ok();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.path("ca")
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// Issues a certificate into `<dir>/<name>` with extra arguments
    /// (`--address a@b` or `--domain b`, ...).
    pub fn issue(&self, name: &str, args: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut all = vec![
            "cert".to_string(),
            "issue".into(),
            "--ca".into(),
            s(&self.ca_dir()),
            "--out".into(),
            s(&out),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, b"").ok();
        out
    }
}

/// A small RFC 5322 message with CRLF line endings.
pub const MESSAGE: &[u8] = b"From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain\r\n\
\r\n\
hello bob\r\n";

/// Bytes with every line ending as CRLF, for comparing messages.
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
