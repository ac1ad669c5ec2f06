//! The baseline an administrator could script without hisp: per message, a
//! pipeline of four `openssl cms` commands (sign with SHA-256, encrypt with
//! AES-256-CBC, decrypt, verify against the sender's CA) over the same
//! message and keys, one such loop per core. It does the message alone,
//! no MDNs (the issue's "shell loop of openssl cms commands").

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::bound::Spec;

/// The openssl pipeline's throughput.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cli {
    /// Loops run at once (one per core).
    pub loops: usize,
    /// Messages per second, all loops together.
    pub messages_per_sec: f64,
}

/// Runs `loops` loops of the pipeline for `spec.secs` seconds each (at
/// least one message each) on a message written to `dir`.
pub fn measure(spec: &Spec, dir: &Path, loops: usize) -> anyhow::Result<Cli> {
    let id = crate::message::message_id("openssl", 0);
    let msg = dir.join("openssl-message.eml");
    std::fs::write(&msg, crate::message::message(&id, spec.size))?;
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let script = format!(
        "openssl cms -sign -md sha256 -signer {sc} -inkey {sk} -in {m} \
         | openssl cms -encrypt -aes-256-cbc {rc} \
         | openssl cms -decrypt -recip {rc} -inkey {rk} \
         | openssl cms -verify -CAfile {ca} -out /dev/null",
        sc = q(&spec.sender_cert),
        sk = q(&spec.sender_key),
        m = q(&msg),
        rc = q(&spec.receiver_cert),
        rk = q(&spec.receiver_key),
        ca = q(&spec.sender_ca),
    );
    // One run first, outside the clock: it must succeed, or the figure
    // would time failures.
    pipeline(&script)?;
    let budget = Duration::from_secs_f64(spec.secs);
    let threads: Vec<_> = (0..loops.max(1))
        .map(|_| {
            let script = script.clone();
            std::thread::spawn(move || -> anyhow::Result<(u64, f64)> {
                let start = Instant::now();
                let mut n = 0u64;
                while n == 0 || start.elapsed() < budget {
                    pipeline(&script)?;
                    n += 1;
                }
                Ok((n, start.elapsed().as_secs_f64()))
            })
        })
        .collect();
    let mut rate = 0.0;
    for t in threads {
        let (n, secs) = t
            .join()
            .map_err(|_| anyhow::anyhow!("an openssl loop panicked"))??;
        rate += n as f64 / secs;
    }
    Ok(Cli {
        loops: loops.max(1),
        messages_per_sec: rate,
    })
}

fn pipeline(script: &str) -> anyhow::Result<()> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running the openssl cms pipeline (is openssl installed?)")?;
    if !out.status.success() {
        bail!(
            "the openssl cms pipeline failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
