"""`python -m newsclf ...`: a thin shell over the library (the same functions the pages call).

Each command lives in newsclf/commands/<command>.py, named after the command it registers, and
exposes `register(subparsers)`, which adds its parser with `set_defaults(func=handler)`; a handler
returns the exit code.
Errors the user can fix (bad config, missing data, unknown run) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from newsclf.errors import UserError

COMMANDS = ("data", "train", "evaluate", "runs", "predict", "explain", "jobs", "ensemble", "report", "calibrate", "study")


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (the field named), without the usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m newsclf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        importlib.import_module(f"newsclf.commands.{command}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from newsclf.config import ConfigError
    from newsclf.data import DataError
    from newsclf.errors import InputError
    from newsclf.store import RunNotFoundError

    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly like any Unix tool
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except (UserError, ConfigError, DataError, RunNotFoundError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only runs dir, permissions: one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
