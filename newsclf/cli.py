"""`python -m newsclf ...`: a thin shell over the library (the same functions the pages call).

Each command group lives in newsclf/commands/<group>.py and exposes `register(subparsers)`,
which adds its parser with `set_defaults(func=handler)`; a handler returns the exit code.
Errors the user can fix (bad config, missing data, unknown run) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

GROUPS = ("data", "train", "runs", "jobs", "explain")


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (the field named), without the usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m newsclf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for group in GROUPS:
        importlib.import_module(f"newsclf.commands.{group}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from newsclf.config import ConfigError
    from newsclf.data import DataError
    from newsclf.store import RunNotFoundError

    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly like any Unix tool
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except (UserError, ConfigError, DataError, RunNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
