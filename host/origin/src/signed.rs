//! Signed playback URLs (docs/design/010-signed-urls.md).
//!
//! A token is one path segment right after the stream name:
//!
//! ```text
//! /live/{stream}/~{expires}.{signature}/master.m3u8
//! ```
//!
//! `expires` is a Unix time in seconds and `signature` is
//! `base64url(HMAC-SHA256(key, "weir-playback-v1\n{stream}\n{expires}"))`, unpadded. Every
//! URI weir writes into a playlist is relative, so a player carries the token from the
//! multivariant playlist down to each rendition, part, segment and asset list without
//! knowing about it; the playlists' bytes stay the same for every viewer. A CDN keeps the
//! token out of its cache key by dropping that one segment (and checks it itself, or
//! forwards each miss to be checked here).
//!
//! Which streams need a token, and the keys, are the embedding binary's business
//! ([`PlaybackAuth`]); this module formats, splits and checks tokens.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What starts a token segment; no stream or rendition name contains it.
pub const TOKEN_MARK: char = '~';

/// The signed message's label: a token for anything else never checks here.
const LABEL: &str = "weir-playback-v1";

/// Why a playback request was refused (403). The texts are the response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this stream needs a signed playback URL")]
    Missing,
    #[error("malformed playback token")]
    Malformed,
    #[error("playback token expired")]
    Expired,
    #[error("playback token does not match")]
    Forged,
}

/// Decides whether a request may read a stream: the embedding binary's per-tenant keys and
/// trusted peers (an edge's shared token). The origin calls it for every route that reads
/// a stream, after routing and before anything is fetched.
pub trait PlaybackAuth: Send + Sync + 'static {
    /// `token` is the segment after [`TOKEN_MARK`] (without it), if the path had one.
    fn authorize(
        &self,
        stream: &str,
        token: Option<&str>,
        request: &http::request::Parts,
    ) -> Result<(), Denied>;
}

/// `~{expires}.{signature}` for `stream`, signed with `key`.
pub fn token(key: &[u8], stream: &str, expires: u64) -> String {
    let sig = URL_SAFE_NO_PAD.encode(mac(key, stream, expires).finalize().into_bytes());
    format!("{TOKEN_MARK}{expires}.{sig}")
}

/// The playback URL path of `stream`'s multivariant playlist, signed.
pub fn signed_path(key: &[u8], stream: &str, expires: u64) -> String {
    format!("/live/{stream}/{}/master.m3u8", token(key, stream, expires))
}

/// Checks `token` (without its [`TOKEN_MARK`]) for `stream` at `now` (Unix seconds)
/// against each of `keys` (several during a rotation). Constant time in the signature.
pub fn verify<K: AsRef<[u8]>>(
    keys: &[K],
    stream: &str,
    token: &str,
    now: u64,
) -> Result<(), Denied> {
    let (expires, sig) = token.split_once('.').ok_or(Denied::Malformed)?;
    if expires.is_empty() || expires.len() > 12 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Denied::Malformed);
    }
    let expires: u64 = expires.parse().map_err(|_| Denied::Malformed)?;
    // A SHA-256 MAC is 32 bytes: 43 characters unpadded.
    if sig.len() != 43 {
        return Err(Denied::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Denied::Malformed)?;
    // The signature is checked before the expiry, so an expired answer says the token was
    // genuine.
    let genuine = keys.iter().any(|key| {
        mac(key.as_ref(), stream, expires)
            .verify_slice(&sig)
            .is_ok()
    });
    if !genuine {
        return Err(Denied::Forged);
    }
    if now >= expires {
        return Err(Denied::Expired);
    }
    Ok(())
}

fn mac(key: &[u8], stream: &str, expires: u64) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(LABEL.as_bytes());
    mac.update(b"\n");
    mac.update(stream.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// Takes the token segment out of a `/live/{stream}/~token/…` path: the path without it,
/// and the token without its mark. Any other path comes back as it is, with no token.
pub fn split(path: &str) -> (Cow<'_, str>, Option<&str>) {
    match parts(path) {
        Some((stream, token, tail)) => (
            Cow::Owned(format!("/live/{stream}/{}", tail.unwrap_or(""))),
            Some(token),
        ),
        None => (Cow::Borrowed(path), None),
    }
}

/// `/live/{stream}/~{token}[/{tail}]` → (stream, token, tail).
fn parts(path: &str) -> Option<(&str, &str, Option<&str>)> {
    let (stream, after) = path.strip_prefix("/live/")?.split_once('/')?;
    let after = after.strip_prefix(TOKEN_MARK)?;
    Some(match after.split_once('/') {
        Some((token, tail)) => (stream, token, Some(tail)),
        None => (stream, after, None),
    })
}

/// `path` with its token's signature left out (the expiry stays), for the logs; `None`
/// when it has no token.
pub fn redacted(path: &str) -> Option<String> {
    let (stream, token, tail) = parts(path)?;
    let expires = token.split_once('.').map_or(token, |(e, _)| e);
    Some(match tail {
        Some(tail) => format!("/live/{stream}/{TOKEN_MARK}{expires}.…/{tail}"),
        None => format!("/live/{stream}/{TOKEN_MARK}{expires}.…"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_checks_until_it_expires() {
        let t = token(KEY, "demo", 1_000);
        let t = t.strip_prefix(TOKEN_MARK).unwrap();
        assert_eq!(verify(&[KEY], "demo", t, 999), Ok(()));
        assert_eq!(verify(&[KEY], "demo", t, 1_000), Err(Denied::Expired));
        // Another stream, another key or another expiry: forged.
        assert_eq!(verify(&[KEY], "other", t, 999), Err(Denied::Forged));
        assert_eq!(
            verify(
                &[b"another key, also 32 bytes long.".as_slice()],
                "demo",
                t,
                999
            ),
            Err(Denied::Forged)
        );
        let sig = t.split_once('.').unwrap().1;
        assert_eq!(
            verify(&[KEY], "demo", &format!("2000.{sig}"), 999),
            Err(Denied::Forged)
        );
    }

    #[test]
    fn any_key_of_a_rotation_checks() {
        let old = b"old key old key old key old key!".as_slice();
        let t = token(old, "demo", 50);
        let t = t.strip_prefix(TOKEN_MARK).unwrap();
        assert_eq!(verify(&[KEY, old], "demo", t, 10), Ok(()));
        assert_eq!(verify(&[KEY], "demo", t, 10), Err(Denied::Forged));
    }

    #[test]
    fn malformed_tokens() {
        let good = token(KEY, "demo", 99);
        let sig = good.split_once('.').unwrap().1;
        for t in [
            "",
            "99",
            ".abc",
            "99.",
            "x9.abc",
            "-1.abc",
            "9999999999999.abc",
            &format!("99.{sig}x"),
            &format!("99.{}", &sig[1..]),
            &format!(
                "99.{}",
                sig.replace(|c: char| c.is_ascii_alphanumeric(), "*")
            ),
        ] {
            assert_eq!(
                verify(&[KEY], "demo", t, 1),
                Err(Denied::Malformed),
                "{t:?}"
            );
        }
    }

    #[test]
    fn split_takes_out_the_token_segment_only() {
        assert_eq!(
            split("/live/demo/~12.abc/720p/part3.m4s"),
            (
                Cow::Owned("/live/demo/720p/part3.m4s".to_owned()),
                Some("12.abc")
            )
        );
        assert_eq!(
            split("/live/demo/~12.abc/master.m3u8"),
            (
                Cow::Owned("/live/demo/master.m3u8".to_owned()),
                Some("12.abc")
            )
        );
        for path in [
            "/live/demo/master.m3u8",
            "/live/demo/720p/~1.a/part3.m4s",
            "/live/demo",
            "/assets/~x/a.mp4",
            "/",
        ] {
            assert_eq!(split(path), (Cow::Borrowed(path), None), "{path}");
        }
        // A token segment with nothing after it leaves a path that names nothing (404).
        assert_eq!(split("/live/demo/~1.a").0, "/live/demo/");
    }

    #[test]
    fn logs_see_the_expiry_and_not_the_signature() {
        let path = format!("{}?x=1", signed_path(KEY, "demo", 7));
        let path = path.replace("master.m3u8", "720p/part3.m4s");
        assert_eq!(
            redacted(&path).unwrap(),
            "/live/demo/~7.…/720p/part3.m4s?x=1"
        );
        assert_eq!(
            redacted("/live/demo/~abc"),
            Some("/live/demo/~abc.…".to_owned())
        );
        assert_eq!(redacted("/live/demo/master.m3u8"), None);
        // Hostile paths: marks in odd places, multi-byte text.
        assert_eq!(
            redacted("/live/a~b/~é.x/~/ü"),
            Some("/live/a~b/~é.…/~/ü".to_owned())
        );
    }

    #[test]
    fn signed_paths_route_to_their_stream() {
        let path = signed_path(KEY, "demo", 7);
        let (clean, token) = split(&path);
        assert_eq!(clean, "/live/demo/master.m3u8");
        assert_eq!(verify(&[KEY], "demo", token.unwrap(), 6), Ok(()));
    }
}
