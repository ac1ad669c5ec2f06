//! The gateway of hisp: where the parts meet. This crate holds the Direct
//! rules applied to every message — the header policy at submission
//! (`policy`), sealing per destination domain (`outbound`) and the judgement
//! of an inbound message (`inbound`) — as functions of bytes, certificates
//! and anchors, and the pipeline that applies them: the SMTP policy of the
//! submission and backbone listeners (`smtp_policy`) and the queue workers
//! (`worker`), which also keep the delivery notification of Direct: MDNs
//! written for mail received (`notice`), MDNs and DSNs received tracked,
//! timeouts and DSNs to our own senders. The portal sends through the same
//! checks (`submit`): its messages are composed (`compose`) and queued by
//! `portal_submit`. `server` assembles all of it into one running server,
//! which `hisp serve` and `hisp demo` start.

pub mod auth_guard;
pub mod bundles;
pub mod compose;
pub mod context;
pub mod discovered;
pub mod error;
pub mod header_bytes;
pub mod header_view;
pub mod inbound;
mod inbound_refusal;
pub mod material;
mod notice;
pub mod outbound;
pub mod policy;
pub mod portal_notice;
pub mod portal_submit;
pub mod routes;
pub mod server;
pub mod smtp_policy;
pub mod store_calls;
pub mod submit;
pub mod worker;

pub use auth_guard::{AuthGuard, AuthLimits};
pub use bundles::{refresh_bundles, BundleOutcome};
pub use context::{GatewayContext, TrustSettings};
pub use error::GatewayError;
pub use header_bytes::{check_header_bytes, HeaderByteError};
pub use header_view::HeaderView;
pub use inbound::{judge_inbound, InboundContext, InboundRefusal, InboundVerdict};
pub use material::{KeyUse, Material};
pub use outbound::{destinations, seal_for, Destination};
pub use policy::{check_submission, PolicyError, SendingAccount, Submission};
pub use portal_notice::NoticeSettings;
pub use portal_submit::{
    Outcome, PortalSendError, PortalSendSettings, PortalSender, QueuedOnce, ReplyDraft, Sent,
    SentRecipient,
};
pub use routes::{RouteError, Routes};
pub use server::{
    BoundServer, RunningServer, ServerBuilder, ServerError, ServerSettings, StopReport,
};
pub use smtp_policy::GatewayPolicy;
pub use store_calls::StoreHandle;
pub use worker::{
    default_concurrency, RetrySchedule, Worker, WorkerSettings, DEFAULT_LEASE,
    DEFAULT_PER_DESTINATION,
};
