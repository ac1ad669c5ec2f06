//! `[smtp] relay_*_timeout_secs` and `relay_concurrency`: the deadlines of the
//! delivering client (RFC 5321 §4.5.3.2) and how many queued messages the
//! worker handles at once, checked and applied; `relay_session_idle_secs` and
//! `relay_session_max_messages`: how relay sessions are kept for reuse.

use std::time::Duration;

use hisp_gateway::WorkerSettings;
use hisp_smtp::ClientConfig;

use crate::config::SmtpConfig;

/// Refuses a zero deadline or concurrency, naming the key: every delivery
/// would fail at that step, or none would ever start.
pub(crate) fn check(smtp: &SmtpConfig) -> anyhow::Result<()> {
    for (key, value) in [
        (
            "relay_connect_timeout_secs",
            smtp.relay_connect_timeout_secs,
        ),
        (
            "relay_command_timeout_secs",
            smtp.relay_command_timeout_secs,
        ),
        (
            "relay_data_block_timeout_secs",
            smtp.relay_data_block_timeout_secs,
        ),
        ("relay_data_timeout_secs", smtp.relay_data_timeout_secs),
        (
            "relay_attempt_timeout_secs",
            smtp.relay_attempt_timeout_secs,
        ),
    ] {
        if value == 0 {
            anyhow::bail!(
                "[smtp] {key} is 0: give at least 1 second, or every delivery fails at that step"
            );
        }
    }
    if smtp.relay_session_max_messages == 0 {
        anyhow::bail!(
            "[smtp] relay_session_max_messages is 0: give at least 1 (1 sends every message on a session of its own)"
        );
    }
    if smtp.relay_concurrency == Some(0) {
        anyhow::bail!("[smtp] relay_concurrency is 0: give at least 1, or nothing is ever sent");
    }
    Ok(())
}

/// Sets the client's deadlines from `[smtp]` (as [`check`]ed).
pub(crate) fn apply_to_client(smtp: &SmtpConfig, client: &mut ClientConfig) {
    let secs = |value: u64| Duration::from_secs(value.max(1));
    client.connect_timeout = secs(smtp.relay_connect_timeout_secs);
    client.command_timeout = secs(smtp.relay_command_timeout_secs);
    client.data_block_timeout = secs(smtp.relay_data_block_timeout_secs);
    client.data_timeout = secs(smtp.relay_data_timeout_secs);
}

/// Sets the worker's attempt timeout and how it keeps relay sessions from
/// `[smtp]` (as [`check`]ed); its
/// concurrency comes from `[queue]` (`crate::queue_config::apply`), which
/// reads `relay_concurrency` when `[queue] concurrency` is not set.
pub(crate) fn apply_to_worker(smtp: &SmtpConfig, settings: &mut WorkerSettings) {
    settings.set_attempt_timeout(Duration::from_secs(smtp.relay_attempt_timeout_secs.max(1)));
    settings.relay_session_idle = Duration::from_secs(smtp.relay_session_idle_secs);
    settings.relay_session_max_messages = smtp.relay_session_max_messages.max(1);
}
