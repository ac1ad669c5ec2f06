//! SMTP for hisp: the submission and backbone listeners and the delivering client.
//!
//! The server side handles the protocol — sequence, syntax, limits, STARTTLS (RFC 3207),
//! AUTH PLAIN/LOGIN (RFC 4954), SIZE (RFC 1870), 8BITMIME, PIPELINING (RFC 2920),
//! ENHANCEDSTATUSCODES (RFC 2034/3463) — and asks a [`Policy`] for every decision about
//! accounts, addresses and messages. The client delivers messages to one host (several
//! over one session when they follow each other, kept in a [`SessionCache`]) and
//! classifies every reply as delivered, temporary or permanent for the retry logic.

pub mod client;
pub mod config;
mod conn;
mod data;
mod dialogue;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
mod lines;
pub mod policy;
pub mod reply;
mod sasl;
pub mod server;
pub mod session;
pub mod tls;

pub use client::{
    deliver, deliver_to, CacheStats, ClientConfig, ClientError, DeliveryReport, OutboundEnvelope,
    OutboundSession, Peer, RecipientOutcome, ReuseSettings, SessionCache, Stage,
};
pub use config::{Role, ServerConfig};
pub use error::SmtpError;
pub use policy::{Account, Policy};
pub use reply::{Refusal, Reply, Severity};
pub use server::{Server, Shutdown, ShutdownReport};
pub use session::{BodyType, Envelope, Helo, Session};
