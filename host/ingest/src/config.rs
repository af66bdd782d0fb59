//! The `[rtmp]`, `[srt]` and `[whip]` sections of `weir.toml`, as read from the file: the listeners'
//! addresses and what a publisher must match. Each has the one check of its values and
//! becomes the listener's settings ([`RtmpSettings`], [`SrtSettings`]) with the values the
//! binary takes from other sections (`ingest.max_connections_per_ip`, the SRT app).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::{Error, Result, RtmpSettings, SrtSettings};

/// `[rtmp]`. Every key is optional; an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    /// Set to `false` to disable RTMP ingest.
    pub enabled: bool,
    pub listen: SocketAddr,
    /// The RTMP application publishers use: `rtmp://host/<app>/<key>`.
    pub app: String,
    /// Open RTMP connections; one more is closed at accept.
    pub max_connections: usize,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            app: crate::rtmp::DEFAULT_APP.to_owned(),
            // An origin's listener, not a library default (`RtmpSettings` has 256).
            max_connections: 1000,
        }
    }
}

impl RtmpConfig {
    /// `app` appears in publish URLs (and SRT stream ids): a conservative alphabet.
    pub fn validate(&self) -> Result<()> {
        if self.app.is_empty() || !self.app.chars().all(valid_app_char) {
            return Err(Error::Config(format!(
                "rtmp.app = {:?} must be non-empty [A-Za-z0-9_-]",
                self.app
            )));
        }
        Ok(())
    }

    /// The listener's settings: these values, a per-address cap, the rest at defaults.
    pub fn settings(&self, max_connections_per_ip: usize) -> RtmpSettings {
        RtmpSettings {
            app: self.app.clone(),
            max_connections: self.max_connections,
            max_connections_per_ip,
            ..RtmpSettings::default()
        }
    }
}

fn valid_app_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Above this, SRT's receive buffer holds more delay than a live origin should add.
pub const MAX_SRT_LATENCY: Duration = Duration::from_secs(10);

/// `[srt]`. Every key is optional; an unknown key is an error.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrtConfig {
    pub enabled: bool,
    /// UDP listener. Callers publish MPEG-TS with `streamid=KEY`, `#!::r=live/KEY,m=publish`
    /// or `publish:live/KEY`.
    pub listen: SocketAddr,
    /// SRT receive latency in milliseconds.
    pub latency_ms: u64,
    /// AES passphrase (10–79 characters) every caller must use; none when unset.
    pub passphrase: Option<String>,
}

impl Default for SrtConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            latency_ms: u64::try_from(crate::srt::DEFAULT_LATENCY.as_millis()).unwrap_or(200),
            passphrase: None,
        }
    }
}

/// The passphrase is a secret: never printed.
impl fmt::Debug for SrtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("latency_ms", &self.latency_ms)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl SrtConfig {
    /// The latency's ceiling here; the passphrase by SRT's own rule (the listener's check,
    /// [`SrtSettings::validate`]).
    pub fn validate(&self) -> Result<()> {
        if Duration::from_millis(self.latency_ms) > MAX_SRT_LATENCY {
            return Err(Error::Config(format!(
                "srt.latency_ms = {} is above the {} s maximum",
                self.latency_ms,
                MAX_SRT_LATENCY.as_secs()
            )));
        }
        SrtSettings {
            passphrase: self.passphrase.clone(),
            ..SrtSettings::default()
        }
        .validate()
        .map_err(Error::Config)
    }

    /// The listener's settings: these values, the application stream ids must name (RTMP's,
    /// so one URL path works for both), a per-address cap, the rest at defaults.
    pub fn settings(&self, app: &str, max_connections_per_ip: usize) -> SrtSettings {
        SrtSettings {
            app: Some(app.to_owned()),
            latency: Duration::from_millis(self.latency_ms),
            passphrase: self.passphrase.clone(),
            max_connections_per_ip,
            ..SrtSettings::default()
        }
    }
}

/// `[whip]`. Every key is optional; an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhipConfig {
    /// Set to `false` to disable WHIP (`POST /whip/{key}` answers 404).
    pub enabled: bool,
    /// The one UDP port every WebRTC session's media uses.
    pub udp: SocketAddr,
    /// Addresses handed to publishers as ICE candidates. Empty: the address each
    /// publisher's HTTP request reached (right without NAT); behind a NAT or a load balancer
    /// list the public address (NAT 1:1).
    pub candidate_ips: Vec<std::net::IpAddr>,
    /// WHIP sessions at once.
    pub max_sessions: usize,
    /// WHEP viewers at once (WHEP shares WHIP's UDP port and is on when WHIP is).
    pub max_viewers: usize,
    /// The most video bitrate a WHIP publisher may send, kbit/s (`b=AS` in the answer,
    /// which browsers and OBS take as their ceiling).
    pub max_video_kbps: u32,
    /// Ask the publisher for a keyframe when none came for this long. Unset: 0.4 of a part
    /// target before the segment target, so that the keyframe, which comes a frame or two
    /// after the request, lands in the segment's last part and the packager cuts there
    /// (a keyframe asked for at the target landed just after it, and left every segment a
    /// last part of a frame or two, which hls.js can pass over and stall).
    pub keyframe_interval_ms: Option<u64>,
    /// STUN and TURN servers for publishers and viewers behind restrictive NATs, handed to
    /// them as `Link: <url>; rel="ice-server"` on every WHIP and WHEP `201` (RFC 9725 4.6).
    /// weir itself needs none (it has a reachable address, or `candidate_ips`).
    pub ice_servers: Vec<IceServer>,
}

/// One `[[whip.ice_servers]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]` or `turns:…`.
    pub url: String,
    /// TURN's long-term credentials (RFC 8489 9.2): both or neither. Every publisher and
    /// viewer is told them; prefer `secret`.
    pub username: Option<String>,
    pub credential: Option<String>,
    /// TURN's shared secret (coturn `static-auth-secret` with `use-auth-secret`): each 201
    /// gets its own credentials that expire after `ttl_s`, as the TURN REST API has them
    /// (username `{expiry}:weir`, credential base64 HMAC-SHA1 of it under the secret).
    pub secret: Option<String>,
    /// How long `secret` credentials last, seconds (default one day).
    pub ttl_s: Option<u64>,
}

/// How long TURN REST API credentials last by default.
const TURN_TTL_S: u64 = 86_400;

impl IceServer {
    /// The `Link` header value (RFC 9725 4.6, with RFC 8288's quoted parameters), for an
    /// answer at `now_unix` (seconds).
    pub fn link(&self, now_unix: u64) -> String {
        let mut v = format!("<{}>; rel=\"ice-server\"", self.url);
        let credentials = match (&self.secret, &self.username, &self.credential) {
            (Some(secret), _, _) => {
                let expiry = now_unix.saturating_add(self.ttl_s.unwrap_or(TURN_TTL_S));
                turn_rest_credentials(secret, expiry)
            }
            (None, Some(u), Some(c)) => Some((u.clone(), c.clone())),
            _ => None,
        };
        if let Some((u, c)) = credentials {
            v.push_str(&format!(
                "; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\""
            ));
        }
        v
    }

    fn validate(&self) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::Config(format!(
                "whip.ice_servers {:?}: {why}",
                self.url
            )))
        };
        let turn = self.url.starts_with("turn:") || self.url.starts_with("turns:");
        if !turn && !self.url.starts_with("stun:") {
            return bad("the url is stun:, turn: or turns: (RFC 7064, RFC 7065)");
        }
        if self.url.len() < 7 {
            return bad("no host");
        }
        // Everything goes into a quoted header parameter or a <URI>.
        let header_safe = |v: &str| {
            v.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\'))
        };
        let fields = [
            Some(&self.url),
            self.username.as_ref(),
            self.credential.as_ref(),
        ];
        if !fields.into_iter().flatten().all(|v| header_safe(v)) {
            return bad("url, username and credential are printable ASCII without spaces, quotes, < > or \\");
        }
        if self.secret.as_deref() == Some("") || self.ttl_s == Some(0) {
            return bad("secret and ttl_s may not be empty or 0");
        }
        match (turn, &self.username, &self.credential, &self.secret) {
            (true, Some(_), Some(_), None)
            | (true, None, None, Some(_))
            | (false, None, None, None) => Ok(()),
            (true, _, _, _) => bad("a TURN server needs username and credential, or a secret"),
            (false, _, _, _) => bad("a STUN server takes no username, credential or secret"),
        }
    }
}

/// TURN REST API credentials (draft-uberti-behave-turn-rest; coturn's `use-auth-secret`):
/// `{expiry}:weir`, and the base64 HMAC-SHA1 of that under `secret`.
fn turn_rest_credentials(secret: &str, expiry: u64) -> Option<(String, String)> {
    use base64::Engine as _;
    use hmac::Mac as _;
    let username = format!("{expiry}:weir");
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Some((username, credential))
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            udp: SocketAddr::from(([0, 0, 0, 0], 8189)),
            candidate_ips: Vec::new(),
            max_sessions: 100,
            max_viewers: 500,
            max_video_kbps: 8000,
            keyframe_interval_ms: None,
            ice_servers: Vec::new(),
        }
    }
}

impl WhipConfig {
    pub fn validate(&self) -> Result<()> {
        if self.max_sessions == 0 {
            return Err(Error::Config("whip.max_sessions must be at least 1".into()));
        }
        if !(100..=100_000).contains(&self.max_video_kbps) {
            return Err(Error::Config(
                "whip.max_video_kbps must be 100..=100000".into(),
            ));
        }
        if let Some(ip) = self.candidate_ips.iter().find(|ip| ip.is_unspecified()) {
            return Err(Error::Config(format!(
                "whip.candidate_ips: {ip} is not an address a publisher can reach"
            )));
        }
        if self
            .keyframe_interval_ms
            .is_some_and(|ms| !(100..=60_000).contains(&ms))
        {
            return Err(Error::Config(
                "whip.keyframe_interval_ms must be 100..=60000".into(),
            ));
        }
        for server in &self.ice_servers {
            server.validate()?;
        }
        Ok(())
    }

    /// The sessions' settings; the keyframe interval, when none is set, comes from the
    /// packager's targets (see `keyframe_interval_ms`).
    pub fn settings(&self, segment_target: Duration, part_target: Duration) -> crate::WhipSettings {
        crate::WhipSettings {
            candidate_ips: self.candidate_ips.clone(),
            max_sessions: self.max_sessions,
            max_video_kbps: Some(self.max_video_kbps),
            keyframe_interval: self.keyframe_interval_ms.map_or_else(
                || crate::whip::keyframe_interval(segment_target, part_target),
                Duration::from_millis,
            ),
            ..crate::WhipSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RtmpConfig::default().validate().unwrap();
        SrtConfig::default().validate().unwrap();
        assert_eq!(SrtConfig::default().latency_ms, 200);
        let s = SrtConfig::default().settings("live", 3);
        assert_eq!(s.latency, crate::srt::DEFAULT_LATENCY);
        assert_eq!(
            (s.app.as_deref(), s.max_connections_per_ip),
            (Some("live"), 3)
        );
        let r = RtmpConfig::default().settings(5);
        assert_eq!(
            (r.app.as_str(), r.max_connections, r.max_connections_per_ip),
            ("live", 1000, 5)
        );
    }

    #[test]
    fn ice_servers_become_link_headers_and_bad_ones_are_refused() {
        let server = |url: &str, user: Option<&str>, pass: Option<&str>| IceServer {
            url: url.to_owned(),
            username: user.map(str::to_owned),
            credential: pass.map(str::to_owned),
            secret: None,
            ttl_s: None,
        };
        let stun = server("stun:stun.example.net:3478", None, None);
        let turn = server(
            "turn:turn.example.net:3478?transport=udp",
            Some("u1"),
            Some("p1"),
        );
        assert_eq!(
            stun.link(0),
            "<stun:stun.example.net:3478>; rel=\"ice-server\""
        );
        assert_eq!(
            turn.link(0),
            "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"u1\"; credential=\"p1\"; credential-type=\"password\""
        );
        let whip = |servers: Vec<IceServer>| WhipConfig {
            ice_servers: servers,
            ..WhipConfig::default()
        };
        // A shared secret: TURN REST API credentials per answer. The digest is Python's
        // base64.b64encode(hmac.new(b"s3cret", b"1700086400:weir", "sha1").digest()).
        let rest = IceServer {
            secret: Some("s3cret".into()),
            ..server("turn:turn.example.net", None, None)
        };
        assert_eq!(
            rest.link(1_700_000_000),
            "<turn:turn.example.net>; rel=\"ice-server\"; username=\"1700086400:weir\"; credential=\"ww7FNb+PEGFpeirdX9Hj2i7aIuE=\"; credential-type=\"password\""
        );
        let short = IceServer {
            ttl_s: Some(600),
            ..rest.clone()
        };
        assert!(short
            .link(1_700_000_000)
            .contains("username=\"1700000600:weir\""));
        whip(vec![stun.clone(), turn.clone(), rest.clone()])
            .validate()
            .unwrap();
        let with_both = IceServer {
            username: Some("u".into()),
            credential: Some("p".into()),
            ..rest.clone()
        };
        assert!(whip(vec![with_both]).validate().is_err());
        for (bad, why) in [
            (server("http://x", None, None), "stun:, turn: or turns:"),
            (
                server("turn:x.example", None, None),
                "needs username and credential",
            ),
            (
                server("stun:x.example", Some("u"), Some("p")),
                "takes no username",
            ),
            (
                server("turn:x.example", Some("u"), Some("p\"; x=\"y")),
                "printable ASCII",
            ),
            (
                server("stun:x>\r\nSet-Cookie: a", None, None),
                "printable ASCII",
            ),
        ] {
            let e = whip(vec![bad]).validate().unwrap_err().to_string();
            assert!(e.contains("whip.ice_servers") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let rtmp = |app: &str| {
            RtmpConfig {
                app: app.to_owned(),
                ..RtmpConfig::default()
            }
            .validate()
        };
        for app in ["", "a/b", "live app"] {
            let e = rtmp(app).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("rtmp.app = {app:?} must be non-empty [A-Za-z0-9_-]")
            );
        }
        rtmp("Live_2-b").unwrap();

        let srt = |latency_ms: u64, passphrase: Option<&str>| {
            SrtConfig {
                latency_ms,
                passphrase: passphrase.map(str::to_owned),
                ..SrtConfig::default()
            }
            .validate()
        };
        assert_eq!(
            srt(10_001, None).unwrap_err().to_string(),
            "srt.latency_ms = 10001 is above the 10 s maximum"
        );
        srt(10_000, Some("0123456789")).unwrap();
        for p in ["short", &"x".repeat(80)] {
            let e = srt(200, Some(p)).unwrap_err().to_string();
            assert!(e.starts_with("srt.passphrase: must be 10 to 79"), "{e}");
            assert!(!e.contains(p), "the passphrase is not in the message: {e}");
        }
    }

    #[test]
    fn the_passphrase_is_not_printed() {
        let c = SrtConfig {
            passphrase: Some("correct horse battery".to_owned()),
            ..SrtConfig::default()
        };
        assert!(!format!("{c:?}").contains("horse"));
    }
}
