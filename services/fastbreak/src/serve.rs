//! `fastbreak serve`: runs a set of targets in one process, each on its own port.

use std::collections::BTreeMap;
use std::future::Future;

use fastbreak_config::Endpoints;
use fastbreak_db::{Database, PoolOptions};
use fastbreak_mesh::server::bind_listener;
use fastbreak_mesh::{BoundServer, PeerChannel, PeerOptions, Peers, ServerError};

use crate::config::ServeConfig;
use crate::targets::{Build, Target};

/// Binds every target, reports each one's address through `on_bound`, and serves until
/// `shutdown` completes; then every target drains its in-flight calls. Targets that need the
/// database are NOT_SERVING until it is reachable at this build's schema version.
pub async fn serve(
    targets: &[Target],
    config: &ServeConfig,
    mut on_bound: impl FnMut(&BoundServer),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Every listener first, so that each target's peers in this process have known addresses.
    let mut listeners = Vec::with_capacity(targets.len());
    let mut here: BTreeMap<&'static str, Endpoints> = BTreeMap::new();
    for target in targets {
        let listener = bind_listener(target.name, config.addr_of(target)).await?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            target: target.name,
            addr: config.addr_of(target),
            source,
        })?;
        let uri = format!("http://{addr}").parse().expect("an address makes a valid URI");
        here.insert(target.name, Endpoints::single(uri));
        listeners.push(listener);
    }

    let database = match (&config.database_url, targets.iter().any(|t| t.needs_database)) {
        (Some(url), true) => Some(
            Database::connect_lazy(
                url.expose(),
                &PoolOptions { max_size: config.database_pool_size, ..PoolOptions::default() },
            )
            .map_err(|error| ServerError::Dependency { target: "database", reason: error.to_string() })?,
        ),
        _ => None,
    };

    let mut bound = Vec::with_capacity(targets.len());
    for (target, listener) in targets.iter().zip(listeners) {
        let mut peers = Peers::default();
        for peer in target.peers {
            let endpoints = config.remote_peers.get(*peer).or_else(|| here.get(peer));
            let Some(endpoints) = endpoints else { continue };
            // The gateway's calls carry their clients' deadlines, up to its own most.
            let call_timeout = if target.name == fastbreak_gateway::TARGET {
                config.gateway.max_deadline.max(config.call_timeout)
            } else {
                config.call_timeout
            };
            let options = PeerOptions {
                call_timeout,
                credential: Some(config.internal_token.clone()),
                startup_grace: config.peer_startup_grace,
                ..PeerOptions::default()
            };
            let channel = PeerChannel::new(peer, "", endpoints, options)
                .map_err(|error| ServerError::Dependency { target: target.name, reason: error.to_string() })?;
            peers.insert(peer, channel);
        }
        let build = Build { config, database: database.as_ref(), peers };
        let mut server = (target.server)(&build)
            .with_credential(config.internal_token.clone())
            .with_drain_timeout(config.drain_timeout)
            .with_drain_grace(config.drain_grace);
        if target.name == fastbreak_gateway::TARGET {
            server = server.public_edge();
        }
        let server = server.on_listener(listener).await?;
        on_bound(&server);
        bound.push(server);
    }

    let (needs_database, ready_now): (Vec<_>, Vec<_>) =
        targets.iter().zip(&bound).partition(|(target, _)| target.needs_database);
    for (_, server) in ready_now {
        server.readiness().set_serving().await;
    }
    let dependents: Vec<_> = needs_database.iter().map(|(_, server)| server.readiness()).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = std::sync::Arc::new(stop_tx);
    if let (Some(database), false) = (database, dependents.is_empty()) {
        let mut stop = stop_rx.clone();
        tokio::spawn(crate::database::watch(database, dependents, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }));
    }
    let stopper = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopper.send(true);
    });
    let mut runs: futures::stream::FuturesUnordered<_> = bound
        .into_iter()
        .map(|server| {
            let mut stop = stop_rx.clone();
            server.serve(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
        })
        .collect();
    // The first target to fail stops the others: the process goes down with it, saying why,
    // rather than running on without it.
    let mut failure = None;
    while let Some(outcome) = futures::StreamExt::next(&mut runs).await {
        if let (Err(error), None) = (outcome, &failure) {
            tracing::error!(%error, "a target failed; stopping every target");
            let _ = stop_tx.send(true);
            failure = Some(error);
        }
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fastbreak_config::Reader;
    use fastbreak_mesh::MeshServer;

    use super::*;

    fn target(name: &'static str, server: fn(&Build<'_>) -> MeshServer) -> Target {
        Target { name, default_port: 0, server, peers: &[], needs_database: false }
    }

    #[tokio::test]
    async fn a_target_that_fails_stops_the_others_and_serve_says_which() {
        let targets = [
            target("healthy", |_| MeshServer::new("healthy")),
            target("doomed", |_| {
                MeshServer::new("doomed").add_worker("sweeper", |_| async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    panic!("the sweeper broke");
                })
            }),
        ];
        let vars = [
            ("FASTBREAK_INTERNAL_TOKEN", "a-test-credential-of-more-than-32-chars"),
            ("FASTBREAK_METRICS_ADDR", "off"),
            ("FASTBREAK_DRAIN_GRACE", "0s"),
        ];
        let config = ServeConfig::read(Reader::new(vars), &targets, &crate::targets::ALL).unwrap();
        let served =
            tokio::time::timeout(Duration::from_secs(10), serve(&targets, &config, |_| {}, std::future::pending()))
                .await
                .expect("the process does not run on without the failed target");
        let error = served.expect_err("serving failed").to_string();
        assert!(
            error.contains("doomed") && error.contains("sweeper") && error.contains("the sweeper broke"),
            "{error}"
        );
    }
}
