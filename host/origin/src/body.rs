//! Response bodies: whole objects, and parts sent whole once they are written.

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use weir_media::PartConsumer;

use crate::{Error, Result};

/// Every response body the origin sends.
pub type Body = UnsyncBoxBody<Bytes, Error>;

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A part's body and length, once the whole part is written: its chunks back to back,
/// shared with every other reader rather than copied. Waits while the part is in progress
/// (a request for the preload-hinted part), because RFC 8216bis 6.2.6 forbids sending any
/// byte of a part before all of it can go at the link's full speed: players measure their
/// bandwidth on part downloads, and a part trickled out at the encoder's pace would read as
/// a link no faster than the stream. A part aborted mid-write is an error (503, not cached),
/// never a truncated body.
pub(crate) async fn whole_part(mut part: PartConsumer) -> Result<(Body, usize)> {
    let mut chunks = Vec::new();
    while let Some(chunk) = part.next_chunk().await? {
        chunks.push(chunk);
    }
    let len = chunks.iter().map(Bytes::len).sum();
    let body = match <[Bytes; 1]>::try_from(chunks) {
        Ok([one]) => full(one),
        Err(many) => {
            let frames = futures_util::stream::iter(many.into_iter().map(|c| Ok(Frame::data(c))));
            StreamBody::new(frames).boxed_unsync()
        }
    };
    Ok((body, len))
}

/// A response body that keeps its request counted as in flight until it is finished or
/// dropped, so the idle timeout never closes a connection in the middle of a response.
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
    ) -> std::task::Poll<Option<std::result::Result<Frame<Bytes>, Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
