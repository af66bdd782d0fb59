//! Plugin config: the text `init` receives, usually JSON.

use serde::de::DeserializeOwned;

/// Parses a JSON config into `T`, with an error that says where it went wrong (serde's
/// message names the field, e.g. "unknown field `countrys`, expected one of ..."). Empty
/// text reads as `{}`, so a plugin whose fields all have defaults needs no config.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config { dialect: String }
///
/// let c: Config = weir_guest::config::from_json(r#"{"dialect":"both"}"#).unwrap();
/// assert_eq!(c.dialect, "both");
/// let e = weir_guest::config::from_json::<Config>(r#"{"dialekt":"both"}"#).unwrap_err();
/// assert!(e.starts_with("config: unknown field `dialekt`"), "{e}");
/// ```
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| format!("config: {e}"))
}
