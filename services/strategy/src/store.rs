//! Strategies, templates and per-strategy performance.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::schema::{
    strategies, strategy_outcomes, strategy_performance, strategy_revision, strategy_templates,
};
use fastbreak_db::{Cursor, Page, PageRequest, text_enum};

text_enum! {
    /// What a strategy looks for.
    StrategyKind {
        /// Rookies whose play is rising.
        RookieRisers => "rookie_risers",
        /// Right after a standout game.
        PostGameSpike => "post_game_spike",
        /// Cheaper on one marketplace than another.
        ArbitrageMode => "arbitrage_mode",
    }
}

text_enum! {
    /// Whether the agents act on a strategy.
    StrategyState {
        /// Acted on.
        Active => "active",
        /// Ignored.
        Paused => "paused",
    }
}

/// A strategy template.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = strategy_templates)]
pub struct StrategyTemplate {
    /// Id.
    pub id: String,
    /// Name.
    pub display_name: String,
    /// What it does.
    pub description: String,
    /// Kind.
    pub kind: StrategyKind,
    /// Kind-specific parameters.
    pub parameters: serde_json::Value,
    /// Least confidence to buy.
    pub min_confidence: f64,
    /// Least discount to fair value, basis points.
    pub min_discount_bps: i32,
    /// Most paid for one moment.
    pub max_price_cents: i64,
    /// Most purchases a day.
    pub max_purchases_per_day: i32,
}

/// A strategy.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = strategies)]
pub struct Strategy {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Name.
    pub display_name: String,
    /// Kind.
    pub kind: StrategyKind,
    /// Active or paused.
    pub state: StrategyState,
    /// Kind-specific parameters, as validated by the strategy service.
    pub parameters: serde_json::Value,
    /// Least confidence to buy.
    pub min_confidence: f64,
    /// Least discount to fair value, basis points.
    pub min_discount_bps: i32,
    /// Most paid for one moment.
    pub max_price_cents: i64,
    /// Most purchases a day.
    pub max_purchases_per_day: i32,
    /// The template it came from.
    pub template_id: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Among the user's strategies, which is served first when opportunities compete for one
    /// budget: 1 to 100, higher first.
    pub priority: i32,
    /// The local time of the daily scan, `HH:MM`, if one is scheduled.
    pub scan_time: Option<String>,
    /// The IANA time zone of `scan_time`.
    pub scan_time_zone: Option<String>,
    /// Its protections, as validated by the strategy service (an empty object: none).
    pub protections: serde_json::Value,
    /// When the user last lifted its protections.
    pub protections_reset_at: Option<DateTime<Utc>>,
}

/// A strategy's performance.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = strategy_performance)]
pub struct StrategyPerformance {
    /// The strategy.
    pub strategy_id: Uuid,
    /// Purchases made.
    pub purchase_count: i64,
    /// Sales made.
    pub sale_count: i64,
    /// Spent.
    pub spent_cents: i64,
    /// Brought in.
    pub proceeds_cents: i64,
    /// Realised profit or loss.
    pub realized_pnl_cents: i64,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Lists the templates.
pub async fn list_templates(conn: &mut AsyncPgConnection) -> Result<Vec<StrategyTemplate>, DatabaseError> {
    Ok(strategy_templates::table.order(strategy_templates::id).select(StrategyTemplate::as_select()).load(conn).await?)
}

/// Creates a strategy and its (empty) performance record.
pub async fn create_strategy(conn: &mut AsyncPgConnection, strategy: &Strategy) -> Result<Strategy, DatabaseError> {
    let created = diesel::insert_into(strategies::table)
        .values(strategy)
        .returning(Strategy::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(strategy_performance::table)
        .values(strategy_performance::strategy_id.eq(created.id))
        .execute(conn)
        .await?;
    Ok(created)
}

/// Finds one of a user's strategies.
pub async fn find_strategy(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Strategy>, DatabaseError> {
    Ok(strategies::table
        .find(id)
        .filter(strategies::user_id.eq(user_id))
        .select(Strategy::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Lists a user's strategies, newest first, optionally in one state and of one kind.
pub async fn list_strategies(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    state: Option<StrategyState>,
    kind: Option<StrategyKind>,
    page: PageRequest,
) -> Result<Page<Strategy>, DatabaseError> {
    let mut query = strategies::table
        .filter(strategies::user_id.eq(user_id))
        .select(Strategy::as_select())
        .order((strategies::created_at.desc(), strategies::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(strategies::state.eq(state));
    }
    if let Some(kind) = kind {
        query = query.filter(strategies::kind.eq(kind));
    }
    if let Some(after) = page.after {
        query = query.filter(
            strategies::created_at
                .lt(after.time)
                .or(strategies::created_at.eq(after.time).and(strategies::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |s| Cursor { time: s.created_at, id: s.id }))
}

/// Replaces a strategy's name, rules, parameters, priority and scan, if it was last changed at
/// `strategy.updated_at` (so that a concurrent change is not overwritten); `NotFound` when it
/// is gone or was changed since.
pub async fn update_strategy(conn: &mut AsyncPgConnection, strategy: &Strategy) -> Result<Strategy, DatabaseError> {
    diesel::update(
        strategies::table
            .find(strategy.id)
            .filter(strategies::user_id.eq(strategy.user_id))
            .filter(strategies::updated_at.eq(strategy.updated_at)),
    )
    .set((
        strategies::display_name.eq(&strategy.display_name),
        strategies::kind.eq(strategy.kind),
        strategies::parameters.eq(&strategy.parameters),
        strategies::min_confidence.eq(strategy.min_confidence),
        strategies::min_discount_bps.eq(strategy.min_discount_bps),
        strategies::max_price_cents.eq(strategy.max_price_cents),
        strategies::max_purchases_per_day.eq(strategy.max_purchases_per_day),
        strategies::priority.eq(strategy.priority),
        strategies::scan_time.eq(&strategy.scan_time),
        strategies::scan_time_zone.eq(&strategy.scan_time_zone),
        strategies::protections.eq(&strategy.protections),
        strategies::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Strategy::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(DatabaseError::NotFound("strategy"))
}

/// Lifts a strategy's protections: losses up to now no longer count towards them.
pub async fn reset_protections(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Strategy, DatabaseError> {
    diesel::update(strategies::table.find(id).filter(strategies::user_id.eq(user_id)))
        .set((strategies::protections_reset_at.eq(diesel::dsl::now), strategies::updated_at.eq(diesel::dsl::now)))
        .returning(Strategy::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("strategy"))
}

/// Activates or pauses a strategy.
pub async fn set_strategy_state(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
    state: StrategyState,
) -> Result<Strategy, DatabaseError> {
    diesel::update(strategies::table.find(id).filter(strategies::user_id.eq(user_id)))
        .set((strategies::state.eq(state), strategies::updated_at.eq(diesel::dsl::now)))
        .returning(Strategy::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("strategy"))
}

/// Deletes a strategy; false when there was none.
pub async fn delete_strategy(conn: &mut AsyncPgConnection, user_id: Uuid, id: Uuid) -> Result<bool, DatabaseError> {
    let deleted =
        diesel::delete(strategies::table.find(id).filter(strategies::user_id.eq(user_id))).execute(conn).await?;
    Ok(deleted == 1)
}

/// Which active strategies to list: `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveFilter {
    /// Only strategies of this kind.
    pub kind: Option<StrategyKind>,
    /// Only strategies that may buy this player's moments (those that name no players match).
    pub player_id: Option<String>,
    /// Only strategies that may buy this rarity (those that name no rarities match).
    pub rarity: Option<fastbreak_db::Rarity>,
}

/// SQL true when the strategy's parameter list `key` is absent, empty, or holds `value`.
fn list_allows(
    key: &'static str,
    value: String,
) -> Box<dyn diesel::BoxableExpression<strategies::table, diesel::pg::Pg, SqlType = diesel::sql_types::Bool>> {
    use diesel::sql_types::{Bool, Text};
    Box::new(
        diesel::dsl::sql::<Bool>("(coalesce(jsonb_array_length(parameters -> ")
            .bind::<Text, _>(key)
            .sql("), 0) = 0 OR (parameters -> ")
            .bind::<Text, _>(key)
            .sql(") ? ")
            .bind::<Text, _>(value)
            .sql(")"),
    )
}

/// Lists every user's active strategies that pass `filter`, by id.
pub async fn list_active_strategies(
    conn: &mut AsyncPgConnection,
    filter: &ActiveFilter,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<Strategy>, DatabaseError> {
    let mut query = strategies::table
        .filter(strategies::state.eq(StrategyState::Active))
        .select(Strategy::as_select())
        .order(strategies::id)
        .limit(size)
        .into_boxed();
    if let Some(kind) = filter.kind {
        query = query.filter(strategies::kind.eq(kind));
    }
    if let Some(player_id) = &filter.player_id {
        query = query.filter(list_allows("player_ids", player_id.clone()));
    }
    if let Some(rarity) = filter.rarity {
        query = query.filter(list_allows("rarities", rarity.as_str().to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(strategies::id.gt(after));
    }
    Ok(query.load(conn).await?)
}

/// The strategies' revision: it moves on with every statement that creates, changes or deletes
/// strategies (a trigger of the schema), in that statement's transaction.
pub async fn revision(conn: &mut AsyncPgConnection) -> Result<i64, DatabaseError> {
    Ok(strategy_revision::table.select(strategy_revision::revision).first(conn).await?)
}

/// The outcome of one trade for a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = strategy_outcomes)]
pub struct StrategyOutcome {
    /// The strategy.
    pub strategy_id: Uuid,
    /// The trade.
    pub trade_id: Uuid,
    /// Spent by a purchase.
    pub spent_cents: i64,
    /// Brought in by a sale.
    pub proceeds_cents: i64,
    /// Realised profit or loss.
    pub realized_pnl_cents: i64,
    /// The moment traded, when known.
    pub moment_id: Option<Uuid>,
    /// When the trade settled.
    pub occurred_at: DateTime<Utc>,
}

/// A page of a strategy's outcomes at or after `since` (and after its protections' reset, if
/// any), oldest first (by time, then trade), with the reset's time.
pub async fn outcomes_since(
    conn: &mut AsyncPgConnection,
    strategy_id: Uuid,
    since: DateTime<Utc>,
    page: PageRequest,
) -> Result<(Page<StrategyOutcome>, Option<DateTime<Utc>>), DatabaseError> {
    let reset: Option<Option<DateTime<Utc>>> =
        strategies::table.find(strategy_id).select(strategies::protections_reset_at).first(conn).await.optional()?;
    let Some(reset) = reset else { return Err(DatabaseError::NotFound("strategy")) };
    let mut query = strategy_outcomes::table
        .filter(strategy_outcomes::strategy_id.eq(strategy_id))
        .filter(strategy_outcomes::occurred_at.ge(since))
        .order((strategy_outcomes::occurred_at.asc(), strategy_outcomes::trade_id.asc()))
        .limit(page.size + 1)
        .select(StrategyOutcome::as_select())
        .into_boxed();
    if let Some(reset) = reset {
        query = query.filter(strategy_outcomes::occurred_at.gt(reset));
    }
    if let Some(after) = page.after {
        query = query.filter(
            strategy_outcomes::occurred_at
                .gt(after.time)
                .or(strategy_outcomes::occurred_at.eq(after.time).and(strategy_outcomes::trade_id.gt(after.id))),
        );
    }
    let rows: Vec<StrategyOutcome> = query.load(conn).await?;
    Ok((Page::from_rows(rows, page.size, |o| Cursor { time: o.occurred_at, id: o.trade_id }), reset))
}

/// Adds a trade's outcome to its strategy's performance; a trade already counted is not
/// counted again.
pub async fn record_outcome(
    conn: &mut AsyncPgConnection,
    outcome: &StrategyOutcome,
) -> Result<StrategyPerformance, DatabaseError> {
    let inserted =
        diesel::insert_into(strategy_outcomes::table).values(outcome).on_conflict_do_nothing().execute(conn).await?;
    if inserted == 1 {
        let purchase = i64::from(outcome.spent_cents > 0);
        let sale = i64::from(outcome.proceeds_cents > 0);
        diesel::update(strategy_performance::table.find(outcome.strategy_id))
            .set((
                strategy_performance::purchase_count.eq(strategy_performance::purchase_count + purchase),
                strategy_performance::sale_count.eq(strategy_performance::sale_count + sale),
                strategy_performance::spent_cents.eq(strategy_performance::spent_cents + outcome.spent_cents),
                strategy_performance::proceeds_cents.eq(strategy_performance::proceeds_cents + outcome.proceeds_cents),
                strategy_performance::realized_pnl_cents
                    .eq(strategy_performance::realized_pnl_cents + outcome.realized_pnl_cents),
                strategy_performance::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
    }
    find_performance(conn, outcome.strategy_id).await?.ok_or(DatabaseError::NotFound("strategy performance"))
}

/// A strategy's performance.
pub async fn find_performance(
    conn: &mut AsyncPgConnection,
    strategy_id: Uuid,
) -> Result<Option<StrategyPerformance>, DatabaseError> {
    Ok(strategy_performance::table
        .find(strategy_id)
        .select(StrategyPerformance::as_select())
        .first(conn)
        .await
        .optional()?)
}
