//! The command line: every command, flag and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hisp_smime::{ContentCipher, KeyTransport};
use hisp_store::{
    AnchorSelector, DirectAddress, Direction, Domain, Folder, Grant, MailboxEntryId, MessageId,
    QuarantineId, QueueState, TrackFilter, TrackingState, UserName, MIN_REFRESH_SECS,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// hisp: a Direct Project HISP (Health Information Service Provider).
///
/// It runs the HISP (`hisp serve`: SMTP submission for portals and EHRs, the
/// backbone to other HISPs, S/MIME signing and encryption, certificate
/// discovery in DNS and LDAP, trust anchors, delivery notification) and
/// administers it: domains, addresses, certificates, anchors, bundles,
/// accounts, mailboxes, the queue, message tracking and quarantine.
#[derive(Debug, Parser)]
#[command(
    name = "hisp",
    version,
    propagate_version = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Configuration file (TOML). Defaults to $HISP_CONFIG; without either,
    /// built-in defaults are used.
    #[arg(long, global = true, env = "HISP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Examples shown under `hisp --help`.
const EXAMPLES: &str = "\
Examples:
  hisp --config config/demo.toml demo                  run the newcomer demo
  hisp --config hisp.toml serve                        run the HISP
  hisp --config hisp.toml domain add direct.example.org
  hisp --config hisp.toml mailbox list doc@direct.example.org
  hisp --config hisp.toml message status '<id@direct.example.org>'
  hisp discover bob@b.example --json

Every command takes --config FILE (or $HISP_CONFIG); `hisp COMMAND --help` says more.";

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make test and demo certificates: a CA, and address- or domain-bound
    /// certificates it issues.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Seal (wrap, sign, encrypt) and open (decrypt, verify, unwrap) Direct messages.
    #[command(subcommand)]
    Smime(SmimeCommand),
    /// Local domains: the domains this HISP serves (kept in <data_dir>/hisp.db).
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Local Direct addresses and their certificates and keys.
    #[command(subcommand)]
    Address(AddressCommand),
    /// Trust anchors of local domains: whose mail is trusted, in and out.
    #[command(subcommand)]
    Anchor(AnchorCommand),
    /// Trust bundles (PKCS#7) attached to local domains.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Find and judge the certificates of a Direct address (DNS CERT, then
    /// LDAP). Exit 0: a usable, trusted certificate exists; 2: none; 3:
    /// temporary failure.
    Discover(DiscoverArgs),
    /// Publish the local certificates in DNS: zone-file lines, or a built-in responder.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Submission accounts (portals, EHRs) and the sender addresses they may use.
    #[command(subcommand)]
    User(UserCommand),
    /// Mailboxes of local addresses.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// The queue of messages in transit, with each recipient's tracking state.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Outbound messages and where each recipient is: queued, relayed,
    /// processed, dispatched, delivered or failed (delivery notification).
    #[command(subcommand)]
    Message(MessageCommand),
    /// Inbound messages held back as untrusted, undecryptable or tampered.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Run the HISP: the submission and backbone SMTP listeners, the queue
    /// worker and, when [dns_responder] listen is set, the DNS responder,
    /// until SIGTERM or Ctrl-C.
    #[command(after_help = "\
Examples:
  hisp --config /etc/hisp/hisp.toml serve
  RUST_LOG=debug hisp --config hisp.toml serve    more detail than [log] level

Set up its domains, addresses, anchors and a submission account first (`hisp domain add`,
`hisp address add`, `hisp anchor add`, `hisp user add`).")]
    Serve,
    /// Run `hisp serve` as a demo (use --config config/demo.toml): on first
    /// start, two demo domains, their CAs, a patient and a provider address
    /// with certificates, mutual anchors, a submission account `demo` and
    /// portal accounts for the patient and the provider, whose generated
    /// passwords are printed once, and a welcome message from the provider
    /// to the patient. Every start serves the portal and prints its URL.
    #[command(after_help = "\
Examples:
  hisp --config config/demo.toml demo
  # then open the printed portal URL and log in as the patient with the printed password,
  # or, from another terminal, with the printed password of `demo`:
  swaks --server 127.0.0.1:2587 --auth PLAIN --auth-user demo --auth-password PASSWORD \\
      --from patient@patients.demo.test --to provider@clinic.demo.test --header 'Subject: hello'
  hisp --config config/demo.toml mailbox list provider@clinic.demo.test")]
    Demo,
    /// Patient portal accounts: one per local Direct address, logging in
    /// with it and reading its mailbox.
    #[command(subcommand)]
    PortalUser(crate::cmd::portal_user::PortalUserCommand),
    /// The audit trail: verify its hash chain, export its events.
    #[command(subcommand)]
    Audit(crate::cmd::audit::AuditCommand),
    /// The store itself: bring its schema up to date (`hisp serve` does so
    /// at start too).
    #[command(subcommand)]
    Store(crate::cmd::store::StoreCommand),
}

/// `hisp user ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp user add portal --generate                 prints the new password once
  printf '%s\\n' \"$PASSWORD\" | hisp user add ehr --password-stdin
  hisp user grant portal patient@patients.example.org
  hisp user grant ehr @clinic.example.org          every address of the domain
  hisp user list --json")]
pub enum UserCommand {
    /// Add a submission account. The password is read from stdin
    /// (--password-stdin) or generated and printed once (--generate); it
    /// is never taken from the command line.
    Add(UserAddArgs),
    /// Let an account send as a local address, or as any address of a local
    /// domain (@DOMAIN).
    Grant(UserGrantArgs),
    /// List the accounts with what they may send as.
    List(ListArgs),
    /// Change an account's settings.
    Set(UserSetArgs),
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

impl Switch {
    /// Whether it is on.
    pub fn is_on(self) -> bool {
        self == Switch::On
    }
}

/// `hisp user set`
#[derive(Debug, Args)]
pub struct UserSetArgs {
    /// The account.
    #[arg(value_name = "NAME", value_parser = parse_user)]
    pub name: UserName,
    /// Whether mail the account submits requests final delivery
    /// notification (dispatched MDNs).
    #[arg(long, value_enum)]
    pub final_delivery: Switch,
    /// Print the account as JSON (shape in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp user add`
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("password").required(true))]
pub struct UserAddArgs {
    /// The login name (letters, digits and .-_@+).
    #[arg(value_name = "NAME", value_parser = parse_user)]
    pub name: UserName,
    /// Read the password from the first line of stdin.
    #[arg(long, group = "password")]
    pub password_stdin: bool,
    /// Generate a random password and print it once.
    #[arg(long, group = "password")]
    pub generate: bool,
    /// Do not request final delivery notification (dispatched MDNs) for
    /// mail this account submits.
    #[arg(long)]
    pub no_final_delivery: bool,
}

/// `hisp user grant`
#[derive(Debug, Args)]
pub struct UserGrantArgs {
    /// The account.
    #[arg(value_name = "NAME", value_parser = parse_user)]
    pub name: UserName,
    /// A local address, or @DOMAIN for every address of a local domain.
    #[arg(value_name = "ADDRESS|@DOMAIN", value_parser = parse_grant)]
    pub grant: Grant,
}

/// A mailbox folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FolderArg {
    /// Mail received.
    Inbox,
    /// Mail sent.
    Sent,
    /// Mail set aside.
    Disregarded,
}

impl From<FolderArg> for Folder {
    fn from(f: FolderArg) -> Folder {
        match f {
            FolderArg::Inbox => Folder::Inbox,
            FolderArg::Sent => Folder::Sent,
            FolderArg::Disregarded => Folder::Disregarded,
        }
    }
}

/// `hisp mailbox ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp mailbox list provider@clinic.demo.test
  hisp mailbox list provider@clinic.demo.test --folder sent --json
  hisp mailbox show 3 > message.eml               the message as stored
  hisp mailbox show 3 --json")]
pub enum MailboxCommand {
    /// List one folder of a mailbox, newest first.
    List(MailboxListArgs),
    /// Print one message of a mailbox exactly as stored (does not mark it read).
    Show(MailboxShowArgs),
}

/// `hisp mailbox list`
#[derive(Debug, Args)]
pub struct MailboxListArgs {
    /// The local address.
    #[arg(value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: DirectAddress,
    /// The folder.
    #[arg(long, value_enum, default_value_t = FolderArg::Inbox)]
    pub folder: FolderArg,
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp mailbox show`
#[derive(Debug, Args)]
pub struct MailboxShowArgs {
    /// The message id, as listed by `hisp mailbox list`.
    #[arg(value_name = "ID", value_parser = parse_mailbox_id)]
    pub id: MailboxEntryId,
    /// Print the entry and the message (base64) as JSON (shape in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// Which queue entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueStateArg {
    /// Waiting or being worked on.
    Pending,
    /// Finished.
    Done,
    /// Given up.
    Failed,
}

impl From<QueueStateArg> for QueueState {
    fn from(s: QueueStateArg) -> QueueState {
        match s {
            QueueStateArg::Pending => QueueState::Pending,
            QueueStateArg::Done => QueueState::Done,
            QueueStateArg::Failed => QueueState::Failed,
        }
    }
}

/// `hisp queue ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp queue list
  hisp queue list --state pending --json
  hisp queue retry 42
  hisp queue retry --all")]
pub enum QueueCommand {
    /// List queued messages with each recipient's tracking state.
    List(QueueListArgs),
    /// Make pending messages due now (a running `hisp serve` takes them at
    /// once), instead of at their next attempt by the retry schedule.
    Retry(QueueRetryArgs),
}

/// `hisp queue retry`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
pub struct QueueRetryArgs {
    /// The queue entry, as listed by `hisp queue list` (ID column, `id` in JSON).
    #[arg(value_name = "ID")]
    pub id: Option<i64>,
    /// Every pending entry not yet due.
    #[arg(long)]
    pub all: bool,
    /// Print JSON (shape in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp queue list`
#[derive(Debug, Args)]
pub struct QueueListArgs {
    /// Only entries in this state. Default: all.
    #[arg(long, value_enum)]
    pub state: Option<QueueStateArg>,
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp message ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp message list
  hisp message list --state failed --json
  hisp message status '<lab-1@patients.demo.test>'  quoted: the shell reads < and > otherwise
  hisp message status lab-1@patients.demo.test      the angle brackets are optional")]
pub enum MessageCommand {
    /// Show where each recipient of an outbound message is, when it reached
    /// each step, and why it failed.
    Status(MessageStatusArgs),
    /// List outbound messages, newest first, with each recipient's state.
    List(MessageListArgs),
}

/// `hisp message status`
#[derive(Debug, Args)]
pub struct MessageStatusArgs {
    /// The Message-ID, with or without its angle brackets.
    #[arg(value_name = "MESSAGE-ID", value_parser = parse_message_id)]
    pub message_id: MessageId,
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Which outbound messages `hisp message list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrackStateArg {
    /// A recipient is queued: nothing sent yet.
    Queued,
    /// A recipient was accepted by the destination HISP.
    Relayed,
    /// A recipient's `processed` MDN arrived.
    Processed,
    /// A recipient's `dispatched` MDN arrived.
    Dispatched,
    /// A recipient is delivered.
    Delivered,
    /// A recipient failed.
    Failed,
    /// A recipient is neither delivered nor failed yet.
    Pending,
}

impl From<TrackStateArg> for TrackFilter {
    fn from(s: TrackStateArg) -> TrackFilter {
        match s {
            TrackStateArg::Queued => TrackFilter::State(TrackingState::Queued),
            TrackStateArg::Relayed => TrackFilter::State(TrackingState::Relayed),
            TrackStateArg::Processed => TrackFilter::State(TrackingState::Processed),
            TrackStateArg::Dispatched => TrackFilter::State(TrackingState::Dispatched),
            TrackStateArg::Delivered => TrackFilter::State(TrackingState::Delivered),
            TrackStateArg::Failed => TrackFilter::State(TrackingState::Failed),
            TrackStateArg::Pending => TrackFilter::Pending,
        }
    }
}

/// `hisp message list`
#[derive(Debug, Args)]
pub struct MessageListArgs {
    /// Only messages with a recipient in this state (`pending`: not yet
    /// delivered or failed). Default: all.
    #[arg(long, value_enum)]
    pub state: Option<TrackStateArg>,
    /// Also list the MDNs and DSNs hisp sent itself and the e-mail notices
    /// of new secure mail to portal users.
    #[arg(long)]
    pub notifications: bool,
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp quarantine ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp quarantine list
  hisp quarantine show 2 > held.eml               the message as received
  hisp quarantine show 2 --json")]
pub enum QuarantineCommand {
    /// List quarantined messages with their reasons.
    List(ListArgs),
    /// Print one quarantined message as received, or its record as JSON.
    Show(QuarantineShowArgs),
}

/// `hisp quarantine show`
#[derive(Debug, Args)]
pub struct QuarantineShowArgs {
    /// The id, as listed by `hisp quarantine list`.
    #[arg(value_name = "ID", value_parser = parse_quarantine_id)]
    pub id: QuarantineId,
    /// Print the record and the message (base64) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hisp discover`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  hisp discover bob@b.example
  hisp discover bob@b.example --nameserver 127.0.0.1:5353 --anchor b-ca.pem --json")]
pub struct DiscoverArgs {
    /// The Direct address (user@domain).
    pub address: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// A name server to ask (IP:PORT). Repeatable. Default: [discovery]
    /// nameservers in the config, else the system's.
    #[arg(long = "nameserver", value_name = "IP:PORT")]
    pub nameservers: Vec<std::net::SocketAddr>,
    /// A trust anchor (PEM or DER; a PEM file may hold several). Repeatable.
    /// Default: the outgoing anchors of the local domains in the store.
    #[arg(long = "anchor", value_name = "FILE")]
    pub anchors: Vec<PathBuf>,
    /// Judge validity at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub at: Option<OffsetDateTime>,
}

/// `hisp dns ...`
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Print CERT records (RFC 4398) for the local addresses and domains, as
    /// zone-file lines that BIND 9 loads unchanged.
    Export(DnsExportArgs),
    /// Answer CERT queries for the local certificates on an address, until Ctrl-C.
    Serve(DnsServeArgs),
}

/// `hisp dns export`
#[derive(Debug, Args)]
pub struct DnsExportArgs {
    /// Also print an A record with this address and an MX record for each
    /// local domain (a demo's mail routing). Default: [dns_responder] mail_ip.
    #[arg(long, value_name = "IPV4")]
    pub mail_ip: Option<std::net::Ipv4Addr>,
}

/// `hisp dns serve`
#[derive(Debug, Args)]
pub struct DnsServeArgs {
    /// Address to answer on (UDP and TCP). Default: [dns_responder] listen.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Also answer A and MX for each local domain with this address.
    /// Default: [dns_responder] mail_ip.
    #[arg(long, value_name = "IPV4")]
    pub mail_ip: Option<std::net::Ipv4Addr>,
}

/// `hisp cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create a self-signed root CA: writes ca.pem, ca.der and ca.key (mode 0600).
    Ca(CaArgs),
    /// Issue a certificate bound to one Direct address or one domain: writes
    /// cert.pem, cert.der and key.pem (mode 0600).
    Issue(IssueArgs),
}

/// `hisp cert ca`
#[derive(Debug, Args)]
pub struct CaArgs {
    /// Common name of the CA.
    #[arg(long, value_name = "NAME")]
    pub cn: String,
    /// Directory to write into (created if missing; existing files are never
    /// overwritten). Defaults to `<data_dir>/ca` when the config sets data_dir.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// RSA key size.
    #[arg(long, default_value_t = 2048, value_parser = parse_bits)]
    pub bits: u32,
    /// Days of validity from now.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
}

/// Which key usage an issued certificate gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageArg {
    /// digitalSignature and keyEncipherment: one certificate for both.
    Both,
    /// digitalSignature only: a signing certificate.
    Signing,
    /// keyEncipherment only: an encryption certificate.
    Encryption,
}

/// `hisp cert issue`
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Directory of the issuing CA (ca.pem and ca.key). Defaults to
    /// `<data_dir>/ca` when the config sets data_dir.
    #[arg(long, value_name = "DIR")]
    pub ca: Option<PathBuf>,
    /// Issue an address-bound certificate (subjectAltName rfc822Name).
    #[arg(
        long,
        value_name = "USER@DOMAIN",
        conflicts_with = "domain",
        required_unless_present = "domain"
    )]
    pub address: Option<String>,
    /// Issue a domain-bound certificate (subjectAltName dNSName).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Directory to write into (created if missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// RSA key size.
    #[arg(long, default_value_t = 2048, value_parser = parse_bits)]
    pub bits: u32,
    /// Days of validity (from now, from --not-before, or ending yesterday with --expired).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: Option<u32>,
    /// Start of validity, RFC 3339 (2024-01-31T00:00:00Z). May be in the past.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub not_before: Option<OffsetDateTime>,
    /// End of validity, RFC 3339. May be in the past, for expired test certificates.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub not_after: Option<OffsetDateTime>,
    /// Make a certificate that expired yesterday (for tests).
    #[arg(long, conflicts_with_all = ["not_before", "not_after"])]
    pub expired: bool,
    /// Key usage.
    #[arg(long, value_enum, default_value_t = UsageArg::Both)]
    pub usage: UsageArg,
}

/// `hisp smime ...`
#[derive(Debug, Subcommand)]
pub enum SmimeCommand {
    /// Seal an RFC 5322 message read from stdin: wrap, sign (SHA-256) and
    /// encrypt to every recipient. The sealed message goes to stdout.
    Seal(SealArgs),
    /// Open a sealed message read from stdin: decrypt, verify, check trust,
    /// unwrap. The inner message goes to stdout; exit 0 only when decrypted,
    /// verified and trusted.
    Open(OpenArgs),
}

/// `hisp smime seal`
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The sender's certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub signer_cert: PathBuf,
    /// The sender's private key (PEM or DER).
    #[arg(long, value_name = "FILE")]
    pub signer_key: PathBuf,
    /// A recipient's certificate (PEM or DER; a PEM file may hold several). Repeatable.
    #[arg(long = "recipient-cert", value_name = "FILE", required = true)]
    pub recipient_certs: Vec<PathBuf>,
    /// Content cipher: aes256-cbc, aes128-cbc or aes256-gcm. Default: [smime] cipher
    /// in the config, else aes256-cbc.
    #[arg(long, value_name = "CIPHER")]
    pub cipher: Option<ContentCipher>,
    /// Key transport: pkcs1, oaep-sha1 or oaep-sha256. Default: [smime]
    /// key_transport in the config, else pkcs1.
    #[arg(long, value_name = "ALG")]
    pub key_transport: Option<KeyTransport>,
    /// Copy the Subject to the outer (unprotected) headers. Default: [smime]
    /// copy_subject in the config, else off.
    #[arg(long)]
    pub copy_subject: bool,
}

/// `hisp smime open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// A recipient certificate (PEM or DER), paired in order with --key. Repeatable.
    #[arg(long = "cert", value_name = "FILE", required = true)]
    pub certs: Vec<PathBuf>,
    /// The private key of the --cert at the same position. Repeatable.
    #[arg(long = "key", value_name = "FILE", required = true)]
    pub keys: Vec<PathBuf>,
    /// A trust anchor (PEM or DER; a PEM file may hold several). Repeatable.
    #[arg(long = "anchor", value_name = "FILE", required = true)]
    pub anchors: Vec<PathBuf>,
    /// Check validity at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub at: Option<OffsetDateTime>,
    /// Write a JSON report to stdout instead of the inner message.
    #[arg(long)]
    pub json: bool,
}

/// `hisp domain ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp domain add direct.example.org
  hisp domain add direct.example.org --cert-from ca/        with a domain-bound certificate
  hisp domain list --json")]
pub enum DomainCommand {
    /// Add a local domain, optionally with a domain-bound certificate and key.
    Add(DomainAddArgs),
    /// List the local domains.
    List(ListArgs),
    /// Remove a local domain with its anchors, bundles and domain
    /// certificates. Refused while it has addresses.
    Remove(DomainArgs),
}

/// `hisp domain add`
#[derive(Debug, Args)]
pub struct DomainAddArgs {
    /// The domain, e.g. direct.example.org (stored lower-case).
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Domain,
    /// Where its domain-bound certificate comes from, if it has one.
    #[command(flatten)]
    pub cert: CertSourceArgs,
}

/// A single domain argument.
#[derive(Debug, Args)]
pub struct DomainArgs {
    /// The domain.
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Domain,
}

/// `--json` for list commands.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where a certificate and its private key come from.
#[derive(Debug, Args)]
pub struct CertSourceArgs {
    /// Issue a new certificate (and key) from the CA in this directory
    /// (ca.pem and ca.key, as made by `hisp cert ca`).
    #[arg(long, value_name = "CA_DIR", conflicts_with_all = ["cert", "key"])]
    pub cert_from: Option<PathBuf>,
    /// Import this certificate (PEM or DER) ...
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// ... with this private key (PEM or DER, unencrypted). It is stored in
    /// the database, which is kept at mode 0600.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

/// `hisp address ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp address add doc@direct.example.org --cert-from ca/
  hisp address add doc@direct.example.org --cert doc.pem --key doc.key
  hisp address list --json")]
pub enum AddressCommand {
    /// Add a Direct address of a local domain, optionally with an
    /// address-bound certificate and key.
    Add(AddressAddArgs),
    /// List the local addresses with their certificates.
    List(ListArgs),
    /// Remove a local address with its certificates and keys.
    Remove(AddressArgs),
}

/// `hisp address add`
#[derive(Debug, Args)]
pub struct AddressAddArgs {
    /// The address, user@domain; its domain must be local.
    #[arg(value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: DirectAddress,
    /// Where its address-bound certificate comes from, if it has one.
    #[command(flatten)]
    pub cert: CertSourceArgs,
}

/// A single address argument.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// The address (its local part is matched without regard to case).
    #[arg(value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: DirectAddress,
}

/// Which mail an anchor or bundle is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// Signers of incoming mail.
    In,
    /// Recipients of outgoing mail.
    Out,
    /// Both.
    Both,
}

impl From<DirectionArg> for Direction {
    fn from(d: DirectionArg) -> Direction {
        match d {
            DirectionArg::In => Direction::Incoming,
            DirectionArg::Out => Direction::Outgoing,
            DirectionArg::Both => Direction::Both,
        }
    }
}

/// `hisp anchor ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp anchor add direct.example.org partner-ca.pem --direction both
  hisp anchor list --domain direct.example.org
  hisp anchor remove direct.example.org 1A2B3C")]
pub enum AnchorCommand {
    /// Add the certificates in FILE (PEM, possibly several, or DER) as trust
    /// anchors of a local domain. In force for the next message.
    Add(AnchorAddArgs),
    /// List trust anchors.
    List(AnchorListArgs),
    /// Remove a trust anchor of a domain, named by its SHA-256 fingerprint
    /// or its serial number. In force for the next message.
    Remove(AnchorRemoveArgs),
}

/// `hisp anchor add`
#[derive(Debug, Args)]
pub struct AnchorAddArgs {
    /// The local domain.
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Domain,
    /// The certificate file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Which mail the anchors are trusted for.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
}

/// `hisp anchor list`
#[derive(Debug, Args)]
pub struct AnchorListArgs {
    /// Only the anchors of this domain.
    #[arg(long, value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Option<Domain>,
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp anchor remove`
#[derive(Debug, Args)]
pub struct AnchorRemoveArgs {
    /// The local domain.
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Domain,
    /// SHA-256 fingerprint (64 hex digits, colons allowed) or serial number (hex).
    #[arg(value_name = "FINGERPRINT|SERIAL", value_parser = parse_selector)]
    pub anchor: AnchorSelector,
}

/// `hisp bundle ...`
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Attach a trust bundle (PKCS#7 certs-only, DER or PEM) from an
    /// http(s) URL or a file to a local domain.
    Add(BundleAddArgs),
    /// List trust bundles with the state of their last fetch.
    List(BundleListArgs),
    /// Detach a trust bundle from a domain.
    Remove(BundleRemoveArgs),
    /// Fetch every bundle (of one domain, or all) now. A failed fetch keeps
    /// the last good copy and is reported; the exit status is 1 if any failed.
    Refresh(BundleRefreshArgs),
}

/// `hisp bundle refresh`
#[derive(Debug, Args)]
pub struct BundleRefreshArgs {
    /// Only the bundles of this domain.
    #[arg(long, value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Option<Domain>,
}

/// `hisp bundle add`
#[derive(Debug, Args)]
pub struct BundleAddArgs {
    /// The local domain.
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Domain,
    /// An http:// or https:// URL, or a file (which must exist).
    #[arg(value_name = "URL|FILE")]
    pub source: String,
    /// Which mail the bundle's anchors are trusted for.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
    /// Seconds between refreshes.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u32).range(i64::from(MIN_REFRESH_SECS)..)
    )]
    pub refresh: u32,
}

/// `hisp bundle list`
#[derive(Debug, Args)]
pub struct BundleListArgs {
    /// Only the bundles of this domain.
    #[arg(long, value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Option<Domain>,
    /// Print JSON (shapes in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hisp bundle remove`
#[derive(Debug, Args)]
pub struct BundleRemoveArgs {
    /// The local domain.
    #[arg(value_name = "DOMAIN", value_parser = parse_domain)]
    pub domain: Domain,
    /// The URL or file, as listed by `hisp bundle list`.
    #[arg(value_name = "URL|FILE")]
    pub source: String,
}

fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::parse(s).map_err(|e| e.to_string())
}

fn parse_address(s: &str) -> Result<DirectAddress, String> {
    DirectAddress::parse(s).map_err(|e| e.to_string())
}

fn parse_user(s: &str) -> Result<UserName, String> {
    UserName::parse(s).map_err(|e| e.to_string())
}

fn parse_grant(s: &str) -> Result<Grant, String> {
    Grant::parse(s).map_err(|e| e.to_string())
}

fn parse_id(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "not an id: use the number shown by the list command".to_string())
}

fn parse_mailbox_id(s: &str) -> Result<MailboxEntryId, String> {
    parse_id(s).map(MailboxEntryId)
}

fn parse_quarantine_id(s: &str) -> Result<QuarantineId, String> {
    parse_id(s).map(QuarantineId)
}

fn parse_message_id(s: &str) -> Result<MessageId, String> {
    MessageId::parse(s).map_err(|e| e.to_string())
}

fn parse_selector(s: &str) -> Result<AnchorSelector, String> {
    AnchorSelector::parse(s).map_err(|e| e.to_string())
}

fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        "4096" => Ok(4096),
        _ => Err("use 2048, 3072 or 4096".into()),
    }
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time like 2024-01-31T00:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
