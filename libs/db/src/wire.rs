//! Connections that keep the server's SQLSTATE on every error.
//!
//! diesel-async names only a few SQLSTATEs (unique, foreign key, check, not null,
//! serialization failure…) and turns every other one into `Unknown` without the code: a
//! deadlock (`40P01`) or a cancelled statement (`57014`) could then be told only by its
//! message, which is English or not depending on the server's `lc_messages`. So the pool
//! connects through [`establish`]: it opens the socket itself and reads the server's messages
//! through [`SqlStateTap`], which puts each ErrorResponse's SQLSTATE in front of its primary
//! message (`"40P01: deadlock detected"`, the way `psql` shows it in verbose mode). The data
//! crate reads the code back with [`split_sqlstate`] and never looks at the text.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;

/// A byte stream to the server, TCP or a Unix socket.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The code at the head of a message this module rewrote, and the server's own message:
/// `"40P01: deadlock detected"` gives `("40P01", "deadlock detected")`.
pub fn split_sqlstate(message: &str) -> Option<(&str, &str)> {
    let (code, rest) = message.split_once(": ")?;
    let is_code = code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    is_code.then_some((code, rest))
}

/// Opens a diesel connection to `url` whose errors carry their SQLSTATE (see the module).
/// Hosts are tried in order, as libpq does; TLS is not offered (`sslmode=require` is refused).
pub async fn establish(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|error: tokio_postgres::Error| diesel::ConnectionError::InvalidConnectionUrl(error.to_string()))?;
    let stream = open(&config).await.map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
    let (client, connection) = config
        .connect_raw(SqlStateTap::new(stream), tokio_postgres::NoTls)
        .await
        .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
    // The connection task ends by itself when the client (inside the diesel connection) is dropped.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "database connection ended");
        }
    });
    AsyncPgConnection::try_from(client).await
}

/// Listens on `channel` (PostgreSQL's LISTEN/NOTIFY) and calls `heard` once per notification
/// committed on it, and once after every (re)connection (what was committed while no one
/// listened is read by the caller then). Reconnects after a second when the connection is
/// lost. Ends when `heard` returns false.
pub async fn listen(url: &str, channel: &str, heard: impl Fn() -> bool) -> Result<(), String> {
    let config: tokio_postgres::Config = url.parse().map_err(|error: tokio_postgres::Error| error.to_string())?;
    loop {
        match listen_once(&config, channel, &heard).await {
            Ok(()) => return Ok(()),
            Err(error) => tracing::debug!(%error, channel, "listening stopped; listening again shortly"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !heard() {
            return Ok(());
        }
    }
}

/// One connection's listening: `Ok` when `heard` asked to stop, else why the connection ended.
async fn listen_once(config: &tokio_postgres::Config, channel: &str, heard: &impl Fn() -> bool) -> Result<(), String> {
    let stream = open(config).await.map_err(|e| e.to_string())?;
    let (client, mut connection) =
        config.connect_raw(SqlStateTap::new(stream), tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    // The LISTEN is answered through the connection, which is polled meanwhile.
    loop {
        tokio::select! {
            done = &mut listening => { done.map_err(|e| e.to_string())?; break; }
            message = futures::StreamExt::next(&mut messages) => match message {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("the connection closed".to_owned()),
            },
        }
    }
    if !heard() {
        return Ok(());
    }
    while let Some(message) = futures::StreamExt::next(&mut messages).await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                if !heard() {
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    Err("the connection closed".to_owned())
}

/// Connects to the first host of `config` that answers.
async fn open(config: &tokio_postgres::Config) -> io::Result<Box<dyn Io>> {
    let hosts = config.get_hosts();
    if hosts.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the database URL names no host"));
    }
    let timeout = config.get_connect_timeout().copied().unwrap_or(Duration::from_secs(30));
    let mut last = None;
    for (i, host) in hosts.iter().enumerate() {
        let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
        let attempt = async {
            Ok::<Box<dyn Io>, io::Error>(match host {
                Host::Tcp(name) => {
                    let stream = tokio::net::TcpStream::connect((name.as_str(), port)).await?;
                    stream.set_nodelay(true)?;
                    Box::new(stream)
                }
                Host::Unix(dir) => {
                    Box::new(tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?)
                }
            })
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => last = Some(error),
            Err(_) => last = Some(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {timeout:?}"))),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no host to connect to")))
}

/// Reads the server's messages through a [`Rewriter`]; writes pass through untouched.
pub struct SqlStateTap<S> {
    inner: S,
    rewriter: Rewriter,
    /// Bytes ready for the reader, from `out[taken..]`.
    out: Vec<u8>,
    taken: usize,
    scratch: Box<[u8]>,
}

impl<S> SqlStateTap<S> {
    /// Wraps a stream to the server.
    pub fn new(inner: S) -> Self {
        Self { inner, rewriter: Rewriter::default(), out: Vec::new(), taken: 0, scratch: vec![0; 16 * 1024].into() }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SqlStateTap<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.taken);
                buf.put_slice(&this.out[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.out.len() {
                    this.out.clear();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(())); // the server closed the connection
            }
            this.rewriter.feed(read.filled(), &mut this.out)?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SqlStateTap<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The backend's message stream, split into messages (a type byte and a big-endian length
/// that counts itself): ErrorResponses (`E`) are held whole and rewritten, every other message
/// passes through as it arrives.
#[derive(Default)]
struct Rewriter {
    header: [u8; 5],
    header_len: usize,
    body: Body,
}

#[derive(Default)]
enum Body {
    /// Between messages: reading a header.
    #[default]
    None,
    /// Passing this many more bytes of a message through.
    Pass(usize),
    /// Collecting an ErrorResponse of this length.
    Error(Vec<u8>, usize),
}

impl Rewriter {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !input.is_empty() {
            match &mut self.body {
                Body::None => {
                    let n = (5 - self.header_len).min(input.len());
                    self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
                    self.header_len += n;
                    input = &input[n..];
                    if self.header_len < 5 {
                        continue;
                    }
                    self.header_len = 0;
                    let length = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
                    let Some(body) = (length as usize).checked_sub(4) else {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a server message shorter than its header",
                        ));
                    };
                    if self.header[0] == b'E' {
                        self.body = Body::Error(Vec::with_capacity(body.min(64 * 1024)), body);
                    } else {
                        out.extend_from_slice(&self.header);
                        self.body = if body == 0 { Body::None } else { Body::Pass(body) };
                    }
                }
                Body::Pass(left) => {
                    let n = (*left).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        self.body = Body::None;
                    }
                }
                Body::Error(fields, length) => {
                    let n = (*length - fields.len()).min(input.len());
                    fields.extend_from_slice(&input[..n]);
                    input = &input[n..];
                }
            }
            if let Body::Error(fields, length) = &self.body
                && fields.len() == *length
            {
                let fields = lead_with_sqlstate(fields);
                out.push(b'E');
                out.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                out.extend_from_slice(&fields);
                self.body = Body::None;
            }
        }
        Ok(())
    }
}

/// An ErrorResponse's fields (a type byte and a NUL-terminated string each, then a NUL) with
/// the primary message (`M`) led by the SQLSTATE (`C`). Anything unexpected is left as it was.
fn lead_with_sqlstate(fields: &[u8]) -> Vec<u8> {
    let mut parsed = Vec::new();
    let mut rest = fields;
    while let [kind, tail @ ..] = rest {
        if *kind == 0 {
            break;
        }
        let Some(end) = tail.iter().position(|b| *b == 0) else { return fields.to_vec() };
        parsed.push((*kind, &tail[..end]));
        rest = &tail[end + 1..];
    }
    let Some(code) = parsed.iter().find(|(kind, _)| *kind == b'C').map(|(_, value)| *value) else {
        return fields.to_vec();
    };
    let mut rewritten = Vec::with_capacity(fields.len() + code.len() + 2);
    for (kind, value) in &parsed {
        rewritten.push(*kind);
        if *kind == b'M' {
            rewritten.extend_from_slice(code);
            rewritten.extend_from_slice(b": ");
        }
        rewritten.extend_from_slice(value);
        rewritten.push(0);
    }
    rewritten.push(0);
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn error(fields: &[(u8, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in fields {
            body.push(*kind);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        message(b'E', &body)
    }

    fn rewrite_in_pieces(stream: &[u8], piece: usize) -> Vec<u8> {
        let mut rewriter = Rewriter::default();
        let mut out = Vec::new();
        for chunk in stream.chunks(piece) {
            rewriter.feed(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn an_error_gets_its_sqlstate_in_front_of_its_message_and_everything_else_passes() {
        let ready = message(b'Z', b"I");
        let row = message(b'D', b"\x00\x01\x00\x00\x00\x02ok");
        let deadlock = error(&[(b'S', "FEHLER"), (b'C', "40P01"), (b'M', "Verklemmung entdeckt"), (b'D', "Prozess 1")]);
        let stream = [row.clone(), deadlock, ready.clone()].concat();
        let expected = [
            row,
            error(&[(b'S', "FEHLER"), (b'C', "40P01"), (b'M', "40P01: Verklemmung entdeckt"), (b'D', "Prozess 1")]),
            ready,
        ]
        .concat();
        // Whatever the reads' sizes, down to a byte at a time.
        for piece in [1, 2, 3, 5, 7, 64, stream.len()] {
            assert_eq!(rewrite_in_pieces(&stream, piece), expected, "read {piece} bytes at a time");
        }
    }

    #[test]
    fn an_error_without_a_code_or_malformed_is_left_as_it_was() {
        let uncoded = error(&[(b'S', "ERROR"), (b'M', "something")]);
        assert_eq!(rewrite_in_pieces(&uncoded, 4), uncoded);
        let unterminated = message(b'E', b"Mno end");
        assert_eq!(rewrite_in_pieces(&unterminated, 3), unterminated);
        let empty = message(b'N', b"");
        assert_eq!(rewrite_in_pieces(&empty, 1), empty);
    }

    #[test]
    fn a_length_shorter_than_the_header_is_refused() {
        let mut rewriter = Rewriter::default();
        let error = rewriter.feed(b"Z\x00\x00\x00\x02", &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn codes_are_read_back_only_from_the_head_of_a_message() {
        assert_eq!(split_sqlstate("40P01: deadlock detected"), Some(("40P01", "deadlock detected")));
        assert_eq!(
            split_sqlstate("57014: canceling statement due to statement timeout"),
            Some(("57014", "canceling statement due to statement timeout"))
        );
        assert_eq!(split_sqlstate("deadlock detected"), None);
        assert_eq!(split_sqlstate("note: deadlock detected"), None);
        assert_eq!(split_sqlstate("4001: short"), None);
    }
}
