//! The internal credential: every call between services carries it, and backends refuse calls
//! without it (health checks and reflection excepted, and the gateway's public services, which
//! authenticate users instead).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready};
use http::{Request, Response};
use tonic::body::Body;

/// The header that carries the internal credential.
pub const INTERNAL_TOKEN_HEADER: &str = "x-fastbreak-internal-token";

/// Services that never need the credential.
const ALWAYS_EXEMPT: [&str; 3] =
    ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// Refuses calls without the internal credential with UNAUTHENTICATED.
#[derive(Debug, Clone)]
pub struct InternalAuthLayer {
    token: Arc<str>,
    exempt: Arc<[&'static str]>,
    only: Option<Arc<[&'static str]>>,
}

impl InternalAuthLayer {
    /// Checks calls against `token`; the services named in `exempt` (and health and
    /// reflection) are let through without it.
    pub fn new(token: &str, exempt: &[&'static str]) -> Self {
        let exempt: Vec<&'static str> = ALWAYS_EXEMPT.iter().chain(exempt).copied().collect();
        Self { token: Arc::from(token), exempt: Arc::from(exempt), only: None }
    }

    /// Checks only calls to the services named in `guarded`; every other path (a server's web
    /// pages, which authenticate their visitors themselves) is let through.
    pub fn guarding_only(mut self, guarded: &[&'static str]) -> Self {
        self.only = Some(Arc::from(guarded));
        self
    }
}

impl<S> tower::Layer<S> for InternalAuthLayer {
    type Service = InternalAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InternalAuth { inner, layer: self.clone() }
    }
}

/// The service [`InternalAuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct InternalAuth<S> {
    inner: S,
    layer: InternalAuthLayer,
}

/// The header operators send their credential in, to the gateway's system health.
pub const OPERATOR_TOKEN_HEADER: &str = "x-fastbreak-operator-token";

/// The header a mesh member in front of the gateway (the web dashboard) names its own visitor's
/// address with, so that the gateway limits each visitor rather than the member as one client.
/// The gateway believes it only on calls that carry the internal credential.
pub const CLIENT_ADDRESS_HEADER: &str = "x-fastbreak-client-address";

/// Compares without stopping at the first difference, so timing does not tell how much of a
/// guess was right.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

static TOKEN: http::HeaderName = http::HeaderName::from_static(INTERNAL_TOKEN_HEADER);

impl<S, B> tower_service::Service<Request<B>> for InternalAuth<S>
where
    S: tower_service::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let service = request.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default();
        let unguarded = self.layer.only.as_ref().is_some_and(|only| !only.contains(&service));
        if unguarded || self.layer.exempt.contains(&service) {
            return Either::Left(self.inner.call(request));
        }
        let presented = request.headers().get(&TOKEN).map(|v| v.as_bytes());
        if presented.is_some_and(|token| same_secret(token, self.layer.token.as_bytes())) {
            Either::Left(self.inner.call(request))
        } else {
            let reason = if presented.is_some() { "is not valid" } else { "is missing" };
            tracing::warn!(rpc.service = service, "refused a call whose internal credential {reason}");
            let status = tonic::Status::unauthenticated(format!(
                "the internal credential ({INTERNAL_TOKEN_HEADER}) {reason}: only FastBreak services may call {service}"
            ));
            Either::Right(futures::future::ready(Ok(status.into_http())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
