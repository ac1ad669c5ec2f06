//! `hisp`: the one binary of the Direct HISP. See `hisp --help`.

mod cli;
mod cmd;
mod config;
mod input;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{CertCommand, Cli, Command, SmimeCommand};
use crate::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain on one line: what failed, then why.
            // A TOML error ends with a newline of its own.
            let text = format!("{e:#}");
            eprintln!("hisp: {}", text.trim_end());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    init_logging(&config);
    match cli.command {
        Command::Cert(CertCommand::Ca(args)) => cmd::cert::ca(&args, &config),
        Command::Cert(CertCommand::Issue(args)) => cmd::cert::issue(&args, &config),
        Command::Smime(SmimeCommand::Seal(args)) => cmd::smime::seal(&args, &config),
        Command::Smime(SmimeCommand::Open(args)) => cmd::smime::open(&args),
    }
}

/// Logs go to stderr so that stdout carries only the command's output.
fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log.level.to_string()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
