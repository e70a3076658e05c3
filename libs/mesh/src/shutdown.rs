//! The signal every process waits on to drain: SIGTERM or ctrl-c.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once this process was told to stop.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether this process was told to stop (SIGTERM or ctrl-c): its peers going down with it are
/// expected then, not news.
pub fn process_stopping() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// Completes on SIGTERM or ctrl-c (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
    STOPPING.store(true, Ordering::Relaxed);
}
