//! Response bodies: whole objects, and parts streamed while they are written.

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use weir_media::PartConsumer;

use crate::Error;

/// Every response body the origin sends. A streamed part ends with an `Err` when the part is
/// aborted mid-write, which hyper turns into a truncated chunked body (HTTP/1.1) or an
/// `RST_STREAM` (HTTP/2): the player sees a failed request and retries instead of playing a
/// truncated part.
pub type Body = UnsyncBoxBody<Bytes, Error>;

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A part's body as its chunks arrive: chunked transfer on HTTP/1.1, DATA frames on HTTP/2.
pub(crate) fn part_stream(part: PartConsumer) -> Body {
    let chunks = futures_util::stream::unfold(Some(part), |state| async move {
        let mut part = state?;
        match part.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Frame::data(chunk)), Some(part))),
            Ok(None) => None,
            Err(aborted) => Some((Err(Error::PartAborted(aborted)), None)),
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// A response body that keeps its request counted as in flight until it is finished or
/// dropped, so the idle timeout never closes a connection in the middle of a streamed part.
pub(crate) struct Tracked {
    pub body: Body,
    pub _guard: crate::limits::RequestGuard,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
