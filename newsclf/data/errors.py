"""newsclf.data errors: DataError (a problem the user can fix) and DataMissingError (no corpus yet).

Also the names of the two corpus files a data home may hold, so that the messages can name them:
newsclf's own cache (the only one newsclf reads) and scikit-learn's pickle (never read).
"""
from __future__ import annotations

import os
from pathlib import Path

from newsclf.config import resolve_data_home

CACHE_FILE = "newsclf_corpus.npz"  # newsclf's corpus cache: numpy arrays, loaded with allow_pickle=False
SKLEARN_CACHE_FILE = "20news-bydate_py3.pkz"  # sklearn's zlib pickle: written for plain sklearn, never loaded


class DataError(Exception):
    """A data problem the user can fix (bad archive, unreadable cache, bad argument)."""


class DataMissingError(DataError):
    """The corpus is not in the data home; the message says how to get it."""


def missing_message(data_home: str | os.PathLike | None = None) -> str:
    """The text of DataMissingError: where we looked and the commands that fix it (one line).

    A data home holding only sklearn's pickle (plain sklearn, or newsclf before its own cache) is
    "not imported yet": the message says so and asks for a re-import; the pickle is never loaded.
    """
    home = resolve_data_home(data_home)
    if os.path.lexists(home / SKLEARN_CACHE_FILE):
        return (f"the data home {home} holds only scikit-learn's {SKLEARN_CACHE_FILE} (from plain scikit-learn "
                f"or an older newsclf), which newsclf does not load (unpickling a file can run code): "
                f"re-import the archive with `python -m newsclf data import PATH/TO/20news-bydate.tar.gz` "
                f"or download it again with `python -m newsclf data fetch`{_home_flag(home)}")
    return f"the 20 Newsgroups corpus is not in the data home {home}. {fix_hint(home)}"


def fix_hint(home: Path) -> str:
    return (f"Download it with `python -m newsclf data fetch`, or, offline, import a local copy with "
            f"`python -m newsclf data import PATH/TO/20news-bydate.tar.gz`{_home_flag(home)}")


def damaged_message(home: Path, detail: str) -> str:
    """One line for a corpus cache that cannot be trusted (damaged, foreign, a link, another format)."""
    return (f"the corpus cache {Path(home) / CACHE_FILE} is damaged ({detail}): re-import the archive with "
            f"`python -m newsclf data import PATH/TO/20news-bydate.tar.gz`{_home_flag(home)}")


def _home_flag(home: Path) -> str:
    return f" (add --data-home {home} if it is not the default)"
