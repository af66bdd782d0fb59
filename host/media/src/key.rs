use std::fmt;

/// A publisher's stream key: a secret, so it never reaches a log in clear text.
///
/// `Display` and `Debug` print a redacted form (the first two characters and the length),
/// enough to tell keys apart in logs without leaking them. Use [`StreamKey::expose`] where
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

/// Prints a secret as its first two characters and its length: `ab…(12)`.
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = self.0.chars().take(2).collect();
        write!(f, "{head}…({})", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let key = StreamKey::new("supersecret");
        assert_eq!(key.to_string(), "su…(11)");
        assert!(!format!("{key:?}").contains("supersecret"));
        assert_eq!(key.expose(), "supersecret");
    }
}
