//! The targets the binary can run, with their default ports.

use fastbreak_db::Database;
use fastbreak_mesh::{Context, MeshServer, Peers};

use crate::config::{Plan, ServeConfig};

/// What a target is built from: the process's configuration, its database pool (for the
/// targets that need one; configuration made sure it is there), and channels to its peers.
#[derive(Debug)]
pub struct Build<'a> {
    /// The validated configuration.
    pub config: &'a ServeConfig,
    /// The pool, when any target of the process needs the database.
    pub database: Option<&'a Database>,
    /// Channels to the target's peers.
    pub peers: Peers,
}

impl Build<'_> {
    /// The target's context with its own settings.
    pub fn context<S>(&self, settings: S) -> Context<S, Database> {
        let database =
            self.database.cloned().expect("DATABASE_URL is required (and checked) for targets that need the database");
        Context { database, peers: self.peers.clone(), settings }
    }
}

/// One service the binary can run.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name, as `--target` takes it.
    pub name: &'static str,
    /// The port it listens on unless configured otherwise.
    pub default_port: u16,
    /// Builds its server from its context.
    pub server: fn(&Build<'_>) -> MeshServer,
    /// The targets it calls.
    pub peers: &'static [&'static str],
    /// Whether it serves from the database (and so is NOT_SERVING while the database is not
    /// reachable at this build's schema version).
    pub needs_database: bool,
}

impl Plan for Target {
    fn name(&self) -> &'static str {
        self.name
    }

    fn default_port(&self) -> u16 {
        self.default_port
    }

    fn peers(&self) -> &'static [&'static str] {
        self.peers
    }

    fn needs_database(&self) -> bool {
        self.needs_database
    }
}

/// Every target, in start order: dependencies before the services that call them.
pub const ALL: [Target; 10] = [
    Target {
        name: fastbreak_user::TARGET,
        default_port: fastbreak_user::DEFAULT_PORT,
        server: |build| fastbreak_user::server(build.context(build.config.user.clone())),
        peers: fastbreak_user::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_strategy::TARGET,
        default_port: fastbreak_strategy::DEFAULT_PORT,
        server: |build| fastbreak_strategy::server(build.context(())),
        peers: fastbreak_strategy::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_risk::TARGET,
        default_port: fastbreak_risk::DEFAULT_PORT,
        server: |build| fastbreak_risk::server(build.context(build.config.risk.clone())),
        peers: fastbreak_risk::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_marketplace::TARGET,
        default_port: fastbreak_marketplace::DEFAULT_PORT,
        server: |build| fastbreak_marketplace::server(build.context(build.config.marketplace.clone())),
        peers: fastbreak_marketplace::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_scouting::TARGET,
        default_port: fastbreak_scouting::DEFAULT_PORT,
        server: |build| fastbreak_scouting::server(build.context(build.config.scouting.clone())),
        peers: fastbreak_scouting::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_notification::TARGET,
        default_port: fastbreak_notification::DEFAULT_PORT,
        server: |build| fastbreak_notification::server(build.context(build.config.notification.clone())),
        peers: fastbreak_notification::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_trading::TARGET,
        default_port: fastbreak_trading::DEFAULT_PORT,
        server: |build| fastbreak_trading::server(build.context(build.config.trading.clone())),
        peers: fastbreak_trading::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_agents::TARGET,
        default_port: fastbreak_agents::DEFAULT_PORT,
        server: |build| fastbreak_agents::server(build.context(build.config.agents.clone())),
        peers: fastbreak_agents::PEERS,
        needs_database: true,
    },
    Target {
        name: fastbreak_gateway::TARGET,
        default_port: fastbreak_gateway::DEFAULT_PORT,
        server: |build| {
            fastbreak_gateway::server(
                build.peers.clone(),
                build.config.gateway.clone(),
                build.config.operator_token.clone(),
                Some(build.config.internal_token.clone()),
            )
        },
        peers: fastbreak_gateway::PEERS,
        needs_database: false,
    },
    Target {
        name: fastbreak_web::TARGET,
        default_port: fastbreak_web::DEFAULT_PORT,
        server: |build| fastbreak_web::server(build.peers.clone(), build.config.web.clone()),
        peers: fastbreak_web::PEERS,
        needs_database: false,
    },
];

/// A `--target` value that names no target.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown target {given:?}; expected \"all\" or a comma-separated list of: {}", names().join(", "))]
pub struct UnknownTarget {
    /// The name as given.
    pub given: String,
}

/// The names of every target.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|target| target.name).collect()
}

/// Parses `all` or a comma-separated list of target names, in start order, without repeats.
pub fn parse(list: &str) -> Result<Vec<Target>, UnknownTarget> {
    let asked: Vec<&str> = list.split(',').map(str::trim).filter(|name| !name.is_empty()).collect();
    if asked.is_empty() {
        return Err(UnknownTarget { given: list.to_owned() });
    }
    if asked.contains(&"all") {
        return Ok(ALL.to_vec());
    }
    if let Some(unknown) = asked.iter().find(|name| !ALL.iter().any(|target| target.name == **name)) {
        return Err(UnknownTarget { given: (*unknown).to_owned() });
    }
    Ok(ALL.iter().filter(|target| asked.contains(&target.name)).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_means_every_target_in_start_order() {
        let parsed = parse("all").unwrap();
        assert_eq!(parsed.iter().map(|t| t.name).collect::<Vec<_>>(), names());
        assert_eq!(parsed.first().unwrap().name, "user");
        assert_eq!(parsed.last().unwrap().name, "web");
    }

    #[test]
    fn a_list_is_deduplicated_and_put_in_start_order() {
        let parsed = parse("gateway, risk,risk").unwrap();
        assert_eq!(parsed.iter().map(|t| t.name).collect::<Vec<_>>(), ["risk", "gateway"]);
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_valid_ones() {
        let error = parse("risk,bank").unwrap_err();
        assert_eq!(error.given, "bank");
        assert!(error.to_string().contains("user, strategy, risk"), "{error}");
        assert!(parse(" , ").is_err());
    }

    #[test]
    fn default_ports_follow_the_design_table() {
        let ports: Vec<(&str, u16)> = ALL.iter().map(|t| (t.name, t.default_port)).collect();
        for (name, port) in [
            ("gateway", 50051),
            ("user", 50052),
            ("strategy", 50053),
            ("risk", 50054),
            ("marketplace", 50055),
            ("scouting", 50056),
            ("trading", 50057),
            ("notification", 50058),
            ("agents", 50059),
            ("web", 50060),
        ] {
            assert!(ports.contains(&(name, port)), "{name} should default to {port}");
        }
    }
}

#[cfg(test)]
mod configuration_tests {
    use fastbreak_config::{ConfigError, Reader};

    use crate::config::*;
    use crate::targets;

    fn read(vars: &[(&str, &str)], list: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::read(
            Reader::new(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            &targets::parse(list).unwrap(),
            &targets::ALL,
        )
    }

    #[test]
    fn a_lone_target_needs_its_database_its_credential_and_its_remote_peers() {
        let error = read(&[("FASTBREAK_RISK_ENDPOINTS", "risk:50054")], "trading").unwrap_err();
        let text = error.to_string();
        for variable in [
            "DATABASE_URL: missing",
            "FASTBREAK_INTERNAL_TOKEN: missing",
            "FASTBREAK_RISK_ENDPOINTS: expected a comma-separated list of http:// URLs (https is not supported: the mesh speaks plaintext gRPC inside its network), got 'risk:50054'",
            "FASTBREAK_USER_ENDPOINTS: missing",
            "FASTBREAK_MARKETPLACE_ENDPOINTS: missing",
        ] {
            assert!(text.contains(variable), "{variable} in {text}");
        }
    }

    #[test]
    fn everything_in_one_process_needs_only_the_database() {
        let config = read(&[("DATABASE_URL", "postgres://u:p@db/fastbreak")], "all").unwrap();
        assert!(config.remote_peers.is_empty());
        assert!(config.internal_token.expose().len() >= MIN_TOKEN_LENGTH, "a credential is made up");
        assert_eq!(config.metrics, MetricsAddr::At("127.0.0.1:9464".parse().unwrap()));
    }

    #[test]
    fn the_gateway_alone_needs_no_database_but_every_backend() {
        let vars = vec![("FASTBREAK_INTERNAL_TOKEN".to_owned(), "x".repeat(40))];
        let error = ServeConfig::read(Reader::new(vars.clone()), &targets::parse("gateway").unwrap(), &targets::ALL)
            .unwrap_err();
        let text = error.to_string();
        for peer in fastbreak_gateway::PEERS {
            assert!(text.contains(&endpoints_variable(peer)), "{peer}: {text}");
        }
        let mut vars = vars;
        vars.extend(
            fastbreak_gateway::PEERS.iter().map(|peer| (endpoints_variable(peer), format!("http://{peer}:50050"))),
        );
        let config = ServeConfig::read(Reader::new(vars), &targets::parse("gateway").unwrap(), &targets::ALL).unwrap();
        assert!(config.database_url.is_none());
        assert_eq!(config.remote_peers.len(), fastbreak_gateway::PEERS.len());
    }

    #[test]
    fn a_credential_a_header_cannot_carry_is_refused_at_start_up() {
        for token in ["with a space but long enough to pass the length", "ünïcödé-credential-that-is-long-enough-0123"]
        {
            let error = read(&[("DATABASE_URL", "postgres://u:p@db/x"), ("FASTBREAK_INTERNAL_TOKEN", token)], "risk")
                .unwrap_err()
                .to_string();
            assert!(error.contains("FASTBREAK_INTERNAL_TOKEN: expected"), "{error}");
            assert!(!error.contains(token), "{error}");
        }
    }

    #[test]
    fn https_peer_endpoints_are_refused_at_start_up() {
        let error = read(
            &[
                ("DATABASE_URL", "postgres://u:p@db/x"),
                ("FASTBREAK_INTERNAL_TOKEN", "a-test-credential-of-more-than-32-chars"),
                ("FASTBREAK_USER_ENDPOINTS", "https://user:50052"),
            ],
            "trading",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("FASTBREAK_USER_ENDPOINTS: expected") && error.contains("https is not supported"),
            "{error}"
        );
    }

    #[test]
    fn secrets_are_never_shown() {
        let error = read(
            &[("DATABASE_URL", "mysql://root:hunter2@db/x"), ("FASTBREAK_INTERNAL_TOKEN", "tooshort-secret")],
            "risk",
        )
        .unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(text.contains("DATABASE_URL") && text.contains("FASTBREAK_INTERNAL_TOKEN"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("tooshort-secret"), "{text}");
    }
}
