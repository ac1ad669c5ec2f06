//! A site with its portal listener for tests through `hisp serve`: portal
//! accounts, the `[portal]` section, start-up waiting for the portal's
//! listener, and reading the folder list. Included beside `serve.rs` and
//! `portal_client.rs`.

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::common::s;
use crate::portal_client::PORTAL_PASSWORD;
use crate::serve::{eventually, Serve, Site};

/// Adds a portal account for `address` at `site`, with the tests' password.
pub fn portal_user(site: &Site, address: &str) {
    site.run(
        &["portal-user", "add", address, "--password-stdin"],
        format!("{PORTAL_PASSWORD}\n").as_bytes(),
    )
    .ok();
}

/// Appends `[portal]` with `lines` to `site`'s config.
pub fn add_portal_section(site: &Site, lines: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(site.config())
        .unwrap();
    write!(file, "[portal]\n{lines}").unwrap();
}

/// Starts `hisp serve` for `site` and waits for its SMTP, DNS and portal
/// listeners; the log goes to `NAME.log` in the site.
pub fn start_with_portal(site: &Site, portal: SocketAddr, name: &str) -> Serve {
    start_with_portal_env(site, portal, name, &[])
}

/// As [`start_with_portal`], with `env` set for the process.
pub fn start_with_portal_env(
    site: &Site,
    portal: SocketAddr,
    name: &str,
    env: &[(&str, &str)],
) -> Serve {
    let mut listeners = site.listeners().to_vec();
    listeners.push(portal);
    Serve::launch_env(
        "serve",
        &site.config(),
        site.path(&format!("{name}.log")),
        &listeners,
        Duration::from_secs(20),
        env,
    )
}

/// Waits until `serve`'s log has `line` (written just after the listener
/// is bound, so possibly after it first takes a connection).
pub fn await_announce(serve: &Serve, line: &str) {
    eventually(
        Duration::from_secs(10),
        || serve.log().contains(line).then_some(()),
        || serve.log(),
    );
}

/// The `unread` count of folder `name` in a `GET /api/v1/folders` answer.
pub fn unread(folders: &Value, name: &str) -> u64 {
    folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {folders}"))["unread"]
        .as_u64()
        .unwrap()
}

/// A second address at `site` with its own certificate from the site's CA.
pub fn add_address_with_cert(site: &Site, address: &str) {
    let dir = site.cert_dir(address);
    site.run(
        &["cert", "issue", "--address", address, "--out", &s(&dir)],
        b"",
    )
    .ok();
    let (cert, key) = (s(&dir.join("cert.pem")), s(&dir.join("key.pem")));
    site.run(
        &["address", "add", address, "--cert", &cert, "--key", &key],
        b"",
    )
    .ok();
}
