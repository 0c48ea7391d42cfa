"""Bounce parsing benchmark: agreement on both labelled corpora, the generic layers alone, and speed
on a large mailbox against Sisimai, all measured in this run.

1. `mailtally bounces parse --jsonl` scored by ../shared/tools/score_bounces.py on `corpus/bounces`
   (the corpus the engine was tuned on) and `corpus/bounces-more` (never tuned on), each also with
   the format modules turned off (MAILTALLY_BOUNCES_NO_FORMATS=1, the dev-only switch), so that
   the generic layers' own figure shows.
2. The large mailbox: every corpus file copied, again and again, into one temporary folder of at
   least 6,000 files (outside the repository), read by `bounces parse --jsonl FOLDER` and by
   Sisimai (Debian's libsisimai-perl) over the same folder, one after the other. Printed: wall
   time and CPU time of each, and Sisimai's time over ours (above 1 = faster than Sisimai).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SCORER = SHARED / "tools" / "score_bounces.py"
CORPORA = {
    "corpus/bounces": SHARED / "corpus" / "bounces",
    "corpus/bounces-more": SHARED / "corpus" / "bounces-more",
}
MAILBOX_FILES = 6000
SISIMAI_PL = r"""
use strict; use warnings; use Sisimai; use JSON::PP;
my $j = JSON::PP->new->canonical;
my $v = Sisimai->make($ARGV[0], 'delivered' => 1, 'vacation' => 1) || [];
for my $r (@$v) { print $j->encode({recipient => $r->recipient->address, reason => $r->reason}), "\n"; }
"""


def command() -> list[str]:
    venv_cli = REPO / ".venv" / "bin" / "mailtally"
    cli = str(venv_cli) if venv_cli.exists() else shutil.which("mailtally")
    if cli:
        return [cli, "bounces", "parse", "--jsonl"]
    return [sys.executable, "-m", "mailtally.commands.bounces_parse", "--jsonl"]


def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / max(d, 1):5.1f}%"


def score(corpus: Path, generic_only: bool) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("MAILTALLY_BOUNCES_NO_FORMATS", None)
    if generic_only:
        env["MAILTALLY_BOUNCES_NO_FORMATS"] = "1"
    args = [sys.executable, str(SCORER), "--json", "--labels", str(corpus / "labels.json"),
            "--emails", str(corpus / "emails"), "--not-bounces", str(corpus / "not-bounces"), "--", *command()]
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def original_recipient_agreement(corpus: Path) -> tuple[int, int]:
    """Labelled recipients found as `recipient` or as `original_recipient` (the scorer reads only the former)."""
    labels = json.loads((corpus / "labels.json").read_text())
    files = sorted(str(p) for p in (corpus / "emails").iterdir() if p.is_file())
    out = subprocess.run([*command(), *files], capture_output=True, text=True).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        row = json.loads(line)
        names = found.setdefault(Path(row["source"]).name, set())
        names.update(a.lower() for a in (row["recipient"], row.get("original_recipient") or "") if a)
    want = [(f, e.get("recipient", "").lower()) for f, rows in labels.items() for e in rows]
    return sum(1 for f, r in want if r and r in found.get(f, set())), len(want)


def print_scores() -> None:
    print(f"{'corpus':<42} {'recipients':>10} {'reason':>7} {'code':>7} {'false pos.':>10}")
    for name, corpus in CORPORA.items():
        for generic_only in (False, True):
            s = score(corpus, generic_only)
            label = name + (" (generic layers only)" if generic_only else "")
            n = int(str(s["recipients"]))
            print(f"{label:<42} {_pct(int(str(s['recipient_ok'])), n):>10} {_pct(int(str(s['reason_ok'])), n):>7} "
                  f"{_pct(int(str(s['bounce_code_ok'])), n):>7} {s['false_positives']!s:>4} of {s['not_bounces']!s:<3}")
    ok, n = original_recipient_agreement(CORPORA["corpus/bounces-more"])
    print(f"corpus/bounces-more recipients, counting original_recipient too: {ok}/{n} = {_pct(ok, n).strip()}")


def _timed(args: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the process and its children, output lines)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
    return wall, cpu, proc.stdout.count(b"\n")


def mailbox(folder: Path) -> int:
    sources = sorted(p for c in CORPORA.values() for sub in ("emails", "not-bounces")
                     for p in (c / sub).iterdir() if p.is_file())
    n = 0
    round_ = 0
    while n < MAILBOX_FILES:
        for p in sources:
            shutil.copyfile(p, folder / f"r{round_:02d}-{p.name}")
            n += 1
        round_ += 1
    return n


def print_speed() -> None:
    sisimai = bool(shutil.which("perl")) and subprocess.run(
        ["perl", "-MSisimai", "-e1"], capture_output=True).returncode == 0
    with tempfile.TemporaryDirectory(prefix="mailtally-bench-") as tmp:
        folder = Path(tmp) / "mailbox"
        folder.mkdir()
        n = mailbox(folder)
        print(f"\nlarge mailbox: {n} files (the corpora copied into {folder})")
        wall, cpu, lines = _timed([*command(), str(folder)])
        print(f"  mailtally bounces parse  {wall:7.2f} s wall {cpu:7.2f} s CPU  {n / wall:7.1f} files/s"
              f"  {lines} records")
        if not sisimai:
            print("  Sisimai: not installed (apt-get install libsisimai-perl); no ratio")
            return
        script = Path(tmp) / "sisimai.pl"
        script.write_text(SISIMAI_PL)
        swall, scpu, slines = _timed(["perl", str(script), str(folder)])
        print(f"  Sisimai {sisimai_version():<16} {swall:7.2f} s wall {scpu:7.2f} s CPU  {n / swall:7.1f} files/s"
              f"  {slines} records")
        print(f"  speed vs Sisimai: {swall / wall:.2f}x wall, {scpu / cpu:.2f}x CPU (target >= 3x)")


def sisimai_version() -> str:
    out = subprocess.run(["perl", "-MSisimai", "-e", "print $Sisimai::VERSION"], capture_output=True, text=True)
    return out.stdout.strip()


def main() -> int:
    if not SCORER.is_file():
        print(f"bench/bounces.py: {SHARED} is absent; nothing to benchmark (the corpus lives outside the repo).")
        return 0
    print_scores()
    print_speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
