//! Figures for backtesting: a simulated season (120 days) backtested through the agents' own
//! RPC for one strategy, then for ten side by side; the wall time from RunBacktest to its
//! report, and simulated days per second. Prints them; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-integration-tests --bench backtest`.

use std::time::{Duration, Instant};

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_integration_tests::until;
use fastbreak_mesh::testing::as_user;
use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
use fastbreak_proto::agents::v1::{BacktestState, BacktestView, GetBacktestRequest, RunBacktestRequest};
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::strategy::v1::{CreateStrategyRequest, RookieRisersParameters, Strategy, StrategyRules};
use tonic::transport::Channel;

const DAYS: i32 = 120;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mesh = TradingMesh::start(MeshOptions { agents: true, ..MeshOptions::default() }).await;
        let channel = |name: &str| {
            let addr = mesh.addrs.iter().find(|(n, _)| *n == name).unwrap().1;
            Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
        };
        let (user, _) = mesh.funded_user(50_000).await;
        let mut strategies = StrategyServiceClient::new(channel("strategy"));
        let mut ids = Vec::new();
        for k in 0..10 {
            let strategy = Strategy {
                display_name: format!("Strategy {k}"),
                rules: Some(StrategyRules {
                    min_confidence: 0.2 + 0.05 * f64::from(k),
                    min_discount_bps: 500 + 300 * k,
                    max_price_cents: 50_000,
                    max_purchases_per_day: 2 + k,
                }),
                parameters: Some(Parameters::RookieRisers(RookieRisersParameters {
                    max_seasons_played: 3,
                    min_performance_rise_percent: 0.0,
                    ..Default::default()
                })),
                ..Default::default()
            };
            let created = strategies
                .create_strategy(as_user(
                    CreateStrategyRequest { strategy: Some(strategy), validate_only: false },
                    user,
                ))
                .await
                .unwrap()
                .into_inner();
            ids.push(created.strategy_id);
        }
        let agents = AgentServiceClient::new(channel("agents"));
        println!("backtest: {DAYS} simulated days, seed 7, release build, through AgentService/RunBacktest");
        for count in [1, 10] {
            let began = Instant::now();
            let started = agents
                .clone()
                .run_backtest(as_user(
                    RunBacktestRequest {
                        strategy_ids: ids[..count].to_vec(),
                        seed: 7,
                        days: DAYS,
                        starting_balance_cents: 100_000,
                        hold_days: 7,
                    },
                    user,
                ))
                .await
                .unwrap()
                .into_inner();
            let done = until("the backtest finishes", Duration::from_secs(600), || {
                let mut agents = agents.clone();
                let id = started.backtest_id.clone();
                async move {
                    // The whole backtest: the report's and the chart's sizes are printed.
                    let request = GetBacktestRequest { backtest_id: id, view: BacktestView::Full.into() };
                    let found = agents.get_backtest(as_user(request, user)).await.ok()?;
                    let found = found.into_inner();
                    (found.state() != BacktestState::Running).then_some(found)
                }
            })
            .await;
            let wall = began.elapsed();
            assert_eq!(done.state(), BacktestState::Succeeded, "{}", done.failure_reason);
            let purchases: i64 = done.strategies.iter().map(|l| l.purchases).sum();
            let decisions: i64 = done.strategies.iter().chain(&done.baselines).map(|l| l.decisions).sum();
            println!(
                "  {count:>2} strateg{}: wall {:.2} s, {:.1} simulated days/s, {decisions} decisions \
                 ({purchases} purchases by the strategies), report {} KiB, chart {} KiB",
                if count == 1 { "y  " } else { "ies" },
                wall.as_secs_f64(),
                f64::from(DAYS) / wall.as_secs_f64(),
                done.report_json.len() / 1024,
                done.chart_svg.len() / 1024,
            );
        }
    });
}
