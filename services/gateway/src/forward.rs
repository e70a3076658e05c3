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
use http_body_util::{BodyExt, Full};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use fastbreak_mesh::bulkhead::{Held, PerKey};

use crate::bounds::DeadlineBody;
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
    /// The paths of the server-streaming methods (their deadline is the stream lifetime).
    streaming: std::collections::HashSet<String>,
    /// Request body bytes in flight, per address and in all.
    body_bytes: PerKey<IpAddr>,
    all_body_bytes: Arc<Semaphore>,
    /// Sign-ins and sign-ups in progress per address.
    sign_ins: PerKey<IpAddr>,
    /// The internal credential: a caller presenting it may name the address it relays for.
    internal: Option<fastbreak_config::Secret<String>>,
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Forwarding {
    /// The visitor's address a mesh member relays for (the web dashboard): believed only from a
    /// caller that presents the internal credential; anyone else is limited by its own address.
    fn relayed_address(&self, headers: &http::HeaderMap) -> Option<IpAddr> {
        let internal = self.internal.as_ref()?;
        let presented = headers.get(INTERNAL_TOKEN_HEADER)?;
        if !fastbreak_mesh::auth::same_secret(presented.as_bytes(), internal.expose().as_bytes()) {
            return None;
        }
        headers.get(fastbreak_mesh::auth::CLIENT_ADDRESS_HEADER)?.to_str().ok()?.trim().parse().ok()
    }
}

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN)))
}

impl Forwarding {
    pub(crate) fn new(
        settings: Settings,
        user: Option<PeerChannel>,
        streaming: std::collections::HashSet<String>,
        internal: Option<fastbreak_config::Secret<String>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            tokens: quick_cache::sync::Cache::new(TOKEN_CACHE_SIZE),
            per_user: RateLimiter::keyed(quota(settings.user_rate)),
            per_address: RateLimiter::keyed(quota(settings.address_rate)),
            streaming,
            body_bytes: PerKey::new(settings.body_bytes_per_address),
            all_body_bytes: Arc::new(Semaphore::new(settings.body_bytes_total)),
            sign_ins: PerKey::new(settings.sign_ins_per_address),
            internal,
            settings,
            user,
        })
    }

    /// Forgets rate-limit state that no longer limits anyone (called now and then).
    pub(crate) fn tidy(&self) {
        self.per_user.retain_recent();
        self.per_address.retain_recent();
    }

    /// Reads a request's body whole, within the largest message and the bytes its address and
    /// every client together may have in flight; what is read stays counted until the
    /// returned permits are dropped.
    async fn read_body(
        &self,
        mut body: AxumBody,
        address: Option<IpAddr>,
    ) -> Result<(Bytes, (Vec<Held<IpAddr>>, Vec<OwnedSemaphorePermit>)), tonic::Status> {
        let limit = self.settings.max_message_bytes + 5;
        let mut read = bytes::BytesMut::new();
        let (mut held, mut all) = (Vec::new(), Vec::new());
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|error| tonic::Status::cancelled(format!("the request could not be read: {error}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if read.len() + data.len() > limit {
                return Err(status::with_reason(
                    Code::ResourceExhausted,
                    format!("the request is larger than {} bytes", self.settings.max_message_bytes),
                    fastbreak_proto::common::v1::ErrorReason::InvalidField,
                    [("max_bytes".to_owned(), self.settings.max_message_bytes.to_string())],
                    tonic_types::ErrorDetails::new(),
                ));
            }
            let units = u32::try_from(data.len()).unwrap_or(u32::MAX);
            if let Some(address) = address {
                held.push(self.body_bytes.try_take(&address, units).ok_or_else(|| {
                    status::rate_limited(
                        "this address has too many request bytes in flight; wait for its calls to finish",
                        Duration::from_secs(1),
                    )
                })?);
            }
            all.push(self.all_body_bytes.clone().try_acquire_many_owned(units).map_err(|_| {
                status::rate_limited(
                    "the gateway has too many request bytes in flight; try again",
                    Duration::from_secs(1),
                )
            })?);
            read.extend_from_slice(&data);
        }
        Ok((read.freeze(), (held, all)))
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

/// Checks that a request's body is one whole gRPC message, uncompressed: its 5-byte header
/// (flag, length) and exactly the bytes the length promises. What is not is the caller's
/// mistake, said so here rather than left for the backend to call a failure of its own.
fn one_message(body: &[u8], encoding_named: bool) -> Result<(), tonic::Status> {
    let Some((head, message)) = body.split_first_chunk::<5>() else {
        return Err(status::invalid_field(
            "request",
            format!("the body holds {} bytes, not one gRPC message (a 5-byte header and the message)", body.len()),
        ));
    };
    let promised = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    match head[0] {
        0 => {}
        1 if encoding_named => {
            return Err(tonic::Status::unimplemented("compressed requests are not accepted; send them uncompressed"));
        }
        1 => {
            return Err(status::invalid_field(
                "request",
                "the message is marked compressed but grpc-encoding names no compression",
            ));
        }
        flag => {
            return Err(status::invalid_field(
                "request",
                format!("the message's flag is {flag}: it must be 0 (or 1, compressed)"),
            ));
        }
    }
    if promised != message.len() {
        return Err(status::invalid_field(
            "request",
            format!(
                "the message's header promises {promised} bytes and the body holds {}; send one whole message",
                message.len()
            ),
        ));
    }
    Ok(())
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
        let relayed = shared.relayed_address(&parts.headers);
        // Whatever identity or credential a client sent is not believed, and nothing addressed
        // to this hop (HTTP/1.1 for gRPC-Web) goes further.
        strip(&mut parts.headers);
        debug_assert!(
            parts.headers.get(USER_ID_HEADER).is_none() && parts.headers.get(INTERNAL_TOKEN_HEADER).is_none()
        );
        let address = relayed.or_else(|| {
            parts
                .extensions
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr())
                .map(|a| a.ip())
        });
        if let Some(address) = address {
            Forwarding::limited(&shared.per_address, &address, "address")?;
        }
        // The deadline: the client's, never more than the most the gateway gives (a stream's
        // lifetime for a stream). It covers the whole call: body, backend and answer.
        let streaming = shared.streaming.contains(parts.uri.path());
        let most = if streaming { shared.settings.stream_lifetime } else { shared.settings.max_deadline };
        let asked = fastbreak_telemetry::context::grpc_timeout(&parts.headers);
        let deadline = asked.map_or(most, |d| d.min(most));
        let until = tokio::time::Instant::now() + deadline;
        fastbreak_telemetry::context::set_grpc_timeout(&mut parts.headers, deadline);
        let late = || {
            tonic::Status::deadline_exceeded(format!(
                "the call took longer than its {} ms deadline",
                deadline.as_millis()
            ))
        };
        // A password is hashed for each sign-in and sign-up: an address gets a few at once,
        // refused before anything is read (the refusal costs the server next to nothing).
        let _signing_in = if OPEN.contains(&parts.uri.path()) {
            match address {
                Some(address) => Some(shared.sign_ins.try_take(&address, 1).ok_or_else(|| {
                    status::rate_limited(
                        "this address already has sign-ins in progress; wait for them to finish",
                        Duration::from_secs(1),
                    )
                })?),
                None => None,
            }
        } else {
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
            let user = tokio::time::timeout_at(until, shared.authenticate(&token)).await.map_err(|_| late())??;
            Forwarding::limited(&shared.per_user, &user, "user")?;
            let value = HeaderValue::from_str(&user.hyphenated().to_string())
                .map_err(|_| tonic::Status::internal("bad user id"))?;
            parts.headers.insert(USER_ID_HEADER, value);
            None
        };
        parts.headers.remove(http::header::AUTHORIZATION);
        // Requests are single messages (no public RPC streams from the client): read whole,
        // bounded in size, in bytes held at once, and in time (a stream's body too must come
        // within the most a unary call gets).
        let body_until = until.min(tokio::time::Instant::now() + shared.settings.max_deadline);
        let (bytes, _held) = tokio::time::timeout_at(body_until, shared.read_body(body, address))
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("the request's body did not arrive in time"))??;
        one_message(&bytes, parts.headers.contains_key("grpc-encoding"))?;
        let response = tokio::time::timeout_at(until, self.send(&parts, bytes)).await.map_err(|_| late())??;
        let message = if streaming {
            format!(
                "the stream reached its deadline ({} s at most); resume with after_sequence set to the last \
                 sequence received",
                deadline.as_secs()
            )
        } else {
            late().message().to_owned()
        };
        Ok(response.map(|body| AxumBody::new(DeadlineBody::new(body, until, message))))
    }

    /// Sends a read request on to a SERVING endpoint of the backend.
    async fn send(
        &self,
        parts: &http::request::Parts,
        bytes: Bytes,
    ) -> Result<Response<tonic::body::Body>, tonic::Status> {
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
            return Ok(response);
        }
    }
}
