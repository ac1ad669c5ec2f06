//! One module per command group.

pub mod cert;
pub mod smime;
