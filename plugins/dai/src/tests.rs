use weir_guest::CueKind;

use super::*;

const FULL: &str = include_str!("../../../guest-sdk/tests/data/media_full.m3u8");
/// 2026-11-25T16:00:00.000Z: seg40's date in the golden files.
const T0: u64 = 1_795_622_400_000;

const CONFIG: &str = r#"{
    "ads": {
        "default": [{"uri": "/assets/ad/index.m3u8", "duration": 10.0}],
        "by_country": {"us": [{"uri": "/assets/us1/index.m3u8", "duration": 15.0}, {"uri": "/assets/us2/index.m3u8", "duration": 15}]},
        "by_query": {"param": "ad", "values": {"x": [{"uri": "https://ads.example/x.m3u8", "duration": 5.5}]}}
    }
}"#;

fn ctx(country: Option<&str>, query: &[(&str, &str)]) -> RequestContext {
    RequestContext {
        tenant: "default".into(),
        stream: "demo".into(),
        rendition: String::new(),
        country: country.map(str::to_string),
        headers: vec![],
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        now_ms: T0,
    }
}

fn out_cue(id: u32, start: u64, planned: Option<u64>, end: Option<u64>) -> CueEvent {
    CueEvent {
        id,
        kind: CueKind::SpliceInsert,
        out_of_network: true,
        start_ms: start,
        duration_ms: planned,
        end_ms: end,
        segmentation_type: None,
        section: vec![0xFC, 0x30],
    }
}

#[test]
fn config_parsing_and_errors() {
    let c = Config::parse(CONFIG).unwrap();
    assert_eq!(c.resume_offset, ResumeOffset::Break);
    assert_eq!(c.restrict, "SKIP,JUMP");
    assert!(c.ads.by_country.contains_key("US"));
    assert_eq!(
        Config::parse(r#"{"ads":{"default":[{"uri":"/a.m3u8","duration":1}]},"resume_offset":0}"#)
            .unwrap()
            .resume_offset,
        ResumeOffset::Secs(0.0)
    );

    for (config, message) in [
        ("", "missing field `ads`"),
        (r#"{"ads":{}}"#, "no ads configured"),
        (
            r#"{"ads":{"default":[{"uri":"","duration":1}]}}"#,
            "ads.default[0].uri",
        ),
        (
            r#"{"ads":{"default":[{"uri":"/a","duration":0}]}}"#,
            "ads.default[0].duration",
        ),
        (
            r#"{"ads":{"by_country":{"USA":[{"uri":"/a","duration":1}]}}}"#,
            "ads.by_country: \"USA\"",
        ),
        (
            r#"{"ads":{"by_query":{"param":"_HLS_primary_id","values":{}}}}"#,
            "ads.by_query.param",
        ),
        (
            r#"{"ads":{"default":[{"uri":"/a","duration":1}]},"restrict":"SKIP,SEEK"}"#,
            "restrict: \"SEEK\"",
        ),
        (
            r#"{"ads":{"default":[{"uri":"/a","duration":1}]},"resume_offset":"end"}"#,
            "\"break\" or a number",
        ),
        (
            r#"{"ads":{"default":[{"uri":"/a","duration":1,"title":"x"}]}}"#,
            "unknown field `title`",
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
fn init_declares_its_query_parameter_and_pass_through() {
    let info = Dai::init(CONFIG.into()).unwrap();
    assert!(matches!(&info.varies_on[..], [VariantAttribute::Query(q)] if q == "ad"));
    let no_query = r#"{"ads":{"default":[{"uri":"/assets/ad/index.m3u8","duration":10.0}]}}"#;
    assert!(Dai::init(no_query.into()).unwrap().varies_on.is_empty());
    assert_eq!(info.failure_policy, FailurePolicy::PassThrough);
}

#[test]
fn an_interstitial_per_break_inside_the_playlist() {
    let c = Config::parse(CONFIG).unwrap();
    let cues = [out_cue(7, T0 + 9000, Some(30_000), None)];
    let out = transform(&c, &cues, FULL.into()).unwrap();
    let tag = "#EXT-X-DATERANGE:ID=\"ad-7\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T16:00:09.000Z\",CUE=\"ONCE\",DURATION=30.000,X-ASSET-LIST=\"../asset-list/7.json\",X-RESUME-OFFSET=30,X-RESTRICT=\"SKIP,JUMP\"";
    assert!(
        out.contains(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:08.000Z\n{tag}\n#EXT-X-PART"
        )),
        "{out}"
    );
    // Every segment keeps its date, and a second run adds nothing.
    assert_eq!(
        out.matches("#EXT-X-PROGRAM-DATE-TIME").count(),
        FULL.matches("#EXT-X-PROGRAM-DATE-TIME").count()
    );
    assert_eq!(transform(&c, &cues, out.clone()).unwrap(), out);
    // The same tag once the IN has arrived: DURATION stays the declared length.
    let closed = [out_cue(7, T0 + 9000, Some(30_000), Some(T0 + 38_000))];
    assert_eq!(transform(&c, &closed, FULL.into()).unwrap(), out);
}

#[test]
fn dates_outside_the_listed_media_wait_or_are_dropped() {
    let c = Config::parse(CONFIG).unwrap();
    for start in [T0 - 1, T0 + 14_500, T0 + 60_000] {
        let cues = [out_cue(1, start, Some(10_000), None)];
        assert_eq!(transform(&c, &cues, FULL.into()).unwrap(), FULL, "{start}");
    }
    // Dated inside the segment in progress: written there, and that segment loses its own
    // date (hls.js), which follows from seg46.
    let out = transform(&c, &[out_cue(2, T0 + 14_100, None, None)], FULL.into()).unwrap();
    assert!(out.contains("seg46.m4s\n#EXT-X-DATERANGE:ID=\"ad-2\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T16:00:14.100Z\",CUE=\"ONCE\",X-ASSET-LIST=\"../asset-list/2.json\",X-RESTRICT=\"SKIP,JUMP\"\n#EXT-X-PART"), "{out}");
}

#[test]
fn cue_once_by_default_none_on_request_nothing_else() {
    let out = |config: &str| {
        let c = Config::parse(config).unwrap();
        transform(&c, &[out_cue(7, T0 + 9000, Some(30_000), None)], FULL.into()).unwrap()
    };
    assert!(out(CONFIG).contains(",CUE=\"ONCE\","));
    let none = CONFIG.replacen('{', "{\"cue\":\"\",", 1);
    assert!(out(&none).contains("ad-7") && !out(&none).contains("CUE="));
    let pre = CONFIG.replacen('{', "{\"cue\":\"PRE\",", 1);
    let err = Config::parse(&pre).unwrap_err();
    assert!(err.contains("config: cue: \"PRE\""), "{err}");
}

#[test]
fn break_length_and_resume_offset_options() {
    let mut c = Config::parse(CONFIG).unwrap();
    // No declared length: the measured one, once known.
    let measured = transform(
        &c,
        &[out_cue(3, T0 + 1000, None, Some(T0 + 13_500))],
        FULL.into(),
    )
    .unwrap();
    assert!(
        measured.contains(
            "DURATION=12.500,X-ASSET-LIST=\"../asset-list/3.json\",X-RESUME-OFFSET=12.5,"
        ),
        "{measured}"
    );
    c.resume_offset = ResumeOffset::Secs(0.0);
    c.restrict = String::new();
    let paused = transform(
        &c,
        &[out_cue(3, T0 + 1000, Some(20_000), None)],
        FULL.into(),
    )
    .unwrap();
    assert!(
        paused
            .contains("DURATION=20.000,X-ASSET-LIST=\"../asset-list/3.json\",X-RESUME-OFFSET=0\n"),
        "{paused}"
    );
}

#[test]
fn time_signal_breaks_and_reused_ids() {
    let c = Config::parse(CONFIG).unwrap();
    let mut ts = out_cue(9, T0 + 2000, Some(4000), None);
    ts.kind = CueKind::TimeSignal;
    ts.out_of_network = false;
    ts.segmentation_type = Some(0x34);
    let mut other = ts.clone();
    other.segmentation_type = Some(0x10);
    other.start_ms = T0 + 3000;
    let again = out_cue(9, T0 + 6000, Some(4000), None);
    let out = transform(&c, &[ts, other, again], FULL.into()).unwrap();
    assert!(out.contains("ID=\"ad-9\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T16:00:02.000Z\""), "{out}");
    assert!(out.contains(&format!("ID=\"ad-9-{}\"", T0 + 6000)), "{out}");
    assert_eq!(out.matches("EXT-X-DATERANGE").count(), 2);
}

#[test]
fn asset_lists_per_viewer() {
    let c = Config::parse(CONFIG).unwrap();
    let json = |ctx| resolve(&c, &ctx, 7).unwrap();
    assert_eq!(
        json(ctx(None, &[])),
        r#"{"ASSETS":[{"URI":"/assets/ad/index.m3u8","DURATION":10.0}]}"#
    );
    assert_eq!(
        json(ctx(Some("DE"), &[])),
        r#"{"ASSETS":[{"URI":"/assets/ad/index.m3u8","DURATION":10.0}]}"#
    );
    assert_eq!(
        json(ctx(Some("US"), &[("_HLS_primary_id", "abc")])),
        r#"{"ASSETS":[{"URI":"/assets/us1/index.m3u8","DURATION":15.0},{"URI":"/assets/us2/index.m3u8","DURATION":15.0}]}"#
    );
    assert_eq!(
        json(ctx(Some("US"), &[("ad", "x")])),
        r#"{"ASSETS":[{"URI":"https://ads.example/x.m3u8","DURATION":5.5}]}"#
    );
    assert_eq!(
        json(ctx(None, &[("ad", "unknown")])),
        r#"{"ASSETS":[{"URI":"/assets/ad/index.m3u8","DURATION":10.0}]}"#
    );
}

#[test]
fn mangled_playlists_never_panic() {
    use weir_guest::testing::{mangled, splice_in, MEDIA_DELTA};
    let c = Config::parse(CONFIG).unwrap();
    let cues = [
        out_cue(1, T0 + 3000, None, Some(T0 + 5000)),
        splice_in(1, T0 + 5000),
        out_cue(2, u64::MAX - 1, Some(u64::MAX), Some(u64::MAX)),
        out_cue(3, T0 + 9000, Some(30_000), Some(T0 + 1000)),
    ];
    for text in mangled(FULL, 5, 300)
        .into_iter()
        .chain(mangled(MEDIA_DELTA, 6, 300))
    {
        let _ = transform(&c, &cues, text);
    }
}
