"""Rewrite known_misses.txt from the engine as it is now: `python -m tests.bounces.update_known_misses`.

Run after improving the engine; the strict xfails then match the new open-work list.
"""

from __future__ import annotations

from tests.bounces._corpus import HERE, check, labels

HEADER = (
    "# Corpus files where the engine still disagrees with Sisimai 5.1's label (recipient, reason or code).\n"
    "# Marked xfail(strict=True): fixing one makes its test fail until it is removed from this list.\n"
    "# Regenerate with: python -m tests.bounces.update_known_misses\n"
)


def main() -> None:
    misses = []
    for name in sorted(labels()):
        try:
            check(name)
        except AssertionError:
            misses.append(name)
    (HERE / "known_misses.txt").write_text(HEADER + "".join(f"{n}\n" for n in misses))
    print(f"{len(misses)} of {len(labels())} labelled files still disagree")


if __name__ == "__main__":
    main()
