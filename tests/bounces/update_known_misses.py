"""Rewrite known_misses.txt from the engine as it is now: `python -m tests.bounces.update_known_misses`.

Run after improving the engine; the strict xfails then match the new list. Each line keeps the
reason written beside it; a new miss gets a placeholder that asks for one (a miss belongs in the
list only when it is a real disagreement with the label, said why).
"""

from __future__ import annotations

from tests.bounces._corpus import HERE, check, labels

HEADER = (
    "# Corpus files where the engine and Sisimai 5.1's label disagree (recipient, reason or code), each\n"
    "# with why: only real disagreements about what the message says belong here, never open work.\n"
    "# Marked xfail(strict=True): fixing one makes its test fail until it is removed from this list.\n"
    "# Regenerate with: python -m tests.bounces.update_known_misses (it keeps each line's reason).\n"
)


def _reasons() -> dict[str, str]:
    path = HERE / "known_misses.txt"
    out: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        name, _, why = line.partition("#")
        if name.strip():
            out[name.strip()] = why.strip()
    return out


def main() -> None:
    reasons = _reasons()
    misses = []
    for name in sorted(labels()):
        try:
            check(name)
        except AssertionError:
            misses.append(name)
    lines = [f"{n}  # {reasons.get(n) or 'WHY? say what the label and the message disagree on'}\n" for n in misses]
    (HERE / "known_misses.txt").write_text(HEADER + "".join(lines))
    print(f"{len(misses)} of {len(labels())} labelled files still disagree")


if __name__ == "__main__":
    main()
