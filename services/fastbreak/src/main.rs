//! The FastBreak binary: parse the command line, set up logging, run the subcommand.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use fastbreak::cli::{Cli, Command, HealthArgs, MigrateArgs, ServeArgs};
use fastbreak::serve::{ListenConfig, serve};
use fastbreak::targets;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(args) => run_serve(args).await,
        Command::Health(args) => run_health(args).await,
        Command::Migrate(args) => run_migrate(args).await,
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

async fn run_migrate(args: MigrateArgs) -> ExitCode {
    use fastbreak_db::migrate;
    use fastbreak_db::pool::{is_postgres_url, redact_url};
    if !is_postgres_url(&args.database_url) {
        eprintln!("fastbreak migrate: DATABASE_URL: expected a postgres:// or postgresql:// URL (value not shown)");
        return ExitCode::from(2);
    }
    let target = redact_url(&args.database_url);
    if args.status {
        return match migrate::schema_status(&args.database_url).await {
            Ok(status) => {
                for (version, name) in migrate::known_migrations() {
                    let state = if status.applied.contains(&version) { "applied" } else { "pending" };
                    println!("{state:8} {name}");
                }
                if status.is_current() {
                    println!("{target}: schema is current");
                    ExitCode::SUCCESS
                } else {
                    println!("{target}: {} migration(s) pending; run `fastbreak migrate`", status.pending.len());
                    ExitCode::FAILURE
                }
            }
            Err(error) => {
                eprintln!("fastbreak migrate: {error}");
                ExitCode::FAILURE
            }
        };
    }
    match migrate::run_pending_migrations(&args.database_url).await {
        Ok(applied) if applied.is_empty() => {
            println!("{target}: schema is current; nothing to apply");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            let names = migrate::known_migrations();
            for version in &applied {
                let name = names.iter().find(|(v, _)| v == version).map_or(version.as_str(), |(_, n)| n.as_str());
                println!("applied {name}");
            }
            println!("{target}: applied {} migration(s)", applied.len());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("fastbreak migrate: {error}");
            ExitCode::FAILURE
        }
    }
}
