//! A loopback HTTP server on a free port that serves fixed bodies by path
//! and counts the requests for each path; stopped when dropped.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    routes: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    port: u16,
}

impl Server {
    pub fn start() -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let thread = {
            let (server, routes, hits) = (server.clone(), routes.clone(), hits.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_string();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let body = routes.lock().unwrap().get(&path).cloned();
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
        Server {
            server,
            thread: Some(thread),
            routes,
            hits,
            port,
        }
    }

    /// Serves `body` at `path` (which starts with '/').
    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.routes.lock().unwrap().insert(path.to_string(), body);
    }

    /// Stops serving `path` (404 from now on).
    pub fn remove(&self, path: &str) {
        self.routes.lock().unwrap().remove(path);
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A URL on a loopback port where nothing listens (connection refused).
pub fn dead_url(path: &str) -> String {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    format!("http://127.0.0.1:{port}{path}")
}
