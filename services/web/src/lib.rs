//! The web dashboard: pages rendered on the server for a collector (portfolio, decisions with
//! their reasons, strategies, budget, market, notifications, leaderboards) and for operators
//! (the system's health). Every page calls the public services through the gateway with the
//! signed-in visitor's access token, kept in an `HttpOnly`, `SameSite=Strict` cookie; every
//! form carries a CSRF token. A part of the system that is down is named on the page where its
//! section would be; the rest of the page works.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod backend;
mod chart;
mod html;
mod pages;
mod session;
pub mod settings;

use fastbreak_mesh::{MeshServer, Peers};

pub use session::{CSRF_COOKIE, OPERATOR_COOKIE, SESSION_COOKIE};
pub use settings::Settings;

/// The target's name, as `fastbreak serve --target` takes it.
pub const TARGET: &str = "web";

/// The services this target calls, by target name: the gateway alone.
pub const PEERS: &[&str] = &["gateway"];

/// The port the target listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50060;

/// The target's server: the pages, beside the health service every target has. It is SERVING
/// while it sees a SERVING gateway (every page goes through it); within the pages, a backend
/// that is down is named where its section would be.
pub fn server(peers: Peers, settings: Settings) -> MeshServer {
    let gateway = peers.get("gateway");
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    MeshServer::new(TARGET)
        .with_pages(pages::router(pages::App::new(peers.peer("gateway"), settings)))
        .ready_when(ready_rx)
        .add_worker("web-watch", move |mut draining| async move {
            loop {
                let reachable = gateway.as_ref().is_some_and(|g| g.serving_endpoints() > 0);
                ready_tx.send_if_modified(|ready| std::mem::replace(ready, reachable) != reachable);
                if draining.sleep(std::time::Duration::from_millis(100)).await {
                    return;
                }
            }
        })
}
