"""The ``mailtally`` console script.

``mailtally bounces parse`` is run by scripts over thousands of files, where start-up is most
of the cost, so it is dispatched here before the Typer application (and SQLAlchemy) load.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["bounces", "parse"] and not {"--help", "-h"} & set(argv):
        from .commands.bounces_parse import run_cli

        sys.exit(run_cli(argv[2:]))
    from .cli import main as full

    full()


if __name__ == "__main__":
    main()
