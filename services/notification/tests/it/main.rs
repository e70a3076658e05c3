//! The notification service over real gRPC, against a fresh PostgreSQL database per test, with
//! webhooks POSTed to a real local HTTP server.

mod alerts;
mod delivery;
mod inbox;
mod preferences;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fastbreak_db::testing::TestDatabase;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::TestServer;
use fastbreak_notification::Settings;
use fastbreak_proto::notification::v1::notification_internal_service_client::NotificationInternalServiceClient;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::notification::v1::{
    Delivery, DeliveryState, ListDeliveriesRequest, NotificationCategory, NotificationPreferences, Priority,
    SendNotificationRequest, UpdateNotificationPreferencesRequest,
};
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

use fastbreak_mesh::testing::{as_user, internal};

struct App {
    public: NotificationServiceClient<Channel>,
    internal: NotificationInternalServiceClient<Channel>,
    database: TestDatabase,
    server: Option<TestServer>,
}

/// Settings for tests: quick retries and polls, short leases.
fn test_settings() -> Settings {
    Settings {
        max_attempts: 3,
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        request_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(1),
        // The test webhooks listen on 127.0.0.1.
        allow_private_webhooks: true,
        ..Settings::default()
    }
}

async fn spawn_app() -> App {
    spawn_app_with(test_settings()).await
}

async fn spawn_app_with(settings: Settings) -> App {
    let database = TestDatabase::create().await;
    let server = TestServer::start(fastbreak_notification::server(Context::new(database.database(), settings))).await;
    let channel = server.channel().await;
    App {
        public: NotificationServiceClient::new(channel.clone()),
        internal: NotificationInternalServiceClient::new(channel),
        database,
        server: Some(server),
    }
}

impl App {
    async fn user(&self) -> Uuid {
        self.database.create_user().await
    }

    async fn send(
        &mut self,
        user: Uuid,
        key: &str,
        priority: Priority,
    ) -> fastbreak_proto::notification::v1::Notification {
        self.internal.send_notification(internal(notification(user, key, priority))).await.unwrap().into_inner()
    }

    /// Points the user's webhook at `url`; returns the signing secret made for it.
    async fn webhook(&mut self, user: Uuid, url: &str) -> String {
        let request = UpdateNotificationPreferencesRequest {
            preferences: Some(NotificationPreferences {
                webhook_url: url.to_owned(),
                webhook_min_priority: Priority::Normal as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["webhook_url".into(), "webhook_min_priority".into()],
            }),
            rotate_webhook_secret: false,
        };
        let preferences =
            self.public.update_notification_preferences(as_user(request, user)).await.unwrap().into_inner();
        assert!(preferences.webhook_secret.starts_with("whsec_"), "{preferences:?}");
        preferences.webhook_secret
    }

    async fn deliveries(&mut self, user: Uuid) -> Vec<Delivery> {
        self.public
            .list_deliveries(as_user(ListDeliveriesRequest::default(), user))
            .await
            .unwrap()
            .into_inner()
            .deliveries
    }

    /// Waits (10 s at most) until every delivery of the user has left PENDING.
    async fn settled_deliveries(&mut self, user: Uuid, count: usize) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let deliveries = self.deliveries(user).await;
            if deliveries.len() == count && deliveries.iter().all(|d| d.state() != DeliveryState::Pending) {
                return deliveries;
            }
            assert!(tokio::time::Instant::now() < deadline, "deliveries never settled: {deliveries:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn notification(user: Uuid, key: &str, priority: Priority) -> SendNotificationRequest {
    SendNotificationRequest {
        user_id: user.to_string(),
        category: NotificationCategory::Purchase as i32,
        priority: priority as i32,
        title: "Bought a moment".into(),
        body: "Bought serial 7 for $35.00.".into(),
        idempotency_key: key.into(),
        links: vec![],
    }
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// What a webhook received.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// How a test webhook answers.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// 503 for the first `n` requests, then 200.
    FailFirst(usize),
    /// Never answers.
    Hang,
}

struct HookState {
    behaviour: Behaviour,
    received: Mutex<Vec<Received>>,
    arrived: tokio::sync::Notify,
}

/// A real HTTP server on 127.0.0.1 that records what it is sent.
struct Hook {
    addr: SocketAddr,
    state: Arc<HookState>,
}

impl Hook {
    async fn start(behaviour: Behaviour) -> Self {
        async fn receive(State(state): State<Arc<HookState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
            let count = {
                let mut received = state.received.lock().unwrap();
                received.push(Received { headers, body });
                received.len()
            };
            state.arrived.notify_waiters();
            match state.behaviour {
                Behaviour::FailFirst(n) if count <= n => StatusCode::SERVICE_UNAVAILABLE,
                Behaviour::FailFirst(_) => StatusCode::OK,
                Behaviour::Hang => std::future::pending().await,
            }
        }
        let state =
            Arc::new(HookState { behaviour, received: Mutex::new(Vec::new()), arrived: tokio::sync::Notify::new() });
        let router = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}
