//! The demo data `fastbreak up` seeds, as a client of the gateway like any other: a demo user
//! with a connected wallet, paper funds, confirmed limits and one active strategy of each kind.
//! Seeding again (the next `up` on the same data folder) changes nothing and hands out a new
//! access token; the demo user's password is generated once and kept in the data folder.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::risk::v1 as risk;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::trading::v1 as trading;
use fastbreak_proto::trading::v1::trading_service_client::TradingServiceClient;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The demo user's email.
pub const DEMO_EMAIL: &str = "demo@fastbreak.local";

/// Paper funds deposited once, in cents.
const DEMO_FUNDS_CENTS: i64 = 100_000;

/// What seeding hands back.
#[derive(Clone)]
pub struct Demo {
    /// The demo user's email.
    pub email: String,
    /// A fresh access token of the demo user's.
    pub token: String,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").field("email", &self.email).field("token", &"[redacted]").finish()
    }
}

/// Why seeding failed: the step and what the gateway said.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct SeedError {
    step: &'static str,
    message: String,
}

fn failed(step: &'static str) -> impl Fn(Status) -> SeedError {
    move |status| SeedError { step, message: format!("{:?}: {}", status.code(), status.message()) }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub(crate) struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// The header of a user's access token; `None` when the token cannot travel in a header.
    pub(crate) fn of(token: &str) -> Option<Self> {
        format!("Bearer {token}").parse().ok().map(Self)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// Seeds the demo data through the gateway at `gateway`; the password lives in `data_dir`.
pub async fn seed(gateway: SocketAddr, data_dir: &Path) -> Result<Demo, SeedError> {
    let channel = Channel::from_shared(format!("http://{gateway}"))
        .map_err(|e| SeedError { step: "gateway address", message: e.to_string() })?
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| SeedError { step: "connecting to the gateway", message: e.to_string() })?;
    let password = crate::up::secret_file(&data_dir.join("demo-password"))
        .map_err(|message| SeedError { step: "the demo user's password", message })?;

    let mut users = UserServiceClient::new(channel.clone());
    let created = users
        .create_user(user::CreateUserRequest {
            display_name: "Demo collector".to_owned(),
            email: DEMO_EMAIL.to_owned(),
            password: password.clone(),
        })
        .await;
    match created {
        Ok(_) => {}
        Err(status) if status.code() == Code::AlreadyExists => {}
        Err(status) => return Err(failed("creating the demo user")(status)),
    }
    let token = users
        .create_access_token(user::CreateAccessTokenRequest {
            email: DEMO_EMAIL.to_owned(),
            password,
            label: "fastbreak up".to_owned(),
            ttl: None,
        })
        .await
        .map_err(|status| {
            let mut error = failed("signing the demo user in")(status);
            error.message.push_str(&format!(
                " (the demo user exists with another password than the one in {}; `fastbreak up --fresh` starts over)",
                data_dir.display()
            ));
            error
        })?
        .into_inner()
        .secret;
    let bearer = Bearer::of(&token)
        .ok_or_else(|| SeedError { step: "the access token", message: "not a valid header value".to_owned() })?;

    wallet(UserServiceClient::with_interceptor(channel.clone(), bearer.clone())).await?;
    let mut trading = TradingServiceClient::with_interceptor(channel.clone(), bearer.clone());
    trading
        .deposit_funds(trading::DepositFundsRequest {
            amount_cents: DEMO_FUNDS_CENTS,
            idempotency_key: "fastbreak-up-demo-funds".to_owned(),
        })
        .await
        .map_err(failed("depositing the demo funds"))?;
    limits(RiskServiceClient::with_interceptor(channel.clone(), bearer.clone())).await?;
    strategies(StrategyServiceClient::with_interceptor(channel, bearer)).await?;
    Ok(Demo { email: DEMO_EMAIL.to_owned(), token })
}

/// A connected wallet (registered once).
async fn wallet(mut users: UserServiceClient<Authed>) -> Result<(), SeedError> {
    match users.get_wallet(user::GetWalletRequest {}).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::NotFound => {
            let address = format!("0x{:016x}", rand_u64());
            users
                .register_wallet(user::RegisterWalletRequest { flow_address: address })
                .await
                .map(|_| ())
                .map_err(failed("registering the demo wallet"))
        }
        Err(status) => Err(failed("reading the demo wallet")(status)),
    }
}

fn rand_u64() -> u64 {
    u64::from_be_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default())
}

/// The demo limits, proposed and confirmed unless they are in force already.
async fn limits(mut risk: RiskServiceClient<Authed>) -> Result<(), SeedError> {
    let wanted = risk::BudgetLimits {
        daily_cents: Some(20_000),
        weekly_cents: Some(50_000),
        monthly_cents: Some(100_000),
        total_cents: Some(100_000),
        per_moment_cents: Some(5_000),
        reserve_cents: None,
        emergency_threshold_cents: Some(15_000),
        time_zone: "UTC".to_owned(),
        ..Default::default()
    };
    let current = risk
        .get_budget_limits(risk::GetBudgetLimitsRequest::default())
        .await
        .map_err(failed("reading the demo limits"))?
        .into_inner();
    if current.daily_cents == wanted.daily_cents && current.per_moment_cents == wanted.per_moment_cents {
        return Ok(());
    }
    let change = risk
        .propose_budget_limit_change(risk::ProposeBudgetLimitChangeRequest { limits: Some(wanted) })
        .await
        .map_err(failed("proposing the demo limits"))?
        .into_inner();
    risk.confirm_budget_limit_change(risk::ConfirmBudgetLimitChangeRequest { change_id: change.change_id })
        .await
        .map_err(failed("confirming the demo limits"))?;
    Ok(())
}

/// One active strategy of each kind (made once).
async fn strategies(mut strategies: StrategyServiceClient<Authed>) -> Result<(), SeedError> {
    let existing = strategies
        .list_strategies(strategy::ListStrategiesRequest { page_size: 100, ..Default::default() })
        .await
        .map_err(failed("listing the demo strategies"))?
        .into_inner()
        .strategies;
    let rules = |min_discount_bps| strategy::StrategyRules {
        min_confidence: 0.3,
        min_discount_bps,
        max_price_cents: 5_000,
        max_purchases_per_day: 5,
    };
    let wanted = [
        strategy::Strategy {
            display_name: "Rising rookies".to_owned(),
            priority: 3,
            rules: Some(rules(500)),
            parameters: Some(Parameters::RookieRisers(strategy::RookieRisersParameters {
                max_seasons_played: 2,
                min_performance_rise_percent: 0.0,
                rarities: vec![Rarity::Common as i32, Rarity::Fandom as i32, Rarity::Rare as i32],
                team_codes: Vec::new(),
            })),
            ..Default::default()
        },
        strategy::Strategy {
            display_name: "After a big game".to_owned(),
            priority: 2,
            rules: Some(rules(800)),
            parameters: Some(Parameters::PostGameSpike(strategy::PostGameSpikeParameters {
                min_game_score: 35,
                buy_window_minutes: 1_440,
                player_ids: Vec::new(),
                rarities: Vec::new(),
                stat_triggers: vec![strategy::StatTrigger { stat: strategy::Stat::Points as i32, at_least: 35 }],
            })),
            ..Default::default()
        },
        strategy::Strategy {
            display_name: "Cross-market spreads".to_owned(),
            priority: 1,
            rules: Some(rules(0)),
            parameters: Some(Parameters::ArbitrageMode(strategy::ArbitrageModeParameters {
                min_spread_bps: 300,
                buy_source_ids: Vec::new(),
                relist_source_ids: Vec::new(),
                auto_relist: true,
            })),
            ..Default::default()
        },
    ];
    let kind = |s: &strategy::Strategy| s.parameters.as_ref().map(std::mem::discriminant);
    for strategy in wanted {
        // A strategy of the kind that exists already (paused by the user, say) is left alone.
        if existing.iter().any(|e| kind(e) == kind(&strategy)) {
            continue;
        }
        let created = strategies
            .create_strategy(strategy::CreateStrategyRequest { strategy: Some(strategy), validate_only: false })
            .await
            .map_err(failed("creating a demo strategy"))?
            .into_inner();
        strategies
            .activate_strategy(strategy::ActivateStrategyRequest { strategy_id: created.strategy_id })
            .await
            .map_err(failed("activating a demo strategy"))?;
    }
    Ok(())
}

/// The "try this" commands for the gateway at `gateway` and `token`, one per line.
pub fn try_this(gateway: SocketAddr, token: &str) -> Vec<String> {
    let call = |method: &str, body: &str| {
        format!("grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{body}' {gateway} {method}")
    };
    vec![
        call("fastbreak.user.v1.UserService/GetCurrentUser", "{}"),
        call("fastbreak.trading.v1.TradingService/GetPortfolio", "{}"),
        call("fastbreak.agents.v1.AgentService/ListDecisions", r#"{"page_size": 5}"#),
    ]
}
