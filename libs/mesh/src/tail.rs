//! Server streams that follow an ordered log (listing events, game events): every entry after
//! a sequence, in order, then new entries as they are written, until the client goes away, the
//! stream reaches its deadline or lifetime, it stays idle too long, or the server drains.
//!
//! One [`Hub`] per stream kind per process does the reading. A single follower reads what is
//! written after the newest entry it holds and keeps the most recent entries in memory; every
//! subscriber that is that far along is served from there, so a thousand subscribers cost one
//! database reader, not a thousand. A subscriber that starts further back replays from the
//! database in batches, through a few replay slots shared by the whole hub (a connection is
//! held for one batch's read, never while a subscriber is slow to take what it was sent), and
//! joins the followers once it reaches what the hub holds. Writers commit entries in sequence
//! order, so reading "after the last one sent" never skips one, and each entry is sent once.
//!
//! Streams are bulkheaded: each caller (the user, or the calling service) may hold a bounded
//! number at once, and the process a bounded number in all; beyond them a new stream is
//! refused with RESOURCE_EXHAUSTED and a retry delay.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::status;

/// A server stream of `T`.
pub type TailStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Where the hub's follower waits between reads.
#[derive(Debug, Clone)]
pub struct Wake {
    /// Bumped by this process after it writes entries.
    pub written: watch::Receiver<u64>,
    /// True once the server drains: every stream ends.
    pub draining: watch::Receiver<bool>,
    /// How often to look anyway (for entries other processes wrote).
    pub poll: Duration,
}

/// The bounds of a hub's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Streams one caller may hold at once.
    pub per_caller: usize,
    /// Streams the process may hold at once (of this kind).
    pub total: usize,
    /// The longest a stream lives (when its caller set no shorter deadline); the client
    /// resumes with the last sequence it saw.
    pub lifetime: Duration,
    /// A stream that sent nothing for this long ends (the client resumes when it wants more);
    /// so does one whose client took nothing for this long.
    pub idle: Duration,
    /// Recent entries kept in memory for the subscribers that follow.
    pub recent: usize,
    /// Replays from the database at once, for the subscribers that start further back.
    pub replays: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_caller: 16,
            total: 4096,
            lifetime: Duration::from_secs(30 * 60),
            idle: Duration::from_secs(5 * 60),
            recent: 4096,
            replays: 2,
        }
    }
}

impl Limits {
    /// Reads `FASTBREAK_STREAMS_PER_CALLER`, `FASTBREAK_STREAMS_TOTAL`,
    /// `FASTBREAK_STREAM_LIFETIME` and `FASTBREAK_STREAM_IDLE`, noting problems in `reader`.
    pub fn read(reader: &mut fastbreak_config::Reader) -> Self {
        let mut limits = Self::default();
        let count = |range: std::ops::RangeInclusive<usize>| {
            move |v: &str| v.parse::<usize>().ok().filter(|n| range.contains(n))
        };
        if let Some(n) =
            reader.optional("FASTBREAK_STREAMS_PER_CALLER", "a whole number from 1 to 1000", count(1..=1000))
        {
            limits.per_caller = n;
        }
        if let Some(n) =
            reader.optional("FASTBREAK_STREAMS_TOTAL", "a whole number from 1 to 100000", count(1..=100_000))
        {
            limits.total = n;
        }
        let (s, h) = (Duration::from_secs(1), Duration::from_secs(24 * 3600));
        reader.set_duration("FASTBREAK_STREAM_LIFETIME", "a duration from 1s to 24h", s..=h, &mut limits.lifetime);
        reader.set_duration("FASTBREAK_STREAM_IDLE", "a duration from 1s to 24h", s..=h, &mut limits.idle);
        limits
    }
}

/// Reads the entries after a sequence, in order, at most a batch of them (an empty batch when
/// there is none yet).
pub type Fetch<T> = Arc<dyn Fn(i64) -> BoxFuture<'static, Result<Vec<(i64, T)>, Status>> + Send + Sync>;

/// The newest sequence written so far.
pub type Last = Arc<dyn Fn() -> BoxFuture<'static, Result<i64, Status>> + Send + Sync>;

/// One stream kind's shared tail.
pub struct Hub<T> {
    kind: &'static str,
    /// The follower's reads (on a connection of background work's own).
    follow: Fetch<T>,
    /// The replays' reads (on the callers' connections).
    replay: Fetch<T>,
    last: Last,
    wake: Wake,
    limits: Limits,
    state: Arc<Mutex<State<T>>>,
    /// The newest sequence the follower holds (None until it started).
    head: watch::Sender<Option<i64>>,
    replays: Arc<Semaphore>,
}

impl<T> std::fmt::Debug for Hub<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("kind", &self.kind).field("limits", &self.limits).finish_non_exhaustive()
    }
}

struct State<T> {
    /// The entries after `floor`, oldest first.
    recent: VecDeque<(i64, Arc<T>)>,
    /// Every entry after it up to the head is in `recent`.
    floor: i64,
    follower: bool,
    streams: HashMap<String, usize>,
    total: usize,
}

/// The hub's state, locked (a panic elsewhere while it was held leaves nothing half-done that
/// matters here).
fn lock<T>(state: &Mutex<State<T>>) -> std::sync::MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a stream holds while it runs: its place in the caps.
struct Held<T> {
    state: Arc<Mutex<State<T>>>,
    caller: String,
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.streams.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                state.streams.remove(&self.caller);
            }
        }
    }
}

/// One subscriber's request.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Who holds the stream (a user id, or the calling service): what the per-caller cap counts.
    pub caller: String,
    /// The sequence to start after; None: after the newest.
    pub after: Option<i64>,
}

impl<T: Clone + Send + Sync + 'static> Hub<T> {
    /// A hub over `follow` and `replay` (the entries after a sequence: for the follower, and
    /// for subscribers further back) and `last` (the newest sequence).
    pub fn new(
        kind: &'static str,
        [follow, replay]: [Fetch<T>; 2],
        last: Last,
        wake: Wake,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Self {
            kind,
            follow,
            replay,
            last,
            wake,
            limits,
            state: Arc::new(Mutex::new(State {
                recent: VecDeque::new(),
                floor: 0,
                follower: false,
                streams: HashMap::new(),
                total: 0,
            })),
            head: watch::Sender::new(None),
            replays: Arc::new(Semaphore::new(limits.replays.max(1))),
        })
    }

    /// Opens a stream of the entries `keep` accepts, or says why not (the caps, a bad start).
    pub async fn subscribe(
        self: &Arc<Self>,
        subscription: Subscription,
        keep: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Result<TailStream<T>, Status> {
        let held = self.hold(&subscription.caller)?;
        let head = self.head().await?;
        let start = subscription.after.unwrap_or(head);
        let lifetime = self.limits.lifetime;
        let (tx, rx) = mpsc::channel(256);
        let hub = self.clone();
        tokio::spawn(async move {
            let _held = held;
            let end = Instant::now() + lifetime;
            let outcome = tokio::select! {
                outcome = hub.run(start, &keep, &tx) => outcome,
                () = tokio::time::sleep_until(end) => Err(Ending::Deadline),
            };
            let status = match outcome {
                Ok(()) => return,
                Err(Ending::Deadline) => Status::deadline_exceeded(format!(
                    "the {} stream reached its lifetime ({} s); resume with after_sequence set to the \
                     last sequence received",
                    hub.kind,
                    lifetime.as_secs()
                )),
                Err(Ending::Idle) => Status::deadline_exceeded(format!(
                    "the {} stream was idle for {} s; resume with after_sequence set to the last sequence received",
                    hub.kind,
                    hub.limits.idle.as_secs()
                )),
                Err(Ending::Failed(status)) => status,
            };
            let _ = tx.try_send(Err(status));
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// Takes a place in the caps for `caller`.
    fn hold(&self, caller: &str) -> Result<Held<T>, Status> {
        let mut state = lock(&self.state);
        let mine = state.streams.get(caller).copied().unwrap_or(0);
        if mine >= self.limits.per_caller {
            return Err(status::rate_limited(
                format!(
                    "this caller already holds {mine} {} streams, the most one may hold at once; close one first",
                    self.kind
                ),
                Duration::from_secs(5),
            ));
        }
        if state.total >= self.limits.total {
            return Err(status::rate_limited(
                format!("this server already serves {} {} streams, its most; try again later", state.total, self.kind),
                Duration::from_secs(5),
            ));
        }
        *state.streams.entry(caller.to_owned()).or_default() += 1;
        state.total += 1;
        Ok(Held { state: self.state.clone(), caller: caller.to_owned() })
    }

    /// The follower's head, starting the follower if it is not running yet.
    async fn head(self: &Arc<Self>) -> Result<i64, Status> {
        if let Some(head) = *self.head.borrow() {
            return Ok(head);
        }
        let start = {
            let mut state = lock(&self.state);
            !std::mem::replace(&mut state.follower, true)
        };
        if start {
            let last = match (self.last)().await {
                Ok(last) => last,
                Err(status) => {
                    lock(&self.state).follower = false;
                    return Err(status);
                }
            };
            lock(&self.state).floor = last;
            self.head.send_replace(Some(last));
            tokio::spawn(self.clone().follow(last));
            return Ok(last);
        }
        let mut head = self.head.subscribe();
        let seen = head.wait_for(Option::is_some).await.map_err(|_| Status::unavailable("the stream is closing"))?;
        Ok(seen.unwrap_or_default())
    }

    /// The one reader of the log: appends what is written to the recent entries.
    async fn follow(self: Arc<Self>, mut head: i64) {
        let Wake { mut written, mut draining, poll } = self.wake.clone();
        loop {
            written.mark_unchanged();
            let batch = match (self.follow)(head).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(kind = self.kind, %error, "the stream follower could not read; trying again");
                    Vec::new()
                }
            };
            if let Some((newest, _)) = batch.last() {
                head = *newest;
                let mut state = lock(&self.state);
                state.recent.extend(batch.into_iter().map(|(sequence, entry)| (sequence, Arc::new(entry))));
                while state.recent.len() > self.limits.recent.max(1) {
                    if let Some((sequence, _)) = state.recent.pop_front() {
                        state.floor = sequence;
                    }
                }
                drop(state);
                self.head.send_replace(Some(head));
                continue;
            }
            tokio::select! {
                _ = written.changed() => {}
                () = tokio::time::sleep(poll) => {}
                _ = draining.wait_for(|d| *d) => return,
            }
        }
    }

    /// The entries after `cursor` this subscriber gets next: from memory when the hub holds
    /// them, else a batch replayed from the log.
    async fn next_after(&self, cursor: i64) -> Result<Vec<(i64, Arc<T>)>, Status> {
        {
            let state = lock(&self.state);
            if cursor >= state.floor {
                let from = state.recent.partition_point(|(sequence, _)| *sequence <= cursor);
                return Ok(state.recent.range(from..).take(256).cloned().collect());
            }
        }
        let _slot = self.replays.acquire().await.map_err(|_| Status::unavailable("the stream is closing"))?;
        let batch = (self.replay)(cursor).await?;
        Ok(batch.into_iter().map(|(sequence, entry)| (sequence, Arc::new(entry))).collect())
    }

    async fn run(
        &self,
        mut cursor: i64,
        keep: &impl Fn(&T) -> bool,
        tx: &mpsc::Sender<Result<T, Status>>,
    ) -> Result<(), Ending> {
        let mut head = self.head.subscribe();
        let mut draining = self.wake.draining.clone();
        let mut last_sent = Instant::now();
        loop {
            head.mark_unchanged();
            let batch = self.next_after(cursor).await.map_err(Ending::Failed)?;
            if batch.is_empty() {
                let idle_until = last_sent + self.limits.idle;
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return Ok(()) },
                    () = tokio::time::sleep_until(idle_until) => return Err(Ending::Idle),
                    () = tx.closed() => return Ok(()),
                    _ = draining.wait_for(|d| *d) => return Ok(()),
                }
                continue;
            }
            for (sequence, entry) in batch {
                cursor = sequence;
                if !keep(&entry) {
                    continue;
                }
                match tokio::time::timeout(self.limits.idle, tx.send(Ok((*entry).clone()))).await {
                    Ok(Ok(())) => last_sent = Instant::now(),
                    Ok(Err(_)) => return Ok(()),
                    Err(_) => return Err(Ending::Idle),
                }
            }
        }
    }
}

/// Why a stream ended early.
enum Ending {
    Deadline,
    Idle,
    Failed(Status),
}

/// Who holds a stream, for the per-caller cap: the user the call is for, or else the mesh's
/// own callers together.
pub fn caller<T>(request: &tonic::Request<T>) -> String {
    crate::caller::user_id(request).map_or_else(|_| "internal".to_owned(), |user| user.to_string())
}

/// Makes a [`Fetch`] of an async function.
pub fn fetch<T, F, Fut>(f: F) -> Fetch<T>
where
    F: Fn(i64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<(i64, T)>, Status>> + Send + 'static,
{
    Arc::new(move |after| Box::pin(f(after)))
}

/// Makes a [`Last`] of an async function.
pub fn last<F, Fut>(f: F) -> Last
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<i64, Status>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::StreamExt as _;

    use super::*;

    /// A log in memory, counting its reads and the most at once.
    #[derive(Default)]
    struct Log {
        entries: Mutex<Vec<i64>>,
        reads: AtomicUsize,
        reading: AtomicUsize,
        most_at_once: AtomicUsize,
    }

    fn hub(log: &Arc<Log>, limits: Limits) -> (Arc<Hub<i64>>, watch::Sender<u64>, watch::Sender<bool>) {
        let (written, written_rx) = watch::channel(0);
        let (draining, draining_rx) = watch::channel(false);
        let reader = log.clone();
        let fetch = fetch(move |after| {
            let log = reader.clone();
            async move {
                log.reads.fetch_add(1, Ordering::SeqCst);
                let now = log.reading.fetch_add(1, Ordering::SeqCst) + 1;
                log.most_at_once.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                let batch: Vec<(i64, i64)> =
                    log.entries.lock().unwrap().iter().filter(|s| **s > after).take(100).map(|s| (*s, *s)).collect();
                log.reading.fetch_sub(1, Ordering::SeqCst);
                Ok(batch)
            }
        });
        let newest = log.clone();
        let last = last(move || {
            let log = newest.clone();
            async move { Ok(log.entries.lock().unwrap().last().copied().unwrap_or(0)) }
        });
        let wake = Wake { written: written_rx, draining: draining_rx, poll: Duration::from_secs(60) };
        (Hub::new("test", [fetch.clone(), fetch], last, wake, limits), written, draining)
    }

    fn write(log: &Log, written: &watch::Sender<u64>, range: std::ops::RangeInclusive<i64>) {
        log.entries.lock().unwrap().extend(range);
        written.send_modify(|n| *n += 1);
    }

    fn subscription(caller: &str, after: Option<i64>) -> Subscription {
        Subscription { caller: caller.to_owned(), after }
    }

    #[tokio::test]
    async fn a_hundred_followers_cost_one_reader_and_replays_share_a_few_slots_each_entry_once_in_order() {
        let log = Arc::new(Log::default());
        let limits = Limits { recent: 50, replays: 2, ..Limits::default() };
        let (hub, written, _draining) = hub(&log, limits);
        write(&log, &written, 1..=1000);
        // A hundred followers, from the newest entry on.
        let mut followers = Vec::new();
        for n in 0..100 {
            followers.push(hub.subscribe(subscription(&format!("user-{n}"), None), |_| true).await.unwrap());
        }
        // Forty replays from the start of the log, further back than the hub holds.
        let mut replays = Vec::new();
        for n in 0..40 {
            replays.push(hub.subscribe(subscription(&format!("replay-{n}"), Some(0)), |_| true).await.unwrap());
        }
        let reads_before = log.reads.load(Ordering::SeqCst);
        write(&log, &written, 1001..=1030);
        for follower in &mut followers {
            let got: Vec<i64> = follower.by_ref().take(30).map(Result::unwrap).collect().await;
            assert_eq!(got, (1001..=1030).collect::<Vec<_>>());
        }
        for replay in &mut replays {
            let got: Vec<i64> = replay.by_ref().take(1030).map(Result::unwrap).collect().await;
            assert_eq!(got, (1..=1030).collect::<Vec<_>>(), "every entry once, in order");
        }
        assert!(
            log.most_at_once.load(Ordering::SeqCst) <= 1 + limits.replays,
            "reads at once: {} (one follower and {} replay slots)",
            log.most_at_once.load(Ordering::SeqCst),
            limits.replays
        );
        // The followers' thirty new entries took the follower's reads alone (a few), not one
        // per follower; the replays read their own batches (at most 100 entries each).
        let reads = log.reads.load(Ordering::SeqCst) - reads_before;
        assert!(reads <= 5 + 40 * 11, "reads: {reads}");
    }

    #[tokio::test]
    async fn streams_past_a_callers_cap_or_the_total_are_refused_with_a_retry_delay_and_freed_when_closed() {
        let log = Arc::new(Log::default());
        let (hub, _written, _draining) = hub(&log, Limits { per_caller: 2, total: 3, ..Limits::default() });
        let first = hub.subscribe(subscription("alice", None), |_| true).await.unwrap();
        let _second = hub.subscribe(subscription("alice", None), |_| true).await.unwrap();
        let refused = hub.subscribe(subscription("alice", None), |_| true).await.err().expect("past alice's cap");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("holds 2"), "{}", refused.message());
        let _bob = hub.subscribe(subscription("bob", None), |_| true).await.unwrap();
        let full = hub.subscribe(subscription("carol", None), |_| true).await.err().expect("past the total");
        assert_eq!(full.code(), tonic::Code::ResourceExhausted);
        drop(first);
        // The place is given back once the stream's task sees its client gone.
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if hub.subscribe(subscription("alice", None), |_| true).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("a closed stream frees its place");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_ends_when_idle_or_at_its_lifetime_saying_how_to_resume() {
        let log = Arc::new(Log::default());
        let limits = Limits { lifetime: Duration::from_secs(60), idle: Duration::from_secs(20), ..Limits::default() };
        let (hub, written, _draining) = hub(&log, limits);
        write(&log, &written, 1..=3);
        // One stream wants the first three entries only, the other every one.
        let mut idle = hub.subscribe(subscription("a", Some(0)), |n| *n <= 3).await.unwrap();
        let mut busy = hub.subscribe(subscription("b", Some(0)), |_| true).await.unwrap();
        for stream in [&mut idle, &mut busy] {
            let got: Vec<i64> = stream.by_ref().take(3).map(Result::unwrap).collect().await;
            assert_eq!(got, [1, 2, 3]);
        }
        // An entry every 10 s.
        let writer = tokio::spawn(async move {
            for n in 4..=10 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                write(&log, &written, n..=n);
            }
        });
        let ended = idle.next().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::DeadlineExceeded);
        assert!(ended.message().contains("idle for 20 s"), "{}", ended.message());
        assert!(idle.next().await.is_none());
        // The one that keeps getting entries still ends at its lifetime.
        let mut got = Vec::new();
        let ended = loop {
            match busy.next().await.unwrap() {
                Ok(n) => got.push(n),
                Err(status) => break status,
            }
        };
        assert_eq!(ended.code(), tonic::Code::DeadlineExceeded);
        let text = ended.message();
        assert!(text.contains("lifetime (60 s)") && text.contains("after_sequence"), "{text}");
        assert_eq!(got, [4, 5, 6, 7, 8], "the entries written before its lifetime ended");
        writer.abort();
    }
}
