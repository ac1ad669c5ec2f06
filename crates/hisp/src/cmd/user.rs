//! `hisp user add|grant|list|set`: submission accounts.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hisp_store::{Account, MIN_PASSWORD_LEN};
use serde_json::{json, Value};

use super::{print_json, print_table, rfc3339, say};
use crate::cli::{ListArgs, UserAddArgs, UserGrantArgs, UserSetArgs};
use crate::config::Config;
use crate::store;

/// Length of a generated password: 24 characters of 62 carry about 143 bits.
pub(crate) const GENERATED_LEN: usize = 24;

/// Adds an account; the password comes from stdin or is generated and
/// printed once.
pub fn add(args: &UserAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    if store.user(&args.name).is_ok() {
        bail!("user {} already exists", args.name);
    }
    let password = if args.generate {
        generate_password()?
    } else {
        password_from_stdin()?
    };
    store.add_user(&args.name, &password)?;
    let account = if args.no_final_delivery {
        store.set_request_final_delivery(&args.name, false)?
    } else {
        store.user(&args.name)?
    };
    tracing::info!(user = %account.name, "added user");
    say(&format!("added user {}", account.name))?;
    if args.generate {
        say(&format!(
            "password: {password}  (shown once: it is stored only as a hash)"
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of stdin, without its line ending.
pub(crate) fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on stdin (give it as the first line)");
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("the password must be at least {MIN_PASSWORD_LEN} characters long");
    }
    Ok(password.to_string())
}

/// A random password of letters and digits, drawn without modulo bias
/// (also the demo account's).
pub(crate) fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(GENERATED_LEN);
    let mut buf = [0u8; 64];
    while out.len() < GENERATED_LEN {
        openssl::rand::rand_bytes(&mut buf).context("no randomness for a password")?;
        // 248 = 4 * 62: bytes above it would favour the first letters.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == GENERATED_LEN {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Grants an account a sender address or domain.
pub fn grant(args: &UserGrantArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let account = store.grant(&args.name, &args.grant)?;
    tracing::info!(user = %account.name, grant = %args.grant, "granted sender");
    say(&format!("user {} may send as {}", account.name, args.grant))?;
    Ok(ExitCode::SUCCESS)
}

/// Lists the accounts.
pub fn list(args: &ListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let users = store.users()?;
    if args.json {
        print_json(&Value::Array(users.iter().map(account_json).collect()))?;
    } else {
        print_accounts(&users)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Changes whether an account's mail requests final delivery notification,
/// then prints the account as `list` does.
pub fn set(args: &UserSetArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let on = args.final_delivery.is_on();
    let account = store.set_request_final_delivery(&args.name, on)?;
    tracing::info!(user = %account.name, final_delivery = on, "changed user");
    if args.json {
        print_json(&account_json(&account))?;
    } else {
        print_accounts(std::slice::from_ref(&account))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The text table of `list`.
fn print_accounts(accounts: &[Account]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let grants: Vec<String> = a.grants.iter().map(ToString::to_string).collect();
            vec![
                a.name.to_string(),
                if a.request_final_delivery {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
                if grants.is_empty() {
                    "-".to_string()
                } else {
                    grants.join(",")
                },
            ]
        })
        .collect();
    print_table(&["USER", "FINAL-DELIVERY", "MAY-SEND-AS"], &rows)
}

fn account_json(a: &Account) -> Value {
    json!({
        "name": a.name.as_str(),
        "request_final_delivery": a.request_final_delivery,
        "may_send_as": a.grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "added_at": rfc3339(a.added_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), GENERATED_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
