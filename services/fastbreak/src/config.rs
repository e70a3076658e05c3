//! What `fastbreak serve` reads from the environment, for the targets it runs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fastbreak_config::{ConfigError, Endpoints, Reader, Secret};
use fastbreak_telemetry::TelemetryConfig;

/// What the configuration needs to know of a target (the binary's targets say it).
pub trait Plan {
    /// Its name, as `--target` takes it.
    fn name(&self) -> &'static str;
    /// The port it listens on unless configured otherwise.
    fn default_port(&self) -> u16;
    /// The targets it calls.
    fn peers(&self) -> &'static [&'static str];
    /// Whether it serves from the database.
    fn needs_database(&self) -> bool;
}

/// The variable that sets a target's listen address.
pub fn listen_variable(target: &str) -> String {
    format!("FASTBREAK_{}_LISTEN_ADDR", target.to_uppercase())
}

/// The variable that lists a peer's endpoints.
pub fn endpoints_variable(target: &str) -> String {
    format!("FASTBREAK_{}_ENDPOINTS", target.to_uppercase())
}

/// Where the metrics are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    /// Not served.
    Off,
    /// Served at this address.
    At(SocketAddr),
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where every target without an address of its own listens.
    pub host: IpAddr,
    /// Addresses given per target, by target name.
    pub per_target: BTreeMap<String, SocketAddr>,
    /// The database, when a target needs one.
    pub database_url: Option<Secret<String>>,
    /// The internal credential every call between services carries.
    pub internal_token: Secret<String>,
    /// What operators present to read the system's health at the gateway, if configured.
    pub operator_token: Option<Secret<String>>,
    /// The endpoints of peers that run in other processes, by target name.
    pub remote_peers: BTreeMap<String, Endpoints>,
    /// Where the Prometheus metrics are served.
    pub metrics: MetricsAddr,
    /// How long calls in flight may take to finish at shutdown.
    pub drain_timeout: Duration,
    /// How long a target keeps accepting calls after it reports NOT_SERVING at shutdown.
    pub drain_grace: Duration,
    /// The deadline of calls to peers that set none.
    pub call_timeout: Duration,
    /// How long a peer that has not served yet may stay down before that is a warning.
    pub peer_startup_grace: Duration,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// Most connections the process opens to the database.
    pub database_pool_size: usize,
    /// The user service's settings.
    pub user: fastbreak_user::Settings,
    /// The notification service's settings.
    pub notification: fastbreak_notification::Settings,
    /// The risk service's settings.
    pub risk: fastbreak_risk::Settings,
    /// The marketplace's settings.
    pub marketplace: fastbreak_marketplace::Settings,
    /// Scouting's settings.
    pub scouting: fastbreak_scouting::Settings,
    /// Trading's settings.
    pub trading: fastbreak_trading::Settings,
    /// The gateway's settings.
    pub gateway: fastbreak_gateway::Settings,
    /// The agents' settings.
    pub agents: fastbreak_agents::Settings,
    /// The dashboard's settings.
    pub web: fastbreak_web::Settings,
}

/// The shortest internal credential accepted.
pub const MIN_TOKEN_LENGTH: usize = 32;

impl ServeConfig {
    /// Reads the configuration for running `targets`, out of `every` target the binary has,
    /// from `reader`: every problem at once.
    pub fn read<T: Plan>(mut reader: Reader, targets: &[T], every: &[T]) -> Result<Self, ConfigError> {
        let r = &mut reader;
        let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
        let host = r
            .optional("FASTBREAK_LISTEN_HOST", "an IP address such as 127.0.0.1 or 0.0.0.0", |v| v.parse().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut per_target = BTreeMap::new();
        for target in every {
            let expected = format!("HOST:PORT such as 127.0.0.1:{}", target.default_port());
            if let Some(addr) = r.optional(&listen_variable(target.name()), &expected, |v| v.parse::<SocketAddr>().ok())
            {
                per_target.insert(target.name().to_owned(), addr);
            }
        }

        let needs_database = targets.iter().any(|t| t.needs_database());
        let database_url = r.secret(
            "DATABASE_URL",
            "a postgres:// or postgresql:// URL",
            needs_database,
            fastbreak_db::pool::is_postgres_url,
        );

        // With every target in this process, no call leaves it: a fresh random credential does.
        let everything_here = every.iter().all(|t| names.contains(&t.name()));
        let token_expected = format!(
            "a random secret of at least {MIN_TOKEN_LENGTH} visible ASCII characters (no spaces), the same for every service"
        );
        let internal_token = r
            .secret("FASTBREAK_INTERNAL_TOKEN", &token_expected, !everything_here, |v| {
                // It travels in a header: anything a header cannot carry would be dropped.
                v.len() >= MIN_TOKEN_LENGTH && v.bytes().all(|b| b.is_ascii_graphic())
            })
            .or_else(|| {
                everything_here
                    .then(|| Secret::new(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())))
            });

        // Operators read the system's health at the gateway with a credential of their own.
        let operator_token = r.secret(
            "FASTBREAK_OPERATOR_TOKEN",
            &format!(
                "a random secret of at least {MIN_TOKEN_LENGTH} visible ASCII characters, not the internal credential"
            ),
            false,
            |v| {
                v.len() >= MIN_TOKEN_LENGTH
                    && v.bytes().all(|b| b.is_ascii_graphic())
                    && internal_token.as_ref().is_none_or(|internal| internal.expose() != v)
            },
        );

        let mut remote_peers = BTreeMap::new();
        for target in targets {
            for peer in target.peers().iter().filter(|peer| !names.contains(peer)) {
                if remote_peers.contains_key(*peer) {
                    continue;
                }
                if let Some(endpoints) = r.required(&endpoints_variable(peer), Endpoints::EXPECTED, Endpoints::parse) {
                    remote_peers.insert((*peer).to_owned(), endpoints);
                }
            }
        }

        let metrics = r
            .optional("FASTBREAK_METRICS_ADDR", "HOST:PORT such as 0.0.0.0:9464, or 'off'", |v| {
                if v.eq_ignore_ascii_case("off") { Some(MetricsAddr::Off) } else { v.parse().ok().map(MetricsAddr::At) }
            })
            .unwrap_or(MetricsAddr::At(SocketAddr::new(host, 9464)));
        let drain_timeout = r
            .optional_duration(
                "FASTBREAK_DRAIN_TIMEOUT",
                "a duration from 0s to 1h, such as 30s or 500ms",
                Duration::ZERO..=Duration::from_secs(3600),
            )
            .unwrap_or(Duration::from_secs(30));
        let drain_grace = r
            .optional_duration(
                "FASTBREAK_DRAIN_GRACE",
                "a duration from 0s to 10m, such as 2s",
                Duration::ZERO..=Duration::from_secs(600),
            )
            .unwrap_or(fastbreak_mesh::server::DEFAULT_DRAIN_GRACE);
        let call_timeout = r
            .optional_duration(
                "FASTBREAK_CALL_TIMEOUT",
                "a duration from 1ms to 1h, such as 5s or 500ms",
                Duration::from_millis(1)..=Duration::from_secs(3600),
            )
            .unwrap_or(Duration::from_secs(5));
        let peer_startup_grace = r
            .optional_duration(
                "FASTBREAK_PEER_STARTUP_GRACE",
                "a duration from 0s to 1h, such as 30s",
                Duration::ZERO..=Duration::from_secs(3600),
            )
            .unwrap_or(fastbreak_mesh::PeerOptions::default().startup_grace);
        let service_name =
            if everything_here { "fastbreak".to_owned() } else { format!("fastbreak-{}", names.join("-")) };
        let mut telemetry = TelemetryConfig::read(r, &service_name);
        if telemetry.service_name == service_name && names.len() > 1 {
            telemetry.targets = names.iter().map(|name| (*name).to_owned()).collect();
        }
        let database_pool_size = r
            .optional("FASTBREAK_DATABASE_POOL_SIZE", "a whole number from 1 to 500", |v| {
                v.parse::<usize>().ok().filter(|n| (1..=500).contains(n))
            })
            .unwrap_or(10 + 2 * targets.iter().filter(|t| t.needs_database()).count());
        let user = fastbreak_user::Settings::read(r);
        let notification = fastbreak_notification::Settings::read(r);
        let risk = fastbreak_risk::Settings::read(r);
        let marketplace = fastbreak_marketplace::Settings::read(r);
        let scouting = fastbreak_scouting::Settings::read(r);
        let trading = fastbreak_trading::Settings::read(r);
        let gateway = fastbreak_gateway::Settings::read(r);
        let agents = fastbreak_agents::Settings::read(r);
        let web = fastbreak_web::Settings::read(r);

        reader.finish()?;
        Ok(Self {
            host,
            per_target,
            database_url,
            internal_token: internal_token.expect("a missing token was reported"),
            operator_token,
            remote_peers,
            metrics,
            drain_timeout,
            drain_grace,
            call_timeout,
            peer_startup_grace,
            telemetry,
            database_pool_size,
            user,
            notification,
            risk,
            marketplace,
            scouting,
            trading,
            gateway,
            agents,
            web,
        })
    }

    /// The address a target listens on.
    pub fn addr_of(&self, target: &impl Plan) -> SocketAddr {
        self.per_target.get(target.name()).copied().unwrap_or(SocketAddr::new(self.host, target.default_port()))
    }
}
