//! How long `fastbreak up` takes from start to every target SERVING (and the demo seeded), on a
//! fresh data folder and on the existing one, and the resident memory of the whole system when
//! idle: the `fastbreak` process, and the private PostgreSQL's processes. Prints figures;
//! asserts nothing about them.
//!
//! `cargo bench -p fastbreak --bench up`

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fastbreak");
const TARGETS: [&str; 10] =
    ["gateway", "user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents", "web"];

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Proportional memory of a process (shared pages split among their users), in KiB.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Pss:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The private PostgreSQL's processes: its postmaster (from `postmaster.pid`) and its children.
fn postgres_pids(data: &std::path::Path) -> Vec<u32> {
    let Some(postmaster) = std::fs::read_to_string(data.join("postgres/data/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return Vec::new();
    };
    let parent_of = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("PPid:")).map(str::to_owned))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u32>().ok()))
    };
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![postmaster] };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(postmaster))
        .collect();
    pids.push(postmaster);
    pids
}

/// Starts `up` on `data` and returns it once it printed its last "try this" line, with the time
/// that took.
fn up(data: &std::path::Path) -> (Child, Duration) {
    let started = Instant::now();
    let mut command = Command::new(BIN);
    command
        .arg("up")
        .env_remove("DATABASE_URL")
        .env("FASTBREAK_DATA_DIR", data)
        .env("FASTBREAK_METRICS_ADDR", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for name in TARGETS {
        command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
    }
    let mut child = command.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("its output");
    let mut commands = 0;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.trim_start().starts_with("grpcurl ") {
            commands += 1;
            if commands == 3 {
                break;
            }
        }
    }
    assert_eq!(commands, 3, "up printed its three commands");
    (child, started.elapsed())
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

fn main() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let (child, fresh) = up(data.path());
    println!("up, fresh data folder: every target SERVING and the demo seeded in {:.2} s", fresh.as_secs_f64());
    std::thread::sleep(Duration::from_secs(10));
    let own = rss_kib(child.id());
    let pids = postgres_pids(data.path());
    let postgres: u64 = pids.iter().copied().map(pss_kib).sum();
    println!(
        "idle 10 s after: fastbreak {:.1} MiB resident; its PostgreSQL ({} processes) {:.1} MiB proportional; together {:.1} MiB",
        own as f64 / 1024.0,
        pids.len(),
        postgres as f64 / 1024.0,
        (own + postgres) as f64 / 1024.0
    );
    stop(child);
    let (child, existing) = up(data.path());
    println!("up, existing data folder: every target SERVING and the demo seeded in {:.2} s", existing.as_secs_f64());
    stop(child);
}
