//! Leaderboards: anonymised, opted-out users left out, the caller's own rank given.

use std::time::Duration;

use fastbreak_integration_tests::trading_mesh::{MeshOptions, TradingMesh};
use fastbreak_mesh::testing::{as_user, internal};
use fastbreak_proto::common::v1::Period;
use fastbreak_proto::trading::v1::{
    GetLeaderboardRequest, LeaderboardMetric, PurchaseMomentRequest, RecomputeLeaderboardsRequest,
};
use fastbreak_proto::user::v1::UpdateUserSettingsRequest;
use fastbreak_trading::leaderboard::alias;

use crate::settle_down;

#[tokio::test(flavor = "multi_thread")]
async fn leaderboards_leave_out_opted_out_users_and_show_no_identity() {
    let mesh = TradingMesh::start(MeshOptions::default()).await;
    let listings = mesh.list_market_moments(6, "simulator", 1_000).await;
    let mut people = Vec::new();
    for (i, listing) in listings.iter().enumerate().take(4) {
        let (user, wallet) = mesh.funded_user(10_000).await;
        mesh.trading()
            .await
            .purchase_moment(as_user(
                PurchaseMomentRequest {
                    listing_id: listing.to_string(),
                    max_price_cents: 1_000,
                    idempotency_key: format!("lb-{i}"),
                    ..Default::default()
                },
                user,
            ))
            .await
            .unwrap();
        people.push((user, wallet));
    }
    mesh.users()
        .await
        .update_user_settings(as_user(
            UpdateUserSettingsRequest { leaderboard_opt_out: Some(true), display_name: None },
            people[3].0,
        ))
        .await
        .unwrap();
    settle_down(&mesh, Duration::from_secs(20)).await;
    let ranked = mesh
        .trading_internal()
        .await
        .recompute_leaderboards(internal(RecomputeLeaderboardsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ranked.ranked_users, 3);

    // Opting out after the boards were computed counts at once.
    mesh.users()
        .await
        .update_user_settings(as_user(
            UpdateUserSettingsRequest { leaderboard_opt_out: Some(true), display_name: None },
            people[2].0,
        ))
        .await
        .unwrap();
    let caller = people[0].0;
    for metric in [
        LeaderboardMetric::Roi,
        LeaderboardMetric::Profit,
        LeaderboardMetric::PortfolioValue,
        LeaderboardMetric::SuccessfulTrades,
    ] {
        let board = mesh
            .trading()
            .await
            .get_leaderboard(as_user(
                GetLeaderboardRequest {
                    metric: metric.into(),
                    period: Period::Day.into(),
                    page_size: 1,
                    page_token: String::new(),
                },
                caller,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(board.compute_time.is_some());
        assert!(board.entries.len() <= 1, "{metric:?}: one per page at most");
        let mine = board.caller_entry.clone().expect("the caller's own row, even off the page");
        assert!(mine.is_caller);
        assert_eq!(mine.alias, alias(caller));
        let text = format!("{board:?}");
        for (user, wallet) in &people {
            assert!(!text.contains(&user.to_string()), "{metric:?}: no user id");
            assert!(!text.contains(wallet.as_str()), "{metric:?}: no wallet address");
            assert!(!text.contains("@example.com"), "{metric:?}: no email");
        }
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = mesh
                .trading()
                .await
                .get_leaderboard(as_user(
                    GetLeaderboardRequest {
                        metric: metric.into(),
                        period: Period::Day.into(),
                        page_size: 2,
                        page_token: token,
                    },
                    caller,
                ))
                .await
                .unwrap()
                .into_inner();
            all.extend(page.entries);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert!(!all.iter().any(|e| e.alias == alias(people[3].0)), "{metric:?}: the opted-out user is left out");
        assert!(!all.iter().any(|e| e.alias == alias(people[2].0)), "{metric:?}: an opt-out counts at once");
        let found = all.iter().find(|e| e.alias == mine.alias).expect("the caller is ranked");
        assert_eq!(found.rank, mine.rank, "{metric:?}: the caller's own row has its rank");
        let ranks: Vec<i32> = all.iter().map(|e| e.rank).collect();
        assert!(
            ranks.windows(2).all(|w| w[0] < w[1]) && all.len() == 2,
            "{metric:?}: best first, two shown: {ranks:?}"
        );
        assert!(all.iter().all(|e| e.alias.starts_with("collector-")));
    }
}
