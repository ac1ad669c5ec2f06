//! `hisp portal-user add|list|passwd|disable`: the accounts people log in to
//! the patient portal with, one per local Direct address.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use hisp_store::{DirectAddress, EmailAddress, NotifySettings, PortalUser, Store};
use serde_json::{json, Value};

use super::user::{generate_password, password_from_stdin};
use super::{print_json, print_table, rfc3339, say};
use crate::cli::ListArgs;
use crate::config::Config;
use crate::store;

/// `hisp portal-user ...`
#[derive(Debug, Subcommand)]
pub enum PortalUserCommand {
    /// Add a portal account for a local address. The password is read
    /// from stdin (--password-stdin) or generated and printed once
    /// (--generate); it is never taken from the command line.
    Add(PortalUserAddArgs),
    /// List the portal accounts with their notification settings.
    List(ListArgs),
    /// Replace a portal account's password.
    Passwd(PortalUserPasswdArgs),
    /// Disable a portal account: it can no longer log in.
    Disable(PortalUserArgs),
}

/// Where the password comes from.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("password").required(true))]
pub struct PasswordArgs {
    /// Read the password from the first line of stdin.
    #[arg(long, group = "password")]
    pub password_stdin: bool,
    /// Generate a random password and print it once.
    #[arg(long, group = "password")]
    pub generate: bool,
}

/// `hisp portal-user add`
#[derive(Debug, Args)]
pub struct PortalUserAddArgs {
    /// The local address the account logs in with and reads the mail of.
    #[arg(value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: DirectAddress,
    /// The user's ordinary e-mail address, told when new secure mail arrives.
    #[arg(long, value_name = "EMAIL", value_parser = parse_email)]
    pub email: Option<EmailAddress>,
    /// Send no e-mail about new secure mail (the user can turn it on later).
    #[arg(long)]
    pub no_notify: bool,
    /// Where the password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `hisp portal-user passwd`
#[derive(Debug, Args)]
pub struct PortalUserPasswdArgs {
    /// The account's address.
    #[arg(value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: DirectAddress,
    /// Where the password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// A single portal account argument.
#[derive(Debug, Args)]
pub struct PortalUserArgs {
    /// The account's address (its local part is matched without regard to case).
    #[arg(value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: DirectAddress,
}

fn parse_address(s: &str) -> Result<DirectAddress, String> {
    DirectAddress::parse(s).map_err(|e| e.to_string())
}

fn parse_email(s: &str) -> Result<EmailAddress, String> {
    EmailAddress::parse(s).map_err(|e| e.to_string())
}

/// Runs one `hisp portal-user` command.
pub fn run(command: &PortalUserCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        PortalUserCommand::Add(args) => add(args, config),
        PortalUserCommand::List(args) => list(args, config),
        PortalUserCommand::Passwd(args) => passwd(args, config),
        PortalUserCommand::Disable(args) => disable(args, config),
    }
}

/// The password the arguments ask for: generated, or the first line of stdin.
fn password(args: &PasswordArgs) -> anyhow::Result<String> {
    if args.generate {
        generate_password()
    } else {
        password_from_stdin()
    }
}

/// Prints a generated password once.
fn show_generated(args: &PasswordArgs, password: &str) -> anyhow::Result<()> {
    if args.generate {
        say(&format!(
            "password: {password}  (shown once: it is stored only as a hash)"
        ))?;
    }
    Ok(())
}

/// Fails with advice unless `address` is a local address.
fn require_local(store: &dyn Store, address: &DirectAddress) -> anyhow::Result<()> {
    match store.address(address) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => bail!(
            "address {address} is not a local address (`hisp address list` shows them, \
             `hisp address add {address}` adds it)"
        ),
        Err(e) => Err(e.into()),
    }
}

fn add(args: &PortalUserAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    require_local(&*store, &args.address)?;
    if store.portal_user(&args.address).is_ok() {
        bail!("portal user {} already exists", args.address);
    }
    let password = password(&args.password)?;
    let settings = NotifySettings {
        notify: !args.no_notify,
        email: args.email.clone(),
    };
    let user = store.add_portal_user(&args.address, &password, &settings)?;
    tracing::info!(address = %user.address, "added portal user");
    say(&format!("added portal user {}", user.address))?;
    show_generated(&args.password, &password)?;
    Ok(ExitCode::SUCCESS)
}

fn passwd(args: &PortalUserPasswdArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    // Named before a password is read or generated, so a typo costs nothing.
    store.portal_user(&args.address)?;
    let password = password(&args.password)?;
    let user = store.set_portal_password(&args.address, &password)?;
    tracing::info!(address = %user.address, "changed portal password");
    say(&format!(
        "changed the password of portal user {}",
        user.address
    ))?;
    show_generated(&args.password, &password)?;
    Ok(ExitCode::SUCCESS)
}

fn disable(args: &PortalUserArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let user = store.disable_portal_user(&args.address)?;
    tracing::info!(address = %user.address, "disabled portal user");
    say(&format!("disabled portal user {}", user.address))?;
    Ok(ExitCode::SUCCESS)
}

fn list(args: &ListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let users = store.portal_users()?;
    if args.json {
        print_json(&Value::Array(users.iter().map(user_json).collect()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.address.to_string(),
                if u.settings.notify { "on" } else { "off" }.to_string(),
                u.settings
                    .email
                    .as_ref()
                    .map_or_else(|| "-".to_string(), ToString::to_string),
                if u.is_enabled() {
                    "enabled"
                } else {
                    "disabled"
                }
                .to_string(),
                rfc3339(u.added_at),
            ]
        })
        .collect();
    print_table(&["ADDRESS", "NOTIFY", "EMAIL", "STATE", "ADDED"], &rows)?;
    Ok(ExitCode::SUCCESS)
}

fn user_json(u: &PortalUser) -> Value {
    json!({
        "address": u.address.to_string(),
        "email": u.settings.email.as_ref().map(ToString::to_string),
        "notify": u.settings.notify,
        "disabled": !u.is_enabled(),
        "disabled_at": u.disabled_at.map(rfc3339),
        "added_at": rfc3339(u.added_at),
    })
}
