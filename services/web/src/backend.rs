//! The public services, reached through the gateway with the visitor's bearer token: typed
//! clients of the generated contracts, and what an error means for a page.

use std::time::Duration;

use fastbreak_mesh::{Peer, PeerChannel};
use fastbreak_proto::agents::v1::agent_service_client::AgentServiceClient;
use fastbreak_proto::gateway::v1::system_health_service_client::SystemHealthServiceClient;
use fastbreak_proto::marketplace::v1::marketplace_service_client::MarketplaceServiceClient;
use fastbreak_proto::notification::v1::notification_service_client::NotificationServiceClient;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::scouting::v1::scouting_service_client::ScoutingServiceClient;
use fastbreak_proto::strategy::v1::strategy_service_client::StrategyServiceClient;
use fastbreak_proto::trading::v1::trading_service_client::TradingServiceClient;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::session::Visitor;

/// A part of the system a page section relies on, named as a collector knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Accounts, wallets and sign-in.
    Accounts,
    /// Strategies.
    Strategies,
    /// Limits and the emergency stop.
    Risk,
    /// The marketplace.
    Market,
    /// Valuations.
    Scouting,
    /// Trading: funds, holdings, the portfolio, leaderboards.
    Trading,
    /// Notifications.
    Notifications,
    /// The agents' decisions.
    Agents,
    /// The gateway's system health.
    Health,
}

impl Part {
    /// Its name on a page.
    pub fn name(self) -> &'static str {
        match self {
            Part::Accounts => "Accounts",
            Part::Strategies => "Strategies",
            Part::Risk => "Risk",
            Part::Market => "The marketplace",
            Part::Scouting => "Valuations",
            Part::Trading => "Trading",
            Part::Notifications => "Notifications",
            Part::Agents => "The agents",
            Part::Health => "System health",
        }
    }
}

/// What went wrong with a call, for a page to show: never a trace, always what to do.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The part that answered (or did not).
    pub part: Part,
    /// The gRPC code.
    pub code: Code,
    /// The service's own message.
    pub message: String,
    /// The fields the service found wrong, by their last path segment, with why.
    pub fields: Vec<(String, String)>,
}

impl Problem {
    /// Reads a status.
    pub fn new(part: Part, status: &tonic::Status) -> Self {
        let fields = status
            .get_details_bad_request()
            .map(|bad| bad.field_violations.into_iter().map(|v| (field_key(&v.field), v.description)).collect())
            .unwrap_or_default();
        if matches!(status.code(), Code::Unavailable | Code::Internal | Code::Unknown | Code::DeadlineExceeded) {
            tracing::warn!(part = part.name(), code = ?status.code(), message = status.message(), "a call from a page failed");
        }
        Self { part, code: status.code(), message: status.message().to_owned(), fields }
    }

    /// A problem the page itself found in a form field (before any call).
    pub fn field(part: Part, field: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        Self {
            part,
            code: Code::InvalidArgument,
            message: format!("{field} {why}"),
            fields: vec![(field.to_owned(), why)],
        }
    }

    /// True when the part could not be reached (down, overloaded or too slow).
    pub fn unavailable(&self) -> bool {
        matches!(self.code, Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled)
    }

    /// True when the visitor's session is no longer accepted.
    pub fn signed_out(&self) -> bool {
        self.code == Code::Unauthenticated
    }

    /// What the page says.
    pub fn readable(&self) -> String {
        let part = self.part.name();
        match self.code {
            Code::Unavailable | Code::Cancelled => {
                format!("{part} is unavailable right now; the rest of the page still works. Try again in a moment.")
            }
            Code::DeadlineExceeded => format!("{part} took too long to answer; try again in a moment."),
            Code::ResourceExhausted => "Too many requests at once; wait a moment and try again.".to_owned(),
            Code::Unauthenticated => "Your session has ended; sign in again.".to_owned(),
            Code::PermissionDenied => format!("Not allowed: {}", self.message),
            Code::InvalidArgument if !self.fields.is_empty() => {
                let fields: Vec<String> = self.fields.iter().map(|(field, why)| format!("{field} {why}")).collect();
                format!("Please correct: {}.", fields.join("; "))
            }
            Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound | Code::AlreadyExists => {
                capitalised(&self.message)
            }
            _ => format!("{part} could not answer (its error was logged); try again."),
        }
    }

    /// Why a field is wrong, when the service said so.
    pub fn about(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(name, _)| name == field).map(|(_, why)| why.as_str())
    }
}

/// A violation's field as the forms name it: its last path segment, with the index of a
/// repeated field before it ("strategy.rules.min_confidence" is "min_confidence",
/// "strategy.post_game_spike.stat_triggers[1].at_least" is "at_least[1]"); a strategy's
/// protections keep their path under "protections", without a list's index
/// ("strategy.protections.drawdown.window_minutes" is "drawdown.window_minutes").
fn field_key(path: &str) -> String {
    if let Some((_, protection)) = path.split_once("protections.") {
        return protection.split('[').next().unwrap_or_default().to_owned();
    }
    let mut segments = path.rsplit('.');
    let last = segments.next().unwrap_or_default();
    match segments.next().and_then(|s| s.rfind('[').map(|at| &s[at..])) {
        Some(index) if index.ends_with(']') => format!("{last}{index}"),
        _ => last.to_owned(),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The gateway, as the pages call it.
#[derive(Debug, Clone)]
pub struct Gateway {
    peer: Peer,
    timeout: Duration,
}

impl Gateway {
    /// Calls through `peer` (the gateway), each call with `timeout` at most.
    pub fn new(peer: Peer, timeout: Duration) -> Self {
        Self { peer, timeout }
    }

    fn channel(&self, part: Part) -> Result<PeerChannel, Problem> {
        self.peer.channel().map_err(|status| Problem::new(part, &status))
    }

    /// A request for the visitor: their bearer token, their address for the gateway's limits,
    /// and the pages' deadline.
    pub fn request<T>(&self, visitor: &Visitor, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        let metadata = request.metadata_mut();
        if let Some(session) = &visitor.session
            && let Ok(value) = format!("Bearer {}", session.secret).parse()
        {
            metadata.insert("authorization", value);
        }
        if let Some(address) = visitor.address
            && let Ok(value) = address.to_string().parse()
        {
            metadata.insert(fastbreak_mesh::auth::CLIENT_ADDRESS_HEADER, value);
        }
        request
    }

    /// The same request with the operator's credential (for the system health).
    pub fn operator_request<T>(&self, visitor: &Visitor, credential: &str, message: T) -> tonic::Request<T> {
        let mut request = self.request(visitor, message);
        if let Ok(value) = credential.parse() {
            request.metadata_mut().insert(fastbreak_mesh::auth::OPERATOR_TOKEN_HEADER, value);
        }
        request
    }

    /// A request with no deadline of the pages' own (a live feed's stream).
    pub fn stream_request<T>(&self, visitor: &Visitor, message: T) -> tonic::Request<T> {
        let mut request = self.request(visitor, message);
        request.metadata_mut().remove("grpc-timeout");
        request
    }

    /// Accounts.
    pub fn users(&self) -> Result<UserServiceClient<PeerChannel>, Problem> {
        Ok(UserServiceClient::new(self.channel(Part::Accounts)?))
    }

    /// Strategies.
    pub fn strategies(&self) -> Result<StrategyServiceClient<PeerChannel>, Problem> {
        Ok(StrategyServiceClient::new(self.channel(Part::Strategies)?))
    }

    /// The visitor's strategies (the first 100), as the pages that list or pick them show them.
    pub async fn own_strategies(
        &self,
        visitor: &Visitor,
    ) -> Result<fastbreak_proto::strategy::v1::ListStrategiesResponse, Problem> {
        let mut client = self.strategies()?;
        let request = fastbreak_proto::strategy::v1::ListStrategiesRequest { page_size: 100, ..Default::default() };
        answer(Part::Strategies, client.list_strategies(self.request(visitor, request)).await)
    }

    /// Risk.
    pub fn risk(&self) -> Result<RiskServiceClient<PeerChannel>, Problem> {
        Ok(RiskServiceClient::new(self.channel(Part::Risk)?))
    }

    /// The marketplace.
    pub fn market(&self) -> Result<MarketplaceServiceClient<PeerChannel>, Problem> {
        Ok(MarketplaceServiceClient::new(self.channel(Part::Market)?))
    }

    /// Scouting.
    pub fn scouting(&self) -> Result<ScoutingServiceClient<PeerChannel>, Problem> {
        Ok(ScoutingServiceClient::new(self.channel(Part::Scouting)?))
    }

    /// Trading.
    pub fn trading(&self) -> Result<TradingServiceClient<PeerChannel>, Problem> {
        Ok(TradingServiceClient::new(self.channel(Part::Trading)?))
    }

    /// Notifications.
    pub fn notifications(&self) -> Result<NotificationServiceClient<PeerChannel>, Problem> {
        Ok(NotificationServiceClient::new(self.channel(Part::Notifications)?))
    }

    /// The agents.
    pub fn agents(&self) -> Result<AgentServiceClient<PeerChannel>, Problem> {
        Ok(AgentServiceClient::new(self.channel(Part::Agents)?))
    }

    /// The system health.
    pub fn health(&self) -> Result<SystemHealthServiceClient<PeerChannel>, Problem> {
        Ok(SystemHealthServiceClient::new(self.channel(Part::Health)?))
    }
}

/// Turns a call's answer into its message or the problem, for `part`.
pub fn answer<T>(part: Part, result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Problem> {
    result.map(tonic::Response::into_inner).map_err(|status| Problem::new(part, &status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_what_to_do_never_as_traces() {
        let down = Problem::new(Part::Trading, &tonic::Status::unavailable("trading is unavailable; try again later"));
        assert!(down.unavailable());
        assert_eq!(
            down.readable(),
            "Trading is unavailable right now; the rest of the page still works. Try again in a moment."
        );
        let broken = Problem::new(Part::Risk, &tonic::Status::internal("panicked at src/lib.rs:10"));
        assert!(!broken.readable().contains("panicked"), "{}", broken.readable());
        let refused = Problem::new(Part::Risk, &tonic::Status::failed_precondition("the change has expired"));
        assert_eq!(refused.readable(), "The change has expired");
    }

    #[test]
    fn field_violations_are_named_by_their_last_segment() {
        let status = fastbreak_mesh::status::invalid_field("strategy.rules.min_confidence", "must be from 0 to 1");
        let problem = Problem::new(Part::Strategies, &status);
        assert_eq!(problem.about("min_confidence"), Some("must be from 0 to 1"));
        assert!(problem.readable().contains("min_confidence must be from 0 to 1"), "{}", problem.readable());
        let status =
            fastbreak_mesh::status::invalid_field("strategy.post_game_spike.stat_triggers[1].at_least", "too small");
        let problem = Problem::new(Part::Strategies, &status);
        assert_eq!(problem.about("at_least[1]"), Some("too small"), "a repeated field keeps its row");
        for (path, key) in [
            ("strategy.protections.drawdown.window_minutes", "drawdown.window_minutes"),
            ("strategy.protections.losing_streak.window_minutes", "losing_streak.window_minutes"),
            ("strategy.protections.blocked_set_names[2]", "blocked_set_names"),
            ("strategy.protections.max_daily_loss_cents", "max_daily_loss_cents"),
        ] {
            let problem = Problem::new(Part::Strategies, &fastbreak_mesh::status::invalid_field(path, "wrong"));
            assert_eq!(problem.about(key), Some("wrong"), "{path}");
        }
    }
}
