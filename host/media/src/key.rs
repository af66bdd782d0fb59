use std::fmt;

/// A publisher's stream key: a secret, so it never reaches a log in clear text.
///
/// `Display` and `Debug` print a redacted form (a short keyed hash, see [`Redacted`]),
/// enough to tell keys apart in logs without revealing anything about them. Use [`StreamKey::expose`] where
/// the real value is needed (auth checks, URL building).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamKey(String);

impl StreamKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The clear-text key. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A log-safe view of the key.
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(&self.0)
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.redacted().fmt(f)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({})", self.redacted())
    }
}

/// Prints a secret as a short keyed hash: `k:3fa9c2e1b7d0`.
///
/// The hash is SipHash keyed with a random key drawn once per process, so the same key reads
/// the same in every log line of one process (logs can be correlated), and nothing about it
/// can be learnt from the log: not its characters, not its length, and not a dictionary
/// guess, because the hash key never leaves the process. Two processes print different
/// forms for the same key.
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::hash::{BuildHasher, Hasher};
        static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        let mut h = KEY.get_or_init(Default::default).build_hasher();
        h.write(self.0.as_bytes());
        write!(f, "k:{:012x}", h.finish() >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let key = StreamKey::new("supersecret");
        let shown = key.to_string();
        assert!(shown.starts_with("k:") && shown.len() == 14, "{shown}");
        // A keyed hash in hex: nothing of the key, not even its length (an earlier form
        // printed it). The hex itself may contain any digit pair, "11" included, so the
        // test asserts the form, not the absence of digits (it failed by chance ~4%).
        assert!(shown[2..].chars().all(|c| c.is_ascii_hexdigit()), "{shown}");
        assert!(
            !shown.contains("supersecret") && !shown.contains("su"),
            "{shown}"
        );
        assert!(!format!("{key:?}").contains("supersecret"));
        // Stable within the process, different for different keys.
        assert_eq!(shown, StreamKey::new("supersecret").to_string());
        assert_ne!(shown, StreamKey::new("supersecreu").to_string());
        assert_eq!(key.expose(), "supersecret");
    }
}
