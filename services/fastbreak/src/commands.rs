//! What each subcommand does, from configuration to exit code: a library so that tests can
//! run it, with `main` only parsing the command line and dispatching.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use fastbreak_config::Reader;

use crate::cli::{HealthArgs, MigrateArgs, ServeArgs, StatusArgs, UpArgs};
use crate::config::{MetricsAddr, ServeConfig};
use crate::serve::serve;
use crate::targets;

/// Plain logging for the one-shot commands.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// `fastbreak serve`: the given targets until SIGTERM or ctrl-c.
pub async fn run_serve(args: ServeArgs) -> ExitCode {
    let targets = match targets::parse(&args.target) {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("fastbreak serve: {error}");
            return ExitCode::from(2);
        }
    };
    run_targets("serve", &targets, Reader::from_process_env(), None).await
}

/// `fastbreak fake-market`: the real market's fakes with a generated demo day, until stopped.
pub async fn run_fake_market(args: crate::cli::FakeMarketArgs) -> ExitCode {
    use fastbreak_flow::{demo, fake, fake_graphql, fake_nba};
    let market = demo::demo_market(args.seed, chrono::Utc::now());
    let chain = fake::FakeChain::new(market.blocks);
    let api = fake_graphql::FakeTopShotApi::new(market.moments);
    api.add_transactions(market.sales);
    let nba = fake_nba::FakeNbaLiveData::new(&market.date, market.games);
    let (access, graphql, live) = (chain.serve().await, api.serve().await, nba.serve().await);
    println!("flow access node: {}", access.address);
    println!("topshot graphql: {}", graphql.url());
    println!("nba live data: {}", live.url());
    println!(
        "run: fastbreak up --market flow --flow-access {} --flow-start-height {} --topshot-graphql {} --nba-live-data {}",
        access.address,
        demo::FIRST_HEIGHT,
        graphql.url(),
        live.url()
    );
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

/// `fastbreak up`: a private PostgreSQL (unless `DATABASE_URL` is set), migrated, every target,
/// and the demo data, until SIGTERM or ctrl-c. Each step is shown as it happens.
pub async fn run_up(args: UpArgs) -> ExitCode {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    for (name, value) in args.settings() {
        vars.retain(|(k, _)| *k != name);
        vars.push((name, value));
    }
    let configured_dir = vars.iter().find(|(k, _)| k == "FASTBREAK_DATA_DIR").map(|(_, v)| v.clone());
    let dir = crate::up::data_dir(configured_dir.as_deref());
    if args.fresh {
        if let Err(error) = crate::up::start_fresh(&dir) {
            eprintln!("fastbreak up: --fresh: {error}");
            return ExitCode::FAILURE;
        }
        println!("data: starting over in {}", dir.display());
    }
    let database = if vars.iter().any(|(k, v)| k == "DATABASE_URL" && !v.trim().is_empty()) {
        println!("database: using DATABASE_URL");
        None
    } else {
        println!("database: starting the private PostgreSQL in {}", dir.join("postgres").display());
        match crate::up::private_database(&dir).await {
            Ok(database) => {
                if let Some(cluster) = &database.cluster {
                    println!(
                        "database: private PostgreSQL on 127.0.0.1:{} (data in {})",
                        cluster.port(),
                        cluster.dir().display()
                    );
                    if !cluster.stops_on_drop() {
                        println!("database: reusing the server another `up` started; it keeps running after this one");
                    }
                    for difference in cluster.differences() {
                        println!("database: note: {difference}");
                    }
                    if !cluster.has_password() {
                        println!(
                            "database: note: this data folder uses trust authentication (made by an older FastBreak); remove {} to recreate it with a password",
                            cluster.dir().display()
                        );
                    }
                }
                vars.push(("DATABASE_URL".to_owned(), database.url.clone()));
                Some(database)
            }
            Err(error) => {
                eprintln!("fastbreak up: cannot start the private PostgreSQL: {error}");
                return ExitCode::FAILURE;
            }
        }
    };
    let url = vars.iter().rev().find(|(k, _)| k == "DATABASE_URL").map(|(_, v)| v.clone()).unwrap_or_default();
    if fastbreak_db::pool::is_postgres_url(&url) {
        println!("database: migrating");
        match crate::up::migrate(&url).await {
            Ok(line) => println!("database: {line}"),
            Err(error) => {
                eprintln!("fastbreak up: cannot migrate the database: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Operators (and `fastbreak status`) read the system's health with a credential of their
    // own: the configured one, or one kept in the data folder.
    if !vars.iter().any(|(k, v)| k == "FASTBREAK_OPERATOR_TOKEN" && !v.is_empty()) {
        match crate::up::secret_file(&crate::up::operator_token_file(&dir)) {
            Ok(token) => vars.push(("FASTBREAK_OPERATOR_TOKEN".to_owned(), token)),
            Err(error) => {
                eprintln!("fastbreak up: the operator credential: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("starting: {} targets", targets::ALL.len());
    let announce: Box<dyn FnOnce(Vec<BoundTarget>) + Send> = Box::new(move |addrs| announce_up(addrs, dir));
    let code = run_targets("up", &targets::ALL, Reader::new(vars), Some(announce)).await;
    drop(database); // stops the private PostgreSQL
    code
}

/// Once every target is SERVING: says so target by target, seeds the demo data through the
/// gateway, and prints the gateway's address, the demo user's token and what to try, each on a
/// line of its own.
fn announce_up(addrs: Vec<BoundTarget>, data_dir: std::path::PathBuf) {
    tokio::spawn(async move {
        for (name, addr) in &addrs {
            // Targets wait for their database with no end; so does this announcement.
            while let Err(error) = fastbreak_mesh::wait_serving(&addr.to_string(), "", Duration::from_secs(60)).await {
                tracing::info!(target_name = name, %error, "still waiting for SERVING");
            }
            println!("{name} SERVING");
        }
        let gateway = addrs.iter().find(|(name, _)| *name == "gateway").map(|(_, addr)| *addr);
        let web = addrs.iter().find(|(name, _)| *name == "web").map(|(_, addr)| *addr);
        let demo = match gateway {
            Some(gateway) => match crate::demo::seed(gateway, &data_dir).await {
                Ok(demo) => Some(demo),
                Err(error) => {
                    println!("demo: the demo data could not be seeded: {error}");
                    None
                }
            },
            None => None,
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "FastBreak is up: every target is SERVING");
        if let Some(web) = web {
            let _ = writeln!(out, "dashboard: http://{web}/");
        }
        if let Some(gateway) = gateway {
            let _ = writeln!(out, "gateway: {gateway}");
            if let Some(demo) = demo {
                let _ = writeln!(out, "demo user: {}", demo.email);
                let _ = writeln!(out, "demo password: in {}", data_dir.join("demo-password").display());
                let _ = writeln!(out, "token: {}", demo.token);
                let _ = writeln!(out, "try this:");
                for command in crate::demo::try_this(gateway, &demo.token) {
                    let _ = writeln!(out, "  {command}");
                }
            }
        }
        let _ = out.flush();
    });
}

/// `fastbreak status`: every service's health from the gateway's `GetSystemHealth`, as a table;
/// 0 only when all are SERVING.
pub async fn run_status(args: StatusArgs) -> ExitCode {
    let configured = std::env::var("FASTBREAK_OPERATOR_TOKEN").ok().filter(|t| !t.is_empty());
    let token = match configured {
        Some(token) => token,
        None => {
            let dir = crate::up::data_dir(std::env::var("FASTBREAK_DATA_DIR").ok().as_deref());
            let file = crate::up::operator_token_file(&dir);
            match std::fs::read_to_string(&file) {
                Ok(token) => token.trim().to_owned(),
                Err(error) => {
                    eprintln!(
                        "fastbreak status: no operator credential: FASTBREAK_OPERATOR_TOKEN is not set and {} cannot be read ({error})",
                        file.display()
                    );
                    return ExitCode::from(2);
                }
            }
        }
    };
    match crate::status::system_health(&args.gateway, &token, args.timeout).await {
        Ok(health) => {
            print!("{}", crate::status::table(&health));
            if crate::status::all_serving(&health) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => {
            eprintln!("fastbreak status: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `fastbreak backtest`: a backtest through the gateway, its report written; 0 once it succeeded.
pub async fn run_backtest(args: crate::cli::BacktestArgs) -> ExitCode {
    match crate::backtest::run(&args, |line| println!("{line}")).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fastbreak backtest: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A target's name and the address it is bound to.
type BoundTarget = (&'static str, std::net::SocketAddr);

async fn run_targets(
    command: &str,
    targets: &[crate::targets::Target],
    reader: Reader,
    mut on_all_bound: Option<Box<dyn FnOnce(Vec<BoundTarget>) + Send>>,
) -> ExitCode {
    // Every variable is checked before anything is bound or started.
    let config = match ServeConfig::read(reader, targets, &crate::targets::ALL) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("fastbreak {command}: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match fastbreak_telemetry::init(&config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("fastbreak {command}: {error}");
            return ExitCode::from(2);
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let MetricsAddr::At(addr) = config.metrics {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("fastbreak {command}: metrics: cannot listen on {addr} (FASTBREAK_METRICS_ADDR): {error}");
                return ExitCode::FAILURE;
            }
        };
        if let Ok(bound) = listener.local_addr() {
            announce("metrics", bound);
        }
        let mut stop = stop_rx.clone();
        tokio::spawn(fastbreak_telemetry::metrics::serve_metrics(listener, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }));
    }
    let shutdown = async move {
        fastbreak_mesh::shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    let expected = targets.len();
    let mut bound = Vec::with_capacity(expected);
    let on_bound = |server: &fastbreak_mesh::BoundServer| {
        announce(server.target(), server.local_addr());
        bound.push((server.target(), server.local_addr()));
        if bound.len() == expected
            && let Some(callback) = on_all_bound.take()
        {
            callback(std::mem::take(&mut bound));
        }
    };
    let outcome = serve(targets, &config, on_bound, shutdown).await;
    telemetry.shutdown();
    match outcome {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("fastbreak {command}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Prints "<name> listening on <address>" on a line of its own.
fn announce(name: &str, addr: std::net::SocketAddr) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{name} listening on {addr}");
    let _ = stdout.flush();
}

/// `fastbreak health`: 0 only when the server answers SERVING; else one line saying why.
pub async fn run_health(args: HealthArgs) -> ExitCode {
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

/// `fastbreak migrate`: apply pending migrations, or with `--status` list them.
pub async fn run_migrate(args: MigrateArgs) -> ExitCode {
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
