//! An HTTP client of the portal API for tests through `hisp serve`: a
//! ureq agent keeping no cookies of its own, so each test says which
//! session (cookie and CSRF token) a request carries.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

/// The portal password the tests give every account.
pub const PORTAL_PASSWORD: &str = "a long portal password";

/// An HTTP client of one API, keeping no cookies of its own.
pub struct Api {
    agent: ureq::Agent,
    base: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Asserts an error: `status` and the `{"error","message"}` body.
    pub fn error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let j = self.json();
        assert_eq!(j["error"], code, "{j}");
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    }
}

#[derive(Clone)]
pub struct Login {
    pub cookie: String,
    pub csrf: String,
}

impl Api {
    pub fn http(addr: SocketAddr) -> Api {
        Api::with(format!("http://{addr}"), None)
    }

    pub fn with(base: String, tls: Option<ureq::tls::TlsConfig>) -> Api {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .timeout_global(Some(Duration::from_secs(30)));
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        Api {
            agent: ureq::Agent::new_with_config(config.build()),
            base,
        }
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        login: Option<&Login>,
        csrf: bool,
        body: Option<Value>,
    ) -> Reply {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(l) = login {
            req = req.header("Cookie", &l.cookie);
            if csrf {
                req = req.header("X-CSRF-Token", &l.csrf);
            }
        }
        let body = match body {
            Some(v) => {
                req = req.header("Content-Type", "application/json");
                v.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let mut resp = self
            .agent
            .run(req.body(body).unwrap())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.body_mut().read_to_vec().unwrap(),
        }
    }

    pub fn get(&self, path: &str, login: &Login) -> Reply {
        self.call("GET", path, Some(login), false, None)
    }

    pub fn try_login(&self, address: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/session",
            None,
            false,
            Some(json!({ "address": address, "password": password })),
        )
    }

    pub fn login(&self, address: &str) -> (Login, Reply) {
        self.login_with(address, PORTAL_PASSWORD)
    }

    /// Logs in with `password` (a generated one, say); panics unless 200.
    pub fn login_with(&self, address: &str, password: &str) -> (Login, Reply) {
        let r = self.try_login(address, password);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let cookie = r.header("set-cookie");
        let login = Login {
            cookie: cookie.split(';').next().unwrap().to_string(),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
        };
        (login, r)
    }
}

impl Api {
    /// A state-changing POST with the session's cookie and CSRF token.
    pub fn post(&self, path: &str, login: &Login, body: Value) -> Reply {
        self.call("POST", path, Some(login), true, Some(body))
    }
}
