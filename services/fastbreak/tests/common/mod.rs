//! Running the real `fastbreak` binary in tests.
#![allow(dead_code, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_fastbreak");
pub const TARGETS: [&str; 10] =
    ["gateway", "user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents", "web"];
/// The internal credential the tests' processes share.
pub const TOKEN: &str = "test-internal-credential-0123456789abcdef";

/// A request carrying `token` as its bearer.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A channel to the gateway at `gateway` (HOST:PORT).
pub async fn channel(gateway: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{gateway}")).unwrap().connect().await.unwrap()
}

/// Runs `fastbreak <args>` to completion.
pub fn fastbreak(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("the binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The lines a child process writes, read on a thread of their own so that a wait for the next
/// one can time out: a hung child fails the test in seconds, with what it printed so far.
pub struct Lines {
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(pipe: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { lines: rx, seen: Vec::new() }
    }

    /// The lines written so far and not yet read, without waiting.
    pub fn written(&mut self) -> Vec<String> {
        let lines: Vec<String> = self.lines.try_iter().collect();
        self.seen.extend(lines.iter().cloned());
        lines
    }

    /// The next line, or `None` when the child closed its output; panics with the lines so
    /// far (and `context`) when none comes by `deadline`.
    pub fn next_by(&mut self, deadline: Instant, context: impl Fn() -> String) -> Option<String> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("no output within the time allowed; printed so far: {:#?}\n{}", self.seen, context())
            }
        }
    }
}

/// A `fastbreak serve` child process, killed on drop if still running. Every target listens on
/// a free port; the metrics too.
pub struct Served {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub addrs: Vec<(String, String)>,
    pub metrics_addr: Option<String>,
}

impl Served {
    /// Starts `fastbreak serve --target <targets>` with the test credential and `env`.
    pub fn start(targets: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--target", targets])
            .env("FASTBREAK_INTERNAL_TOKEN", TOKEN)
            .env("FASTBREAK_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in TARGETS {
            command.env(format!("FASTBREAK_{}_LISTEN_ADDR", name.to_uppercase()), "127.0.0.1:0");
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let expected = if targets == "all" { TARGETS.len() } else { targets.split(',').count() };
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let mut addrs = Vec::new();
        let mut metrics_addr = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while addrs.len() < expected {
            let log = || stderr.lock().unwrap().clone();
            let Some(line) = lines.next_by(deadline, log) else {
                panic!("serve stopped before every target was bound; log:\n{}", stderr.lock().unwrap());
            };
            let (name, addr) = line.split_once(" listening on ").unwrap_or_else(|| panic!("unexpected line {line:?}"));
            if name == "metrics" {
                metrics_addr = Some(addr.to_owned());
            } else {
                addrs.push((name.to_owned(), addr.to_owned()));
            }
        }
        Self { child, stderr, addrs, metrics_addr }
    }

    pub fn addr(&self, target: &str) -> &str {
        &self.addrs.iter().find(|(name, _)| name == target).unwrap_or_else(|| panic!("{target} is not served")).1
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `fastbreak health` against a target: (SERVING, what it printed).
    pub fn health(&self, target: &str) -> (bool, String) {
        let output = fastbreak(&["health", "--addr", self.addr(target)]);
        (output.status.success(), stdout(&output))
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (30 s at most) until `condition` holds.
    pub fn wait_until(&self, what: &str, mut condition: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !condition(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every target reports SERVING.
    pub fn wait_serving(&self) {
        for (name, _) in self.addrs.clone() {
            self.wait_until(&format!("{name} is SERVING"), |s| s.health(&name).0);
        }
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Waits (10 s at most) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 10s; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (10 s at most) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
