//! Byte ranges of segments (RFC 9110 14), which is how byte-range parts are fetched: a
//! playlist lists each part as `EXT-X-PART:URI="seg<msn>.m4s",BYTERANGE=<len>@<offset>` and
//! hints the part being written as `EXT-X-PRELOAD-HINT:URI="seg<msn>.m4s",BYTERANGE-START=
//! <offset>` (RFC 8216bis 4.4.4.9, 4.4.5.3). A CDN then caches one object per segment.
//!
//! A range of a complete segment is a slice of the cached whole. A range of the segment in
//! progress is served from its parts: a closed range once its last byte is written (at
//! once, when it lies in complete parts, as every listed part does); an open-ended one (the
//! hint) part by part, each part whole once it is complete (RFC 8216bis 6.2.6: no byte of a
//! part before all of it can go at the link's full speed), until the segment ends. Its
//! length is not known when the head goes out, so it is sent without `Content-Length`, as
//! `Content-Range: bytes <first>-<last asked, or 2^53-1>/*` (the "very large value" of
//! draft-ietf-httpbis-rand-access-live, which is what Shaka's hint request asks for).

use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use weir_media::{Lookup, PartConsumer, RenditionConsumer};

use crate::body::Body;
use crate::{Error, Result};

/// A last byte at or past this asks for "to the end, however long": no segment is that
/// long. Shaka asks for `bytes=<start>-9007199254740991` (2^53 - 1) for a hint.
const OPEN_ENDED_FROM: u64 = 1 << 40;
/// The last byte an open-ended answer names when the request named none: JavaScript's
/// largest exact integer, as Shaka uses.
const VERY_LARGE: u64 = (1 << 53) - 1;

/// One `Range: bytes=...` range. Several ranges, other units and malformed values are
/// ignored (RFC 9110 14.2: the whole object is sent with 200).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `bytes=a-`
    From(u64),
    /// `bytes=a-b`
    Closed(u64, u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl Spec {
    /// Asks for everything from a byte on, so a segment in progress is sent as it grows.
    fn open_ended(self) -> Option<u64> {
        match self {
            Spec::From(a) => Some(a),
            Spec::Closed(a, b) if b >= OPEN_ENDED_FROM => Some(a),
            _ => None,
        }
    }

    /// The inclusive byte span of an object of `total` bytes, or `None` when no byte of it
    /// is asked for (416).
    pub fn resolve(self, total: u64) -> Option<(u64, u64)> {
        let last = total.checked_sub(1)?;
        match self {
            Spec::From(a) => (a <= last).then_some((a, last)),
            Spec::Closed(a, b) => (a <= last).then_some((a, b.min(last))),
            Spec::Suffix(0) => None,
            Spec::Suffix(n) => Some((total - n.min(total), last)),
        }
    }
}

/// Parses a `Range` header value.
pub fn parse(value: &str) -> Option<Spec> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => None,
        (true, false) => number(last).map(Spec::Suffix),
        (false, true) => number(first).map(Spec::From),
        (false, false) => {
            let (a, b) = (number(first)?, number(last)?);
            (a <= b).then_some(Spec::Closed(a, b))
        }
    }
}

/// A `206 Partial Content` answer.
pub(crate) struct Partial {
    pub body: Body,
    /// `None` while the segment is still being written (no `Content-Length`).
    pub len: Option<usize>,
    pub content_range: String,
}

/// The answer for a range of a complete object of `whole.len()` bytes.
pub(crate) fn of_complete(whole: &Bytes, spec: Spec) -> Result<Partial> {
    let total = whole.len() as u64;
    let (a, b) = spec
        .resolve(total)
        .ok_or(Error::RangeNotSatisfiable(Some(total)))?;
    let slice = whole.slice(a as usize..=b as usize);
    Ok(Partial {
        len: Some(slice.len()),
        body: crate::body::full(slice),
        content_range: format!("bytes {a}-{b}/{total}"),
    })
}

/// What a range of segment `msn` gets while the segment may still be in progress:
/// `Ok(Err(parts))` once it turns out complete (the caller slices the cached whole), else
/// the partial answer. Returns when the first byte asked for can go, part whole.
pub(crate) async fn of_segment(
    mut rendition: RenditionConsumer,
    msn: u64,
    spec: Spec,
    wait_limit: Duration,
) -> Result<std::result::Result<Partial, Vec<PartConsumer>>> {
    loop {
        let version = rendition.snapshot().map_or(0, |s| s.version);
        let (parts, complete) = match rendition.segment_so_far(msn) {
            Lookup::Found(found) => found,
            Lookup::Gone => return Err(Error::Gone("segment")),
            Lookup::Missing => return Err(Error::NotYet("segment")),
        };
        if complete {
            return Ok(Err(parts));
        }
        let done = complete_prefix(&parts);
        let written: u64 = done.iter().map(|b| b.len() as u64).sum();
        match spec {
            Spec::Closed(a, b) if spec.open_ended().is_none() && b < written => {
                // In complete parts, as every listed part is: at once.
                let joined = join(&done);
                let slice = joined.slice(a as usize..=b as usize);
                return Ok(Ok(Partial {
                    len: Some(slice.len()),
                    body: crate::body::full(slice),
                    content_range: format!("bytes {a}-{b}/*"),
                }));
            }
            _ => {}
        }
        if let Some(a) = spec.open_ended().filter(|a| *a < written) {
            let last = match spec {
                Spec::Closed(_, b) => b,
                _ => VERY_LARGE,
            };
            let first = join(&done).slice(a as usize..);
            let body = stream_rest(rendition, msn, done.len(), first, wait_limit);
            return Ok(Ok(Partial {
                body,
                len: None,
                content_range: format!("bytes {a}-{last}/*"),
            }));
        }
        // Nothing to send yet: wait for the next part to be whole, or for the next version
        // (the segment completed, or the next part opened).
        match parts.get(done.len()).cloned() {
            Some(mut part) => {
                tokio::time::timeout(wait_limit, part.collect())
                    .await
                    .map_err(|_| Error::NotYet("segment"))??;
            }
            None => {
                tokio::time::timeout(wait_limit, rendition.newer_than(version))
                    .await
                    .map_err(|_| Error::NotYet("segment"))?
                    .ok_or(Error::StreamGone)?;
            }
        }
    }
}

/// The bodies of the leading complete parts.
fn complete_prefix(parts: &[PartConsumer]) -> Vec<Bytes> {
    parts.iter().map_while(PartConsumer::bytes).collect()
}

fn join(bodies: &[Bytes]) -> Bytes {
    match bodies {
        [one] => one.clone(),
        many => Bytes::from(many.concat()),
    }
}

struct Rest {
    rendition: RenditionConsumer,
    msn: u64,
    /// Parts of the segment already sent (or skipped, before the range's first byte).
    sent: usize,
    first: Option<Bytes>,
    wait_limit: Duration,
    done: bool,
}

/// The body of an open-ended range: `first` (the complete parts from the range's first
/// byte), then each later part of the segment, whole, as it completes, ending with the
/// segment. A segment that cannot be finished (the part aborted, the stream gone, no new
/// part within `wait_limit`) ends the body with an error, never with a silent short end.
fn stream_rest(
    rendition: RenditionConsumer,
    msn: u64,
    sent: usize,
    first: Bytes,
    wait_limit: Duration,
) -> Body {
    let state = Rest {
        rendition,
        msn,
        sent,
        first: Some(first),
        wait_limit,
        done: false,
    };
    let frames = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(first) = st.first.take() {
            return Some((Ok(Frame::data(first)), st));
        }
        if st.done {
            return None;
        }
        match next_part(&mut st).await {
            Ok(Some(bytes)) => Some((Ok(Frame::data(bytes)), st)),
            Ok(None) => None,
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

/// The next part of the segment, whole; `None` after its last.
async fn next_part(st: &mut Rest) -> Result<Option<Bytes>> {
    loop {
        let version = st.rendition.snapshot().map_or(0, |s| s.version);
        let (parts, complete) = match st.rendition.segment_so_far(st.msn) {
            Lookup::Found(found) => found,
            Lookup::Gone => return Err(Error::Gone("segment")),
            Lookup::Missing => return Err(Error::NotYet("segment")),
        };
        if let Some(mut part) = parts.get(st.sent).cloned() {
            let bytes = tokio::time::timeout(st.wait_limit, part.collect())
                .await
                .map_err(|_| Error::NotYet("segment"))??;
            st.sent += 1;
            if bytes.is_empty() {
                continue;
            }
            return Ok(Some(bytes));
        }
        if complete {
            return Ok(None);
        }
        tokio::time::timeout(st.wait_limit, st.rendition.newer_than(version))
            .await
            .map_err(|_| Error::NotYet("segment"))?
            .ok_or(Error::StreamGone)?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_byte_range() {
        assert_eq!(parse("bytes=100-"), Some(Spec::From(100)));
        assert_eq!(parse("bytes=0-99"), Some(Spec::Closed(0, 99)));
        assert_eq!(parse(" bytes=5-5 "), Some(Spec::Closed(5, 5)));
        assert_eq!(parse("bytes=-20"), Some(Spec::Suffix(20)));
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=9-1",
            "bytes=-",
            "bytes=a-",
            "bytes=+1-",
            "items=0-1",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(parse(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn resolves_against_the_length() {
        assert_eq!(Spec::From(0).resolve(10), Some((0, 9)));
        assert_eq!(Spec::From(9).resolve(10), Some((9, 9)));
        assert_eq!(Spec::From(10).resolve(10), None);
        assert_eq!(Spec::Closed(2, 100).resolve(10), Some((2, 9)));
        assert_eq!(Spec::Closed(10, 100).resolve(10), None);
        assert_eq!(Spec::Suffix(3).resolve(10), Some((7, 9)));
        assert_eq!(Spec::Suffix(30).resolve(10), Some((0, 9)));
        assert_eq!(Spec::Suffix(0).resolve(10), None);
        assert_eq!(Spec::From(0).resolve(0), None);
    }

    #[test]
    fn a_very_large_last_byte_is_open_ended() {
        assert_eq!(Spec::Closed(7, VERY_LARGE).open_ended(), Some(7));
        assert_eq!(Spec::From(7).open_ended(), Some(7));
        assert_eq!(Spec::Closed(7, 100).open_ended(), None);
        assert_eq!(Spec::Suffix(7).open_ended(), None);
    }
}
