//! Making text from outside safe to print: on a terminal, in a log file, in
//! a table. Mail, SMTP peers and certificates can carry control characters
//! (CR and LF that start a line of their own, ESC sequences that a terminal
//! obeys, C1 controls, Unicode line separators, bidirectional overrides that
//! reorder what is shown); each is written as a visible escape instead.
//!
//! Written here rather than taken from a crate: what counts as dangerous
//! (C0, DEL, C1, U+2028/2029 and the bidi controls) and the escape's form
//! (`\n`, `\x1b`, `\u{202e}`) are this project's choices, shared by the log
//! formatter and every CLI table, and fit in a few lines.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal or a log line as itself.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character escaped: `\r`, `\n` and `\t` as
/// such, other C0, DEL and C1 controls as `\xNN`, line separators and bidi
/// controls as `\u{NNNN}`. Text without any is returned as it is.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && u32::from(c) < 0x100 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "Blood pressure: 120/80 — Grüße, 血压";
        assert!(matches!(escape_control(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn line_breaks_and_terminal_controls_are_escaped() {
        assert_eq!(
            escape_control("a\r\nINFO forged\tx\x1b[2J\x07\x7f"),
            r"a\r\nINFO forged\tx\x1b[2J\x07\x7f"
        );
        assert_eq!(escape_control("c1\u{9b}31m"), r"c1\x9b31m");
        assert_eq!(
            escape_control("line\u{2028}sep \u{202e}txt.exe"),
            r"line\u{2028}sep \u{202e}txt.exe"
        );
    }

    #[test]
    fn escaped_text_is_one_line_of_printable_characters() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let escaped = escape_control(&all);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
    }
}
