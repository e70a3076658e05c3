//! The FastBreak binary: parse the command line and run the subcommand.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::process::ExitCode;

use clap::Parser;
use fastbreak::cli::{Cli, Command};
use fastbreak::commands;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => commands::run_serve(args).await,
        Command::Up(args) => commands::run_up(args).await,
        Command::Status(args) => commands::run_status(args).await,
        Command::Health(args) => commands::run_health(args).await,
        Command::FakeMarket(args) => commands::run_fake_market(args).await,
        Command::Backtest(args) => commands::run_backtest(args).await,
        Command::Migrate(args) => {
            commands::init_logging();
            commands::run_migrate(args).await
        }
    }
}
