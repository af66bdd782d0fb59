//! Hot reload: the chain is swapped while requests are being answered; every answer is a
//! complete output of one chain version or the other, never a failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use weir_plugin_host::PlaylistRequest;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_swaps_under_load_fail_nothing() {
    let host = host();
    let configs = [r#"{"dialect":"daterange"}"#, r#"{"dialect":"both"}"#];
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..8u64 {
        let (host, stop, answered) = (host.clone(), stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let headers = HeaderMap::new();
            let mut msn = 1000 + c * 100_000;
            while !stop.load(Ordering::Relaxed) {
                let playlist = media_playlist(msn % 50_000 + 100, 4);
                let req = PlaylistRequest {
                    stream: "demo",
                    rendition: "src",
                    headers: &headers,
                    query: None,
                    cues: &[],
                };
                let out = host
                    .media_playlist(&req, Bytes::from(playlist.clone()))
                    .await;
                let out = String::from_utf8(out.body.to_vec()).unwrap();
                // Whatever version answered, the media is all there and in order.
                let scope = weir_plugin_host::validate::Scope {
                    stream: "demo",
                    asset_hosts: &[],
                };
                weir_plugin_host::validate::media_playlist(&playlist, &out, &scope, "src")
                    .unwrap_or_else(|e| panic!("client {c}: invalid answer: {e}\n{out}"));
                answered.fetch_add(1, Ordering::Relaxed);
                msn += 1;
                // A new playlist version per part, as a live stream publishes them.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }));
    }
    host.push("acme", spec("scte35", "scte35", configs[0]))
        .await
        .unwrap();
    for i in 0..100 {
        host.push("acme", spec("scte35", "scte35", configs[(i + 1) % 2]))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let n = answered.load(Ordering::Relaxed);
    eprintln!("{n} playlists answered across 100 swaps");
    assert!(n > 200, "the clients barely ran: {n}");
    assert_eq!(host.metrics().failures_of("acme", "scte35"), 0);
    let mut text = String::new();
    host.metrics().render(&mut text);
    assert!(
        text.contains(
            "weir_plugin_reloads_total{tenant=\"acme\",plugin=\"scte35\",result=\"ok\"} 101"
        ),
        "{text}"
    );
}
