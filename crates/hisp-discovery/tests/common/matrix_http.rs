//! A loopback HTTP server (127.0.0.1, port 0) serving fixed bodies by path,
//! counting the requests for each path; stopped when dropped. It stands in
//! for a CA's CRL distribution point and caIssuers URL. Adapted from
//! hisp-trust's test server.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Shared<T> = Arc<Mutex<HashMap<String, T>>>;

/// A running server; stopped on drop.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    routes: Shared<Vec<u8>>,
    hits: Shared<usize>,
    port: u16,
}

impl HttpServer {
    /// Starts serving nothing (404 everywhere) until [`HttpServer::put`].
    pub fn start() -> HttpServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let routes: Shared<Vec<u8>> = Arc::default();
        let hits: Shared<usize> = Arc::default();
        let thread = {
            let (server, routes, hits) = (server.clone(), routes.clone(), hits.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_string();
                    *hits.lock().expect("hits").entry(path.clone()).or_default() += 1;
                    let body = routes.lock().expect("routes").get(&path).cloned();
                    let response = match body {
                        Some(body) => tiny_http::Response::from_data(body).boxed(),
                        None => tiny_http::Response::from_string("not found")
                            .with_status_code(404)
                            .boxed(),
                    };
                    let _ = request.respond(response);
                }
            })
        };
        HttpServer {
            server,
            thread: Some(thread),
            routes,
            hits,
            port,
        }
    }

    /// Serves `body` at `path` (which starts with '/').
    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_string(), body);
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
