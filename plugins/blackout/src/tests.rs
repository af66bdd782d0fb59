use std::collections::BTreeMap;

use weir_guest::CueKind;

use super::*;

const FULL: &str = include_str!("../../../guest-sdk/tests/data/media_full.m3u8");
const DELTA: &str = include_str!("../../../guest-sdk/tests/data/media_delta.m3u8");
/// 2026-11-25T16:00:00.000Z: seg40's date in the golden files.
const T0: u64 = 1_795_622_400_000;

fn ctx(country: Option<&str>) -> RequestContext {
    RequestContext {
        tenant: "default".into(),
        stream: "demo".into(),
        rendition: "720p".into(),
        country: country.map(str::to_string),
        headers: vec![],
        query: vec![],
        now_ms: T0,
    }
}

fn cfg(windows: &[(u64, u64)], slate: bool) -> Config {
    Config {
        countries: ["US".to_string(), "CA".to_string()].into(),
        windows: windows.to_vec(),
        cue_triggered: false,
        slate: slate.then(|| Slate {
            rendition: "slate".into(),
            init: "init.mp4".into(),
        }),
    }
}

fn run(config: &Config, country: Option<&str>, text: &str) -> String {
    transform(config, &ctx(country), &[], text.to_string()).unwrap()
}

#[test]
fn config_parsing_and_errors() {
    let c = Config::parse(
        r#"{"countries":["us","CA"],"windows":[{"start":"2026-11-25T16:00:04Z","end":1795622407000}],"slate_rendition":"slate"}"#,
    )
    .unwrap();
    assert_eq!(c.countries.iter().collect::<Vec<_>>(), ["CA", "US"]);
    assert_eq!(c.windows, [(T0 + 4000, T0 + 7000)]);
    assert_eq!(c.slate.as_ref().unwrap().init, "init.mp4");
    assert!(
        Config::parse(r#"{"countries":["US"],"cue_triggered":true}"#)
            .unwrap()
            .slate
            .is_none()
    );

    for (config, message) in [
        ("", "missing field `countries`"),
        (
            r#"{"countries":[],"cue_triggered":true}"#,
            "countries: list at least one",
        ),
        (
            r#"{"countries":["USA"],"cue_triggered":true}"#,
            "countries[0]: \"USA\"",
        ),
        (r#"{"countries":["US"]}"#, "nothing to black out"),
        (
            r#"{"countries":["US"],"windows":[{"start":5,"end":5}]}"#,
            "windows[0]: end must be after start",
        ),
        (
            r#"{"countries":["US"],"windows":[{"start":"yesterday","end":5}]}"#,
            "`yesterday` is not an ISO 8601",
        ),
        (
            r#"{"countries":["US"],"windows":[{"start":1,"end":5,"x":1}]}"#,
            "unknown field `x`",
        ),
        (
            r#"{"countries":["US"],"cue_triggered":true,"slate_rendition":"../x"}"#,
            "slate_rendition",
        ),
        (
            r#"{"countries":["US"],"cue_triggered":true,"slate_init":"i.mp4"}"#,
            "only with slate_rendition",
        ),
        (
            r#"{"countries":["US"],"cue_triggerd":true}"#,
            "unknown field `cue_triggerd`",
        ),
    ] {
        let e = Config::parse(config).unwrap_err();
        assert!(
            e.starts_with("config: ") && e.contains(message),
            "{config}: {e}"
        );
    }
}

#[test]
fn declares_country_and_last_good() {
    let info = Blackout::init(r#"{"countries":["US"],"cue_triggered":true}"#.into()).unwrap();
    assert_eq!(info.varies_on, [VariantAttribute::Country]);
    assert_eq!(info.failure_policy, FailurePolicy::LastGood);
    assert!(Blackout::init("{}".into()).is_err());
}

#[test]
fn viewers_outside_the_set_get_the_input_byte_for_byte() {
    let c = cfg(&[(T0, T0 + 60_000)], true);
    for country in [None, Some("DE"), Some("")] {
        assert_eq!(run(&c, country, FULL), FULL);
    }
    // Lower-case country codes still match.
    assert_ne!(run(&c, Some("us"), FULL), FULL);
    // The slate rendition itself is never rewritten.
    let mut slate_ctx = ctx(Some("US"));
    slate_ctx.rendition = "slate".into();
    assert_eq!(transform(&c, &slate_ctx, &[], FULL.into()).unwrap(), FULL);
    // No window near the listed segments: unchanged too.
    let later = cfg(&[(T0 + 3_600_000, T0 + 7_200_000)], true);
    assert_eq!(run(&later, Some("US"), FULL), FULL);
}

#[test]
fn slate_swaps_uris_maps_and_adds_discontinuities() {
    // 16:00:04.5 to 16:00:07: seg42 (4-6) and seg43 (6-8) overlap it.
    let c = cfg(&[(T0 + 4500, T0 + 7000)], true);
    let out = run(&c, Some("US"), FULL);
    assert!(out.contains("seg41.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"../slate/init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:04.000Z\n#EXTINF:2.00000,\n../slate/seg42.m4s\n"), "{out}");
    assert!(out.contains("#EXTINF:2.00000,\n../slate/seg43.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:08.000Z\n"), "{out}");
    assert!(out.contains("\nseg41.m4s\n") && out.contains("\nseg44.m4s\n"));
    assert!(!out.contains("EXT-X-DISCONTINUITY-SEQUENCE"));
    let parsed = MediaPlaylist::parse(&out).unwrap();
    let cc: Vec<u64> = parsed
        .segments()
        .iter()
        .map(|s| s.discontinuity_sequence())
        .collect();
    assert_eq!(cc, [0, 0, 1, 1, 2, 2, 2, 2]);
}

#[test]
fn parts_and_the_preload_hint_at_the_live_edge() {
    // From 16:00:13 on: seg46 (12-14) and the segment in progress (14-) are slate.
    let c = cfg(&[(T0 + 13_000, T0 + 60_000)], true);
    let out = run(&c, Some("CA"), FULL);
    for uri in [
        "../slate/part1024.m4s",
        "../slate/part1027.m4s",
        "../slate/seg46.m4s",
        "../slate/part1028.m4s",
    ] {
        assert!(out.contains(uri), "{uri}: {out}");
    }
    assert!(
        out.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"../slate/part1029.m4s\""),
        "{out}"
    );
    assert!(out.contains("URI=\"part1023.m4s\""));
    // Rendition reports stay as they are.
    assert!(
        out.contains("#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=47,LAST-PART=0")
    );

    // A window that starts with the next segment: only the hint changes... once the
    // segment in progress is complete. Here the hinted part belongs to seg47 (live).
    let c = cfg(&[(T0 + 16_500, T0 + 60_000)], true);
    assert_eq!(run(&c, Some("US"), FULL), FULL);
}

#[test]
fn gap_mode_marks_without_discontinuities() {
    let c = cfg(&[(T0 + 9000, T0 + 10_500)], false);
    let out = run(&c, Some("US"), FULL);
    // seg44 (8-10) and seg45 (10-12) overlap.
    assert!(
        out.contains("URI=\"part1019.m4s\",GAP=YES\n#EXT-X-GAP\n#EXTINF:2.00000,\nseg44.m4s"),
        "{out}"
    );
    assert!(
        out.contains("URI=\"part1023.m4s\",GAP=YES\n#EXT-X-GAP\n#EXTINF:2.00000,\nseg45.m4s"),
        "{out}"
    );
    assert_eq!(out.matches("#EXT-X-GAP").count(), 2);
    assert_eq!(out.matches("GAP=YES").count(), 8);
    assert!(!out.contains("DISCONTINUITY") && !out.contains("../slate"));
}

#[test]
fn cue_triggered_breaks() {
    let mut c = cfg(&[], true);
    c.cue_triggered = true;
    let out_cue = CueEvent {
        id: 7,
        kind: CueKind::SpliceInsert,
        out_of_network: true,
        start_ms: T0 + 6000,
        duration_ms: Some(30_000),
        end_ms: Some(T0 + 8000),
        segmentation_type: None,
        section: vec![],
    };
    let in_cue = CueEvent {
        out_of_network: false,
        start_ms: T0 + 8000,
        end_ms: None,
        duration_ms: None,
        ..out_cue.clone()
    };
    let out = transform(
        &c,
        &ctx(Some("US")),
        &[out_cue.clone(), in_cue],
        FULL.into(),
    )
    .unwrap();
    // The IN ended it at 16:00:08: only seg43 (6-8) is slate (seg42 starts exactly one
    // target duration before the break, so it ends where the break starts).
    assert!(
        out.contains("\n../slate/seg43.m4s\n")
            && out.contains("\nseg42.m4s\n")
            && out.contains("\nseg44.m4s\n"),
        "{out}"
    );
    // Without its IN yet, the declared 30 s apply.
    let mut open = out_cue;
    open.end_ms = None;
    let out = transform(&c, &ctx(Some("US")), &[open], FULL.into()).unwrap();
    assert!(
        out.contains("../slate/seg46.m4s") && out.contains("../slate/part1028.m4s"),
        "{out}"
    );
    // Time-signal breaks count too; other commands do not.
    let mut null = CueEvent {
        id: 1,
        kind: CueKind::SpliceNull,
        out_of_network: false,
        start_ms: T0,
        duration_ms: None,
        end_ms: None,
        segmentation_type: None,
        section: vec![],
    };
    assert_eq!(
        transform(&c, &ctx(Some("US")), &[null.clone()], FULL.into()).unwrap(),
        FULL
    );
    null.kind = CueKind::TimeSignal;
    null.segmentation_type = Some(0x34);
    null.duration_ms = Some(4000);
    assert_ne!(
        transform(&c, &ctx(Some("US")), &[null], FULL.into()).unwrap(),
        FULL
    );
}

/// A live playlist as weir's packager writes it, 2 s segments with four 500 ms parts,
/// `count` complete segments from `first`, then a segment in progress with one part.
/// With `skip`, a delta update that leaves out the first `skip` segments.
fn live(first: u64, count: u64, skip: u64) -> String {
    let mut t = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000\n#EXT-X-PART-INF:PART-TARGET=0.50000\n");
    t += &format!("#EXT-X-MEDIA-SEQUENCE:{first}\n");
    if skip > 0 {
        t += &format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skip}\n");
    }
    t += "#EXT-X-MAP:URI=\"init0.mp4\"\n";
    for msn in first + skip..=first + count {
        t += &format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            time::format_iso8601(T0 + msn * 2000)
        );
        let parts = if msn + 3 >= first + count {
            if msn == first + count {
                1
            } else {
                4
            }
        } else {
            0
        };
        for p in 0..parts {
            t += &format!(
                "#EXT-X-PART:DURATION=0.50000,URI=\"part{}.m4s\"{}\n",
                msn * 4 + p,
                if p == 0 { ",INDEPENDENT=YES" } else { "" }
            );
        }
        if msn < first + count {
            t += &format!("#EXTINF:2.00000,\nseg{msn}.m4s\n");
        }
    }
    t += &format!(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{}.m4s\"\n",
        (first + count) * 4 + 1
    );
    t
}

#[test]
fn uris_and_discontinuity_numbers_stay_put_as_the_window_slides() {
    // Two windows; the playlist lists 8 segments and slides past both of them.
    let c = cfg(
        &[(T0 + 21_000, T0 + 29_500), (T0 + 40_000, T0 + 41_000)],
        true,
    );
    let mut seen: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    let mut last_dseq = 0;
    for first in 0..40 {
        for skip in [0, 2] {
            let out = run(&c, Some("US"), &live(first, 8, skip));
            let p = MediaPlaylist::parse(&out).unwrap();
            if skip == 0 {
                assert!(
                    p.discontinuity_sequence() >= last_dseq,
                    "first {first}: {out}"
                );
                last_dseq = p.discontinuity_sequence();
            }
            for s in p.segments().iter().filter(|s| !s.is_partial()) {
                let now = (s.uri().unwrap().to_string(), s.discontinuity_sequence());
                let before = seen.entry(s.msn()).or_insert_with(|| now.clone());
                if skip == 0 {
                    assert_eq!(*before, now, "msn {} (first {first}):\n{out}", s.msn());
                } else {
                    // A delta update estimates the skipped segments' dates; URIs never move.
                    assert_eq!(
                        before.0,
                        now.0,
                        "msn {} (first {first}, delta):\n{out}",
                        s.msn()
                    );
                }
            }
        }
    }
    // seg10 (20-22 s) through seg14 (28-30) are slate; seg20 (40-42) too.
    let slate: Vec<u64> = seen
        .iter()
        .filter(|(_, (u, _))| u.starts_with("../slate/"))
        .map(|(m, _)| *m)
        .collect();
    assert_eq!(slate, [10, 11, 12, 13, 14, 20]);
    assert_eq!(seen[&9].1, 0);
    assert_eq!(seen[&10].1, 1);
    assert_eq!(seen[&15].1, 2);
    assert_eq!(seen[&20].1, 3);
    assert_eq!(seen[&21].1, 4);
    assert_eq!(last_dseq, 4);
}

#[test]
fn delta_updates() {
    // The window covers seg42..: the delta update lists seg41.. after EXT-X-SKIP.
    let c = cfg(&[(T0 + 5000, T0 + 60_000)], true);
    let out = run(&c, Some("US"), DELTA);
    assert!(
        out.contains("../slate/seg42.m4s") && out.contains("\nseg41.m4s\n"),
        "{out}"
    );
    assert!(
        out.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-MAP:URI=\"init0.mp4\""),
        "{out}"
    );
    let p = MediaPlaylist::parse(&out).unwrap();
    assert_eq!(p.segments()[1].map_uri(), Some("../slate/init.mp4"));
    assert!(p.segments()[1].is_discontinuity());
}

#[test]
fn slate_uris() {
    assert_eq!(slate_uri("slate", "seg41.m4s"), "../slate/seg41.m4s");
    assert_eq!(
        slate_uri("slate", "../slate/seg41.m4s"),
        "../slate/seg41.m4s"
    );
    assert_eq!(
        slate_uri("slate", "a/b/part9.m4s?x=1/2"),
        "../slate/part9.m4s?x=1/2"
    );
}

#[test]
fn mangled_playlists_never_panic() {
    use weir_guest::testing::{mangled, splice_out, MEDIA_DELTA, MEDIA_FULL};
    let cues = [
        splice_out(1, T0 + 3000, None, None),
        splice_out(2, u64::MAX - 1, Some(u64::MAX), None),
    ];
    for slate in [true, false] {
        let mut c = cfg(
            &[(T0 + 4500, T0 + 9000), (0, 1), (u64::MAX - 5, u64::MAX)],
            slate,
        );
        c.cue_triggered = true;
        for text in mangled(FULL, 3, 300)
            .into_iter()
            .chain(mangled(DELTA, 4, 300))
        {
            let _ = transform(&c, &ctx(Some("US")), &cues, text);
        }
        assert_eq!(MEDIA_FULL, FULL);
        assert_eq!(MEDIA_DELTA, DELTA);
    }
}

#[test]
fn joining_during_a_window_gets_the_slate_playlist() {
    let mv = weir_guest::testing::MULTIVARIANT;
    let config = cfg(&[(T0 - 1_000, T0 + 60_000)], true);
    let mut c = ctx(Some("US"));
    c.rendition = String::new();
    let out = redirect_to_slate(&config, &c, &[], mv.to_string()).unwrap();
    assert_ne!(out, mv);
    let parsed = weir_guest::MultivariantPlaylist::parse(&out).unwrap();
    assert!(parsed.variants().iter().all(|v| v.uri == "slate/index.m3u8"), "{out}");
    // Another country, no window now, or no slate: untouched.
    c.country = Some("DE".into());
    assert_eq!(redirect_to_slate(&config, &c, &[], mv.to_string()).unwrap(), mv);
    c.country = Some("US".into());
    c.now_ms = T0 + 120_000;
    assert_eq!(redirect_to_slate(&config, &c, &[], mv.to_string()).unwrap(), mv);
    c.now_ms = T0;
    let no_slate = cfg(&[(T0 - 1_000, T0 + 60_000)], false);
    assert_eq!(redirect_to_slate(&no_slate, &c, &[], mv.to_string()).unwrap(), mv);
}

#[test]
fn per_rung_slates_on_a_transcoded_stream() {
    let mut config = cfg(&[(T0 + 4500, T0 + 7000)], true);
    config.slate = Some(Slate {
        rendition: "slate-{rendition}".into(),
        init: "init0.mp4".into(),
    });
    // The 720p viewer is sent to slate-720p, map and all.
    let out = run(&config, Some("US"), FULL);
    assert!(out.contains("\n../slate-720p/seg42.m4s\n"), "{out}");
    assert!(out.contains("#EXT-X-MAP:URI=\"../slate-720p/init0.mp4\""), "{out}");
    // Slate renditions themselves are left alone; other names are not slates.
    let s = config.slate.as_ref().unwrap();
    assert!(s.is_slate("slate-720p") && !s.is_slate("slate-") && !s.is_slate("720p"));
    let mut c = ctx(Some("US"));
    c.rendition = "slate-720p".into();
    assert!(!applies_to(&config, &c));
    // Joiners: every variant to its own rung's slate.
    let mv = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\n720p/index.m3u8\n\
              #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n";
    c.rendition = String::new();
    c.now_ms = T0 + 5000;
    let out = redirect_to_slate(&config, &c, &[], mv.to_string()).unwrap();
    assert!(out.contains("\nslate-720p/index.m3u8\n") && out.contains("\nslate-360p/index.m3u8\n"), "{out}");
    // The template is checked like a name.
    assert!(Config::parse(r#"{"countries":["US"],"cue_triggered":true,"slate_rendition":"../{rendition}"}"#).is_err());
    assert!(Config::parse(r#"{"countries":["US"],"cue_triggered":true,"slate_rendition":"slate-{rendition}"}"#).is_ok());
}
