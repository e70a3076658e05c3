//! The `grpc.health.v1` check behind `fastbreak health` and the container health check.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Why a health check did not answer SERVING.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    /// The address is not a valid endpoint.
    #[error("invalid address {addr}: {source}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it is invalid.
        source: tonic::transport::Error,
    },
    /// Nothing answered at the address.
    #[error("cannot connect to {addr}: {reason}")]
    Unreachable {
        /// The address.
        addr: String,
        /// The transport's explanation.
        reason: String,
    },
    /// The server does not know the service name.
    #[error("{addr} does not serve {service:?}")]
    UnknownService {
        /// The address.
        addr: String,
        /// The service asked about.
        service: String,
    },
    /// The server answered, but not SERVING.
    #[error("{addr} reports {service:?} as {status}")]
    NotServing {
        /// The address.
        addr: String,
        /// The service asked about ("" for the whole server).
        service: String,
        /// What it reported.
        status: String,
    },
    /// The check failed with another gRPC status.
    #[error("health check of {addr} failed: {status}")]
    Failed {
        /// The address.
        addr: String,
        /// The status returned.
        status: tonic::Status,
    },
}

/// Asks the server at `addr` (`HOST:PORT` or an `http://` URL) for the status of `service`
/// ("" for the whole server). Succeeds only when the answer is SERVING.
pub async fn check_health(addr: &str, service: &str, timeout: Duration) -> Result<(), HealthCheckError> {
    let url = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
    let endpoint = tonic::transport::Endpoint::from_shared(url)
        .map_err(|source| HealthCheckError::InvalidAddress { addr: addr.to_owned(), source })?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| HealthCheckError::Unreachable { addr: addr.to_owned(), reason: error_chain(&error) })?;
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await;
    match response {
        Ok(answer) => match answer.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(HealthCheckError::NotServing {
                addr: addr.to_owned(),
                service: service.to_owned(),
                status: other.as_str_name().to_owned(),
            }),
        },
        Err(status) if status.code() == tonic::Code::NotFound => {
            Err(HealthCheckError::UnknownService { addr: addr.to_owned(), service: service.to_owned() })
        }
        Err(status) if status.code() == tonic::Code::Unavailable => {
            Err(HealthCheckError::Unreachable { addr: addr.to_owned(), reason: status.message().to_owned() })
        }
        Err(status) => Err(HealthCheckError::Failed { addr: addr.to_owned(), status }),
    }
}

/// Checks the server at `addr` until it answers SERVING for `service`, or `patience` runs
/// out (then the last reason is returned).
pub async fn wait_serving(addr: &str, service: &str, patience: Duration) -> Result<(), HealthCheckError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match check_health(addr, service, Duration::from_secs(1)).await {
            Ok(()) => return Ok(()),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Writes an error and its causes on one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
