//! The SDK's one error type.

use std::fmt;

/// Why a playlist could not be parsed, or a tag could not be built.
///
/// Converts into `String` with `?`, so it can bubble straight out of an exported
/// function (`Result<String, String>`); the host logs it with the plugin's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    line: Option<usize>,
    message: String,
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error not tied to a line.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            line: None,
            message: message.into(),
        }
    }

    /// An error on a playlist line (1-based).
    pub fn at_line(line: usize, message: impl Into<String>) -> Self {
        Error {
            line: Some(line),
            message: message.into(),
        }
    }

    /// The 1-based playlist line the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}
