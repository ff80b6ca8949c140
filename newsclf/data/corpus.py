"""Getting the corpus into the data home: sklearn's download, or an offline archive/folder import.

The corpus lives where scikit-learn caches it: ``<data_home>/20news-bydate_py3.pkz``, written
exactly as ``sklearn.datasets.fetch_20newsgroups`` writes it, so plain sklearn reads it offline.
It gets there by `fetch_corpus` (sklearn's own download) or `import_archive` (a local
``20news-bydate.tar.gz`` or its extracted folder). Also here: the data-home helpers the other
modules key their in-process caches on (`cache_key`, `clear_caches`).
"""
from __future__ import annotations

import codecs
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable

from newsclf.config import resolve_data_home
from newsclf.data.errors import DataError, DataMissingError, missing_message

CATEGORIES: tuple[str, ...] = (
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
    "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med", "sci.space",
    "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast", "talk.politics.misc",
    "talk.religion.misc",
)
# sklearn: _pkl_filepath(data_home, "20news-bydate.pkz") inserts the "_py3" suffix.
CACHE_FILE = "20news-bydate_py3.pkz"
TRAIN_FOLDER = "20news-bydate-train"
TEST_FOLDER = "20news-bydate-test"
SPLIT_FOLDERS = {TRAIN_FOLDER: "train", TEST_FOLDER: "test"}

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
                   progress: Progress | None = None) -> Path:
    """Import a local ``20news-bydate.tar.gz`` (or its extracted folder) into the data home.

    Validates that both ``20news-bydate-train/`` and ``20news-bydate-test/`` hold exactly the 20
    class folders, each non-empty, then writes the cache the way sklearn does (a zlib-compressed
    pickle of ``dict(train=load_files(...), test=load_files(...))``, latin1) to a temp file,
    verifies it, and ``os.replace``s it in. Any failure raises DataError and leaves an earlier
    cache untouched; temp files and folders are removed. ``progress(fraction, message)`` is
    called as the import goes. Returns the cache path.
    """
    report = progress or (lambda fraction, message: None)
    source = Path(path).expanduser()
    if not source.exists():
        raise DataError(f"import: {source} does not exist")
    home = _ensure_home(data_home)
    workdir = Path(tempfile.mkdtemp(prefix=".newsclf-import-", dir=home))
    try:
        if source.is_dir():
            root = _find_root(source)
        else:
            report(0.0, f"extracting {source.name}")
            root = _find_root(_extract(source, workdir / "extracted"))
        report(0.4, "checking the 20 class folders")
        _validate_tree(root)
        cache = _read_tree(root, report)
        report(0.85, "writing the cache")
        target = _write_cache(cache, home, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
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


def _extract(archive: Path, dest: Path) -> Path:
    """Extract a tar archive with the safe ``data`` filter; any tar/gzip problem -> DataError."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"import: {archive} is not a readable 20news-bydate.tar.gz "
                        f"({type(exc).__name__}: {exc})") from None
    return dest


def _find_root(path: Path) -> Path:
    """The folder holding both split folders: `path` itself or its single sub-folder."""
    if (path / TRAIN_FOLDER).is_dir() and (path / TEST_FOLDER).is_dir():
        return path
    subdirs = [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    if len(subdirs) == 1 and (subdirs[0] / TRAIN_FOLDER).is_dir() and (subdirs[0] / TEST_FOLDER).is_dir():
        return subdirs[0]
    raise DataError(f"import: expected the folders {TRAIN_FOLDER}/ and {TEST_FOLDER}/ in the archive or "
                    f"folder {path.name!r}; this is not the 20news-bydate corpus")


def _validate_tree(root: Path) -> None:
    """Both split folders hold exactly the 20 class folders, each with at least one file."""
    for folder in (TRAIN_FOLDER, TEST_FOLDER):
        split = root / folder
        found = {p.name for p in split.iterdir() if p.is_dir()}
        missing = sorted(set(CATEGORIES) - found)
        extra = sorted(found - set(CATEGORIES))
        if missing or extra:
            detail = (f"missing {', '.join(missing)}" if missing else "") + \
                     ("; " if missing and extra else "") + (f"unexpected {', '.join(extra)}" if extra else "")
            raise DataError(f"import: {folder}/ must hold the 20 newsgroup folders: {detail}")
        for name in CATEGORIES:
            entries = list((split / name).iterdir())
            if not any(p.is_file() for p in entries):
                raise DataError(f"import: {folder}/{name}/ is empty")
            if any(not p.is_file() for p in entries):
                raise DataError(f"import: {folder}/{name}/ holds something other than plain files")


def _read_tree(root: Path, report: Progress) -> dict[str, Any]:
    """sklearn's cache dict: load_files(..., encoding="latin1") of each split folder."""
    from sklearn.datasets import load_files

    cache = {}
    for i, (folder, split) in enumerate(SPLIT_FOLDERS.items()):
        report(0.45 + 0.2 * i, f"reading the {split} documents")
        try:
            cache[split] = load_files(str(root / folder), encoding="latin1")
        except OSError as exc:
            raise DataError(f"import: cannot read {folder}/ ({exc})") from None
    return cache


def _write_cache(cache: dict[str, Any], home: Path, workdir: Path) -> Path:
    """Check the documents, write sklearn's zlib-pickle cache to a temp file, verify its bytes, then
    replace the cache. Writing that format is what makes `fetch_20newsgroups(data_home=...)` work
    offline; newsclf itself never unpickles it (the check compares bytes, not objects)."""
    for split in SPLIT_FOLDERS.values():
        if list(cache[split].target_names) != list(CATEGORIES) or not len(cache[split].data):
            raise DataError(f"import: the {split} documents do not hold the 20 classes")
    payload = pickle.dumps(cache)
    tmp = workdir / (CACHE_FILE + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(codecs.encode(payload, "zlib_codec"))
        fh.flush()
        os.fsync(fh.fileno())
    if codecs.decode(tmp.read_bytes(), "zlib_codec") != payload:
        raise DataError("import: the written cache does not read back correctly")
    target = home / CACHE_FILE
    os.replace(tmp, target)
    return target


