//! The FastBreak binary: parse the command line, set up logging, run the subcommand.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use fastbreak::cli::{Cli, Command, HealthArgs, ServeArgs};
use fastbreak::serve::{ListenConfig, serve};
use fastbreak::targets;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(args) => run_serve(args).await,
        Command::Health(args) => run_health(args).await,
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn run_serve(args: ServeArgs) -> ExitCode {
    let targets = match targets::parse(&args.target) {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("fastbreak serve: {error}");
            return ExitCode::from(2);
        }
    };
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let config = match ListenConfig::from_vars(&vars) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("fastbreak serve: {error}");
            return ExitCode::from(2);
        }
    };
    let announce = |server: &fastbreak_mesh::BoundServer| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{} listening on {}", server.target(), server.local_addr());
        let _ = stdout.flush();
    };
    match serve(&targets, &config, announce, fastbreak_mesh::shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("fastbreak serve: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_health(args: HealthArgs) -> ExitCode {
    match fastbreak_mesh::check_health(&args.addr, &args.service, args.timeout).await {
        Ok(()) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("NOT SERVING: {error}");
            ExitCode::FAILURE
        }
    }
}
