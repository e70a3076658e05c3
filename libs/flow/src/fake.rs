//! A local access node for tests and demos: serves a recorded chain of blocks and their event
//! payloads over the real Access API (gRPC, JSON-CDC payloads), caps a height range as public
//! access nodes do, can be told to fail, and records the ranges it was asked for.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::access::access_api_server::{AccessApi, AccessApiServer};
use crate::access::{self, events_response};
use crate::entities;

/// The most blocks one `GetEventsForHeightRange` may cover (public access nodes allow 250).
pub const RANGE_CAP: u64 = 250;

/// One event of a recorded block.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Its type, such as `A.c1e4f4f4c4257510.TopShotMarketV3.MomentListed`.
    pub type_id: String,
    /// Its transaction's index in the block.
    pub transaction_index: u32,
    /// Its index in the transaction.
    pub event_index: u32,
    /// The JSON-CDC payload.
    pub payload: Vec<u8>,
}

/// A recorded block.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedBlock {
    /// Its height.
    pub height: u64,
    /// Its time, in seconds since the epoch.
    pub timestamp: i64,
    /// Its events.
    pub events: Vec<RecordedEvent>,
}

/// A block's id, made from its height (a recorded chain has no hashes of its own).
pub fn block_id(height: u64) -> Vec<u8> {
    let mut id = vec![0_u8; 24];
    id.extend_from_slice(&height.to_be_bytes());
    id
}

/// A transaction's id, made from its block and index.
pub fn transaction_id(height: u64, index: u32) -> Vec<u8> {
    let mut id = vec![0_u8; 20];
    id.extend_from_slice(&height.to_be_bytes());
    id.extend_from_slice(&index.to_be_bytes());
    id
}

#[derive(Debug, Default)]
struct State {
    blocks: Vec<RecordedBlock>,
    /// The sealed head: blocks above it are not served yet.
    sealed: u64,
    /// Requests still to fail with UNAVAILABLE.
    failures: u32,
    /// Every events request: (type, start, end).
    asked: Vec<(String, u64, u64)>,
}

/// The fake's handle: what it serves, and what it was asked.
#[derive(Debug, Clone, Default)]
pub struct FakeChain {
    state: Arc<Mutex<State>>,
}

impl FakeChain {
    /// A chain of `blocks` (in height order), sealed up to the last of them.
    pub fn new(blocks: Vec<RecordedBlock>) -> Self {
        let sealed = blocks.last().map_or(0, |b| b.height);
        Self { state: Arc::new(Mutex::new(State { blocks, sealed, ..State::default() })) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seals up to `height` (blocks above it stay unseen).
    pub fn seal_to(&self, height: u64) {
        self.state().sealed = height;
    }

    /// Adds blocks (above the recorded ones) and seals them.
    pub fn append(&self, blocks: Vec<RecordedBlock>) {
        let mut state = self.state();
        state.blocks.extend(blocks);
        state.sealed = state.blocks.last().map_or(0, |b| b.height);
    }

    /// Makes the next `n` requests fail with UNAVAILABLE.
    pub fn fail_next(&self, n: u32) {
        self.state().failures = n;
    }

    /// The events requests made so far: (type, start height, end height).
    pub fn asked(&self) -> Vec<(String, u64, u64)> {
        self.state().asked.clone()
    }

    fn fail(&self) -> Result<(), Status> {
        let mut state = self.state();
        if state.failures > 0 {
            state.failures -= 1;
            return Err(Status::unavailable("the access node is unavailable (told to fail)"));
        }
        Ok(())
    }

    fn header(&self, height: u64) -> entities::BlockHeader {
        let state = self.state();
        let timestamp = state.blocks.iter().find(|b| b.height == height).map_or(0, |b| b.timestamp);
        entities::BlockHeader {
            id: block_id(height),
            parent_id: block_id(height.saturating_sub(1)),
            height,
            timestamp: Some(prost_types::Timestamp { seconds: timestamp, nanos: 0 }),
        }
    }

    /// Serves the Access API on `127.0.0.1` at a free port until the returned handle is dropped.
    pub async fn serve(&self) -> FakeAccessNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let address = listener.local_addr().expect("the port's address");
        let (stop, stopped) = oneshot::channel::<()>();
        let service = AccessApiServer::new(self.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeAccessNode { address, _stop: stop }
    }
}

/// A running fake access node; it stops when dropped.
#[derive(Debug)]
pub struct FakeAccessNode {
    /// Where it listens.
    pub address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

#[tonic::async_trait]
impl AccessApi for FakeChain {
    async fn ping(&self, _: Request<access::PingRequest>) -> Result<Response<access::PingResponse>, Status> {
        self.fail()?;
        Ok(Response::new(access::PingResponse {}))
    }

    async fn get_latest_block_header(
        &self,
        request: Request<access::GetLatestBlockHeaderRequest>,
    ) -> Result<Response<access::BlockHeaderResponse>, Status> {
        self.fail()?;
        let height = {
            let state = self.state();
            if request.get_ref().is_sealed { state.sealed } else { state.blocks.last().map_or(0, |b| b.height) }
        };
        Ok(Response::new(access::BlockHeaderResponse {
            block: Some(self.header(height)),
            block_status: entities::BlockStatus::BlockSealed as i32,
            metadata: None,
        }))
    }

    async fn execute_script_at_block_height(
        &self,
        _: Request<access::ExecuteScriptAtBlockHeightRequest>,
    ) -> Result<Response<access::ExecuteScriptResponse>, Status> {
        Err(Status::unimplemented("this fake access node runs no scripts"))
    }

    async fn get_events_for_height_range(
        &self,
        request: Request<access::GetEventsForHeightRangeRequest>,
    ) -> Result<Response<access::EventsResponse>, Status> {
        let r = request.into_inner();
        self.state().asked.push((r.r#type.clone(), r.start_height, r.end_height));
        self.fail()?;
        if r.end_height < r.start_height {
            return Err(Status::invalid_argument("start height must not be above end height"));
        }
        if r.end_height - r.start_height >= RANGE_CAP {
            return Err(Status::invalid_argument(format!(
                "height range {}..{} covers more than {RANGE_CAP} blocks",
                r.start_height, r.end_height
            )));
        }
        if r.event_encoding_version != entities::EventEncodingVersion::JsonCdcV0 as i32 {
            return Err(Status::invalid_argument("this fake serves JSON-CDC payloads only"));
        }
        let state = self.state();
        if r.end_height > state.sealed {
            return Err(Status::out_of_range(format!(
                "end height {} is above the latest sealed height {}",
                r.end_height, state.sealed
            )));
        }
        let results = state
            .blocks
            .iter()
            .filter(|b| (r.start_height..=r.end_height).contains(&b.height))
            .map(|b| events_response::Result {
                block_id: block_id(b.height),
                block_height: b.height,
                events: b
                    .events
                    .iter()
                    .filter(|e| e.type_id == r.r#type)
                    .map(|e| entities::Event {
                        r#type: e.type_id.clone(),
                        transaction_id: transaction_id(b.height, e.transaction_index),
                        transaction_index: e.transaction_index,
                        event_index: e.event_index,
                        payload: e.payload.clone(),
                    })
                    .collect(),
                block_timestamp: Some(prost_types::Timestamp { seconds: b.timestamp, nanos: 0 }),
            })
            .collect();
        Ok(Response::new(access::EventsResponse { results, metadata: None }))
    }
}
