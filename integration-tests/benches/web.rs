//! The dashboard's portfolio page under 50 concurrent sessions: pages served per second, p50
//! and p99, beside the same data read through the gateway by gRPC (the page's four calls:
//! the portfolio then its equity history, beside holdings and the wallet, as the page makes them), for
//! the same 50 users over the same mesh. Asserts nothing.
//!
//! `cargo bench -p fastbreak-integration-tests --bench web` (`WEB_SESSIONS`, default 50;
//! `WEB_SECONDS`, default 10, per measurement).

use std::time::Duration;

use fastbreak_integration_tests::TestMesh;
use fastbreak_integration_tests::attack::{PASSWORD, bearer, sign_in};
use fastbreak_integration_tests::web::WebClient;
use fastbreak_mesh::testing::closed_loop;
use fastbreak_proto::trading::v1::trading_service_client::TradingServiceClient;
use fastbreak_proto::trading::v1::{GetEquityHistoryRequest, GetPortfolioRequest, ListHoldingsRequest};
use fastbreak_proto::user::v1::GetWalletRequest;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;

fn number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let _telemetry = fastbreak_integration_tests::bench_telemetry();
        let sessions = number("WEB_SESSIONS", 50) as usize;
        let seconds = Duration::from_secs(number("WEB_SECONDS", 10));
        let mesh = TestMesh::spawn_with(
            "all",
            &[
                ("FASTBREAK_MARKET", "none"),
                ("FASTBREAK_GATEWAY_USER_RATE", "1000000"),
                ("FASTBREAK_GATEWAY_ADDRESS_RATE", "1000000"),
                ("FASTBREAK_GATEWAY_SIGN_INS_PER_ADDRESS", "1000"),
            ],
        )
        .await;
        let web = mesh.addr("web");
        let gateway = mesh.channel("gateway").await;
        // The sessions: each user signs up on the dashboard, deposits, and signs in by gRPC too.
        let mut visitors = Vec::new();
        let mut tokens = Vec::new();
        for n in 0..sessions {
            let email = format!("bench-{n}@example.com");
            let mut visitor = WebClient::new(web);
            visitor.sign_up("Collector", &email, PASSWORD).await;
            let deposited =
                visitor.post("/portfolio/deposit", &[("amount_cents", "1000"), ("key", &format!("d{n}"))]).await;
            assert_eq!(deposited.status, 303, "{}", deposited.body);
            visitors.push(visitor);
            tokens.push(sign_in(&mut UserServiceClient::new(gateway.clone()), &email).await.expect("a token"));
        }
        println!("web bench: {sessions} sessions, {} s per measurement", seconds.as_secs());
        let first = visitors[0].clone().get("/portfolio").await;
        println!("portfolio page: {} bytes, status {}", first.body.len(), first.status);

        let pages = closed_loop(sessions, seconds, {
            let visitors = visitors.clone();
            move |caller, _| {
                let mut visitor = visitors[caller].clone();
                async move {
                    let page = visitor.get("/portfolio").await;
                    if page.status == 200 && !page.body.contains("unavailable right now") {
                        Ok(())
                    } else {
                        Err(page.status)
                    }
                }
            }
        })
        .await;
        println!("dashboard GET /portfolio:            {}", pages.summary());

        let grpc = closed_loop(sessions, seconds, {
            let (gateway, tokens) = (gateway.clone(), tokens.clone());
            move |caller, _| {
                let token = tokens[caller].clone();
                let (mut trading, mut users) =
                    (TradingServiceClient::new(gateway.clone()), UserServiceClient::new(gateway.clone()));
                async move {
                    let mut trading_b = trading.clone();
                    let mut trading_c = trading.clone();
                    let portfolio_then_equity = async {
                        let a = trading.get_portfolio(bearer(GetPortfolioRequest {}, &token)).await;
                        let c = trading_c
                            .get_equity_history(bearer(
                                GetEquityHistoryRequest { max_points: 200, ..Default::default() },
                                &token,
                            ))
                            .await;
                        (a, c)
                    };
                    let ((a, c), b, d) = tokio::join!(
                        portfolio_then_equity,
                        trading_b.list_holdings(bearer(
                            ListHoldingsRequest { page_size: 100, page_token: String::new() },
                            &token
                        )),
                        users.get_wallet(bearer(GetWalletRequest {}, &token)),
                    );
                    let wallet_ok = d.is_ok() || d.as_ref().is_err_and(|s| s.code() == tonic::Code::NotFound);
                    if a.is_ok() && b.is_ok() && c.is_ok() && wallet_ok { Ok(()) } else { Err(()) }
                }
            }
        })
        .await;
        println!("gRPC through the gateway (4 calls):  {}", grpc.summary());
        println!(
            "the page's rate is {:.2}x the gRPC reads'; its p99 {:.2}x theirs",
            pages.rate() / grpc.rate(),
            pages.quantile(0.99).as_secs_f64() / grpc.quantile(0.99).as_secs_f64().max(1e-9)
        );
        drop(mesh);
    });
}
