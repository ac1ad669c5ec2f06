//! Helpers shared by the integration tests: the committed vectors and their PKI
//! (tests/vectors, made by tests/vectors/make.sh), a scratch directory, the
//! `openssl` command line, and just enough MIME and JSON reading to check
//! S/MIME output independently of hisp-smime's own parser.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use hisp_smime::KeyPair;
use openssl::x509::X509;

/// The time every vector is checked at: 2027-06-01T00:00:00Z. Inside the
/// validity of the test PKI (2026-01-01 to 2046-01-01) and after `expired`'s.
pub const AT: i64 = 1_811_808_000;

/// tests/vectors at the workspace root.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

/// A file under tests/vectors, read whole.
pub fn vector_file(relative: &str) -> Vec<u8> {
    let path = vectors_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// tests/vectors/pki/NAME.pem
pub fn cert_path(name: &str) -> PathBuf {
    vectors_dir().join("pki").join(format!("{name}.pem"))
}

/// tests/vectors/pki/NAME.key
pub fn key_path(name: &str) -> PathBuf {
    vectors_dir().join("pki").join(format!("{name}.key"))
}

/// The certificate of a test PKI member (ca, alice, bob, ...).
pub fn cert(name: &str) -> X509 {
    X509::from_pem(&vector_file(&format!("pki/{name}.pem")))
        .unwrap_or_else(|e| panic!("pki/{name}.pem: {e}"))
}

/// The key pair of a test PKI member.
pub fn key_pair(name: &str) -> KeyPair {
    KeyPair::from_bytes(
        &vector_file(&format!("pki/{name}.pem")),
        &vector_file(&format!("pki/{name}.key")),
    )
    .unwrap_or_else(|e| panic!("key pair {name}: {e}"))
}

// ---------------------------------------------------------------------------
// Scratch directory
// ---------------------------------------------------------------------------

/// A directory under the system temp dir, unique to this process and call,
/// removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "hisp-smime-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes a file inside the directory and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The openssl command line
// ---------------------------------------------------------------------------

/// What an openssl run gave.
pub struct Run {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub command: String,
}

/// Runs `openssl ARGS...`.
pub fn openssl<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = format!(
        "openssl {}",
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = Command::new("openssl")
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    Run {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command,
    }
}

/// Runs `openssl ARGS...` and panics with its stderr when it fails.
pub fn openssl_ok<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let run = openssl(args);
    assert!(run.ok, "{} failed:\n{}", run.command, run.stderr);
    run.stdout
}

// ---------------------------------------------------------------------------
// Bytes and MIME, read independently of hisp-smime
// ---------------------------------------------------------------------------

/// Bare LF and bare CR become CRLF (RFC 8551 §3.1.1 canonical form).
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Splits an entity at its first empty line: (header block with its last line
/// end, body). Accepts CRLF or LF.
pub fn split_entity(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut line_start = 0;
    while line_start < raw.len() {
        let end = raw[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| line_start + i + 1)
            .unwrap_or(raw.len());
        let line = &raw[line_start..end];
        if line == b"\r\n" || line == b"\n" {
            return (&raw[..line_start], &raw[end..]);
        }
        line_start = end;
    }
    (raw, &[])
}

/// Header fields of a header block, unfolded: (name as written, value trimmed).
pub fn header_fields(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        fields.push((name.trim().to_string(), value.trim().to_string()));
    }
    fields
}

/// Every value of the header NAME (case-insensitive), unfolded.
pub fn header_values(block: &[u8], name: &str) -> Vec<String> {
    header_fields(block)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// The one value of the header NAME; panics when absent or repeated.
pub fn header_value(block: &[u8], name: &str) -> String {
    let values = header_values(block, name);
    assert_eq!(
        values.len(),
        1,
        "expected exactly one {name} header in:\n{}",
        String::from_utf8_lossy(block)
    );
    values.into_iter().next().unwrap()
}

/// A structured header value: `type/subtype; a=b; c="d"`. The parameters keep
/// whether they were quoted. Comments are not handled (nothing here writes them).
#[derive(Debug)]
pub struct Structured {
    /// The value before the first ';', lower case.
    pub value: String,
    /// Parameters by lower-case name: (value, was quoted).
    pub params: BTreeMap<String, (String, bool)>,
}

impl Structured {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(|(v, _)| v.as_str())
    }

    pub fn quoted(&self, name: &str) -> bool {
        self.params.get(name).map(|(_, q)| *q).unwrap_or(false)
    }
}

pub fn parse_structured(header: &str) -> Structured {
    let mut chars = header.chars().peekable();
    let mut value = String::new();
    while let Some(&c) = chars.peek() {
        if c == ';' {
            break;
        }
        value.push(c);
        chars.next();
    }
    let mut params = BTreeMap::new();
    while chars.next() == Some(';') {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let mut val = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                quoted = true;
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                val.push(n);
                            }
                        }
                        '"' => break,
                        c => val.push(c),
                    }
                }
                while chars.peek().is_some_and(|&c| c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
                val = val.trim().to_string();
            }
        }
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() {
            params.insert(name, (val, quoted));
        }
    }
    Structured {
        value: value.trim().to_ascii_lowercase(),
        params,
    }
}

/// The body parts of a multipart body (RFC 2046 §5.1.1): the CRLF before each
/// delimiter belongs to the delimiter. Panics when there is no closing delimiter.
pub fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    // Positions of delimiter lines: at the start of the body or after CRLF.
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        let at_line_start = i == 0 || (i >= 2 && &body[i - 2..i] == b"\r\n");
        if at_line_start && &body[i..i + d.len()] == d {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    let mut parts = Vec::new();
    let mut closed = false;
    for (n, &s) in starts.iter().enumerate() {
        let after = s + d.len();
        if body[after..].starts_with(b"--") {
            closed = true;
            break;
        }
        let content_start = match body[after..].windows(2).position(|w| w == b"\r\n") {
            Some(p) => after + p + 2,
            None => break,
        };
        let Some(&next) = starts.get(n + 1) else {
            break;
        };
        parts.push(&body[content_start..next - 2]);
    }
    assert!(
        closed,
        "multipart body without closing delimiter --{boundary}--"
    );
    parts
}

/// Where two byte strings first differ, for readable assertion messages.
pub fn describe_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let window = |s: &[u8]| {
        let from = at.saturating_sub(40);
        let to = (at + 40).min(s.len());
        format!("{:?}", String::from_utf8_lossy(&s[from..to]))
    };
    format!(
        "lengths {} (got) and {} (expected), first difference at byte {at}:\n  got:      {}\n  expected: {}",
        got.len(),
        want.len(),
        window(got),
        window(want)
    )
}

/// Asserts byte equality with a readable message.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        panic!("{what}: {}", describe_difference(got, want));
    }
}

// ---------------------------------------------------------------------------
// A minimal JSON reader for the vectors' expectation files
// ---------------------------------------------------------------------------

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            None => Err("unexpected end".into()),
            Some(b'{') => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Object(map));
                }
                loop {
                    self.ws();
                    let Json::String(key) = self.value()? else {
                        return Err(format!("object key expected at byte {}", self.i));
                    };
                    self.ws();
                    if !self.eat(":") {
                        return Err(format!("':' expected at byte {}", self.i));
                    }
                    let v = self.value()?;
                    map.insert(key, v);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        return Ok(Json::Object(map));
                    }
                    return Err(format!("',' or '}}' expected at byte {}", self.i));
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("]") {
                        return Ok(Json::Array(items));
                    }
                    return Err(format!("',' or ']' expected at byte {}", self.i));
                }
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let Some(&c) = self.s.get(self.i) else {
                        return Err("unterminated string".into());
                    };
                    self.i += 1;
                    match c {
                        b'"' => return Ok(Json::String(out)),
                        b'\\' => {
                            let e = *self.s.get(self.i).ok_or("bad escape")?;
                            self.i += 1;
                            match e {
                                b'"' => out.push('"'),
                                b'\\' => out.push('\\'),
                                b'/' => out.push('/'),
                                b'n' => out.push('\n'),
                                b'r' => out.push('\r'),
                                b't' => out.push('\t'),
                                b'u' => {
                                    let hex = std::str::from_utf8(
                                        self.s.get(self.i..self.i + 4).ok_or("bad \\u")?,
                                    )
                                    .map_err(|e| e.to_string())?;
                                    let code =
                                        u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                    self.i += 4;
                                }
                                other => return Err(format!("bad escape \\{}", other as char)),
                            }
                        }
                        _ => {
                            // Copy one UTF-8 character whole.
                            let start = self.i - 1;
                            let mut end = self.i;
                            while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                                end += 1;
                            }
                            out.push_str(
                                std::str::from_utf8(&self.s[start..end])
                                    .map_err(|e| e.to_string())?,
                            );
                            self.i = end;
                        }
                    }
                }
            }
            Some(_) => {
                if self.eat("true") {
                    Ok(Json::Bool(true))
                } else if self.eat("false") {
                    Ok(Json::Bool(false))
                } else if self.eat("null") {
                    Ok(Json::Null)
                } else {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(
                            self.s[self.i],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.i += 1;
                    }
                    std::str::from_utf8(&self.s[start..self.i])
                        .ok()
                        .and_then(|t| t.parse::<f64>().ok())
                        .map(Json::Number)
                        .ok_or_else(|| format!("value expected at byte {start}"))
                }
            }
        }
    }
}
