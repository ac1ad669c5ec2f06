//! Where mail for a destination domain goes: static routes from the
//! configuration (`[[route]]`). MX lookup is not built yet: a domain without a
//! route cannot be reached and its mail waits (and finally fails) in the queue.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Destination domain (lower case) to the SMTP server that takes its mail.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    map: HashMap<String, SocketAddr>,
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Sends mail for `domain` to `server`, replacing any earlier route.
    pub fn insert(&mut self, domain: &str, server: SocketAddr) {
        self.map.insert(normalize(domain), server);
    }

    /// The server for `domain`, if routed.
    pub fn get(&self, domain: &str) -> Option<SocketAddr> {
        self.map.get(&normalize(domain)).copied()
    }
}

fn normalize(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_match_without_regard_to_case_or_trailing_dot() {
        let mut routes = Routes::new();
        let addr: SocketAddr = "127.0.0.1:2525".parse().unwrap();
        routes.insert("B.Example.", addr);
        assert_eq!(routes.get("b.example"), Some(addr));
        assert_eq!(routes.get("c.example"), None);
    }
}
