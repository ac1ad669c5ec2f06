//! `hisp.toml`: the one configuration file. Every key is documented in
//! docs/configuration.md; an unknown key is an error naming its line.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use hisp_smime::{ContentCipher, KeyTransport};
use serde::{Deserialize, Deserializer};

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for hisp's state. A relative path is taken relative to the
    /// directory of the config file. The CA of `hisp cert` lives in `<data_dir>/ca`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `[log]`
    #[serde(default)]
    pub log: LogConfig,
    /// `[smime]`
    #[serde(default)]
    pub smime: SmimeConfig,
    /// `[discovery]`
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// `[trust]`
    #[serde(default)]
    pub trust: TrustConfig,
    /// `[dns_responder]`
    #[serde(default)]
    pub dns_responder: DnsResponderConfig,
    /// `[smtp]`
    #[serde(default)]
    pub smtp: SmtpConfig,
    /// `[tracking]`
    #[serde(default)]
    pub tracking: TrackingConfig,
    /// `[[route]]`: static routes for outbound mail, one table per entry.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// `[notify]`
    #[serde(default)]
    pub notify: NotifyConfig,
    /// `[portal]`
    #[serde(default)]
    pub portal: PortalConfig,
    /// `[queue]`: the queue engine.
    #[serde(default)]
    pub queue: crate::queue_config::QueueConfig,
    /// `[store]`: SQLite in `data_dir`, or a PostgreSQL database.
    #[serde(default)]
    pub store: crate::store_config::StoreConfig,
}

/// `[notify]`: e-mail notices of new secure mail to portal users.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The plain SMTP smart host notices go through, `host:port` (the
    /// site's Postfix, say). Unset: no notices are queued.
    #[serde(default)]
    pub smtp: Option<String>,
    /// The notices' From and envelope sender. Unset: `no-reply@` the
    /// domain of the Direct address the secure message came to.
    #[serde(default)]
    pub from: Option<String>,
    /// Seconds before the first retry of a notice the smart host did not
    /// take; doubled for each further attempt up to an hour. Default 60.
    #[serde(default = "default_notify_retry_base_secs")]
    pub retry_base_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp: None,
            from: None,
            retry_base_secs: default_notify_retry_base_secs(),
        }
    }
}

fn default_notify_retry_base_secs() -> u64 {
    60
}

/// `[tracking]`: delivery notification of outbound mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingConfig {
    /// Seconds after relaying within which a recipient's MDNs (processed,
    /// and dispatched when final delivery was asked for) must arrive, else
    /// it fails and the sender gets a DSN. Default 3600.
    #[serde(default = "default_mdn_timeout_secs")]
    pub mdn_timeout_secs: u64,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            mdn_timeout_secs: default_mdn_timeout_secs(),
        }
    }
}

fn default_mdn_timeout_secs() -> u64 {
    3600
}

/// `[smtp]`: the listeners of `hisp serve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Where portals and EHRs submit mail (AUTH required).
    #[serde(default = "default_submission_listen")]
    pub submission_listen: SocketAddr,
    /// Where other HISPs deliver Direct mail for the local domains.
    #[serde(default = "default_backbone_listen")]
    pub backbone_listen: SocketAddr,
    /// The name given in the greeting, the EHLO reply and `Received:`; also
    /// the EHLO name when delivering. Default: the system's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Largest message accepted, in octets (RFC 1870 SIZE).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// PEM certificate chain (leaf first) for STARTTLS on both listeners;
    /// with `tls_key`. Unset: STARTTLS is not offered.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// STARTTLS when delivering to another HISP.
    #[serde(default, deserialize_with = "from_str")]
    pub relay_tls: RelayTls,
    /// PEM CA certificates that other HISPs' server certificates are checked
    /// against when relaying; unset: the system's CA bundle.
    #[serde(default)]
    pub relay_ca_file: Option<PathBuf>,
    /// Mail between local domains travels the Direct way: discovered,
    /// sealed, delivered by the domain's `[[route]]` and opened there.
    /// Unset: off (delivered locally); `hisp demo` turns it on when unset.
    #[serde(default)]
    pub seal_local_mail: Option<bool>,
    /// Domains without a `[[route]]` are delivered to their mail exchangers
    /// (DNS MX, RFC 5321 §5.1) on `relay_port`. Default: on.
    #[serde(default = "default_true")]
    pub mx_routing: bool,
    /// The port mail exchangers found by MX are reached on. Default: 25.
    #[serde(default = "default_relay_port")]
    pub relay_port: u16,
    /// Seconds the delivering client waits for a TCP connection. Default: 30.
    #[serde(default = "default_relay_connect_timeout_secs")]
    pub relay_connect_timeout_secs: u64,
    /// Seconds the delivering client waits for the greeting, for each
    /// command to be written and answered, and for the STARTTLS handshake
    /// (RFC 5321 §4.5.3.2). Default: 300.
    #[serde(default = "default_relay_command_timeout_secs")]
    pub relay_command_timeout_secs: u64,
    /// Seconds the delivering client waits for each block of the message
    /// text to be taken (RFC 5321 §4.5.3.2.5). Default: 180.
    #[serde(default = "default_relay_data_block_timeout_secs")]
    pub relay_data_block_timeout_secs: u64,
    /// Seconds the delivering client waits for the reply to the final dot
    /// (RFC 5321 §4.5.3.2.6). Default: 600.
    #[serde(default = "default_relay_data_timeout_secs")]
    pub relay_data_timeout_secs: u64,
    /// Seconds one attempt at a queued message may take in all; then it is
    /// cut and retried. Default: 1800.
    #[serde(default = "default_relay_attempt_timeout_secs")]
    pub relay_attempt_timeout_secs: u64,
    /// Queued messages the worker handles at the same time: the older name
    /// of `[queue] concurrency`, used when that is not set.
    #[serde(default)]
    pub relay_concurrency: Option<usize>,
    // The keys below bound what one client can take: connections, commands,
    // the life of a session, the TLS handshake, password checks and failed
    // logins. Each has a default fit for production.
    /// Most simultaneous sessions per listener. Default 200.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most simultaneous sessions per listener from one client address
    /// (IPv6: one /64). Default 20.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Commands a session may send without moving a mail transaction on,
    /// counted since its last accepted message. Default 50.
    #[serde(default = "default_max_commands_without_progress")]
    pub max_commands_without_progress: u32,
    /// The longest a session may last, in seconds. Default 3600.
    #[serde(default = "default_max_session_secs")]
    pub max_session_secs: u64,
    /// Seconds the TLS handshake after STARTTLS may take. Default 30.
    #[serde(default = "default_tls_handshake_timeout_secs")]
    pub tls_handshake_timeout_secs: u64,
    /// Most password checks (argon2, about 19 MiB each) running at once;
    /// further AUTHs wait up to 30 s, then get 454 4.7.0. Default 4.
    #[serde(default = "default_max_concurrent_auth")]
    pub max_concurrent_auth: usize,
    /// Seconds failed logins count, from the first failure of an address or
    /// account. Default 900.
    #[serde(default = "default_auth_failure_window_secs")]
    pub auth_failure_window_secs: u64,
    /// Failed logins from one client address within the window before AUTH
    /// from it gets 454 4.7.0 until the window ends. Default 10.
    #[serde(default = "default_max_auth_failures")]
    pub max_auth_failures_per_address: u32,
    /// Failed logins for one account within the window before AUTH for it
    /// gets 454 4.7.0 until the window ends (not from an address that logged
    /// in to it in the last 24 hours). Default 10.
    #[serde(default = "default_max_auth_failures")]
    pub max_auth_failures_per_account: u32,
    /// Seconds a session with another HISP's server is kept open after a
    /// delivery for the next message to the same server (then ended with
    /// QUIT); 0 keeps none. Default 5.
    #[serde(default = "default_relay_session_idle_secs")]
    pub relay_session_idle_secs: u64,
    /// Most messages one relay session carries before it is ended.
    /// Default 100.
    #[serde(default = "default_relay_session_max_messages")]
    pub relay_session_max_messages: usize,
    /// Largest message the backbone listener accepts, in octets (RFC 1870
    /// SIZE). Unset: what a message of `max_message_size` reaches once
    /// sealed ([`SmtpConfig::backbone_message_limit`]).
    #[serde(default)]
    pub backbone_max_message_size: Option<usize>,
}

fn default_relay_session_idle_secs() -> u64 {
    5
}

fn default_relay_session_max_messages() -> usize {
    100
}

fn default_relay_connect_timeout_secs() -> u64 {
    30
}

fn default_relay_command_timeout_secs() -> u64 {
    300
}

fn default_relay_data_block_timeout_secs() -> u64 {
    180
}

fn default_relay_data_timeout_secs() -> u64 {
    600
}

fn default_relay_attempt_timeout_secs() -> u64 {
    1800
}

impl SmtpConfig {
    /// Checks that no limit is zero (a zero would refuse everything).
    pub fn check_limits(&self) -> Result<(), String> {
        for (key, value) in [
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
            (
                "max_commands_without_progress",
                u64::from(self.max_commands_without_progress),
            ),
            ("max_session_secs", self.max_session_secs),
            (
                "tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs,
            ),
            ("max_concurrent_auth", self.max_concurrent_auth as u64),
            ("auth_failure_window_secs", self.auth_failure_window_secs),
            (
                "max_auth_failures_per_address",
                u64::from(self.max_auth_failures_per_address),
            ),
            (
                "max_auth_failures_per_account",
                u64::from(self.max_auth_failures_per_account),
            ),
        ] {
            if value == 0 {
                return Err(format!("[smtp] {key} is 0: it must be at least 1"));
            }
        }
        Ok(())
    }
}

fn default_max_connections() -> usize {
    200
}

fn default_max_connections_per_address() -> usize {
    20
}

fn default_max_commands_without_progress() -> u32 {
    50
}

fn default_max_session_secs() -> u64 {
    3600
}

fn default_tls_handshake_timeout_secs() -> u64 {
    30
}

fn default_max_concurrent_auth() -> usize {
    4
}

fn default_auth_failure_window_secs() -> u64 {
    900
}

fn default_max_auth_failures() -> u32 {
    10
}

fn default_true() -> bool {
    true
}

fn default_relay_port() -> u16 {
    25
}

/// `[smtp] relay_tls`: whether the delivering client uses STARTTLS.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// STARTTLS when the peer offers it (its certificate verified), clear
    /// text otherwise.
    #[default]
    Opportunistic,
    /// Nothing is sent in clear: a peer without STARTTLS, or whose
    /// certificate does not verify, gets the message later (retried).
    Required,
    /// Never STARTTLS.
    Off,
}

impl fmt::Display for RelayTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RelayTls::Opportunistic => "opportunistic",
            RelayTls::Required => "required",
            RelayTls::Off => "off",
        })
    }
}

impl FromStr for RelayTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opportunistic" => Ok(RelayTls::Opportunistic),
            "required" => Ok(RelayTls::Required),
            "off" => Ok(RelayTls::Off),
            other => Err(format!(
                "unknown relay_tls '{other}': use opportunistic, required or off"
            )),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            submission_listen: default_submission_listen(),
            backbone_listen: default_backbone_listen(),
            hostname: None,
            max_message_size: default_max_message_size(),
            tls_cert: None,
            tls_key: None,
            relay_tls: RelayTls::default(),
            relay_ca_file: None,
            seal_local_mail: None,
            mx_routing: true,
            relay_port: default_relay_port(),
            relay_connect_timeout_secs: default_relay_connect_timeout_secs(),
            relay_command_timeout_secs: default_relay_command_timeout_secs(),
            relay_data_block_timeout_secs: default_relay_data_block_timeout_secs(),
            relay_data_timeout_secs: default_relay_data_timeout_secs(),
            relay_attempt_timeout_secs: default_relay_attempt_timeout_secs(),
            relay_concurrency: None,
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
            max_commands_without_progress: default_max_commands_without_progress(),
            max_session_secs: default_max_session_secs(),
            tls_handshake_timeout_secs: default_tls_handshake_timeout_secs(),
            max_concurrent_auth: default_max_concurrent_auth(),
            auth_failure_window_secs: default_auth_failure_window_secs(),
            max_auth_failures_per_address: default_max_auth_failures(),
            max_auth_failures_per_account: default_max_auth_failures(),
            relay_session_idle_secs: default_relay_session_idle_secs(),
            relay_session_max_messages: default_relay_session_max_messages(),
            backbone_max_message_size: None,
        }
    }
}

impl SmtpConfig {
    /// `seal_local_mail`, off when unset.
    pub fn seal_local(&self) -> bool {
        self.seal_local_mail.unwrap_or(false)
    }

    /// The backbone listener's size limit: `backbone_max_message_size`, else
    /// the most a message of `max_message_size` octets reaches once sealed
    /// (`hisp_smime::sealed_size_bound`, about 1.375 times as large), so
    /// that the largest message a portal may submit here, or at another HISP
    /// with the same limit, passes between HISPs. [`Config::backbone_message_limit`]
    /// also counts what the portal API can compose.
    pub fn backbone_message_limit(&self) -> usize {
        self.backbone_max_message_size
            .unwrap_or_else(|| hisp_smime::sealed_size_bound(self.max_message_size))
    }
}

impl Config {
    /// The backbone listener's size limit: `[smtp] backbone_max_message_size`,
    /// else what the largest message submitted here reaches once sealed:
    /// the larger of `[smtp] max_message_size` and, when the portal is
    /// served (`[portal] listen`), the largest message its API composes
    /// within `max_attachments` and `max_attachment_bytes` (the attachments
    /// in base64 and room for the text), so that what the portal sends
    /// passes between two hisp instances configured alike.
    pub fn backbone_message_limit(&self) -> usize {
        if self.smtp.backbone_max_message_size.is_some() || self.portal.listen.is_none() {
            return self.smtp.backbone_message_limit();
        }
        let composed = hisp_gateway::compose::AttachmentLimits {
            max_files: self.portal.max_attachments,
            max_total_bytes: self.portal.max_attachment_bytes,
        }
        .composed_size_bound();
        let largest = usize::try_from(composed)
            .unwrap_or(usize::MAX)
            .max(self.smtp.max_message_size);
        hisp_smime::sealed_size_bound(largest)
    }
}

fn default_submission_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 587))
}

fn default_backbone_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 25))
}

fn default_max_message_size() -> usize {
    25 * 1024 * 1024
}

/// `[[route]]`: mail for `domain` goes to the SMTP server at `to`, instead
/// of the domain's mail exchangers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The destination domain, e.g. "b.example".
    pub domain: String,
    /// The server that takes its mail, `IP:PORT`.
    pub to: SocketAddr,
}

/// `[discovery]`: finding recipients' certificates in DNS and LDAP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Name servers (`IP:PORT`) asked for CERT and SRV records; empty means
    /// the system's (/etc/resolv.conf). `--nameserver` wins.
    #[serde(default)]
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Seconds to wait for one DNS answer. Default 5.
    #[serde(default = "default_dns_timeout_secs")]
    pub timeout_secs: u64,
    /// Tries per name server before a lookup is a temporary failure. Default 2.
    #[serde(default = "default_dns_attempts")]
    pub attempts: usize,
    /// Seconds `hisp serve` keeps a usable discovery answer (the recipient
    /// accepted at RCPT TO is sealed for with the same answer, and further
    /// messages to the address within that time too); 0: every message
    /// discovers again. Refusals are never kept. Default 30.
    #[serde(default = "default_discovery_cache_secs")]
    pub cache_secs: u64,
}

fn default_discovery_cache_secs() -> u64 {
    hisp_gateway::context::DEFAULT_DISCOVERY_TTL.as_secs()
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            nameservers: Vec::new(),
            timeout_secs: default_dns_timeout_secs(),
            attempts: default_dns_attempts(),
            cache_secs: default_discovery_cache_secs(),
        }
    }
}

impl DiscoveryConfig {
    /// DNS settings for `name_servers` with this section's timing.
    pub fn dns(&self, name_servers: &[std::net::SocketAddr]) -> hisp_discovery::DnsConfig {
        hisp_discovery::DnsConfig {
            name_servers: name_servers.to_vec(),
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            attempts: self.attempts,
            ..hisp_discovery::DnsConfig::default()
        }
    }

    /// LDAP settings for `name_servers` (the system's when empty) with this
    /// section's DNS timing for the SRV lookups.
    pub fn ldap(&self, name_servers: &[std::net::SocketAddr]) -> hisp_discovery::LdapSettings {
        hisp_discovery::LdapSettings {
            name_servers: (!name_servers.is_empty()).then(|| name_servers.to_vec()),
            dns_timeout: std::time::Duration::from_secs(self.timeout_secs),
            dns_attempts: self.attempts,
            ..hisp_discovery::LdapSettings::default()
        }
    }
}

fn default_dns_timeout_secs() -> u64 {
    5
}

fn default_dns_attempts() -> usize {
    2
}

/// `[trust]`: how certificates are judged.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// `"hard-fail"` (default): a CRL that cannot be had is a temporary
    /// failure. `"soft-fail"`: it is logged and the certificate accepted.
    #[serde(default, deserialize_with = "from_str")]
    pub revocation: hisp_trust::RevocationMode,
}

/// `[dns_responder]`: the built-in DNS responder for the local certificates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsResponderConfig {
    /// Where `hisp dns serve` answers (UDP and TCP), e.g. "127.0.0.1:5353".
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    /// When set, each local domain gets an A record with this address and an
    /// MX record naming itself, so a demo needs no other DNS.
    #[serde(default)]
    pub mail_ip: Option<std::net::Ipv4Addr>,
}

/// `[log]`: logging to stderr.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Least severe level written; RUST_LOG, when set, overrides it.
    #[serde(default, deserialize_with = "from_str")]
    pub level: LogLevel,
    /// `"text"` (default): one line per event. `"json"`: one JSON object
    /// per line, with the spans (and so the message id) it was written in.
    #[serde(default, deserialize_with = "from_str")]
    pub format: LogFormat,
}

/// `[log] format`: how log lines are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; colour only on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format '{other}': use text or json")),
        }
    }
}

/// A log level.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings (the default: the CLI is quiet).
    #[default]
    Warn,
    /// Also what was done.
    Info,
    /// Also details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        })
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            other => Err(format!(
                "unknown log level '{other}': use error, warn, info, debug or trace"
            )),
        }
    }
}

/// `[smime]`: defaults for sealing outgoing messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmimeConfig {
    /// Content cipher when `--cipher` is not given.
    #[serde(default, deserialize_with = "from_str")]
    pub cipher: ContentCipher,
    /// Key transport when `--key-transport` is not given.
    #[serde(default, deserialize_with = "from_str")]
    pub key_transport: KeyTransport,
    /// Copy the Subject to the outer headers (also turned on by `--copy-subject`).
    #[serde(default)]
    pub copy_subject: bool,
}

/// Deserialises a string through `FromStr`, so the config and the command line
/// accept the same names and give the same error.
fn from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let s = String::deserialize(deserializer)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// `[portal]`: the HTTP API of the patient portal, served by `hisp serve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Where the API listens (HTTP), e.g. "127.0.0.1:8080"; not served
    /// when unset.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS on `listen` (with `tls_key`).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS on `listen` (with `tls_cert`).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Days after which a message leaves every mailbox view of the portal
    /// (it stays in the store and the audit trail). Default 30.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Where users read their secure mail (`https://...`): the one link in
    /// a notice of new secure mail. Needed when `[notify] smtp` is set.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The most files one message sent through the API may carry. Default 5.
    #[serde(default = "default_max_attachments")]
    pub max_attachments: usize,
    /// The most bytes all files of one message sent through the API may
    /// hold together (before base64). Default 26214400 (25 MiB).
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            listen: None,
            tls_cert: None,
            tls_key: None,
            retention_days: default_retention_days(),
            public_url: None,
            max_attachments: default_max_attachments(),
            max_attachment_bytes: default_max_attachment_bytes(),
        }
    }
}

fn default_max_attachments() -> usize {
    hisp_gateway::compose::AttachmentLimits::default().max_files
}

fn default_max_attachment_bytes() -> u64 {
    hisp_gateway::compose::AttachmentLimits::default().max_total_bytes
}

fn default_retention_days() -> u32 {
    hisp_store::DEFAULT_RETENTION_DAYS
}

impl Config {
    /// Reads and checks the file at `path`. A missing or unreadable file, bad
    /// TOML, an unknown key or a bad value is an error naming the file (and,
    /// from the TOML parser, the line).
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config = Config::parse(&text)
            .map_err(|e| {
                anyhow::anyhow!(crate::store_config::without_the_line(&e, &text)
                    .unwrap_or_else(|| crate::kinds::in_words(&e.to_string())))
            })
            .with_context(|| format!("bad config file {}", path.display()))?;
        if let Some(dir) = &config.data_dir {
            if dir.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                config.data_dir = Some(base.join(dir));
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let smtp = &mut config.smtp;
        for file in [
            &mut smtp.tls_cert,
            &mut smtp.tls_key,
            &mut smtp.relay_ca_file,
        ] {
            if let Some(f) = file.as_mut().filter(|f| f.is_relative()) {
                *f = base.join(&*f);
            }
        }
        let portal = &mut config.portal;
        for file in [&mut portal.tls_cert, &mut portal.tls_key] {
            if let Some(f) = file.as_mut().filter(|f| f.is_relative()) {
                *f = base.join(&*f);
            }
        }
        if let Some(f) = config
            .store
            .password_file
            .as_mut()
            .filter(|f| f.is_relative())
        {
            *f = base.join(&*f);
        }
        Ok(config)
    }

    /// Parses config text.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// `<data_dir>/ca`, when a data directory is configured.
    pub fn ca_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join("ca"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.log.level, LogLevel::Warn);
        assert_eq!(c.smime.cipher, ContentCipher::Aes256Cbc);
        assert_eq!(c.smime.key_transport, KeyTransport::Pkcs1);
        assert!(!c.smime.copy_subject);
        assert!(c.data_dir.is_none());
        assert_eq!(c.smtp.submission_listen.to_string(), "127.0.0.1:587");
        assert_eq!(c.smtp.backbone_listen.to_string(), "127.0.0.1:25");
        assert_eq!(c.smtp.max_message_size, 25 * 1024 * 1024);
        assert!(c.smtp.hostname.is_none());
        assert!(!c.smtp.seal_local());
        assert!(c.routes.is_empty());
    }

    #[test]
    fn seal_local_mail_parses() {
        let on = Config::parse("[smtp]\nseal_local_mail = true\n").unwrap();
        assert_eq!(on.smtp.seal_local_mail, Some(true));
        assert!(on.smtp.seal_local());
        let off = Config::parse("[smtp]\nseal_local_mail = false\n").unwrap();
        assert!(!off.smtp.seal_local());
        let e = Config::parse("[smtp]\nseal_local_mail = \"yes\"\n").unwrap_err();
        assert!(e.to_string().contains("seal_local_mail"), "{e}");
    }

    #[test]
    fn discovery_timing_has_defaults_and_reaches_dns_and_ldap() {
        let c = Config::parse("").unwrap();
        assert_eq!((c.discovery.timeout_secs, c.discovery.attempts), (5, 2));
        let c = Config::parse("[discovery]\ntimeout_secs = 1\nattempts = 3\n").unwrap();
        let server: std::net::SocketAddr = "127.0.0.1:53".parse().unwrap();
        let dns = c.discovery.dns(&[server]);
        assert_eq!(dns.timeout, std::time::Duration::from_secs(1));
        assert_eq!((dns.attempts, dns.name_servers.clone()), (3, vec![server]));
        let ldap = c.discovery.ldap(&[]);
        assert_eq!(ldap.name_servers, None, "the system's resolver");
        assert_eq!(ldap.dns_attempts, 3);
    }

    #[test]
    fn smtp_section_and_routes_parse() {
        let c = Config::parse(
            "[smtp]\nsubmission_listen = \"127.0.0.1:2587\"\nbackbone_listen = \"0.0.0.0:2525\"\n\
             hostname = \"hisp.a.example\"\nmax_message_size = 1000\n\
             [[route]]\ndomain = \"b.example\"\nto = \"127.0.0.1:2526\"\n\
             [[route]]\ndomain = \"c.example\"\nto = \"127.0.0.1:2527\"\n",
        )
        .unwrap();
        assert_eq!(c.smtp.submission_listen.to_string(), "127.0.0.1:2587");
        assert_eq!(c.smtp.backbone_listen.to_string(), "0.0.0.0:2525");
        assert_eq!(c.smtp.hostname.as_deref(), Some("hisp.a.example"));
        assert_eq!(c.smtp.max_message_size, 1000);
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].domain, "c.example");
        assert_eq!(c.routes[1].to.to_string(), "127.0.0.1:2527");
    }

    #[test]
    fn route_without_port_or_with_unknown_key_is_refused() {
        let e =
            Config::parse("[[route]]\ndomain = \"b.example\"\nto = \"127.0.0.1\"\n").unwrap_err();
        assert!(e.to_string().contains("invalid socket address"), "{e}");
        let e =
            Config::parse("[[route]]\ndomain = \"b.example\"\nto = \"127.0.0.1:25\"\nport = 1\n")
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `port`"), "{e}");
        let e = Config::parse("[smtp]\nlisten = \"127.0.0.1:25\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `listen`"), "{e}");
    }

    #[test]
    fn smtp_tls_keys_parse_and_default_to_opportunistic_relay() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.smtp.relay_tls, RelayTls::Opportunistic);
        assert!(c.smtp.tls_cert.is_none() && c.smtp.tls_key.is_none());
        assert!(c.smtp.relay_ca_file.is_none());
        let c = Config::parse(
            "[smtp]\ntls_cert = \"tls/chain.pem\"\ntls_key = \"/etc/hisp/key.pem\"\n\
             relay_tls = \"required\"\nrelay_ca_file = \"peers.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.smtp.tls_cert.as_deref(), Some(Path::new("tls/chain.pem")));
        assert_eq!(
            c.smtp.tls_key.as_deref(),
            Some(Path::new("/etc/hisp/key.pem"))
        );
        assert_eq!(c.smtp.relay_tls, RelayTls::Required);
        assert_eq!(
            c.smtp.relay_ca_file.as_deref(),
            Some(Path::new("peers.pem"))
        );
        assert_eq!(
            Config::parse("[smtp]\nrelay_tls = \"off\"\n")
                .unwrap()
                .smtp
                .relay_tls,
            RelayTls::Off
        );
        let e = Config::parse("[smtp]\nrelay_tls = \"always\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown relay_tls 'always'"), "{e}");
    }

    #[test]
    fn tls_files_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hisp.toml");
        std::fs::write(
            &path,
            "[smtp]\ntls_cert = \"chain.pem\"\ntls_key = \"/k.pem\"\nrelay_ca_file = \"ca.pem\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.smtp.tls_cert, Some(dir.path().join("chain.pem")));
        assert_eq!(c.smtp.tls_key.as_deref(), Some(Path::new("/k.pem")));
        assert_eq!(c.smtp.relay_ca_file, Some(dir.path().join("ca.pem")));
    }

    #[test]
    fn shipped_config_parses() {
        let text = include_str!("../../../config/hisp.toml");
        let c = Config::parse(text).unwrap();
        assert!(c.data_dir.is_some());
    }

    #[test]
    fn smtp_limits_have_production_defaults_and_refuse_zero() {
        let c = Config::parse("").unwrap();
        let s = &c.smtp;
        assert_eq!(
            (s.max_connections, s.max_connections_per_address),
            (200, 20)
        );
        assert_eq!(s.max_commands_without_progress, 50);
        assert_eq!(
            (s.max_session_secs, s.tls_handshake_timeout_secs),
            (3600, 30)
        );
        assert_eq!(s.max_concurrent_auth, 4);
        assert_eq!(s.auth_failure_window_secs, 900);
        assert_eq!(
            (
                s.max_auth_failures_per_address,
                s.max_auth_failures_per_account
            ),
            (10, 10)
        );
        assert_eq!(s.check_limits(), Ok(()));
        let c = Config::parse("[smtp]\nmax_connections_per_address = 3\nmax_session_secs = 60\n")
            .unwrap();
        assert_eq!(c.smtp.max_connections_per_address, 3);
        assert_eq!(c.smtp.max_session_secs, 60);
        let c = Config::parse("[smtp]\nmax_concurrent_auth = 0\n").unwrap();
        assert_eq!(
            c.smtp.check_limits(),
            Err("[smtp] max_concurrent_auth is 0: it must be at least 1".to_string())
        );
        let e = Config::parse("[smtp]\nmax_session_secs = -1\n").unwrap_err();
        assert!(e.to_string().contains("max_session_secs"), "{e}");
    }

    #[test]
    fn smime_names_are_the_cli_names() {
        let c = Config::parse(
            "[smime]\ncipher = \"aes256-gcm\"\nkey_transport = \"oaep-sha256\"\ncopy_subject = true\n",
        )
        .unwrap();
        assert_eq!(c.smime.cipher, ContentCipher::Aes256Gcm);
        assert_eq!(c.smime.key_transport, KeyTransport::OaepSha256);
        assert!(c.smime.copy_subject);
    }

    #[test]
    fn notify_and_portal_url_parse_and_default_to_no_notices() {
        let c = Config::parse("").unwrap();
        assert!(c.notify.smtp.is_none() && c.notify.from.is_none());
        assert_eq!(c.notify.retry_base_secs, 60);
        assert!(c.portal.public_url.is_none());
        let c = Config::parse(
            "[notify]\nsmtp = \"127.0.0.1:2525\"\nfrom = \"no-reply@b.example\"\n\
             retry_base_secs = 1\n[portal]\npublic_url = \"https://portal.b.example/\"\n",
        )
        .unwrap();
        assert_eq!(c.notify.smtp.as_deref(), Some("127.0.0.1:2525"));
        assert_eq!(c.notify.from.as_deref(), Some("no-reply@b.example"));
        assert_eq!(c.notify.retry_base_secs, 1);
        assert_eq!(
            c.portal.public_url.as_deref(),
            Some("https://portal.b.example/")
        );
        let e = Config::parse("[notify]\nsmarthost = \"x:25\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `smarthost`"), "{e}");
    }

    #[test]
    fn relay_deadlines_default_to_rfc_5321_4_5_3_2_and_parse() {
        let c = Config::parse("").unwrap();
        let smtp = &c.smtp;
        assert_eq!(
            (
                smtp.relay_connect_timeout_secs,
                smtp.relay_command_timeout_secs,
                smtp.relay_data_block_timeout_secs,
                smtp.relay_data_timeout_secs,
                smtp.relay_attempt_timeout_secs,
                smtp.relay_concurrency,
            ),
            (30, 300, 180, 600, 1800, None)
        );
        let c = Config::parse(
            "[smtp]\nrelay_connect_timeout_secs = 1\nrelay_command_timeout_secs = 2\n\
             relay_data_block_timeout_secs = 3\nrelay_data_timeout_secs = 4\n\
             relay_attempt_timeout_secs = 5\nrelay_concurrency = 6\n",
        )
        .unwrap();
        let smtp = &c.smtp;
        assert_eq!(
            (
                smtp.relay_connect_timeout_secs,
                smtp.relay_command_timeout_secs,
                smtp.relay_data_block_timeout_secs,
                smtp.relay_data_timeout_secs,
                smtp.relay_attempt_timeout_secs,
                smtp.relay_concurrency,
            ),
            (1, 2, 3, 4, 5, Some(6))
        );
    }

    #[test]
    fn portal_section_has_defaults_and_reads_its_keys() {
        let c = Config::parse("").unwrap();
        assert!(c.portal.listen.is_none());
        assert_eq!(c.portal.retention_days, 30);
        assert_eq!(c.portal.max_attachments, 5);
        assert_eq!(c.portal.max_attachment_bytes, 26_214_400);
        let c = Config::parse(
            "[portal]\nlisten = \"127.0.0.1:8080\"\nretention_days = 7\n\
             tls_cert = \"portal.pem\"\ntls_key = \"portal.key\"\n",
        )
        .unwrap();
        assert_eq!(c.portal.listen.unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(c.portal.retention_days, 7);
        assert_eq!(c.portal.tls_cert.unwrap(), PathBuf::from("portal.pem"));
        let e = Config::parse("[portal]\nretention = 7\n").unwrap_err();
        assert!(e.to_string().contains("retention"), "{e}");
        let c =
            Config::parse("[portal]\nmax_attachments = 2\nmax_attachment_bytes = 4096\n").unwrap();
        assert_eq!(
            (c.portal.max_attachments, c.portal.max_attachment_bytes),
            (2, 4096)
        );
        let e = Config::parse("[portal]\nmax_attachments = -1\n").unwrap_err();
        assert!(e.to_string().contains("max_attachments"), "{e}");
    }

    #[test]
    fn backbone_limit_defaults_to_a_sealed_max_message_size() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.smtp.backbone_max_message_size, None);
        // 25 MiB sealed: (26214400 + 196608) / 8 * 11.
        assert_eq!(c.smtp.backbone_message_limit(), 36_315_136);
        let c = Config::parse("[smtp]\nmax_message_size = 2097152\n").unwrap();
        assert_eq!(c.smtp.backbone_message_limit(), 3_153_920);
        let c = Config::parse(
            "[smtp]\nmax_message_size = 2097152\nbackbone_max_message_size = 5000000\n",
        )
        .unwrap();
        assert_eq!(c.smtp.backbone_message_limit(), 5_000_000);
        // With the portal served, what its API composes within the
        // attachment allowance counts too.
        let c = Config::parse(
            "[smtp]\nmax_message_size = 2097152\n[portal]\nlisten = \"127.0.0.1:8080\"\nmax_attachment_bytes = 3145728\n",
        )
        .unwrap();
        let composed = hisp_gateway::compose::AttachmentLimits {
            max_files: 5,
            max_total_bytes: 3_145_728,
        }
        .composed_size_bound();
        assert!(composed > 4 * 1024 * 1024, "{composed}");
        assert_eq!(
            c.backbone_message_limit(),
            hisp_smime::sealed_size_bound(composed as usize)
        );
        assert_eq!(
            c.smtp.backbone_message_limit(),
            3_153_920,
            "without the portal"
        );
        let e = Config::parse("[smtp]\nbackbone_max_message_size = \"big\"\n").unwrap_err();
        assert!(e.to_string().contains("backbone_max_message_size"), "{e}");
    }
}
