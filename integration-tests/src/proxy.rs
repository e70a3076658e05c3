//! A TCP proxy whose traffic can be held: what a server too busy to answer for a while looks
//! like to its callers, without stopping it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection made to [`HoldingProxy::url`] to one server; while held, bytes are
/// read but not passed on in either direction until released.
#[derive(Debug)]
pub struct HoldingProxy {
    addr: SocketAddr,
    held: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    /// Starts a proxy on a free port of 127.0.0.1 to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let held = Arc::new(watch::Sender::new(false));
        let task = tokio::spawn({
            let held = held.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else { continue };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pass(client_read, server_write, held.subscribe()));
                    tokio::spawn(pass(server_read, client_write, held.subscribe()));
                }
            }
        });
        Self { addr, held, task }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds every byte from now on until [`HoldingProxy::release`].
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Passes on what was held, and everything after.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, waiting while the proxy is held; ends when either side closes.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if held.wait_for(|held| !held).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
