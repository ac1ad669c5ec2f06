//! Logging to stderr, as `[log]` says: text lines (the default) or one JSON
//! object per line (`format = "json"`).
//!
//! Values in logs come from peers (an AUTH user name, an envelope address,
//! an SMTP reply, a certificate subject). Neither format lets one forge a
//! line or drive a terminal: in text, the field formatter escapes the
//! control characters of every field value and of the message
//! ([`crate::escape::escape_control`]); in JSON, serde escapes C0 controls
//! and [`JsonStderr`] the rest (DEL, C1, line separators, bidi controls).
//! Colour codes are written only to a terminal, never to a file or pipe
//! (and not when `NO_COLOR` is set).
//!
//! In JSON each line carries the spans it was written in (`spans`, outermost
//! first), so each line of a message's life has its `msg_id`.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::escape::{escape_control, is_unsafe};

/// The format in force, for [`announce`].
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `[log]
/// level`.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.level.to_string()));
    let _ = FORMAT.set(config.format);
    match config.format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_ansi(colour())
            .fmt_fields(EscapedFields)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_writer(|| JsonStderr)
            .init(),
    }
}

/// Colour only on a terminal, and not when `NO_COLOR` is set (no-color.org).
fn colour() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes a line for the administrator watching `hisp serve` (where it
/// listens, that it stops) to stderr, whatever the level: as it is in text,
/// as a JSON log line in JSON, so the log stays one format.
pub fn announce(text: &str) {
    match FORMAT.get() {
        Some(LogFormat::Json) => {
            let line = serde_json::json!({
                "timestamp": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
                "level": "INFO",
                "message": text,
                "target": "hisp",
            });
            // One write of the whole line: the log layer writes its lines
            // from other threads, and `writeln!` would write piece by piece,
            // letting their lines land inside this one.
            // stderr gone: nowhere to say so.
            let _ = JsonStderr.write_all(format!("{line}\n").as_bytes());
        }
        _ => eprintln!("{}", escape_control(text)),
    }
}

/// Field formatting for text lines: `name=value` separated by spaces, the
/// message first without a name, each value with its control characters
/// escaped so that it stays on its line and cannot drive a terminal.
struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    empty: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            // `log.*` fields carry the location of records from the `log`
            // crate, which the line shows already.
            return;
        }
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        let value = escape_control(value);
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{value}")
        } else {
            write!(self.writer, "{separator}{}={value}", field.name())
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, value);
        } else {
            // Quoted, as the default formatter shows strings.
            self.write(field, &format!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        self.write(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

/// stderr for JSON lines, with the characters serde leaves as they are but
/// a terminal or line reader may act on (DEL, C1 controls, U+2028/2029,
/// bidi controls) written as JSON `\uXXXX` escapes. They occur only inside
/// JSON strings, so the line stays valid JSON with the same meaning.
struct JsonStderr;

impl Write for JsonStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut err = io::stderr().lock();
        match std::str::from_utf8(buf) {
            Ok(text) if text.chars().any(needs_json_escape) => {
                let mut out = String::with_capacity(text.len() + 16);
                for c in text.chars() {
                    if needs_json_escape(c) {
                        out.push_str(&format!("\\u{:04x}", u32::from(c)));
                    } else {
                        out.push(c);
                    }
                }
                err.write_all(out.as_bytes())?;
            }
            _ => err.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// What serde_json writes raw but must not reach a log line as itself (it
/// escapes C0 controls already; a line break ends the line).
fn needs_json_escape(c: char) -> bool {
    c != '\n' && is_unsafe(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_serde_leaves_raw_and_keeps_line_ends() {
        for c in ['\u{7f}', '\u{85}', '\u{9b}', '\u{2028}', '\u{202e}'] {
            assert!(needs_json_escape(c), "{c:?}");
        }
        for c in ['\n', 'a', 'é', '血'] {
            assert!(!needs_json_escape(c), "{c:?}");
        }
    }
}
