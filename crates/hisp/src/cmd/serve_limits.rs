//! The `[smtp]` limits against exhaustion, handed to the listeners
//! (`hisp_smtp::ServerConfig`) and to the gateway's AUTH guard
//! (`hisp_gateway::AuthLimits`) by `hisp serve`.

use std::time::Duration;

use hisp_gateway::AuthLimits;
use hisp_smtp::ServerConfig;

use crate::config::SmtpConfig;

/// Sets the connection, command, session and TLS handshake limits of one
/// listener from `[smtp]`.
pub fn apply(smtp: &SmtpConfig, settings: &mut ServerConfig) {
    settings.max_connections = smtp.max_connections;
    settings.max_connections_per_address = smtp.max_connections_per_address;
    settings.max_commands_without_progress = smtp.max_commands_without_progress;
    settings.max_session_duration = Duration::from_secs(smtp.max_session_secs);
    settings.tls_handshake_timeout = Duration::from_secs(smtp.tls_handshake_timeout_secs);
}

/// The AUTH limits from `[smtp]`; the queue wait is the guard's default.
pub fn auth_limits(smtp: &SmtpConfig) -> AuthLimits {
    AuthLimits {
        max_concurrent: smtp.max_concurrent_auth,
        window: Duration::from_secs(smtp.auth_failure_window_secs),
        per_address: smtp.max_auth_failures_per_address,
        per_account: smtp.max_auth_failures_per_account,
        ..AuthLimits::default()
    }
}
