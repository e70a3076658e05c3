//! The real `fastbreak` binary: `serve`, `health`, `--help`, and SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fastbreak");
const TARGETS: [&str; 9] =
    ["gateway", "user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents"];

/// A `fastbreak serve` child process, killed on drop if still running.
struct Served {
    child: Child,
    addrs: Vec<(String, String)>,
}

impl Served {
    fn start(target: &str) -> Self {
        let mut command = Command::new(BIN);
        command.args(["serve", "--target", target]).stdout(Stdio::piped()).stderr(Stdio::null());
        for name in TARGETS {
            command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
        }
        let mut child = command.spawn().expect("the binary starts");
        let expected = if target == "all" { TARGETS.len() } else { target.split(',').count() };
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addrs = Vec::new();
        while addrs.len() < expected {
            let line = lines.next().expect("a line per target").unwrap();
            let (name, addr) = line.split_once(" listening on ").unwrap_or_else(|| panic!("unexpected line {line:?}"));
            addrs.push((name.to_owned(), addr.to_owned()));
        }
        Self { child, addrs }
    }

    fn addr(&self, target: &str) -> &str {
        &self.addrs.iter().find(|(name, _)| name == target).unwrap().1
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 10s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fastbreak(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn serve_all_answers_health_on_every_port_and_exits_0_on_sigterm() {
    let served = Served::start("all");
    let mut names: Vec<&str> = served.addrs.iter().map(|(name, _)| name.as_str()).collect();
    names.sort();
    let mut expected = TARGETS.to_vec();
    expected.sort();
    assert_eq!(names, expected);

    for (name, addr) in &served.addrs {
        let output = fastbreak(&["health", "--addr", addr]);
        assert!(output.status.success(), "{name} at {addr}: {}", stdout(&output));
        assert_eq!(stdout(&output).trim(), "SERVING");
    }
    let output = fastbreak(&["health", "--addr", served.addr("risk"), "--service", "fastbreak.risk.v1.RiskInternalService"]);
    assert!(output.status.success(), "{}", stdout(&output));

    let status = served.terminate();
    assert_eq!(status.code(), Some(0), "serve exits 0 after SIGTERM");
}

#[test]
fn health_fails_with_one_line_for_an_unknown_service() {
    let served = Served::start("risk");
    let output = fastbreak(&["health", "--addr", served.addr("risk"), "--service", "fastbreak.nope.v1.Nope"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.contains("does not serve \"fastbreak.nope.v1.Nope\""), "{text:?}");
}

#[test]
fn health_fails_with_one_line_against_a_closed_port() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let output = fastbreak(&["health", "--addr", &addr, "--timeout", "2s"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.contains(&format!("cannot connect to {addr}")), "{text:?}");
}

#[test]
fn serve_refuses_an_unknown_target_naming_the_valid_ones() {
    let output = fastbreak(&["serve", "--target", "risk,bank"]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("unknown target \"bank\""), "{text}");
    assert!(text.contains("gateway"), "{text}");
}

#[test]
fn serve_refuses_malformed_listen_variables_naming_each() {
    let output = Command::new(BIN)
        .args(["serve", "--target", "risk"])
        .env("FASTBREAK_LISTEN_HOST", "localhost-ish")
        .env("FASTBREAK_RISK_LISTEN_ADDR", "risk:50054")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("FASTBREAK_LISTEN_HOST") && text.contains("FASTBREAK_RISK_LISTEN_ADDR"), "{text}");
}

#[test]
fn every_subcommand_says_what_it_does() {
    for (args, phrase) in [
        (vec!["--help"], "runs any set of its gRPC services"),
        (vec!["serve", "--help"], "Serve one or more targets"),
        (vec!["health", "--help"], "exit 0 only when it is SERVING"),
    ] {
        let output = fastbreak(&args);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains(phrase), "{args:?}: {}", stdout(&output));
    }
}
