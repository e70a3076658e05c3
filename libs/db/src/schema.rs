//! The diesel schema, matching the migrations (checked against a migrated database by the
//! `schema_matches_the_database` test).
#![allow(missing_docs)]

diesel::table! {
    users (id) {
        id -> Uuid,
        display_name -> Text,
        email -> Text,
        password_hash -> Text,
        leaderboard_opt_out -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    wallets (user_id) {
        user_id -> Uuid,
        flow_address -> Text,
        connected -> Bool,
        registered_at -> Timestamptz,
        state_changed_at -> Timestamptz,
    }
}

diesel::table! {
    access_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_hash -> Text,
        label -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    strategy_templates (id) {
        id -> Text,
        display_name -> Text,
        description -> Text,
        kind -> Text,
        parameters -> Jsonb,
        min_confidence -> Float8,
        min_discount_bps -> Int4,
        max_price_cents -> Int8,
        max_purchases_per_day -> Int4,
    }
}

diesel::table! {
    strategies (id) {
        id -> Uuid,
        user_id -> Uuid,
        display_name -> Text,
        kind -> Text,
        state -> Text,
        parameters -> Jsonb,
        min_confidence -> Float8,
        min_discount_bps -> Int4,
        max_price_cents -> Int8,
        max_purchases_per_day -> Int4,
        template_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        priority -> Int4,
        scan_time -> Nullable<Text>,
        scan_time_zone -> Nullable<Text>,
        protections -> Jsonb,
        protections_reset_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    strategy_revision (id) {
        id -> Bool,
        revision -> Int8,
    }
}

diesel::table! {
    strategy_performance (strategy_id) {
        strategy_id -> Uuid,
        purchase_count -> Int8,
        sale_count -> Int8,
        spent_cents -> Int8,
        proceeds_cents -> Int8,
        realized_pnl_cents -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    strategy_outcomes (strategy_id, trade_id) {
        strategy_id -> Uuid,
        trade_id -> Uuid,
        spent_cents -> Int8,
        proceeds_cents -> Int8,
        realized_pnl_cents -> Int8,
        recorded_at -> Timestamptz,
        moment_id -> Nullable<Uuid>,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    budget_limits (user_id) {
        user_id -> Uuid,
        daily_cents -> Nullable<Int8>,
        weekly_cents -> Nullable<Int8>,
        monthly_cents -> Nullable<Int8>,
        total_cents -> Nullable<Int8>,
        per_moment_cents -> Nullable<Int8>,
        reserve_cents -> Nullable<Int8>,
        effective_at -> Timestamptz,
        emergency_threshold_cents -> Nullable<Int8>,
        time_zone -> Text,
    }
}

diesel::table! {
    budget_limit_changes (id) {
        id -> Uuid,
        user_id -> Uuid,
        daily_cents -> Nullable<Int8>,
        weekly_cents -> Nullable<Int8>,
        monthly_cents -> Nullable<Int8>,
        total_cents -> Nullable<Int8>,
        per_moment_cents -> Nullable<Int8>,
        reserve_cents -> Nullable<Int8>,
        state -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        emergency_threshold_cents -> Nullable<Int8>,
        time_zone -> Text,
    }
}

diesel::table! {
    holds (id) {
        id -> Uuid,
        user_id -> Uuid,
        amount_cents -> Int8,
        moment_id -> Uuid,
        idempotency_key -> Text,
        state -> Text,
        created_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        release_reason -> Nullable<Text>,
        expires_at -> Timestamptz,
        origin -> Text,
    }
}

diesel::table! {
    spending (hold_id) {
        hold_id -> Uuid,
        user_id -> Uuid,
        amount_cents -> Int8,
        spent_at -> Timestamptz,
    }
}

diesel::table! {
    emergency_stops (user_id) {
        user_id -> Uuid,
        engaged -> Bool,
        reason -> Text,
        engaged_at -> Nullable<Timestamptz>,
        released_at -> Nullable<Timestamptz>,
        engaged_by -> Nullable<Text>,
        released_by -> Nullable<Text>,
    }
}

diesel::table! {
    emergency_stop_events (id) {
        id -> Int8,
        user_id -> Uuid,
        action -> Text,
        actor -> Text,
        reason -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    risk_states (user_id) {
        user_id -> Uuid,
        consecutive_refusals -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    risk_alerts (id) {
        id -> Uuid,
        user_id -> Uuid,
        severity -> Text,
        kind -> Text,
        limit_name -> Nullable<Text>,
        message -> Text,
        created_at -> Timestamptz,
        acknowledged_at -> Nullable<Timestamptz>,
        dedup_key -> Nullable<Text>,
        notified_at -> Nullable<Timestamptz>,
        notify_attempts -> Int4,
        next_notify_at -> Timestamptz,
    }
}

diesel::table! {
    players (id) {
        id -> Text,
        full_name -> Text,
        team_code -> Text,
        position -> Text,
        seasons_played -> Int4,
        jersey_number -> Nullable<Int4>,
    }
}

diesel::table! {
    player_game_stats (game_id, player_id) {
        game_id -> Text,
        player_id -> Text,
        game_at -> Timestamptz,
        opponent_code -> Text,
        minutes -> Int4,
        points -> Int4,
        rebounds -> Int4,
        assists -> Int4,
        steals -> Int4,
        blocks -> Int4,
        turnovers -> Int4,
    }
}

diesel::table! {
    game_events (id) {
        id -> Text,
        game_id -> Text,
        player_id -> Text,
        is_final -> Bool,
        highlights -> Array<Text>,
        occurred_at -> Timestamptz,
        ingested_at -> Timestamptz,
        sequence -> Int8,
    }
}

diesel::table! {
    market_sources (id) {
        id -> Text,
        display_name -> Text,
        fee_bps -> Int4,
        enabled -> Bool,
        healthy -> Bool,
        last_error -> Text,
        last_success_at -> Nullable<Timestamptz>,
        lag_blocks -> Nullable<Int8>,
        lag_seconds -> Nullable<Int8>,
    }
}

diesel::table! {
    moments (id) {
        id -> Uuid,
        player_id -> Text,
        set_name -> Text,
        play_category -> Text,
        play_at -> Timestamptz,
        rarity -> Text,
        serial_number -> Int4,
        edition_size -> Int4,
        owner_address -> Text,
    }
}

diesel::table! {
    listings (id) {
        id -> Uuid,
        moment_id -> Uuid,
        source_id -> Text,
        price_cents -> Int8,
        seller_address -> Text,
        state -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        idempotency_key -> Nullable<Text>,
    }
}

diesel::table! {
    listing_events (sequence) {
        sequence -> Int8,
        kind -> Text,
        listing_id -> Uuid,
        price_cents -> Int8,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    sales (id) {
        id -> Uuid,
        moment_id -> Uuid,
        listing_id -> Nullable<Uuid>,
        source_id -> Text,
        price_cents -> Int8,
        seller_address -> Text,
        buyer_address -> Text,
        sold_at -> Timestamptz,
    }
}

diesel::table! {
    price_points (moment_id, day) {
        moment_id -> Uuid,
        day -> Date,
        open_cents -> Int8,
        high_cents -> Int8,
        low_cents -> Int8,
        close_cents -> Int8,
        sale_count -> Int8,
    }
}

diesel::table! {
    scouting_players (id) {
        id -> Text,
        full_name -> Text,
        team_code -> Text,
        position -> Text,
        seasons_played -> Int4,
        jersey_number -> Nullable<Int4>,
    }
}

diesel::table! {
    scouting_moments (id) {
        id -> Uuid,
        player_id -> Text,
        set_name -> Text,
        play_category -> Text,
        play_at -> Timestamptz,
        rarity -> Text,
        serial_number -> Int4,
    }
}

diesel::table! {
    scouting_listings (id) {
        id -> Uuid,
        moment_id -> Uuid,
        price_cents -> Int8,
        active -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    scouting_sales (id) {
        id -> Uuid,
        moment_id -> Uuid,
        price_cents -> Int8,
        sold_at -> Timestamptz,
    }
}

diesel::table! {
    valuations (id) {
        id -> Uuid,
        moment_id -> Uuid,
        fair_value_cents -> Int8,
        confidence -> Float8,
        recommendation -> Text,
        risk_score -> Float8,
        price_cents -> Nullable<Int8>,
        discount_bps -> Nullable<Int4>,
        model_version -> Text,
        computed_at -> Timestamptz,
        valued_at -> Timestamptz,
    }
}

diesel::table! {
    valuation_factors (valuation_id, rank) {
        valuation_id -> Uuid,
        rank -> Int4,
        name -> Text,
        weight -> Float8,
        impact_cents -> Int8,
        explanation -> Text,
    }
}

diesel::table! {
    ledger_accounts (id) {
        id -> Uuid,
        kind -> Text,
        user_id -> Nullable<Uuid>,
        balance_cents -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Uuid,
        kind -> Text,
        description -> Text,
        created_at -> Timestamptz,
        hash -> Text,
    }
}

diesel::table! {
    ledger_entries (id) {
        id -> Int8,
        transaction_id -> Uuid,
        account_id -> Uuid,
        amount_cents -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    trades (id) {
        id -> Uuid,
        user_id -> Uuid,
        kind -> Text,
        state -> Text,
        origin -> Text,
        moment_id -> Uuid,
        listing_id -> Nullable<Uuid>,
        price_cents -> Int8,
        fee_cents -> Int8,
        strategy_id -> Nullable<Uuid>,
        decision_id -> Nullable<Uuid>,
        reasoning -> Array<Text>,
        idempotency_key -> Text,
        hold_id -> Nullable<Uuid>,
        ledger_transaction_id -> Nullable<Uuid>,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
        valuation_id -> Nullable<Uuid>,
        factors -> Jsonb,
        expected_value_cents -> Int8,
        source_id -> Text,
        buyer_address -> Text,
        max_price_cents -> Int8,
        relist_source_id -> Text,
        relist_price_cents -> Int8,
        request_hash -> Text,
        failure_code -> Nullable<Int4>,
        failure_details -> Nullable<Jsonb>,
        realized_pnl_cents -> Int8,
    }
}

diesel::table! {
    holdings (moment_id) {
        moment_id -> Uuid,
        user_id -> Uuid,
        cost_cents -> Int8,
        trade_id -> Nullable<Uuid>,
        acquired_at -> Timestamptz,
        listing_id -> Nullable<Uuid>,
        value_cents -> Nullable<Int8>,
        valued_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    equity_snapshots (user_id, taken_at) {
        user_id -> Uuid,
        taken_at -> Timestamptz,
        equity_cents -> Int8,
        deposits_cents -> Int8,
    }
}

diesel::table! {
    leaderboard_entries (metric, period, rank) {
        metric -> Text,
        period -> Text,
        rank -> Int4,
        user_id -> Uuid,
        alias -> Text,
        value -> Int8,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        operation -> Text,
        request_hash -> Text,
        response -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        user_id -> Uuid,
        category -> Text,
        priority -> Text,
        title -> Text,
        body -> Text,
        idempotency_key -> Text,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
        links -> Jsonb,
    }
}

diesel::table! {
    notification_preferences (user_id) {
        user_id -> Uuid,
        webhook_min_priority -> Text,
        webhook_url -> Nullable<Text>,
        muted_categories -> Array<Text>,
        webhook_secret -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Uuid,
        notification_id -> Nullable<Uuid>,
        state -> Text,
        attempt_count -> Int4,
        last_http_status -> Int4,
        last_error -> Text,
        next_attempt_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        system_alert_id -> Nullable<Uuid>,
        url -> Text,
        lease_owner -> Nullable<Uuid>,
        lease_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    delivery_attempts (delivery_id, attempt) {
        delivery_id -> Uuid,
        attempt -> Int4,
        http_status -> Int4,
        error -> Text,
        started_at -> Timestamptz,
        duration_ms -> Int4,
    }
}

diesel::table! {
    sign_in_failures (email_key) {
        email_key -> Text,
        failures -> Int4,
        window_started_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    system_alerts (id) {
        id -> Uuid,
        severity -> Text,
        source -> Text,
        message -> Text,
        correlation_id -> Text,
        created_at -> Timestamptz,
        dedup_key -> Nullable<Text>,
    }
}

diesel::table! {
    backtests (id) {
        id -> Uuid,
        user_id -> Uuid,
        state -> Text,
        strategy_ids -> Array<Uuid>,
        seed -> Int8,
        days -> Int4,
        starting_cents -> Int8,
        hold_days -> Int4,
        days_done -> Int4,
        report -> Nullable<Jsonb>,
        chart_svg -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    agent_runs (id) {
        id -> Uuid,
        user_id -> Uuid,
        trigger -> Text,
        state -> Text,
        listings_evaluated -> Int4,
        decision_count -> Int4,
        purchase_count -> Int4,
        attempt_count -> Int4,
        failure_reason -> Nullable<Text>,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        idempotency_key -> Nullable<Text>,
        trigger_event -> Nullable<Text>,
    }
}

diesel::table! {
    decisions (id) {
        id -> Uuid,
        run_id -> Uuid,
        user_id -> Uuid,
        strategy_id -> Uuid,
        listing_id -> Uuid,
        moment_id -> Uuid,
        outcome -> Text,
        reasons -> Array<Text>,
        price_cents -> Int8,
        fair_value_cents -> Int8,
        confidence -> Float8,
        trade_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        reason_code -> Text,
        rule -> Text,
        valuation_id -> Nullable<Uuid>,
        factors -> Jsonb,
        data_incomplete -> Bool,
        event_sequence -> Nullable<Int8>,
        trigger_event -> Nullable<Text>,
        approval_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    agent_scan_slots (strategy_id, slot) {
        strategy_id -> Uuid,
        slot -> Timestamptz,
        run_id -> Uuid,
        taken_at -> Timestamptz,
    }
}

diesel::table! {
    agent_automation (user_id) {
        user_id -> Uuid,
        paused -> Bool,
        reason -> Text,
        changed_at -> Timestamptz,
    }
}

diesel::table! {
    agent_cursors (stream) {
        stream -> Text,
        sequence -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    feed_positions (feed) {
        feed -> Text,
        position -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        topic -> Text,
        message_key -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        available_at -> Timestamptz,
        attempts -> Int4,
        last_error -> Text,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(wallets -> users (user_id));
diesel::joinable!(access_tokens -> users (user_id));
diesel::joinable!(strategies -> users (user_id));
diesel::joinable!(strategy_performance -> strategies (strategy_id));
diesel::joinable!(moments -> players (player_id));
diesel::joinable!(listings -> moments (moment_id));
diesel::joinable!(listing_events -> listings (listing_id));
diesel::joinable!(sales -> moments (moment_id));
diesel::joinable!(scouting_moments -> scouting_players (player_id));
diesel::joinable!(scouting_listings -> scouting_moments (moment_id));
diesel::joinable!(scouting_sales -> scouting_moments (moment_id));
diesel::joinable!(valuation_factors -> valuations (valuation_id));
diesel::joinable!(ledger_entries -> ledger_accounts (account_id));
diesel::joinable!(holdings -> moments (moment_id));
diesel::joinable!(decisions -> agent_runs (run_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::joinable!(deliveries -> notifications (notification_id));

/// Calls `$callback!(<args>, <every table>)`: the one list of the schema's tables.
#[macro_export]
macro_rules! for_all_tables {
    ($callback:ident $(, $arg:expr)*) => {
        $callback! {
            $($arg,)*
            users, wallets, access_tokens, strategy_templates, strategies, strategy_revision, strategy_performance,
            strategy_outcomes, budget_limits, budget_limit_changes, holds, spending,
            emergency_stops, emergency_stop_events, risk_states, risk_alerts, players, player_game_stats, game_events, scouting_players, scouting_moments, scouting_listings,
            scouting_sales, market_sources,
            moments, listings, listing_events, sales, price_points, valuations, valuation_factors, ledger_accounts,
            ledger_transactions, ledger_entries, trades, holdings, equity_snapshots, leaderboard_entries, idempotency_keys, notifications,
            notification_preferences, deliveries, delivery_attempts, system_alerts, agent_runs, decisions, agent_cursors, agent_automation, agent_scan_slots, backtests, feed_positions, outbox,
            sign_in_failures
        }
    };
}

use diesel::allow_tables_to_appear_in_same_query;
for_all_tables!(allow_tables_to_appear_in_same_query);
