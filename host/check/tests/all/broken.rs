//! Each broken server makes `check` fail naming the rule it breaks; the unbroken one passes.

use std::time::Duration;

use weir_check::{rule, Report, Settings, Severity};

use crate::live::{start, start_tls, Fault};

async fn check(fault: Fault, secs: u64) -> Report {
    let addr = start(fault).await;
    // Let the window fill a little, as a live stream would be when a player joins.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut s = Settings::new(format!("http://{addr}/live/index.m3u8"));
    s.duration = Duration::from_secs(secs);
    let report = weir_check::check(&s).await.unwrap();
    eprintln!("{fault:?}:\n{}", report.to_text());
    report
}

/// The report fails, with an error naming `rule`.
fn fails_on(report: &Report, rule: &str) {
    assert!(!report.passed(), "{}", report.to_text());
    assert!(
        report
            .rule(rule)
            .iter()
            .any(|f| f.severity == Severity::Error),
        "no error for {rule}:\n{}",
        report.to_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unbroken_server_passes() {
    let r = check(Fault::None, 5).await;
    assert!(r.passed(), "{}", r.to_text());
    assert!(r.findings.is_empty(), "{}", r.to_text());
    let s = &r.renditions[0];
    assert!(s.hinted_parts >= 10, "{}", r.to_text());
    assert!(s.past_end_requests >= 1, "{}", r.to_text());
    assert!(s.removed_segments_fetched >= 2, "{}", r.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_hold_back_below_twice_the_part_target() {
    let r = check(Fault::HoldBack, 2).await;
    fails_on(&r, rule::PART_HOLD_BACK);
    assert!(r.rule(rule::PART_HOLD_BACK)[0]
        .message
        .contains("< 2 x PART-TARGET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_never_listed() {
    fails_on(&check(Fault::MissingPart, 4).await, rule::PARTS_LISTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_sequence_going_backwards() {
    let r = check(Fault::MsnBackwards, 4).await;
    fails_on(&r, rule::PLAYLIST_CHANGES);
    assert!(
        r.rule(rule::PLAYLIST_CHANGES)
            .iter()
            .any(|f| f.message.contains("went backwards")),
        "{}",
        r.to_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hint_that_never_arrives() {
    let r = check(Fault::HintNeverArrives, 5).await;
    fails_on(&r, rule::HINT_AVAILABLE);
    fails_on(&r, rule::HINT_NEXT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_gone_as_soon_as_it_leaves_the_playlist() {
    fails_on(&check(Fault::SegmentGone, 4).await, rule::REMOVED_AVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_trickled_as_it_is_produced() {
    let r = check(Fault::Trickle, 3).await;
    fails_on(&r, rule::PART_WHOLE);
    assert!(
        r.renditions[0].hinted_spread_max_ms > 150.0,
        "{}",
        r.to_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_past_the_segment_end_answered_at_once() {
    fails_on(&check(Fault::PastEndAtOnce, 4).await, rule::PART_PAST_END);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_on_a_part_without_a_sync_sample() {
    let r = check(Fault::WrongIndependent, 3).await;
    fails_on(&r, rule::INDEPENDENT);
    assert!(r.rule(rule::INDEPENDENT)[0]
        .message
        .contains("holds no sync video sample"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reloads_answered_late() {
    let r = check(Fault::SlowBlocking, 3).await;
    fails_on(&r, rule::BLOCKING);
    fails_on(&r, rule::BLOCKING_PROMPT);
}

/// A server MAY withdraw a hint when its segmentation changes, answering 404: not a
/// finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_hint_answered_404_passes() {
    let r = check(Fault::WithdrawnHint, 4).await;
    assert!(r.passed(), "{}", r.to_text());
    assert!(r.findings.is_empty(), "{}", r.to_text());
}

async fn check_tls(alpn: &[&[u8]]) -> Report {
    let addr = start_tls(Fault::None, alpn).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut s = Settings::new(format!("https://{addr}/live/index.m3u8"));
    s.duration = Duration::from_secs(2);
    s.insecure = true;
    let report = weir_check::check(&s).await.unwrap();
    eprintln!("{alpn:?}:\n{}", report.to_text());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_h2_passes() {
    let r = check_tls(&[b"h2", b"http/1.1"]).await;
    assert!(r.passed(), "{}", r.to_text());
    assert!(r.renditions[0].hinted_parts >= 4, "{}", r.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_h2_fails() {
    fails_on(&check_tls(&[b"http/1.1"]).await, rule::HTTP2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_without_insecure() {
    let addr = start_tls(Fault::None, &[b"h2"]).await;
    let mut s = Settings::new(format!("https://{addr}/live/index.m3u8"));
    s.duration = Duration::from_secs(1);
    let err = weir_check::check(&s).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}
