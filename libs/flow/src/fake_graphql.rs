//! A local stand-in for Top Shot's public GraphQL API (`POST /graphql`, `{"query", "variables"}`),
//! for tests and demos: answers `getMintedMoment(momentId:)` with the moments it was given, in
//! the live API's shape (`data.getMintedMoment.data`, field names of the public schema), and
//! counts the lookups; and answers `searchMarketplaceTransactions` with the sales it was given,
//! oldest first, a page at a time (`data.searchMarketplaceTransactions.data.searchSummary`,
//! `pagination.rightCursor`, `data.data[]` with `price` as a decimal string of eight places).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A moment the fake knows, in the terms of the public schema.
#[derive(Debug, Clone, PartialEq)]
pub struct MintedMoment {
    /// `flowId`.
    pub flow_id: u64,
    /// `flowSerialNumber`.
    pub serial: u32,
    /// `tier`, such as `MOMENT_TIER_RARE`.
    pub tier: String,
    /// `set.flowName`.
    pub set_name: String,
    /// `setPlay.circulationCount`.
    pub circulation: u32,
    /// `play.stats.playerID`.
    pub player_id: String,
    /// `play.stats.playerName`.
    pub player_name: String,
    /// `play.stats.jerseyNumber`.
    pub jersey: String,
    /// `play.stats.teamAtMoment`, a team's full name.
    pub team: String,
    /// `play.stats.primaryPosition`.
    pub position: String,
    /// `play.stats.totalYearsExperience`.
    pub years: String,
    /// `play.stats.dateOfMoment`, RFC 3339.
    pub date: String,
    /// `play.stats.playCategory`.
    pub play_category: String,
}

impl MintedMoment {
    /// The moment as `getMintedMoment { data { … } }` returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": format!("00000000-0000-4000-8000-{:012x}", self.flow_id),
            "flowId": self.flow_id.to_string(),
            "flowSerialNumber": self.serial.to_string(),
            "tier": self.tier,
            "set": {"flowName": self.set_name},
            "setPlay": {"circulationCount": self.circulation},
            "play": {"stats": {
                "playerID": self.player_id,
                "playerName": self.player_name,
                "jerseyNumber": self.jersey,
                "teamAtMoment": self.team,
                "primaryPosition": self.position,
                "totalYearsExperience": self.years,
                "dateOfMoment": self.date,
                "playCategory": self.play_category,
            }},
        })
    }
}

/// A sale the fake knows: a `MarketplaceTransaction` of the public schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// `id`, a UUID.
    pub id: String,
    /// `price`, in cents.
    pub price_cents: u64,
    /// `updatedAt`, RFC 3339.
    pub updated_at: String,
    /// `txHash`.
    pub tx_hash: String,
    /// `seller.flowAddress`.
    pub seller: String,
    /// `buyer.flowAddress`.
    pub buyer: String,
    /// `moment`.
    pub moment: MintedMoment,
}

impl Transaction {
    /// The sale as `searchMarketplaceTransactions` returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "price": format!("{}.{:02}000000", self.price_cents / 100, self.price_cents % 100),
            "updatedAt": self.updated_at,
            "txHash": self.tx_hash,
            "seller": {"flowAddress": self.seller},
            "buyer": {"flowAddress": self.buyer},
            "moment": self.moment.to_json(),
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    transactions: Vec<Transaction>,
    /// Pages asked for: (cursor, limit).
    pages: Vec<(String, u64)>,
    moments: BTreeMap<u64, MintedMoment>,
    lookups: BTreeMap<u64, u32>,
    failures: u32,
}

/// The fake's handle.
#[derive(Debug, Clone, Default)]
pub struct FakeTopShotApi {
    inner: Arc<Mutex<Inner>>,
}

impl FakeTopShotApi {
    /// A fake that knows `moments`.
    pub fn new(moments: impl IntoIterator<Item = MintedMoment>) -> Self {
        let moments = moments.into_iter().map(|m| (m.flow_id, m)).collect();
        Self { inner: Arc::new(Mutex::new(Inner { moments, ..Inner::default() })) }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds sales (after the ones given before: the API lists them oldest first).
    pub fn add_transactions(&self, transactions: impl IntoIterator<Item = Transaction>) {
        self.inner().transactions.extend(transactions);
    }

    /// The pages of sales asked for: (cursor, limit).
    pub fn pages(&self) -> Vec<(String, u64)> {
        self.inner().pages.clone()
    }

    /// How many times each moment was looked up.
    pub fn lookups(&self) -> BTreeMap<u64, u32> {
        self.inner().lookups.clone()
    }

    /// Makes the next `n` requests fail with HTTP 503.
    pub fn fail_next(&self, n: u32) {
        self.inner().failures = n;
    }

    /// Serves `POST /graphql` on `127.0.0.1` at a free port until the handle is dropped.
    pub async fn serve(&self) -> FakeTopShotServer {
        let app = axum::Router::new().route("/graphql", post(answer)).with_state(self.clone());
        FakeTopShotServer(serve_http(app).await)
    }
}

/// A local HTTP server of a fake; it stops when dropped.
#[derive(Debug)]
pub struct LocalServer {
    /// Where it listens.
    pub address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Serves `app` on `127.0.0.1` at a free port until the handle is dropped.
pub(crate) async fn serve_http(app: axum::Router) -> LocalServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
    let address = listener.local_addr().expect("the port's address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    LocalServer { address, _stop: stop }
}

/// The running fake; it stops when dropped.
#[derive(Debug)]
pub struct FakeTopShotServer(pub LocalServer);

impl FakeTopShotServer {
    /// The endpoint's URL.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.0.address)
    }
}

async fn answer(
    State(api): State<FakeTopShotApi>,
    Json(request): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let mut inner = api.inner();
    if inner.failures > 0 {
        inner.failures -= 1;
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({"errors": [{"message": "unavailable"}]})));
    }
    let query = request["query"].as_str().unwrap_or_default();
    if query.contains("searchMarketplaceTransactions") {
        return (axum::http::StatusCode::OK, Json(transactions_page(&mut inner, &request["variables"])));
    }
    if !query.contains("getMintedMoment") {
        let message = "this fake answers getMintedMoment and searchMarketplaceTransactions only";
        return (
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({"errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}], "data": null}),
            ),
        );
    }
    let id = request["variables"]["momentId"].as_str().and_then(|id| id.parse::<u64>().ok());
    let Some(id) = id else {
        return (
            axum::http::StatusCode::OK,
            Json(
                json!({"errors": [{"message": "momentId is not a moment id", "path": ["getMintedMoment"]}], "data": {"getMintedMoment": null}}),
            ),
        );
    };
    *inner.lookups.entry(id).or_default() += 1;
    let body = match inner.moments.get(&id) {
        Some(moment) => json!({"data": {"getMintedMoment": {"data": moment.to_json()}}}),
        None => {
            json!({"errors": [{"message": "moment not found", "path": ["getMintedMoment"]}], "data": {"getMintedMoment": null}})
        }
    };
    (axum::http::StatusCode::OK, Json(body))
}

/// A page of sales after `cursor` (the fake's cursor is the index of the next sale, as text;
/// empty is the start). The right cursor points past the page, also when it is the last one.
fn transactions_page(inner: &mut Inner, variables: &Value) -> Value {
    let cursor = variables["cursor"].as_str().unwrap_or_default().to_owned();
    let limit = variables["limit"].as_u64().unwrap_or(10).clamp(1, 1_000);
    inner.pages.push((cursor.clone(), limit));
    let start = if cursor.is_empty() { Some(0) } else { cursor.parse::<usize>().ok() };
    let Some(start) = start else {
        return json!({"errors": [{"message": "invalid cursor", "path": ["searchMarketplaceTransactions"]}], "data": null});
    };
    let page: Vec<Value> =
        inner.transactions.iter().skip(start).take(limit as usize).map(Transaction::to_json).collect();
    let right = start + page.len();
    json!({"data": {"searchMarketplaceTransactions": {"data": {"searchSummary": {
        "pagination": {"leftCursor": start.to_string(), "rightCursor": right.to_string()},
        "data": {"size": page.len(), "data": page},
    }}}}})
}
