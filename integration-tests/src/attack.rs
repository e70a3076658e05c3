//! What hostile callers do, for the tests and the benchmark that play them against the gateway:
//! clients from chosen loopback addresses, sign-ups, request bodies that never end, and every
//! target's health.

use std::net::IpAddr;

use bytes::Bytes;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_proto::user::v1::{CreateAccessTokenRequest, CreateUserRequest};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt as _;

use crate::TestMesh;

/// The password of every user the attacks sign up.
pub const PASSWORD: &str = "correct horse battery staple";

/// A channel to the gateway from the given loopback address (127.0.0.0/8 all reaches this
/// machine, so one test can be several client addresses).
pub async fn gateway_from(mesh: &TestMesh, from: &str) -> Channel {
    Endpoint::from_shared(format!("http://{}", mesh.addr("gateway")))
        .unwrap()
        .local_address(Some(from.parse::<IpAddr>().unwrap()))
        .connect()
        .await
        .unwrap()
}

/// A request carrying a bearer token.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Signs up through the gateway and signs in: the token. (Each hashes a password: on a busy
/// machine, with a short deadline, one may run out of time and is asked again.)
pub async fn sign_up(gateway: Channel, email: &str) -> String {
    let mut users = UserServiceClient::new(gateway);
    let mut tries = 0;
    let signed_up = loop {
        let request =
            CreateUserRequest { display_name: "Collector".into(), email: email.into(), password: PASSWORD.into() };
        tries += 1;
        match users.create_user(request).await {
            Ok(_) => break true,
            Err(status) if status.code() == Code::AlreadyExists => break true,
            Err(status) if status.code() == Code::DeadlineExceeded && tries < 5 => continue,
            Err(status) => panic!("CreateUser: {status:?}"),
        }
    };
    assert!(signed_up);
    loop {
        match sign_in(&mut users, email).await {
            Ok(token) => return token,
            Err(status) if status.code() == Code::DeadlineExceeded && tries < 10 => tries += 1,
            Err(status) => panic!("CreateAccessToken: {status:?}"),
        }
    }
}

/// Signs in with [`PASSWORD`]: the token.
pub async fn sign_in(users: &mut UserServiceClient<Channel>, email: &str) -> Result<String, tonic::Status> {
    let request = CreateAccessTokenRequest { email: email.into(), password: PASSWORD.into(), ..Default::default() };
    Ok(users.create_access_token(request).await?.into_inner().secret)
}

/// Every target's own health, by name: UNKNOWN for one that cannot be reached or does not
/// answer within 5 s.
pub async fn healths(
    addrs: &std::collections::BTreeMap<&'static str, std::net::SocketAddr>,
) -> Vec<(&'static str, ServingStatus)> {
    let mut all = Vec::new();
    for (name, addr) in addrs {
        let status = async {
            let channel = Endpoint::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()?;
            let mut health = HealthClient::new(channel);
            let check = health.check(HealthCheckRequest { service: String::new() });
            tokio::time::timeout(std::time::Duration::from_secs(5), check).await.ok()?.ok()
        }
        .await
        .map_or(ServingStatus::Unknown, |answer| answer.into_inner().status());
        all.push((*name, status));
    }
    all
}

/// A raw call to the gateway whose body sends `sent` bytes of a message that promises
/// `promised`, then nothing, without ending; the answer's status.
pub async fn slow_body(
    channel: Channel,
    path: &'static str,
    token: Option<String>,
    promised: u32,
    sent: usize,
) -> Code {
    let (tx, frames) = futures::channel::mpsc::unbounded::<Result<http_body::Frame<Bytes>, tonic::Status>>();
    let mut head = vec![0u8];
    head.extend_from_slice(&promised.to_be_bytes());
    tx.unbounded_send(Ok(http_body::Frame::data(Bytes::from(head)))).unwrap();
    // One buffer for every call, sliced without copying: the attacker's own work stays small
    // (it runs in the same process as the servers in the tests and the benchmark).
    static FILLER: std::sync::LazyLock<Bytes> = std::sync::LazyLock::new(|| Bytes::from(vec![7u8; 4 * 1024 * 1024]));
    let mut at = 0;
    while at < sent.min(FILLER.len()) {
        let end = (at + 16 * 1024).min(sent);
        tx.unbounded_send(Ok(http_body::Frame::data(FILLER.slice(at..end)))).unwrap();
        at = end;
    }
    let body = tonic::body::Body::new(http_body_util::StreamBody::new(frames));
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://gateway{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = channel.oneshot(request.body(body).unwrap()).await.expect("an answer");
    let (parts, body) = response.into_parts();
    let code = |headers: &http::HeaderMap| {
        headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok())
    };
    let status = match code(&parts.headers) {
        Some(code) => code,
        None => {
            let collected = http_body_util::BodyExt::collect(body).await.expect("a body");
            collected.trailers().and_then(code).expect("a status in the trailers")
        }
    };
    drop(tx);
    Code::from_i32(status)
}
