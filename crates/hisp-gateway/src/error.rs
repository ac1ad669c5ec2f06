//! What can go wrong in the pipeline outside the Direct rules themselves.

use hisp_smime::SmimeError;
use hisp_store::StoreError;

/// A failure of the pipeline: the store, a background task, key material.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The store refused or failed a call.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blocking task (store call, judgement) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// A stored certificate or key could not be used.
    #[error("key material of {owner}: {source}")]
    Keys {
        /// The address or domain whose certificate it is.
        owner: String,
        /// What S/MIME said about it.
        #[source]
        source: SmimeError,
    },
    /// The certificate store of a domain's anchors could not be built.
    #[error("anchors of {domain}: {source}")]
    Anchors {
        /// The local domain.
        domain: String,
        /// What OpenSSL said.
        #[source]
        source: hisp_trust::TrustError,
    },
    /// No certificate with a private key that can sign for the sender.
    #[error("no signing certificate with a private key for {0} (address or domain)")]
    NoSigningKey(String),
}

impl From<tokio::task::JoinError> for GatewayError {
    fn from(e: tokio::task::JoinError) -> Self {
        GatewayError::Task(e.to_string())
    }
}
