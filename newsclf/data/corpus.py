"""Getting the corpus into the data home: sklearn's download, or an offline archive/folder import.

The corpus lives where scikit-learn caches it: ``<data_home>/20news-bydate_py3.pkz``, written
exactly as ``sklearn.datasets.fetch_20newsgroups`` writes it, so plain sklearn reads it offline.
It gets there by `fetch_corpus` (sklearn's own download) or `import_archive` (a local
``20news-bydate.tar.gz`` or its extracted folder). Also here: the data-home helpers the other
modules key their in-process caches on (`cache_key`, `clear_caches`).
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from newsclf.config import resolve_data_home
from newsclf.data.archive import CATEGORIES, SPLIT_FOLDERS, Corpus, check_corpus, read_source
from newsclf.data.errors import DataError, DataMissingError, missing_message

CACHE_FILE = "20news-bydate_py3.pkz"
ZLIB_LEVEL = 1

Progress = Callable[[float, str], None]
_CACHED: list[Any] = []  # lru_cache-d loaders of dataset.py/stats.py (see register_cache)


# ---- data home ------------------------------------------------------------------------------
def cache_path(data_home: str | os.PathLike | None = None) -> Path:
    """Where sklearn keeps (and we write) the corpus cache for this data home."""
    return resolve_data_home(data_home) / CACHE_FILE


def corpus_available(data_home: str | os.PathLike | None = None) -> bool:
    """True when the corpus cache exists in the data home (creates nothing)."""
    return cache_path(data_home).is_file()


def cache_key(home: Path) -> tuple[int, int]:
    """(mtime_ns, size) of the cache: in-process caches are keyed on it, so a re-import invalidates them."""
    try:
        st = (home / CACHE_FILE).stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DataMissingError(missing_message(home)) from None
    return st.st_mtime_ns, st.st_size


def register_cache(fn: Any) -> Any:
    """Decorator for an lru_cache-d loader that `clear_caches` must reset (dataset.py, stats.py)."""
    _CACHED.append(fn)
    return fn


def clear_caches() -> None:
    """Forget every in-process cached corpus, dataset and stats (called after fetch/import)."""
    for fn in _CACHED:
        fn.cache_clear()


# ---- fetch and import -------------------------------------------------------------------------
def fetch_corpus(data_home: str | os.PathLike | None = None) -> Path:
    """Download the corpus with sklearn's own fetcher into the data home; return the cache path.

    Raises DataError (naming the offline import command) when the download fails.
    """
    from sklearn.datasets import fetch_20newsgroups

    home = _ensure_home(data_home)
    partial = home / "20news_home"
    existed = partial.exists()
    try:
        fetch_20newsgroups(data_home=str(home), subset="train", download_if_missing=True)
    except Exception as exc:  # network, checksum, disk: all user-fixable here
        if not existed:
            shutil.rmtree(partial, ignore_errors=True)
        raise DataError(f"download failed ({type(exc).__name__}: {exc}); offline, import a local copy with "
                        f"`python -m newsclf data import PATH/TO/20news-bydate.tar.gz`") from exc
    clear_caches()
    return home / CACHE_FILE


def import_archive(path: str | os.PathLike, data_home: str | os.PathLike | None = None,
                   progress: Progress | None = None, *, expected: Any = "auto") -> Path:
    """Import a local ``20news-bydate.tar.gz`` (or its extracted folder) into the data home.

    Reads the documents into memory without extracting anything (newsclf.data.archive: links are
    refused, the compressed stream is verified to its end, a damaged archive says so), checks they
    are complete (``expected``: "auto" enforces the exact 11,314 / 7,532 documents of the real
    20news-bydate; see archive.check_corpus), then writes the cache the way sklearn does (a
    zlib-compressed pickle of ``dict(train=load_files(...), test=load_files(...))``, latin1) to a
    temp file, verifies its bytes and ``os.replace``s it in. Any failure raises DataError and leaves
    an earlier cache untouched. ``progress(fraction, message)`` is called as the import goes.
    Returns the cache path.
    """
    report = progress or (lambda fraction, message: None)
    source = Path(path).expanduser()
    if not source.exists():
        raise DataError(f"import: {source} does not exist")
    home = _ensure_home(data_home)
    report(0.0, f"reading {source.name}")
    corpus = read_source(source)
    report(0.4, "checking the 20 class folders")
    check_corpus(corpus, expected)
    report(0.5, "building the cache")
    cache = build_cache(corpus, home)
    del corpus
    report(0.7, "writing the cache")
    target = _write_cache(cache, home)
    clear_caches()
    report(1.0, f"imported into {target}")
    return target


def _ensure_home(data_home: str | os.PathLike | None) -> Path:
    home = resolve_data_home(data_home)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"data home: cannot create {home} ({exc})") from None
    return home


def build_cache(corpus: Corpus, home: Path) -> dict[str, Any]:
    """sklearn's cache dict, equal to ``load_files(<folder>, encoding="latin1")`` of each split.

    Same order (folders and files sorted as strings, then shuffled with RandomState(0)), same
    arrays; file names are given under ``<home>/20news_home/``, where sklearn's own download
    extracts them, so doc ids (the last three parts) do not depend on a temp folder.
    """
    from sklearn.utils import Bunch

    cache = {}
    for folder, split in SPLIT_FOLDERS.items():
        container = os.path.join(home, "20news_home", folder)
        names, target, bodies = [], [], []
        target_names = sorted(corpus[split])
        for label, name in enumerate(target_names):
            docs = corpus[split][name]
            for file in sorted(docs):
                names.append(os.path.join(container, name, file))
                bodies.append(docs[file])
                target.append(label)
        order = np.arange(len(names))
        np.random.RandomState(0).shuffle(order)
        cache[split] = Bunch(data=[bodies[i].decode("latin1") for i in order],
                             filenames=np.array(names)[order], target_names=target_names,
                             target=np.array(target)[order], DESCR=None)
    return cache


def _write_cache(cache: dict[str, Any], home: Path) -> Path:
    """Write sklearn's zlib-pickle cache to a temp file, verify its bytes, then replace the cache.

    Writing that format is what makes `fetch_20newsgroups(data_home=...)` work offline; newsclf
    itself never unpickles it (the check compares bytes, not objects). zlib level 1: sklearn
    reads any level; level 6 (sklearn's) took 1.9 s of a ~10 s import for a 13 % smaller file.
    """
    for split in SPLIT_FOLDERS.values():
        if list(cache[split].target_names) != list(CATEGORIES) or not len(cache[split].data):
            raise DataError(f"import: the {split} documents do not hold the 20 classes")
    payload = pickle.dumps(cache)
    packed = zlib.compress(payload, ZLIB_LEVEL)
    fd, tmp_name = tempfile.mkstemp(prefix=".newsclf-import-", suffix=".tmp", dir=home)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(packed)
            fh.flush()
            os.fsync(fh.fileno())
        if zlib.decompress(tmp.read_bytes()) != payload:
            raise DataError("import: the written cache does not read back correctly")
        target = home / CACHE_FILE
        os.replace(tmp, target)
    except OSError as exc:
        raise DataError(f"import: cannot write the cache in {home} ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
