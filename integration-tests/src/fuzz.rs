//! A structure-aware fuzzer of the gateway's public RPCs: from a seed, random protobuf messages
//! built from each method's input descriptor (extreme numbers, odd strings, unknown fields, wrong
//! wire types), sent well framed through a tonic client with a pass-through codec, or malformed
//! (truncated, over-promising or compressed-flagged frames, empty bodies, bad metadata) as raw
//! HTTP/2 requests. Every answer is tallied by gRPC code; an INTERNAL or UNKNOWN answer, or a
//! reset stream, is kept as a finding with the request's bytes, to be replayed from its seed.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tower::ServiceExt as _;

/// How deep nested messages go.
const MAX_DEPTH: usize = 4;
/// The longest string or bytes field.
const HUGE: usize = 64 * 1024;
/// The deadline every call asks for (but those with a garbage one).
const DEADLINE: &str = "5S";
/// How long a call may take before it counts as hung: more than the longest deadline the gateway
/// gives (30 s unless configured otherwise).
const PATIENCE: Duration = Duration::from_secs(35);
/// How long a server stream is read before it is closed by the client.
const STREAM_PEEK: Duration = Duration::from_secs(1);

/// A public RPC: its path and its input type (fully qualified, with the leading dot).
#[derive(Debug, Clone)]
pub struct Method {
    /// Such as `/fastbreak.user.v1.UserService/CreateUser`.
    pub path: String,
    /// Such as `.fastbreak.user.v1.CreateUserRequest`.
    pub input: String,
    /// Whether the answer is a stream.
    pub server_streaming: bool,
}

/// The message types and enums of a descriptor set, by fully-qualified name.
#[derive(Debug, Default)]
pub struct Schema {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, Vec<i32>>,
}

impl Schema {
    /// Indexes every message and enum of `set`, nested ones included.
    pub fn new(set: &FileDescriptorSet) -> Self {
        fn walk(schema: &mut Schema, scope: &str, message: &DescriptorProto) {
            let name = format!("{scope}.{}", message.name());
            for e in &message.enum_type {
                schema.enums.insert(format!("{name}.{}", e.name()), e.value.iter().map(|v| v.number()).collect());
            }
            for nested in &message.nested_type {
                walk(schema, &name, nested);
            }
            schema.messages.insert(name, message.clone());
        }
        let mut schema = Schema::default();
        for file in &set.file {
            let scope = if file.package().is_empty() { String::new() } else { format!(".{}", file.package()) };
            for e in &file.enum_type {
                schema.enums.insert(format!("{scope}.{}", e.name()), e.value.iter().map(|v| v.number()).collect());
            }
            for message in &file.message_type {
                walk(&mut schema, &scope, message);
            }
        }
        schema
    }
}

/// Every public RPC at the gateway: the public services it forwards (as the gateway itself lists
/// them) and its own public services (system health).
pub fn public_methods(set: &FileDescriptorSet) -> Vec<Method> {
    let forwarded: Vec<String> = fastbreak_gateway::public_routes().into_iter().map(|(service, _)| service).collect();
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            let own = file.package() == "fastbreak.gateway.v1" && !service.name().ends_with("InternalService");
            if !own && !forwarded.contains(&full) {
                continue;
            }
            for method in &service.method {
                methods.push(Method {
                    path: format!("/{full}/{}", method.name()),
                    input: method.input_type().to_owned(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    methods
}

// ---- The generator ----------------------------------------------------------------------------

fn key(out: &mut Vec<u8>, number: u32, wire: u8) {
    varint(out, (u64::from(number) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn delimited(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    key(out, number, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Random messages from a seeded generator.
#[derive(Debug)]
pub struct Generator<'a> {
    schema: &'a Schema,
    rng: fastrand::Rng,
}

impl<'a> Generator<'a> {
    /// A generator of messages of `schema`, from `seed`.
    pub fn new(schema: &'a Schema, seed: u64) -> Self {
        Self { schema, rng: fastrand::Rng::with_seed(seed) }
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(0..100) < percent
    }

    fn int(&mut self) -> i64 {
        let extremes =
            [0, 1, -1, i64::MIN, i64::MAX, i64::from(i32::MIN), i64::from(i32::MAX), i64::from(u32::MAX), 100, -100];
        if self.chance(60) { extremes[self.rng.usize(..extremes.len())] } else { self.rng.i64(..) }
    }

    fn float(&mut self) -> f64 {
        let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, f64::MAX, f64::MIN_POSITIVE, 1e-300, -1.0];
        if self.chance(60) { odd[self.rng.usize(..odd.len())] } else { (self.rng.f64() - 0.5) * 1e6 }
    }

    fn text(&mut self) -> Vec<u8> {
        let odd: [&str; 16] = [
            "",
            " ",
            "0",
            "-1",
            "NaN",
            "1e400",
            "99999999999999999999999999.99",
            "alice@example.com",
            "ünïcødé 🏀 \u{202e}ltr\u{200b}",
            "\0",
            "../../etc/passwd",
            "' OR 1=1 --",
            "%s%n%x",
            "00000000-0000-0000-0000-000000000000",
            "2024-02-30T25:61:61Z",
            "USD",
        ];
        match self.rng.u8(0..10) {
            0..=4 => odd[self.rng.usize(..odd.len())].as_bytes().to_vec(),
            5 => uuid::Uuid::from_u128(self.rng.u128(..)).to_string().into_bytes(),
            6 => std::iter::repeat_n(b'x', self.rng.usize(1..=HUGE)).collect(),
            // Not UTF-8: a lone continuation byte, a surrogate, a cut sequence, 0xFF.
            7 => [&b"\x80"[..], b"\xed\xa0\x80", b"\xe2\x82", b"ok\xff"][self.rng.usize(..4)].to_vec(),
            _ => (0..self.rng.usize(0..40)).map(|_| self.rng.alphanumeric() as u8).collect(),
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = if self.chance(5) { self.rng.usize(..HUGE) } else { self.rng.usize(..64) };
        std::iter::repeat_with(|| self.rng.u8(..)).take(len).collect()
    }

    /// The wire bytes of a random `type_name` message.
    pub fn message(&mut self, type_name: &str, depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(message) = self.schema.messages.get(type_name) else { return out };
        let mut oneof_taken = vec![false; message.oneof_decl.len()];
        for field in &message.field {
            if let Some(oneof) = field.oneof_index.and_then(|i| oneof_taken.get_mut(i as usize)) {
                // Mostly one member of a oneof; now and then two (the last one wins).
                if (*oneof && !self.chance(10)) || !self.chance(50) {
                    continue;
                }
                *oneof = true;
            } else if !self.chance(70) {
                continue;
            }
            let times = if field.label() == Label::Repeated { self.rng.usize(0..4) } else { 1 };
            if field.label() == Label::Repeated && self.packable(field) && self.chance(50) {
                let mut packed = Vec::new();
                for _ in 0..self.rng.usize(0..6) {
                    self.scalar(&mut packed, field);
                }
                delimited(&mut out, field.number() as u32, &packed);
                continue;
            }
            for _ in 0..times {
                self.field(&mut out, field, depth);
            }
        }
        // Unknown fields, and a known field with the wrong wire type.
        if self.chance(15) {
            let number = self.rng.u32(1000..(1 << 29));
            self.any_wire(&mut out, number);
        }
        if self.chance(5)
            && let Some(field) = message.field.get(self.rng.usize(..message.field.len().max(1)))
        {
            self.any_wire(&mut out, field.number() as u32);
        }
        out
    }

    fn any_wire(&mut self, out: &mut Vec<u8>, number: u32) {
        match self.rng.u8(0..4) {
            0 => {
                key(out, number, 0);
                let v = self.int() as u64;
                varint(out, v);
            }
            1 => {
                key(out, number, 1);
                out.extend_from_slice(&self.rng.u64(..).to_le_bytes());
            }
            2 => {
                let bytes = self.bytes();
                delimited(out, number, &bytes);
            }
            _ => {
                key(out, number, 5);
                out.extend_from_slice(&self.rng.u32(..).to_le_bytes());
            }
        }
    }

    fn packable(&self, field: &FieldDescriptorProto) -> bool {
        !matches!(field.r#type(), Type::String | Type::Bytes | Type::Message | Type::Group)
    }

    /// A scalar's value without its key (for packed fields too).
    fn scalar(&mut self, out: &mut Vec<u8>, field: &FieldDescriptorProto) {
        match field.r#type() {
            Type::Double => out.extend_from_slice(&self.float().to_le_bytes()),
            Type::Float => out.extend_from_slice(&(self.float() as f32).to_le_bytes()),
            Type::Fixed64 | Type::Sfixed64 => out.extend_from_slice(&self.int().to_le_bytes()),
            Type::Fixed32 | Type::Sfixed32 => out.extend_from_slice(&(self.int() as u32).to_le_bytes()),
            Type::Sint32 | Type::Sint64 => {
                let v = self.int();
                varint(out, ((v << 1) ^ (v >> 63)) as u64);
            }
            Type::Bool => {
                let v = [0, 1, 2, u64::MAX][self.rng.usize(..4)];
                varint(out, v);
            }
            Type::Enum => {
                let known = self.schema.enums.get(field.type_name()).cloned().unwrap_or_default();
                let v = match known.get(self.rng.usize(..known.len() + 2)) {
                    Some(v) => i64::from(*v),
                    None => [i64::from(i32::MIN), i64::from(i32::MAX), -1, 9999][self.rng.usize(..4)],
                };
                varint(out, v as u64);
            }
            _ => {
                let v = self.int() as u64;
                varint(out, v);
            }
        }
    }

    fn field(&mut self, out: &mut Vec<u8>, field: &FieldDescriptorProto, depth: usize) {
        let number = field.number() as u32;
        match field.r#type() {
            Type::String => {
                let text = self.text();
                delimited(out, number, &text);
            }
            Type::Bytes => {
                let bytes = self.bytes();
                delimited(out, number, &bytes);
            }
            Type::Message | Type::Group => {
                let inner = if depth < MAX_DEPTH { self.message(field.type_name(), depth + 1) } else { Vec::new() };
                delimited(out, number, &inner);
            }
            Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                key(out, number, 1);
                self.scalar(out, field);
            }
            Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                key(out, number, 5);
                self.scalar(out, field);
            }
            _ => {
                key(out, number, 0);
                self.scalar(out, field);
            }
        }
    }
}

// ---- Cases ------------------------------------------------------------------------------------

/// What is wrong with a request's body, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    /// One frame around the message.
    Framed,
    /// The message's bytes cut short, framed.
    TruncatedMessage,
    /// A frame whose length prefix promises more than is sent.
    ShortFrame,
    /// The compressed flag set, with no `grpc-encoding`.
    CompressedFlag,
    /// No body at all.
    Empty,
}

/// What is wrong with a request's metadata, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meta {
    /// A valid bearer token.
    Token,
    /// No `authorization`.
    NoAuth,
    /// A garbage `authorization`.
    BadAuth,
    /// Bytes 0x80-0xFF in an ASCII header value.
    NotUtf8,
    /// A header value of tens of KiB.
    HugeHeader,
    /// A garbage `grpc-timeout` (with a valid token).
    BadTimeout,
}

/// One request: the method, its body and its metadata.
#[derive(Debug, Clone)]
pub struct Case {
    /// Which request of the run, for replaying it.
    pub index: u64,
    /// The method called.
    pub method: Method,
    /// The protobuf message (before framing).
    pub message: Vec<u8>,
    /// The body's form.
    pub form: Form,
    /// The metadata's form.
    pub meta: Meta,
    /// Headers beyond the gRPC ones.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Case {
    /// Request `index` of the run from `seed` (the same for the same pair, whatever the
    /// scheduling). `tokens` are bearer tokens of signed-up users.
    pub fn generate(schema: &Schema, methods: &[Method], tokens: &[String], seed: u64, index: u64) -> Self {
        let mut g = Generator::new(schema, seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let method = methods[g.rng.usize(..methods.len())].clone();
        let mut message = g.message(&method.input, 0);
        let form = match g.rng.u8(0..100) {
            0..=79 => Form::Framed,
            80..=86 => Form::TruncatedMessage,
            87..=92 => Form::ShortFrame,
            93..=96 => Form::CompressedFlag,
            _ => Form::Empty,
        };
        if form == Form::TruncatedMessage {
            message.truncate(g.rng.usize(..message.len().max(1)));
            message.push(0x80 | g.rng.u8(..)); // a varint that never ends
        }
        let token = &tokens[g.rng.usize(..tokens.len())];
        // Half the calls carry a valid token; the rest are spread over the bad forms.
        let meta = if g.chance(50) {
            Meta::Token
        } else {
            [Meta::NoAuth, Meta::BadAuth, Meta::NotUtf8, Meta::HugeHeader, Meta::BadTimeout][g.rng.usize(..5)]
        };
        let mut headers = Vec::new();
        if meta != Meta::BadTimeout {
            headers.push((HeaderName::from_static("grpc-timeout"), HeaderValue::from_static(DEADLINE)));
        }
        let bearer = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).expect("a token is ASCII");
        match meta {
            Meta::Token | Meta::NotUtf8 | Meta::HugeHeader | Meta::BadTimeout => {
                headers.push((http::header::AUTHORIZATION, bearer(token)));
            }
            Meta::BadAuth => {
                let bad = ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "bearer \t x", "Bearer a.b.c", "Token x"];
                let value = match g.rng.u8(0..3) {
                    0 => HeaderValue::from_static(bad[g.rng.usize(..bad.len())]),
                    1 => bearer(&"A".repeat(g.rng.usize(1..8192))),
                    _ => bearer(&token[..token.len() / 2]),
                };
                headers.push((http::header::AUTHORIZATION, value));
            }
            Meta::NoAuth => {}
        }
        let names = [
            "authorization",
            "grpc-timeout",
            "traceparent",
            "tracestate",
            "x-correlation-id",
            "x-fastbreak-info",
            "grpc-encoding",
            "grpc-accept-encoding",
            "user-agent",
            "x-fuzz",
        ];
        let name = HeaderName::from_static(names[g.rng.usize(..names.len())]);
        match meta {
            Meta::NotUtf8 => {
                let mut value: Vec<u8> = b"v-".to_vec();
                value.extend((0..g.rng.usize(1..16)).map(|_| g.rng.u8(0x80..=0xff)));
                headers.retain(|(n, _)| *n != name);
                headers.push((name, HeaderValue::from_bytes(&value).expect("obs-text is a valid value")));
            }
            Meta::HugeHeader => {
                let value = "h".repeat(g.rng.usize(1024..HUGE));
                headers.push((name, HeaderValue::from_str(&value).expect("ASCII")));
            }
            Meta::BadTimeout => {
                let bad =
                    ["", "abc", "99999999999H", "-1S", "1", "0x10S", "18446744073709551615n", "1.5S", "5 S", "٣S"];
                let value = bad[g.rng.usize(..bad.len())];
                let value = HeaderValue::from_bytes(value.as_bytes()).expect("a valid value");
                headers.push((HeaderName::from_static("grpc-timeout"), value));
            }
            _ => {}
        }
        Self { index, method, message, form, meta, headers }
    }

    /// The request body as sent (gRPC framing included).
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 5);
        match self.form {
            Form::Empty => return out,
            Form::CompressedFlag => out.push(1),
            _ => out.push(0),
        }
        let promised =
            self.message.len() as u32 + if self.form == Form::ShortFrame { 1 + self.message.len() as u32 } else { 0 };
        out.extend_from_slice(&promised.to_be_bytes());
        out.extend_from_slice(&self.message);
        out
    }

    /// Whether it is sent by the tonic client (a well-formed frame and nothing odd in its
    /// metadata) rather than as a raw HTTP/2 request.
    fn by_tonic(&self) -> bool {
        matches!(self.form, Form::Framed | Form::TruncatedMessage)
            && matches!(self.meta, Meta::Token | Meta::NoAuth | Meta::BadAuth)
    }
}

// ---- Sending ----------------------------------------------------------------------------------

/// A codec that sends and receives messages as the bytes they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this code (and message).
    Answer(Code, String),
    /// An HTTP answer without a gRPC status.
    Http(u16),
    /// No answer: a reset stream, a refused connection, a hang.
    Transport(String),
}

/// Sends `case` on `channel` and tells how it ended.
pub async fn send(channel: &Channel, case: &Case) -> Outcome {
    match tokio::time::timeout(PATIENCE, send_now(channel, case)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Transport("no answer in time".into()),
    }
}

async fn send_now(channel: &Channel, case: &Case) -> Outcome {
    let path: http::uri::PathAndQuery = case.method.path.parse().expect("a valid path");
    if case.by_tonic() {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        if let Err(error) = grpc.ready().await {
            return Outcome::Transport(format!("not ready: {error}"));
        }
        let mut request = tonic::Request::new(Bytes::from(case.message.clone()));
        for (name, value) in &case.headers {
            let value = tonic::metadata::MetadataValue::try_from(value.as_bytes()).expect("an ASCII value");
            request
                .metadata_mut()
                .insert(tonic::metadata::MetadataKey::from_bytes(name.as_ref()).expect("a key"), value);
        }
        let answer = if case.method.server_streaming {
            // A stream still open after a while is a stream that works.
            let first = async { grpc.server_streaming(request, path, RawCodec).await?.into_inner().message().await };
            tokio::time::timeout(STREAM_PEEK, first).await.unwrap_or(Ok(None)).map(|_| ())
        } else {
            grpc.unary(request, path, RawCodec).await.map(|_| ())
        };
        return match answer {
            Ok(()) => Outcome::Answer(Code::Ok, String::new()),
            // A status the client made up from a transport error carries that error.
            Err(status) if std::error::Error::source(&status).is_some() => {
                Outcome::Transport(format!("{:?}: {}", status.code(), chain(&status)))
            }
            Err(status) => Outcome::Answer(status.code(), status.message().to_owned()),
        };
    }
    let body = tonic::body::Body::new(http_body_util::Full::new(Bytes::from(case.body())));
    let mut request = http::Request::new(body);
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = path.as_str().parse().expect("a valid URI");
    let headers = request.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    for (name, value) in &case.headers {
        headers.insert(name.clone(), value.clone());
    }
    let response = match channel.clone().oneshot(request).await {
        Ok(response) => response,
        Err(error) => return Outcome::Transport(format!("request failed: {}", chain(&error))),
    };
    if let Some(outcome) = grpc_status(response.headers()) {
        return outcome;
    }
    let http_status = response.status();
    let collected = match tokio::time::timeout(STREAM_PEEK, response.into_body().collect()).await {
        Err(_) if case.method.server_streaming => return Outcome::Answer(Code::Ok, "stream open".into()),
        Err(_) => return Outcome::Transport("the body never ended".into()),
        Ok(Err(error)) => return Outcome::Transport(format!("body failed: {}", chain(&error))),
        Ok(Ok(collected)) => collected,
    };
    collected.trailers().and_then(grpc_status).unwrap_or(Outcome::Http(http_status.as_u16()))
}

/// An error and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Outcome> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or_default();
    let message = percent_decode(message);
    Some(Outcome::Answer(Code::from_i32(code), message))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], text.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- Running ----------------------------------------------------------------------------------

/// Whether an outcome that is no gRPC answer is what the request asked for: a header over the
/// server's limit is refused by HTTP/2 (431, or its connection closed when far over, with the
/// other calls on it), and a deadline may pass at the client first.
fn expected(case: &Case, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Http(431) => case.meta == Meta::HugeHeader,
        Outcome::Transport(kind) => {
            case.meta == Meta::HugeHeader || (case.meta != Meta::BadTimeout && kind.contains("Timeout expired"))
        }
        _ => false,
    }
}

/// A suspicious answer, with what it takes to replay it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The request.
    pub case: Case,
    /// The answer.
    pub outcome: Outcome,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self.case.body();
        let hex: String = body.iter().take(512).map(|b| format!("{b:02x}")).collect();
        let more = if body.len() > 512 { format!("… ({} bytes)", body.len()) } else { String::new() };
        writeln!(
            f,
            "request #{} {} form {:?} meta {:?}",
            self.case.index, self.case.method.path, self.case.form, self.case.meta
        )?;
        writeln!(f, "  answer: {:?}", self.outcome)?;
        write!(f, "  body (hex, frame included): {hex}{more}")
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests sent.
    pub sent: u64,
    /// Answers by gRPC code, with the first request and message of each.
    pub codes: BTreeMap<String, (u64, String)>,
    /// Refusals the request asked for (see [`expected`]), by kind.
    pub refused: BTreeMap<String, u64>,
    /// HTTP answers without a gRPC status, by HTTP status.
    pub http: BTreeMap<u16, u64>,
    /// Transport errors, by kind.
    pub transport: BTreeMap<String, u64>,
    /// INTERNAL/UNKNOWN answers, unexpected HTTP answers and transport errors, by kind: how
    /// many, the methods that gave them, and the first.
    pub findings: BTreeMap<String, (u64, std::collections::BTreeSet<String>, Finding)>,
}

impl Tally {
    /// Answers INTERNAL or UNKNOWN.
    pub fn internal_or_unknown(&self) -> u64 {
        ["Internal", "Unknown"].iter().filter_map(|code| self.codes.get(*code)).map(|(n, _)| n).sum()
    }

    fn add(&mut self, case: Case, outcome: Outcome) {
        self.sent += 1;
        if expected(&case, &outcome) {
            let kind = match &outcome {
                Outcome::Http(status) => format!("HTTP {status}"),
                other => short(&format!("{other:?}")),
            };
            *self.refused.entry(format!("{kind} ({:?})", case.meta)).or_default() += 1;
            return;
        }
        let finding = match &outcome {
            Outcome::Answer(code, message) => {
                let first = format!("#{} {}: {}", case.index, case.method.path, short(message));
                self.codes.entry(format!("{code:?}")).or_insert((0, first)).0 += 1;
                matches!(code, Code::Internal | Code::Unknown).then(|| format!("{code:?}: {}", short(message)))
            }
            Outcome::Http(status) => {
                *self.http.entry(*status).or_default() += 1;
                // A header over the server's limit is refused before gRPC sees the call.
                Some(format!("HTTP {status} without grpc-status"))
            }
            Outcome::Transport(kind) => {
                *self.transport.entry(short(kind)).or_default() += 1;
                Some(format!("transport: {}", short(kind)))
            }
        };
        if let Some(kind) = finding {
            let method = case.method.path.clone();
            let entry = self.findings.entry(kind).or_insert_with(|| (0, Default::default(), Finding { case, outcome }));
            entry.0 += 1;
            entry.1.insert(method);
        }
    }
}

/// A message's gist, so that answers differing only in detail (a field's name, a number) count
/// as one kind.
fn short(message: &str) -> String {
    let parts: Vec<&str> =
        message.split(": ").filter(|part| !(part.contains('.') && !part.contains(' ') && part.len() > 3)).collect();
    parts.join(": ").chars().take(100).map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "requests sent: {}", self.sent)?;
        for (code, (n, first)) in &self.codes {
            writeln!(f, "  answered {code}: {n} (first: {first})")?;
        }
        for (status, n) in &self.http {
            writeln!(f, "  answered HTTP {status} without grpc-status: {n}")?;
        }
        for (kind, n) in &self.transport {
            writeln!(f, "  transport error ({kind}): {n}")?;
        }
        for (kind, n) in &self.refused {
            writeln!(f, "  refused as asked, {kind}: {n}")?;
        }
        for (kind, (n, methods, first)) in &self.findings {
            let names: Vec<&str> = methods.iter().map(|m| m.rsplit('/').next().unwrap_or(m)).collect();
            writeln!(f, "FINDING ×{n} in {} methods ({}): {kind}\n{first}", methods.len(), names.join(", "))?;
        }
        Ok(())
    }
}

/// Where a run sends its requests: a channel per client address (the gateway rate-limits per
/// address), and the tokens of signed-up users.
#[derive(Debug, Clone)]
pub struct Client {
    channels: Vec<Channel>,
    /// Requests with huge headers go on a connection of their own: the server may close it.
    huge: Channel,
    tokens: Vec<String>,
}

impl Client {
    /// Connects to the gateway at `gateway` from `addresses` loopback addresses (127.0.0.2 and
    /// on) and signs up `users` users.
    pub async fn connect(gateway: SocketAddr, addresses: u8, users: usize) -> Self {
        let mut channels = Vec::new();
        for n in 0..=addresses {
            let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + n));
            let channel = Channel::from_shared(format!("http://{gateway}"))
                .expect("a valid URL")
                .local_address(Some(local))
                .connect()
                .await
                .unwrap_or_else(|error| panic!("cannot connect to {gateway} from {local}: {error}"));
            channels.push(channel);
        }
        let huge = channels.pop().expect("one more than `addresses`");
        let mut tokens = Vec::new();
        for n in 0..users {
            tokens.push(sign_up(channels[n % channels.len()].clone(), &format!("fuzz-{n}@example.com")).await);
        }
        Self { channels, huge, tokens }
    }
}

async fn sign_up(gateway: Channel, email: &str) -> String {
    use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
    use fastbreak_proto::user::v1::{CreateAccessTokenRequest, CreateUserRequest};
    let mut users = UserServiceClient::new(gateway);
    let password = "correct horse battery staple".to_owned();
    users
        .create_user(CreateUserRequest {
            display_name: "Fuzzer".into(),
            email: email.into(),
            password: password.clone(),
        })
        .await
        .expect("CreateUser is open");
    users
        .create_access_token(CreateAccessTokenRequest { email: email.into(), password, ..Default::default() })
        .await
        .expect("CreateAccessToken is open")
        .into_inner()
        .secret
}

/// Sends requests `0..count` of the run from `seed` to the gateway through `client`, `concurrency` at a time.
pub async fn run(client: &Client, seed: u64, count: u64, concurrency: usize) -> Tally {
    let set = crate::descriptor_set();
    let schema = Arc::new(Schema::new(&set));
    let methods: Arc<Vec<Method>> = Arc::new(public_methods(&set));
    assert!(!methods.is_empty(), "no public methods in the descriptor set");
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (schema, methods, next, tally, client) =
            (schema.clone(), methods.clone(), next.clone(), tally.clone(), client.clone());
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= count {
                    return;
                }
                let case = Case::generate(&schema, &methods, &client.tokens, seed, index);
                let channel = match case.meta {
                    Meta::HugeHeader => &client.huge,
                    _ => &client.channels[index as usize % client.channels.len()],
                };
                let outcome = send(channel, &case).await;
                tally.lock().expect("not poisoned").add(case, outcome);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a worker does not panic");
    }
    Arc::try_unwrap(tally).expect("the workers are done").into_inner().expect("not poisoned")
}

/// Targets (by name) that do not answer SERVING to `grpc.health.v1.Health/Check`.
pub async fn not_serving(addrs: &BTreeMap<&'static str, SocketAddr>) -> Vec<String> {
    crate::attack::healths(addrs)
        .await
        .into_iter()
        .filter(|(_, status)| *status != tonic_health::pb::health_check_response::ServingStatus::Serving)
        .map(|(name, status)| format!("{name} at {}: {status:?}", addrs[name]))
        .collect()
}

/// The seed of a run: `FASTBREAK_FUZZ_SEED` if set, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("FASTBREAK_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// This process's resident memory, in KiB (`VmRSS` of `/proc/self/status`).
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:")?.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
