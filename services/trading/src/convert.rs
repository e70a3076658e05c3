//! Between the contract's messages and the trading service's rows, and between statuses and
//! what a failed trade keeps of them.

use std::collections::HashMap;

use crate::store::{Holding, Trade, TradeKind, TradeOrigin, TradeState};
use fastbreak_mesh::status::{self, timestamp};
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::trading::v1 as pb;
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub(crate) fn kind_to_pb(kind: TradeKind) -> pb::TradeKind {
    match kind {
        TradeKind::Purchase => pb::TradeKind::Purchase,
        TradeKind::SaleListing => pb::TradeKind::SaleListing,
        TradeKind::Sale => pb::TradeKind::Sale,
        TradeKind::Relist => pb::TradeKind::Relist,
    }
}

pub(crate) fn kind_from_pb(kind: pb::TradeKind) -> Option<TradeKind> {
    match kind {
        pb::TradeKind::Unspecified => None,
        pb::TradeKind::Purchase => Some(TradeKind::Purchase),
        pb::TradeKind::SaleListing => Some(TradeKind::SaleListing),
        pb::TradeKind::Sale => Some(TradeKind::Sale),
        pb::TradeKind::Relist => Some(TradeKind::Relist),
    }
}

/// A factor as the trade keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Factor {
    pub name: String,
    pub weight: f64,
    pub impact_cents: i64,
    pub explanation: String,
}

pub(crate) fn factors_to_json(factors: &[pb::ReasoningFactor]) -> serde_json::Value {
    let mut sorted: Vec<Factor> = factors
        .iter()
        .map(|f| Factor {
            name: f.name.clone(),
            weight: f.weight,
            impact_cents: f.impact_cents,
            explanation: f.explanation.clone(),
        })
        .collect();
    sorted.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    serde_json::to_value(sorted).unwrap_or_default()
}

fn factors_from_json(value: &serde_json::Value) -> Vec<pb::ReasoningFactor> {
    serde_json::from_value::<Vec<Factor>>(value.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|f| pb::ReasoningFactor {
            name: f.name,
            weight: f.weight,
            impact_cents: f.impact_cents,
            explanation: f.explanation,
        })
        .collect()
}

pub(crate) fn trade_to_pb(t: &Trade) -> pb::Trade {
    let text = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    pb::Trade {
        trade_id: t.id.to_string(),
        user_id: t.user_id.to_string(),
        kind: kind_to_pb(t.kind).into(),
        state: match t.state {
            TradeState::Pending => pb::TradeState::Pending,
            TradeState::Settled => pb::TradeState::Settled,
            TradeState::Failed => pb::TradeState::Failed,
        }
        .into(),
        origin: match t.origin {
            TradeOrigin::Manual => pb::TradeOrigin::Manual,
            TradeOrigin::Automated => pb::TradeOrigin::Automated,
        }
        .into(),
        moment_id: t.moment_id.to_string(),
        listing_id: text(t.listing_id),
        price_cents: t.price_cents,
        fee_cents: t.fee_cents,
        strategy_id: text(t.strategy_id),
        decision_id: text(t.decision_id),
        reasoning: t.reasoning.clone(),
        idempotency_key: t.idempotency_key.clone(),
        failure_reason: t.failure_reason.clone().unwrap_or_default(),
        create_time: Some(timestamp(t.created_at)),
        settle_time: t.settled_at.map(timestamp),
        valuation_id: text(t.valuation_id),
        factors: factors_from_json(&t.factors),
        expected_value_cents: t.expected_value_cents,
        source_id: t.source_id.clone(),
        realized_pnl_cents: t.realized_pnl_cents,
    }
}

pub(crate) fn holding_to_pb(
    h: &Holding,
    value: i64,
    value_time: chrono::DateTime<chrono::Utc>,
    stale: bool,
) -> pb::Holding {
    pb::Holding {
        moment_id: h.moment_id.to_string(),
        cost_cents: h.cost_cents,
        market_value_cents: value,
        unrealized_pnl_cents: value - h.cost_cents,
        listing_id: h.listing_id.map(|id| id.to_string()).unwrap_or_default(),
        acquire_time: Some(timestamp(h.acquired_at)),
        value_time: Some(timestamp(value_time)),
        value_stale: stale,
    }
}

/// What a failed trade keeps of the status its caller got: enough to answer a replay the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub reason: String,
    pub metadata: HashMap<String, String>,
}

/// The failure a status stands for, as kept on the trade: (message, code, details).
pub(crate) fn failure_of(status: &Status) -> (String, i32, serde_json::Value) {
    let info = status.get_details_error_info();
    let failure = Failure {
        reason: info.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
        metadata: info.map(|i| i.metadata).unwrap_or_default(),
    };
    let message = if status.message().is_empty() { "failed".to_owned() } else { status.message().to_owned() };
    (message, status.code() as i32, serde_json::to_value(failure).unwrap_or_default())
}

/// The status a failed trade's first caller got, rebuilt for a replay.
pub(crate) fn status_of(trade: &Trade) -> Status {
    let message = trade.failure_reason.clone().unwrap_or_else(|| "the trade failed".to_owned());
    let code = Code::from_i32(trade.failure_code.unwrap_or(Code::Aborted as i32));
    let failure = trade
        .failure_details
        .as_ref()
        .and_then(|d| serde_json::from_value::<Failure>(d.clone()).ok())
        .unwrap_or(Failure { reason: String::new(), metadata: HashMap::new() });
    let reason = ErrorReason::from_str_name(&failure.reason).unwrap_or(ErrorReason::InvalidState);
    let mut metadata = failure.metadata;
    metadata.insert("trade_id".to_owned(), trade.id.to_string());
    status::with_reason(code, message, reason, metadata, ErrorDetails::new())
}
