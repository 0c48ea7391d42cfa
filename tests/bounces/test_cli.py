"""The `bounces parse` command, run as a process: files, a Maildir, an mbox, stdin, a bad path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent / "examples"
CMD = [sys.executable, "-m", "mailtally.commands.bounces_parse"]


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run([*CMD, *args], input=stdin, capture_output=True, timeout=60)
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return proc.returncode, rows, proc.stderr.decode()


def test_files_jsonl() -> None:
    a, b = str(EXAMPLES / "reason-userunknown.eml"), str(EXAMPLES / "reason-mailboxfull.eml")
    rc, rows, _ = _run("--jsonl", a, b, str(EXAMPLES / "not-a-bounce.eml"))
    assert rc == 0
    assert [(r["source"], r["recipient"], r["reason"], r["bounce_code"], r["hard_bounce"]) for r in rows] == [
        (a, "userunknown@receiver.example", "userunknown", "B", True),
        (b, "mailboxfull@receiver.example", "mailboxfull", "F", False),
    ]
    assert {"status", "reply_code", "diagnostic", "original_headers", "timestamp"} <= set(rows[0])


def test_delivery_reports_print_unless_bounces_only() -> None:
    mixed, delivered = str(EXAMPLES / "delivered-mixed.eml"), str(EXAMPLES / "delivered-dsn.eml")
    rc, rows, _ = _run("--jsonl", mixed, delivered)
    assert rc == 0
    assert [(r["source"], r["recipient"], r["reason"], r["bounce_code"], r["hard_bounce"]) for r in rows] == [
        (mixed, "ok@receiver.example", "delivered", None, False),
        (mixed, "gone@receiver.example", "userunknown", "B", True),
        (delivered, "ok@receiver.example", "delivered", None, False),
        (delivered, "list@lists.receiver.example", "delivered", None, False),
    ]
    rc, rows, _ = _run("--jsonl", "--bounces-only", mixed, delivered)
    assert rc == 0
    got = [(r["source"], r["recipient"], r["reason"]) for r in rows]
    assert got == [(mixed, "gone@receiver.example", "userunknown")]


def test_bounces_only_in_the_parallel_run() -> None:
    """From 32 paths on the run forks; the flag reaches every process."""
    paths = [str(EXAMPLES / "delivered-dsn.eml")] * 40
    rc, rows, _ = _run("--jsonl", *paths)
    assert rc == 0 and len(rows) == 80 and {r["reason"] for r in rows} == {"delivered"}
    rc, rows, _ = _run("--bounces-only", "--jsonl", *paths)
    assert rc == 0 and rows == []


def test_maildir_mbox_and_stdin(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "new" / "1.eml").write_bytes((EXAMPLES / "reason-hostunknown.eml").read_bytes())
    (md / "cur" / "2.eml:2,S").write_bytes((EXAMPLES / "reason-suspend.eml").read_bytes())
    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(
        b"From MAILER-DAEMON Tue Jan  2 10:00:00 2024\n"
        + (EXAMPLES / "reason-expired.eml").read_bytes()
        + b"\nFrom MAILER-DAEMON Tue Jan  2 10:00:01 2024\n"
        + (EXAMPLES / "reason-blocked.eml").read_bytes()
    )
    rc, rows, _ = _run("--jsonl", str(md), str(mbox), "-", stdin=(EXAMPLES / "reason-vacation.eml").read_bytes())
    assert rc == 0
    got = [(r["source"], r["reason"]) for r in rows]
    assert got == [
        (f"{md}#new/1.eml", "hostunknown"),
        (f"{md}#cur/2.eml:2,S", "suspend"),
        (f"{mbox}#1", "expired"),
        (f"{mbox}#2", "blocked"),
        ("-", "vacation"),
    ]


def test_bad_path_reports_and_continues(tmp_path: Path) -> None:
    good = str(EXAMPLES / "reason-userunknown.eml")
    rc, rows, err = _run("--jsonl", str(tmp_path / "missing.eml"), good)
    assert rc == 1
    assert "missing.eml" in err
    assert [r["source"] for r in rows] == [good]


def test_table_output() -> None:
    proc = subprocess.run([*CMD, str(EXAMPLES / "reason-userunknown.eml")], capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert b"userunknown" in proc.stdout


def test_files_are_read_whole_up_to_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailtally import mailfiles

    monkeypatch.setattr(mailfiles, "MAX_MESSAGE_BYTES", 10)
    path = tmp_path / "m.eml"
    for content in (b"", b"abc", b"x" * 9, b"x" * 10, b"y" * 11, b"z" * 25):
        path.write_bytes(content)
        with open(path, "rb") as fh:
            assert mailfiles.read_bounded(fh) == content[:10]
    r, w = os.pipe()
    os.write(w, b"p" * 25)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        assert mailfiles.read_bounded(fh) == b"p" * 10


def test_plain_folder_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "2024" / "jan").mkdir(parents=True)
    (tmp_path / "2024" / "jan" / "one.eml").write_bytes((EXAMPLES / "reason-userunknown.eml").read_bytes())
    (tmp_path / "2024" / "two").write_bytes((EXAMPLES / "reason-mailboxfull.eml").read_bytes())
    (tmp_path / "2024" / ".hidden.eml").write_bytes((EXAMPLES / "reason-expired.eml").read_bytes())
    (tmp_path / "ok.eml").write_bytes((EXAMPLES / "not-a-bounce.eml").read_bytes())
    md = tmp_path / "zz-Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "new" / "1").write_bytes((EXAMPLES / "reason-hostunknown.eml").read_bytes())
    rc, rows, err = _run("--jsonl", str(tmp_path))
    assert rc == 0, err
    assert [(r["source"], r["reason"]) for r in rows] == [
        (str(tmp_path / "2024" / "jan" / "one.eml"), "userunknown"),
        (str(tmp_path / "2024" / "two"), "mailboxfull"),
        (f"{md}#new/1", "hostunknown"),
    ]


def test_large_folder_is_shared_among_processes(tmp_path: Path) -> None:
    """A folder of many files is split into files before the fork: every one is read, in order."""
    for i in range(40):
        (tmp_path / f"{i:02d}.eml").write_bytes((EXAMPLES / "reason-userunknown.eml").read_bytes())
    rc, rows, _ = _run("--jsonl", str(tmp_path))
    assert rc == 0
    assert [r["source"] for r in rows] == [str(tmp_path / f"{i:02d}.eml") for i in range(40)]


def test_an_odd_charset_costs_no_other_file_its_output(tmp_path: Path) -> None:
    from ..hardening.test_parser_fuzz import UTF7_BOUNCE

    odd = tmp_path / "utf7.eml"
    odd.write_bytes(UTF7_BOUNCE)
    good = str(EXAMPLES / "reason-userunknown.eml")
    rc, rows, err = _run("--jsonl", good, str(odd), str(EXAMPLES / "reason-mailboxfull.eml"))
    assert rc == 0, err
    assert [(r["source"], r["recipient"]) for r in rows] == [
        (good, "userunknown@receiver.example"), (str(odd), "gone@receiver.example"),
        (str(EXAMPLES / "reason-mailboxfull.eml"), "mailboxfull@receiver.example")]
