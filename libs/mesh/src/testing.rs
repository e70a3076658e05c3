//! For tests of one target: serve it on a free port of 127.0.0.1 with a test credential, and
//! make requests as the gateway would (internal credential, user identity).

use std::net::SocketAddr;

use fastbreak_config::Secret;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::auth::INTERNAL_TOKEN_HEADER;
use crate::server::{MeshServer, ServerError};

/// The internal credential of test servers.
pub const TEST_CREDENTIAL: &str = "test-internal-credential-0123456789abcdef";

/// A target serving on a free port; stopped (and drained) on [`TestServer::stop`] or drop.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    /// Binds `server` to 127.0.0.1:0 with [`TEST_CREDENTIAL`], reports SERVING and serves.
    pub async fn start(server: MeshServer) -> Self {
        let bound = server
            .with_credential(Secret::new(TEST_CREDENTIAL.to_owned()))
            .with_drain_timeout(std::time::Duration::from_secs(5))
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free port on 127.0.0.1");
        let addr = bound.local_addr();
        bound.readiness().set_serving().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("a valid URL")
            .connect()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.addr))
    }

    /// Stops it: calls in flight and workers finish first.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("running").await.expect("serving does not panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request from another service: it carries the internal credential.
pub fn internal<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(INTERNAL_TOKEN_HEADER, TEST_CREDENTIAL.parse().expect("a valid header value"));
    request
}

/// A request as the gateway forwards it for `user`: the internal credential and the user id.
pub fn as_user<T>(message: T, user: Uuid) -> tonic::Request<T> {
    let mut request = internal(message);
    crate::caller::set_user_id(&mut request, user);
    request
}
