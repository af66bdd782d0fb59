"""Unit tests of the pure logic: ``python3 -m unittest discover -s tests`` (from program-info/)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from program_info import (  # noqa: E402
    Config,
    PluginError,
    iso_ms,
    parse_config,
    transform_media,
    transform_multivariant,
)

MULTIVARIANT = (
    "#EXTM3U\n"
    "#EXT-X-VERSION:6\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720\n'
    "720p/index.m3u8\n"
)

MEDIA = (
    "#EXTM3U\n"
    "#EXT-X-VERSION:9\n"
    "#EXT-X-TARGETDURATION:2\n"
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000\n"
    "#EXT-X-PART-INF:PART-TARGET=0.50000\n"
    "#EXT-X-MEDIA-SEQUENCE:7\n"
    '#EXT-X-MAP:URI="init0.mp4"\n'
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\n"
    "#EXTINF:2.00000,\n"
    "seg7.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:16.000Z\n"
    '#EXT-X-PART:DURATION=0.50000,URI="seg8.0.m4s",INDEPENDENT=YES\n'
    "#EXTINF:2.00000,\n"
    "seg8.m4s\n"
    '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg9.0.m4s"\n'
)

CFG = Config(title="Evening News")


class ConfigTest(unittest.TestCase):
    def test_minimal(self):
        self.assertEqual(parse_config('{"title": "Evening News"}'), Config("Evening News", "com.weir.program", None))

    def test_full(self):
        c = parse_config('{"title": "Evening News", "class": "tv.example.show", "rating": "TV-PG"}')
        self.assertEqual(c, Config("Evening News", "tv.example.show", "TV-PG"))
        self.assertIsNone(parse_config('{"title": "x", "rating": null}').rating)

    def test_rejected(self):
        cases = {
            "": "a config is required",
            "  ": "a config is required",
            "{": "config is not valid JSON",
            "[]": "config must be a JSON object",
            "{}": 'config "title" is required',
            '{"title": ""}': 'config "title" must not be empty',
            '{"title": 5}': 'config "title" must be a string, got 5',
            '{"title": "The \\"Big\\" Show"}': 'config "title" must not contain a double quote',
            '{"title": "a\\nb"}': 'config "title" must not contain a line feed',
            '{"title": "a\\rb"}': 'config "title" must not contain a carriage return',
            '{"title": "x", "rating": "P\\"G"}': 'config "rating" must not contain a double quote',
            '{"title": "x", "rating": 12}': 'config "rating" must be a string',
            '{"title": "x", "class": "com weir"}': 'config "class" must be a reverse-DNS name',
            '{"title": "x", "class": ""}': 'config "class" must be a reverse-DNS name',
            '{"title": "x", "titel": "y"}': 'unknown config key "titel"',
            '{"title": "' + "x" * 1025 + '"}': 'config "title" is longer than 1024 characters',
        }
        for text, message in cases.items():
            with self.subTest(text=text[:40]):
                with self.assertRaises(PluginError) as cm:
                    parse_config(text)
                self.assertTrue(str(cm.exception).startswith("program-info: "), str(cm.exception))
                self.assertIn(message, str(cm.exception))


class MultivariantTest(unittest.TestCase):
    def test_session_data_after_the_header(self):
        out = transform_multivariant(MULTIVARIANT, CFG)
        self.assertEqual(
            out,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            '#EXT-X-SESSION-DATA:DATA-ID="com.weir.program.title",VALUE="Evening News"\n'
            + MULTIVARIANT.split("#EXT-X-INDEPENDENT-SEGMENTS\n", 1)[1],
        )

    def test_rating_and_class(self):
        out = transform_multivariant(MULTIVARIANT, Config("Evening News", "tv.example", "TV-PG"))
        self.assertIn(
            '#EXT-X-INDEPENDENT-SEGMENTS\n'
            '#EXT-X-SESSION-DATA:DATA-ID="tv.example.title",VALUE="Evening News"\n'
            '#EXT-X-SESSION-DATA:DATA-ID="tv.example.rating",VALUE="TV-PG"\n'
            "#EXT-X-STREAM-INF:",
            out,
        )

    def test_without_independent_segments(self):
        text = MULTIVARIANT.replace("#EXT-X-INDEPENDENT-SEGMENTS\n", "")
        self.assertTrue(
            transform_multivariant(text, CFG).startswith(
                '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-SESSION-DATA:DATA-ID="com.weir.program.title",VALUE="Evening News"\n#EXT-X-STREAM-INF'
            )
        )

    def test_idempotent(self):
        once = transform_multivariant(MULTIVARIANT, CFG)
        self.assertEqual(transform_multivariant(once, CFG), once)

    def test_crlf(self):
        text = MULTIVARIANT.replace("\n", "\r\n")
        out = transform_multivariant(text, CFG)
        self.assertIn('#EXT-X-INDEPENDENT-SEGMENTS\r\n#EXT-X-SESSION-DATA:DATA-ID="com.weir.program.title",VALUE="Evening News"\r\n', out)

    def test_not_a_playlist(self):
        with self.assertRaisesRegex(PluginError, "not an m3u8 playlist"):
            transform_multivariant("<html>", CFG)


class MediaTest(unittest.TestCase):
    def test_daterange_before_the_first_segment(self):
        out = transform_media(MEDIA, CFG)
        tag = '#EXT-X-DATERANGE:ID="program",CLASS="com.weir.program",START-DATE="2026-11-25T16:00:14.000Z",X-TITLE="Evening News"\n'
        self.assertEqual(out, MEDIA.replace('init0.mp4"\n', 'init0.mp4"\n' + tag, 1))

    def test_rating(self):
        out = transform_media(MEDIA, Config("Evening News", "com.weir.program", "TV-PG"))
        self.assertIn(',X-TITLE="Evening News",X-RATING="TV-PG"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\n', out)

    def test_delta_update(self):
        delta = MEDIA.replace('#EXT-X-MAP:URI="init0.mp4"\n', '#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-MAP:URI="init0.mp4"\n').replace(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\n#EXTINF:2.00000,\nseg7.m4s\n", ""
        )
        out = transform_media(delta, CFG)
        self.assertIn(
            '#EXT-X-MAP:URI="init0.mp4"\n#EXT-X-DATERANGE:ID="program",CLASS="com.weir.program",'
            'START-DATE="2026-11-25T16:00:16.000Z",X-TITLE="Evening News"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:16.000Z\n',
            out,
        )

    def test_after_discontinuity_and_map(self):
        text = MEDIA.replace(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\n",
            '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init1.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\n',
        )
        self.assertIn('#EXT-X-MAP:URI="init1.mp4"\n#EXT-X-DATERANGE:ID="program"', transform_media(text, CFG))

    def test_only_lines_added(self):
        out = transform_media(MEDIA, CFG)
        self.assertEqual([l for l in out.split("\n") if not l.startswith("#EXT-X-DATERANGE")], MEDIA.split("\n"))

    def test_first_segment_without_pdt_is_left_alone(self):
        text = MEDIA.replace("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\n", "")
        self.assertEqual(transform_media(text, CFG), text)

    def test_parts_only_playlist(self):
        text = (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init0.mp4\"\n"
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n"
            '#EXT-X-PART:DURATION=0.50000,URI="seg0.0.m4s",INDEPENDENT=YES\n'
            '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg0.1.m4s"\n'
        )
        self.assertIn(
            'START-DATE="2026-11-25T16:00:00.000Z",X-TITLE="Evening News"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n#EXT-X-PART:',
            transform_media(text, CFG),
        )

    def test_idempotent(self):
        once = transform_media(MEDIA, CFG)
        self.assertEqual(transform_media(once, CFG), once)

    def test_crlf(self):
        text = MEDIA.replace("\n", "\r\n")
        out = transform_media(text, CFG)
        self.assertIn('X-TITLE="Evening News"\r\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:14.000Z\r\n', out)
        self.assertEqual(out.count("\r\n"), text.count("\r\n") + 1)

    def test_bad_pdt(self):
        with self.assertRaisesRegex(PluginError, "cannot parse EXT-X-PROGRAM-DATE-TIME"):
            transform_media(MEDIA.replace("2026-11-25T16:00:14.000Z", "yesterday"), CFG)

    def test_not_a_playlist(self):
        with self.assertRaisesRegex(PluginError, "not an m3u8 playlist"):
            transform_media("", CFG)


class IsoTest(unittest.TestCase):
    def test_formats(self):
        self.assertEqual(iso_ms("2026-11-25T16:00:14.000Z"), "2026-11-25T16:00:14.000Z")
        self.assertEqual(iso_ms("2026-11-25T16:00:14Z"), "2026-11-25T16:00:14.000Z")
        self.assertEqual(iso_ms("2026-11-25T16:00:14.123456Z"), "2026-11-25T16:00:14.123Z")
        self.assertEqual(iso_ms("2026-11-25T17:00:14.5+01:00"), "2026-11-25T16:00:14.500Z")


if __name__ == "__main__":
    unittest.main()
