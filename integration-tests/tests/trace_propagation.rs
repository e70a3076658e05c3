//! Two real services chained (client → A → B): B sees the trace id and correlation id the
//! client sent, or that A made up when the client sent none, and its log lines for the call
//! carry both.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastbreak_config::LogFormat;
use fastbreak_integration_tests::echo::{spawn_echo, spawn_relay};
use fastbreak_integration_tests::{connect, internal_request};
use fastbreak_proto::user::v1::GetUserStatusRequest;
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use fastbreak_telemetry::TelemetryConfig;

/// Log lines written in this process, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let config = TelemetryConfig {
        service_name: "trace-test".to_owned(),
        log_format: LogFormat::Json,
        filter: "info".to_owned(),
        otlp_endpoint: None,
        targets: Vec::new(),
    };
    let telemetry = fastbreak_telemetry::init::init_with_writer(&config, move || writer.clone(), false)
        .expect("first setup in this process");
    std::mem::forget(telemetry);
    captured
}

fn parts(user_id: &str) -> (String, String, String) {
    let mut parts = user_id.splitn(4, '|').map(str::to_owned);
    (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trace_and_correlation_id_reach_b_and_its_log_lines() {
    let logs = capture_logs();
    let b = spawn_echo("chain-b", Duration::ZERO, Duration::from_secs(5)).await;
    let a = spawn_relay("chain-a", &[b.url()]).await;
    let mut client = UserInternalServiceClient::new(connect(a.addr).await);

    // The client sends a trace context and a correlation id.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let correlation_id = "client-correlation-42";
    let mut request = internal_request(GetUserStatusRequest::default());
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
    request.metadata_mut().insert("x-correlation-id", correlation_id.parse().unwrap());
    let answer = client.get_user_status(request).await.expect("the chain answers").into_inner();
    let (b_name, b_correlation, b_trace) = parts(&answer.user_id);
    assert_eq!(b_name, "chain-b");
    assert_eq!(b_correlation, correlation_id, "B saw the client's correlation id");
    assert_eq!(b_trace, trace_id, "B's span continues the client's trace");
    assert_eq!(answer.flow_address, correlation_id, "A saw it too");

    // B's own log lines for the call carry both (awaited: B writes its last line as it answers).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines = logs.lines();
        let finished = lines.iter().any(|line| {
            line["span"]["target"] == "chain-b"
                && line["span"]["correlation_id"] == correlation_id
                && line["message"] == "rpc finished"
        });
        if finished || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::task::yield_now().await;
    };
    let b_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["span"]["target"] == "chain-b" && line["span"]["correlation_id"] == correlation_id)
        .collect();
    assert!(
        b_lines.iter().any(|line| line["message"] == "echo handled the call" && line["span"]["trace_id"] == trace_id),
        "B logged the call with its correlation and trace ids; B's lines: {b_lines:#?}"
    );
    assert!(b_lines.iter().any(|line| line["message"] == "rpc finished" && line["code"] == "OK"), "{b_lines:#?}");

    // Without a correlation id from the client, A makes one up, and B sees A's.
    let answer = client.get_user_status(internal_request(GetUserStatusRequest::default())).await.unwrap().into_inner();
    let (_, b_correlation, b_trace) = parts(&answer.user_id);
    assert!(!answer.flow_address.is_empty(), "A generated a correlation id");
    assert_eq!(b_correlation, answer.flow_address, "B saw the id A generated");
    assert_ne!(b_trace, "00000000000000000000000000000000", "a new trace was started");
    assert_ne!(b_trace, trace_id);
}
