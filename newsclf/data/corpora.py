"""Named corpora in the data home: 20 Newsgroups (built in, the default) and imported tables.

A corpus is named by a safe identifier (NAME_RULE) and lives in ``<data_home>/corpora/<name>.npz``
(newsclf.data.corpusfile); ``20newsgroups`` is the built-in one, read from newsclf's 20NG cache with
its protocols (newsclf.data.dataset). This module is the API the rest of newsclf uses:

- `load_corpus(name, data_home, protocol=, seed=, limit_train=)` -> `CorpusDataset`, the same
  train/val/test `Dataset` training uses, plus the corpus's name and checksum. For 20 Newsgroups it
  is exactly `load_dataset(protocol, ...)`; an imported corpus has fixed splits (chosen at import)
  and ignores protocol, seed, val_size and min_content_words.
- `corpus_identity(name, data_home)` -> `CorpusRef(name, sha256)`: what a run records (an imported
  corpus's data_sha256: its documents, labels and splits, whatever its version).
- `list_corpora(data_home)` -> `CorpusInfo` rows (metadata only: fast, not checksum-verified).
- `corpus_documents(name, doc_ids, data_home)`: texts by id (any split).

Loaded corpora are cached per process, keyed on the file's identity (inode, mtime, size), and
cleared by `clear_caches` like the 20NG ones; treat what they return as read-only.
"""
from __future__ import annotations

import functools
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from newsclf.config import resolve_data_home
from newsclf.data.corpus import cache_key, corpus_available, register_cache
from newsclf.data.corpusfile import StoredCorpus, read_file, strings
from newsclf.data.corpusmeta import CorpusMeta
from newsclf.data.dataset import Dataset, Split, check_protocol, get_documents, load_dataset
from newsclf.data.errors import CACHE_FILE, DataError, DataMissingError

DEFAULT_CORPUS = "20newsgroups"
CORPORA_DIR = "corpora"
TABLE_PROTOCOL = "imported"  # Dataset.protocol of an imported corpus: its splits are the import's
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
NAME_RULE = "1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or a digit"


@dataclass
class CorpusDataset(Dataset):
    """A Dataset that knows its corpus: `corpus` (name) and `checksum`, the sha256 of its documents,
    labels and splits (an imported corpus's data_sha256; 20 Newsgroups' cache sha256, which with
    the protocol, seed and limits fixes its documents)."""

    corpus: str = DEFAULT_CORPUS
    checksum: str = ""


class CorpusRef(NamedTuple):
    name: str
    sha256: str


class CorpusInfo(NamedTuple):
    """One row of `list_corpora`: `meta` is None for 20 Newsgroups and for a file that cannot be read,
    whose reason is `problem`."""

    name: str
    builtin: bool
    available: bool
    sha256: str
    meta: CorpusMeta | None
    problem: str = ""


def check_name(name: str, flag: str = "--name") -> str:
    """`name` when it is a corpus name (NAME_RULE); DataError otherwise."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        hint = re.sub(r"[^a-z0-9_-]+", "-", str(name).lower()).strip("-_")[:64]
        example = f" (e.g. {hint!r})" if hint and NAME_RE.fullmatch(hint) else ""
        raise DataError(f"{flag}: {str(name)[:80]!r} is not a corpus name: use {NAME_RULE}{example}")
    return name


def corpora_dir(data_home: str | os.PathLike | None = None) -> Path:
    return resolve_data_home(data_home) / CORPORA_DIR


def corpus_path(name: str, data_home: str | os.PathLike | None = None) -> Path:
    """Where an imported corpus lives (its name checked; 20newsgroups has no such file)."""
    check_name(name, "corpus")
    if name == DEFAULT_CORPUS:
        raise DataError(f"corpus: {DEFAULT_CORPUS!r} is built in; it has no table file")
    return corpora_dir(data_home) / f"{name}.npz"


def file_key(path: Path, name: str) -> tuple[int, int, int]:
    """(inode, mtime_ns, size) of a corpus file; DataMissingError when absent, DataError when not a file."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise DataMissingError(f"no corpus named {name!r} in {path.parent.parent}: import one with "
                               f"`python -m newsclf data import-table PATH --name {name} --text COL --label COL`, "
                               f"or see `python -m newsclf data list`") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"the corpus file {path} is a link or not a regular file; links are never followed")
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_corpus(name: str, data_home: str | os.PathLike | None = None) -> StoredCorpus:
    """The imported corpus's verified file (not cached: `load_corpus` caches the Dataset)."""
    path = corpus_path(name, data_home)
    file_key(path, name)
    try:
        stored = read_file(path, f"the corpus file {path}")
    except FileNotFoundError:
        file_key(path, name)
        raise
    if stored.meta.name != name:
        raise DataError(f"the corpus file {path} holds the corpus {stored.meta.name!r} (renamed?): "
                        f"import the table again under the name you want")
    return stored


def load_corpus(name: str = DEFAULT_CORPUS, data_home: str | os.PathLike | None = None, *, protocol: str = "seed",
                seed: int = 42, val_size: float = 0.2, min_content_words: int = 5,
                limit_train: int = 0) -> CorpusDataset:
    """Train/val/test of a corpus (module docstring); DataMissingError when it is not there."""
    check_name(name, "corpus")
    check_protocol(protocol)
    if limit_train < 0:
        raise DataError("limit_train must be >= 0")
    home = resolve_data_home(data_home)
    if name == DEFAULT_CORPUS:
        data = load_dataset(protocol, home, seed=seed, val_size=val_size, min_content_words=min_content_words,
                            limit_train=limit_train)
        return CorpusDataset(data.train, data.val, data.test, data.label_names, data.protocol,
                             corpus=name, checksum=_builtin_sha256(str(home), cache_key(home)))
    path = corpus_path(name, home)
    return _load_table(str(home), name, file_key(path, name), int(limit_train))


@register_cache
@functools.lru_cache(maxsize=2)
def _load_table(home: str, name: str, key: tuple[int, int, int], limit_train: int) -> CorpusDataset:
    stored = read_corpus(name, home)
    a = stored.arrays
    texts, ids = strings(a["text"], a["offsets"]), strings(a["ids"], a["id_offsets"])  # decoded once, in C
    names, checksum, order, split, target = stored.names, stored.meta.data_sha256, a["order"], a["split"], a["target"]
    del stored, a  # the arrays go before the splits are built: the texts are held once, as str
    parts = []
    for code in (0, 1, 2):
        rows = order[split[order] == code]
        parts.append(Split([texts[i] for i in rows.tolist()], target[rows].astype(np.int64),
                           [ids[i] for i in rows.tolist()]))
    if limit_train:
        parts[0] = parts[0].take(range(min(limit_train, len(parts[0]))))
    return CorpusDataset(*parts, names, TABLE_PROTOCOL, corpus=name, checksum=checksum)


@register_cache
@functools.lru_cache(maxsize=4)
def _builtin_sha256(home: str, key: tuple[int, int]) -> str:
    """The sha256 recorded in the 20NG cache (verified when the corpus is loaded)."""
    from newsclf.data.cache import KEYS
    from newsclf.safeio import open_regular
    from newsclf.safenpz import NpzError, load_npz

    try:
        with open_regular(Path(home) / CACHE_FILE, nofollow=True) as fh:
            return str(load_npz(fh, KEYS, os.fstat(fh.fileno()).st_size, stored_only=True, only=("sha256",))["sha256"])
    except (OSError, NpzError):
        return ""


def corpus_identity(name: str = DEFAULT_CORPUS, data_home: str | os.PathLike | None = None) -> CorpusRef:
    """(name, sha256 of its file) without loading the texts: what a run records about its corpus."""
    check_name(name, "corpus")
    home = resolve_data_home(data_home)
    if name == DEFAULT_CORPUS:
        return CorpusRef(name, _builtin_sha256(str(home), cache_key(home)))
    path = corpus_path(name, home)
    file_key(path, name)
    meta, _ = read_file(path, f"the corpus file {path}", meta_only=True)
    return CorpusRef(name, meta.data_sha256)


def corpus_documents(name: str, doc_ids: Iterable[str], data_home: str | os.PathLike | None = None,
                     protocol: str = "seed") -> dict[str, str]:
    """Texts of the given ids (unknown ids left out); for 20 Newsgroups as `protocol` shows them."""
    if name == DEFAULT_CORPUS:
        return get_documents(doc_ids, protocol, data_home)
    data = load_corpus(name, data_home)
    index = {}
    for part in (data.train, data.val, data.test):
        index.update(zip(part.doc_ids, part.texts))
    return {i: index[i] for i in map(str, doc_ids) if i in index}


def list_corpora(data_home: str | os.PathLike | None = None) -> list[CorpusInfo]:
    """20 Newsgroups first, then every imported corpus by name (a damaged one with its problem)."""
    home = resolve_data_home(data_home)
    builtin = corpus_available(home)
    rows = [CorpusInfo(DEFAULT_CORPUS, True, builtin, _builtin_sha256(str(home), cache_key(home)) if builtin else "",
                       None)]
    folder = home / CORPORA_DIR
    try:
        entries = sorted(os.listdir(folder)) if stat.S_ISDIR(os.lstat(folder).st_mode) else []
    except OSError:
        entries = []
    for entry in entries:
        name = entry[:-4] if entry.endswith(".npz") else ""
        if not NAME_RE.fullmatch(name) or name == DEFAULT_CORPUS:
            continue  # temp files (.name.xxx.tmp), stats caches, strangers
        try:
            meta, sha = read_file(folder / entry, f"the corpus file {folder / entry}", meta_only=True)
            problem = "" if meta.name == name else f"it holds the corpus {meta.name!r} (renamed?)"
            rows.append(CorpusInfo(name, False, not problem, sha, meta, problem))
        except (DataError, OSError) as exc:
            rows.append(CorpusInfo(name, False, False, "", None, str(exc)[:200]))
    return rows
