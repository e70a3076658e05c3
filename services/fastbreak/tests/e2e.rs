//! End to end, as a client sees it: `fastbreak up` (the real binary) on a fresh database with
//! the simulator running fast and traces sent to a real OTLP receiver, driven through the
//! gateway only. The demo data and the "try this" commands; a new user who registers, funds,
//! limits and automates, and whose purchases agree everywhere (trades with their reasoning,
//! decisions, portfolio, balance, notifications, leaderboards); one scan that buys carrying
//! one trace through every service, its log lines carrying its correlation id; the Python
//! client; `fastbreak status`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BIN, Lines, TARGETS, authed, channel};
use fastbreak_db::testing::TestDatabase;
use fastbreak_proto::agents::v1 as agents;
use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
use fastbreak_proto::notification::v1 as notification;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::risk::v1 as risk;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::strategy::v1 as strategy;
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::trading::v1 as trading;
use fastbreak_proto::trading::v1::trading_service_client::TradingServiceClient;
use fastbreak_proto::user::v1 as user;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic::Request;

/// A stand-in for Jaeger's OTLP receiver: it keeps every span it is sent, as
/// (trace id, span id, parent span id, the `target` attribute).
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

/// A span as the collector keeps it: (trace id, span id, parent span id, `target`, service).
type Span = (String, String, String, String, String);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let target = span
                        .attributes
                        .iter()
                        .find(|a| a.key == "target")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            Value::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    spans.push((
                        hex(&span.trace_id),
                        hex(&span.span_id),
                        hex(&span.parent_span_id),
                        target,
                        service.clone(),
                    ));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Self, String) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (collector, format!("http://{addr}"))
    }

    fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.0.lock().unwrap().iter().filter(|s| s.0 == trace_id).cloned().collect()
    }
}

/// `fastbreak up` as a child process, stopped with SIGTERM on drop.
struct Up {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    printed: Vec<String>,
    gateway: String,
    token: String,
    try_this: Vec<String>,
    data: tempfile::TempDir,
}

impl Up {
    /// Starts `up` on `database_url` and waits (90 s at most) for its "try this" lines.
    fn start(database_url: &str, collector: &str) -> Self {
        Self::start_with(database_url, collector, &[])
    }

    /// The same, with `args` after `up`.
    fn start_with(database_url: &str, collector: &str, args: &[String]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .arg("up")
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("FASTBREAK_DATA_DIR", data.path())
            .env("FASTBREAK_METRICS_ADDR", "off")
            .env("FASTBREAK_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
            .env("FASTBREAK_SIMULATOR_TICK", "200ms")
            .env("FASTBREAK_TRADING_WORKER_INTERVAL", "100ms")
            .env("FASTBREAK_TRADING_LEADERBOARD_INTERVAL", "1s")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in TARGETS {
            command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
        }
        let mut child = command.spawn().expect("the binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let mut errors = Lines::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            while let Some(line) = errors.next_by(Instant::now() + Duration::from_secs(3600), String::new) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(90);
        let tail = |log: &Arc<Mutex<Vec<String>>>| {
            let log = log.lock().unwrap();
            log[log.len().saturating_sub(30)..].join("\n")
        };
        loop {
            let context = || tail(&log);
            if lines.next_by(deadline, context).is_none() {
                panic!("up stopped early: {:#?}\n{}", lines.seen, tail(&log));
            }
            let commands = lines.seen.iter().filter(|l| l.trim_start().starts_with("grpcurl ")).count();
            if commands == 3 {
                break;
            }
        }
        let printed = lines.seen;
        let value = |prefix: &str| {
            printed
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line: {printed:#?}"))
                .to_owned()
        };
        let (gateway, token) = (value("gateway: "), value("token: "));
        let try_this =
            printed.iter().filter(|l| l.trim_start().starts_with("grpcurl ")).map(|l| l.trim().to_owned()).collect();
        Self { child, log, printed, gateway, token, try_this, data }
    }

    fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one printed "try this" command the way grpcurl would: its header, address, method and
/// JSON body, as printed.
async fn run_printed(command: &str) {
    let parts: Vec<&str> = command.split('\'').collect();
    assert_eq!(parts.len(), 5, "grpcurl -plaintext -H '<header>' -d '<json>' <address> <method>: {command}");
    assert_eq!(parts[0].trim(), "grpcurl -plaintext -H", "{command}");
    assert_eq!(parts[2].trim(), "-d", "{command}");
    let token = parts[1].strip_prefix("authorization: Bearer ").expect("a bearer header");
    let body: serde_json::Value = serde_json::from_str(parts[3]).expect("a JSON body");
    let rest: Vec<&str> = parts[4].split_whitespace().collect();
    let (addr, method) = (rest[0], rest[1]);
    let channel = channel(addr).await;
    let answered = match method {
        "fastbreak.user.v1.UserService/GetCurrentUser" => UserServiceClient::new(channel)
            .get_current_user(authed(user::GetCurrentUserRequest {}, token))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        "fastbreak.trading.v1.TradingService/GetPortfolio" => TradingServiceClient::new(channel)
            .get_portfolio(authed(trading::GetPortfolioRequest {}, token))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        "fastbreak.agents.v1.AgentService/ListDecisions" => {
            let page_size = body.get("page_size").and_then(serde_json::Value::as_i64).unwrap_or(0) as i32;
            AgentServiceClient::new(channel)
                .list_decisions(authed(agents::ListDecisionsRequest { page_size, ..Default::default() }, token))
                .await
                .map(|r| format!("{:?}", r.into_inner()))
        }
        other => panic!("an unexpected method in the printed commands: {other}"),
    };
    answered.unwrap_or_else(|status| panic!("{command} failed: {status:?}"));
}

/// A new user through the gateway: account, token, wallet, funds, confirmed limits; (id, token).
async fn new_user(gateway: &str, funds: i64) -> (String, String) {
    let channel = channel(gateway).await;
    let mut users = UserServiceClient::new(channel.clone());
    let email = format!("e2e-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = uuid::Uuid::new_v4().simple().to_string();
    let created = users
        .create_user(user::CreateUserRequest {
            display_name: "End to end".into(),
            email: email.clone(),
            password: password.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = users
        .create_access_token(user::CreateAccessTokenRequest { email, password, label: "e2e".into(), ttl: None })
        .await
        .unwrap()
        .into_inner()
        .secret;
    let address = format!("0x{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    users.register_wallet(authed(user::RegisterWalletRequest { flow_address: address }, &token)).await.unwrap();
    TradingServiceClient::new(channel.clone())
        .deposit_funds(authed(
            trading::DepositFundsRequest { amount_cents: funds, idempotency_key: "e2e-funds".into() },
            &token,
        ))
        .await
        .unwrap();
    let mut risk = RiskServiceClient::new(channel);
    let limits = risk::BudgetLimits {
        daily_cents: Some(funds),
        weekly_cents: Some(funds),
        monthly_cents: Some(funds),
        total_cents: Some(funds),
        per_moment_cents: Some(funds / 10),
        reserve_cents: None,
        emergency_threshold_cents: Some(funds),
        time_zone: "UTC".into(),
        ..Default::default()
    };
    let change = risk
        .propose_budget_limit_change(authed(risk::ProposeBudgetLimitChangeRequest { limits: Some(limits) }, &token))
        .await
        .unwrap()
        .into_inner();
    risk.confirm_budget_limit_change(authed(
        risk::ConfirmBudgetLimitChangeRequest { change_id: change.change_id },
        &token,
    ))
    .await
    .unwrap();
    (created.user_id, token)
}

/// A strategy created and activated through the gateway.
async fn automate(gateway: &str, token: &str, strategy: strategy::Strategy) -> String {
    let mut strategies = StrategyServiceClient::new(channel(gateway).await);
    let created = strategies
        .create_strategy(authed(
            strategy::CreateStrategyRequest { strategy: Some(strategy), validate_only: false },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    strategies
        .activate_strategy(authed(
            strategy::ActivateStrategyRequest { strategy_id: created.strategy_id.clone() },
            token,
        ))
        .await
        .unwrap();
    created.strategy_id
}

fn rules(min_confidence: f64, min_discount_bps: i32) -> strategy::StrategyRules {
    strategy::StrategyRules { min_confidence, min_discount_bps, max_price_cents: 20_000, max_purchases_per_day: 50 }
}

/// Any player who has played lately (a game score of 1 or more within three days).
fn any_player() -> Parameters {
    Parameters::PostGameSpike(strategy::PostGameSpikeParameters {
        min_game_score: 1,
        buy_window_minutes: 4_320,
        ..Default::default()
    })
}

/// Every decision of the user's with `outcome`, all pages.
async fn decisions(gateway: &str, token: &str, outcome: agents::DecisionOutcome) -> Vec<agents::Decision> {
    let mut client = AgentServiceClient::new(channel(gateway).await);
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_decisions(authed(
                agents::ListDecisionsRequest {
                    outcome: outcome.into(),
                    page_size: 100,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        found.extend(page.decisions);
        if page.next_page_token.is_empty() {
            return found;
        }
        page_token = page.next_page_token;
    }
}

/// Every trade of the user's, all pages.
async fn trades(gateway: &str, token: &str) -> Vec<trading::Trade> {
    let mut client = TradingServiceClient::new(channel(gateway).await);
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_trades(authed(
                trading::ListTradesRequest { page_size: 100, page_token: page_token.clone(), ..Default::default() },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        found.extend(page.trades);
        if page.next_page_token.is_empty() {
            return found;
        }
        page_token = page.next_page_token;
    }
}

/// Waits (`within` at most) until `check` answers `Some`, asking every 200 ms (each check goes
/// through the gateway).
async fn eventually<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fastbreak_mesh::testing::poll_until(what, within, Duration::from_millis(200), check).await
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_a_client_end_to_end_through_the_gateway() {
    let database = TestDatabase::create().await;
    let (collector, collector_url) = Collector::start().await;
    let url = database.url().to_owned();
    let started = Instant::now();
    let up = tokio::task::spawn_blocking(move || Up::start(&url, &collector_url)).await.unwrap();
    println!("up: every target SERVING and the demo seeded in {:.1} s", started.elapsed().as_secs_f64());
    for line in ["FastBreak is up: every target is SERVING", "demo user: demo@fastbreak.local", "try this:"] {
        assert!(up.printed.iter().any(|l| l == line), "{line:?} printed: {:#?}", up.printed);
    }
    for target in TARGETS {
        assert!(up.printed.iter().any(|l| *l == format!("{target} SERVING")), "{target}'s progress: {:#?}", up.printed);
    }
    // The dashboard's address, printed, serves its sign-in page.
    let dashboard = up
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("dashboard: http://"))
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no dashboard line: {:#?}", up.printed))
        .to_owned();
    let page = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut socket = tokio::net::TcpStream::connect(&dashboard).await.unwrap();
        let ask = format!("GET /sign-in HTTP/1.1\r\nHost: {dashboard}\r\nConnection: close\r\n\r\n");
        socket.write_all(ask.as_bytes()).await.unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        answer
    };
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<h1>Sign in</h1>"), "{page}");
    // The "try this" commands work as printed, with the demo user's token.
    for command in &up.try_this {
        assert!(command.contains(&up.token) && command.contains(&up.gateway), "{command}");
        run_printed(command).await;
    }
    // The demo user has funds, confirmed limits and one active strategy of each kind.
    let gateway = up.gateway.clone();
    let demo = StrategyServiceClient::new(channel(&gateway).await)
        .list_strategies(authed(strategy::ListStrategiesRequest { page_size: 100, ..Default::default() }, &up.token))
        .await
        .unwrap()
        .into_inner()
        .strategies;
    let kinds: BTreeSet<i32> =
        demo.iter().filter(|s| s.state() == strategy::StrategyState::Active).map(|s| s.kind).collect();
    assert_eq!(kinds.len(), 3, "one active strategy of each kind: {demo:#?}");
    let balance = TradingServiceClient::new(channel(&gateway).await)
        .get_balance(authed(trading::GetBalanceRequest {}, &up.token))
        .await
        .unwrap()
        .into_inner();
    assert!(balance.available_cents > 0, "paper funds: {balance:?}");

    // A new user registers, funds, limits and automates; the simulator runs; the agents buy.
    let funds = 200_000;
    let (_, token) = new_user(&gateway, funds).await;
    let young = strategy::Strategy {
        display_name: "Cheap, any player".into(),
        priority: 2,
        rules: Some(rules(0.1, 500)),
        parameters: Some(any_player()),
        ..Default::default()
    };
    let strategy_id = automate(&gateway, &token, young).await;
    // A debug build under a full parallel test run can take minutes to reach a bargain.
    eventually("the agents buy for the new user", Duration::from_secs(300), || {
        let (gateway, token) = (gateway.clone(), token.clone());
        async move { (!decisions(&gateway, &token, agents::DecisionOutcome::Buy).await.is_empty()).then_some(()) }
    })
    .await;

    // One scan that buys carries one trace through every service, and its log lines carry its
    // correlation id. It is a second user's, whose strategy is activated just before: the first
    // user's agents keep taking bargains as they come, and risk may have paused the first user's
    // automated purchases for one far above their usual size.
    let (_, scanner) = new_user(&gateway, funds).await;
    let scanned = strategy::Strategy {
        display_name: "Scanned by hand".into(),
        priority: 1,
        rules: Some(rules(0.1, 500)),
        parameters: Some(any_player()),
        ..Default::default()
    };
    let scanned = automate(&gateway, &scanner, scanned).await;
    let mut scans = AgentServiceClient::new(channel(&gateway).await);
    let mut traced = None;
    let mut last = BTreeMap::<String, usize>::new();
    for attempt in 0..20 {
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let correlation = format!("e2e-scan-{attempt}-{}", uuid::Uuid::new_v4().simple());
        let mut request =
            authed(agents::StartScanRequest { strategy_id: scanned.clone(), ..Default::default() }, &scanner);
        request.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
        request.metadata_mut().insert("x-correlation-id", correlation.parse().unwrap());
        let run = scans.start_scan(request).await.unwrap().into_inner();
        if run.purchase_count > 0 {
            traced = Some((trace_id, correlation));
            break;
        }
        // What the scan made of each listing, by outcome and rule, for the failure's message.
        let decided = scans
            .list_decisions(authed(
                agents::ListDecisionsRequest { run_id: run.run_id.clone(), page_size: 100, ..Default::default() },
                &scanner,
            ))
            .await
            .unwrap()
            .into_inner()
            .decisions;
        last = decided.iter().fold(BTreeMap::new(), |mut tally, d| {
            *tally.entry(format!("{:?} by {}", d.outcome(), d.rule)).or_default() += 1;
            tally
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (trace_id, correlation) =
        traced.unwrap_or_else(|| panic!("a scan buys within 20 tries; the last one decided {last:?}"));
    let wanted = ["gateway", "agents", "strategy", "scouting", "marketplace", "trading", "risk", "notification"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.trace(&trace_id);
        let targets: BTreeSet<&str> = spans.iter().map(|s| s.3.as_str()).collect();
        let ids: HashSet<&str> = spans.iter().map(|s| s.1.as_str()).collect();
        let roots: Vec<_> = spans.iter().filter(|s| !ids.contains(s.2.as_str())).collect();
        if wanted.iter().all(|t| targets.contains(t)) && roots.len() == 1 {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scan's spans reach the collector as one tree within 30 s: targets {targets:?}, roots {roots:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let root = spans.iter().find(|s| !spans.iter().any(|p| p.1 == s.2)).unwrap();
    assert_eq!((root.2.as_str(), root.3.as_str()), ("00f067aa0ba902b7", "gateway"), "the tree hangs from the gateway");
    let by_target = spans.iter().fold(HashMap::<&str, usize>::new(), |mut m, s| {
        *m.entry(s.3.as_str()).or_default() += 1;
        m
    });
    println!("one trace, {} spans in one tree: {by_target:?}", spans.len());
    // Every target is a service of its own, though all share one process.
    let services: BTreeSet<&str> = spans.iter().map(|s| s.4.as_str()).collect();
    for target in wanted {
        assert!(services.contains(format!("fastbreak-{target}").as_str()), "{target}'s service: {services:?}");
    }
    for span in spans.iter().filter(|s| !s.3.is_empty()) {
        assert_eq!(span.4, format!("fastbreak-{}", span.3), "a span is its target's: {span:?}");
    }
    println!("services in the trace: {services:?}");
    let mut correlated = HashSet::new();
    for line in up.log_lines() {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let span = &json["span"];
        if span["trace_id"].as_str() == Some(trace_id.as_str()) {
            assert_eq!(span["correlation_id"].as_str(), Some(correlation.as_str()), "{line}");
            correlated.insert(span["target"].as_str().unwrap_or_default().to_owned());
        }
    }
    for target in ["gateway", "agents", "trading", "risk"] {
        assert!(correlated.contains(target), "{target} logged the scan with its correlation id: {correlated:?}");
    }

    // Paused, the automation stops; then everything agrees: trades with their reasoning,
    // decisions, portfolio, balance, notifications and the leaderboard.
    AgentServiceClient::new(channel(&gateway).await)
        .pause_automation(authed(agents::PauseAutomationRequest { reason: "checking".into() }, &token))
        .await
        .unwrap();
    let settled = eventually("the trades settle", Duration::from_secs(30), || {
        let (gateway, token) = (gateway.clone(), token.clone());
        async move {
            let first = trades(&gateway, &token).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let second = trades(&gateway, &token).await;
            let still = second.iter().any(|t| t.state() == trading::TradeState::Pending);
            (first == second && !still).then_some(second)
        }
    })
    .await;
    let bought: Vec<&trading::Trade> = settled
        .iter()
        .filter(|t| t.kind() == trading::TradeKind::Purchase && t.state() == trading::TradeState::Settled)
        .collect();
    assert!(!bought.is_empty());
    for trade in &bought {
        assert!(!trade.reasoning.is_empty() && !trade.decision_id.is_empty(), "reasoning and decision: {trade:?}");
    }
    let listings: HashSet<&str> = bought.iter().map(|t| t.listing_id.as_str()).collect();
    assert_eq!(listings.len(), bought.len(), "no listing bought twice");
    let buys = decisions(&gateway, &token, agents::DecisionOutcome::Buy).await;
    let decided: BTreeSet<String> = buys.iter().map(|d| d.trade_id.clone()).collect();
    let traded: BTreeSet<String> = bought.iter().map(|t| t.trade_id.clone()).collect();
    assert_eq!(decided, traded, "every buy decision is a settled trade, and every trade a decision");
    let spent: i64 = bought.iter().map(|t| t.price_cents).sum();
    let mut trading_client = TradingServiceClient::new(channel(&gateway).await);
    let balance = trading_client.get_balance(authed(trading::GetBalanceRequest {}, &token)).await.unwrap().into_inner();
    assert_eq!(balance.available_cents, funds - spent, "the ledger agrees with the trades");
    let portfolio =
        trading_client.get_portfolio(authed(trading::GetPortfolioRequest {}, &token)).await.unwrap().into_inner();
    assert_eq!(portfolio.holding_count, bought.len() as i64, "{portfolio:?}");
    assert_eq!(portfolio.cost_basis_cents, spent, "{portfolio:?}");
    let notifications = NotificationServiceClient::new(channel(&gateway).await);
    eventually("a notification for every purchase", Duration::from_secs(30), || {
        let mut notifications = notifications.clone();
        let (token, traded) = (token.clone(), traded.clone());
        async move {
            let found = notifications
                .list_notifications(authed(
                    notification::ListNotificationsRequest { page_size: 100, ..Default::default() },
                    &token,
                ))
                .await
                .ok()?
                .into_inner()
                .notifications;
            let linked: BTreeSet<String> = found
                .iter()
                .flat_map(|n| n.links.iter())
                .filter_map(|l| match &l.target {
                    Some(notification::notification_link::Target::TradeId(id)) => Some(id.clone()),
                    _ => None,
                })
                .collect();
            traded.is_subset(&linked).then_some(())
        }
    })
    .await;
    // The boards rank the user under an alias: by successful trades (sales at a profit: none
    // yet, as the trades say) and by portfolio value.
    let count = bought.len() as i64;
    let profitable_sales = settled
        .iter()
        .filter(|t| t.kind() == trading::TradeKind::Sale && t.state() == trading::TradeState::Settled)
        .filter(|t| t.realized_pnl_cents > 0)
        .count() as i64;
    for (metric, expected) in [
        (trading::LeaderboardMetric::SuccessfulTrades, Some(profitable_sales)),
        (trading::LeaderboardMetric::PortfolioValue, None),
    ] {
        let entry = eventually("the leaderboards rank the new user", Duration::from_secs(30), || {
            let mut trading_client = trading_client.clone();
            let token = token.clone();
            async move {
                let board = trading_client
                    .get_leaderboard(authed(
                        trading::GetLeaderboardRequest { metric: metric.into(), ..Default::default() },
                        &token,
                    ))
                    .await
                    .ok()?
                    .into_inner();
                board.caller_entry
            }
        })
        .await;
        assert!(entry.is_caller && entry.alias.starts_with("collector-"), "{entry:?}");
        if let Some(expected) = expected {
            assert_eq!(entry.value, expected, "{metric:?}: {entry:?}");
        } else {
            assert!(entry.value > 0, "{metric:?}: {entry:?}");
        }
    }
    println!(
        "the new user: {count} purchases for {spent} cents; trades, decisions, ledger, portfolio, notifications and the leaderboard agree"
    );

    // A client in another language, generated from proto/.
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integration-tests/clients/python");
    let interpreter = python.join(".venv/bin/python");
    assert!(
        interpreter.exists(),
        "the Python client's environment is missing: run `python3 -m venv {0}/.venv && {0}/.venv/bin/pip install -r {0}/requirements.txt` (.ci/run does)",
        python.display()
    );
    let output =
        Command::new(&interpreter).arg(python.join("client.py")).args(["--gateway", &gateway]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.trim_end().ends_with("ok"),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // `fastbreak backtest`: the user's strategy replayed on paper, its report and chart written.
    let out = tempfile::tempdir().unwrap();
    let backtest = Command::new(BIN)
        .args(["backtest", "--gateway", &gateway, "--strategy", &strategy_id, "--days", "20", "--seed", "5"])
        .arg("--out")
        .arg(out.path())
        .env("FASTBREAK_ACCESS_TOKEN", &token)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&backtest.stdout);
    assert!(backtest.status.success(), "{printed}{}", String::from_utf8_lossy(&backtest.stderr));
    for line in ["Cheap, any player", "buy every listing under fair value", "hold nothing"] {
        assert!(printed.lines().any(|l| l.starts_with(line)), "{line}: {printed}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["days"], 20);
    assert!(std::fs::read_to_string(out.path().join("chart.svg")).unwrap().starts_with("<svg"));
    let budget = printed.lines().find(|l| l.starts_with("held to your budget limits: ")).unwrap_or_default();
    assert!(budget.contains(" a moment") && budget.ends_with("(periods in UTC)"), "the user's limits: {printed}");

    // `fastbreak status`: a table of every service, SERVING, with the credential `up` kept.
    let status = Command::new(BIN)
        .args(["status", "--gateway", &gateway])
        .env("FASTBREAK_DATA_DIR", up.data.path())
        .env_remove("FASTBREAK_OPERATOR_TOKEN")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}{}", String::from_utf8_lossy(&status.stderr));
    for target in TARGETS.iter().filter(|t| !["gateway", "web"].contains(*t)) {
        assert!(table.lines().any(|l| l.starts_with(target) && l.contains(" SERVING ")), "{target}: {table}");
    }
    assert!(table.ends_with("system: SERVING\n"), "{table}");
    drop(up);
}

/// A port free at the time of asking.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The operator credential of the stopped-backend test.
const OPERATOR: &str = "e2e-operator-credential-0123456789abcdef";

/// Whether the gateway's system health shows risk SERVING.
async fn risk_serving(gateway: &str) -> bool {
    use fastbreak_proto::gateway::v1::system_health_service_client::SystemHealthServiceClient;
    use fastbreak_proto::gateway::v1::{GetSystemHealthRequest, ServingStatus};
    let mut request = Request::new(GetSystemHealthRequest {});
    request.metadata_mut().insert("x-fastbreak-operator-token", OPERATOR.parse().unwrap());
    let health =
        SystemHealthServiceClient::new(channel(gateway).await).get_system_health(request).await.unwrap().into_inner();
    health.services.iter().any(|s| s.service == "risk" && s.status() == ServingStatus::Serving)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_stopped_in_the_middle_degrades_and_recovers_with_no_trade_lost_or_doubled() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let risk_addr = format!("127.0.0.1:{}", free_port());
    let shared = [
        ("DATABASE_URL", url.as_str()),
        ("FASTBREAK_OPERATOR_TOKEN", OPERATOR),
        ("FASTBREAK_SIMULATOR_TICK", "200ms"),
        ("FASTBREAK_RISK_HOLD_TTL", "5s"),
        ("FASTBREAK_TRADING_WORKER_INTERVAL", "100ms"),
    ];
    // Risk runs in a process of its own; everything else in another, as two hosts would.
    let risk_url = format!("http://{risk_addr}");
    let env: Vec<(String, String)> = shared
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .chain([("FASTBREAK_RISK_ENDPOINTS".to_owned(), risk_url)])
        .collect();
    let rest = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let rest =
            common::Served::start("gateway,user,strategy,notification,marketplace,scouting,trading,agents", &env);
        rest.wait_serving();
        rest
    })
    .await
    .unwrap();
    let (trading_url, notification_url) =
        (format!("http://{}", rest.addr("trading")), format!("http://{}", rest.addr("notification")));
    let risk_env: Vec<(String, String)> = shared
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .chain([
            ("FASTBREAK_RISK_LISTEN_ADDR".to_owned(), risk_addr.clone()),
            ("FASTBREAK_TRADING_ENDPOINTS".to_owned(), trading_url),
            ("FASTBREAK_NOTIFICATION_ENDPOINTS".to_owned(), notification_url),
        ])
        .collect();
    let start_risk = move || {
        let env = risk_env.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let risk = common::Served::start("risk", &env);
                risk.wait_serving();
                risk
            })
            .await
            .unwrap()
        }
    };
    let risk = start_risk().await;
    let gateway = rest.addr("gateway").to_owned();
    let ready = gateway.clone();
    eventually("the gateway sees risk SERVING", Duration::from_secs(30), || {
        let gateway = ready.clone();
        async move { risk_serving(&gateway).await.then_some(()) }
    })
    .await;

    let funds = 1_000_000;
    let (_, token) = new_user(&gateway, funds).await;
    // Purchases of the simulated market's listings, one by one, each of a listing just read
    // and under a key of its own.
    let mut trading_client = TradingServiceClient::new(channel(&gateway).await);
    let mut sent: Vec<trading::PurchaseMomentRequest> = Vec::new();
    let mut answers: Vec<Result<String, tonic::Status>> = Vec::new();
    let mut buy = async |sent: &mut Vec<trading::PurchaseMomentRequest>| {
        use fastbreak_proto::marketplace::v1 as market;
        use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
        let tried: HashSet<String> = sent.iter().map(|r| r.listing_id.clone()).collect();
        let listing = eventually("a listing not tried yet", Duration::from_secs(30), || {
            let (gateway, token, tried) = (gateway.clone(), token.clone(), tried.clone());
            async move {
                let request = market::ListListingsRequest {
                    max_price_cents: Some(funds / 10),
                    page_size: 100,
                    ..Default::default()
                };
                let page = MarketplaceServiceClient::new(channel(&gateway).await)
                    .list_listings(authed(request, &token))
                    .await
                    .ok()?
                    .into_inner();
                page.listings.into_iter().rev().find(|l| !tried.contains(&l.listing_id))
            }
        })
        .await;
        let request = trading::PurchaseMomentRequest {
            listing_id: listing.listing_id.clone(),
            max_price_cents: listing.price_cents,
            idempotency_key: format!("e2e-{}", sent.len()),
            ..Default::default()
        };
        sent.push(request.clone());
        trading_client.purchase_moment(authed(request, &token)).await.map(|t| t.into_inner().trade_id)
    };
    for _ in 0..10 {
        let answer = buy(&mut sent).await;
        answers.push(answer);
    }
    let before = answers.iter().filter(|a| a.is_ok()).count();
    assert!(before > 0, "purchases go through while every service is up: {answers:?}");

    // Risk dies in the middle: SIGKILL, no drain. Purchases fail, saying risk is missing (a
    // listing the market sold meanwhile is refused as gone first); everything else answers.
    let stopped = risk;
    assert!(Command::new("kill").args(["-KILL", &stopped.pid().to_string()]).status().unwrap().success());
    drop(stopped);
    let down_at = Instant::now();
    let mut failed_naming_risk = 0;
    for _ in 0..10 {
        let answer = buy(&mut sent).await;
        let status = answer.as_ref().expect_err("no purchase without risk");
        if status.code() != tonic::Code::FailedPrecondition {
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            assert!(status.message().contains("risk"), "the failure names risk: {status:?}");
            failed_naming_risk += 1;
        }
        answers.push(answer);
        let mut trading_client = TradingServiceClient::new(channel(&gateway).await);
        let portfolio = trading_client.get_portfolio(authed(trading::GetPortfolioRequest {}, &token)).await;
        assert!(portfolio.is_ok(), "the portfolio still answers: {portfolio:?}");
        let me = UserServiceClient::new(channel(&gateway).await)
            .get_current_user(authed(user::GetCurrentUserRequest {}, &token))
            .await;
        assert!(me.is_ok(), "the user service still answers: {me:?}");
    }
    assert!(failed_naming_risk >= 5, "purchases fail naming risk while it is down: {answers:?}");
    let seen = gateway.clone();
    eventually("system health shows risk down", Duration::from_secs(10), || {
        let gateway = seen.clone();
        async move { (!risk_serving(&gateway).await).then_some(()) }
    })
    .await;
    println!(
        "risk down for {:.1} s: {failed_naming_risk} of 10 purchases failed naming it; portfolio and user answered",
        down_at.elapsed().as_secs_f64()
    );

    // Risk is back: purchases go through again by themselves.
    let risk = start_risk().await;
    let back_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = buy(&mut sent).await;
        let ok = answer.is_ok();
        answers.push(answer);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "purchases go through within 30 s of risk's return: {answers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("the first purchase after risk's return went through {:.1} s after it", back_at.elapsed().as_secs_f64());
    for _ in 0..5 {
        let answer = buy(&mut sent).await;
        answers.push(answer);
    }
    let bought_after = answers[20..].iter().filter(|a| a.is_ok()).count();

    // Every call sent again under its key: the first answer's trade, never a second trade.
    let mut trading_client = TradingServiceClient::new(channel(&gateway).await);
    for (request, first) in sent.iter().zip(&answers) {
        let again = trading_client.purchase_moment(authed(request.clone(), &token)).await;
        match (first, again) {
            (Ok(trade), Ok(again)) => assert_eq!(&again.into_inner().trade_id, trade, "the same key, the same trade"),
            (Err(first), Err(again)) => assert_eq!(first.code(), again.code(), "the same key, the same answer"),
            (first, again) => panic!("the same key answered {first:?}, then {again:?}"),
        }
    }
    let settled = eventually("no purchase is left pending", Duration::from_secs(30), || {
        let (gateway, token) = (gateway.clone(), token.clone());
        async move {
            let all = trades(&gateway, &token).await;
            (!all.iter().any(|t| t.state() == trading::TradeState::Pending)).then_some(all)
        }
    })
    .await;
    let bought: Vec<&trading::Trade> = settled
        .iter()
        .filter(|t| t.kind() == trading::TradeKind::Purchase && t.state() == trading::TradeState::Settled)
        .collect();
    let answered: BTreeSet<String> = answers.iter().filter_map(|a| a.as_ref().ok().cloned()).collect();
    let traded: BTreeSet<String> = bought.iter().map(|t| t.trade_id.clone()).collect();
    assert_eq!(traded, answered, "every settled purchase was answered as one, and every answer settled");
    let listings_bought: HashSet<&str> = bought.iter().map(|t| t.listing_id.as_str()).collect();
    assert_eq!(listings_bought.len(), bought.len(), "no listing bought twice");
    let spent: i64 = bought.iter().map(|t| t.price_cents).sum();
    let balance = trading_client.get_balance(authed(trading::GetBalanceRequest {}, &token)).await.unwrap().into_inner();
    assert_eq!(balance.available_cents, funds - spent, "the ledger agrees");
    println!(
        "{} purchases settled ({before} before risk stopped, {failed_naming_risk} refused naming it while down, {bought_after} after it returned); none lost or doubled",
        bought.len()
    );
    drop(risk);
    drop(rest);
}

/// The real market's path, end to end: `fastbreak up --market flow` against the fakes of a
/// Flow access node, Top Shot's GraphQL API and the NBA's live data (a generated demo day, in
/// the real shapes). The feeds follow the chain to its head, the sales and the box scores
/// arrive, and a new user's agents buy a listing of the chain on paper, through the gateway.
#[tokio::test(flavor = "multi_thread")]
async fn up_follows_the_real_market_through_its_fakes_and_the_agents_buy_on_paper() {
    use fastbreak_flow::{demo, fake, fake_graphql, fake_nba};
    use fastbreak_proto::marketplace::v1 as marketplace;
    use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;

    let market = demo::demo_market(7, chrono::Utc::now());
    let chain = fake::FakeChain::new(market.blocks);
    let api = fake_graphql::FakeTopShotApi::new(market.moments);
    api.add_transactions(market.sales);
    let nba = fake_nba::FakeNbaLiveData::new(&market.date, market.games);
    let (access, graphql, live) = (chain.serve().await, api.serve().await, nba.serve().await);
    let database = TestDatabase::create().await;
    let (_collector, collector_url) = Collector::start().await;
    let url = database.url().to_owned();
    let args: Vec<String> = [
        "--market",
        "flow",
        "--flow-access",
        &access.address.to_string(),
        "--flow-start-height",
        &demo::FIRST_HEIGHT.to_string(),
        "--topshot-graphql",
        &graphql.url(),
        "--nba-live-data",
        &live.url(),
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let up = tokio::task::spawn_blocking(move || Up::start_with(&url, &collector_url, &args)).await.unwrap();
    let gateway = up.gateway.clone();

    let sources = eventually("the chain is followed to its head", Duration::from_secs(120), || {
        let (gateway, token) = (gateway.clone(), up.token.clone());
        async move {
            let sources = MarketplaceServiceClient::new(channel(&gateway).await)
                .list_market_sources(authed(marketplace::ListMarketSourcesRequest::default(), &token))
                .await
                .ok()?
                .into_inner()
                .sources;
            let topshot = sources.iter().find(|s| s.source_id == "topshot")?;
            (topshot.healthy && topshot.lag_blocks == Some(0)).then_some(sources)
        }
    })
    .await;
    // Only the real market's sources are polled (the schema's own `simulator` row stays idle).
    let polled: BTreeSet<&str> =
        sources.iter().filter(|s| s.last_success_time.is_some()).map(|s| s.source_id.as_str()).collect();
    assert_eq!(polled, BTreeSet::from(["topshot", "topshot-sales"]), "{sources:#?}");

    let (_, token) = new_user(&gateway, 2_000_000).await;
    let strategy = strategy::Strategy {
        display_name: "After a big game".into(),
        priority: 1,
        rules: Some(rules(0.1, 2_000)),
        parameters: Some(any_player()),
        ..Default::default()
    };
    let strategy_id = automate(&gateway, &token, strategy).await;
    let mut scans = AgentServiceClient::new(channel(&gateway).await);
    // A scan decides on every listing of the chain; under load one may outlast the gateway's
    // deadline (its decisions are kept all the same), so each round looks at the trades.
    let mut why = String::new();
    let mut trade = None;
    for _ in 0..8 {
        let request =
            authed(agents::StartScanRequest { strategy_id: strategy_id.clone(), ..Default::default() }, &token);
        if let Err(status) = scans.start_scan(request).await {
            why = format!("the last scan: {status:?}");
        }
        let settled = eventually("the trades settle", Duration::from_secs(30), || {
            let (gateway, token) = (gateway.clone(), token.clone());
            async move {
                let all = trades(&gateway, &token).await;
                (!all.iter().any(|t| t.state() == trading::TradeState::Pending)).then_some(all)
            }
        })
        .await;
        trade = settled
            .into_iter()
            .find(|t| t.kind() == trading::TradeKind::Purchase && t.state() == trading::TradeState::Settled);
        if trade.is_some() {
            break;
        }
        let skipped = decisions(&gateway, &token, agents::DecisionOutcome::Skip).await;
        let reasons: BTreeSet<String> = skipped.iter().flat_map(|d| d.reasons.clone()).collect();
        why = format!("{why}; {} skips: {:#?}", skipped.len(), reasons.iter().take(12).collect::<Vec<_>>());
    }
    let trade = trade.unwrap_or_else(|| panic!("a scan buys a listing of the chain: {why}"));
    let listing = MarketplaceServiceClient::new(channel(&gateway).await)
        .get_listing(authed(marketplace::GetListingRequest { listing_id: trade.listing_id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listing.source_id, "topshot", "bought on the real market, on paper: {listing:?}");
    println!("bought on paper: {trade:?}");
}
