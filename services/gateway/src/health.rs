//! `GetSystemHealth`: every backend endpoint's status as the gateway's health checks see it
//! (checked every second, so accurate within a few seconds of a change), for operators: the
//! call must carry the operator credential (`FASTBREAK_OPERATOR_TOKEN`), which is not the
//! mesh's internal one.

pub use fastbreak_mesh::auth::OPERATOR_TOKEN_HEADER;

use std::sync::Arc;

use fastbreak_config::Secret;
use fastbreak_mesh::Peers;
use fastbreak_mesh::status::{self, timestamp};
use fastbreak_proto::gateway::v1 as pb;
use fastbreak_proto::gateway::v1::system_health_service_server::SystemHealthService;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

/// The service.
#[derive(Debug, Clone)]
pub(crate) struct SystemHealthApi {
    peers: Peers,
    /// A hash of the operators' credential (compared hash to hash).
    credential: Option<Arc<[u8; 32]>>,
}

impl SystemHealthApi {
    pub(crate) fn new(peers: Peers, credential: Option<Secret<String>>) -> Self {
        let credential = credential.map(|c| Arc::new(Sha256::digest(c.expose().as_bytes()).into()));
        Self { peers, credential }
    }
}

#[tonic::async_trait]
impl SystemHealthService for SystemHealthApi {
    async fn get_system_health(
        &self,
        request: Request<pb::GetSystemHealthRequest>,
    ) -> Result<Response<pb::SystemHealth>, Status> {
        let presented = request.metadata().get(OPERATOR_TOKEN_HEADER).and_then(|v| v.to_str().ok());
        let allowed = match (&self.credential, presented) {
            (Some(expected), Some(given)) => {
                let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
                given == **expected
            }
            _ => false,
        };
        if !allowed {
            return Err(status::unauthenticated(if self.credential.is_some() {
                format!("the system's health is for operators: send the operator credential in {OPERATOR_TOKEN_HEADER}")
            } else {
                "the system's health is for operators, and no operator credential is configured (FASTBREAK_OPERATOR_TOKEN)"
                    .to_owned()
            }));
        }
        let now = chrono::Utc::now();
        let mut services = Vec::new();
        for name in crate::PEERS {
            let Some(channel) = self.peers.get(name) else { continue };
            let endpoints: Vec<pb::EndpointHealth> = channel
                .endpoints()
                .into_iter()
                .map(|e| pb::EndpointHealth {
                    address: e.uri,
                    status: if e.serving {
                        pb::ServingStatus::Serving
                    } else if e.checked_at.is_none() {
                        pb::ServingStatus::Unspecified
                    } else if e.unreachable {
                        pb::ServingStatus::Unreachable
                    } else {
                        pb::ServingStatus::NotServing
                    }
                    .into(),
                    last_check_time: e.checked_at.map(timestamp),
                    detail: e.detail,
                    last_change_time: e.changed_at.map(timestamp),
                    version: e.info.version.clone(),
                    start_time: e.info.started_at.map(timestamp),
                    uptime_seconds: e.info.started_at.map_or(0, |t| (now - t).num_seconds().max(0)),
                    dependencies: e
                        .info
                        .dependencies
                        .iter()
                        .map(|(name, state)| pb::DependencyHealth { name: name.clone(), state: state.clone() })
                        .collect(),
                })
                .collect();
            let serving = endpoints.iter().any(|e| e.status() == pb::ServingStatus::Serving);
            let status = if serving {
                pb::ServingStatus::Serving
            } else if endpoints.iter().all(|e| e.status() == pb::ServingStatus::Unreachable) {
                pb::ServingStatus::Unreachable
            } else {
                pb::ServingStatus::NotServing
            };
            services.push(pb::ServiceHealth { service: (*name).to_owned(), status: status.into(), endpoints });
        }
        let all = !services.is_empty() && services.iter().all(|s| s.status() == pb::ServingStatus::Serving);
        Ok(Response::new(pb::SystemHealth {
            status: if all { pb::ServingStatus::Serving } else { pb::ServingStatus::NotServing }.into(),
            services,
            check_time: Some(timestamp(now)),
        }))
    }
}
