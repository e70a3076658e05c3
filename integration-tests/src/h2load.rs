//! h2load (Debian's nghttp2-client) as a load generator for benchmarks: 8 connections × 32
//! concurrent streams for 3 s after a 1 s warm-up (or one request at a time, for the latency of
//! a call at low load), pinned to core 0 (the servers run on core 1), with every request's
//! latency logged for percentiles.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// What a run measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Mean latency, in milliseconds.
    pub mean_ms: f64,
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
}

/// How long h2load loads a server.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// For 3 s, after a 1 s warm-up.
    Timed,
    /// Exactly this many requests, no warm-up (so that the server's work per request can be
    /// told from its CPU time).
    Requests(u64),
}

/// Loads `path` at `addr` with the gRPC frame in `body` and the extra `headers` for 3 s after a
/// 1 s warm-up; panics when a request failed.
pub fn h2load(addr: SocketAddr, path: &str, headers: &[String], body: &Path) -> Load {
    h2load_for(Length::Timed, addr, path, headers, body)
}

/// Like [`h2load`], for the given length.
pub fn h2load_for(length: Length, addr: SocketAddr, path: &str, headers: &[String], body: &Path) -> Load {
    run(length, (8, 32), addr, path, headers, body)
}

/// `requests` requests over one connection, one at a time (no warm-up): what a call costs when
/// nothing else is going on.
pub fn h2load_serial(requests: u64, addr: SocketAddr, path: &str, headers: &[String], body: &Path) -> Load {
    run(Length::Requests(requests), (1, 1), addr, path, headers, body)
}

fn run(
    length: Length,
    (connections, streams): (u32, u32),
    addr: SocketAddr,
    path: &str,
    headers: &[String],
    body: &Path,
) -> Load {
    let log = std::env::temp_dir().join(format!("fastbreak-h2load-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut command = Command::new("taskset");
    command.args(["-c", "0", "h2load", "-c", &connections.to_string(), "-m", &streams.to_string(), "-t", "1"]);
    match length {
        Length::Timed => command.args(["-D", "3", "--warm-up-time=1"]),
        Length::Requests(n) => command.args(["-n", &n.to_string()]),
    };
    command.args(["-H", "content-type: application/grpc", "-H", "te: trailers"]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .arg(format!("--log-file={}", log.display()))
        .arg("-d")
        .arg(body)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("h2load runs (apt-get install nghttp2-client)");
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = text
        .lines()
        .find_map(|line| line.strip_prefix("finished in "))
        .and_then(|rest| rest.split(", ").nth(1))
        .and_then(|field| field.trim_end_matches(" req/s").parse().ok())
        .unwrap_or_else(|| panic!("no throughput in h2load's output:\n{text}"));
    let failed = text.lines().find(|line| line.starts_with("requests:")).unwrap_or_default();
    assert!(failed.contains(" 0 failed"), "h2load saw failures: {failed}");
    // The log: one line per request, tab-separated: start (µs), status, duration (µs).
    let mut latencies: Vec<f64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split('\t').nth(2).and_then(|d| d.trim().parse::<f64>().ok()))
        .map(|micros| micros / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    let mean_ms = if latencies.is_empty() { 0.0 } else { latencies.iter().sum::<f64>() / latencies.len() as f64 };
    Load { rps, mean_ms, p50_ms: at(0.5), p99_ms: at(0.99) }
}

/// CPU time, in nanoseconds, that the threads of this process named `name` have run so far
/// (from `/proc/self/task/*/schedstat`; thread names are cut to 15 bytes by the kernel).
pub fn thread_cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim_end() == name))
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()))
        .sum()
}
