//! `fastbreak serve`: runs a set of targets in one process, each on its own port.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use fastbreak_db::{Database, PoolOptions};
use fastbreak_mesh::{BoundServer, ServerError};
use futures::future::join_all;

use crate::targets::Target;

/// Where each target listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// The address of every target without an address of its own (`FASTBREAK_LISTEN_HOST`).
    pub host: IpAddr,
    /// Addresses given per target (`FASTBREAK_<TARGET>_LISTEN_ADDR`), by target name.
    pub per_target: BTreeMap<String, SocketAddr>,
    /// The database the targets serve from (`DATABASE_URL`), if one is configured.
    pub database_url: Option<String>,
}

/// Variables of the listen configuration that are malformed, all of them at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ListenConfigError {
    /// One sentence per malformed variable, naming it.
    pub problems: Vec<String>,
}

impl ListenConfig {
    /// Reads the configuration from environment variables given as a map.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ListenConfigError> {
        let mut problems = Vec::new();
        let host = match vars.get("FASTBREAK_LISTEN_HOST") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(value) => value.parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "FASTBREAK_LISTEN_HOST: expected an IP address such as 127.0.0.1 or 0.0.0.0, got {value:?}"
                ));
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }),
        };
        let mut per_target = BTreeMap::new();
        for target in crate::targets::ALL {
            let variable = listen_variable(target.name);
            if let Some(value) = vars.get(&variable) {
                match value.parse::<SocketAddr>() {
                    Ok(addr) => {
                        per_target.insert(target.name.to_owned(), addr);
                    }
                    Err(_) => problems.push(format!(
                        "{variable}: expected HOST:PORT such as 127.0.0.1:{}, got {value:?}",
                        target.default_port
                    )),
                }
            }
        }
        let database_url = vars.get("DATABASE_URL").cloned();
        if let Some(url) = &database_url {
            if !fastbreak_db::pool::is_postgres_url(url) {
                // The value may hold a password: it is never shown.
                problems.push("DATABASE_URL: expected a postgres:// or postgresql:// URL (value not shown)".to_owned());
            }
        }
        if problems.is_empty() {
            Ok(Self { host, per_target, database_url })
        } else {
            Err(ListenConfigError { problems })
        }
    }

    /// The address a target listens on.
    pub fn addr_of(&self, target: &Target) -> SocketAddr {
        self.per_target
            .get(target.name)
            .copied()
            .unwrap_or(SocketAddr::new(self.host, target.default_port))
    }
}

/// The variable that sets a target's listen address.
pub fn listen_variable(target: &str) -> String {
    format!("FASTBREAK_{}_LISTEN_ADDR", target.to_uppercase())
}

/// Binds every target, reports each one's address through `on_bound`, marks them SERVING and
/// serves until `shutdown` completes; then every target drains its in-flight calls.
pub async fn serve(
    targets: &[Target],
    config: &ListenConfig,
    mut on_bound: impl FnMut(&BoundServer),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let mut bound = Vec::with_capacity(targets.len());
    for target in targets {
        let server = (target.server)().bind(config.addr_of(target)).await?;
        on_bound(&server);
        bound.push(server);
    }
    let (needs_database, ready_now): (Vec<_>, Vec<_>) =
        targets.iter().zip(&bound).partition(|(target, _)| target.needs_database);
    for (_, server) in ready_now {
        server.readiness().set_serving().await;
    }
    let dependents: Vec<_> = needs_database.iter().map(|(_, server)| server.readiness()).collect();
    match &config.database_url {
        Some(url) if !dependents.is_empty() => {
            let database = Database::connect_lazy(url, &PoolOptions::default())
                .map_err(|error| ServerError::Dependency { target: "database", reason: error.to_string() })?;
            tokio::spawn(crate::database::watch(database, url.clone(), dependents));
        }
        // Without a database, targets whose RPCs need none yet are ready once bound.
        _ => {
            for readiness in dependents {
                readiness.set_serving().await;
            }
        }
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let runs = bound.into_iter().map(|server| {
        let mut stop = stop_rx.clone();
        server.serve(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
    });
    join_all(runs).await.into_iter().collect()
}
