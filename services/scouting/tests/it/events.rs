//! Game events: recorded once, with the highlights they earned; a stream resumable by sequence;
//! box scores taken in from the marketplace's feeds.

use std::time::Duration;

use fastbreak_mesh::testing::internal;
use fastbreak_proto::scouting::v1::{
    GameEvent, GetPlayerRequest, IngestGameEventRequest, ListGameEventsRequest, ListPlayerGameStatsRequest,
    PlayerGameStats, StreamGameEventsRequest,
};

use crate::{market, spawn};

fn event(id: &str, game: &str, player: &str, points: i32, rebounds: i32, days_ago: i64) -> IngestGameEventRequest {
    let at = chrono::Utc::now() - chrono::Duration::days(days_ago);
    IngestGameEventRequest {
        event: Some(GameEvent {
            event_id: id.to_owned(),
            game_id: game.to_owned(),
            player_id: player.to_owned(),
            stats: Some(PlayerGameStats {
                game_time: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
                opponent_code: "LAL".to_owned(),
                minutes: 34,
                points,
                rebounds,
                assists: 4,
                ..Default::default()
            }),
            r#final: true,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_is_recorded_once_with_its_highlights_and_a_big_game_revalues_the_moments() {
    let app = spawn().await;
    // Sales of the play at about $40 over the last weeks; the last serial is listed.
    let m = market(&app, "p-1", &[100, 120, 140, 160], &[(0, 4_000, 20), (1, 4_100, 12), (2, 3_900, 8)], 4_000).await;
    let mut internal_api = app.internal.clone();
    for (n, points) in [18, 22, 20, 19].iter().enumerate() {
        let e = event(&format!("e{n}"), &format!("g{n}"), "p-1", *points, 5, 10 - n as i64);
        internal_api.ingest_game_event(internal(e)).await.unwrap();
    }
    let big = internal_api.ingest_game_event(internal(event("e9", "g9", "p-1", 45, 11, 0))).await.unwrap().into_inner();
    assert!(big.recorded);
    assert_eq!(big.revalued_moment_count, 1, "the listed moment is re-valued");
    let again =
        internal_api.ingest_game_event(internal(event("e9", "g9", "p-1", 45, 11, 0))).await.unwrap().into_inner();
    assert_eq!((again.recorded, again.revalued_moment_count), (false, 0), "an event is recorded once");

    let events = app
        .public
        .clone()
        .list_game_events(ListGameEventsRequest { player_id: "p-1".into(), page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let newest = &events.events[0];
    assert_eq!(newest.event_id, "e9");
    for h in ["forty_point_game", "career_high_points", "double_double"] {
        assert!(newest.highlights.iter().any(|x| x == h), "{h} in {:?}", newest.highlights);
    }
    assert_eq!(newest.stats.as_ref().unwrap().points, 45);
    let rest = app
        .public
        .clone()
        .list_game_events(ListGameEventsRequest {
            player_id: "p-1".into(),
            page_size: 10,
            page_token: events.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.events.len(), 3);

    // The stored valuation after the game says why it moved.
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let (valuation, factors) =
        fastbreak_scouting::store::latest_valuation(&mut conn, *m.moments.last().unwrap()).await.unwrap().unwrap();
    let performance = factors.iter().find(|f| f.name == "recent_performance").expect("a performance factor");
    assert!(performance.explanation.contains("scored 45 points last night, a career high"), "{factors:#?}");
    assert!(performance.impact_cents > 0 && valuation.fair_value_cents > 4_000, "{valuation:?}");

    let player =
        app.public.clone().get_player(GetPlayerRequest { player_id: "p-1".into() }).await.unwrap().into_inner();
    assert_eq!((player.jersey_number, player.rookie), (Some(23), false));
    let stats = app
        .public
        .clone()
        .list_player_game_stats(ListPlayerGameStatsRequest {
            player_id: "p-1".into(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.stats[0].points, stats.stats.len(), stats.next_page_token.is_empty()), (45, 3, false));
    let unknown = internal_api.ingest_game_event(internal(event("x", "g", "nobody", 1, 1, 0))).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let _ = m.listing;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_reconnects_gets_every_later_game_event_once_in_order() {
    let app = spawn().await;
    market(&app, "p-2", &[5], &[], 1_000).await;
    // Games keep arriving while the subscriber comes and goes.
    let writer = {
        let mut client = app.internal.clone();
        tokio::spawn(async move {
            for n in 0..120 {
                client
                    .ingest_game_event(internal(event(&format!("s{n}"), &format!("sg{n}"), "p-2", 10 + n % 30, 3, 0)))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let read = |after: Option<i64>, count: usize| {
        let mut client = app.internal.clone();
        async move {
            let mut stream = client
                .stream_game_events(internal(StreamGameEventsRequest { after_sequence: after }))
                .await
                .unwrap()
                .into_inner();
            let mut seen = Vec::new();
            while seen.len() < count {
                let e =
                    tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
                seen.push(e.sequence);
            }
            seen
        }
    };
    let first = read(Some(0), 30).await;
    let second = read(Some(*first.last().unwrap()), 50).await;
    let third = read(Some(*second.last().unwrap()), 40).await;
    writer.await.unwrap();
    let seen: Vec<i64> = first.into_iter().chain(second).chain(third).collect();
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let stored: Vec<i64> = fastbreak_scouting::store::game_events_after(&mut conn, 0, None, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.0.sequence)
        .collect();
    assert_eq!(seen, stored, "every event once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_game_naming_an_unknown_player_is_set_aside_and_the_next_games_go_through() {
    use fastbreak_db::outbox::{self, GAME_FINAL_TOPIC, GameFinal, GameLine};
    let app = spawn().await;
    market(&app, "p-7", &[9], &[], 1_000).await;
    let line = |game: &str, player: &str| GameLine {
        game_id: game.to_owned(),
        player_id: player.to_owned(),
        game_at: chrono::Utc::now(),
        opponent_code: "MIA".to_owned(),
        minutes: 30,
        points: 12,
        rebounds: 3,
        assists: 2,
        steals: 1,
        blocks: 0,
        turnovers: 1,
    };
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    for (game, player) in [("bad", "nobody"), ("good", "p-7")] {
        let message = GameFinal { game_id: game.to_owned(), lines: vec![line(game, player)] };
        outbox::enqueue(&mut conn, GAME_FINAL_TOPIC, game, &serde_json::to_value(&message).unwrap()).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = app
            .public
            .clone()
            .list_game_events(ListGameEventsRequest { player_id: "p-7".into(), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .events;
        if events.iter().any(|e| e.game_id == "good") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the good game never went through");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
