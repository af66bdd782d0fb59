//! The origin's route and LL-HLS query parsing (`weir_origin::parse_route`,
//! `parse_hls_query`) on arbitrary request targets. Besides not panicking, an accepted route
//! must name only safe names, keep `_HLS_part` tied to `_HLS_msn`, and print back to a path
//! that parses to the same route. Signed-URL token segments are split off, checked and
//! redacted on the way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_origin::{parse_hls_query, parse_route, Error, Route};

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The canonical path of a route (numbers without leading zeros).
fn path_of(route: &Route) -> String {
    match route {
        Route::Health => "/healthz".into(),
        Route::Ready => "/readyz".into(),
        Route::Metrics => "/metrics".into(),
        Route::PlayerPage => "/".into(),
        Route::PlayerScript => "/hls.min.js".into(),
        Route::Multivariant { stream } => format!("/live/{stream}/master.m3u8"),
        Route::MediaPlaylist {
            stream, rendition, ..
        } => format!("/live/{stream}/{rendition}/index.m3u8"),
        Route::Init {
            stream,
            rendition,
            generation: None,
        } => format!("/live/{stream}/{rendition}/init.mp4"),
        Route::Init {
            stream,
            rendition,
            generation: Some(g),
        } => format!("/live/{stream}/{rendition}/init{g}.mp4"),
        Route::Part {
            stream,
            rendition,
            seq,
        } => format!("/live/{stream}/{rendition}/part{seq}.m4s"),
        Route::Segment {
            stream,
            rendition,
            msn,
        } => format!("/live/{stream}/{rendition}/seg{msn}.m4s"),
        Route::AssetList { stream, cue_id } => format!("/live/{stream}/asset-list/{cue_id}.json"),
        Route::Asset { path } => format!("/assets/{path}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // A request target is text (http::Uri hands the origin `&str`s).
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let parsed_query = parse_hls_query(query.unwrap_or(""));
    if let Ok(q) = &parsed_query {
        assert!(
            q.part.is_none() || q.msn.is_some(),
            "{target:?}: _HLS_part without _HLS_msn"
        );
    }
    if let Err(e) = &parsed_query {
        assert!(matches!(e, Error::BadRequest(_)), "{target:?}: {e:?}");
    }
    // A signed playback URL's token segment comes out before routing, as in the origin;
    // checking any token and redacting any path for the logs never panics.
    let _ = weir_origin::signed::redacted(path);
    let (path, token) = weir_origin::signed::split(path);
    if let Some(token) = token {
        assert!(!token.contains('/'), "{target:?}: token {token:?}");
        let _ = weir_origin::signed::verify(&[b"fuzz key"], "s", token, 0);
    }
    let route = match parse_route(&path, query) {
        Ok(route) => route,
        Err(Error::NotFound | Error::BadRequest(_)) => return,
        Err(e) => panic!("{target:?}: unexpected {e:?}"),
    };
    if let Some(stream) = route.stream() {
        assert!(safe_name(stream), "{target:?}: stream {stream:?}");
    }
    match &route {
        Route::MediaPlaylist {
            rendition, query, ..
        } => {
            assert!(safe_name(rendition), "{target:?}");
            assert_eq!(Some(query), parsed_query.as_ref().ok(), "{target:?}");
        }
        Route::Init { rendition, .. }
        | Route::Part { rendition, .. }
        | Route::Segment { rendition, .. } => assert!(safe_name(rendition), "{target:?}"),
        Route::Asset { path } => assert!(
            path.split('/')
                .all(|seg| !seg.is_empty() && !seg.starts_with('.') && !seg.contains('%')),
            "{target:?}: asset path {path:?} could leave the directory"
        ),
        _ => {}
    }
    let again = parse_route(&path_of(&route), query).expect("a route's own path parses");
    assert_eq!(again, route, "{target:?}");
});
