//! Test PKIs, a loopback HTTP server and bundle files, shared by the
//! integration tests. Each test binary uses only part of this.
#![allow(dead_code)]

pub mod http;
pub mod pki;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One day in seconds.
pub const DAY: i64 = 86_400;
