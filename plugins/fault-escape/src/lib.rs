//! fault-escape: on request, a plugin output that must never reach a viewer. For the host's
//! containment tests (issue 12): it varies on the query parameter `case` (and the header
//! `x-viewer`, so tests can see which headers an asset-list call gets), and `case` picks
//! what it does:
//!
//! | `case` | media playlist | multivariant playlist | asset list |
//! | --- | --- | --- | --- |
//! | `<spot>:<n>` | [`FORMS`]`[n]` written at a [`MEDIA_SPOTS`] spot | at a [`MULTIVARIANT_SPOTS`] spot | — |
//! | `cr` | a lone carriage return before an absolute URI | same | — |
//! | `hidden` | a `URI=` hidden in another attribute's value | same | — |
//! | `allowed` | an interstitial whose `X-ASSET-LIST` is on [`ALLOWED_HOST`] | marked | an ad on [`ALLOWED_HOST`] |
//! | `big` | 60 MiB | 60 MiB | 60 MiB of JSON |
//! | `evil` | marked | marked | an ad on `evil.example` |
//! | `echo` | marked | marked | the context it got, as JSON (`CTX`) |
//! | `slow…` | marked | marked | loops until the host interrupts it |
//! | anything else, or none | marked | marked | an ad at `/assets/ad/index.m3u8` |
//!
//! "Marked" is the input plus one comment line, `## <config> case=<case>`: with every
//! value of `case` a new variant. Every bad URI contains `evil`, so a test can look for it
//! in whatever reaches a viewer. The config is the mark's text (`[a-z0-9-]`, default
//! `fault-escape`). failure-policy: pass-through.

use std::cell::RefCell;

use weir_guest::{CueEvent, FailurePolicy, Guest, PluginInfo, RequestContext, VariantAttribute};

/// URIs that leave the stream, or mean different things to different players.
pub const FORMS: [&str; 15] = [
    "%2e%2e/%2e%2e/evil/src/seg1.m4s",
    "..%2f..%2fevil%2fsrc%2fseg1.m4s",
    "../../evil/src/seg1.m4s",
    "/live/evil/src/seg1.m4s",
    "https:evil.example/seg1.m4s",
    "https://evil.example/seg1.m4s",
    "HtTpS://evil.example/seg1.m4s",
    "//evil.example/seg1.m4s",
    "data:application/vnd.apple.mpegurl,evil",
    "JavaScript:evil()",
    "..\\..\\evil\\src\\seg1.m4s",
    "https://ads.allowed.example@evil.example/seg1.m4s",
    "https://ads.allowed.example.evil.example/seg1.m4s",
    "https://xn--evil-7na.example/seg1.m4s",
    "https://evil.example:8443/seg1.m4s",
];

/// Where a media playlist gets a bad URI.
pub const MEDIA_SPOTS: [&str; 8] = [
    "segment",
    "map",
    "part",
    "hint",
    "report",
    "key",
    "asset-list",
    "asset-uri",
];

/// Where a multivariant playlist gets a bad URI.
pub const MULTIVARIANT_SPOTS: [&str; 6] = [
    "variant",
    "media",
    "session-data",
    "i-frame",
    "session-key",
    "steering",
];

/// The ad host the tests' tenant lists in `ad_hosts`.
pub const ALLOWED_HOST: &str = "ads.allowed.example";

/// The size of a `big` answer.
pub const BIG: usize = 60 << 20;

thread_local! {
    static MARK: RefCell<String> = RefCell::new(String::from("fault-escape"));
}

struct FaultEscape;

impl Guest for FaultEscape {
    fn init(config: String) -> Result<PluginInfo, String> {
        let mark = config.trim();
        if mark.len() > 64
            || !mark
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("config: the mark must be at most 64 of [a-z0-9-]".into());
        }
        if !mark.is_empty() {
            MARK.with(|m| *m.borrow_mut() = mark.to_owned());
        }
        Ok(PluginInfo {
            varies_on: vec![
                VariantAttribute::Query("case".into()),
                VariantAttribute::Header("x-viewer".into()),
            ],
            failure_policy: FailurePolicy::PassThrough,
        })
    }

    fn transform_media_playlist(
        ctx: RequestContext,
        _cues: Vec<CueEvent>,
        playlist: String,
    ) -> Result<String, String> {
        let mark = MARK.with(|m| m.borrow().clone());
        media(&playlist, ctx.query_param("case"), &mark)
    }

    fn transform_multivariant_playlist(
        ctx: RequestContext,
        playlist: String,
    ) -> Result<String, String> {
        let mark = MARK.with(|m| m.borrow().clone());
        multivariant(&playlist, ctx.query_param("case"), &mark)
    }

    fn resolve_asset_list(ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Ok(asset_list(&ctx))
    }
}

weir_guest::export!(FaultEscape);

/// What `case` asks of a playlist.
enum Case<'a> {
    Form { spot: &'a str, uri: &'static str },
    LoneCr,
    Hidden,
    Allowed,
    Big,
    Mark(&'a str),
}

fn case(value: Option<&str>) -> Case<'_> {
    let Some(value) = value else {
        return Case::Mark("");
    };
    match value {
        "cr" => Case::LoneCr,
        "hidden" => Case::Hidden,
        "allowed" => Case::Allowed,
        "big" => Case::Big,
        _ => match value.split_once(':') {
            Some((spot, n)) => match n.parse::<usize>().ok().and_then(|n| FORMS.get(n)) {
                Some(uri) => Case::Form { spot, uri },
                None => Case::Mark(value),
            },
            None => Case::Mark(value),
        },
    }
}

/// The input with the mark line after it. `case` is cut to a safe alphabet first.
fn marked(text: &str, mark: &str, case: &str) -> String {
    let case: String = case
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'))
        .take(64)
        .collect();
    let mut out = String::with_capacity(text.len() + 96);
    out.push_str(text);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("## ");
    out.push_str(mark);
    out.push_str(" case=");
    out.push_str(&case);
    out.push('\n');
    out
}

pub fn media(text: &str, value: Option<&str>, mark: &str) -> Result<String, String> {
    match case(value) {
        Case::Form { spot, uri } if MEDIA_SPOTS.contains(&spot) => media_spot(text, spot, uri),
        Case::Form { .. } => Ok(marked(text, mark, value.unwrap_or_default())),
        Case::LoneCr => Ok(insert_after_first_line(
            text,
            "#EXT-X-FAULT-ESCAPE\rhttps://evil.example/seg1.m4s\n",
        )),
        Case::Hidden => insert_before(
            text,
            "#EXT-X-PROGRAM-DATE-TIME:",
            "#EXT-X-MAP:URI=\"init.mp4\",X-NOTE=\"a,URI=https://evil.example/init.mp4\"\n",
        ),
        Case::Allowed => {
            let tag = daterange(text, "X-ASSET-LIST", &format!("https://{ALLOWED_HOST}/list.json"))?;
            let with = insert_before(text, "#EXT-X-PROGRAM-DATE-TIME:", &tag)?;
            Ok(marked(&with, mark, "allowed"))
        }
        Case::Big => Ok(big(text)),
        Case::Mark(v) => Ok(marked(text, mark, v)),
    }
}

pub fn multivariant(text: &str, value: Option<&str>, mark: &str) -> Result<String, String> {
    match case(value) {
        Case::Form { spot, uri } if MULTIVARIANT_SPOTS.contains(&spot) => {
            multivariant_spot(text, spot, uri)
        }
        Case::Form { .. } | Case::Allowed => Ok(marked(text, mark, value.unwrap_or_default())),
        Case::LoneCr => Ok(insert_after_first_line(
            text,
            "#EXT-X-FAULT-ESCAPE\rhttps://evil.example/index.m3u8\n",
        )),
        Case::Hidden => Ok(insert_after_first_line(
            text,
            "#EXT-X-SESSION-DATA:DATA-ID=\"com.weir.x\",VALUE=\"a,URI=https://evil.example/x.json\"\n",
        )),
        Case::Big => Ok(big(text)),
        Case::Mark(v) => Ok(marked(text, mark, v)),
    }
}

fn media_spot(text: &str, spot: &str, uri: &str) -> Result<String, String> {
    match spot {
        "segment" => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let last = lines
                .iter()
                .rposition(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .ok_or("no segment line")?;
            let mut out = String::with_capacity(text.len() + uri.len());
            for (i, l) in lines.iter().enumerate() {
                if i == last {
                    out.push_str(uri);
                    out.push('\n');
                } else {
                    out.push_str(l);
                }
            }
            Ok(out)
        }
        "map" => replace_uri(text, "#EXT-X-MAP:", uri, false),
        "part" => replace_uri(text, "#EXT-X-PART:", uri, true),
        "hint" => replace_uri(text, "#EXT-X-PRELOAD-HINT:", uri, false),
        "report" => {
            let mut out = text.to_owned();
            out.push_str(&format!(
                "#EXT-X-RENDITION-REPORT:URI=\"{uri}\",LAST-MSN=1,LAST-PART=0\n"
            ));
            Ok(out)
        }
        "key" => insert_before(
            text,
            "#EXT-X-PROGRAM-DATE-TIME:",
            &format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\"\n"),
        ),
        "asset-list" => {
            let tag = daterange(text, "X-ASSET-LIST", uri)?;
            insert_before(text, "#EXT-X-PROGRAM-DATE-TIME:", &tag)
        }
        "asset-uri" => {
            let tag = daterange(text, "X-ASSET-URI", uri)?;
            insert_before(text, "#EXT-X-PROGRAM-DATE-TIME:", &tag)
        }
        _ => Err(format!("no media spot {spot:?}")),
    }
}

fn multivariant_spot(text: &str, spot: &str, uri: &str) -> Result<String, String> {
    let tag = match spot {
        "variant" => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let first = lines
                .iter()
                .position(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .ok_or("no variant line")?;
            let mut out = String::with_capacity(text.len() + uri.len());
            for (i, l) in lines.iter().enumerate() {
                if i == first {
                    out.push_str(uri);
                    out.push('\n');
                } else {
                    out.push_str(l);
                }
            }
            return Ok(out);
        }
        "media" => format!(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"x\",LANGUAGE=\"en\",URI=\"{uri}\"\n"
        ),
        "session-data" => format!("#EXT-X-SESSION-DATA:DATA-ID=\"com.weir.x\",URI=\"{uri}\"\n"),
        "i-frame" => format!("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"{uri}\"\n"),
        "session-key" => format!("#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"{uri}\"\n"),
        "steering" => format!("#EXT-X-CONTENT-STEERING:SERVER-URI=\"{uri}\"\n"),
        _ => return Err(format!("no multivariant spot {spot:?}")),
    };
    Ok(insert_after_first_line(text, &tag))
}

/// An interstitial date range starting at the first segment's date, with `attr="uri"`.
fn daterange(text: &str, attr: &str, uri: &str) -> Result<String, String> {
    let date = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .ok_or("no EXT-X-PROGRAM-DATE-TIME")?;
    Ok(format!(
        "#EXT-X-DATERANGE:ID=\"fault-escape\",CLASS=\"com.apple.hls.interstitial\",\
         START-DATE=\"{date}\",DURATION=5.0,{attr}=\"{uri}\"\n"
    ))
}

/// Replaces the `URI="…"` value of the first (or last) line starting with `prefix`.
fn replace_uri(text: &str, prefix: &str, uri: &str, last: bool) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut found = lines.iter().enumerate().filter(|(_, l)| l.starts_with(prefix));
    let (at, line) = if last { found.next_back() } else { found.next() }
        .ok_or_else(|| format!("no {prefix} line"))?;
    let start = line.find("URI=\"").ok_or("no URI attribute")? + 5;
    let end = start + line[start..].find('"').ok_or("unterminated URI")?;
    let mut out = String::with_capacity(text.len() + uri.len());
    for (i, l) in lines.iter().enumerate() {
        if i == at {
            out.push_str(&line[..start]);
            out.push_str(uri);
            out.push_str(&line[end..]);
        } else {
            out.push_str(l);
        }
    }
    Ok(out)
}

fn insert_before(text: &str, prefix: &str, lines: &str) -> Result<String, String> {
    let at = text
        .match_indices(prefix)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
        .ok_or_else(|| format!("no {prefix} line"))?;
    Ok(format!("{}{lines}{}", &text[..at], &text[at..]))
}

fn insert_after_first_line(text: &str, lines: &str) -> String {
    match text.find('\n') {
        Some(i) => format!("{}{lines}{}", &text[..=i], &text[i + 1..]),
        None => format!("{text}\n{lines}"),
    }
}

/// The input padded with comment lines to [`BIG`] bytes.
fn big(text: &str) -> String {
    let line = format!("#{}\n", "x".repeat(1022));
    let mut out = String::with_capacity(BIG + text.len() + line.len());
    out.push_str(text);
    while out.len() < BIG {
        out.push_str(&line);
    }
    out
}

pub fn asset_list(ctx: &RequestContext) -> String {
    let ad = |uri: &str| format!(r#"{{"ASSETS":[{{"URI":{},"DURATION":5.0}}]}}"#, json(uri));
    match ctx.query_param("case") {
        Some("evil") => ad("https://evil.example/ad/index.m3u8"),
        Some("allowed") => ad(&format!("https://{ALLOWED_HOST}/ad/index.m3u8")),
        Some("big") => {
            let mut out = String::with_capacity(BIG + 32);
            out.push_str(r#"{"ASSETS":[],"PAD":""#);
            while out.len() < BIG {
                out.push_str("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            }
            out.push_str("\"}");
            out
        }
        Some("echo") => {
            let pairs = |list: &[(String, String)]| {
                let items: Vec<String> = list
                    .iter()
                    .map(|(k, v)| format!("[{},{}]", json(k), json(v)))
                    .collect();
                format!("[{}]", items.join(","))
            };
            format!(
                r#"{{"ASSETS":[],"CTX":{{"country":{},"headers":{},"query":{}}}}}"#,
                ctx.country.as_deref().map_or("null".to_owned(), json),
                pairs(&ctx.headers),
                pairs(&ctx.query)
            )
        }
        Some(v) if v.starts_with("slow") => spin(),
        _ => ad("/assets/ad/index.m3u8"),
    }
}

/// Never returns: the host's epoch deadline must interrupt it.
fn spin() -> String {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// A JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_guest::testing::{context, MEDIA_FULL, MULTIVARIANT};

    #[test]
    fn every_form_lands_at_every_spot() {
        for spot in MEDIA_SPOTS {
            for (n, form) in FORMS.iter().enumerate() {
                let out = media(MEDIA_FULL, Some(&format!("{spot}:{n}")), "m").unwrap();
                assert!(out.contains(form), "{spot}:{n}");
                assert_ne!(out, MEDIA_FULL);
                assert!(form.contains("evil"));
            }
        }
        for spot in MULTIVARIANT_SPOTS {
            for (n, form) in FORMS.iter().enumerate() {
                let out = multivariant(MULTIVARIANT, Some(&format!("{spot}:{n}")), "m").unwrap();
                assert!(out.contains(form), "{spot}:{n}");
            }
        }
    }

    #[test]
    fn other_cases_mark_or_misbehave() {
        let out = media(MEDIA_FULL, Some("v123"), "tenant-b").unwrap();
        assert_eq!(out, format!("{MEDIA_FULL}## tenant-b case=v123\n"));
        let out = media(MEDIA_FULL, None, "m").unwrap();
        assert!(out.ends_with("## m case=\n"));
        assert!(media(MEDIA_FULL, Some("cr"), "m").unwrap().contains('\r'));
        assert!(media(MEDIA_FULL, Some("hidden"), "m").unwrap().contains("evil"));
        let allowed = media(MEDIA_FULL, Some("allowed"), "m").unwrap();
        assert!(allowed.contains("X-ASSET-LIST=\"https://ads.allowed.example/list.json\""));
        assert!(media(MEDIA_FULL, Some("big"), "m").unwrap().len() >= BIG);
        // A form meant for the other kind of playlist only marks.
        let out = multivariant(MULTIVARIANT, Some("map:1"), "m").unwrap();
        assert!(!out.contains("evil"));
    }

    #[test]
    fn asset_lists() {
        let mut ctx = context(Some("US"));
        assert!(asset_list(&ctx).contains("/assets/ad/index.m3u8"));
        ctx.query = vec![("case".into(), "evil".into())];
        assert!(asset_list(&ctx).contains("https://evil.example/"));
        ctx.query = vec![("case".into(), "echo".into())];
        ctx.headers = vec![("x-viewer".into(), "a\"b".into())];
        assert_eq!(
            asset_list(&ctx),
            r#"{"ASSETS":[],"CTX":{"country":"US","headers":[["x-viewer","a\"b"]],"query":[["case","echo"]]}}"#
        );
        ctx.query = vec![("case".into(), "big".into())];
        assert!(asset_list(&ctx).len() >= BIG);
    }
}
