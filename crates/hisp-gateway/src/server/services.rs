//! What the caller adds to a server: services that live beside the SMTP
//! listeners (the portal's HTTP listener, which lives in a crate above this
//! one) and work done once at start (`hisp demo`'s welcome message).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hisp_store::Store;

use super::BoundAddresses;
use crate::portal_submit::PortalSender;

/// An error of a service the caller attached, kept as its own error type.
pub type ServiceError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed future that can move between threads, as the service traits
/// return them (so that implementing them needs no macro crate).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What an attached service is started with.
#[derive(Clone)]
pub struct ServiceContext {
    /// Sends as a portal user does, through the same checks as the
    /// submission listener.
    pub portal_sender: PortalSender,
    /// The store the server serves.
    pub store: Arc<dyn Store>,
    /// Where the server's listeners and responder are bound.
    pub addresses: BoundAddresses,
}

/// A service to start with the server: after the SMTP listeners serve, and
/// before the queue engine starts. Stopped after the listeners have
/// drained and before the engine stops, so what it still accepts is queued
/// while the engine runs.
pub trait Attachment: Send {
    /// Starts the service (binds its listener, spawns its tasks).
    fn start(
        self: Box<Self>,
        ctx: ServiceContext,
    ) -> BoxFuture<Result<Box<dyn RunningService>, ServiceError>>;
}

/// An attached service that runs.
pub trait RunningService: Send {
    /// Stops taking work and lets the work under way finish, for at most
    /// `drain`.
    fn stop(self: Box<Self>, drain: Duration) -> BoxFuture<()>;
}

/// Work done once the listeners and the DNS responder are up, before the
/// queue engine starts, given the portal's sender (`hisp demo` queues its
/// welcome message); what it queues is the engine's first work.
pub type OnStart = Box<dyn FnOnce(PortalSender) -> BoxFuture<()> + Send>;
