#!/usr/bin/env python3
"""Adds a SCTE-35 PID to an ffmpeg transport stream, with cues encoded by threefive.

    pip install threefive==3.1.5
    python3 make_scte35_ts.py testsrc.ts testsrc-scte35.ts testsrc-scte35.json

The PMT gains stream_type 0x86 on PID 0x1F0 and a 'CUEI' registration descriptor in its
program_info loop (its CRC_32 is recomputed). Each cue is one splice_info_section in one TS
packet, inserted just before the video PES that starts `AHEAD` frames before the splice. The
JSON file lists, for each cue in stream order, threefive's section bytes (hex) and what the
demuxer must report, with the splice time given as the video frame it lands on.
"""

import json
import sys

import threefive
from threefive import Cue, SpliceInsert, TimeSignal, SpliceNull
from threefive.descriptors import SegmentationDescriptor

TS = 188
SCTE_PID = 0x1F0
AHEAD = 10  # frames of pre-roll between a cue's packet and its splice point


def crc32_mpeg(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def pid_of(pkt):
    return ((pkt[1] & 0x1F) << 8) | pkt[2]


def payload_of(pkt):
    afc = (pkt[3] >> 4) & 3
    off = 4
    if afc & 2:
        off += 1 + pkt[4]
    return off if afc & 1 else None


def pes_pts(pkt):
    """PTS of the PES starting in this packet, if any."""
    off = payload_of(pkt)
    if off is None or not pkt[1] & 0x40:
        return None
    p = pkt[off:]
    if p[:3] != b"\x00\x00\x01" or not p[7] & 0x80:
        return None
    t = p[9:14]
    return (
        ((t[0] >> 1) & 7) << 30 | t[1] << 22 | (t[2] >> 1) << 15 | t[3] << 7 | t[4] >> 1
    )


def rewrite_pmt(pkt):
    off = payload_of(pkt)
    pointer = pkt[off]
    start = off + 1 + pointer
    sec = bytearray(pkt[start:])
    length = ((sec[1] & 0x0F) << 8) | sec[2]
    sec = sec[: 3 + length - 4]  # without CRC
    prog_info_len = ((sec[10] & 0x0F) << 8) | sec[11]
    reg = b"\x05\x04CUEI"
    prog_info_len += len(reg)
    sec[10] = 0xF0 | (prog_info_len >> 8)
    sec[11] = prog_info_len & 0xFF
    sec[12:12] = reg
    sec += bytes([0x86, 0xE0 | (SCTE_PID >> 8), SCTE_PID & 0xFF, 0xF0, 0x00])
    length = len(sec) - 3 + 4
    sec[1] = (sec[1] & 0xF0) | (length >> 8)
    sec[2] = length & 0xFF
    sec += crc32_mpeg(sec).to_bytes(4, "big")
    out = bytearray(pkt[:start]) + sec
    assert len(out) <= TS
    return bytes(out + b"\xff" * (TS - len(out)))


def splice_insert(event_id, out, pts_secs, duration_secs):
    cue = Cue()
    cmd = SpliceInsert()
    cmd.splice_event_id = event_id
    cmd.splice_event_cancel_indicator = False
    cmd.out_of_network_indicator = out
    cmd.program_splice_flag = True
    cmd.duration_flag = duration_secs is not None
    cmd.splice_immediate_flag = False
    cmd.event_id_compliance_flag = True
    cmd.time_specified_flag = True
    cmd.pts_time = pts_secs
    if duration_secs is not None:
        cmd.break_auto_return = True
        cmd.break_duration = duration_secs
    cmd.unique_program_id = 1
    cmd.avail_num = 0
    cmd.avails_expected = 0
    cue.command = cmd
    cue.encode()
    return cue


def time_signal(pts_secs, seg_event_id, seg_type, duration_secs, pts_adjustment_secs=0.0):
    cue = Cue()
    cue.info_section.pts_adjustment = pts_adjustment_secs
    cmd = TimeSignal()
    cmd.time_specified_flag = True
    cmd.pts_time = pts_secs
    cue.command = cmd
    sd = SegmentationDescriptor()
    sd.segmentation_event_id = hex(seg_event_id)
    sd.segmentation_event_cancel_indicator = False
    sd.segmentation_event_id_compliance_indicator = True
    sd.program_segmentation_flag = True
    sd.segmentation_duration_flag = True
    sd.delivery_not_restricted_flag = True
    sd.segmentation_duration = duration_secs
    sd.segmentation_upid_type = 0
    sd.segmentation_upid_length = 0
    sd.segmentation_upid = ""
    sd.segmentation_type_id = seg_type
    sd.segment_num = 0
    sd.segments_expected = 0
    cue.descriptors.append(sd)
    cue.encode()
    return cue


def splice_null():
    cue = Cue()
    cue.command = SpliceNull()
    cue.encode()
    return cue


def section_packet(section, cc):
    body = bytes([0x47, 0x40 | (SCTE_PID >> 8), SCTE_PID & 0xFF, 0x10 | (cc & 0x0F), 0x00])
    body += section
    assert len(body) <= TS
    return body + b"\xff" * (TS - len(body))


def main(src, dst, meta):
    data = open(src, "rb").read()
    pkts = [data[i : i + TS] for i in range(0, len(data), TS)]
    pmt_pid = None
    video_pid = None
    for p in pkts:
        if pid_of(p) == 0 and p[1] & 0x40:
            off = payload_of(p) + 1 + p[payload_of(p)]
            pmt_pid = ((p[off + 10] & 0x1F) << 8) | p[off + 11]
            break
    for p in pkts:
        if pid_of(p) == pmt_pid:
            off = payload_of(p) + 1 + p[payload_of(p)]
            sec = p[off:]
            pil = ((sec[10] & 0x0F) << 8) | sec[11]
            i = 12 + pil
            while i < 3 + (((sec[1] & 0x0F) << 8) | sec[2]) - 4:
                if sec[i] == 0x1B:
                    video_pid = ((sec[i + 1] & 0x1F) << 8) | sec[i + 2]
                i += 5 + (((sec[i + 3] & 0x0F) << 8) | sec[i + 4])
            break
    # Video PES starts: (packet index, PTS), in order.
    starts = [(i, pes_pts(p)) for i, p in enumerate(pkts) if pid_of(p) == video_pid]
    starts = [(i, t) for i, t in starts if t is not None]

    def frame_pts(n):
        return starts[n][1]

    wrap = 1 << 33
    # (splice frame, cue, expectation)
    plan = []
    f = 30
    plan.append((f, splice_insert(100, True, frame_pts(f) / 90000, 30.0),
                 dict(id=100, kind="SpliceInsert", out=True, frame=f, duration_ms=30000,
                      segmentation_type=None)))
    f = 60
    plan.append((f, splice_insert(101, False, frame_pts(f) / 90000, None),
                 dict(id=101, kind="SpliceInsert", out=False, frame=f, duration_ms=None,
                      segmentation_type=None)))
    # pts_adjustment that wraps: pts_time + pts_adjustment ≡ the frame's PTS (mod 2^33).
    f = 75
    adjustment = wrap - 1000
    plan.append((f, time_signal(((frame_pts(f) - adjustment) % wrap) / 90000, 0x48000008,
                                0x34, 20.0, adjustment / 90000),
                 dict(id=0x48000008, kind="TimeSignal", out=True, frame=f, duration_ms=20000,
                      segmentation_type=0x34)))
    plan.append((80, splice_null(),
                 dict(id=0, kind="SpliceNull", out=False, frame=None, duration_ms=None,
                      segmentation_type=None)))

    inserts = {}
    expected = []
    for cc, (frame, cue, exp) in enumerate(plan):
        section = cue.bytes()
        at = starts[max(0, (frame if exp["frame"] is not None else frame) - AHEAD)][0]
        inserts.setdefault(at, []).append(section_packet(section, cc))
        exp["section"] = section.hex()
        expected.append(exp)

    out = bytearray()
    for i, p in enumerate(pkts):
        for extra in inserts.get(i, []):
            out += extra
        out += rewrite_pmt(p) if pid_of(p) == pmt_pid else p
    open(dst, "wb").write(out)
    json.dump(dict(threefive=threefive.version.version if hasattr(threefive.version, "version")
                   else str(threefive.version),
                   scte35_pid=SCTE_PID, cues=expected), open(meta, "w"), indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
