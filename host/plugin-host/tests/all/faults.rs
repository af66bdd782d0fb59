//! Fault isolation: plugins that trap, loop, exhaust memory, return garbage, drop media or
//! panic in `init`. Each failure is contained, counted by kind, and answered with the
//! failure policy; a good plugin later in the chain still runs.

use http::HeaderMap;

use crate::support::*;

fn metric_line(host: &weir_plugin_host::Plugins, needle: &str) -> bool {
    let mut text = String::new();
    host.metrics().render(&mut text);
    text.lines().any(|l| l.starts_with(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_is_contained_counted_and_passed_through() {
    let host = host();
    let headers = HeaderMap::new();
    for (i, (plugin, kind)) in [
        ("fault-trap", "trap"),
        ("fault-loop", "timeout"),
        ("fault-oom", "memory"),
        ("fault-garbage", "invalid"),
        ("fault-drop", "invalid"),
    ]
    .into_iter()
    .enumerate()
    {
        host.push("acme", spec(plugin, plugin, "")).await.unwrap();
        // A fresh playlist version per plugin, so no cached result answers.
        let playlist = media_playlist(100 + i as u64 * 10, 4);
        let out = transform(&host, &playlist, &headers).await;
        assert_eq!(out, playlist, "{plugin}: the input must pass through");
        // The run may still be going when the deadline answers; wait for its count.
        let needle = format!(
            "weir_plugin_failures_total{{tenant=\"acme\",plugin=\"{plugin}\",kind=\"{kind}\"}}"
        );
        let mut counted = false;
        for _ in 0..100 {
            if metric_line(&host, &needle) {
                counted = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mut text = String::new();
        host.metrics().render(&mut text);
        assert!(counted, "{plugin}: no {kind} failure counted:\n{text}");
        // Later requests for the same version get the (passed-through) result too.
        assert_eq!(transform(&host, &playlist, &headers).await, playlist);
        host.remove("acme", plugin).await.unwrap();
    }
    assert!(metric_line(
        &host,
        "weir_plugin_fallbacks_total{tenant=\"acme\",plugin=\"fault-trap\",reason=\"pass-through\"}"
    ));
}

/// The epoch ticker parks when no call has run for 100 ticks; the next call must wake it,
/// or a looping plugin would hold its worker for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_is_cut_off_after_the_host_was_idle() {
    let host = host();
    let headers = HeaderMap::new();
    host.push("acme", spec("fault-loop", "fault-loop", ""))
        .await
        .unwrap();
    for round in 0..2u64 {
        // Idle for 300 ticks of 1 ms: the ticker is parked.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let playlist = media_playlist(200 + round * 10, 4);
        assert_eq!(transform(&host, &playlist, &headers).await, playlist);
        let mut timeouts = 0;
        for _ in 0..100 {
            timeouts = host.metrics().failures_of("acme", "fault-loop");
            if timeouts > round {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            timeouts,
            round + 1,
            "round {round}: the loop was not cut off"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_init_rejects_the_push_and_keeps_the_chain() {
    let host = host();
    host.push("acme", spec("scte35", "scte35", ""))
        .await
        .unwrap();
    let err = host
        .push("acme", spec("fault-init-panic", "fault-init-panic", ""))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            weir_plugin_host::PushError::InitFailed {
                failure: weir_plugin_host::Failure::Trap(_),
                ..
            }
        ),
        "{err}"
    );
    let names: Vec<String> = host
        .list("acme")
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["scte35"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_does_not_stop_the_rest_of_the_chain() {
    let host = host_for_heavy_guests();
    host.push("acme", spec("fault-trap", "fault-trap", ""))
        .await
        .unwrap();
    host.push(
        "acme",
        spec(
            "program-info",
            "program-info",
            r#"{"title":"After the trap"}"#,
        ),
    )
    .await
    .unwrap();
    let playlist = media_playlist(100, 4);
    let out = settled(&host, &playlist).await;
    assert!(out.contains("X-TITLE=\"After the trap\""), "{out}");
    assert!(host.metrics().failures_of("acme", "fault-trap") >= 1);
}
