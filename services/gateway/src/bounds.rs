//! The time a call through the gateway may take, its answer included (what one client may
//! hold at once is counted with `fastbreak_mesh::bulkhead::PerKey`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

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
