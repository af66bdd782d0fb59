//! WHIP's HTTP face (RFC 9725), on the origin's port:
//!
//! - `POST /whip/{key}` (or `POST /whip` with `Authorization: Bearer {key}`, as OBS sends
//!   it) with an `application/sdp` offer → `201 Created`, the SDP answer, `Location:
//!   /whip/session/{id}` and an `ETag`. A bearer token, when sent, must be the key.
//! - `PATCH /whip/session/{id}` with an `application/trickle-ice-sdpfrag` → `204` (trickled
//!   candidates), or, for an ICE restart (a new ufrag and password), `200` with weir's new
//!   credentials and candidates as a trickle-ice-sdpfrag and the session's new `ETag`.
//! - `DELETE /whip/session/{id}` → `200`: the session ends.
//! - `OPTIONS` on any of them → `204` with CORS, `Accept-Post: application/sdp`.
//!
//! The session resource's id is 128 random bits that only the publisher was told: it is the
//! capability for PATCH and DELETE. A bearer token sent with them must still be the key.
//!
//! Refusals: a malformed offer 400, an offer with no usable codec 422, a refused key 401
//! (the same text for an unknown key as for a busy one), a limit 503, an unknown session
//! 404, a wrong content type 415, an offer over [`weir_ingest::whip::MAX_OFFER`] 413 (read
//! no further than that).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use weir_ingest::whip::{Patched, MAX_OFFER};
use weir_ingest::{Whip, WhipError};
use weir_media::StreamKey;
use weir_origin::{text_response, Admission, ApiHandler, Body, Connection};

/// PATCH bodies (a few candidates) are small.
const MAX_FRAGMENT: usize = 16 * 1024;

pub struct WhipHttp {
    pub whip: Whip,
    /// `Access-Control-Allow-Origin` for browser publishers (the origin's setting).
    pub cors_allow_origin: HeaderValue,
    /// `whip.ice_servers`: a `Link: …; rel="ice-server"` each on every `201`.
    pub ice_servers: Arc<[weir_ingest::IceServer]>,
}

/// `servers` as `Link` header values for an answer now (validated with the config: printable
/// ASCII; TURN REST API credentials are made for this answer).
fn ice_links(servers: &[weir_ingest::IceServer]) -> Vec<HeaderValue> {
    // The HTTP handler is a driver: TURN REST API credentials expire from now.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    servers
        .iter()
        .filter_map(|s| HeaderValue::from_str(&s.link(now)).ok())
        .collect()
}

/// What a WHIP path names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `/whip` (the key in the bearer token) or `/whip/{key}`.
    Endpoint(Option<&'a str>),
    /// `/whip/session/{id}`.
    Session(&'a str),
}

fn target(path: &str) -> Option<Target<'_>> {
    match path.strip_prefix("/whip")? {
        "" | "/" => Some(Target::Endpoint(None)),
        rest => {
            let rest = rest.strip_prefix('/')?;
            if let Some(id) = rest.strip_prefix("session/") {
                return (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then_some(Target::Session(id));
            }
            (!rest.is_empty() && !rest.contains('/')).then_some(Target::Endpoint(Some(rest)))
        }
    }
}

fn bearer(head: &http::request::Parts) -> Option<&str> {
    head.headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn content_type_is(head: &http::request::Parts, wanted: &str) -> bool {
    head.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted))
}

impl WhipHttp {
    fn cors(&self, r: &mut Response<Body>) {
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.cors_allow_origin.clone(),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, ETag, Link, Accept-Patch"),
        );
    }

    fn error(&self, e: &WhipError) -> Response<Body> {
        error_response(e)
    }
}

fn error_response(e: &WhipError) -> Response<Body> {
    {
        let status = match e {
            WhipError::BadOffer(_) | WhipError::BadFragment(_) => StatusCode::BAD_REQUEST,
            WhipError::NoCodec(_) | WhipError::IceRestart(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WhipError::Refused {
                overloaded: true, ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            WhipError::Refused { .. } => StatusCode::UNAUTHORIZED,
            WhipError::UnknownSession | WhipError::UnknownStream => StatusCode::NOT_FOUND,
            WhipError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut r = text_response(status, format!("{e}\n"));
        if status == StatusCode::UNAUTHORIZED {
            // The same for an unknown key as for a busy one (a reconnecting publisher whose
            // old session holds the key until it has been idle for 2 s): retry soon.
            let h = r.headers_mut();
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}

impl WhipHttp {
    async fn respond(&self, head: &http::request::Parts, body: &Bytes) -> Response<Body> {
        let Some(target) = target(head.uri.path()) else {
            return text_response(StatusCode::NOT_FOUND, "no such WHIP resource\n");
        };
        if head.method == Method::OPTIONS {
            return preflight(match target {
                Target::Endpoint(_) => "POST, OPTIONS",
                Target::Session(_) => "PATCH, DELETE, OPTIONS",
            });
        }
        let token = bearer(head);
        match (&head.method, target) {
            (&Method::POST, Target::Endpoint(path_key)) => {
                let key = match (path_key, token) {
                    (Some(k), Some(t)) if !crate::auth::secret_eq(k.as_bytes(), t.as_bytes()) => {
                        return self.error(&WhipError::Refused {
                            public: weir_ingest::REFUSED,
                            overloaded: false,
                        });
                    }
                    (Some(k), _) | (None, Some(k)) => StreamKey::new(k),
                    (None, None) => {
                        return self.error(&WhipError::Refused {
                            public: weir_ingest::REFUSED,
                            overloaded: false,
                        })
                    }
                };
                if !content_type_is(head, "application/sdp") {
                    return text_response(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "a WHIP offer is Content-Type: application/sdp\n",
                    );
                }
                let Ok(offer) = std::str::from_utf8(body) else {
                    return self.error(&WhipError::BadOffer("not UTF-8".into()));
                };
                let conn = head.extensions.get::<Connection>().copied();
                let (peer, local) = match conn {
                    Some(c) => (c.peer, c.local.ip()),
                    None => return self.error(&WhipError::Internal("no connection info".into())),
                };
                match self.whip.offer(peer, local, &key, offer) {
                    Ok(answer) => {
                        let mut r =
                            created(answer, "/whip/session/", &ice_links(&self.ice_servers));
                        r.headers_mut().insert(
                            "accept-patch",
                            HeaderValue::from_static("application/trickle-ice-sdpfrag"),
                        );
                        r
                    }
                    Err(e) => self.error(&e),
                }
            }
            (&Method::DELETE, Target::Session(id)) => {
                match self.whip.delete(id, token.map(StreamKey::new).as_ref()) {
                    Ok(()) => text_response(StatusCode::OK, "session ended\n"),
                    Err(e) => self.error(&e),
                }
            }
            (&Method::PATCH, Target::Session(id)) => {
                if let (Some(want), Some(tag)) = (
                    head.headers
                        .get(header::IF_MATCH)
                        .and_then(|v| v.to_str().ok()),
                    self.whip.etag(id),
                ) {
                    if want != "*" && want != tag {
                        return text_response(
                            StatusCode::PRECONDITION_FAILED,
                            "If-Match does not match this session's ETag\n",
                        );
                    }
                }
                if !content_type_is(head, "application/trickle-ice-sdpfrag") {
                    return text_response(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "a WHIP PATCH is Content-Type: application/trickle-ice-sdpfrag\n",
                    );
                }
                let Ok(fragment) = std::str::from_utf8(body) else {
                    return self.error(&WhipError::BadFragment("not UTF-8".into()));
                };
                match self
                    .whip
                    .patch(id, token.map(StreamKey::new).as_ref(), fragment)
                    .await
                {
                    Ok(Patched::Trickled(_)) => text_response(StatusCode::NO_CONTENT, ""),
                    Ok(Patched::Restarted { fragment, etag }) => {
                        let mut r = text_response(StatusCode::OK, fragment);
                        let h = r.headers_mut();
                        h.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/trickle-ice-sdpfrag"),
                        );
                        if let Ok(v) = HeaderValue::from_str(&etag) {
                            h.insert(header::ETAG, v);
                        }
                        r
                    }
                    Err(e) => self.error(&e),
                }
            }
            (_, Target::Endpoint(_)) => method_not_allowed("POST, OPTIONS"),
            (_, Target::Session(_)) => method_not_allowed("PATCH, DELETE, OPTIONS"),
        }
    }
}

/// A CORS preflight's answer for a WHIP or WHEP resource that allows `methods`.
fn preflight(methods: &'static str) -> Response<Body> {
    let mut r = text_response(StatusCode::NO_CONTENT, "");
    let h = r.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(methods));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert("accept-post", HeaderValue::from_static("application/sdp"));
    r
}

/// `201 Created`: the SDP answer, and the session's resource under `prefix`.
fn created(
    answer: weir_ingest::whip::Answer,
    prefix: &str,
    ice_links: &[HeaderValue],
) -> Response<Body> {
    let mut r = text_response(StatusCode::CREATED, answer.sdp);
    let h = r.headers_mut();
    for link in ice_links {
        h.append(header::LINK, link.clone());
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{}", answer.id)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&answer.etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text_response(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("allowed: {allow}\n"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

impl ApiHandler for WhipHttp {
    fn admit(&self, head: &http::request::Parts) -> Admission {
        let limit = match head.method {
            Method::POST => MAX_OFFER,
            Method::PATCH => MAX_FRAGMENT,
            _ => 0,
        };
        Admission::Read { limit }
    }

    fn handle(
        &self,
        head: http::request::Parts,
        body: Bytes,
    ) -> weir_cache::BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let mut r = self.respond(&head, &body).await;
            self.cors(&mut r);
            r
        })
    }

    fn loggable_path(&self, path: &str) -> String {
        match target(path) {
            Some(Target::Endpoint(Some(k))) => format!("/whip/{}", StreamKey::new(k).redacted()),
            Some(Target::Endpoint(None)) => "/whip".to_owned(),
            Some(Target::Session(_)) => "/whip/session/…".to_owned(),
            None => "/whip…".to_owned(),
        }
    }
}

/// WHEP's HTTP face (draft-ietf-wish-whep), beside WHIP's:
///
/// - `POST /whep/{stream}` (or `/whep/{stream}/~{token}` for a tenant with signed playback
///   URLs, the token as `weir sign-url` makes it) with the browser's `application/sdp`
///   offer → `201`, the answer, `Location: /whep/session/{id}`.
/// - `DELETE /whep/session/{id}` ends the viewer; `OPTIONS` answers CORS.
pub struct WhepHttp {
    pub whep: weir_ingest::Whep,
    pub playback: Arc<dyn weir_origin::signed::PlaybackAuth>,
    pub cors_allow_origin: HeaderValue,
    /// As [`WhipHttp::ice_servers`].
    pub ice_servers: Arc<[weir_ingest::IceServer]>,
}

impl WhepHttp {
    fn respond(&self, head: &http::request::Parts, body: &Bytes) -> Response<Body> {
        let path = head.uri.path();
        let Some(rest) = path.strip_prefix("/whep/") else {
            return text_response(StatusCode::NOT_FOUND, "no such WHEP resource\n");
        };
        let session = rest.strip_prefix("session/");
        if head.method == Method::OPTIONS {
            return preflight(if session.is_some() {
                "DELETE, OPTIONS"
            } else {
                "POST, OPTIONS"
            });
        }
        if let Some(id) = session {
            return match head.method {
                Method::DELETE => match self.whep.delete(id) {
                    Ok(()) => text_response(StatusCode::OK, "session ended\n"),
                    Err(e) => error_response(&e),
                },
                _ => method_not_allowed("DELETE, OPTIONS"),
            };
        }
        if head.method != Method::POST {
            return method_not_allowed("POST, OPTIONS");
        }
        let (stream, token) = match rest.split_once('/') {
            Some((s, t)) => (s, t.strip_prefix(weir_origin::signed::TOKEN_MARK)),
            None => (rest, None),
        };
        if stream.is_empty()
            || !stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return text_response(StatusCode::NOT_FOUND, "no such live stream\n");
        }
        if self.playback.authorize(stream, token, head).is_err() {
            return text_response(
                StatusCode::FORBIDDEN,
                "this stream plays with a signed URL: POST /whep/{stream}/~{token}\n",
            );
        }
        if !content_type_is(head, "application/sdp") {
            return text_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a WHEP offer is Content-Type: application/sdp\n",
            );
        }
        let Ok(offer) = std::str::from_utf8(body) else {
            return error_response(&WhipError::BadOffer("not UTF-8".into()));
        };
        let Some(conn) = head.extensions.get::<Connection>().copied() else {
            return error_response(&WhipError::Internal("no connection info".into()));
        };
        match self.whep.offer(conn.local.ip(), stream, offer) {
            Ok(answer) => created(answer, "/whep/session/", &ice_links(&self.ice_servers)),
            Err(e) => error_response(&e),
        }
    }
}

impl ApiHandler for WhepHttp {
    fn admit(&self, head: &http::request::Parts) -> Admission {
        let limit = if head.method == Method::POST {
            MAX_OFFER
        } else {
            0
        };
        Admission::Read { limit }
    }

    fn handle(
        &self,
        head: http::request::Parts,
        body: Bytes,
    ) -> weir_cache::BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let mut r = self.respond(&head, &body);
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                self.cors_allow_origin.clone(),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Location, ETag"),
            );
            r
        })
    }

    fn loggable_path(&self, path: &str) -> String {
        match path.strip_prefix("/whep/") {
            Some(rest) if rest.starts_with("session/") => "/whep/session/…".to_owned(),
            // Stream names are public; a token is not logged.
            Some(rest) => format!("/whep/{}", rest.split('/').next().unwrap_or_default()),
            None => "/whep…".to_owned(),
        }
    }
}

/// AAC → Opus for WHEP viewers: weir-encoder's, once per stream.
pub fn opus_encoders(bitrate: u64) -> weir_ingest::whep::OpusEncoders {
    Arc::new(move |config, start| {
        weir_encoder::AacToOpus::new(config, bitrate, start)
            .map(|e| Box::new(OpusOut(e)) as Box<dyn weir_ingest::whep::OpusEncoder>)
            .map_err(|e| e.to_string())
    })
}

struct OpusOut(weir_encoder::AacToOpus);

impl weir_ingest::whep::OpusEncoder for OpusOut {
    fn push(&mut self, pts: i64, aac: &[u8]) -> Result<Vec<(i64, Bytes)>, String> {
        self.0.push(pts, aac).map_err(|e| e.to_string())
    }
}

/// Transcoders for WHIP sessions, weir-encoder's, one of each per session that needs it:
/// Opus → AAC (libavcodec's Opus decoder, its AAC encoder) and VP8 → H.264 (libavcodec's
/// VP8 decoder, libx264 with the encoder's settings).
pub fn transcoders(
    audio_bitrate: u64,
    video: weir_encoder::EncoderSettings,
) -> weir_ingest::whip::Transcoders {
    weir_ingest::whip::Transcoders {
        opus: Arc::new(move |start| {
            weir_encoder::OpusToAac::new(audio_bitrate, start)
                .map(|t| Box::new(Transcoder(t)) as Box<dyn weir_ingest::whip::AudioTranscoder>)
                .map_err(|e| e.to_string())
        }),
        vp8: Some(Arc::new(move || Vp8::start(video.clone()))),
    }
}

/// VP8 → H.264 on its own thread: decoding and encoding a frame takes milliseconds, which a
/// tokio worker must not spend (and swscale's context may not cross threads). `push` hands
/// the frame over and returns what the thread has finished, so a frame comes out one frame
/// later than it went in.
struct Vp8 {
    frames: std::sync::mpsc::SyncSender<(i64, Vec<u8>, bool)>,
    done: std::sync::mpsc::Receiver<Result<Vec<weir_media::Sample>, String>>,
    config: Arc<std::sync::Mutex<Option<weir_media::H264Config>>>,
}

impl Vp8 {
    fn start(
        settings: weir_encoder::EncoderSettings,
    ) -> Result<Box<dyn weir_ingest::whip::VideoTranscoder>, String> {
        // A second of frames may queue; past that the publisher outruns the transcoder and
        // frames are refused (the session asks for a keyframe).
        let (frames, rx) = std::sync::mpsc::sync_channel::<(i64, Vec<u8>, bool)>(30);
        let (tx, done) = std::sync::mpsc::channel();
        let config = Arc::new(std::sync::Mutex::new(None));
        let shared = Arc::clone(&config);
        std::thread::Builder::new()
            .name("whip-vp8".into())
            .spawn(move || {
                // Made here: its swscale context may not cross threads.
                let mut t = match weir_encoder::Vp8ToH264::new(settings) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                for (pts, data, keyframe) in rx {
                    let out = t.push(pts, &data, keyframe).map_err(|e| e.to_string());
                    if let Some(c) = t.config() {
                        *shared
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
                    }
                    if tx.send(out).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Box::new(Self {
            frames,
            done,
            config,
        }))
    }
}

impl weir_ingest::whip::VideoTranscoder for Vp8 {
    fn push(
        &mut self,
        pts: i64,
        vp8: &[u8],
        keyframe: bool,
    ) -> Result<Vec<weir_media::Sample>, String> {
        self.frames
            .try_send((pts, vp8.to_vec(), keyframe))
            .map_err(|_| "the VP8 transcoder is behind; frame dropped".to_owned())?;
        let mut out = Vec::new();
        while let Ok(r) = self.done.try_recv() {
            out.extend(r?);
        }
        Ok(out)
    }

    fn config(&self) -> Option<weir_media::H264Config> {
        self.config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

struct Transcoder(weir_encoder::OpusToAac);

impl weir_ingest::whip::AudioTranscoder for Transcoder {
    fn config(&self) -> weir_media::AacConfig {
        weir_encoder::audio_output_config()
    }

    fn push(&mut self, pts: i64, opus: &[u8]) -> Result<Vec<weir_media::Sample>, String> {
        self.0.push(pts, opus).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_endpoint_or_a_session_and_nothing_else() {
        assert_eq!(target("/whip"), Some(Target::Endpoint(None)));
        assert_eq!(target("/whip/"), Some(Target::Endpoint(None)));
        assert_eq!(target("/whip/abc"), Some(Target::Endpoint(Some("abc"))));
        assert_eq!(target("/whip/session/00ff"), Some(Target::Session("00ff")));
        assert_eq!(target("/whip/session/zz"), None);
        assert_eq!(target("/whip/a/b"), None);
        assert_eq!(target("/whipx"), None);
    }
}
