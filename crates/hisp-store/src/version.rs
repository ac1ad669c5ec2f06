//! What a cache of key material and trust material built from the store
//! depends on.

/// A value that changes whenever the domains, addresses, certificates and
/// keys, anchors or bundles of the store may have changed, through this
/// store or through another connection (another process: the CLI). Two
/// readings compare equal only if nothing of that may have changed in
/// between, so a cache tagged with the version read before it was filled is
/// current while the version stays the same. A change elsewhere in the
/// store may move it too (never the other way round).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectoryVersion {
    /// Changes of those tables made through this store (SQLite; 0 for
    /// PostgreSQL, whose counter holds every store's).
    pub local: u64,
    /// The other connections' commits (SQLite's `PRAGMA data_version`);
    /// PostgreSQL's counter of changes to those tables by any store.
    pub outside: i64,
}
