//! `hisp`: the one binary of the Direct HISP. See `hisp --help`.

mod cli;
mod cmd;
mod config;
mod escape;
mod host;
mod input;
mod kinds;
mod logging;
mod memory;
mod notify;
mod queue_config;
mod relay_limits;
mod store;
mod store_config;

use std::process::ExitCode;

use crate::cli::{
    AddressCommand, AnchorCommand, BundleCommand, CertCommand, Cli, Command, DnsCommand,
    DomainCommand, SmimeCommand,
};
use crate::cli::{MailboxCommand, MessageCommand, QuarantineCommand, QueueCommand, UserCommand};
use crate::config::Config;
use clap::Parser;

fn main() -> ExitCode {
    memory::set_allocator_policy();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain on one line: what failed, then why.
            // A TOML error ends with a newline of its own.
            let text = format!("{e:#}");
            // Errors can quote what a peer sent: escaped, keeping the
            // line breaks of multi-line errors (a TOML error's snippet).
            eprintln!("hisp: {}", cmd::escape_lines(text.trim_end()));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    logging::init(&config.log);
    match cli.command {
        Command::Cert(CertCommand::Ca(args)) => cmd::cert::ca(&args, &config),
        Command::Cert(CertCommand::Issue(args)) => cmd::cert::issue(&args, &config),
        Command::Smime(SmimeCommand::Seal(args)) => cmd::smime::seal(&args, &config),
        Command::Smime(SmimeCommand::Open(args)) => cmd::smime::open(&args),
        Command::Domain(DomainCommand::Add(args)) => cmd::domain::add(&args, &config),
        Command::Domain(DomainCommand::List(args)) => cmd::domain::list(&args, &config),
        Command::Domain(DomainCommand::Remove(args)) => cmd::domain::remove(&args, &config),
        Command::Address(AddressCommand::Add(args)) => cmd::address::add(&args, &config),
        Command::Address(AddressCommand::List(args)) => cmd::address::list(&args, &config),
        Command::Address(AddressCommand::Remove(args)) => cmd::address::remove(&args, &config),
        Command::Anchor(AnchorCommand::Add(args)) => cmd::anchor::add(&args, &config),
        Command::Anchor(AnchorCommand::List(args)) => cmd::anchor::list(&args, &config),
        Command::Anchor(AnchorCommand::Remove(args)) => cmd::anchor::remove(&args, &config),
        Command::Bundle(BundleCommand::Add(args)) => cmd::bundle::add(&args, &config),
        Command::Bundle(BundleCommand::List(args)) => cmd::bundle::list(&args, &config),
        Command::Bundle(BundleCommand::Remove(args)) => cmd::bundle::remove(&args, &config),
        Command::Bundle(BundleCommand::Refresh(args)) => cmd::bundle::refresh(&args, &config),
        Command::Discover(args) => cmd::discover::discover(&args, &config),
        Command::Dns(DnsCommand::Export(args)) => cmd::dns::export(&args, &config),
        Command::Dns(DnsCommand::Serve(args)) => cmd::dns::serve(&args, &config),
        Command::User(UserCommand::Add(args)) => cmd::user::add(&args, &config),
        Command::User(UserCommand::Grant(args)) => cmd::user::grant(&args, &config),
        Command::User(UserCommand::List(args)) => cmd::user::list(&args, &config),
        Command::User(UserCommand::Set(args)) => cmd::user::set(&args, &config),
        Command::Mailbox(MailboxCommand::List(args)) => cmd::mailbox::list(&args, &config),
        Command::Mailbox(MailboxCommand::Show(args)) => cmd::mailbox::show(&args, &config),
        Command::Queue(QueueCommand::List(args)) => cmd::queue::list(&args, &config),
        Command::Queue(QueueCommand::Retry(args)) => cmd::queue::retry(&args, &config),
        Command::Message(MessageCommand::Status(args)) => cmd::message::status(&args, &config),
        Command::Message(MessageCommand::List(args)) => cmd::message::list(&args, &config),
        Command::Quarantine(QuarantineCommand::List(args)) => cmd::quarantine::list(&args, &config),
        Command::Quarantine(QuarantineCommand::Show(args)) => cmd::quarantine::show(&args, &config),
        Command::Serve => cmd::serve::serve(&config),
        Command::Demo => cmd::demo::demo(config, cli.config.as_deref()),
        Command::PortalUser(command) => cmd::portal_user::run(&command, &config),
        Command::Audit(command) => cmd::audit::run(&command, &config),
        Command::Store(command) => cmd::store::run(&command, &config),
    }
}
