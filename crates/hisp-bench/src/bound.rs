//! The cryptographic bound: the same work the run's S/MIME does, with
//! nothing around it, in one process per core. Per message: the message
//! sealed by the sender (wrap, sign, encrypt) and opened by the receiver
//! (decrypt, verify, chain to the anchor, unwrap), then the processed and
//! the dispatched MDN sealed by the receiver and opened by the sender; with
//! the sites' own keys, anchors and hisp's default algorithms (RSA-2048
//! keys from `hisp cert issue`, SHA-256, AES-256-CBC, RSA PKCS#1 v1.5 key
//! transport), through `hisp-smime`, the library `hisp serve` uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hisp_mdn::DispositionType;
use hisp_smime::{open, seal, KeyPair, OpenOptions, SealOptions, Signer};
use hisp_trust::{validate_path, Anchors, Intermediates, Remote};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use crate::message;

/// What a bound worker process is given (as a JSON file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// Sender's certificate and key (PEM).
    pub sender_cert: PathBuf,
    /// Sender's private key.
    pub sender_key: PathBuf,
    /// The sender's CA: the receiver's anchor for it.
    pub sender_ca: PathBuf,
    /// Receiver's certificate (PEM).
    pub receiver_cert: PathBuf,
    /// Receiver's private key.
    pub receiver_key: PathBuf,
    /// The receiver's CA: the sender's anchor for it.
    pub receiver_ca: PathBuf,
    /// Message size in bytes.
    pub size: usize,
    /// How long to keep going, in seconds (at least one message is done).
    pub secs: f64,
}

/// What one worker did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Done {
    /// Messages (each with its two MDNs) done.
    pub messages: u64,
    /// Seconds it took.
    pub secs: f64,
}

/// The bound: messages per second over all workers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bound {
    /// Worker processes (one per core).
    pub processes: usize,
    /// Messages per second, all workers together.
    pub messages_per_sec: f64,
    /// CPU seconds of cryptography per message (one worker's time per message).
    pub secs_per_message: f64,
}

/// Runs `processes` copies of this executable as bound workers on `spec`
/// at once and sums their rates.
pub fn measure(
    exe: &Path,
    spec: &Spec,
    spec_file: &Path,
    processes: usize,
) -> anyhow::Result<Bound> {
    std::fs::write(spec_file, serde_json::to_vec(spec)?).context("writing the bound spec")?;
    let children = (0..processes.max(1))
        .map(|_| {
            Command::new(exe)
                .arg("--bound-worker")
                .arg(spec_file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting a bound worker")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rate = 0.0;
    let mut per_message = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "a bound worker failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let done: Done = serde_json::from_slice(&out.stdout).context("a bound worker's answer")?;
        rate += done.messages as f64 / done.secs;
        per_message.push(done.secs / done.messages as f64);
    }
    Ok(Bound {
        processes: processes.max(1),
        messages_per_sec: rate,
        secs_per_message: per_message.iter().sum::<f64>() / per_message.len() as f64,
    })
}

/// The worker's side: reads the spec, loops for its time, prints [`Done`]
/// as JSON.
pub fn worker(spec_file: &Path) -> anyhow::Result<()> {
    let spec: Spec = serde_json::from_slice(&std::fs::read(spec_file)?)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let sender = KeyPair::from_bytes(&read(&spec.sender_cert)?, &read(&spec.sender_key)?)?;
    let receiver = KeyPair::from_bytes(&read(&spec.receiver_cert)?, &read(&spec.receiver_key)?)?;
    let sender_ca = X509::from_pem(&read(&spec.sender_ca)?)?;
    let receiver_ca = X509::from_pem(&read(&spec.receiver_ca)?)?;
    // Each instance keeps its anchors' store built between messages.
    let work = Work {
        sender,
        receiver,
        sender_ca: Anchors::new(vec![sender_ca])?,
        receiver_ca: Anchors::new(vec![receiver_ca])?,
    };
    let id = message::message_id("bound", 0);
    let msg = message::message(&id, spec.size);
    let mdns = [
        message::mdn(&id, DispositionType::Processed),
        message::mdn(&id, DispositionType::Dispatched),
    ];
    // One round first, outside the clock: libraries loaded, caches warm.
    work.one(&msg, &mdns)?;
    let budget = Duration::from_secs_f64(spec.secs);
    let start = Instant::now();
    let mut messages = 0u64;
    while messages == 0 || start.elapsed() < budget {
        work.one(&msg, &mdns)?;
        messages += 1;
    }
    let done = Done {
        messages,
        secs: start.elapsed().as_secs_f64(),
    };
    println!("{}", serde_json::to_string(&done)?);
    Ok(())
}

struct Work {
    sender: KeyPair,
    receiver: KeyPair,
    sender_ca: Anchors,
    receiver_ca: Anchors,
}

impl Work {
    /// The message one way and its two MDNs the other, sealed and opened.
    fn one(&self, msg: &[u8], mdns: &[Vec<u8>]) -> anyhow::Result<()> {
        pass(msg, &self.sender, &self.receiver, &self.sender_ca)?;
        for mdn in mdns {
            pass(mdn, &self.receiver, &self.sender, &self.receiver_ca)?;
        }
        Ok(())
    }
}

/// The trust fetcher of the bound's path checks (the paths need none of
/// its fetches: the anchor is the signer's issuer).
fn remote() -> &'static Remote {
    static REMOTE: OnceLock<Remote> = OnceLock::new();
    REMOTE.get_or_init(Remote::http)
}

/// `from` seals `msg` for `to`, which opens it and checks the signer's
/// path to `anchor`.
fn pass(msg: &[u8], from: &KeyPair, to: &KeyPair, anchors: &Anchors) -> anyhow::Result<()> {
    let sealed = seal(
        msg,
        &Signer::new(from.clone()),
        std::slice::from_ref(&to.cert),
        &SealOptions::default(),
    )?;
    let opened = open(
        &sealed,
        &OpenOptions {
            keys: std::slice::from_ref(to),
        },
    )?;
    // hisp-smime's open judges no trust: the signer's path to the anchor
    // is hisp-trust's work, as in the receiving instance.
    let intermediates = Intermediates {
        message: &opened.certificates,
        local: &[],
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for signer in opened.signers.iter().filter(|s| s.verified) {
        validate_path(&signer.cert, anchors, &intermediates, now, remote())
            .map_err(|e| anyhow::anyhow!("signer's path: {e:?}"))?;
    }
    if opened.message.len() < msg.len() / 2 {
        bail!("opened {} bytes of {}", opened.message.len(), msg.len());
    }
    Ok(())
}
