//! The store: a trait and its SQLite implementation.
