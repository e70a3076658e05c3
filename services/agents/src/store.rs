//! Agent runs and the decisions they made, with their reasons.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::schema::{agent_automation, agent_cursors, agent_runs, agent_scan_slots, backtests, decisions};
use fastbreak_db::{Cursor, Page, PageRequest, text_enum};

text_enum! {
    /// What set a run off.
    RunTrigger {
        /// A listing event.
        ListingEvent => "listing_event",
        /// A game event.
        GameEvent => "game_event",
        /// The daily scan.
        ScheduledScan => "scheduled_scan",
        /// The user asked.
        ManualScan => "manual_scan",
        /// An arbitrage opportunity.
        Arbitrage => "arbitrage",
    }
}

text_enum! {
    /// Where a run stands.
    RunState {
        /// Working.
        Running => "running",
        /// Finished.
        Succeeded => "succeeded",
        /// Failed after every retry.
        Failed => "failed",
    }
}

text_enum! {
    /// Where a backtest stands.
    BacktestState {
        /// Replaying.
        Running => "running",
        /// Done, its report kept.
        Succeeded => "succeeded",
        /// Stopped: its deadline passed, or the agents stopped while it ran.
        Failed => "failed",
        /// Cancelled by its user.
        Cancelled => "cancelled",
    }
}

/// One pass of the automation loop.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = agent_runs)]
pub struct AgentRun {
    /// Id.
    pub id: Uuid,
    /// For whom.
    pub user_id: Uuid,
    /// What set it off.
    pub trigger: RunTrigger,
    /// Where it stands.
    pub state: RunState,
    /// Listings looked at.
    pub listings_evaluated: i32,
    /// Decisions made.
    pub decision_count: i32,
    /// Purchases made.
    pub purchase_count: i32,
    /// Attempts.
    pub attempt_count: i32,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Starts a run.
pub async fn start_run(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user_id: Uuid,
    trigger: RunTrigger,
) -> Result<AgentRun, DatabaseError> {
    Ok(diesel::insert_into(agent_runs::table)
        .values((agent_runs::id.eq(id), agent_runs::user_id.eq(user_id), agent_runs::trigger.eq(trigger)))
        .returning(AgentRun::as_returning())
        .get_result(conn)
        .await?)
}

/// Ends a running run with its counts; `failure` set means it failed.
pub async fn finish_run(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    listings_evaluated: i32,
    attempt_count: i32,
    failure: Option<&str>,
) -> Result<AgentRun, DatabaseError> {
    let state = if failure.is_some() { RunState::Failed } else { RunState::Succeeded };
    let decision_count = decisions::table.filter(decisions::run_id.eq(id)).count().get_result::<i64>(conn).await?;
    let purchase_count = decisions::table
        .filter(decisions::run_id.eq(id))
        .filter(decisions::outcome.eq(DecisionOutcome::Buy))
        .count()
        .get_result::<i64>(conn)
        .await?;
    diesel::update(agent_runs::table.find(id).filter(agent_runs::state.eq(RunState::Running)))
        .set((
            agent_runs::state.eq(state),
            agent_runs::listings_evaluated.eq(listings_evaluated),
            agent_runs::decision_count.eq(i32::try_from(decision_count).unwrap_or(i32::MAX)),
            agent_runs::purchase_count.eq(i32::try_from(purchase_count).unwrap_or(i32::MAX)),
            agent_runs::attempt_count.eq(attempt_count),
            agent_runs::failure_reason.eq(failure),
            agent_runs::ended_at.eq(Some(Utc::now())),
        ))
        .returning(AgentRun::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("running agent run"))
}

/// Finds one of a user's runs.
pub async fn find_run(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<AgentRun>, DatabaseError> {
    Ok(agent_runs::table
        .find(id)
        .filter(agent_runs::user_id.eq(user_id))
        .select(AgentRun::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A user's runs, newest first.
pub async fn list_runs(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    page: PageRequest,
) -> Result<Page<AgentRun>, DatabaseError> {
    let mut query = agent_runs::table
        .filter(agent_runs::user_id.eq(user_id))
        .select(AgentRun::as_select())
        .order((agent_runs::started_at.desc(), agent_runs::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(
            agent_runs::started_at
                .lt(after.time)
                .or(agent_runs::started_at.eq(after.time).and(agent_runs::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |r| Cursor { time: r.started_at, id: r.id }))
}

text_enum! {
    /// What was decided about a listing.
    DecisionOutcome {
        /// Bought.
        Buy => "buy",
        /// Not bought.
        Skip => "skip",
        /// Chosen, but the purchase was refused.
        Refused => "refused",
        /// Chosen by a strategy with manual approval: waits for the user.
        AwaitingApproval => "awaiting_approval",
    }
}

/// A decision with its reasons.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = decisions)]
pub struct Decision {
    /// Id.
    pub id: Uuid,
    /// The run.
    pub run_id: Uuid,
    /// For whom.
    pub user_id: Uuid,
    /// The strategy.
    pub strategy_id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// The moment.
    pub moment_id: Uuid,
    /// What was decided.
    pub outcome: DecisionOutcome,
    /// Why; at least one, none empty.
    pub reasons: Vec<String>,
    /// The listing's price.
    pub price_cents: i64,
    /// The model's fair value.
    pub fair_value_cents: i64,
    /// The model's confidence.
    pub confidence: f64,
    /// The trade, when bought.
    pub trade_id: Option<Uuid>,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Why, as a code (a `DecisionReason` of the contract, in snake case).
    pub reason_code: String,
    /// The rule that decided (such as `min_confidence`).
    pub rule: String,
    /// The valuation it relied on.
    pub valuation_id: Option<Uuid>,
    /// The valuation's factors with their weights, heaviest first (JSON).
    pub factors: serde_json::Value,
    /// True when data the decision wanted was missing.
    pub data_incomplete: bool,
    /// The listing event it answered, if one did.
    pub event_sequence: Option<i64>,
    /// The game event that started its run, if one did.
    pub trigger_event: Option<String>,
    /// Until when it can be approved, when it waited for approval.
    pub approval_expires_at: Option<DateTime<Utc>>,
}

impl Decision {
    /// Whether the strategy acted on its listing (bought it, tried to, or waits for the user's
    /// approval to): the user's other strategies then leave the listing alone.
    pub fn acted_on(&self) -> bool {
        matches!(self.outcome, DecisionOutcome::Buy | DecisionOutcome::Refused | DecisionOutcome::AwaitingApproval)
    }
}

/// Records a decision.
pub async fn insert_decision(conn: &mut AsyncPgConnection, decision: &Decision) -> Result<Decision, DatabaseError> {
    Ok(diesel::insert_into(decisions::table)
        .values(decision)
        .returning(Decision::as_returning())
        .get_result(conn)
        .await?)
}

/// Records a decision unless one was recorded for its strategy and event; `None` then.
pub async fn insert_decision_if_new(
    conn: &mut AsyncPgConnection,
    decision: &Decision,
) -> Result<Option<Decision>, DatabaseError> {
    Ok(diesel::insert_into(decisions::table)
        .values(decision)
        .on_conflict_do_nothing()
        .returning(Decision::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// How many moments a strategy bought since `since`.
pub async fn purchases_since(
    conn: &mut AsyncPgConnection,
    strategy_id: Uuid,
    since: DateTime<Utc>,
) -> Result<i64, DatabaseError> {
    Ok(decisions::table
        .filter(decisions::strategy_id.eq(strategy_id))
        .filter(decisions::outcome.eq(DecisionOutcome::Buy))
        .filter(decisions::created_at.ge(since))
        .count()
        .get_result(conn)
        .await?)
}

/// Where a stream was left (0 before the first event).
pub async fn cursor(conn: &mut AsyncPgConnection, stream: &str) -> Result<i64, DatabaseError> {
    Ok(agent_cursors::table.find(stream).select(agent_cursors::sequence).first(conn).await.optional()?.unwrap_or(0))
}

/// Moves a stream's cursor forward (never back).
pub async fn advance_cursor(conn: &mut AsyncPgConnection, stream: &str, sequence: i64) -> Result<(), DatabaseError> {
    diesel::insert_into(agent_cursors::table)
        .values((agent_cursors::stream.eq(stream), agent_cursors::sequence.eq(sequence)))
        .on_conflict(agent_cursors::stream)
        .do_update()
        .set((
            agent_cursors::sequence.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "GREATEST(agent_cursors.sequence, excluded.sequence)",
            )),
            agent_cursors::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Starts runs, each `(id, user)`, in one statement; `event` names the game event that set
/// them off, if one did.
pub async fn start_runs(
    conn: &mut AsyncPgConnection,
    runs: &[(Uuid, Uuid)],
    trigger: RunTrigger,
    event: Option<&str>,
) -> Result<(), DatabaseError> {
    if runs.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = runs
        .iter()
        .map(|(id, user)| {
            (
                agent_runs::id.eq(*id),
                agent_runs::user_id.eq(*user),
                agent_runs::trigger.eq(trigger),
                agent_runs::trigger_event.eq(event),
            )
        })
        .collect();
    diesel::insert_into(agent_runs::table).values(rows).execute(conn).await?;
    Ok(())
}

/// Ends running runs with their counts, in one statement; `failure` set means they failed.
/// Runs already ended are left as they are; the number ended is returned.
pub async fn finish_runs(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    listings_evaluated: i32,
    attempt_count: i32,
    failure: Option<&str>,
) -> Result<usize, DatabaseError> {
    if ids.is_empty() {
        return Ok(0);
    }
    use diesel::sql_types::{Array, Int4, Nullable, Text, Uuid as SqlUuid};
    let state = if failure.is_some() { RunState::Failed } else { RunState::Succeeded };
    Ok(diesel::sql_query(
        "UPDATE agent_runs r SET state = $2, listings_evaluated = $3, attempt_count = $4, failure_reason = $5, \
         ended_at = now(), \
         decision_count = (SELECT count(*) FROM decisions d WHERE d.run_id = r.id), \
         purchase_count = (SELECT count(*) FROM decisions d WHERE d.run_id = r.id AND d.outcome = 'buy') \
         WHERE r.id = ANY($1) AND r.state = 'running'",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Text, _>(state.as_str())
    .bind::<Int4, _>(listings_evaluated)
    .bind::<Int4, _>(attempt_count)
    .bind::<Nullable<Text>, _>(failure)
    .execute(conn)
    .await?)
}

/// Records decisions in one statement, except those whose strategy decided on their event
/// before; the ones recorded are returned.
pub async fn insert_decisions_if_new(
    conn: &mut AsyncPgConnection,
    decisions: &[Decision],
) -> Result<Vec<Decision>, DatabaseError> {
    if decisions.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::insert_into(decisions::table)
        .values(decisions)
        .on_conflict_do_nothing()
        .returning(Decision::as_returning())
        .get_results(conn)
        .await?)
}

/// Which of `strategies` decided on a listing event (by its sequence) or, for a game event's
/// run, on the listing for that event.
pub async fn decided_strategies(
    conn: &mut AsyncPgConnection,
    strategies: &[Uuid],
    sequence: Option<i64>,
    listing: Uuid,
    trigger_event: Option<&str>,
) -> Result<Vec<Uuid>, DatabaseError> {
    let mut query = decisions::table
        .filter(decisions::strategy_id.eq_any(strategies))
        .select(decisions::strategy_id)
        .distinct()
        .into_boxed();
    if let Some(sequence) = sequence {
        query = query.filter(decisions::event_sequence.eq(sequence));
    }
    if let Some(event) = trigger_event {
        query = query.filter(decisions::listing_id.eq(listing)).filter(decisions::trigger_event.eq(event));
    }
    Ok(query.load(conn).await?)
}

/// Which strategies decided on which of the listing events `sequences` before (a replay), as
/// `(sequence, strategy)` pairs.
pub async fn decided_on_events(
    conn: &mut AsyncPgConnection,
    sequences: &[i64],
) -> Result<Vec<(i64, Uuid)>, DatabaseError> {
    if sequences.is_empty() {
        return Ok(Vec::new());
    }
    use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Pair {
        #[diesel(sql_type = BigInt)]
        event_sequence: i64,
        #[diesel(sql_type = SqlUuid)]
        strategy_id: Uuid,
    }
    let pairs: Vec<Pair> =
        diesel::sql_query("SELECT event_sequence, strategy_id FROM decisions WHERE event_sequence = ANY($1)")
            .bind::<Array<BigInt>, _>(sequences)
            .load(conn)
            .await?;
    Ok(pairs.into_iter().map(|p| (p.event_sequence, p.strategy_id)).collect())
}

/// The run that gathers one user's decisions on listing events in the hour (UTC) `hour` falls
/// in: the same id for the same user and hour, on every replica.
pub fn listing_run(user: Uuid, hour: DateTime<Utc>) -> Uuid {
    const RUNS: Uuid = Uuid::from_u128(0x6c69_7374_696e_6773_2d72_756e_732d_7631);
    Uuid::new_v5(&RUNS, format!("{user}/{}", hour.format("%Y-%m-%dT%H")).as_bytes())
}

/// What a batch of listing events did to one user's run of the hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunShare {
    /// The run (`listing_run`).
    pub run: Uuid,
    /// The user.
    pub user: Uuid,
    /// Listings looked at for the user.
    pub listings: i32,
    /// Why the batch could not be finished for the user, if it could not.
    pub failure: Option<String>,
}

/// Records a batch of listing events' decisions in the caller's transaction: their users' runs
/// of the hour (started at their first batch, and counted on as decisions come), the decisions
/// (except those a replay had made before), and the stream's cursor when `cursor` is given. A
/// user's run that a batch could not finish is failed with its reason. How many decisions were
/// recorded.
pub async fn record_listing_decisions(
    conn: &mut AsyncPgConnection,
    shares: &[RunShare],
    decisions: &[Decision],
    cursor: Option<(&str, i64)>,
) -> Result<usize, DatabaseError> {
    use diesel::sql_types::{Array, Int4, Nullable, Text, Uuid as SqlUuid};
    if !shares.is_empty() {
        let now = Utc::now();
        let rows: Vec<_> = shares
            .iter()
            .map(|share| {
                (
                    agent_runs::id.eq(share.run),
                    agent_runs::user_id.eq(share.user),
                    agent_runs::trigger.eq(RunTrigger::ListingEvent),
                    agent_runs::state.eq(RunState::Succeeded),
                    agent_runs::ended_at.eq(Some(now)),
                )
            })
            .collect();
        diesel::insert_into(agent_runs::table).values(rows).on_conflict_do_nothing().execute(conn).await?;
    }
    // A statement holds at most 65,535 parameters: 21 a decision.
    let mut recorded: HashMap<Uuid, (i32, i32)> = HashMap::new();
    for chunk in decisions.chunks(3_000) {
        let rows: Vec<(Uuid, DecisionOutcome)> = diesel::insert_into(decisions::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .returning((decisions::run_id, decisions::outcome))
            .get_results(conn)
            .await?;
        for (run, outcome) in rows {
            let counts = recorded.entry(run).or_default();
            counts.0 += 1;
            counts.1 += i32::from(outcome == DecisionOutcome::Buy);
        }
    }
    if !shares.is_empty() {
        let runs: Vec<Uuid> = shares.iter().map(|s| s.run).collect();
        let decided: Vec<i32> = shares.iter().map(|s| recorded.get(&s.run).map_or(0, |c| c.0)).collect();
        let bought: Vec<i32> = shares.iter().map(|s| recorded.get(&s.run).map_or(0, |c| c.1)).collect();
        let listings: Vec<i32> = shares.iter().map(|s| s.listings).collect();
        let failures: Vec<Option<String>> = shares.iter().map(|s| s.failure.clone()).collect();
        diesel::sql_query(
            "UPDATE agent_runs r SET decision_count = r.decision_count + c.decided, \
                    purchase_count = r.purchase_count + c.bought, \
                    listings_evaluated = r.listings_evaluated + c.listings, ended_at = now(), \
                    state = CASE WHEN c.failure IS NULL THEN r.state ELSE 'failed' END, \
                    failure_reason = coalesce(c.failure, r.failure_reason) \
               FROM unnest($1, $2, $3, $4, $5) AS c(id, decided, bought, listings, failure) \
              WHERE r.id = c.id",
        )
        .bind::<Array<SqlUuid>, _>(runs)
        .bind::<Array<Int4>, _>(decided)
        .bind::<Array<Int4>, _>(bought)
        .bind::<Array<Int4>, _>(listings)
        .bind::<Array<Nullable<Text>>, _>(failures)
        .execute(conn)
        .await?;
    }
    if let Some((stream, sequence)) = cursor {
        advance_cursor(conn, stream, sequence).await?;
    }
    Ok(recorded.values().map(|c| c.0 as usize).sum())
}

/// Starts a run under a key, unless the user started one under it before; `None` then.
pub async fn start_keyed_run(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user_id: Uuid,
    trigger: RunTrigger,
    key: &str,
) -> Result<Option<AgentRun>, DatabaseError> {
    Ok(diesel::insert_into(agent_runs::table)
        .values((
            agent_runs::id.eq(id),
            agent_runs::user_id.eq(user_id),
            agent_runs::trigger.eq(trigger),
            agent_runs::idempotency_key.eq(Some(key)),
        ))
        .on_conflict_do_nothing()
        .returning(AgentRun::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// The run a user started under a key.
pub async fn find_run_by_key(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
) -> Result<Option<AgentRun>, DatabaseError> {
    Ok(agent_runs::table
        .filter(agent_runs::user_id.eq(user_id))
        .filter(agent_runs::idempotency_key.eq(key))
        .select(AgentRun::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A user's automation: paused or not, why, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = agent_automation)]
pub struct Automation {
    /// The user.
    pub user_id: Uuid,
    /// True while paused.
    pub paused: bool,
    /// Why it was paused.
    pub reason: String,
    /// When it last changed.
    pub changed_at: DateTime<Utc>,
}

/// Pauses or resumes a user's automation.
pub async fn set_automation(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    paused: bool,
    reason: &str,
) -> Result<Automation, DatabaseError> {
    Ok(diesel::insert_into(agent_automation::table)
        .values((
            agent_automation::user_id.eq(user_id),
            agent_automation::paused.eq(paused),
            agent_automation::reason.eq(reason),
        ))
        .on_conflict(agent_automation::user_id)
        .do_update()
        .set((
            agent_automation::paused.eq(paused),
            agent_automation::reason.eq(reason),
            agent_automation::changed_at.eq(Utc::now()),
        ))
        .returning(Automation::as_returning())
        .get_result(conn)
        .await?)
}

/// A user's automation, if it was ever paused or resumed.
pub async fn automation(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<Automation>, DatabaseError> {
    Ok(agent_automation::table.find(user_id).select(Automation::as_select()).first(conn).await.optional()?)
}

/// Which of `users` have their automation paused.
pub async fn paused_users(conn: &mut AsyncPgConnection, users: &[Uuid]) -> Result<Vec<Uuid>, DatabaseError> {
    Ok(agent_automation::table
        .filter(agent_automation::user_id.eq_any(users))
        .filter(agent_automation::paused.eq(true))
        .select(agent_automation::user_id)
        .load(conn)
        .await?)
}

/// Takes a strategy's scan slot for a run; false when it was taken before.
pub async fn take_scan_slot(
    conn: &mut AsyncPgConnection,
    strategy_id: Uuid,
    slot: DateTime<Utc>,
    run_id: Uuid,
) -> Result<bool, DatabaseError> {
    let taken = diesel::insert_into(agent_scan_slots::table)
        .values((
            agent_scan_slots::strategy_id.eq(strategy_id),
            agent_scan_slots::slot.eq(slot),
            agent_scan_slots::run_id.eq(run_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(taken == 1)
}

/// Finds one of a user's decisions.
pub async fn find_decision(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Decision>, DatabaseError> {
    Ok(decisions::table
        .find(id)
        .filter(decisions::user_id.eq(user_id))
        .select(Decision::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The rule a decision that waited for approval names.
pub const MANUAL_APPROVAL: &str = "protections.manual_approval";

/// The rule of a decision that waits while its approval is being acted on (a claim): neither a
/// decline nor the expiry touches it meanwhile.
pub const APPROVING: &str = "protections.manual_approval:approving";

/// Claims a decision that waits for approval, before `now`'s deadline, for its approval; `None`
/// when it does not wait (or is claimed already, or expired).
pub async fn claim_approval(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Decision>, DatabaseError> {
    Ok(diesel::update(
        decisions::table
            .find(id)
            .filter(decisions::user_id.eq(user_id))
            .filter(decisions::outcome.eq(DecisionOutcome::AwaitingApproval))
            .filter(decisions::rule.eq(MANUAL_APPROVAL))
            .filter(decisions::approval_expires_at.gt(now)),
    )
    .set(decisions::rule.eq(APPROVING))
    .returning(Decision::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Gives a claimed decision back to its wait (its approval could not be acted on).
pub async fn release_approval(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), DatabaseError> {
    diesel::update(
        decisions::table
            .find(id)
            .filter(decisions::outcome.eq(DecisionOutcome::AwaitingApproval))
            .filter(decisions::rule.eq(APPROVING)),
    )
    .set(decisions::rule.eq(MANUAL_APPROVAL))
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends a decision that waits for approval, as `ended` says (its outcome, reason, rule, trade
/// and reasons): one claimed for its approval when `claimed`, else one that waits unclaimed (a
/// decline). `None` when it is not in that state.
pub async fn end_approval(
    conn: &mut AsyncPgConnection,
    ended: &Decision,
    claimed: bool,
) -> Result<Option<Decision>, DatabaseError> {
    let rule = if claimed { APPROVING } else { MANUAL_APPROVAL };
    Ok(diesel::update(
        decisions::table
            .find(ended.id)
            .filter(decisions::user_id.eq(ended.user_id))
            .filter(decisions::outcome.eq(DecisionOutcome::AwaitingApproval))
            .filter(decisions::rule.eq(rule)),
    )
    .set((
        decisions::outcome.eq(ended.outcome),
        decisions::reason_code.eq(&ended.reason_code),
        decisions::rule.eq(&ended.rule),
        decisions::reasons.eq(&ended.reasons),
        decisions::trade_id.eq(ended.trade_id),
        decisions::data_incomplete.eq(ended.data_incomplete),
    ))
    .returning(Decision::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Expires the decisions whose approval did not come by `now`: each is skipped with the reason
/// `approval_expired`. One claimed for its approval is left to it, unless its deadline passed
/// ten minutes ago (its approver stopped midway). The decisions expired.
pub async fn expire_approvals(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, DatabaseError> {
    use diesel::sql_types::Timestamptz;
    Ok(diesel::sql_query(
        "UPDATE decisions SET outcome = 'skip', reason_code = 'approval_expired', rule = 'protections.manual_approval', \
                reasons = array_prepend('Expired: the purchase was not approved by ' \
                    || to_char(approval_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC.', reasons) \
          WHERE outcome = 'awaiting_approval' AND approval_expires_at <= $1 \
            AND (rule = 'protections.manual_approval' OR approval_expires_at <= $1 - interval '10 minutes') \
          RETURNING *",
    )
    .bind::<Timestamptz, _>(now)
    .load::<Decision>(conn)
    .await?)
}

/// A user's decisions, newest first, optionally of one strategy or outcome.
pub async fn list_decisions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    strategy_id: Option<Uuid>,
    outcome: Option<DecisionOutcome>,
    page: PageRequest,
) -> Result<Page<Decision>, DatabaseError> {
    list_decisions_by(conn, user_id, DecisionFilter { strategy_id, outcome, ..DecisionFilter::default() }, page).await
}

/// What decisions to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionFilter {
    /// Only this strategy's.
    pub strategy_id: Option<Uuid>,
    /// Only this run's.
    pub run_id: Option<Uuid>,
    /// Only about this moment.
    pub moment_id: Option<Uuid>,
    /// Only with this outcome.
    pub outcome: Option<DecisionOutcome>,
}

/// A user's decisions, newest first, filtered.
pub async fn list_decisions_by(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    filter: DecisionFilter,
    page: PageRequest,
) -> Result<Page<Decision>, DatabaseError> {
    let DecisionFilter { strategy_id, run_id, moment_id, outcome } = filter;
    let mut query = decisions::table
        .filter(decisions::user_id.eq(user_id))
        .select(Decision::as_select())
        .order((decisions::created_at.desc(), decisions::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(strategy) = strategy_id {
        query = query.filter(decisions::strategy_id.eq(strategy));
    }
    if let Some(outcome) = outcome {
        query = query.filter(decisions::outcome.eq(outcome));
    }
    if let Some(run) = run_id {
        query = query.filter(decisions::run_id.eq(run));
    }
    if let Some(moment) = moment_id {
        query = query.filter(decisions::moment_id.eq(moment));
    }
    if let Some(after) = page.after {
        query = query.filter(
            decisions::created_at
                .lt(after.time)
                .or(decisions::created_at.eq(after.time).and(decisions::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |d| Cursor { time: d.created_at, id: d.id }))
}

/// Every stream cursor: (stream, sequence, when it last moved).
pub async fn cursors(conn: &mut AsyncPgConnection) -> Result<Vec<(String, i64, DateTime<Utc>)>, DatabaseError> {
    Ok(agent_cursors::table
        .select((agent_cursors::stream, agent_cursors::sequence, agent_cursors::updated_at))
        .order(agent_cursors::stream)
        .load(conn)
        .await?)
}

/// How many runs started since `since`, by trigger and state.
pub async fn run_counts_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<(RunTrigger, RunState, i64)>, DatabaseError> {
    use diesel::dsl::count_star;
    Ok(agent_runs::table
        .filter(agent_runs::started_at.ge(since))
        .group_by((agent_runs::trigger, agent_runs::state))
        .select((agent_runs::trigger, agent_runs::state, count_star()))
        .order((agent_runs::trigger, agent_runs::state))
        .load(conn)
        .await?)
}

/// The latest failed runs of every user, newest first.
pub async fn recent_failures(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<AgentRun>, DatabaseError> {
    Ok(agent_runs::table
        .filter(agent_runs::state.eq(RunState::Failed))
        .order(agent_runs::started_at.desc())
        .limit(limit)
        .select(AgentRun::as_select())
        .load(conn)
        .await?)
}

/// How many users paused their automation.
pub async fn paused_count(conn: &mut AsyncPgConnection) -> Result<i64, DatabaseError> {
    Ok(agent_automation::table.filter(agent_automation::paused.eq(true)).count().get_result(conn).await?)
}

/// A backtest as it is kept, without its report.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = backtests)]
pub struct Backtest {
    /// Id.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// Where it stands.
    pub state: BacktestState,
    /// The strategies backtested, in the order asked.
    pub strategy_ids: Vec<Uuid>,
    /// The season's seed (its bits).
    pub seed: i64,
    /// Simulated days asked for.
    pub days: i32,
    /// Each ledger's starting cash.
    pub starting_cents: i64,
    /// Days a moment is held; 0 to the end.
    pub hold_days: i32,
    /// Simulated days replayed so far.
    pub days_done: i32,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How long a backtest may stay running before it counts as interrupted (the replica running
/// it stopped): well past the longest run its bounds allow.
pub const BACKTEST_ABANDONED_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// Stores a new running backtest; `false` when one of the user's is running already.
pub async fn start_backtest(conn: &mut AsyncPgConnection, backtest: &Backtest) -> Result<bool, DatabaseError> {
    fail_abandoned_backtests(conn, backtest.user_id, backtest.created_at).await?;
    let added = diesel::insert_into(backtests::table).values(backtest).on_conflict_do_nothing().execute(conn).await?;
    Ok(added == 1)
}

/// Fails the user's backtests still running long after they started (their replica stopped).
async fn fail_abandoned_backtests(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<usize, DatabaseError> {
    Ok(diesel::update(
        backtests::table
            .filter(backtests::user_id.eq(user))
            .filter(backtests::state.eq(BacktestState::Running))
            .filter(backtests::created_at.lt(now - BACKTEST_ABANDONED_AFTER)),
    )
    .set((
        backtests::state.eq(BacktestState::Failed),
        backtests::failure_reason.eq("the backtest was interrupted (the agents stopped while it ran)"),
        backtests::finished_at.eq(now),
    ))
    .execute(conn)
    .await?)
}

/// Records how far a running backtest has got; `false` when it no longer runs (cancelled).
pub async fn backtest_progress(conn: &mut AsyncPgConnection, id: Uuid, days_done: i32) -> Result<bool, DatabaseError> {
    let updated = diesel::update(backtests::table.find(id).filter(backtests::state.eq(BacktestState::Running)))
        .set(backtests::days_done.eq(days_done))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Cancels one of the user's running backtests (its replay stops at its next progress): the
/// backtest as it now stands, and whether this call cancelled it (`false`: it had ended
/// before); `None` when the user has no such backtest.
pub async fn cancel_backtest(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(Backtest, bool)>, DatabaseError> {
    // One interrupted long ago failed; it is not cancelled now.
    fail_abandoned_backtests(conn, user, now).await?;
    let mine = backtests::table.filter(backtests::id.eq(id)).filter(backtests::user_id.eq(user));
    let cancelled: Option<Backtest> = diesel::update(mine.filter(backtests::state.eq(BacktestState::Running)))
        .set((
            backtests::state.eq(BacktestState::Cancelled),
            backtests::failure_reason.eq(format!("cancelled by you at {}", now.format("%Y-%m-%d %H:%M:%S UTC"))),
            backtests::finished_at.eq(now),
        ))
        .returning(Backtest::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match cancelled {
        Some(backtest) => Ok(Some((backtest, true))),
        None => Ok(mine.select(Backtest::as_select()).first(conn).await.optional()?.map(|b| (b, false))),
    }
}

/// Ends a running backtest: succeeded with its report and chart, or failed with the reason.
pub async fn finish_backtest(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    result: Result<(serde_json::Value, String), String>,
    now: DateTime<Utc>,
) -> Result<(), DatabaseError> {
    let target = backtests::table.find(id).filter(backtests::state.eq(BacktestState::Running));
    match result {
        Ok((report, chart)) => {
            diesel::update(target)
                .set((
                    backtests::state.eq(BacktestState::Succeeded),
                    backtests::days_done.eq(backtests::days),
                    backtests::report.eq(report),
                    backtests::chart_svg.eq(chart),
                    backtests::finished_at.eq(now),
                ))
                .execute(conn)
                .await?
        }
        Err(reason) => {
            diesel::update(target)
                .set((
                    backtests::state.eq(BacktestState::Failed),
                    backtests::failure_reason.eq(reason),
                    backtests::finished_at.eq(now),
                ))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// One of the user's backtests with its report and, `with_chart`, its chart (once it
/// succeeded).
pub async fn find_backtest(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    id: Uuid,
    with_chart: bool,
) -> Result<Option<(Backtest, Option<serde_json::Value>, Option<String>)>, DatabaseError> {
    // The chart is read only when it is wanted.
    let find = || {
        let chart = diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(if with_chart {
            "chart_svg"
        } else {
            "NULL::text"
        });
        backtests::table.filter(backtests::id.eq(id)).filter(backtests::user_id.eq(user)).select((
            Backtest::as_select(),
            backtests::report,
            chart,
        ))
    };
    let found: Option<(Backtest, _, _)> = find().first(conn).await.optional()?;
    let now = Utc::now();
    if found.as_ref().is_some_and(|(b, _, _)| abandoned(b, now)) {
        fail_abandoned_backtests(conn, user, now).await?;
        return Ok(find().first(conn).await.optional()?);
    }
    Ok(found)
}

/// Whether a backtest still shown running was interrupted: it started too long ago.
fn abandoned(backtest: &Backtest, now: DateTime<Utc>) -> bool {
    backtest.state == BacktestState::Running && backtest.created_at < now - BACKTEST_ABANDONED_AFTER
}

/// The user's backtests, newest first, without their reports.
pub async fn list_backtests(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    page: PageRequest,
) -> Result<Page<Backtest>, DatabaseError> {
    let now = Utc::now();
    let listed = list_backtests_once(conn, user, page).await?;
    if !listed.items.iter().any(|b| abandoned(b, now)) {
        return Ok(listed);
    }
    fail_abandoned_backtests(conn, user, now).await?;
    list_backtests_once(conn, user, page).await
}

async fn list_backtests_once(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    page: PageRequest,
) -> Result<Page<Backtest>, DatabaseError> {
    let mut query = backtests::table
        .filter(backtests::user_id.eq(user))
        .select(Backtest::as_select())
        .order((backtests::created_at.desc(), backtests::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(
            backtests::created_at
                .lt(after.time)
                .or(backtests::created_at.eq(after.time).and(backtests::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |r| Cursor { time: r.created_at, id: r.id }))
}
