//! `fastbreak status`: the gateway's view of every service's health, as a table.

use std::time::Duration;

use fastbreak_proto::gateway::v1::system_health_service_client::SystemHealthServiceClient;
use fastbreak_proto::gateway::v1::{GetSystemHealthRequest, ServingStatus, SystemHealth};

/// The header the operator credential travels in.
const OPERATOR_HEADER: &str = "x-fastbreak-operator-token";

/// Asks the gateway at `addr` for the system's health with the operator credential `token`.
pub async fn system_health(addr: &str, token: &str, timeout: Duration) -> Result<SystemHealth, String> {
    let channel = connect(addr, timeout).await?;
    let mut request = tonic::Request::new(GetSystemHealthRequest {});
    let value = token.parse().map_err(|_| "the operator credential is not a valid header value".to_owned())?;
    request.metadata_mut().insert(OPERATOR_HEADER, value);
    SystemHealthServiceClient::new(channel)
        .get_system_health(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| format!("the gateway at {addr} answered {:?}: {}", status.code(), status.message()))
}

/// A channel to the gateway at `addr` (HOST:PORT or an http:// URL), each call bounded by
/// `timeout`.
pub async fn connect(addr: &str, timeout: Duration) -> Result<tonic::transport::Channel, String> {
    let url = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
    tonic::transport::Endpoint::from_shared(url)
        .map_err(|e| format!("{addr} is not an address: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| format!("the gateway at {addr} cannot be reached: {}", fastbreak_mesh::health::error_chain(&e)))
}

fn status_name(status: i32) -> &'static str {
    match ServingStatus::try_from(status).unwrap_or(ServingStatus::Unspecified) {
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
        ServingStatus::Unreachable => "UNREACHABLE",
        ServingStatus::Unspecified => "UNKNOWN",
    }
}

/// Whether every service (and so the system) is SERVING.
pub fn all_serving(health: &SystemHealth) -> bool {
    health.status == ServingStatus::Serving as i32
        && health.services.iter().all(|s| s.status == ServingStatus::Serving as i32)
}

/// One line per endpoint: service, status, address, version, uptime and what is wrong; then the
/// system's status.
pub fn table(health: &SystemHealth) -> String {
    let mut rows = vec![["SERVICE", "STATUS", "ENDPOINT", "VERSION", "UPTIME", "DETAIL"].map(str::to_owned)];
    for service in &health.services {
        if service.endpoints.is_empty() {
            rows.push([
                service.service.clone(),
                status_name(service.status).to_owned(),
                String::new(),
                String::new(),
                String::new(),
                "no endpoint configured".to_owned(),
            ]);
        }
        for endpoint in &service.endpoints {
            let mut detail = endpoint.detail.clone();
            for dependency in endpoint.dependencies.iter().filter(|d| d.state != "SERVING") {
                if !detail.is_empty() {
                    detail.push_str("; ");
                }
                detail.push_str(&format!("{}: {}", dependency.name, dependency.state));
            }
            rows.push([
                service.service.clone(),
                status_name(endpoint.status).to_owned(),
                endpoint.address.clone(),
                endpoint.version.clone(),
                if endpoint.uptime_seconds > 0 { format!("{}s", endpoint.uptime_seconds) } else { String::new() },
                detail,
            ]);
        }
    }
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("system: {}\n", if all_serving(health) { "SERVING" } else { status_name(health.status) }));
    out
}

#[cfg(test)]
mod tests {
    use fastbreak_proto::gateway::v1::{DependencyHealth, EndpointHealth, ServiceHealth};

    use super::*;

    #[test]
    fn the_table_names_what_is_down_and_the_system_is_not_serving() {
        let endpoint = |status: ServingStatus, detail: &str| EndpointHealth {
            address: "http://127.0.0.1:50054".to_owned(),
            status: status as i32,
            detail: detail.to_owned(),
            version: "0.1.0".to_owned(),
            uptime_seconds: 12,
            dependencies: vec![DependencyHealth { name: "database".to_owned(), state: "SERVING".to_owned() }],
            ..Default::default()
        };
        let mut health = SystemHealth {
            status: ServingStatus::Serving as i32,
            services: vec![ServiceHealth {
                service: "risk".to_owned(),
                status: ServingStatus::Serving as i32,
                endpoints: vec![endpoint(ServingStatus::Serving, "")],
            }],
            check_time: None,
        };
        assert!(all_serving(&health));
        let text = table(&health);
        assert!(text.contains("risk     SERVING  http://127.0.0.1:50054  0.1.0    12s"), "{text}");
        assert!(text.ends_with("system: SERVING\n"), "{text}");
        health.status = ServingStatus::NotServing as i32;
        health.services[0].status = ServingStatus::Unreachable as i32;
        health.services[0].endpoints = vec![endpoint(ServingStatus::Unreachable, "connection refused")];
        assert!(!all_serving(&health));
        let text = table(&health);
        assert!(text.contains("UNREACHABLE") && text.contains("connection refused"), "{text}");
        assert!(text.ends_with("system: NOT_SERVING\n"), "{text}");
    }
}
