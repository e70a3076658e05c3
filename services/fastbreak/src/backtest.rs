//! `fastbreak backtest`: runs a backtest through the gateway as a user, follows its progress,
//! and writes its report (JSON) and chart (SVG).

use std::time::{Duration, Instant};

use fastbreak_mesh::money::dollars;
use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
use fastbreak_proto::agents::v1::{
    BacktestLedger, BacktestState, BacktestView, GetBacktestRequest, RunBacktestRequest,
};

use crate::cli::BacktestArgs;
use crate::demo::Bearer;

/// How often the backtest's progress is asked for.
const POLL: Duration = Duration::from_millis(500);

/// Runs the backtest `args` ask for, telling `say` its progress and figures line by line, and
/// writes report.json and chart.svg into `args.out`. An error says what failed.
pub async fn run(args: &BacktestArgs, mut say: impl FnMut(String)) -> Result<(), String> {
    let bearer = Bearer::of(&args.token).ok_or("the access token cannot be sent in a header")?;
    let channel = crate::status::connect(&args.gateway, Duration::from_secs(30)).await?;
    let mut agents = AgentServiceClient::with_interceptor(channel, bearer);
    let answer = |status: tonic::Status| format!("the gateway answered {:?}: {}", status.code(), status.message());
    let started = agents
        .run_backtest(RunBacktestRequest {
            strategy_ids: args.strategies.clone(),
            seed: args.seed,
            days: args.days,
            starting_balance_cents: args.starting_balance_cents,
            hold_days: args.hold_days,
        })
        .await
        .map_err(answer)?
        .into_inner();
    say(format!("backtest {} started: {} days of seed {}", started.backtest_id, started.days, started.seed));
    let began = Instant::now();
    let mut told = -1;
    let ask = |view: BacktestView| GetBacktestRequest { backtest_id: started.backtest_id.clone(), view: view.into() };
    // Its progress is read without the report and the chart, which are read once at the end.
    let ended = loop {
        let found = agents.get_backtest(ask(BacktestView::Basic)).await.map_err(answer)?.into_inner();
        if found.state() != BacktestState::Running {
            break found;
        }
        if found.days_done != told {
            told = found.days_done;
            say(format!("day {} of {}", found.days_done, found.days));
        }
        if began.elapsed() > args.timeout {
            return Err(format!(
                "backtest {} still runs after {:?} (day {} of {}); read it later with AgentService/GetBacktest",
                found.backtest_id, args.timeout, found.days_done, found.days
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    match ended.state() {
        BacktestState::Succeeded => {}
        BacktestState::Cancelled => return Err(format!("backtest {} was {}", ended.backtest_id, ended.failure_reason)),
        _ => return Err(format!("backtest {} failed: {}", ended.backtest_id, ended.failure_reason)),
    }
    let done = agents.get_backtest(ask(BacktestView::Full)).await.map_err(answer)?.into_inner();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{} cannot be made: {e}", args.out.display()))?;
    for (name, text) in [("report.json", &done.report_json), ("chart.svg", &done.chart_svg)] {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{} cannot be written: {e}", path.display()))?;
    }
    for line in table(&done.strategies, &done.baselines) {
        say(line);
    }
    if !done.budget_limits.is_empty() {
        say(format!("held to your budget limits: {}", done.budget_limits));
    }
    say(format!("report: {}", args.out.join("report.json").display()));
    say(format!("chart: {}", args.out.join("chart.svg").display()));
    Ok(())
}

/// One line per ledger under a header: purchases, sold, win rate, profit, ROI, maximum drawdown.
pub fn table(strategies: &[BacktestLedger], baselines: &[BacktestLedger]) -> Vec<String> {
    let width = strategies.iter().chain(baselines).map(|l| l.display_name.len()).max().unwrap_or(0).max(8);
    let mut lines = vec![format!(
        "{:<width$}  {:>9}  {:>5}  {:>8}  {:>12}  {:>8}  {:>12}",
        "STRATEGY", "PURCHASES", "SOLD", "WIN RATE", "PROFIT", "ROI", "MAX DRAWDOWN"
    )];
    for ledger in strategies.iter().chain(baselines) {
        lines.push(format!(
            "{:<width$}  {:>9}  {:>5}  {:>7.1}%  {:>12}  {:>7.2}%  {:>11.2}%",
            ledger.display_name,
            ledger.purchases,
            ledger.closed_trades,
            ledger.win_rate * 100.0,
            dollars(ledger.profit_cents),
            ledger.roi * 100.0,
            ledger.max_drawdown * 100.0
        ));
    }
    lines
}
