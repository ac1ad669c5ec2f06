//! Configuration errors in words: serde names the kind a value should have
//! by its Rust type (`expected usize`, `expected u16`), which says nothing to
//! an administrator; these name it as `docs/configuration.md` does.
//!
//! Rewritten on the error's text, in one place, so that every key reads the
//! same, including keys added later: serde builds these messages from the
//! primitive types' own visitors, and giving every number in the
//! configuration its own deserializer would miss the next one.

/// serde's names of kinds, each with the words said instead.
const KINDS: &[(&str, &str)] = &[
    ("u8", "a whole number from 0 to 255"),
    ("u16", "a whole number from 0 to 65535"),
    ("u32", "a whole number (0 or more)"),
    ("u64", "a whole number (0 or more)"),
    ("u128", "a whole number (0 or more)"),
    ("usize", "a whole number (0 or more)"),
    ("i8", "a whole number"),
    ("i16", "a whole number"),
    ("i32", "a whole number"),
    ("i64", "a whole number"),
    ("i128", "a whole number"),
    ("isize", "a whole number"),
    ("f32", "a number"),
    ("f64", "a number"),
    ("char", "a single character"),
    ("path string", "a path (a string)"),
];

/// `message` with each `expected <type>` naming the kind in words.
pub fn in_words(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    const EXPECTED: &str = "expected ";
    while let Some(at) = rest.find(EXPECTED) {
        let (before, after) = rest.split_at(at + EXPECTED.len());
        out.push_str(before);
        rest = after;
        let kind = KINDS.iter().find(|(name, _)| {
            rest.strip_prefix(name)
                .is_some_and(|tail| !tail.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        });
        if let Some((name, words)) = kind {
            out.push_str(words);
            rest = &rest[name.len()..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            in_words("invalid type: string \"big\", expected usize"),
            "invalid type: string \"big\", expected a whole number (0 or more)"
        );
        assert_eq!(
            in_words("invalid value: integer `70000`, expected u16\n"),
            "invalid value: integer `70000`, expected a whole number from 0 to 65535\n"
        );
        assert_eq!(
            in_words("invalid type: integer `7`, expected path string"),
            "invalid type: integer `7`, expected a path (a string)"
        );
    }

    #[test]
    fn other_text_is_left_alone() {
        for text in [
            "invalid type: string \"yes\", expected a boolean",
            "expected u16x, expected usizes",
            "unknown field `port`, expected one of `a`, `b`",
            "",
        ] {
            assert_eq!(in_words(text), text);
        }
    }
}
