//! Server streams that follow an ordered log (listing events, game events): every entry after
//! a sequence, in order, then new entries as they are written, until the client goes away or
//! the server drains. Writers commit entries in sequence order, so reading "after the last one
//! sent" never skips one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// A server stream of `T`.
pub type TailStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Where a tail waits between reads.
#[derive(Debug, Clone)]
pub struct Wake {
    /// Bumped by this process after it writes entries.
    pub written: watch::Receiver<u64>,
    /// True once the server drains: the stream ends.
    pub draining: watch::Receiver<bool>,
    /// How often to look anyway (for entries other processes wrote).
    pub poll: Duration,
}

/// Streams the entries `fetch(after)` returns, each with its sequence, starting after `start`;
/// `fetch` returns the next entries in order (an empty batch when there is none yet).
pub fn tail<T, F, Fut>(start: i64, fetch: F, wake: Wake) -> TailStream<T>
where
    T: Send + 'static,
    F: Fn(i64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<(i64, T)>, Status>> + Send,
{
    let (tx, rx) = mpsc::channel(256);
    let Wake { mut written, mut draining, poll } = wake;
    tokio::spawn(async move {
        let mut cursor = start;
        loop {
            // Marked before reading, so a write that lands during the read still wakes us.
            written.mark_unchanged();
            let batch = match fetch(cursor).await {
                Ok(batch) => batch,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = written.changed() => {}
                    () = tokio::time::sleep(poll) => {}
                    () = tx.closed() => return,
                    _ = draining.wait_for(|d| *d) => return,
                }
                continue;
            }
            for (sequence, entry) in batch {
                cursor = sequence;
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}
