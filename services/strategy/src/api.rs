//! The strategy service's RPCs: each converts its request into domain values, applies the
//! rule, and converts the answer back.

use std::sync::Arc;

use crate::store::{self as strategies, ActiveFilter, Strategy as StrategyRow, StrategyOutcome, StrategyState};
use chrono::Utc;
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_mesh::status::{Violations, timestamp};
use fastbreak_mesh::{caller, paging};
use fastbreak_proto::strategy::v1 as pb;
use fastbreak_proto::strategy::v1::strategy_internal_service_server::StrategyInternalService;
use fastbreak_proto::strategy::v1::strategy_service_server::StrategyService;
use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::convert::{self, apply_mask, kind_from_pb, rarity_from_pb, spec_from_pb, state_from_pb, strategy_to_pb};
use crate::domain::{self, StrategySpec};
use crate::error::StrategyError;

/// Both of the target's services, over one pool.
#[derive(Debug, Clone)]
pub struct StrategyApi {
    database: Arc<Database>,
}

impl StrategyApi {
    pub(crate) fn new(database: Database) -> Self {
        Self { database: Arc::new(database) }
    }

    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, StrategyError> {
        Ok(self.database.read(work).await?)
    }

    async fn find(&self, user_id: Uuid, strategy_id: Uuid) -> Result<StrategyRow, StrategyError> {
        self.read(|conn| strategies::find_strategy(conn, user_id, strategy_id).boxed())
            .await?
            .ok_or(StrategyError::Database(DatabaseError::NotFound("strategy")))
    }

    async fn set_state(&self, request: Request<String>, state: StrategyState) -> Result<pb::Strategy, Status> {
        let user_id = caller::user_id(&request)?;
        let id = fastbreak_mesh::status::required_uuid(request.get_ref(), "strategy_id")?;
        let current = self.find(user_id, id).await?;
        if current.state == state {
            return Err(StrategyError::AlreadyInState(state.as_str()).into());
        }
        let changed = self.read(|conn| strategies::set_strategy_state(conn, user_id, id, state).boxed()).await?;
        tracing::info!(%user_id, strategy_id = %id, state = state.as_str(), "strategy state changed");
        Ok(strategy_to_pb(changed).map_err(StrategyError::from)?)
    }
}

fn row_from_spec(spec: StrategySpec, base: StrategyRow) -> StrategyRow {
    StrategyRow {
        display_name: spec.display_name,
        kind: spec.parameters.kind(),
        parameters: spec.parameters.to_json(),
        min_confidence: spec.rules.min_confidence,
        min_discount_bps: spec.rules.min_discount_bps,
        max_price_cents: spec.rules.max_price_cents,
        max_purchases_per_day: spec.rules.max_purchases_per_day,
        priority: spec.priority,
        scan_time: spec.daily_scan.as_ref().map(|s| s.local_time.clone()),
        scan_time_zone: spec.daily_scan.map(|s| s.time_zone),
        protections: spec.protections.to_json(),
        ..base
    }
}

fn performance_to_pb(performance: strategies::StrategyPerformance) -> pb::StrategyPerformance {
    pb::StrategyPerformance {
        strategy_id: performance.strategy_id.to_string(),
        purchase_count: performance.purchase_count,
        sale_count: performance.sale_count,
        spent_cents: performance.spent_cents,
        proceeds_cents: performance.proceeds_cents,
        realized_pnl_cents: performance.realized_pnl_cents,
        roi_bps: domain::roi_bps(performance.realized_pnl_cents, performance.spent_cents),
        update_time: Some(timestamp(performance.updated_at)),
    }
}

fn page_of(rows: Vec<StrategyRow>) -> Result<Vec<pb::Strategy>, StrategyError> {
    rows.into_iter().map(|row| strategy_to_pb(row).map_err(StrategyError::from)).collect()
}

#[tonic::async_trait]
impl StrategyService for StrategyApi {
    async fn create_strategy(
        &self,
        request: Request<pb::CreateStrategyRequest>,
    ) -> Result<Response<pb::Strategy>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let Some(given) = request.strategy else {
            return Err(fastbreak_mesh::status::invalid_field("strategy", "is required"));
        };
        let spec = spec_from_pb(&given).map_err(Violations::into_status)?;
        let template_id = Some(given.template_id.trim().to_owned()).filter(|id| !id.is_empty());
        if let Some(template) = &template_id {
            let templates = self.read(|conn| strategies::list_templates(conn).boxed()).await?;
            if !templates.iter().any(|t| &t.id == template) {
                return Err(fastbreak_mesh::status::invalid_field("strategy.template_id", "names no template"));
            }
        }
        let now = Utc::now();
        let base = StrategyRow {
            id: Uuid::new_v4(),
            user_id,
            display_name: String::new(),
            kind: spec.parameters.kind(),
            state: StrategyState::Paused,
            parameters: serde_json::Value::Null,
            min_confidence: 0.0,
            min_discount_bps: 0,
            max_price_cents: 0,
            max_purchases_per_day: 0,
            template_id,
            created_at: now,
            updated_at: now,
            priority: domain::DEFAULT_PRIORITY,
            scan_time: None,
            scan_time_zone: None,
            protections: serde_json::json!({}),
            protections_reset_at: None,
        };
        let row = row_from_spec(spec, base);
        if request.validate_only {
            return Ok(Response::new(strategy_to_pb(row).map_err(StrategyError::from)?));
        }
        let created = self
            .database
            .transaction(|conn| {
                let row = row.clone();
                async move { strategies::create_strategy(conn, &row).await }.boxed()
            })
            .await
            .map_err(StrategyError::from)?;
        tracing::info!(%user_id, strategy_id = %created.id, kind = created.kind.as_str(), "strategy created");
        Ok(Response::new(strategy_to_pb(created).map_err(StrategyError::from)?))
    }

    async fn get_strategy(&self, request: Request<pb::GetStrategyRequest>) -> Result<Response<pb::Strategy>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = fastbreak_mesh::status::required_uuid(&request.get_ref().strategy_id, "strategy_id")?;
        let row = self.find(user_id, id).await?;
        Ok(Response::new(strategy_to_pb(row).map_err(StrategyError::from)?))
    }

    async fn list_strategies(
        &self,
        request: Request<pb::ListStrategiesRequest>,
    ) -> Result<Response<pb::ListStrategiesResponse>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = paging::page_request(request.page_size, &request.page_token, 50, 100, &mut violations);
        violations.check(pb::StrategyState::try_from(request.state).is_ok(), "state", "must be a strategy state");
        violations.check(pb::StrategyKind::try_from(request.kind).is_ok(), "kind", "must be a strategy kind");
        violations.into_result(())?;
        let (state, kind) = (state_from_pb(request.state), kind_from_pb(request.kind));
        let page = self.read(|conn| strategies::list_strategies(conn, user_id, state, kind, page).boxed()).await?;
        Ok(Response::new(pb::ListStrategiesResponse {
            strategies: page_of(page.items)?,
            next_page_token: paging::next_page_token(page.next),
        }))
    }

    async fn update_strategy(
        &self,
        request: Request<pb::UpdateStrategyRequest>,
    ) -> Result<Response<pb::Strategy>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let Some(given) = request.strategy else {
            return Err(fastbreak_mesh::status::invalid_field("strategy", "is required"));
        };
        let id = fastbreak_mesh::status::required_uuid(&given.strategy_id, "strategy.strategy_id")?;
        let current = self.find(user_id, id).await?;
        let current_pb = strategy_to_pb(current.clone()).map_err(StrategyError::from)?;
        let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
        let mut violations = Violations::new();
        let merged = apply_mask(&current_pb, &given, &paths, &mut violations);
        let spec = match spec_from_pb(&merged) {
            Ok(spec) if violations.is_empty() => spec,
            Ok(_) => return Err(violations.into_status()),
            Err(more) => {
                violations.nest_all(more);
                return Err(violations.into_status());
            }
        };
        let row = row_from_spec(spec, current);
        if request.validate_only {
            return Ok(Response::new(strategy_to_pb(row).map_err(StrategyError::from)?));
        }
        let updated = self
            .database
            .transaction(|conn| {
                let row = row.clone();
                async move { strategies::update_strategy(conn, &row).await }.boxed()
            })
            .await
            .map_err(|error| match error {
                // It was there a moment ago: another call changed or deleted it meanwhile.
                DatabaseError::NotFound(_) => StrategyError::ChangedMeanwhile,
                other => StrategyError::from(other),
            })?;
        tracing::info!(%user_id, strategy_id = %id, "strategy updated");
        Ok(Response::new(strategy_to_pb(updated).map_err(StrategyError::from)?))
    }

    async fn delete_strategy(
        &self,
        request: Request<pb::DeleteStrategyRequest>,
    ) -> Result<Response<pb::DeleteStrategyResponse>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = fastbreak_mesh::status::required_uuid(&request.get_ref().strategy_id, "strategy_id")?;
        let deleted = self.read(|conn| strategies::delete_strategy(conn, user_id, id).boxed()).await?;
        if !deleted {
            return Err(fastbreak_mesh::status::not_found("strategy"));
        }
        tracing::info!(%user_id, strategy_id = %id, "strategy deleted");
        Ok(Response::new(pb::DeleteStrategyResponse {}))
    }

    async fn activate_strategy(
        &self,
        request: Request<pb::ActivateStrategyRequest>,
    ) -> Result<Response<pb::Strategy>, Status> {
        let request = request.map(|r| r.strategy_id);
        Ok(Response::new(self.set_state(request, StrategyState::Active).await?))
    }

    async fn pause_strategy(
        &self,
        request: Request<pb::PauseStrategyRequest>,
    ) -> Result<Response<pb::Strategy>, Status> {
        let request = request.map(|r| r.strategy_id);
        Ok(Response::new(self.set_state(request, StrategyState::Paused).await?))
    }

    async fn list_strategy_templates(
        &self,
        request: Request<pb::ListStrategyTemplatesRequest>,
    ) -> Result<Response<pb::ListStrategyTemplatesResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = paging::page_size(request.page_size, 50, 100, &mut violations);
        let start = paging::decode_key(&request.page_token, &mut violations);
        violations.into_result(())?;
        let templates = self.read(|conn| strategies::list_templates(conn).boxed()).await?;
        let rest: Vec<_> = templates.into_iter().filter(|t| start.as_ref().is_none_or(|after| &t.id > after)).collect();
        let size = usize::try_from(size).unwrap_or(50);
        let next_page_token = if rest.len() > size { paging::encode_key(&rest[size - 1].id) } else { String::new() };
        let templates = rest
            .into_iter()
            .take(size)
            .map(|t| convert::template_to_pb(t).map_err(StrategyError::from))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListStrategyTemplatesResponse { templates, next_page_token }))
    }

    async fn get_strategy_performance(
        &self,
        request: Request<pb::GetStrategyPerformanceRequest>,
    ) -> Result<Response<pb::StrategyPerformance>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = fastbreak_mesh::status::required_uuid(&request.get_ref().strategy_id, "strategy_id")?;
        self.find(user_id, id).await?;
        let performance = self
            .read(|conn| strategies::find_performance(conn, id).boxed())
            .await?
            .ok_or(StrategyError::Database(DatabaseError::NotFound("strategy")))?;
        Ok(Response::new(performance_to_pb(performance)))
    }

    async fn reset_strategy_protections(
        &self,
        request: Request<pb::ResetStrategyProtectionsRequest>,
    ) -> Result<Response<pb::Strategy>, Status> {
        let user_id = caller::user_id(&request)?;
        let id = fastbreak_mesh::status::required_uuid(&request.get_ref().strategy_id, "strategy_id")?;
        let reset = self.read(|conn| strategies::reset_protections(conn, user_id, id).boxed()).await?;
        tracing::info!(%user_id, strategy_id = %id, "strategy protections reset");
        Ok(Response::new(strategy_to_pb(reset).map_err(StrategyError::from)?))
    }
}

#[tonic::async_trait]
impl StrategyInternalService for StrategyApi {
    async fn list_active_strategies(
        &self,
        request: Request<pb::ListActiveStrategiesRequest>,
    ) -> Result<Response<pb::ListActiveStrategiesResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = paging::page_size(request.page_size, 500, 1000, &mut violations);
        let after = paging::decode_id(&request.page_token, &mut violations);
        violations.check(pb::StrategyKind::try_from(request.kind).is_ok(), "kind", "must be a strategy kind");
        let rarity = rarity_from_pb(request.rarity);
        violations.check(rarity.is_some() || request.rarity == 0, "rarity", "must be a rarity");
        let player_id = Some(request.player_id.trim().to_owned()).filter(|p| !p.is_empty());
        violations.check(
            player_id.as_ref().is_none_or(|p| p.len() <= 64),
            "player_id",
            "must be at most 64 characters",
        );
        violations.into_result(())?;
        let filter = ActiveFilter { kind: kind_from_pb(request.kind), player_id, rarity };
        let rows = self
            .read(|conn| {
                async move { strategies::list_active_strategies(conn, &filter, size + 1, after).await }.boxed()
            })
            .await?;
        let more = rows.len() as i64 > size;
        let rows: Vec<StrategyRow> = rows.into_iter().take(size as usize).collect();
        let next_page_token =
            if more { rows.last().map(|r| paging::encode_id(r.id)).unwrap_or_default() } else { String::new() };
        Ok(Response::new(pb::ListActiveStrategiesResponse { strategies: page_of(rows)?, next_page_token }))
    }

    async fn get_strategies_revision(
        &self,
        _request: Request<pb::GetStrategiesRevisionRequest>,
    ) -> Result<Response<pb::StrategiesRevision>, Status> {
        let revision = self.read(|conn| strategies::revision(conn).boxed()).await?;
        Ok(Response::new(pb::StrategiesRevision { revision }))
    }

    async fn record_strategy_outcome(
        &self,
        request: Request<pb::RecordStrategyOutcomeRequest>,
    ) -> Result<Response<pb::StrategyPerformance>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let strategy_id = violations.uuid(&request.strategy_id, "strategy_id");
        let trade_id = violations.uuid(&request.trade_id, "trade_id");
        let amount = 0..=domain::MAX_TRADE_CENTS;
        violations.check(amount.contains(&request.spent_cents), "spent_cents", "must be between 0 and 10^12 cents");
        violations.check(
            amount.contains(&request.proceeds_cents),
            "proceeds_cents",
            "must be between 0 and 10^12 cents",
        );
        violations.check(
            request.realized_pnl_cents.unsigned_abs() <= domain::MAX_TRADE_CENTS.unsigned_abs(),
            "realized_pnl_cents",
            "must be between -10^12 and 10^12 cents",
        );
        violations.check(
            request.spent_cents > 0 || request.proceeds_cents > 0,
            "spent_cents",
            "a trade either spends (a purchase) or brings in (a sale)",
        );
        let moment_id = (!request.moment_id.is_empty()).then(|| violations.uuid(&request.moment_id, "moment_id"));
        let occurred_at =
            request.occur_time.map(|t| fastbreak_mesh::status::time_field(&t, "occur_time", &mut violations));
        let (strategy_id, trade_id) = violations.into_result((strategy_id, trade_id))?;
        let outcome = StrategyOutcome {
            strategy_id: strategy_id.unwrap_or_default(),
            trade_id: trade_id.unwrap_or_default(),
            spent_cents: request.spent_cents,
            proceeds_cents: request.proceeds_cents,
            realized_pnl_cents: request.realized_pnl_cents,
            moment_id: moment_id.flatten(),
            occurred_at: occurred_at.flatten().unwrap_or_else(Utc::now),
        };
        let performance = self
            .database
            .transaction(|conn| {
                let outcome = outcome.clone();
                async move { strategies::record_outcome(conn, &outcome).await }.boxed()
            })
            .await
            .map_err(StrategyError::from)?;
        Ok(Response::new(performance_to_pb(performance)))
    }

    async fn list_strategy_outcomes(
        &self,
        request: Request<pb::ListStrategyOutcomesRequest>,
    ) -> Result<Response<pb::ListStrategyOutcomesResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let strategy_id = violations.uuid(&request.strategy_id, "strategy_id");
        let since = match &request.since {
            Some(since) => fastbreak_mesh::status::time_field(since, "since", &mut violations),
            None => {
                violations.add("since", "is required");
                None
            }
        };
        let page = paging::page_request(request.page_size, &request.page_token, 1000, 1000, &mut violations);
        let (strategy_id, since) = violations.into_result((strategy_id, since))?;
        let (strategy_id, since) = (strategy_id.unwrap_or_default(), since.unwrap_or_default());
        let (outcomes, reset) =
            self.read(|conn| strategies::outcomes_since(conn, strategy_id, since, page).boxed()).await?;
        Ok(Response::new(pb::ListStrategyOutcomesResponse {
            next_page_token: paging::next_page_token(outcomes.next),
            outcomes: outcomes
                .items
                .into_iter()
                .map(|o| pb::StrategyOutcome {
                    trade_id: o.trade_id.to_string(),
                    moment_id: o.moment_id.map(|m| m.to_string()).unwrap_or_default(),
                    spent_cents: o.spent_cents,
                    proceeds_cents: o.proceeds_cents,
                    realized_pnl_cents: o.realized_pnl_cents,
                    occur_time: Some(timestamp(o.occurred_at)),
                })
                .collect(),
            protections_reset_time: reset.map(timestamp),
        }))
    }
}
