"""Pure logic of the program-info plugin: config parsing and the playlist rewrites.

Nothing here imports the component bindings (``wit_world``), so plain
``python3 -m unittest`` can test it; ``app.py`` is the component entry that wraps it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

DEFAULT_CLASS = "com.weir.program"
DATERANGE_ID = "program"
MAX_VALUE_LEN = 1024
KNOWN_KEYS = ("title", "class", "rating")

_CLASS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DATA_ID_RE = re.compile(r'DATA-ID="([^"]*)"')
_PDT = "#EXT-X-PROGRAM-DATE-TIME:"
# Lines that start a segment's content: when one comes before any PDT, the first segment
# has no date of its own and the media playlist is left as it is.
_SEGMENT_CONTENT = ("#EXTINF:", "#EXT-X-PART:", "#EXT-X-GAP", "#EXT-X-BYTERANGE:", "#EXT-X-BITRATE:")
# Multivariant header lines the session data goes after.
_HEADER = ("#EXTM3U", "#EXT-X-VERSION:", "#EXT-X-INDEPENDENT-SEGMENTS")


class PluginError(ValueError):
    """An error the plugin reports as the call's ``err`` string."""


@dataclass(frozen=True)
class Config:
    title: str
    klass: str = DEFAULT_CLASS
    rating: Optional[str] = None


def _quoted_value(key: str, value: object) -> str:
    """A value for an HLS quoted-string attribute: no double quote, CR or LF (RFC 8216bis 4.2)."""
    if not isinstance(value, str):
        raise PluginError(f'program-info: config "{key}" must be a string, got {json.dumps(value)}')
    if value.strip() == "":
        raise PluginError(f'program-info: config "{key}" must not be empty')
    for bad, name in (('"', "a double quote"), ("\n", "a line feed"), ("\r", "a carriage return")):
        if bad in value:
            raise PluginError(
                f'program-info: config "{key}" must not contain {name}: '
                "it is written into a quoted HLS attribute value"
            )
    if len(value) > MAX_VALUE_LEN:
        raise PluginError(f'program-info: config "{key}" is longer than {MAX_VALUE_LEN} characters')
    return value


def parse_config(text: str) -> Config:
    """Parses ``{"title": "...", "class": "com.weir.program", "rating": "..."}``.

    ``title`` is required; ``class`` defaults to ``com.weir.program``; ``rating`` is optional
    (``null`` or absent for none). Raises :class:`PluginError` with a readable message.
    """
    if text.strip() == "":
        raise PluginError('program-info: a config is required, e.g. {"title": "Evening News"}')
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise PluginError(f"program-info: config is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise PluginError('program-info: config must be a JSON object, e.g. {"title": "Evening News"}')
    unknown = sorted(k for k in value if k not in KNOWN_KEYS)
    if unknown:
        raise PluginError(
            f"program-info: unknown config key {json.dumps(unknown[0])} "
            f"(known: {', '.join(json.dumps(k) for k in KNOWN_KEYS)})"
        )
    if "title" not in value:
        raise PluginError('program-info: config "title" is required')
    title = _quoted_value("title", value["title"])
    klass = value.get("class", DEFAULT_CLASS)
    if not isinstance(klass, str) or not _CLASS_RE.fullmatch(klass) or len(klass) > 200:
        raise PluginError(
            'program-info: config "class" must be a reverse-DNS name such as "com.weir.program" '
            f"(letters, digits, '.', '_', '-'), got {json.dumps(klass)}"
        )
    rating = value.get("rating")
    if rating is not None:
        rating = _quoted_value("rating", rating)
    return Config(title=title, klass=klass, rating=rating)


def _lines(playlist: str) -> tuple[list[str], str]:
    """The playlist's lines without their endings, and the ending to give inserted lines."""
    if not playlist.startswith("#EXTM3U"):
        raise PluginError("program-info: not an m3u8 playlist")
    eol = "\r\n" if "\r\n" in playlist else "\n"
    return playlist.split("\n"), eol


def _bare(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def _insert(raw: list[str], at: int, new: list[str], eol: str) -> str:
    cr = "\r" if eol == "\r\n" else ""
    return "\n".join(raw[:at] + [line + cr for line in new] + raw[at:])


def iso_ms(pdt: str) -> str:
    """An EXT-X-PROGRAM-DATE-TIME value as ISO 8601 in UTC with milliseconds: ``...T16:00:02.000Z``."""
    text = pdt.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise PluginError(f"program-info: cannot parse EXT-X-PROGRAM-DATE-TIME {pdt.strip()!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


def session_data_lines(config: Config) -> list[str]:
    lines = [f'#EXT-X-SESSION-DATA:DATA-ID="{config.klass}.title",VALUE="{config.title}"']
    if config.rating is not None:
        lines.append(f'#EXT-X-SESSION-DATA:DATA-ID="{config.klass}.rating",VALUE="{config.rating}"')
    return lines


def daterange_line(config: Config, start_date: str) -> str:
    line = (
        f'#EXT-X-DATERANGE:ID="{DATERANGE_ID}",CLASS="{config.klass}",'
        f'START-DATE="{start_date}",X-TITLE="{config.title}"'
    )
    if config.rating is not None:
        line += f',X-RATING="{config.rating}"'
    return line


def transform_multivariant(playlist: str, config: Config) -> str:
    """Adds ``EXT-X-SESSION-DATA`` after the leading #EXTM3U / #EXT-X-VERSION /
    #EXT-X-INDEPENDENT-SEGMENTS lines. A DATA-ID already present is not added again."""
    raw, eol = _lines(playlist)
    at = 0
    while at < len(raw) and _bare(raw[at]).startswith(_HEADER):
        at += 1
    present = set()
    for line in raw:
        if _bare(line).startswith("#EXT-X-SESSION-DATA:"):
            m = _DATA_ID_RE.search(line)
            if m:
                present.add(m.group(1))
    new = [l for l in session_data_lines(config) if _DATA_ID_RE.search(l).group(1) not in present]
    return _insert(raw, at, new, eol) if new else playlist


def transform_media(playlist: str, config: Config) -> str:
    """Adds one ``EXT-X-DATERANGE`` (ID "program") right before the first segment's
    EXT-X-PROGRAM-DATE-TIME, dated by it. Left unchanged when the first segment has no
    PDT or a range with that ID is already there."""
    raw, eol = _lines(playlist)
    if any(_bare(l).startswith(f'#EXT-X-DATERANGE:ID="{DATERANGE_ID}"') for l in raw):
        return playlist
    for i, line in enumerate(raw):
        bare = _bare(line)
        if bare.startswith(_PDT):
            start = iso_ms(bare[len(_PDT):])
            return _insert(raw, i, [daterange_line(config, start)], eol)
        if bare.startswith(_SEGMENT_CONTENT) or (bare and not bare.startswith("#")):
            break
    return playlist


def warm_up() -> None:
    """Runs every path once. The component entry calls this at import time, which
    componentize-py snapshots, so a fresh instance starts with warm caches (each host call
    runs in a fresh instance)."""
    config = parse_config('{"title": "warm-up", "rating": "x"}')
    transform_multivariant("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-SESSION-DATA:DATA-ID=\"a\",VALUE=\"b\"\nv.m3u8\n", config)
    transform_media("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:2.0,\ns.m4s\n", config)
    for bad in ("", "{", "[]", '{"title": "\\""}'):
        try:
            parse_config(bad)
        except PluginError:
            pass
