//! `fastbreak serve`: runs a set of targets in one process, each on its own port.

use std::future::Future;

use fastbreak_db::{Database, PoolOptions};
use fastbreak_mesh::{BoundServer, ServerError};
use futures::future::join_all;

use crate::config::ServeConfig;
use crate::targets::Target;

/// Binds every target, reports each one's address through `on_bound`, and serves until
/// `shutdown` completes; then every target drains its in-flight calls. Targets that need the
/// database are NOT_SERVING until it is reachable at this build's schema version.
pub async fn serve(
    targets: &[Target],
    config: &ServeConfig,
    mut on_bound: impl FnMut(&BoundServer),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let mut bound = Vec::with_capacity(targets.len());
    for target in targets {
        let mut server =
            (target.server)().with_credential(config.internal_token.clone()).with_drain_timeout(config.drain_timeout);
        if target.name == fastbreak_gateway::TARGET {
            server = server.public_edge();
        }
        let server = server.bind(config.addr_of(target)).await?;
        on_bound(&server);
        bound.push(server);
    }

    let (needs_database, ready_now): (Vec<_>, Vec<_>) =
        targets.iter().zip(&bound).partition(|(target, _)| target.needs_database);
    for (_, server) in ready_now {
        server.readiness().set_serving().await;
    }
    let dependents: Vec<_> = needs_database.iter().map(|(_, server)| server.readiness()).collect();
    if let (Some(url), false) = (&config.database_url, dependents.is_empty()) {
        let database = Database::connect_lazy(url.expose(), &PoolOptions::default())
            .map_err(|error| ServerError::Dependency { target: "database", reason: error.to_string() })?;
        tokio::spawn(crate::database::watch(database, dependents));
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
