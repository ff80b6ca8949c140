"""newsclf.data errors: DataError (a problem the user can fix) and DataMissingError (no corpus yet)."""
from __future__ import annotations

import os
from pathlib import Path

from newsclf.config import resolve_data_home


class DataError(Exception):
    """A data problem the user can fix (bad archive, unreadable cache, bad argument)."""


class DataMissingError(DataError):
    """The corpus is not in the data home; the message says how to get it."""


def missing_message(data_home: str | os.PathLike | None = None) -> str:
    """The text of DataMissingError: where we looked and the two commands that fix it."""
    home = resolve_data_home(data_home)
    return f"the 20 Newsgroups corpus is not in the data home {home}. {fix_hint(home)}"


def fix_hint(home: Path) -> str:
    return (f"Download it with `python -m newsclf data fetch`, or, offline, import a local copy with "
            f"`python -m newsclf data import PATH/TO/20news-bydate.tar.gz` "
            f"(add --data-home {home} if it is not the default)")

