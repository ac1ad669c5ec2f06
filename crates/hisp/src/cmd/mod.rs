//! One module per command group.

pub mod address;
pub mod anchor;
pub mod bundle;
pub mod cert;
pub mod demo;
pub mod demo_portal;
pub mod discover;
pub mod dns;
pub mod domain;
pub mod mailbox;
pub mod message;
pub mod quarantine;
pub mod queue;
pub mod serve;
pub mod serve_limits;
pub mod serve_portal;
pub mod serve_tls;
pub mod smime;
pub mod user;

pub mod audit;
pub mod portal_user;
pub mod store;
pub mod store_copy;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::escape::escape_control;

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
/// printed when there are no rows. Control characters in a cell (from mail,
/// peers or certificates) are escaped, so each row stays one line.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| escape_control(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
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
    for row in &rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    crate::input::write_stdout(text.as_bytes())
}

/// Prints one line of confirmation, its control characters escaped.
pub(crate) fn say(line: &str) -> anyhow::Result<()> {
    crate::input::write_stdout(format!("{}\n", escape_control(line)).as_bytes())
}

/// Prints lines of text with the control characters of each line escaped:
/// the line breaks are the command's own, whatever its values hold.
pub(crate) fn print_lines(text: &str) -> anyhow::Result<()> {
    crate::input::write_stdout(escape_lines(text).as_bytes())
}

/// `text` with each line's control characters escaped, its `\n` kept.
pub(crate) fn escape_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(body) => format!("{}\n", escape_control(body)),
            None => escape_control(line).into_owned(),
        })
        .collect()
}

/// Prints a message as stored. To a pipe or file: byte for byte. To a
/// terminal, which would obey the escape sequences a sender put in it: each
/// line with its control characters escaped (CR LF shown as a line end).
pub(crate) fn print_message(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return crate::input::write_stdout(bytes);
    }
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    print_lines(&text)
}
