//! The gateway of hisp: where the parts meet. This crate holds the Direct
//! rules applied to every message — the header policy at submission
//! (`policy`), sealing per destination domain (`outbound`) and the judgement
//! of an inbound message (`inbound`) — as functions of bytes, certificates
//! and anchors. The listeners, queue and workers that call them come with
//! `hisp serve` (not built yet).

pub mod inbound;
pub mod outbound;
pub mod policy;

pub use inbound::{judge_inbound, InboundContext, InboundVerdict};
pub use outbound::{destinations, seal_for, Destination};
pub use policy::{check_submission, PolicyError, Submission};
