"""Regression fuzz test: odd charsets and broken MIME never put a lone surrogate (or an
exception) into what the engine emits. The mutations are the ones that found the UTF-7 bug:
charset swaps, truncation, byte flips, duplicated MIME boundaries, 10 MB lines."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtally.bounces import parse

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "bounces" / "examples").glob("*.eml"))
SEEDS = [p.read_bytes() for p in EXAMPLES]
FUZZ = settings(deadline=timedelta(seconds=2), max_examples=150, suppress_health_check=[HealthCheck.too_slow])
CHARSETS = ["utf-7", "UTF-7", "utf-16", "utf-16-be", "utf-32", "iso-2022-jp", "shift_jis", "big5", "cp1252",
            "koi8-r", "gb18030", "punycode", "idna", "rot13", "base64", "x-unknown", "", "utf-8"]
# UTF-7 shift sequences that decode to lone surrogates (high, low) and a valid pair.
UTF7_JUNK = b"+2D0- +3AA- +2D3cAA- +2D3"

UTF7_BOUNCE = b"""From: MAILER-DAEMON@mx.example
To: news@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-7

This is the mail system at host mx.example.

<gone@receiver.example>: host mx.receiver.example[192.0.2.1] said: 550 5.1.1
    +2D0- user unknown +3AA- +2D3cAA-
"""


def emitted_text(records: list[Any]) -> list[str]:
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk([r.to_dict() for r in records])
    return out


def assert_clean(raw: bytes) -> None:
    records = parse(raw)
    for text in emitted_text(records):
        text.encode("utf-8")  # raises on a lone surrogate
    orjson.dumps([r.to_dict() for r in records])


def test_utf7_bounce_emits_no_surrogates() -> None:
    records = parse(UTF7_BOUNCE)
    assert [(r.recipient, r.reason.value) for r in records] == [("gone@receiver.example", "userunknown")]
    assert "\ufffd" in records[0].diagnostic  # each lone surrogate became the replacement character
    assert "\U0001f400" in records[0].diagnostic  # and the valid pair its character
    assert_clean(UTF7_BOUNCE)


def _swap_charset(raw: bytes, charset: str) -> bytes:
    swapped = re.sub(rb'charset="?[\w.:-]*"?', b'charset="' + charset.encode() + b'"', raw, flags=re.I)
    if swapped == raw:  # no charset declared: declare one on the first Content-Type, or add it
        swapped = re.sub(rb"(?im)^(content-type:[^\r\n]*)", rb"\1; charset=" + charset.encode(), raw, count=1)
    return swapped


@FUZZ
@given(st.sampled_from(SEEDS), st.sampled_from(CHARSETS), st.integers(0, 6000))
def test_charset_swaps_and_junk(raw: bytes, charset: str, at: int) -> None:
    swapped = _swap_charset(raw, charset)
    assert_clean(swapped[:at] + UTF7_JUNK + swapped[at:])


@FUZZ
@given(st.sampled_from(SEEDS), st.sampled_from(CHARSETS), st.integers(0, 6000))
def test_truncation_after_charset_swap(raw: bytes, charset: str, cut: int) -> None:
    assert_clean(_swap_charset(raw, charset)[:cut])


@FUZZ
@given(st.sampled_from(SEEDS), st.sampled_from(CHARSETS),
       st.lists(st.tuples(st.integers(0, 8000), st.integers(0, 255)), min_size=1, max_size=20))
def test_byte_flips(raw: bytes, charset: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_swap_charset(raw, charset))
    for at, bit in flips:
        if data:
            data[at % len(data)] ^= bit or 0x80
    assert_clean(bytes(data))


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(1, 6), st.sampled_from(CHARSETS))
def test_duplicated_mime_boundaries(raw: bytes, times: int, charset: str) -> None:
    m = re.search(rb'boundary="?([^";\r\n]+)"?', raw, re.I)
    if m is None:
        return
    line = b"\n--" + m.group(1) + b"\nContent-Type: text/plain; charset=" + charset.encode() + b"\n\n" + UTF7_JUNK
    at = raw.find(b"\n--" + m.group(1))
    at = at if at >= 0 else len(raw) // 2
    assert_clean(raw[:at] + line * times + raw[at:])


def test_ten_megabyte_lines() -> None:
    long = b"x" * (10 * 1024 * 1024)
    for seed in (UTF7_BOUNCE, SEEDS[0]):
        head, _, body = seed.partition(b"\n\n")
        assert_clean(head + b"\n\n" + long + b"\n" + body)
        assert_clean(head + b"\nX-Long: " + long + b"\n\n" + body)
        assert_clean(_swap_charset(seed, "utf-7") + b"+" + long[: 1024 * 1024] + b"\n")
