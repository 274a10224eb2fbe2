//! `vgate`: the multi-protocol vehicle gateway (library half; `main.rs` is a thin shim).
//!
//! The binary is thin: it parses the command line (contract §1), loads the configuration
//! and hands over to one module per subcommand. Exit status: 0 success, 1 bad input
//! (a frame that does not decode, a command that is invalid), 2 bad usage or configuration.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::process::ExitCode;

use clap::Parser;

pub mod alarms;
pub mod api;
pub mod auth;
pub mod bans;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod decode;
pub mod encode;
pub mod front;
pub mod http;
pub mod listener;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod node;
pub mod packages;
pub mod process;
pub mod queue;
pub mod registry;
pub mod run;
pub mod session;
pub mod simulate;
pub mod sink;
pub mod stale;
pub mod tls;
pub mod traces;
pub mod vehicle_keys;
pub mod watch;

use cli::{Cli, Command};

/// How a subcommand failed, mapped to the contract's exit statuses.
#[derive(Debug)]
pub enum Failure {
    /// Bad input data (exit 1); the message was already printed where useful.
    Input(anyhow::Error),
    /// Bad usage or configuration (exit 2).
    Usage(anyhow::Error),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Input(_) => 1,
            Failure::Usage(_) => 2,
        }
    }
}

/// The `vgate` command line: parses arguments, runs the subcommand, maps failures to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Config(args) => config::print_default(args),
        Command::Run(args) => run::run(args.config),
        Command::Simulate(args) => simulate::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
                Failure::Input(e) | Failure::Usage(e) => {
                    let msg = format!("{e:#}");
                    if !msg.is_empty() {
                        eprintln!("vgate: {msg}");
                    }
                }
            }
            ExitCode::from(f.code())
        }
    }
}
