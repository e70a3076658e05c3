//! HAProxy forwarding gRPC to one server, as the anchor a proxy of ours is read against: HTTP/2
//! in clear text on both sides (`mode http`, `proto h2` on the bind and server lines), one
//! thread, no logs, started from a configuration in a temporary folder and stopped on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running HAProxy in front of one server.
#[derive(Debug)]
pub struct Haproxy {
    addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Haproxy {
    /// Starts `haproxy` (from PATH, or /usr/sbin) on a free port of 127.0.0.1, forwarding to
    /// `target`, and waits until it accepts connections. It runs on the CPUs this process may
    /// run on. An error says why it could not start (not installed, say).
    pub fn start(target: SocketAddr) -> Result<Self, String> {
        let program = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("haproxy"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("no free port: {error}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!("fastbreak-haproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, configuration(addr, target))
            .map_err(|error| format!("{}: {error}", config.display()))?;
        let log = dir.join("stderr.log");
        let stderr = std::fs::File::create(&log).map_err(|error| format!("{}: {error}", log.display()))?;
        let child = Command::new(&program)
            // -db: in the foreground, as this process's child.
            .args(["-db", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => "haproxy is not installed (apt-get install haproxy)".to_owned(),
                _ => format!("{} cannot run: {error}", program.display()),
            })?;
        let mut proxy = Self { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("haproxy exited ({status}): {}", said.trim()));
            }
            if Instant::now() > deadline {
                return Err(format!("haproxy did not listen on {addr} within 5 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(proxy)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// HTTP/2 without TLS in and out, one thread, connections to the server reused across
/// requests (HAProxy's default), no logs.
fn configuration(listen: SocketAddr, target: SocketAddr) -> String {
    format!(
        "global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend grpc
    bind {listen} proto h2
    default_backend server

backend server
    server server {target} proto h2
"
    )
}
