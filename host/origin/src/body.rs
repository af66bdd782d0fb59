//! Response bodies: whole objects, and parts sent whole once they are written.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use weir_cache::{Cache, CacheSettings, CachedObject};
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

/// How long a complete part stays joined into one buffer after it was first served whole.
/// Players fetch a part within a few part targets of its publication (PART-HOLD-BACK is three),
/// so this covers the requests at the live edge; a later request joins it again.
pub(crate) const PART_MEMO_TTL: Duration = Duration::from_secs(4);

/// The most the joined parts may hold, all streams together.
pub(crate) const PART_MEMO_BYTES: u64 = 32 * 1024 * 1024;

/// Complete parts, each joined into one buffer, kept for [`PART_MEMO_TTL`].
///
/// The packager writes a part as many small CMAF chunks. Sent as they are, hyper writes at
/// most 16 buffers or `max_buf_size` (the request-head cap, 32 KiB) per `writev` and, with
/// `TCP_NODELAY`, each write goes out as its own short TCP segment: a 190 KB part took about
/// ten syscalls and twice nginx's CPU per request (bench/serve.sh, perf: the time in the
/// kernel's TCP send path). One buffer goes out in one `writev` with the head, as whole
/// segments from the cache do. The buffer is shared by every response (a `Bytes` clone),
/// so after the first request no part byte is copied again.
pub(crate) fn part_memo() -> Cache {
    Cache::new(&CacheSettings {
        max_bytes: PART_MEMO_BYTES,
        time_to_live: Some(PART_MEMO_TTL),
    })
}

/// A part's body and length, once the whole part is written: one buffer shared with every
/// other reader (joined once, under `key` in `memo`, when the part has several chunks).
/// Waits while the part is in progress (a request for the preload-hinted part), because
/// RFC 8216bis 6.2.6 forbids sending any byte of a part before all of it can go at the
/// link's full speed: players measure their bandwidth on part downloads, and a part trickled
/// out at the encoder's pace would read as a link no faster than the stream. A part aborted
/// mid-write is an error (503, not cached), never a truncated body.
pub(crate) async fn whole_part(
    memo: &Cache,
    key: &str,
    mut part: PartConsumer,
) -> Result<(Body, usize)> {
    if let Some(hit) = memo.get(key).await {
        return Ok((full(hit.body.clone()), hit.body.len()));
    }
    let mut chunks = Vec::new();
    while let Some(chunk) = part.next_chunk().await? {
        chunks.push(chunk);
    }
    let bytes = match <[Bytes; 1]>::try_from(chunks) {
        Ok([one]) => one,
        Err(many) => {
            let joined = memo
                .get_or_fill(key, || async move {
                    let mut out = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
                    for c in &many {
                        out.extend_from_slice(c);
                    }
                    Ok::<_, crate::Error>(CachedObject::new(out.freeze(), crate::phase::MEDIA_TYPE))
                })
                .await?;
            joined.body.clone()
        }
    };
    let len = bytes.len();
    Ok((full(bytes), len))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use weir_media::{rendition_channel, Lookup};

    async fn bytes_of(body: Body) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_part_of_many_chunks_is_joined_once_and_shared() {
        let (producer, consumer) = rendition_channel();
        let w = producer.begin_part(7).unwrap();
        for c in ["moof", "mdat", "moof2", "mdat2"] {
            w.push(Bytes::from_static(c.as_bytes()));
        }
        w.finish();
        let part = || match consumer.part(7) {
            Lookup::Found(p) => p,
            _ => panic!("part 7 is listed"),
        };
        let memo = part_memo();
        let (body, len) = whole_part(&memo, "s/r/part7.m4s", part()).await.unwrap();
        assert_eq!(len, 18);
        let first = bytes_of(body).await;
        assert_eq!(first, Bytes::from_static(b"moofmdatmoof2mdat2"));
        let kept = memo.get("s/r/part7.m4s").await.unwrap();
        assert_eq!(kept.body, first);
        let (body, len) = whole_part(&memo, "s/r/part7.m4s", part()).await.unwrap();
        assert_eq!(len, 18);
        // The same buffer, not a copy.
        assert_eq!(bytes_of(body).await.as_ptr(), kept.body.as_ptr());
    }

    #[tokio::test]
    async fn an_aborted_part_is_an_error_and_is_not_kept() {
        let (producer, consumer) = rendition_channel();
        let w = producer.begin_part(3).unwrap();
        w.push(Bytes::from_static(b"moof"));
        w.push(Bytes::from_static(b"mdat"));
        let Lookup::Found(part) = consumer.part(3) else {
            panic!("part 3 is listed");
        };
        drop(w);
        let memo = part_memo();
        assert!(whole_part(&memo, "s/r/part3.m4s", part).await.is_err());
        assert!(memo.get("s/r/part3.m4s").await.is_none());
    }

    #[tokio::test]
    async fn a_one_chunk_part_is_sent_as_it_is() {
        let (producer, consumer) = rendition_channel();
        let w = producer.begin_part(1).unwrap();
        let chunk = Bytes::from_static(b"moofmdat");
        w.push(chunk.clone());
        w.finish();
        let Lookup::Found(part) = consumer.part(1) else {
            panic!("part 1 is listed");
        };
        let memo = part_memo();
        let (body, _) = whole_part(&memo, "s/r/part1.m4s", part).await.unwrap();
        assert_eq!(bytes_of(body).await.as_ptr(), chunk.as_ptr());
        assert!(memo.get("s/r/part1.m4s").await.is_none());
    }
}
