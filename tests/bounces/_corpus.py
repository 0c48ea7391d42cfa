"""Shared helpers for the corpus-driven tests: where the corpus is, what it expects, how to compare.

The corpus (Sisimai's set-of-emails with Sisimai 5.1's answers) lives in ../shared, outside
the repository; tests that need it skip with a clear message when it is absent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from mailtally.bounces import parse
from mailtally.vocab import Reason, bounce_code_for

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "bounces"
EMAILS = CORPUS / "emails"
HERE = Path(__file__).resolve().parent


@cache
def labels() -> dict[str, list[dict[str, str]]]:
    path = CORPUS / "labels.json"
    if not path.is_file():
        return {}
    data: dict[str, list[dict[str, str]]] = json.loads(path.read_text())
    return data


@cache
def known_misses() -> frozenset[str]:
    """Corpus files where the engine still disagrees with Sisimai's answer: the open work list."""
    path = HERE / "known_misses.txt"
    lines = path.read_text().splitlines() if path.is_file() else []
    return frozenset(ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip())


def cases(*prefixes: str) -> list[object]:
    """Labelled corpus files whose names start with one of `prefixes`, as pytest params."""
    names = sorted(n for n in labels() if n.startswith(prefixes))
    if not names:
        return [pytest.param("", marks=pytest.mark.skip(reason=f"corpus not found at {CORPUS}"))]
    out: list[object] = []
    for n in names:
        marks = []
        if n in known_misses():
            marks.append(pytest.mark.xfail(strict=True, reason="disagrees with the Sisimai label (known_misses.txt)"))
        out.append(pytest.param(n, id=n, marks=marks))
    return out


def check(name: str) -> None:
    """Every labelled recipient is found, with the label's reason and the bounce code it implies.

    A recipient labelled "delivered" is absent from `parse` and reported by `parse(delivered=True)`.
    """
    expected = labels()[name]
    raw = (EMAILS / name).read_bytes()
    got = parse(raw)
    by_rcpt = {r.recipient.lower(): r for r in got}
    for i, e in enumerate(expected):
        want_reason = Reason(e["reason"])
        if want_reason is Reason.DELIVERED:
            rcpt = e.get("recipient", "").lower()
            assert not any(r.recipient.lower() == rcpt for r in got)
            with_delivered = {r.recipient.lower(): r.reason for r in parse(raw, delivered=True)}
            assert with_delivered.get(rcpt) is Reason.DELIVERED, f"{rcpt} not reported as delivered"
            continue
        if e.get("recipient"):
            rec = by_rcpt.get(e["recipient"].lower())
            assert rec is not None, f"{e['recipient']} not found in {[r.recipient for r in got]}"
        else:
            assert i < len(got), f"no record #{i}"
            rec = got[i]
        assert rec.reason is want_reason, f"{rec.recipient}: {rec.reason} != {want_reason} ({rec.diagnostic[:200]})"
        assert rec.bounce_code == bounce_code_for(want_reason)
