//! The reader for blocks of RFC 822-style fields, the body of
//! `message/disposition-notification` (RFC 8098 §3.1) and `message/delivery-status`
//! (RFC 3464 §2.1).
//!
//! These are read by hand: mail-parser parses a message's header and MIME structure, but
//! hands these report bodies back as opaque bytes, and a DSN body is several field blocks
//! separated by blank lines, which no header parser splits. The reader is one linear pass:
//! no recursion, no backtracking.

/// One field of a block: its name as written and its unfolded, trimmed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    pub value: String,
}

/// A block of fields, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Block {
    pub fields: Vec<Field>,
}

impl Block {
    /// The value of the first field with this name (names compare case-insensitively,
    /// RFC 5322 §1.2.2).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// Every value of the fields with this name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// Does a field with this name occur?
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Splits a report body into its field blocks.
///
/// Accepts LF or CRLF line ends; a line holding only whitespace ends a block like an
/// empty line; a line starting with space or tab continues the previous field (RFC 5322
/// §2.2.3 unfolding: the line break is removed, the whitespace kept). Lines that are not
/// `name: value` are skipped rather than failing the whole report, and empty blocks are
/// dropped.
pub(crate) fn blocks(body: &[u8]) -> Vec<Block> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut current = Block::default();
    // Whether the last line read was a field, so a continuation line may extend it.
    let mut in_field = false;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            in_field = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if in_field {
                if let Some(last) = current.fields.last_mut() {
                    last.value.push_str(line);
                }
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if is_field_name(name.trim_end()) => {
                current.fields.push(Field {
                    name: name.trim_end().to_string(),
                    value: value.to_string(),
                });
                in_field = true;
            }
            _ => in_field = false,
        }
    }
    if !current.fields.is_empty() {
        out.push(current);
    }
    for block in &mut out {
        for field in &mut block.fields {
            let trimmed = field.value.trim();
            if trimmed.len() != field.value.len() {
                field.value = trimmed.to_string();
            }
        }
    }
    out
}

/// RFC 5322 §3.6.8: a field name is printable US-ASCII other than colon.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Removes RFC 5322 §3.2.2 comments (`(...)`, nested, with `\` quoted pairs) outside
/// quoted strings, replacing each by one space, and trims the result. An unclosed
/// comment runs to the end. RFC 3464 §2.1.1 and RFC 8098 §3.1.1 allow comments in the
/// structured fields of a report.
pub(crate) fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if depth > 0 || in_quote => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                in_quote = !in_quote;
                out.push(c);
            }
            '(' if !in_quote => {
                if depth == 0 {
                    out.push(' ');
                }
                depth += 1;
            }
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// Reads an `address-type ";" generic-address` value (RFC 3464 §2.3.1, RFC 8098 §3.2.3)
/// and returns the bare address: comments, the `rfc822;` type (any case, any spacing) and
/// angle brackets removed. A value without `;` is taken as a bare address. `None` when
/// nothing is left.
pub(crate) fn address_value(value: &str) -> Option<String> {
    let value = strip_comments(value);
    let addr = match value.split_once(';') {
        Some((_kind, addr)) => addr,
        None => value.as_str(),
    };
    let addr = addr.trim();
    let addr = addr
        .strip_prefix('<')
        .map(|a| a.strip_suffix('>').unwrap_or(a))
        .unwrap_or(addr)
        .trim();
    (!addr.is_empty()).then(|| addr.to_string())
}

/// Strips one pair of angle brackets and surrounding whitespace from a message-id.
pub(crate) fn bare_message_id(value: &str) -> Option<String> {
    let v = strip_comments(value);
    let v = v.trim();
    let v = v.strip_prefix('<').unwrap_or(v);
    let v = v.split('>').next().unwrap_or(v).trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Collapses whitespace runs (left by unfolding) to single spaces.
pub(crate) fn squash(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Shortens a value quoted in an error message so a hostile report cannot make a log
/// line arbitrarily long.
pub(crate) fn clip(value: &str) -> String {
    const MAX: usize = 200;
    if value.len() <= MAX {
        return value.to_string();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_blocks_and_unfolds_continuations_rfc5322_2_2_3() {
        let body = b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n  user unknown\r\n\r\n\r\n";
        let b = blocks(body);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].get("reporting-mta"), Some("dns; mx.example"));
        assert_eq!(
            b[1].get("DIAGNOSTIC-CODE"),
            Some("smtp; 550 5.1.1  user unknown")
        );
    }

    #[test]
    fn lf_only_and_whitespace_lines_separate_blocks() {
        let b = blocks(b"A: 1\n \t\nB: 2\nnot a field\n C: continues nothing\n");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].fields.len(), 1);
        assert_eq!(b[1].get("b"), Some("2"));
    }

    #[test]
    fn comments_are_removed_outside_quotes_rfc5322_3_2_2() {
        assert_eq!(strip_comments("5.1.1 (bad (nested) mailbox)"), "5.1.1");
        assert_eq!(strip_comments("\"a(b)\" c"), "\"a(b)\" c");
        assert_eq!(strip_comments("x (unclosed \\) still"), "x");
    }

    #[test]
    fn address_values_lose_type_brackets_and_spaces() {
        assert_eq!(address_value("rfc822;a@b").as_deref(), Some("a@b"));
        assert_eq!(address_value("RFC822 ; <a@b> ").as_deref(), Some("a@b"));
        assert_eq!(address_value("a@b (someone)").as_deref(), Some("a@b"));
        assert_eq!(address_value("rfc822;  "), None);
    }

    #[test]
    fn clip_respects_char_boundaries() {
        let long = "é".repeat(300);
        assert!(clip(&long).len() <= 203);
    }
}
