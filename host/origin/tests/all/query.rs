//! Malformed LL-HLS directives reach the client as 400 with a reason.

use weir_media::StreamRegistry;

use crate::support::{get, origin, snapshot, Live};

#[tokio::test]
async fn malformed_directives_are_400_with_a_clear_message() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 3, 1));
    let origin = origin(registry);
    let cases = [
        (
            "_HLS_msn=abc",
            "_HLS_msn must be a non-negative decimal integer",
        ),
        (
            "_HLS_msn=-1",
            "_HLS_msn must be a non-negative decimal integer",
        ),
        (
            "_HLS_msn=99999999999999999999999",
            "_HLS_msn is out of range",
        ),
        ("_HLS_msn=", "_HLS_msn is empty"),
        ("_HLS_part=1", "_HLS_part requires _HLS_msn"),
        ("_HLS_msn=3&_HLS_msn=3", "_HLS_msn is given more than once"),
        (
            "_HLS_msn=3&_HLS_part=x",
            "_HLS_part must be a non-negative decimal integer",
        ),
        ("_HLS_skip=no", "_HLS_skip must be YES or v2"),
    ];
    for (query, message) in cases {
        let got = get(&origin, &format!("/live/a/720p/index.m3u8?{query}")).await;
        assert_eq!(got.status, 400, "{query}");
        assert_eq!(got.text(), format!("bad request: {message}\n"), "{query}");
        assert_eq!(got.header("cache-control"), "no-store");
        assert_eq!(got.header("access-control-allow-origin"), "*");
    }
}

#[tokio::test]
async fn unrelated_query_parameters_are_ignored() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 3, 1));
    let origin = origin(registry);
    let got = get(&origin, "/live/a/720p/index.m3u8?token=abc&_HLS_msn=2").await;
    assert_eq!(got.status, 200);
}
