"""Property tests: `parse` never raises and never hangs, whatever bytes it is given."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtally.bounces import parse

EXAMPLES = sorted((Path(__file__).resolve().parent / "examples").glob("*.eml"))
SEEDS = [p.read_bytes() for p in EXAMPLES]
FAST = settings(deadline=timedelta(milliseconds=500), max_examples=200, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(parse(raw), list)


@FAST
@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=4000))
def test_truncated_messages(raw: bytes, cut: int) -> None:
    assert isinstance(parse(raw[:cut]), list)


@FAST
@given(st.sampled_from(SEEDS), st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=3000))
def test_corrupted_messages(raw: bytes, junk: bytes, at: int) -> None:
    assert isinstance(parse(raw[:at] + junk + raw[at:]), list)


@FAST
@given(st.text(alphabet="<>@:;=\"'-.\n \tFromTo5.1.1", max_size=3000))
def test_punctuation_soup(text: str) -> None:
    assert isinstance(parse(text.encode()), list)


def _nested(depth: int) -> bytes:
    head = b""
    tail = b""
    for i in range(depth):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i)
        tail = b"\n--b%d--\n" % i + tail
    return (
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered\n"
        + head
        + b"Content-Type: text/plain\n\nx@y.example\n550 5.1.1 unknown"
        + tail
    )


@settings(deadline=timedelta(seconds=2), max_examples=20)
@given(st.integers(min_value=1, max_value=5000))
def test_deeply_nested_mime(depth: int) -> None:
    assert isinstance(parse(_nested(depth)), list)


@settings(deadline=timedelta(seconds=3), max_examples=5)
@given(st.sampled_from(SEEDS), st.integers(min_value=1, max_value=20))
def test_huge_inputs(raw: bytes, megabytes: int) -> None:
    filler = (b"x" * 1023 + b"\n") * (1024 * megabytes)
    assert isinstance(parse(raw + filler), list)
    assert isinstance(parse(raw.replace(b"\n\n", b"\n\n" + filler, 1)), list)


@settings(deadline=timedelta(seconds=3), max_examples=5)
@given(st.integers(min_value=10_000, max_value=200_000))
def test_pathological_lines(n: int) -> None:
    raw = b"From: MAILER-DAEMON@x.example\nSubject: failure\n\n" + b"<" * n + b"@" * n + b"a@" * n + b"\n" + b" " * n
    assert isinstance(parse(raw), list)
