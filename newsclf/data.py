"""20 Newsgroups via scikit-learn: data home, offline archive import, the seed protocol, stats.

The corpus lives where scikit-learn caches it: ``<data_home>/20news-bydate_py3.pkz``, written
exactly as ``sklearn.datasets.fetch_20newsgroups`` writes it, so plain sklearn reads it offline.
It gets there by `fetch_corpus` (sklearn's own download) or `import_archive` (a local
``20news-bydate.tar.gz`` or its extracted folder). Loading never downloads: missing data raises
`DataMissingError`, whose message names both commands that fix it.

Protocols (one switch, ``RunConfig.protocol``):

- ``seed`` (default): headers, footers and quotes removed; documents with fewer than
  ``min_content_words`` content words (lowercase alphabetic words not in sklearn's English stop
  words) dropped from train and test; stratified 80/20 train/val split of the bydate train set
  (``random_state=seed``); the bydate test set is the test set (about 8.6k / 2.1k / 7.1k).
- ``raw``: headers kept, nothing removed or dropped, same split.

Document ids are stable strings ``<train|test>/<class>/<file>`` (e.g. ``train/sci.space/61234``).
Loaded datasets and stats are cached per process (keyed on the cache file's mtime and size);
treat what they return as read-only. sklearn is imported lazily (it takes a second or two).
Never imports torch or streamlit.
"""
from __future__ import annotations

import codecs
import contextlib
import functools
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

from newsclf.config import PROTOCOLS, resolve_data_home

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
REMOVE = {"seed": ("headers", "footers", "quotes"), "raw": ()}
STATS_FILE = "newsclf_stats_{protocol}.json"
STATS_VERSION = 2
_WORD_RE = re.compile(r"[a-z]+")

Progress = Callable[[float, str], None]


class DataError(Exception):
    """A data problem the user can fix (bad archive, unreadable cache, bad argument)."""


class DataMissingError(DataError):
    """The corpus is not in the data home; the message says how to get it."""


def missing_message(data_home: str | os.PathLike | None = None) -> str:
    """The text of DataMissingError: where we looked and the two commands that fix it."""
    home = resolve_data_home(data_home)
    return f"the 20 Newsgroups corpus is not in the data home {home}. {_fix_hint(home)}"


def _fix_hint(home: Path) -> str:
    return (f"Download it with `python -m newsclf data fetch`, or, offline, import a local copy with "
            f"`python -m newsclf data import PATH/TO/20news-bydate.tar.gz` "
            f"(add --data-home {home} if it is not the default)")


# ---- data home ------------------------------------------------------------------------------
def cache_path(data_home: str | os.PathLike | None = None) -> Path:
    """Where sklearn keeps (and we write) the corpus cache for this data home."""
    return resolve_data_home(data_home) / CACHE_FILE


def corpus_available(data_home: str | os.PathLike | None = None) -> bool:
    """True when the corpus cache exists in the data home (creates nothing)."""
    return cache_path(data_home).is_file()


def _cache_key(home: Path) -> tuple[int, int]:
    """(mtime_ns, size) of the cache: in-process caches are keyed on it, so a re-import invalidates them."""
    try:
        st = (home / CACHE_FILE).stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DataMissingError(missing_message(home)) from None
    return st.st_mtime_ns, st.st_size


def clear_caches() -> None:
    """Forget every in-process cached corpus, dataset and stats (called after fetch/import)."""
    for fn in (_load_subset, _load_dataset, _doc_index, _compute_stats):
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


# ---- loading ----------------------------------------------------------------------------------
class _Subset(NamedTuple):
    texts: list[str]
    labels: np.ndarray  # (N,) int64
    doc_ids: list[str]
    label_names: list[str]


@functools.lru_cache(maxsize=8)
def _load_subset(home: str, key: tuple[int, int], subset: str, protocol: str) -> _Subset:
    """One bydate subset through fetch_20newsgroups (never downloads); sklearn's default order."""
    from sklearn.datasets import fetch_20newsgroups

    try:  # on a corrupt cache sklearn prints a notice, then raises OSError
        bunch = fetch_20newsgroups(data_home=home, subset=subset, remove=REMOVE[protocol],
                                   download_if_missing=False)
    except Exception as exc:
        if not (Path(home) / CACHE_FILE).is_file():
            raise DataMissingError(missing_message(home)) from None
        raise DataError(f"the corpus cache {Path(home) / CACHE_FILE} is unreadable ({exc}). "
                        f"{_fix_hint(Path(home))}") from None
    doc_ids = [_doc_id(name) for name in bunch.filenames]
    return _Subset(list(bunch.data), np.asarray(bunch.target, dtype=np.int64), doc_ids, list(bunch.target_names))


def _doc_id(filename: str) -> str:
    """`.../20news-bydate-train/sci.space/61234` -> `train/sci.space/61234`."""
    folder, label, name = Path(str(filename)).parts[-3:]
    return f"{SPLIT_FOLDERS.get(folder, folder)}/{label}/{name}"


@functools.lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_words(text: str) -> list[str]:
    """Lowercase alphabetic words (`[a-z]+` on text.lower()) that are not sklearn English stop words."""
    stop = _stop_words()
    return [w for w in _WORD_RE.findall(text.lower()) if w not in stop]


@dataclass
class Split:
    """One split: texts, int64 labels (index into Dataset.label_names) and stable doc ids."""

    texts: list[str]
    labels: np.ndarray
    doc_ids: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices: Iterable[int]) -> "Split":
        idx = np.asarray(list(indices), dtype=np.int64)
        return Split([self.texts[i] for i in idx], self.labels[idx], [self.doc_ids[i] for i in idx])


@dataclass
class Dataset:
    """The three splits of one protocol; shared by the per-process cache, so read-only."""

    train: Split
    val: Split
    test: Split
    label_names: list[str]
    protocol: str

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise DataError(f"split: unknown split {name!r}; choose train, val or test")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in ("train", "val", "test")}


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise DataError(f"protocol: unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def load_dataset(protocol: str = "seed", data_home: str | os.PathLike | None = None, seed: int = 42,
                 val_size: float = 0.2, min_content_words: int = 5, limit_train: int = 0) -> Dataset:
    """Train/val/test of the given protocol (see the module docstring); cached per process.

    ``limit_train > 0`` keeps the first N training documents after the split. ``raw`` ignores
    ``min_content_words``. Raises DataMissingError when the corpus is absent, DataError on bad args.
    """
    _check_protocol(protocol)
    if not 0 < val_size < 1:
        raise DataError(f"val_size: must be between 0 and 1 (exclusive), got {val_size!r}")
    if limit_train < 0 or min_content_words < 0:
        raise DataError("limit_train and min_content_words must be >= 0")
    home = resolve_data_home(data_home)
    min_words = int(min_content_words) if protocol == "seed" else 0
    return _load_dataset(str(home), _cache_key(home), protocol, int(seed), float(val_size), min_words,
                         int(limit_train))


@functools.lru_cache(maxsize=16)
def _load_dataset(home: str, key: tuple[int, int], protocol: str, seed: int, val_size: float,
                  min_words: int, limit_train: int) -> Dataset:
    from sklearn.model_selection import train_test_split

    train_all = _kept(_load_subset(home, key, "train", protocol), min_words)
    test_sub = _load_subset(home, key, "test", protocol)
    test = _kept(test_sub, min_words)
    try:
        train_idx, val_idx = train_test_split(np.arange(len(train_all)), test_size=val_size,
                                              stratify=train_all.labels, random_state=seed)
    except ValueError as exc:
        raise DataError(f"cannot split the training set ({exc})") from None
    train = train_all.take(train_idx)
    if limit_train:
        train = train.take(range(min(limit_train, len(train))))
    return Dataset(train, train_all.take(val_idx), test, list(test_sub.label_names), protocol)


def _kept(sub: _Subset, min_words: int) -> Split:
    """The subset as a Split, without documents that have fewer than `min_words` content words."""
    split = Split(sub.texts, sub.labels, sub.doc_ids)
    if min_words <= 0:
        return split.take(range(len(split)))
    return split.take(i for i, text in enumerate(sub.texts) if len(content_words(text)) >= min_words)


def get_documents(doc_ids: Iterable[str], protocol: str = "seed",
                  data_home: str | os.PathLike | None = None) -> dict[str, str]:
    """Texts (as the protocol shows them) of the given doc ids, dropped documents included.

    Unknown ids are left out of the returned dict.
    """
    _check_protocol(protocol)
    home = resolve_data_home(data_home)
    index = _doc_index(str(home), _cache_key(home), protocol)
    return {doc_id: index[doc_id] for doc_id in map(str, doc_ids) if doc_id in index}


@functools.lru_cache(maxsize=4)
def _doc_index(home: str, key: tuple[int, int], protocol: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for subset in ("train", "test"):
        sub = _load_subset(home, key, subset, protocol)
        index.update(zip(sub.doc_ids, sub.texts))
    return index


class Document(NamedTuple):
    doc_id: str
    label: str
    text: str


def sample_documents(label: str | int, n: int = 5, split: str = "train", protocol: str = "seed",
                     data_home: str | os.PathLike | None = None, seed: int = 0) -> list[Document]:
    """Up to `n` random documents of one class (name or index) from a split of the protocol."""
    data = load_dataset(protocol, data_home)
    names = data.label_names
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not 0 <= label < len(names):
            raise DataError(f"label: index {label} out of range 0..{len(names) - 1}")
        index = int(label)
    elif label in names:
        index = names.index(label)
    else:
        raise DataError(f"label: unknown class {label!r}")
    part = data.split(split)
    rows = np.flatnonzero(part.labels == index)
    chosen = np.random.default_rng(seed).choice(rows, size=min(max(n, 0), len(rows)), replace=False)
    return [Document(part.doc_ids[i], names[index], part.texts[i]) for i in chosen]


# ---- statistics -------------------------------------------------------------------------------
@dataclass
class DatasetStats:
    """Corpus statistics of one protocol (whole corpus, train+test, before dropping).

    Words are whitespace tokens (``str.split()``); stds are sample stds (ddof=1, as pandas'
    ``describe``); quartiles and median use numpy's default (linear) method. ``top_words`` counts
    content words of two letters or more (no ``s``/``t`` from "it's"/"don't") per class on the
    protocol's training split; ``splits`` are the protocol's split sizes.
    """

    protocol: str
    n_docs: int
    total_words: int
    total_chars: int
    class_counts: dict[str, int]
    class_count_stats: dict[str, Any]
    words_per_doc: dict[str, float | int]
    splits: dict[str, int]
    top_words: dict[str, list[list[Any]]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_stats(data_home: str | os.PathLike | None = None, protocol: str = "seed",
                  top_k: int = 10) -> DatasetStats:
    """DatasetStats of the protocol; cached in-process and in ``<data_home>/newsclf_stats_<protocol>.json``.

    The JSON cache is keyed on the corpus cache's mtime and size, top_k and a version number.
    """
    _check_protocol(protocol)
    home = resolve_data_home(data_home)
    return _compute_stats(str(home), _cache_key(home), protocol, int(top_k))


@functools.lru_cache(maxsize=8)
def _compute_stats(home: str, key: tuple[int, int], protocol: str, top_k: int) -> DatasetStats:
    from newsclf.store import read_json, write_json_atomic

    path = Path(home) / STATS_FILE.format(protocol=protocol)
    stamp = [STATS_VERSION, *key, top_k]
    cached = read_json(path)
    if isinstance(cached, dict) and cached.get("key") == stamp:
        with contextlib.suppress(TypeError):
            return DatasetStats(**cached["stats"])
    stats = _stats_from_corpus(home, key, protocol, top_k)
    with contextlib.suppress(OSError):  # a read-only data home still gets its stats
        write_json_atomic(path, {"key": stamp, "stats": stats.to_dict()})
    return stats


def _stats_from_corpus(home: str, key: tuple[int, int], protocol: str, top_k: int) -> DatasetStats:
    subsets = [_load_subset(home, key, s, protocol) for s in ("train", "test")]
    names = subsets[0].label_names
    texts = [t for sub in subsets for t in sub.texts]
    labels = np.concatenate([sub.labels for sub in subsets])
    counts = np.bincount(labels, minlength=len(names))
    words = np.array([len(t.split()) for t in texts], dtype=np.int64)
    data = _load_dataset(home, key, protocol, 42, 0.2, 5 if protocol == "seed" else 0, 0)
    return DatasetStats(
        protocol=protocol, n_docs=len(texts), total_words=int(words.sum()),
        total_chars=int(sum(len(t) for t in texts)),
        class_counts={name: int(c) for name, c in zip(names, counts)},
        class_count_stats=dict(min=int(counts.min()), max=int(counts.max()), mean=float(counts.mean()),
                               std=float(counts.std(ddof=1)), min_class=names[int(counts.argmin())],
                               max_class=names[int(counts.argmax())]),
        words_per_doc=_describe(words), splits=data.sizes(),
        top_words=top_words(data.train, names, top_k))


def _describe(values: np.ndarray) -> dict[str, float | int]:
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return dict(mean=float(values.mean()), median=float(median), std=float(values.std(ddof=1)),
                min=int(values.min()), max=int(values.max()), q25=float(q25), q75=float(q75))


def top_words(split: Split, label_names: list[str], top_k: int = 10) -> dict[str, list[list[Any]]]:
    """The `top_k` most frequent content words (2+ letters) per class as [word, count], ties by word."""
    counters: list[Counter] = [Counter() for _ in label_names]
    for text, label in zip(split.texts, split.labels):
        counters[int(label)].update(w for w in content_words(text) if len(w) > 1)
    return {name: [[w, int(c)] for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]]
            for name, counter in zip(label_names, counters)}
