//! What an SRT caller's stream id asks for. Pure; no IO.
//!
//! Encoders spell "publish KEY under application live" in several ways, and all of these are
//! accepted:
//!
//! | stream id | convention |
//! | --- | --- |
//! | `KEY` | plain key (vMix, many hardware encoders) |
//! | `live/KEY`, `host/live/KEY` | path (the last segment is the key, the one before it the app) |
//! | `#!::r=live/KEY,m=publish`, `#!::u=alice,r=KEY` | SRT Access Control syntax, keys in any order |
//! | `publish:live/KEY`, `publish:live/KEY:user:pass` | "action:path" (MediaMTX style) |
//!
//! Weir only ingests, so an access-control mode other than `publish` (`request`,
//! `bidirectional`) and the `read:`/`play:` actions are refused. An access-control stream id
//! without `m` is taken as a publish: the SRT guidelines make `request` the default, but
//! encoders routinely leave it out.

use std::fmt;

/// A parsed stream id: the application (when the id names one) and the stream key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StreamRequest {
    pub(crate) app: Option<String>,
    pub(crate) key: String,
}

impl fmt::Debug for StreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret.
        f.debug_struct("StreamRequest")
            .field("app", &self.app)
            .field("key", &format_args!("{}", weir_media::Redacted(&self.key)))
            .finish()
    }
}

/// Why a stream id was refused. The text goes to the log; it never repeats the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamIdError {
    /// No stream id, or one with no key in it.
    Missing,
    /// The caller wants to read (or read and write): this server only ingests.
    NotPublish(String),
    /// The stream id does not parse (bad access-control entry, unsupported nesting, or an
    /// unsupported `t=` type).
    Malformed(&'static str),
}

impl fmt::Display for StreamIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no stream key in the stream id"),
            Self::NotPublish(mode) => {
                write!(f, "mode {mode:?} requested; this server only ingests")
            }
            Self::Malformed(why) => write!(f, "malformed stream id: {why}"),
        }
    }
}

/// Parses a caller's stream id (`None` when it sent none).
pub(crate) fn parse(stream_id: Option<&str>) -> Result<StreamRequest, StreamIdError> {
    let id = stream_id.map(str::trim).unwrap_or_default();
    if id.is_empty() {
        return Err(StreamIdError::Missing);
    }
    if let Some(entries) = id.strip_prefix("#!::") {
        return access_control(entries);
    }
    if id.starts_with("#!") {
        return Err(StreamIdError::Malformed(
            "only the flat \"#!::\" access-control form is supported",
        ));
    }
    if let Some((action, rest)) = id.split_once(':') {
        return match action {
            "publish" => {
                // `publish:PATH[:user:pass]`: credentials are not used for SRT (the passphrase
                // and the stream key are the secrets).
                let path = rest.split(':').next().unwrap_or_default();
                path_request(path)
            }
            "read" | "play" | "request" => Err(StreamIdError::NotPublish(action.to_owned())),
            // Not an action: a key that happens to contain ':'.
            _ => path_request(id),
        };
    }
    path_request(id)
}

fn access_control(entries: &str) -> Result<StreamRequest, StreamIdError> {
    let mut resource = None;
    for entry in entries.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((name, value)) = entry.split_once('=') else {
            return Err(StreamIdError::Malformed("access-control entry without '='"));
        };
        match name.trim() {
            "r" => resource = Some(value.trim()),
            "m" => match value.trim() {
                "publish" => {}
                other => return Err(StreamIdError::NotPublish(other.to_owned())),
            },
            "t" => match value.trim() {
                "stream" => {}
                _ => return Err(StreamIdError::Malformed("only t=stream is served")),
            },
            // u (user), h (host), s (session id) and custom keys say nothing about what is
            // published.
            _ => {}
        }
    }
    path_request(resource.unwrap_or_default())
}

/// `KEY`, `APP/KEY` or `HOST/APP/KEY` (a leading `/` is ignored).
fn path_request(path: &str) -> Result<StreamRequest, StreamIdError> {
    let path = path.trim().trim_start_matches('/');
    let (app, key) = match path.rsplit_once('/') {
        Some((front, key)) => {
            let app = front.rsplit('/').next().unwrap_or_default();
            (Some(app.to_owned()).filter(|a| !a.is_empty()), key)
        }
        None => (None, path),
    };
    if key.is_empty() {
        return Err(StreamIdError::Missing);
    }
    Ok(StreamRequest {
        app,
        key: key.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(id: &str) -> (Option<String>, String) {
        let r = parse(Some(id)).unwrap();
        (r.app, r.key)
    }

    fn app_key(app: Option<&str>, key: &str) -> (Option<String>, String) {
        (app.map(str::to_owned), key.to_owned())
    }

    #[test]
    fn common_conventions() {
        assert_eq!(ok("key2"), app_key(None, "key2"));
        assert_eq!(ok("live/k"), app_key(Some("live"), "k"));
        assert_eq!(ok("/live/k"), app_key(Some("live"), "k"));
        assert_eq!(ok("ingest.example.com/live/k"), app_key(Some("live"), "k"));
        assert_eq!(
            ok("#!::r=live/key1,m=publish"),
            app_key(Some("live"), "key1")
        );
        assert_eq!(
            ok("#!::m=publish,u=alice,r=live/k"),
            app_key(Some("live"), "k")
        );
        assert_eq!(ok("#!::u=alice,r=k,t=stream"), app_key(None, "k"));
        assert_eq!(ok("#!::r=live/k"), app_key(Some("live"), "k"));
        assert_eq!(ok("publish:live/key3"), app_key(Some("live"), "key3"));
        assert_eq!(ok("publish:live/k:user:pass"), app_key(Some("live"), "k"));
        assert_eq!(ok("publish:k"), app_key(None, "k"));
        assert_eq!(ok("a:b"), app_key(None, "a:b"));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(None), Err(StreamIdError::Missing));
        assert_eq!(parse(Some("  ")), Err(StreamIdError::Missing));
        assert_eq!(parse(Some("live/")), Err(StreamIdError::Missing));
        assert_eq!(parse(Some("/")), Err(StreamIdError::Missing));
        assert_eq!(parse(Some("#!::m=publish")), Err(StreamIdError::Missing));
        assert_eq!(parse(Some("#!::u=bob")), Err(StreamIdError::Missing));
        assert_eq!(
            parse(Some("#!::r=live/k,m=request")),
            Err(StreamIdError::NotPublish("request".into()))
        );
        assert_eq!(
            parse(Some("#!::m=bidirectional,r=k")),
            Err(StreamIdError::NotPublish("bidirectional".into()))
        );
        assert_eq!(
            parse(Some("read:live/k")),
            Err(StreamIdError::NotPublish("read".into()))
        );
        assert!(matches!(
            parse(Some("#!::r=k,t=file")),
            Err(StreamIdError::Malformed(_))
        ));
        assert!(matches!(
            parse(Some("#!::r=k,garbage")),
            Err(StreamIdError::Malformed(_))
        ));
        assert!(matches!(
            parse(Some("#!{::r=k}")),
            Err(StreamIdError::Malformed(_))
        ));
    }

    #[test]
    fn errors_and_debug_never_show_the_key() {
        let r = parse(Some("live/supersecret")).unwrap();
        assert!(!format!("{r:?}").contains("supersecret"));
        for id in ["#!::r=supersecret,m=request", "#!::r=supersecret,oops"] {
            let e = parse(Some(id)).unwrap_err();
            assert!(!e.to_string().contains("supersecret"), "{e}");
        }
    }
}
