//! One module per command group.

pub mod address;
pub mod anchor;
pub mod bundle;
pub mod cert;
pub mod demo;
pub mod discover;
pub mod dns;
pub mod domain;
pub mod mailbox;
pub mod message;
pub mod quarantine;
pub mod queue;
pub mod serve;
pub mod serve_limits;
pub mod smime;
pub mod user;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as RFC 3339 (UTC), the form of every time in CLI output.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Prints a JSON value with a trailing newline.
pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    crate::input::write_stdout(text.as_bytes())
}

/// Prints rows under a header, columns aligned, two spaces apart. Nothing is
/// printed when there are no rows.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    crate::input::write_stdout(text.as_bytes())
}

/// Prints one line of confirmation.
pub(crate) fn say(line: &str) -> anyhow::Result<()> {
    crate::input::write_stdout(format!("{line}\n").as_bytes())
}
