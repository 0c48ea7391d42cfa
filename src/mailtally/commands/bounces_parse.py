"""`mailtally bounces parse [--jsonl] [--bounces-only] PATH...`: read bounces from files, folders of
files (recursively), Maildirs, mboxes or stdin.

It describes what each message says, as Sisimai does with `delivered => 1`: a delivery report
that says "delivered" prints a record with reason `delivered`, unless `--bounces-only`.

Plain argparse, no Typer: this command runs over thousands of messages from scripts, so its
start-up time counts; `rich` is imported only for the table output.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailtally.bounces import BounceRecord


class Args:
    """The command line, read."""

    __slots__ = ("bounces_only", "jsonl", "paths")

    def __init__(self, jsonl: bool, paths: list[str], bounces_only: bool = False) -> None:
        self.jsonl = jsonl
        self.paths = paths
        self.bounces_only = bounces_only


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mailtally bounces parse",
        description="Parse bounce messages (RFC 3464 DSNs, auto-replies, ARF complaints, MTA formats).",
    )
    ap.add_argument("--jsonl", action="store_true", help="print one JSON object per record")
    ap.add_argument(
        "--bounces-only", action="store_true",
        help="omit the records of delivery reports that say the message was delivered",
    )
    ap.add_argument(
        "paths", nargs="+", metavar="PATH",
        help="message file, folder of message files (read recursively), Maildir, mbox, or - for stdin",
    )
    return ap


def _row(source: str, rec: BounceRecord) -> dict[str, Any]:
    d = rec.to_dict()
    return {"source": source, **d}


def _dumps() -> Any:
    """Compact JSON, UTF-8 left as is: the same bytes orjson writes (checked for every code point).

    The stdlib encoder (C-accelerated) instead of orjson: importing orjson pulls in uuid,
    platform and dataclasses, ~20 ms of a run that is mostly start-up, and it happens before the
    fork, in one process.
    """
    import json

    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(obj: Any) -> str:
        line: str = encode(obj)
        line.encode()  # a lone surrogate is an error, as with orjson, not output
        return line

    return dumps


# Below this many paths a second process costs more than it saves.
PARALLEL_FROM = 32


def _load_engine() -> None:
    """Import the engine (not at the top: `--help` and argument errors do without it)."""
    import mailtally.bounces
    import mailtally.mailfiles  # noqa: F401


def _collect(
    paths: list[str], delivered: bool, dumps: Any, rows: list[tuple[str, BounceRecord]], buf: list[str]
) -> int:
    _load_engine()
    from mailtally.bounces import parse
    from mailtally.mailfiles import MailSourceError, iter_messages

    status = 0
    for path in paths:
        try:
            for source, raw in iter_messages(path):
                # One message that breaks the engine or the output costs only its own records.
                try:
                    recs = parse(raw, delivered=delivered)
                    lines = [dumps(_row(source, rec)) for rec in recs] if dumps is not None else None
                except Exception as e:  # reported, and the run goes on
                    print(f"mailtally: {source}: not read: {type(e).__name__}: {e}", file=sys.stderr)
                    status = 1
                    continue
                if lines is not None:
                    buf.extend(lines)
                else:
                    rows.extend((source, rec) for rec in recs)
        except MailSourceError as e:
            print(f"mailtally: {e}", file=sys.stderr)
            status = 1
    return status


def _parallel_jsonl(paths: list[str], delivered: bool, dumps: Any, workers: int) -> int:
    """Parse contiguous slices in forked children; print their output in path order.

    The engine is imported before the fork and shared: importing it in each child instead takes
    as long on idle cores, and twice the CPU on busy ones. Each child keeps its lines in memory
    and writes them only when done, so a full pipe never stalls its parsing.
    """
    _load_engine()
    size = -(-len(paths) // workers)
    slices = [paths[i : i + size] for i in range(0, len(paths), size)]
    children: list[tuple[int, int]] = []
    for part in slices[1:]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: whatever happens, it must end here, never return into the parent's code
            code = 70
            try:
                os.close(read_fd)
                buf: list[str] = []
                code = _collect(part, delivered, dumps, [], buf)
                with os.fdopen(write_fd, "w") as w:
                    w.write("".join(line + "\n" for line in buf))
            except BrokenPipeError:
                code = 1
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_fd)
        children.append((pid, read_fd))
    mine: list[str] = []
    status = _collect(slices[0], delivered, dumps, [], mine)
    out = sys.stdout
    out.write("".join(line + "\n" for line in mine))
    for pid, read_fd in children:
        with os.fdopen(read_fd) as r:
            out.write(r.read())
        _, code = os.waitpid(pid, 0)
        status = status or (1 if os.waitstatus_to_exitcode(code) else 0)
    out.flush()
    return status


def parse_args(argv: list[str]) -> Args:
    ns = _parser().parse_args(argv)
    return Args(jsonl=ns.jsonl, paths=ns.paths, bounces_only=ns.bounces_only)


def _expand(paths: list[str]) -> tuple[list[str], int]:
    """Folders replaced by the files under them, so that the files can be shared out among processes."""
    from mailtally.mailfiles import MailSourceError, expand

    out: list[str] = []
    status = 0
    for path in paths:
        try:
            out.extend(expand(path))
        except MailSourceError as e:
            print(f"mailtally: {e}", file=sys.stderr)
            status = 1
    return out, status


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    dumps = _dumps() if args.jsonl else None
    delivered = not args.bounces_only
    paths, bad = _expand(args.paths)
    workers = min(os.cpu_count() or 1, 8)
    if dumps is not None and workers > 1 and len(paths) >= PARALLEL_FROM and hasattr(os, "fork") \
            and "-" not in paths:
        return _parallel_jsonl(paths, delivered, dumps, workers) or bad
    rows: list[tuple[str, BounceRecord]] = []
    buf: list[str] = []
    status = _collect(paths, delivered, dumps, rows, buf) or bad
    if dumps is not None:
        if buf:
            sys.stdout.write("\n".join(buf) + "\n")
        sys.stdout.flush()
        return status
    _table(rows)
    return status


def _table(rows: list[tuple[str, BounceRecord]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} record(s)")
    for col in ("source", "recipient", "reason", "code", "status", "diagnostic"):
        table.add_column(col, overflow="fold")
    for source, r in rows:
        table.add_row(
            source, r.recipient, r.reason.value, r.bounce_code.value if r.bounce_code else "-",
            r.status, r.diagnostic[:120],
        )
    Console().print(table)


def run_cli(argv: list[str]) -> int:
    """``run`` for a terminal: a reader that stops early (``| head``) is not an error worth a trace."""
    try:
        return run(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def main() -> None:
    sys.exit(run_cli(sys.argv[1:]))


if __name__ == "__main__":
    main()
