//! The command line.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// FastBreak collects NBA Top Shot moments automatically. This one binary runs any set of its
/// gRPC services and the tools around them.
#[derive(Debug, Parser)]
#[command(name = "fastbreak", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one or more targets, each on its own port, until SIGTERM or ctrl-c.
    ///
    /// Each target listens on FASTBREAK_LISTEN_HOST (default 127.0.0.1) at its default port,
    /// or at FASTBREAK_<TARGET>_LISTEN_ADDR when set (port 0 picks a free port). One line per
    /// target, "<target> listening on <address>", is printed on standard output once bound.
    Serve(ServeArgs),
    /// Run the whole system on this machine, each target on its default port, with demo data.
    ///
    /// Without DATABASE_URL, starts a private PostgreSQL from the local PostgreSQL binaries
    /// in FASTBREAK_DATA_DIR (default .fastbreak; kept between runs) and migrates it. Shows
    /// each step, then, once every target reports SERVING, seeds a demo user (a wallet, paper
    /// funds, confirmed limits, one active strategy of each kind) and prints the gateway's
    /// address, the demo user's access token and three grpcurl commands to try. The market
    /// simulator runs at one simulated hour per FASTBREAK_SIMULATOR_TICK (default 5s). Stops
    /// everything, the private PostgreSQL too, on SIGTERM or ctrl-c.
    Up(UpArgs),
    /// Show every service's health, as the gateway sees it; exit 1 unless all are SERVING.
    ///
    /// Asks the gateway's GetSystemHealth with the operator credential: FASTBREAK_OPERATOR_TOKEN,
    /// or the one `fastbreak up` keeps in FASTBREAK_DATA_DIR (default .fastbreak).
    Status(StatusArgs),
    /// Check a server's `grpc.health.v1` status; exit 0 only when it is SERVING.
    ///
    /// Prints one line saying why otherwise, and exits 1. Used as the container health check.
    Health(HealthArgs),
    /// Apply the pending database migrations to DATABASE_URL and report what was applied.
    ///
    /// Safe to run twice, and from several processes at once: runs wait for each other and
    /// the schema ends the same. With --status, changes nothing and lists every migration as
    /// applied or pending; it exits 1 when some are pending.
    Migrate(MigrateArgs),
    /// Serve local fakes of the real market for a demo: a Flow access node (the Access API over
    /// gRPC) with a chain of recent blocks in which Top Shot moments are listed, Top Shot's
    /// GraphQL API with those moments and three weeks of their sales, and the NBA's live data
    /// with today's scoreboard. The data is synthetic, generated from a seed at start-up in the
    /// real shapes. Prints each address and the `fastbreak up` command that follows them, then
    /// serves until SIGTERM or ctrl-c.
    FakeMarket(FakeMarketArgs),
    /// Backtest strategies through the gateway: replay a seeded simulated season through the
    /// agents' decision code, each strategy on a paper ledger, and write the report.
    ///
    /// Runs AgentService/RunBacktest as the user of FASTBREAK_ACCESS_TOKEN (or --token), prints
    /// its progress, then one line per strategy and baseline (purchases, win rate, profit,
    /// ROI, maximum drawdown), and writes report.json and chart.svg (equity and drawdown) into
    /// --out. Exits 1 when the backtest fails or cannot be run.
    Backtest(BacktestArgs),
}

/// Arguments of `fastbreak backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The gateway, as HOST:PORT or an http:// URL.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub gateway: String,
    /// The user's access token.
    #[arg(long, env = "FASTBREAK_ACCESS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: String,
    /// A strategy of the user's to backtest; repeat for several side by side (up to 10).
    #[arg(long = "strategy", value_name = "ID", required = true)]
    pub strategies: Vec<String>,
    /// The simulated season's seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated days to replay (1 to 120).
    #[arg(long, default_value_t = 30)]
    pub days: i32,
    /// Days a moment is held before it is sold (0 to 60; 0 holds to the end).
    #[arg(long, default_value_t = 7)]
    pub hold_days: i32,
    /// The paper money each strategy starts with, in cents.
    #[arg(long, default_value_t = 100_000)]
    pub starting_balance_cents: i64,
    /// The folder report.json and chart.svg are written to (made when missing).
    #[arg(long, value_name = "DIR", default_value = "backtest")]
    pub out: std::path::PathBuf,
    /// How long to wait for the backtest, such as 90s or 10m.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Arguments of `fastbreak fake-market`.
#[derive(Debug, clap::Args)]
pub struct FakeMarketArgs {
    /// The seed of the generated market.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Arguments of `fastbreak up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Start over: delete the data folder (the private database, the demo user's password and
    /// the operator credential) first.
    #[arg(long)]
    pub fresh: bool,
    /// The market's feeds: simulator, flow, simulator,flow or none (sets FASTBREAK_MARKET).
    #[arg(long, value_name = "FEEDS")]
    pub market: Option<String>,
    /// The Flow access node, as HOST:PORT (sets FASTBREAK_FLOW_ACCESS).
    #[arg(long, value_name = "HOST:PORT")]
    pub flow_access: Option<String>,
    /// The first block to read when no position is stored (sets FASTBREAK_FLOW_START_HEIGHT).
    #[arg(long, value_name = "HEIGHT")]
    pub flow_start_height: Option<u64>,
    /// Top Shot's GraphQL API (sets FASTBREAK_TOPSHOT_GRAPHQL).
    #[arg(long, value_name = "URL")]
    pub topshot_graphql: Option<String>,
    /// The NBA's live data, or off (sets FASTBREAK_NBA_LIVE_DATA).
    #[arg(long, value_name = "URL")]
    pub nba_live_data: Option<String>,
}

impl UpArgs {
    /// The settings these flags stand for, as environment variables (they win over the
    /// environment's own).
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("FASTBREAK_MARKET", self.market.clone()),
            ("FASTBREAK_FLOW_ACCESS", self.flow_access.clone()),
            ("FASTBREAK_FLOW_START_HEIGHT", self.flow_start_height.map(|h| h.to_string())),
            ("FASTBREAK_TOPSHOT_GRAPHQL", self.topshot_graphql.clone()),
            ("FASTBREAK_NBA_LIVE_DATA", self.nba_live_data.clone()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
        .collect()
    }
}

/// Arguments of `fastbreak status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The gateway, as HOST:PORT or an http:// URL.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub gateway: String,
    /// How long to wait for an answer, such as 5s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Arguments of `fastbreak migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Only report which migrations are applied and which are pending.
    #[arg(long)]
    pub status: bool,
    /// The database, as a postgres:// URL.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: String,
}

/// Arguments of `fastbreak serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The targets to run: "all", or a comma-separated list of gateway, user, strategy, risk,
    /// marketplace, scouting, trading, notification, agents.
    #[arg(long, short, env = "FASTBREAK_TARGET", value_name = "NAME[,NAME...]|all")]
    pub target: String,
}

/// Arguments of `fastbreak health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The server to check, as HOST:PORT or an http:// URL.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The fully-qualified service to check, such as fastbreak.risk.v1.RiskService; the whole
    /// server when omitted.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub service: String,
    /// How long to wait for an answer, such as 5s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses "500ms", "5s" or "2m" for clap, with the configuration's parser.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    fastbreak_config::parse_duration(text).ok_or_else(|| format!("{text:?} is not a duration such as 500ms, 5s or 2m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
