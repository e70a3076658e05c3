//! Background work that runs inside a target (outbox delivery, webhook retries, reconcilers):
//! started with the server, told when the server begins to drain, and awaited before it stops.

use futures::future::BoxFuture;
use tokio::sync::watch;

/// Tells a worker that its server is draining: finish the item in hand and return.
#[derive(Debug, Clone)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    /// A signal and the handle that raises it.
    pub fn channel() -> (DrainTrigger, Self) {
        let (tx, rx) = watch::channel(false);
        (DrainTrigger(tx), Self(rx))
    }

    /// True once draining began.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when draining begins (at once if it has).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|draining| *draining).await;
    }

    /// Sleeps for `duration`, or less when draining begins; true when draining began.
    pub async fn sleep(&mut self, duration: std::time::Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.is_draining(),
            () = self.wait() => true,
        }
    }
}

/// Raises [`Draining`].
#[derive(Debug)]
pub struct DrainTrigger(watch::Sender<bool>);

impl DrainTrigger {
    /// Tells every worker that draining began.
    pub fn drain(&self) {
        let _ = self.0.send(true);
    }
}

/// A worker, as a server holds it until it starts.
pub(crate) struct Worker {
    pub(crate) name: &'static str,
    pub(crate) run: Box<dyn FnOnce(Draining) -> BoxFuture<'static, ()> + Send + Sync>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("name", &self.name).finish()
    }
}
