"""`mailtally suppressions import/export/policy` and `bounces reclassify` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import TEST_SECRET


def test_import_export_policy_reclassify(tmp_path: Path) -> None:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "MAILTALLY_SECRET": TEST_SECRET}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mailtally", *args], env=env, capture_output=True, text=True)

    assert run("accounts", "create", "shop").returncode == 0
    (tmp_path / "ok.csv").write_text("email,reason,note\nAnn@example.com,manual,by phone\nbob@example.com,,\n")
    (tmp_path / "bad.csv").write_text("email\nok@example.com\nbroken line\n")
    ok = run("suppressions", "import", str(tmp_path / "ok.csv"), "--account", "shop")
    assert ok.returncode == 0 and "2 rows read, 2 entries added or replaced" in ok.stdout
    assert "importing suppressions" in ok.stderr  # the progress bar
    bad = run("suppressions", "import", str(tmp_path / "bad.csv"), "--account", "shop")
    assert bad.returncode == 1 and "line 3" in bad.stderr and "nothing imported" in bad.stderr
    out = run("suppressions", "export", "--account", "shop")
    lines = out.stdout.splitlines()
    assert lines[0] == "email,reason,suppressed_at,expires_at,note"
    assert [x.split(",")[0] for x in lines[1:]] == ["ann@example.com", "bob@example.com"]  # not ok@example.com
    changed = run("suppressions", "policy", "--account", "shop", "soft_count=5", "blocks=soft")
    assert '"soft_count": 5' in changed.stdout and '"blocks": "soft"' in changed.stdout
    assert '"soft_count": 5' in run("suppressions", "policy", "--account", "shop").stdout
    assert run("suppressions", "policy", "--account", "shop", "soft_count=zero").returncode == 1
    assert run("suppressions", "export", "--account", "nobody").returncode == 1
    dry = run("bounces", "reclassify", "--account", "shop", "--dry-run")
    assert dry.returncode == 0 and "0 messages, 0 would change" in dry.stdout
