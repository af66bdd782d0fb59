use super::*;

const HOSTS: &[&str] = &["ads.example.com", "cdn.ads.example:8443"];

fn hosts() -> Vec<String> {
    HOSTS.iter().map(|h| (*h).to_owned()).collect()
}

/// A media playlist with one URI of every kind a media playlist can hold.
const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n\
    #EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:100\n\
    #EXT-X-MAP:URI=\"{map}\"\n\
    #EXT-X-KEY:METHOD=AES-128,URI=\"{key}\"\n\
    #EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:00.000Z\n\
    #EXT-X-DATERANGE:ID=\"ad-1\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T19:00:00.000Z\",DURATION=10.0,X-ASSET-LIST=\"{list}\"\n\
    #EXT-X-DATERANGE:ID=\"ad-2\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T19:00:01.000Z\",DURATION=5.0,X-ASSET-URI=\"{asset}\"\n\
    #EXTINF:2.000,\n{seg}\n\
    #EXT-X-PART:DURATION=0.500,URI=\"{part}\",INDEPENDENT=YES\n\
    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"\n\
    #EXT-X-RENDITION-REPORT:URI=\"{report}\",LAST-MSN=101,LAST-PART=0\n";

const MEDIA_SPOTS: [(&str, &str, Role); 9] = [
    ("map", "init.mp4", Role::Stream),
    ("key", "key.bin", Role::Stream),
    ("list", "../asset-list/1.json", Role::AssetList),
    ("asset", "/assets/ad/index.m3u8", Role::AdAsset),
    ("seg", "seg100.m4s", Role::Stream),
    ("part", "part400.m4s", Role::Stream),
    ("hint", "part401.m4s", Role::Stream),
    ("report", "../audio/index.m3u8", Role::Stream),
    // Placeholder so both tables have the same shape; unused in MEDIA.
    ("none", "", Role::Stream),
];

/// A multivariant playlist with one URI of every kind it can hold.
const MULTI: &str = "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
    #EXT-X-CONTENT-STEERING:SERVER-URI=\"{steer}\"\n\
    #EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"{session}\"\n\
    #EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"{skey}\"\n\
    #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{media}\"\n\
    #EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aac\"\n{variant}\n\
    #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"{iframe}\"\n";

const MULTI_SPOTS: [(&str, &str, Role); 6] = [
    ("steer", "steering.json", Role::Stream),
    ("session", "title.json", Role::Stream),
    ("skey", "key.bin", Role::Stream),
    ("media", "audio/index.m3u8", Role::Stream),
    ("variant", "720p/index.m3u8", Role::Stream),
    ("iframe", "720p/iframes.m3u8", Role::Stream),
];

fn fill(template: &str, spots: &[(&str, &str, Role)], at: &str, value: &str) -> String {
    let mut s = template.to_owned();
    for (name, good, _) in spots {
        let v = if *name == at { value } else { good };
        s = s.replace(&format!("{{{name}}}"), v);
    }
    s
}

fn media(at: &str, value: &str, hosts: &[String]) -> Result<(), Rejection> {
    let input = fill(MEDIA, &MEDIA_SPOTS, "", "");
    let output = fill(MEDIA, &MEDIA_SPOTS, at, value);
    let scope = Scope {
        stream: "demo",
        asset_hosts: hosts,
    };
    media_playlist(&input, &output, &scope, "720p")
}

fn multi(at: &str, value: &str, hosts: &[String]) -> Result<(), Rejection> {
    let input = fill(MULTI, &MULTI_SPOTS, "", "");
    let output = fill(MULTI, &MULTI_SPOTS, at, value);
    let scope = Scope {
        stream: "demo",
        asset_hosts: hosts,
    };
    multivariant_playlist(&input, &output, &scope)
}

/// Every form that leaves the stream, or means different things to different players.
const ESCAPES: &[&str] = &[
    "../../other/720p/seg100.m4s",
    "../../../etc/passwd",
    "/live/other-stream/720p/seg100.m4s",
    "/live/demo2/720p/seg100.m4s",
    "/live/demo",
    "/live/demo/../other/x.m4s",
    "%2e%2e/%2e%2e/other/720p/seg100.m4s",
    "%2E%2E/%2E%2E/other/720p/seg100.m4s",
    ".%2e/.%2e/other/seg.m4s",
    "..%2f..%2fother%2fseg.m4s",
    "seg%00.m4s",
    "https:evil.example/seg100.m4s",
    "https:/evil.example/seg100.m4s",
    "https://evil.example/seg100.m4s",
    "HtTpS://evil.example/seg100.m4s",
    "http://evil.example/seg100.m4s",
    "//evil.example/seg100.m4s",
    "///evil.example/seg100.m4s",
    "/\\evil.example/seg100.m4s",
    "..\\..\\other\\seg100.m4s",
    "data:application/vnd.apple.mpegurl;base64,I0VYVE0zVQ==",
    "DATA:text/plain,x",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "file:///etc/passwd",
    "blob:https://origin.weir.invalid/x",
    "ht%74ps://evil.example/x",
    "https://origin.weir.invalid/live/demo/720p/seg100.m4s",
    "https://user:pass@evil.example/x",
    "https://ads.example.com@evil.example/x",
    "https://ads.example.com.evil.example/x",
    "https://ads.example.com:8443/x",
    "https://cdn.ads.example/x",
    "https://xn--ds-example-xyz.com/x",
    "https://\u{430}ds.example.com/x",
    "https://[::1]/x",
    "https://127.0.0.1/x",
    "seg 100.m4s",
    "seg\u{e9}.m4s",
];

#[test]
fn every_escape_is_refused_on_every_media_tag() {
    for (spot, _, _) in &MEDIA_SPOTS[..8] {
        for bad in ESCAPES {
            let r = media(spot, bad, &hosts());
            assert!(
                matches!(r, Err(Rejection::UriEscape(_))),
                "{spot}: {bad:?} gave {r:?}"
            );
        }
    }
}

#[test]
fn every_escape_is_refused_on_every_multivariant_tag() {
    for (spot, _, _) in &MULTI_SPOTS {
        for bad in ESCAPES {
            let r = multi(spot, bad, &hosts());
            assert!(
                matches!(r, Err(Rejection::UriEscape(_))),
                "{spot}: {bad:?} gave {r:?}"
            );
        }
    }
}

#[test]
fn uris_inside_the_stream_pass_everywhere() {
    let good = [
        "../slate/x.m4s",
        "/live/demo/slate/x.m4s",
        "./x.m4s?v=1#t",
        "slate/../x.m4s",
        "../../demo/720p/x.m4s",
        "dir/x:y.m4s",
        "x.m4s?next=https://elsewhere",
    ];
    for (spot, _, _) in &MEDIA_SPOTS[..8] {
        for uri in good {
            media(spot, uri, &[]).unwrap_or_else(|e| panic!("{spot}: {uri}: {e}"));
        }
    }
    for (spot, _, _) in &MULTI_SPOTS {
        for uri in ["slate/index.m3u8", "/live/demo/slate/index.m3u8"] {
            multi(spot, uri, &[]).unwrap_or_else(|e| panic!("{spot}: {uri}: {e}"));
        }
    }
}

#[test]
fn asset_lists_and_ad_assets_may_use_listed_hosts_and_nothing_else_may() {
    let allowed = [
        "https://ads.example.com/list.json",
        "HTTPS://ADS.EXAMPLE.COM/list.json",
        "http://ads.example.com/list.json",
        "https://ads.example.com:443/list.json",
        "//ads.example.com/list.json",
        "https://cdn.ads.example:8443/list.json",
    ];
    for uri in allowed {
        media("list", uri, &hosts()).unwrap_or_else(|e| panic!("list: {uri}: {e}"));
        media("asset", uri, &hosts()).unwrap_or_else(|e| panic!("asset: {uri}: {e}"));
        // Not without the tenant's ad_hosts, and never for media.
        assert!(media("list", uri, &[]).is_err(), "{uri} without ad_hosts");
        for (spot, _, role) in &MEDIA_SPOTS[..8] {
            if *role == Role::Stream {
                assert!(media(spot, uri, &hosts()).is_err(), "{spot}: {uri}");
            }
        }
        for (spot, _, _) in &MULTI_SPOTS {
            assert!(multi(spot, uri, &hosts()).is_err(), "{spot}: {uri}");
        }
    }
    // Ad assets (not asset lists) may come from this origin's /assets/.
    media("asset", "/assets/x/index.m3u8", &[]).unwrap();
    assert!(media("list", "/assets/x/list.json", &[]).is_err());
    assert!(media("seg", "/assets/x/seg.m4s", &[]).is_err());
    assert!(media("asset", "/assets/", &[]).is_err());
}

#[test]
fn attribute_lists_that_could_hide_a_uri_are_refused() {
    let base = fill(MEDIA, &MEDIA_SPOTS, "", "");
    let scope = Scope {
        stream: "demo",
        asset_hosts: &[],
    };
    for tag in [
        // A URI= inside another attribute's value: lenient parsers may find it.
        "#EXT-X-MAP:URI=\"init.mp4\",X-NOTE=\"a,URI=https://evil.example/x\"",
        "#EXT-X-DATERANGE:ID=\"x,URI=\"https://evil.example/x\"\",START-DATE=\"2026-11-25T19:00:00.000Z\"",
        // Spaces around the name and the `=`.
        "#EXT-X-MAP:URI = \"https://evil.example/init.mp4\"",
        "#EXT-X-FOO:X-URI=\"https://evil.example/x\"",
        "#EXT-X-FOO:uri=\"//evil.example/x\"",
        // Unterminated quote.
        "#EXT-X-MAP:URI=\"https://evil.example/init.mp4",
        // Not an attribute list, but a URI= a lenient parser could see.
        "#EXTINF:2.000,title URI=x",
    ] {
        let out = base.replace(
            "#EXT-X-PROGRAM-DATE-TIME",
            &format!("{tag}\n#EXT-X-PROGRAM-DATE-TIME"),
        );
        let r = media_playlist(&base, &out, &scope, "720p");
        assert!(r.is_err(), "{tag:?} accepted");
    }
}

#[test]
fn characters_that_split_lines_differently_are_refused() {
    let base = fill(MEDIA, &MEDIA_SPOTS, "", "");
    let scope = Scope {
        stream: "demo",
        asset_hosts: &[],
    };
    for sep in [
        "\r", "\u{85}", "\u{2028}", "\u{2029}", "\u{0}", "\u{b}", "\u{c}",
    ] {
        let out = base.replace(
            "#EXT-X-PROGRAM-DATE-TIME",
            &format!("#EXT-X-FOO{sep}https://evil.example/seg.m4s\n#EXT-X-PROGRAM-DATE-TIME"),
        );
        let r = media_playlist(&base, &out, &scope, "720p");
        assert!(matches!(r, Err(Rejection::Syntax(_))), "{sep:?}: {r:?}");
    }
    // CRLF line ends are fine.
    let crlf = base.replace('\n', "\r\n");
    media_playlist(&base, &crlf, &scope, "720p").unwrap();
}

#[test]
fn dropped_media_and_header_changes_fail() {
    let input = fill(MEDIA, &MEDIA_SPOTS, "", "");
    let scope = Scope {
        stream: "demo",
        asset_hosts: &[],
    };
    let dropped = input.replace("seg100.m4s\n", "");
    assert!(matches!(
        media_playlist(&input, &dropped, &scope, "720p"),
        Err(Rejection::Media(_))
    ));
    let added = input.replace("seg100.m4s\n", "seg100.m4s\n#EXTINF:2.000,\nseg100.m4s\n");
    assert!(media_playlist(&input, &added, &scope, "720p").is_err());
    let no_hint = input.replace("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part401.m4s\"\n", "");
    assert!(media_playlist(&input, &no_hint, &scope, "720p").is_err());
    assert!(media_playlist(&input, "this is not a playlist", &scope, "720p").is_err());
    let seq = input.replace("SEQUENCE:100", "SEQUENCE:99");
    assert!(media_playlist(&input, &seq, &scope, "720p").is_err());
    let ended = format!("{input}#EXT-X-ENDLIST\n");
    assert!(media_playlist(&input, &ended, &scope, "720p").is_err());
    let multi_in = fill(MULTI, &MULTI_SPOTS, "", "");
    assert!(media_playlist(&input, &multi_in, &scope, "720p").is_err());
    assert!(multivariant_playlist(&multi_in, &input, &scope).is_err());
    assert!(multivariant_playlist(&multi_in, "#EXTM3U\n", &scope).is_err());
    // Unchanged passes.
    media_playlist(&input, &input, &scope, "720p").unwrap();
    multivariant_playlist(&multi_in, &multi_in, &scope).unwrap();
}

#[test]
fn uri_attribute_skips_client_attributes() {
    assert_eq!(
        uri_attribute("X-URI=\"x\",URI=\"part1.m4s\""),
        Some("part1.m4s")
    );
    assert_eq!(uri_attribute("DURATION=1"), None);
}

#[test]
fn asset_list_uris_are_contained() {
    let hosts = hosts();
    let scope = Scope {
        stream: "demo",
        asset_hosts: &hosts,
    };
    let list = |uri: &str| format!(r#"{{"ASSETS":[{{"URI":{uri:?},"DURATION":10.0}}]}}"#);
    for good in [
        "/assets/ad/index.m3u8",
        "https://ads.example.com/ad/index.m3u8",
        "b.m3u8",
        "/live/demo/slate/index.m3u8",
    ] {
        asset_list(&list(good), &scope, 7).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ESCAPES {
        assert!(
            asset_list(&list(bad), &scope, 7).is_err(),
            "{bad:?} accepted in an asset list"
        );
    }
    assert!(asset_list("not json", &scope, 7).is_err());
    assert!(asset_list("{}", &scope, 7).is_err());
    assert!(asset_list(r#"{"ASSETS":[{"DURATION":1}]}"#, &scope, 7).is_err());
    asset_list(r#"{"ASSETS":[]}"#, &scope, 7).unwrap();
}

#[test]
fn ad_hosts_are_checked_and_canonical() {
    assert_eq!(asset_host("ads.example.com").unwrap(), "ads.example.com");
    assert_eq!(asset_host("ads.example:8443").unwrap(), "ads.example:8443");
    for bad in [
        "",
        "ADS.example.com",
        "ads.example.com:443",
        "https://ads.example.com",
        "ads.example.com/x",
        "*.example.com",
        "user@ads.example.com",
        "b\u{fc}cher.example",
        "ads example",
    ] {
        assert!(asset_host(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn large_adversarial_outputs_are_handled_in_one_pass() {
    // Shapes that a naive scanner would handle in quadratic time: a line of 250,000 `URI=`
    // sites, a megabyte of spaces before an `=`, 100,000 quoted `URI=` values, and a
    // megabyte of segments. These take milliseconds; a quadratic validator would take
    // minutes.
    let input = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n";
    let scope = Scope {
        stream: "demo",
        asset_hosts: &[],
    };
    for tail in [
        format!("#EXT-X-FOO:{}\n", "URI=".repeat(250_000)),
        format!("#EXT-X-FOO:{}URI=//evil.example/x\n", " ".repeat(1 << 20)),
        format!("#EXT-X-FOO:{}\n", "X-A=\"URI=\",".repeat(100_000)),
        format!("#EXT-X-FOO:{}\n", "URI = ".repeat(200_000)),
    ] {
        let out = format!("{input}{tail}");
        assert!(media_playlist(input, &out, &scope, "720p").is_err());
    }
    let spaced = format!("{input}#EXT-X-FOO:{}URI=x\n", " ".repeat(1 << 20));
    media_playlist(input, &spaced, &scope, "720p").unwrap();
    let big = format!("{input}{}", "#EXTINF:2.000,\nseg.m4s\n".repeat(40_000));
    media_playlist(&big, &big, &scope, "720p").unwrap();
    let many_uris = format!("{input}#EXT-X-FOO:{}\n", "X-URI=\"x\",".repeat(100_000));
    media_playlist(input, &many_uris, &scope, "720p").unwrap();
}
