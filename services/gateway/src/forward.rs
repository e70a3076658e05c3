//! Forwarding: each call to a public backend service is authenticated, rate limited, bounded
//! in size and deadline, and handed on as raw gRPC frames (never decoded) to a SERVING endpoint
//! of the backend that owns the service, through the mesh's peer channel (health routing,
//! circuit breakers, credential, trace context). The answer, streams included, comes back as
//! the backend sent it.

use std::convert::Infallible;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as AxumBody;
use bytes::Bytes;
use fastbreak_mesh::PeerChannel;
use fastbreak_mesh::auth::INTERNAL_TOKEN_HEADER;
use fastbreak_mesh::caller::USER_ID_HEADER;
use fastbreak_mesh::status;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use sha2::{Digest, Sha256};
use tonic::Code;
use tower::ServiceExt;
use uuid::Uuid;

use crate::settings::Settings;

/// The calls open without an access token.
const OPEN: [&str; 2] =
    ["/fastbreak.user.v1.UserService/CreateUser", "/fastbreak.user.v1.UserService/CreateAccessToken"];

/// The most tokens kept authenticated at once.
const TOKEN_CACHE_SIZE: usize = 100_000;

/// What every forwarded call shares.
pub(crate) struct Forwarding {
    settings: Settings,
    user: Option<PeerChannel>,
    tokens: quick_cache::sync::Cache<[u8; 32], (Uuid, Instant)>,
    per_user: DefaultKeyedRateLimiter<Uuid>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN)))
}

impl Forwarding {
    pub(crate) fn new(settings: Settings, user: Option<PeerChannel>) -> Arc<Self> {
        Arc::new(Self {
            tokens: quick_cache::sync::Cache::new(TOKEN_CACHE_SIZE),
            per_user: RateLimiter::keyed(quota(settings.user_rate)),
            per_address: RateLimiter::keyed(quota(settings.address_rate)),
            settings,
            user,
        })
    }

    /// Forgets rate-limit state that no longer limits anyone (called now and then).
    pub(crate) fn tidy(&self) {
        self.per_user.retain_recent();
        self.per_address.retain_recent();
    }

    /// The user a bearer token belongs to: from the cache while fresh, else from the user
    /// service.
    async fn authenticate(&self, token: &str) -> Result<Uuid, tonic::Status> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((user, until)) = self.tokens.get(&key)
            && Instant::now() < until
        {
            return Ok(user);
        }
        let channel =
            self.user.clone().ok_or_else(|| status::dependency_unavailable("user", Duration::from_secs(1)))?;
        let mut client = UserInternalServiceClient::new(channel);
        let answer = client
            .authenticate_access_token(user::AuthenticateAccessTokenRequest { secret: token.to_owned() })
            .await
            .map_err(|s| match s.code() {
                // A token the user service refuses, or cannot even read, is no token.
                Code::Unauthenticated | Code::InvalidArgument | Code::NotFound => {
                    status::unauthenticated("the access token is not valid (expired, revoked or unknown)")
                }
                Code::DeadlineExceeded => tonic::Status::deadline_exceeded("authenticating took too long"),
                _ => status::dependency_unavailable("user", Duration::from_secs(1)),
            })?
            .into_inner();
        let user =
            Uuid::parse_str(&answer.user_id).map_err(|_| tonic::Status::internal("the user service sent a bad id"))?;
        let mut until = Instant::now() + self.settings.token_cache_ttl;
        if let Some(expire) = answer.expire_time
            && let Some(expire) = chrono::DateTime::from_timestamp(expire.seconds, 0)
        {
            let left = (expire - chrono::Utc::now()).to_std().unwrap_or_default();
            until = until.min(Instant::now() + left);
        }
        self.tokens.insert(key, (user, until));
        Ok(user)
    }

    fn limited<K: std::hash::Hash + Eq + Clone>(
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
        what: &str,
    ) -> Result<(), tonic::Status> {
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            status::rate_limited(
                format!("too many calls from this {what}; slow down"),
                wait.max(Duration::from_millis(1)),
            )
        })
    }
}

/// Removes what a client may not send on: FastBreak's own headers (identity, credential), the
/// bearer token's scheme aside, and every hop-by-hop header (with those `connection` names).
fn strip(headers: &mut http::HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|name| name.trim().to_ascii_lowercase()))
        .filter(|name| !name.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    let ours: Vec<http::HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("x-fastbreak-")).cloned().collect();
    for name in ours {
        headers.remove(&name);
    }
    for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "cookie"] {
        headers.remove(name);
    }
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
}

/// One backend service's forwarding: its peer channel and the shared state.
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    pub(crate) shared: Arc<Forwarding>,
    pub(crate) backend: PeerChannel,
}

impl tower::Service<Request<AxumBody>> for Forward {
    type Response = Response<AxumBody>;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response<AxumBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<AxumBody>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            Ok(match this.forward(request).await {
                Ok(response) => response,
                Err(status) => status.into_http::<AxumBody>(),
            })
        })
    }
}

impl Forward {
    async fn forward(&self, request: Request<AxumBody>) -> Result<Response<AxumBody>, tonic::Status> {
        let (mut parts, body) = request.into_parts();
        let shared = &self.shared;
        // Whatever identity or credential a client sent is not believed, and nothing addressed
        // to this hop (HTTP/1.1 for gRPC-Web) goes further.
        strip(&mut parts.headers);
        debug_assert!(
            parts.headers.get(USER_ID_HEADER).is_none() && parts.headers.get(INTERNAL_TOKEN_HEADER).is_none()
        );
        if let Some(address) =
            parts.extensions.get::<tonic::transport::server::TcpConnectInfo>().and_then(|info| info.remote_addr())
        {
            Forwarding::limited(&shared.per_address, &address.ip(), "address")?;
        }
        if !OPEN.contains(&parts.uri.path()) {
            let token = parts
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("bearer ")).map(|_| &v[7..]))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    status::unauthenticated("this call needs an access token: authorization: Bearer <token>")
                })?
                .to_owned();
            let user = shared.authenticate(&token).await?;
            Forwarding::limited(&shared.per_user, &user, "user")?;
            let value = HeaderValue::from_str(&user.hyphenated().to_string())
                .map_err(|_| tonic::Status::internal("bad user id"))?;
            parts.headers.insert(USER_ID_HEADER, value);
        }
        parts.headers.remove(http::header::AUTHORIZATION);
        // The deadline: the client's, never more than the most the gateway gives.
        let asked = fastbreak_telemetry::context::grpc_timeout(&parts.headers);
        let deadline = asked.map_or(shared.settings.max_deadline, |d| d.min(shared.settings.max_deadline));
        fastbreak_telemetry::context::set_grpc_timeout(&mut parts.headers, deadline);
        // Requests are single messages (no public RPC streams from the client): read whole,
        // bounded (the 5-byte frame header included).
        let bytes: Bytes = match Limited::new(body, shared.settings.max_message_bytes + 5).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Err(status::with_reason(
                    Code::ResourceExhausted,
                    format!("the request is larger than {} bytes", shared.settings.max_message_bytes),
                    fastbreak_proto::common::v1::ErrorReason::InvalidField,
                    [("max_bytes".to_owned(), shared.settings.max_message_bytes.to_string())],
                    tonic_types::ErrorDetails::new(),
                ));
            }
            Err(error) => return Err(tonic::Status::cancelled(format!("the request could not be read: {error}"))),
        };
        // A call that could not connect was never sent: it goes to the next SERVING endpoint
        // (the channel has marked the one that failed), once per endpoint at most.
        let mut tries = self.backend.endpoint_count().max(1);
        loop {
            let mut request = Request::new(tonic::body::Body::new(Full::new(bytes.clone())));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = http::Version::HTTP_2;
            *request.headers_mut() = parts.headers.clone();
            let response = self.backend.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
            tries -= 1;
            let not_sent = response.extensions().get::<fastbreak_mesh::NotSent>().is_some();
            if not_sent && tries > 0 {
                continue;
            }
            if response.extensions().get::<fastbreak_mesh::MadeHere>().is_some() {
                // The channel's own answer names internal endpoints: the client is told which
                // service, not where it runs.
                let code = fastbreak_telemetry::server::response_code(&response).0;
                return Err(if code == Code::DeadlineExceeded as i32 {
                    tonic::Status::deadline_exceeded(format!("{} did not answer in time", self.backend.peer()))
                } else {
                    status::dependency_unavailable(self.backend.peer(), Duration::from_secs(1))
                });
            }
            return Ok(response.map(AxumBody::new));
        }
    }
}
