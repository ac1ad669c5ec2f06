//! A running `hisp serve` and what /proc says about it.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::site::Site;

/// A `hisp serve` process, stopped with SIGTERM by [`Instance::stop`] and
/// killed if dropped while still running.
pub struct Instance {
    child: Child,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl Instance {
    /// Starts `hisp serve` for `site` and waits (at most `patience` per
    /// listener) until its submission, backbone and DNS listeners take TCP
    /// connections.
    pub fn start(hisp: &Path, site: &Site, patience: Duration) -> anyhow::Result<Instance> {
        let log = site.dir.join("serve.log");
        let child = Command::new(hisp)
            .arg("--config")
            .arg(site.config())
            .arg("serve")
            .current_dir(&site.dir)
            // The password is the file's: a variable of the caller's would win.
            .env_remove("HISP_STORE_PASSWORD")
            .stdin(Stdio::null())
            .stdout(File::create(site.dir.join("serve.out"))?)
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} serve", hisp.display()))?;
        let mut instance = Instance { child, log };
        for addr in [site.submission, site.backbone, site.dns] {
            instance.wait_listening(addr, patience)?;
        }
        Ok(instance)
    }

    fn wait_listening(&mut self, addr: SocketAddr, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!("hisp serve exited with {status}:\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!("hisp serve did not listen on {addr}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// CPU time and memory now.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        Sample::of(self.pid())
    }

    /// Sets the peak resident set (VmHWM) back to the resident set now, so
    /// that a later [`Sample::peak_rss`] is the peak since this call
    /// (proc(5): writing 5 to /proc/PID/clear_refs).
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), b"5")
            .context("resetting the peak resident set")
    }

    /// SIGTERM, then waits up to 30 s for the exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid")?;
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("hisp serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One reading of /proc/PID for a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// utime + stime, in seconds (proc(5): fields 14 and 15 of stat, in clock ticks).
    pub cpu_secs: f64,
    /// Resident set now (VmRSS), bytes.
    pub rss: u64,
    /// Peak resident set so far (VmHWM), bytes.
    pub peak_rss: u64,
}

impl Sample {
    /// Reads /proc/PID/stat and /proc/PID/status.
    pub fn of(pid: u32) -> anyhow::Result<Sample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name (field 2) is in parentheses and may hold spaces:
        // count fields after its closing one.
        let after = stat
            .rfind(')')
            .map(|i| &stat[i + 2..])
            .context("/proc/PID/stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Field 3 (state) is fields[0], so field N is fields[N - 3].
        let ticks = |n: usize| -> anyhow::Result<u64> {
            Ok(fields.get(n - 3).context("/proc/PID/stat field")?.parse()?)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as f64 } else { 100.0 };
        let cpu_secs = (ticks(14)? + ticks(15)?) as f64 / hz;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |field: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Sample {
            cpu_secs,
            rss: kib("VmRSS:") * 1024,
            peak_rss: kib("VmHWM:") * 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let s = Sample::of(std::process::id()).unwrap();
        assert!(s.rss > 0);
        assert!(s.peak_rss >= s.rss);
        assert!(s.cpu_secs >= 0.0);
    }
}
