//! What one client may hold at the gateway at once: bytes of request bodies (per address and in
//! all), sign-ins in progress per address, and the time its call may take, body and answer
//! included.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A number of units (bytes, calls) each address may hold at once.
#[derive(Debug)]
pub(crate) struct PerAddress {
    each: usize,
    held: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

impl PerAddress {
    pub(crate) fn new(each: usize) -> Self {
        Self { each, held: Mutex::new(HashMap::new()) }
    }

    /// Takes `units` for `address` now, or None when it holds too many already.
    pub(crate) fn try_take(&self, address: IpAddr, units: u32) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            held.entry(address).or_insert_with(|| Arc::new(Semaphore::new(self.each))).clone()
        };
        semaphore.try_acquire_many_owned(units).ok()
    }

    /// Forgets the addresses that hold nothing.
    pub(crate) fn tidy(&self) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.retain(|_, semaphore| Arc::strong_count(semaphore) > 1 || semaphore.available_permits() < self.each);
    }
}

/// An answer's body that ends with DEADLINE_EXCEEDED when its deadline passes before the
/// backend finished it (dropping the rest, which cancels the call at the backend).
pub(crate) struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
    message: String,
    done: bool,
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(inner: B, deadline: tokio::time::Instant, message: String) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep_until(deadline)), message, done: false }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame)),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done = true;
                let mut trailers = http::HeaderMap::new();
                let _ = tonic::Status::deadline_exceeded(std::mem::take(&mut this.message)).add_header(&mut trailers);
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt as _;

    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back() {
        let limits = PerAddress::new(10);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = limits.try_take(a, 6).expect("within the share");
        assert!(limits.try_take(a, 5).is_none(), "past a's share");
        assert!(limits.try_take(b, 10).is_some(), "b has its own");
        drop(first);
        assert!(limits.try_take(a, 10).is_some());
        limits.tidy();
        assert!(limits.held.lock().unwrap().is_empty(), "nothing held, nothing kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_running_at_its_deadline_ends_with_deadline_exceeded() {
        let (sender, frames) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>, std::convert::Infallible>>();
        sender.unbounded_send(Ok(Frame::data(Bytes::from_static(b"first")))).unwrap();
        let body = http_body_util::StreamBody::new(frames);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let mut body = DeadlineBody::new(body, deadline, "too slow".into());
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"first"));
        let last = body.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(last.get("grpc-status").unwrap(), "4");
        assert_eq!(last.get("grpc-message").unwrap(), "too%20slow", "percent-encoded, as gRPC says");
        assert!(body.frame().await.is_none());
        assert!(tokio::time::Instant::now() >= deadline);
    }
}
