"""Bounce parsing benchmark: the CLI over the whole corpus, scored, timed against Sisimai.

Runs ../shared/tools/score_bounces.py --vs-sisimai on `mailtally bounces parse --jsonl` (or,
before the console script exists, `python -m mailtally.commands.bounces_parse --jsonl`) and
prints its figures. Sisimai comes from Debian's libsisimai-perl.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SCORER = SHARED / "tools" / "score_bounces.py"


def command() -> list[str]:
    venv_cli = REPO / ".venv" / "bin" / "mailtally"
    cli = str(venv_cli) if venv_cli.exists() else shutil.which("mailtally")
    if cli:
        probe = subprocess.run([cli, "bounces", "parse", "--jsonl", "-"], input=b"", capture_output=True)
        if probe.returncode == 0:
            return [cli, "bounces", "parse", "--jsonl"]
    return [sys.executable, "-m", "mailtally.commands.bounces_parse", "--jsonl"]


def main() -> int:
    if not SCORER.is_file():
        print(f"bench/bounces.py: {SHARED} is absent; nothing to benchmark (the corpus lives outside the repo).")
        return 0
    cmd = [sys.executable, str(SCORER), "--vs-sisimai", "--", *command()]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
