#!/usr/bin/env python3
"""Seed the fuzz corpora from the golden fixtures.

Reads fixtures/jt808/*.json and fixtures/gbt32960/*.json (the `hex` field or the `frames`
list, see fixtures/README.md) and writes one binary file per seed into
fuzz/corpus/<target>/, in the input layout each target expects:

  jt808_frame       the wire frame as is (escaped, with its 0x7E delimiters); plus all
                    frames of a subpackaged message back to back
  jt808_message     msg_id (2 bytes BE), version byte (bit 0: 2019), then the body
                    (unescaped, header and checksum removed)
  gbt32960_frame    the wire frame as is (## or $$ to the BCC)
  gbt32960_message  byte 0 = edition (bit 0: 2025) | response flag (bits 1-3: 0 = 0xFE,
                    else 0x01..=0x07), byte 1 = command, then the data unit
  raw_framers       5 configuration bytes (see fuzz_targets/raw_framers.rs) then a stream:
                    JT/T 808 frames under "0x7e" delimiters, GB/T 32960 frames under a
                    2-byte big-endian length prefix at offset 22, fixed 25-byte framing,
                    newline-delimited hex text

Usage: fuzz/seed.py [--out DIR]   (default: fuzz/corpus next to this script)
Idempotent: files are named by the SHA-1 of their content, like libFuzzer's own.
"""

import argparse
import glob
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def frames_of(path):
    with open(path) as f:
        fx = json.load(f)
    if fx.get("hex"):
        return [bytes.fromhex(fx["hex"])]
    return [bytes.fromhex(h) for h in fx.get("frames") or []]


def jt808_unescape(wire):
    inner = wire[1:-1] if len(wire) >= 2 and wire[0] == 0x7E and wire[-1] == 0x7E else wire
    out = bytearray()
    i = 0
    while i < len(inner):
        b = inner[i]
        if b == 0x7D and i + 1 < len(inner):
            out.append({0x01: 0x7D, 0x02: 0x7E}.get(inner[i + 1], inner[i + 1]))
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def jt808_message_seed(wire):
    """msg_id | version byte | body, or None when the frame is too short to have a header."""
    content = jt808_unescape(wire)
    if len(content) < 13:
        return None
    msg_id = content[0:2]
    attrs = int.from_bytes(content[2:4], "big")
    body_len = attrs & 0x3FF
    sub = attrs & (1 << 13)
    v2019 = bool(attrs & (1 << 14))
    payload = content[:-1]  # drop the checksum
    # 2013 header: attrs, 6-byte phone, serial; 2019: + protocol version, 10-byte phone.
    hlen = (17 if v2019 else 12) + (4 if sub else 0)
    if v2019 and len(payload) - (12 + (4 if sub else 0)) == body_len:
        # Quirk: a 2013 frame with bit 14 set whose length fits the 2013 layout.
        v2019 = False
        hlen = 12 + (4 if sub else 0)
    body = payload[hlen:hlen + body_len]
    return msg_id + bytes([1 if v2019 else 0]) + body


def gbt_message_seed(wire):
    if len(wire) < 25:
        return None
    edition = 1 if wire[0:2] == b"$$" else 0
    command, response = wire[2], wire[3]
    flag = 0 if response == 0xFE else (response & 0x07)
    data_len = int.from_bytes(wire[22:24], "big")
    data = wire[24:24 + data_len]
    return bytes([edition | (flag << 1), command]) + data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    args = ap.parse_args()

    seeds = {t: set() for t in
             ("jt808_frame", "jt808_message", "gbt32960_frame", "gbt32960_message", "raw_framers")}

    jt_frames, gb_frames = [], []
    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures/jt808/*.json"))):
        frames = frames_of(path)
        jt_frames += frames
        for fr in frames:
            seeds["jt808_frame"].add(fr)
            m = jt808_message_seed(fr)
            if m is not None:
                seeds["jt808_message"].add(m)
        if len(frames) > 1:
            seeds["jt808_frame"].add(b"".join(frames))
    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures/gbt32960/*.json"))):
        for fr in frames_of(path):
            gb_frames.append(fr)
            seeds["gbt32960_frame"].add(fr)
            m = gbt_message_seed(fr)
            if m is not None:
                seeds["gbt32960_message"].add(m)

    # raw_framers: kind = cfg[0] % 3 (0 delimited, 1 length-prefixed, 2 fixed); see framing().
    # Delimited "0x7e" (a % 4 == 2), both ends (a & 0x10), max 1 + 2*255 bytes.
    for fr in jt_frames:
        seeds["raw_framers"].add(bytes([0, 0x12, 0xFF, 0, len(fr) // 2 & 0xFF]) + fr)
    # Length-prefixed: width 2 (a % 3 == 1), big endian, offset b % 4 ... the GB/T length
    # sits at offset 22 which the config cannot express, so frame the data unit instead:
    # 2-byte BE length, offset 0, no adjustment, length excludes the header, strip it.
    for fr in gb_frames:
        data = gbt_message_seed(fr)[2:]
        seeds["raw_framers"].add(
            bytes([1, 0x40, 0, 0, 0xFF]) + len(data).to_bytes(2, "big") + data)
    # Fixed 25-byte framing (1 + a % 64 == 25) over a GB/T frame.
    for fr in gb_frames[:8]:
        seeds["raw_framers"].add(bytes([2, 24, 0, 0, 25]) + fr)
    # Newline-delimited text lines.
    text = b"".join(fr.hex().encode() + b"\n" for fr in jt_frames[:4])
    seeds["raw_framers"].add(bytes([0, 0x00, 0xFF, 0, 30]) + text)
    seeds["raw_framers"].add(bytes([0, 0x01, 0xFF, 0, 30]) + text.replace(b"\n", b"\r\n"))

    for target, items in seeds.items():
        d = os.path.join(args.out, target)
        os.makedirs(d, exist_ok=True)
        for item in items:
            name = hashlib.sha1(item).hexdigest()
            with open(os.path.join(d, name), "wb") as f:
                f.write(item)
        print(f"{target}: {len(items)} seeds -> {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
