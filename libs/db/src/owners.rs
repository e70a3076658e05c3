//! Who owns each table: the one place that says it. A service's `store` queries only the
//! tables its service owns; what it needs of another service's data comes through that
//! service's RPCs or event streams. The architecture test (`integration-tests/tests/house.rs`)
//! reads every source file of each service crate and fails when one names a table of another,
//! and when a table of the schema is missing here.

/// The owner of the outbox: the mechanism in [`crate::outbox`], not a service. Each topic is
/// written by one service and delivered by one (see the topics in [`crate::outbox`]).
pub const OUTBOX: &str = "outbox";

/// Every table of the schema, with the service (target name) that owns it.
pub const TABLES: &[(&str, &str)] = &[
    // user
    ("users", "user"),
    ("wallets", "user"),
    ("access_tokens", "user"),
    ("sign_in_failures", "user"),
    // strategy
    ("strategy_templates", "strategy"),
    ("strategies", "strategy"),
    ("strategy_revision", "strategy"),
    ("strategy_performance", "strategy"),
    ("strategy_outcomes", "strategy"),
    // risk
    ("budget_limits", "risk"),
    ("budget_limit_changes", "risk"),
    ("holds", "risk"),
    ("spending", "risk"),
    ("emergency_stops", "risk"),
    ("emergency_stop_events", "risk"),
    ("risk_states", "risk"),
    ("risk_alerts", "risk"),
    // scouting
    ("player_game_stats", "scouting"),
    ("game_events", "scouting"),
    ("valuations", "scouting"),
    ("valuation_factors", "scouting"),
    ("scouting_players", "scouting"),
    ("scouting_moments", "scouting"),
    ("scouting_listings", "scouting"),
    ("scouting_sales", "scouting"),
    // marketplace
    ("market_sources", "marketplace"),
    ("players", "marketplace"),
    ("moments", "marketplace"),
    ("listings", "marketplace"),
    ("listing_events", "marketplace"),
    ("sales", "marketplace"),
    ("price_points", "marketplace"),
    ("feed_positions", "marketplace"),
    // trading
    ("ledger_accounts", "trading"),
    ("ledger_transactions", "trading"),
    ("ledger_entries", "trading"),
    ("trades", "trading"),
    ("holdings", "trading"),
    ("equity_snapshots", "trading"),
    ("leaderboard_entries", "trading"),
    ("idempotency_keys", "trading"),
    // notification
    ("notifications", "notification"),
    ("notification_preferences", "notification"),
    ("deliveries", "notification"),
    ("delivery_attempts", "notification"),
    ("system_alerts", "notification"),
    // agents
    ("agent_runs", "agents"),
    ("decisions", "agents"),
    ("agent_scan_slots", "agents"),
    ("backtests", "agents"),
    ("agent_automation", "agents"),
    ("agent_cursors", "agents"),
    // the outbox mechanism
    ("outbox", OUTBOX),
];

/// The owner of a table, if the schema has it.
pub fn owner_of(table: &str) -> Option<&'static str> {
    TABLES.iter().find(|(name, _)| *name == table).map(|(_, owner)| *owner)
}

/// The tables a service owns.
pub fn tables_of(service: &str) -> impl Iterator<Item = &'static str> + '_ {
    TABLES.iter().filter(move |(_, owner)| *owner == service).map(|(name, _)| *name)
}
