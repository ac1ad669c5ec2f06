//! `--help` as a newcomer reads it (issue 10, "A newcomer's first hour"):
//! `hisp --help` says what hisp is, a HISP and not only certificate and
//! S/MIME commands, and the main commands show examples.

mod common;

use common::hisp;

fn help(args: &[&str]) -> String {
    let run = hisp(args, b"").ok();
    run.stdout_text()
}

#[test]
fn hisp_help_describes_the_hisp_and_shows_examples() {
    let text = help(&["--help"]);
    assert!(text.starts_with("hisp: a Direct Project HISP"), "{text}");
    for word in [
        "hisp serve",
        "mailboxes",
        "Examples:",
        "config/demo.toml demo",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
    assert!(
        !text.contains("certificates, S/MIME seal and open)"),
        "{text}"
    );
}

#[test]
fn main_commands_show_examples_in_their_help() {
    for command in [
        "serve",
        "demo",
        "mailbox",
        "message",
        "queue",
        "quarantine",
        "user",
        "domain",
        "address",
        "anchor",
        "discover",
        "store",
    ] {
        let text = help(&[command, "--help"]);
        assert!(
            text.contains("Examples:\n  hisp"),
            "hisp {command} --help:\n{text}"
        );
    }
}

/// The id in `hisp message status` may be pasted with its angle brackets
/// (quoted) or without them; both name the same message.
#[test]
fn message_status_help_says_the_brackets_are_optional_and_to_quote_them() {
    let text = help(&["message", "--help"]);
    assert!(text.contains("'<lab-1@patients.demo.test>'"), "{text}");
    assert!(text.contains("angle brackets are optional"), "{text}");
}
