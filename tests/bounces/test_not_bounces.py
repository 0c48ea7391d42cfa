"""Messages that are not bounces yield nothing: never a guess."""

from __future__ import annotations

import pytest

from mailtally.bounces import parse
from tests.bounces._corpus import CORPUS

NOT_BOUNCES = sorted((CORPUS / "not-bounces").glob("*")) if (CORPUS / "not-bounces").is_dir() else []


@pytest.mark.skipif(not NOT_BOUNCES, reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", NOT_BOUNCES, ids=[p.name for p in NOT_BOUNCES])
def test_not_bounce(path: object) -> None:
    from pathlib import Path

    assert isinstance(path, Path)
    assert [r for r in parse(path.read_bytes()) if r.reason.value not in ("feedback", "delivered")] == []


def test_every_labelled_file_belongs_to_a_family() -> None:
    """The family modules together cover the whole labelled corpus."""
    import importlib
    from pathlib import Path

    from tests.bounces._corpus import labels

    if not labels():
        pytest.skip(f"corpus not found at {CORPUS}")
    covered: set[str] = set()
    for mod in sorted(Path(__file__).parent.glob("test_*.py")):
        if mod.stem in ("test_not_bounces", "test_examples", "test_properties", "test_cli"):
            continue
        m = importlib.import_module(f"tests.bounces.{mod.stem}")
        family = next((n for n in dir(m) if n.endswith("_corpus")), None)
        if family is None:
            continue  # a module of small examples, not of corpus files
        for mark in getattr(m, family).pytestmark:
            if mark.name == "parametrize":
                covered.update(p.values[0] for p in mark.args[1] if hasattr(p, "values"))
    assert set(labels()) - covered == set()
