//! Scouting's RPCs: each converts its request into domain values, applies the rule, and
//! converts the answer back.

use std::sync::Arc;

use crate::error;
use crate::store as scouting;
use chrono::{DateTime, Utc};
use fastbreak_db::OrStatus as _;
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_mesh::status::{self, Violations};
use fastbreak_mesh::{paging, tail};
use fastbreak_proto::scouting::v1 as pb;
use fastbreak_proto::scouting::v1::scouting_internal_service_server::ScoutingInternalService;
use fastbreak_proto::scouting::v1::scouting_service_server::ScoutingService;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalog;
use crate::convert;
use crate::settings::Settings;
use crate::valuer::{self, Outcome};

/// Events read per query by a stream.
const STREAM_BATCH: i64 = 500;

/// Both of the target's services.
#[derive(Debug, Clone)]
pub struct ScoutingApi {
    database: Arc<Database>,
    settings: Arc<Settings>,
    written: watch::Sender<u64>,
    /// The one tail of game events every stream of this process is fed from.
    game_events: Arc<tail::Hub<pb::GameEvent>>,
}

/// The process's one tail of game events: every event after a sequence, a batch at a time (the
/// follower reads on background work's connections, replays on the callers').
fn game_event_hub(database: Arc<Database>, wake: tail::Wake, limits: tail::Limits) -> Arc<tail::Hub<pb::GameEvent>> {
    let fetch = |database: Database| {
        tail::fetch(move |after: i64| {
            let database = database.clone();
            async move {
                let batch = database
                    .read(|conn| scouting::game_events_after(conn, after, None, STREAM_BATCH).boxed())
                    .await
                    .or_status()?;
                Ok(batch.iter().map(|e| (e.0.sequence, convert::event_to_pb(e))).collect())
            }
        })
    };
    let fetches = [fetch(database.background()), fetch((*database).clone())];
    let last = tail::last(move || {
        let database = database.clone();
        async move { database.read(|conn| scouting::last_game_event_sequence(conn).boxed()).await.or_status() }
    });
    tail::Hub::new("game event", fetches, last, wake, limits)
}

impl ScoutingApi {
    pub(crate) fn new(
        database: Database,
        settings: Arc<Settings>,
        written: watch::Sender<u64>,
        draining: watch::Receiver<bool>,
    ) -> Self {
        let database = Arc::new(database);
        let wake = tail::Wake { written: written.subscribe(), draining, poll: settings.stream_poll };
        let game_events = game_event_hub(database.clone(), wake, settings.streams);
        Self { database, settings, written, game_events }
    }

    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, Status> {
        self.database.read(work).await.or_status()
    }

    /// Takes in the catalog changes committed so far (see [`catalog`]).
    async fn catch_up(&self) -> Result<(), Status> {
        catalog::catch_up(&self.database).await.or_status().map(|_| ())
    }

    /// Values a moment at the instant `at` (now when unset or later).
    async fn value(
        &self,
        moment_id: Uuid,
        price: Option<i64>,
        at: Option<DateTime<Utc>>,
    ) -> Result<pb::Valuation, Status> {
        let now = Utc::now();
        match valuer::value(&self.database, moment_id, price, at.map_or(now, |at| at.min(now))).await {
            Ok(Outcome::Valued(valued)) => Ok(convert::valuation_to_pb(&valued)),
            Ok(Outcome::NoComparables) => Err(error::no_comparables(moment_id)),
            Err(error) => Err(Status::from(error)),
        }
    }
}

#[tonic::async_trait]
impl ScoutingService for ScoutingApi {
    async fn get_moment_valuation(
        &self,
        request: Request<pb::GetMomentValuationRequest>,
    ) -> Result<Response<pb::Valuation>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.uuid(&r.moment_id, "moment_id");
        if let Some(price) = r.price_cents {
            violations.check(price > 0, "price_cents", format!("must be positive, got {price}"));
        }
        violations.into_result(())?;
        self.catch_up().await?;
        Ok(Response::new(self.value(id.unwrap_or_default(), r.price_cents, None).await?))
    }

    async fn get_player(&self, request: Request<pb::GetPlayerRequest>) -> Result<Response<pb::Player>, Status> {
        let id = request.into_inner().player_id;
        if id.is_empty() {
            return Err(status::invalid_field("player_id", "required"));
        }
        self.catch_up().await?;
        let player = self
            .read(|conn| async move { scouting::find_player(conn, &id).await }.boxed())
            .await?
            .ok_or_else(|| status::not_found("player"))?;
        Ok(Response::new(convert::player_to_pb(&player)))
    }

    async fn list_player_game_stats(
        &self,
        request: Request<pb::ListPlayerGameStatsRequest>,
    ) -> Result<Response<pb::ListPlayerGameStatsResponse>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        violations.check(!r.player_id.is_empty(), "player_id", "required");
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        let offset = paging::decode_offset(&r.page_token, &mut violations);
        let until = r.until_time.as_ref().and_then(|t| status::time_field(t, "until_time", &mut violations));
        violations.into_result(())?;
        let player = r.player_id;
        let stats = self
            .read(|conn| async move { scouting::game_stats_page(conn, &player, until, offset, size + 1).await }.boxed())
            .await?;
        let more = stats.len() as i64 > size;
        Ok(Response::new(pb::ListPlayerGameStatsResponse {
            stats: stats.iter().take(size as usize).map(convert::stats_to_pb).collect(),
            next_page_token: if more { paging::encode_offset(offset + size) } else { String::new() },
        }))
    }

    async fn list_game_events(
        &self,
        request: Request<pb::ListGameEventsRequest>,
    ) -> Result<Response<pb::ListGameEventsResponse>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let size = paging::page_size(r.page_size, 50, 100, &mut violations);
        let before = paging::decode_key(&r.page_token, &mut violations).map(|k| k.parse::<i64>().ok());
        violations.check(before != Some(None), "page_token", "not a token this RPC gave");
        violations.into_result(())?;
        let (player, before) = ((!r.player_id.is_empty()).then_some(r.player_id), before.flatten());
        let events = self
            .read(|conn| {
                async move { scouting::game_events_before(conn, player.as_deref(), before, size + 1).await }.boxed()
            })
            .await?;
        let more = events.len() as i64 > size;
        let events: Vec<_> = events.into_iter().take(size as usize).collect();
        let next_page_token = match (more, events.last()) {
            (true, Some((last, _))) => paging::encode_key(&last.sequence.to_string()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListGameEventsResponse {
            events: events.iter().map(convert::event_to_pb).collect(),
            next_page_token,
        }))
    }
}

#[tonic::async_trait]
impl ScoutingInternalService for ScoutingApi {
    async fn value_listing(
        &self,
        request: Request<pb::ValueListingRequest>,
    ) -> Result<Response<pb::Valuation>, Status> {
        let r = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.uuid(&r.listing_id, "listing_id");
        if let Some(price) = r.price_cents {
            violations.check(price > 0, "price_cents", format!("must be positive, got {price}"));
        }
        let at = r.valuation_time.as_ref().and_then(|t| status::time_field(t, "valuation_time", &mut violations));
        violations.into_result(())?;
        let id = id.unwrap_or_default();
        self.catch_up().await?;
        let (moment_id, price_cents) = self
            .read(|conn| scouting::find_listed_price(conn, id).boxed())
            .await?
            .ok_or_else(|| status::not_found("listing"))?;
        Ok(Response::new(self.value(moment_id, Some(r.price_cents.unwrap_or(price_cents)), at).await?))
    }

    async fn ingest_game_event(
        &self,
        request: Request<pb::IngestGameEventRequest>,
    ) -> Result<Response<pb::IngestGameEventResponse>, Status> {
        let line = convert::line_from_pb(request.into_inner().event, Utc::now())?;
        self.catch_up().await?;
        let recorded = self
            .database
            .read_committed(|conn| {
                let line = line.clone();
                async move { valuer::record(conn, &line, Utc::now()).await }.boxed()
            })
            .await
            .map_err(|error| match error {
                DatabaseError::ForeignKeyViolation { .. } => status::not_found("player"),
                other => Status::from(other),
            })?;
        let mut revalued = 0;
        if recorded {
            self.written.send_modify(|n| *n += 1);
            revalued = valuer::revalue_player(&self.database, &line.stats.player_id, self.settings.revalue_limit)
                .await
                .or_status()?;
        }
        Ok(Response::new(pb::IngestGameEventResponse {
            recorded,
            revalued_moment_count: i32::try_from(revalued).unwrap_or(i32::MAX),
        }))
    }

    async fn stream_game_events(
        &self,
        request: Request<pb::StreamGameEventsRequest>,
    ) -> Result<Response<tail::TailStream<pb::GameEvent>>, Status> {
        let caller = tail::caller(&request);
        let after = request.into_inner().after_sequence;
        if after.is_some_and(|a| a < 0) {
            return Err(status::invalid_field("after_sequence", "must not be negative"));
        }
        let subscription = tail::Subscription { caller, after };
        Ok(Response::new(self.game_events.subscribe(subscription, |_| true).await?))
    }
}
