"""Getting the corpus into the data home: sklearn's download, or an offline archive/folder import.

newsclf reads the corpus only from its own cache ``<data_home>/newsclf_corpus.npz`` (numpy
arrays, no pickle: newsclf.data.cache). It gets there by `fetch_corpus` (sklearn's download, into
a fresh private temp folder) or `import_archive` (a local ``20news-bydate.tar.gz`` or its
extracted folder); both go through the same checks (newsclf.data.archive) and writers.

Both also write scikit-learn's own cache ``20news-bydate_py3.pkz`` beside it, byte-compatible with
what ``fetch_20newsgroups`` writes, so that plain sklearn loads the corpus offline from the same
data home. newsclf itself never reads that file: it is a pickle, and a data home may be shared
(a crafted one would run code when unpickled). A data home holding only the .pkz is "not imported
yet" (see errors.missing_message). Also here: the data-home helpers the other modules key their
in-process caches on (`cache_key`, `clear_caches`).
"""
from __future__ import annotations

import os
import pickle
import stat
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from newsclf.config import resolve_data_home
from newsclf.data.archive import CATEGORIES, SPLIT_FOLDERS, Corpus, check_corpus, read_source
from newsclf.data.cache import RawCorpus, build_raw, doc_id, write_cache
from newsclf.data.errors import (CACHE_FILE, SKLEARN_CACHE_FILE, DataError, DataMissingError, damaged_message,
                                 missing_message)

ZLIB_LEVEL = 1

Progress = Callable[[float, str], None]
_CACHED: list[Any] = []  # lru_cache-d loaders of dataset.py/stats.py (see register_cache)


# ---- data home ------------------------------------------------------------------------------
def cache_path(data_home: str | os.PathLike | None = None) -> Path:
    """Where newsclf keeps its corpus cache for this data home."""
    return resolve_data_home(data_home) / CACHE_FILE


def corpus_available(data_home: str | os.PathLike | None = None) -> bool:
    """True when newsclf's corpus cache is a regular file in the data home (creates nothing, reads nothing).

    sklearn's .pkz alone does not count (it is never loaded); neither does a link (never followed).
    """
    try:
        return stat.S_ISREG(os.lstat(cache_path(data_home)).st_mode)
    except OSError:
        return False


def cache_key(home: Path) -> tuple[int, int]:
    """(mtime_ns, size) of the cache: in-process caches are keyed on it, so a re-import invalidates them.

    Raises DataMissingError when absent, DataError when it is a link or not a regular file.
    """
    try:
        st = os.lstat(Path(home) / CACHE_FILE)
    except (FileNotFoundError, NotADirectoryError):
        raise DataMissingError(missing_message(home)) from None
    if stat.S_ISLNK(st.st_mode):
        raise DataError(damaged_message(home, "it is a symbolic link; links are never followed"))
    if not stat.S_ISREG(st.st_mode):
        raise DataError(damaged_message(home, "not a regular file"))
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
def fetch_corpus(data_home: str | os.PathLike | None = None, progress: Progress | None = None) -> Path:
    """Download the corpus with sklearn's own fetcher, then install it as an import would; return the cache path.

    sklearn downloads into a fresh private temp folder (mkdtemp under the system temp dir, not the
    possibly shared data home), where no cache file can pre-exist: fetch_20newsgroups unpickles an
    existing ``20news-bydate_py3.pkz`` but here only builds one from the download (its sha256
    checked by sklearn) and returns it in memory. Nothing in the data home is read. The documents
    then go through `check_corpus` and the same writers as `import_archive`; the temp folder is
    removed. Raises DataError (naming the offline import command) when the download fails.
    """
    from sklearn.datasets import fetch_20newsgroups

    report = progress or (lambda fraction, message: None)
    home = _ensure_home(data_home)
    report(0.0, "downloading with scikit-learn")
    with tempfile.TemporaryDirectory(prefix="newsclf-fetch-") as scratch:
        try:  # subset="all", no shuffle: train then test, each in sklearn's cache order
            bunch = fetch_20newsgroups(data_home=scratch, subset="all", shuffle=False, download_if_missing=True)
        except Exception as exc:  # network, checksum, disk: all user-fixable here
            raise DataError(f"download failed ({type(exc).__name__}: {exc}); offline, import a local copy with "
                            f"`python -m newsclf data import PATH/TO/20news-bydate.tar.gz`") from exc
    corpus: Corpus = {"train": {}, "test": {}}
    for filename, text in zip(bunch.filenames, bunch.data):
        split, name, file = doc_id(filename).split("/")
        corpus.setdefault(split, {}).setdefault(name, {})[file] = text.encode("latin1")
    del bunch
    report(0.5, "checking the 20 class folders")
    return _install(corpus, home, report)


def import_archive(path: str | os.PathLike, data_home: str | os.PathLike | None = None,
                   progress: Progress | None = None, *, expected: Any = "auto") -> Path:
    """Import a local ``20news-bydate.tar.gz`` (or its extracted folder) into the data home.

    Reads the documents into memory without extracting anything (newsclf.data.archive: links are
    refused, the compressed stream is verified to its end, a damaged archive says so), checks they
    are complete (``expected``: "auto" enforces the exact 11,314 / 7,532 documents of the real
    20news-bydate; see archive.check_corpus), then writes sklearn's .pkz (for plain sklearn) and
    newsclf's cache (newsclf.data.cache), each to a temp file that is verified and ``os.replace``d
    in, newsclf's last. Any failure raises DataError and leaves an earlier cache untouched.
    ``progress(fraction, message)`` is called as the import goes. Returns newsclf's cache path.
    """
    report = progress or (lambda fraction, message: None)
    source = Path(path).expanduser()
    if not source.exists():
        raise DataError(f"import: {source} does not exist")
    home = _ensure_home(data_home)
    report(0.0, f"reading {source.name}")
    corpus = read_source(source)
    report(0.4, "checking the 20 class folders")
    return _install(corpus, home, report, expected)


def _install(corpus: Corpus, home: Path, report: Progress, expected: Any = "auto") -> Path:
    check_corpus(corpus, expected)
    report(0.5, "building the cache")
    raw = build_raw(corpus)
    del corpus
    for split in ("train", "test"):
        if not len(raw.subset(split).texts):
            raise DataError(f"import: the {split} documents do not hold the 20 classes")
    if list(raw.target_names) != list(CATEGORIES):
        raise DataError("import: the documents do not hold the 20 classes")
    report(0.6, "writing scikit-learn's cache")
    _write_sklearn_cache(raw, home)
    report(0.8, "writing newsclf's cache")
    target = write_cache(raw, home)
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


def sklearn_cache(raw: RawCorpus, home: Path) -> dict[str, Any]:
    """sklearn's cache dict, equal to ``load_files(<folder>, encoding="latin1")`` of each split.

    File names are given under ``<home>/20news_home/``, where sklearn's own download extracts them.
    """
    from sklearn.utils import Bunch

    folders = {split: folder for folder, split in SPLIT_FOLDERS.items()}
    cache = {}
    for split in ("train", "test"):
        sub = raw.subset(split)
        names = [os.path.join(home, "20news_home", folders[split], *i.split("/")[1:]) for i in sub.doc_ids]
        cache[split] = Bunch(data=list(sub.texts), filenames=np.array(names), target_names=list(raw.target_names),
                             target=np.asarray(sub.target), DESCR=None)
    return cache


def _write_sklearn_cache(raw: RawCorpus, home: Path) -> Path:
    """Write sklearn's zlib-pickle cache to a temp file, verify its bytes, then replace the .pkz.

    Written (never read) so that `fetch_20newsgroups(data_home=...)` works offline for plain sklearn
    users; the check compares bytes, not objects. zlib level 1: sklearn reads any level; level 6
    (sklearn's) took 1.9 s of a ~10 s import for a 13 % smaller file.
    """
    payload = pickle.dumps(sklearn_cache(raw, home))
    packed = zlib.compress(payload, ZLIB_LEVEL)
    fd, tmp_name = tempfile.mkstemp(prefix=".newsclf-import-", suffix=".tmp", dir=home)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # not mkstemp's 0600: colleagues may share the data home
            fh.write(packed)
            fh.flush()
            os.fsync(fh.fileno())
        with open(tmp, "rb") as fh:
            if zlib.decompress(fh.read()) != payload:
                raise DataError("import: the written scikit-learn cache does not read back correctly")
        target = home / SKLEARN_CACHE_FILE
        os.replace(tmp, target)
    except OSError as exc:
        raise DataError(f"import: cannot write the cache in {home} ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
