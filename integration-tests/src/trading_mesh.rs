//! Trading with its real peers, in-process over real sockets on one fresh database: user, risk,
//! marketplace (no feeds: the tests list the market's moments themselves), strategy,
//! notification and trading, each knowing the others' addresses, as `serve` wires them.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use fastbreak_db::Rarity;
use fastbreak_db::testing::TestDatabase;
use fastbreak_db::{Database, PoolOptions};
use fastbreak_marketplace::store::{self as market, ListingState};
use fastbreak_mesh::testing::{TestServer, as_user, hold_port};
use fastbreak_mesh::{Context, MeshServer, Peers};
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::trading::v1 as pb;
use fastbreak_proto::trading::v1::trading_internal_service_client::TradingInternalServiceClient;
use fastbreak_proto::trading::v1::trading_service_client::TradingServiceClient;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_scouting::store as scouting;
use futures::FutureExt;
use tonic::transport::Channel;
use uuid::Uuid;

/// How the mesh is set up.
#[derive(Debug, Clone)]
pub struct MeshOptions {
    /// Trading's settings.
    pub trading: fastbreak_trading::Settings,
    /// Risk's settings.
    pub risk: fastbreak_risk::Settings,
    /// Connections per target.
    pub pool: usize,
    /// Whether scouting and the agents run too.
    pub agents: bool,
    /// The most listing events the agents decide together.
    pub agents_batch: usize,
    /// The longest a backtest may replay.
    pub backtest_deadline: Duration,
}

impl Default for MeshOptions {
    fn default() -> Self {
        Self {
            trading: fastbreak_trading::Settings {
                recover_after: Duration::from_secs(1),
                worker_interval: Duration::from_millis(50),
                call_timeout: Duration::from_secs(5),
                ..fastbreak_trading::Settings::default()
            },
            risk: fastbreak_risk::Settings {
                hold_ttl: Duration::from_secs(2),
                reconcile_interval: Duration::from_millis(100),
                ..fastbreak_risk::Settings::default()
            },
            pool: 8,
            agents: false,
            agents_batch: fastbreak_agents::Settings::default().batch,
            backtest_deadline: fastbreak_agents::Settings::default().backtest_deadline,
        }
    }
}

/// The running mesh.
pub struct TradingMesh {
    /// The database every target shares.
    pub database: TestDatabase,
    /// A pool for the test's own reads and seeding.
    pub pool: Database,
    /// Each target's address, by name.
    pub addrs: Vec<(&'static str, SocketAddr)>,
    servers: Vec<(&'static str, TestServer)>,
    /// The ports of stopped targets, held by sockets that are bound but not listening (so that
    /// calls to them are refused, as to a target that is down, and no other test's server takes
    /// the port before the target starts again on it).
    held: Vec<(&'static str, tokio::net::TcpSocket)>,
    options: MeshOptions,
    /// Simulated hours the marketplace's simulator runs, once started.
    simulated_hours: Option<usize>,
    /// In front of the names of this mesh's trading fail points (see [`TradingMesh::fail_point`]).
    fail_scope: String,
}

const NAMES: [&str; 8] = ["user", "strategy", "notification", "risk", "marketplace", "trading", "scouting", "agents"];

impl TradingMesh {
    /// Starts every target on a fresh database.
    pub async fn start(options: MeshOptions) -> Self {
        crate::test_logs();
        let database = TestDatabase::create().await;
        let pool = Database::connect_lazy(database.url(), &PoolOptions { max_size: 8, ..PoolOptions::default() })
            .expect("a valid test database URL");
        let count = if options.agents { NAMES.len() } else { NAMES.len() - 2 };
        // Every target's port is held from the start, so that no other process takes one
        // before its target starts.
        let held: Vec<(&'static str, tokio::net::TcpSocket)> = NAMES[..count]
            .iter()
            .map(|n| (*n, hold_port(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a free port on 127.0.0.1")))
            .collect();
        let addrs = held.iter().map(|(n, socket)| (*n, socket.local_addr().expect("a held port's address"))).collect();
        let fail_scope = format!("{}/", uuid::Uuid::new_v4().simple());
        let mut mesh =
            Self { database, pool, addrs, servers: Vec::new(), held, options, simulated_hours: None, fail_scope };
        for name in &NAMES[..count] {
            mesh.start_target(name).await;
        }
        mesh
    }

    /// The name of one of this mesh's trading fail points ("trading::before-hold", say), for
    /// `fail::cfg`: fail points are process-wide, and tests in one process (`cargo test`) must
    /// not reach each other's purchases.
    pub fn fail_point(&self, name: &str) -> String {
        format!("{}{name}", self.fail_scope)
    }

    fn addr(&self, name: &str) -> SocketAddr {
        self.addrs.iter().find(|(n, _)| *n == name).map(|(_, a)| *a).expect("a target of the mesh")
    }

    fn context<S>(&self, settings: S, peers: &[&'static str]) -> Context<S, Database> {
        let pool = Database::connect_lazy(
            self.database.url(),
            &PoolOptions { max_size: self.options.pool, ..PoolOptions::default() },
        )
        .expect("a valid test database URL");
        let mut context = Context::new(pool, settings);
        let mut channels = Peers::default();
        for peer in peers {
            channels.insert(peer, self.peer(peer, &[self.addr(peer)]));
        }
        context.peers = channels;
        context
    }

    /// A channel to a peer as the mesh's test servers make one, with calls given 10 s (tests
    /// run many meshes at once on few cores).
    pub fn peer(&self, name: &str, addrs: &[SocketAddr]) -> fastbreak_mesh::PeerChannel {
        let urls: Vec<String> = addrs.iter().map(|addr| format!("http://{addr}")).collect();
        let endpoints = fastbreak_config::Endpoints::parse(&urls.join(",")).expect("valid test URLs");
        let options = fastbreak_mesh::PeerOptions {
            call_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            health_interval: Duration::from_millis(100),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_millis(500),
            credential: Some(fastbreak_config::Secret::new(fastbreak_mesh::testing::TEST_CREDENTIAL.to_owned())),
            startup_grace: Duration::from_secs(5),
        };
        fastbreak_mesh::PeerChannel::new(name, "", &endpoints, options).expect("a valid test peer")
    }

    fn server(&self, name: &str) -> MeshServer {
        match name {
            "user" => fastbreak_user::server(self.context(
                fastbreak_user::Settings {
                    password_hashing: fastbreak_user::settings::PasswordCost { memory_kib: 64, iterations: 1 },
                    ..Default::default()
                },
                &[],
            )),
            "strategy" => fastbreak_strategy::server(self.context((), &[])),
            "notification" => fastbreak_notification::server(self.context(Default::default(), &["user"])),
            "risk" => fastbreak_risk::server(self.context(self.options.risk.clone(), &["trading", "notification"])),
            "marketplace" => {
                let feeds: Vec<Box<dyn fastbreak_marketplace::MarketFeed>> = match self.simulated_hours {
                    Some(hours) => {
                        vec![Box::new(
                            fastbreak_marketplace::SimulatorFeed::new(
                                7,
                                fastbreak_market_sim::Config::default().start,
                                Duration::ZERO,
                            )
                            .for_hours(hours),
                        )]
                    }
                    None => Vec::new(),
                };
                fastbreak_marketplace::server_with_feeds(
                    self.context(
                        fastbreak_marketplace::Settings {
                            simulator: false,
                            stream_poll: Duration::from_millis(100),
                            ..Default::default()
                        },
                        &[],
                    ),
                    feeds,
                )
            }
            "trading" => {
                let settings = fastbreak_trading::Settings {
                    fail_point_scope: self.fail_scope.clone(),
                    ..self.options.trading.clone()
                };
                fastbreak_trading::server(
                    self.context(settings, &["user", "risk", "marketplace", "strategy", "notification"]),
                )
            }
            "scouting" => fastbreak_scouting::server(self.context(
                fastbreak_scouting::Settings { poll_interval: Duration::from_millis(100), ..Default::default() },
                &[],
            )),
            "agents" => fastbreak_agents::server(self.context(
                fastbreak_agents::Settings {
                    reconnect_pause: Duration::from_millis(100),
                    retry_min: Duration::from_millis(20),
                    step_deadline: Duration::from_secs(3),
                    schedule_interval: Duration::from_millis(100),
                    batch: self.options.agents_batch,
                    backtest_deadline: self.options.backtest_deadline,
                    ..Default::default()
                },
                fastbreak_agents::PEERS,
            )),
            other => panic!("no target {other} in the trading mesh"),
        }
    }

    /// Starts (or starts again) one target on its address.
    pub async fn start_target(&mut self, name: &'static str) {
        let server = match self.held.iter().position(|(held, _)| *held == name) {
            Some(index) => TestServer::start_held(self.server(name), self.held.remove(index).1).await,
            None => TestServer::start_at(self.server(name), self.addr(name)).await,
        };
        self.servers.push((name, server));
    }

    /// Restarts the marketplace with the simulator as its source, for `hours` simulated hours
    /// at full speed (its listings, sales and games reach the streams as they are ingested).
    pub async fn start_simulator(&mut self, hours: usize) {
        self.stop_target("marketplace").await;
        self.simulated_hours = Some(hours);
        self.start_target("marketplace").await;
    }

    /// Stops one target (calls in flight finish first).
    pub async fn stop_target(&mut self, name: &str) {
        let index = self.servers.iter().position(|(n, _)| *n == name).expect("a running target");
        let (name, server) = self.servers.remove(index);
        server.stop().await.expect("the target stops cleanly");
        let socket = hold_port(self.addr(name))
            .unwrap_or_else(|error| panic!("cannot hold {name}'s port while it is down: {error}"));
        self.held.push((name, socket));
    }

    async fn channel(&self, name: &str) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr(name)))
            .expect("a valid URL")
            .connect()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {name}: {error}"))
    }

    /// A client of trading's public service.
    pub async fn trading(&self) -> TradingServiceClient<Channel> {
        TradingServiceClient::new(self.channel("trading").await)
    }

    /// A client of trading's internal service.
    pub async fn trading_internal(&self) -> TradingInternalServiceClient<Channel> {
        TradingInternalServiceClient::new(self.channel("trading").await)
    }

    /// A client of risk's internal service.
    pub async fn risk_internal(&self) -> RiskInternalServiceClient<Channel> {
        RiskInternalServiceClient::new(self.channel("risk").await)
    }

    /// A client of risk's public service.
    pub async fn risk(&self) -> RiskServiceClient<Channel> {
        RiskServiceClient::new(self.channel("risk").await)
    }

    /// A client of the user service.
    pub async fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel("user").await)
    }

    /// A user with a connected wallet and `funds` cents deposited; (id, wallet address).
    pub async fn funded_user(&self, funds: i64) -> (Uuid, String) {
        let id = self.database.create_user().await;
        let address = format!("0x{:016x}", u64::from_be_bytes(id.as_bytes()[..8].try_into().expect("eight bytes")));
        self.users()
            .await
            .register_wallet(as_user(user::RegisterWalletRequest { flow_address: address.clone() }, id))
            .await
            .expect("the wallet is registered");
        if funds > 0 {
            self.trading()
                .await
                .deposit_funds(as_user(
                    pb::DepositFundsRequest { amount_cents: funds, idempotency_key: format!("seed-{id}") },
                    id,
                ))
                .await
                .expect("the deposit is made");
        }
        (id, address)
    }

    /// Raises a user's limits far above any test's spending (proposed and confirmed).
    pub async fn raise_limits(&self, user: Uuid) {
        self.set_limits(user, 100_000_000, 1_000_000).await;
    }

    /// Sets a user's limits: `daily` cents for the day (and every longer period, and the
    /// emergency threshold), `per_moment` for one moment (proposed and confirmed).
    pub async fn set_limits(&self, user: Uuid, daily: i64, per_moment: i64) {
        let mut risk = self.risk().await;
        let limits = fastbreak_proto::risk::v1::BudgetLimits {
            daily_cents: Some(daily),
            weekly_cents: Some(daily),
            monthly_cents: Some(daily),
            total_cents: Some(daily),
            per_moment_cents: Some(per_moment),
            reserve_cents: None,
            emergency_threshold_cents: Some(daily),
            time_zone: "UTC".to_owned(),
            ..Default::default()
        };
        let change = risk
            .propose_budget_limit_change(as_user(
                fastbreak_proto::risk::v1::ProposeBudgetLimitChangeRequest { limits: Some(limits) },
                user,
            ))
            .await
            .expect("a limit change")
            .into_inner();
        risk.confirm_budget_limit_change(as_user(
            fastbreak_proto::risk::v1::ConfirmBudgetLimitChangeRequest { change_id: change.change_id },
            user,
        ))
        .await
        .expect("the change is confirmed");
    }

    /// Records a sale at `price` cents of the moment of each of `listings` (a day apart, the
    /// latest yesterday): scouting's comparables. Returns the moments' player.
    pub async fn record_sales(&self, listings: &[Uuid], price: i64) -> String {
        self.record_sales_at(listings, price, |i| Utc::now() - chrono::Duration::days(i as i64 + 1)).await
    }

    /// Records a sale at `price` cents of the moment of each of `listings`, the `i`th at
    /// `sold_at(i)`. Returns the moments' player.
    pub async fn record_sales_at(
        &self,
        listings: &[Uuid],
        price: i64,
        sold_at: impl Fn(usize) -> chrono::DateTime<Utc> + Send + Sync + Clone + 'static,
    ) -> String {
        let listings = listings.to_vec();
        self.pool
            .read_committed(move |conn| {
                let (listings, sold_at) = (listings.clone(), sold_at.clone());
                async move {
                    let mut player = String::new();
                    for (i, listing) in listings.iter().enumerate() {
                        let found = market::find_listing(conn, *listing).await?.expect("a listing");
                        let moment = market::find_moment(conn, found.moment_id).await?.expect("a moment");
                        player = moment.player_id.clone();
                        market::record_sale(
                            conn,
                            &market::Sale {
                                id: Uuid::new_v4(),
                                moment_id: moment.id,
                                listing_id: None,
                                source_id: "simulator".to_owned(),
                                price_cents: price,
                                seller_address: found.seller_address.clone(),
                                buyer_address: "0x00000000000000aa".to_owned(),
                                sold_at: sold_at(i),
                            },
                        )
                        .await?;
                    }
                    Ok(player)
                }
                .boxed()
            })
            .await
            .expect("the sales are recorded")
    }

    /// A standout game of `player`'s an hour ago: 41 points, 6 rebounds, 4 assists.
    pub async fn standout_game(&self, player: &str) {
        let player = player.to_owned();
        self.pool
            .read_committed(move |conn| {
                let player = player.clone();
                async move {
                    // The player is in scouting's catalog once it has taken in the market's news.
                    fastbreak_scouting::catalog::catch_up_on(conn).await?;
                    scouting::upsert_game_stats(
                        conn,
                        &scouting::GameStats {
                            game_id: format!("game-{}", Uuid::new_v4().simple()),
                            player_id: player,
                            game_at: Utc::now() - chrono::Duration::hours(1),
                            opponent_code: "NYK".to_owned(),
                            minutes: 38,
                            points: 41,
                            rebounds: 6,
                            assists: 4,
                            steals: 1,
                            blocks: 0,
                            turnovers: 2,
                        },
                    )
                    .await
                    .map(|_| ())
                }
                .boxed()
            })
            .await
            .expect("the game is recorded")
    }

    /// Moments of one player owned by the market's collectors, each listed on `source` at
    /// `price` cents; their listing ids.
    pub async fn list_market_moments(&self, count: usize, source: &str, price: i64) -> Vec<Uuid> {
        let mut conn = self.pool.conn().await.expect("a connection to the test database");
        let player = format!("p-{}", Uuid::new_v4().simple());
        market::upsert_player(
            &mut conn,
            &market::Player {
                id: player.clone(),
                full_name: "Test Player".to_owned(),
                team_code: "BOS".to_owned(),
                position: "G".to_owned(),
                seasons_played: 3,
                jersey_number: Some(7),
            },
        )
        .await
        .expect("a player");
        if source != "simulator" {
            market::ensure_source(&mut conn, source, "Another marketplace", 250).await.expect("a source");
        }
        let mut listings = Vec::with_capacity(count);
        let play_at = Utc::now() - chrono::Duration::days(10);
        for serial in 1..=count {
            let seller = format!("0x{:016x}", fastrand_u64());
            let moment = market::insert_moment(
                &mut conn,
                &market::Moment {
                    id: Uuid::new_v4(),
                    player_id: player.clone(),
                    set_name: "Base Set".to_owned(),
                    play_category: "Dunk".to_owned(),
                    play_at,
                    rarity: Rarity::Common,
                    serial_number: i32::try_from(serial).expect("a small serial"),
                    edition_size: i32::try_from(count.max(10_000)).expect("a small edition"),
                    owner_address: seller.clone(),
                },
            )
            .await
            .expect("a moment");
            let now = Utc::now();
            let listing = market::insert_listing(
                &mut conn,
                &market::Listing {
                    id: Uuid::new_v4(),
                    moment_id: moment.id,
                    source_id: source.to_owned(),
                    price_cents: price,
                    seller_address: seller,
                    state: ListingState::Active,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await
            .expect("a listing");
            listings.push(listing.id);
        }
        listings
    }
}

fn fastrand_u64() -> u64 {
    u64::from_be_bytes(Uuid::new_v4().as_bytes()[..8].try_into().expect("eight bytes"))
}
