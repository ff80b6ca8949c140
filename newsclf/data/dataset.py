"""The data protocols on top of the cached corpus: load_dataset, Split, Dataset, documents.

Protocols (one switch, ``RunConfig.protocol``):

- ``seed`` (default): headers, footers and quotes removed; documents with fewer than
  ``min_content_words`` content words (lowercase alphabetic words not in sklearn's English stop
  words) dropped from train and test; stratified 80/20 train/val split of the bydate train set
  (``random_state=seed``); the bydate test set is the test set (about 8.6k / 2.1k / 7.1k).
- ``raw``: headers kept, nothing removed or dropped, same split.

The texts come from newsclf's own corpus cache (newsclf.data.cache: no pickle), and the protocol's
removal and order are sklearn's ``fetch_20newsgroups`` defaults reproduced exactly (`load_subset`),
so every document, its text and its position are what sklearn would give.
Document ids are stable strings ``<train|test>/<class>/<file>`` (e.g. ``train/sci.space/61234``).
Loaded datasets are cached per process (keyed on the cache file's mtime and size); treat what
they return as read-only. Loading never downloads: missing data raises DataMissingError.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from newsclf.config import PROTOCOLS, resolve_data_home
from newsclf.data.cache import RawCorpus, read_cache
from newsclf.data.corpus import cache_key, register_cache
from newsclf.data.errors import DataError

REMOVE = {"seed": ("headers", "footers", "quotes"), "raw": ()}
SKLEARN_SHUFFLE_SEED = 42  # fetch_20newsgroups' default random_state (shuffle=True)
_WORD_RE = re.compile(r"[a-z]+")


class _Subset(NamedTuple):
    texts: list[str]
    labels: np.ndarray  # (N,) int64
    doc_ids: list[str]
    label_names: list[str]


@register_cache
@functools.lru_cache(maxsize=2)
def _raw_corpus(home: str, key: tuple[int, int]) -> RawCorpus:
    """newsclf's verified corpus cache (never sklearn's pickle); `key` ties it to the file's identity."""
    return read_cache(Path(home))


@register_cache
@functools.lru_cache(maxsize=8)
def load_subset(home: str, key: tuple[int, int], subset: str, protocol: str) -> _Subset:
    """One bydate subset exactly as ``fetch_20newsgroups(subset=..., remove=REMOVE[protocol])`` returns it.

    sklearn 1.9's steps on its cache (latin1 texts in load_files order): strip headers, then footers,
    then quotes (its public functions, in that order, each on every text), then shuffle with
    ``check_random_state(42)`` (its default ``shuffle=True, random_state=42``): a RandomState(42)
    shuffle of ``arange(N)`` indexing texts, targets and file names alike.
    """
    raw = _raw_corpus(home, key).subset(subset)
    texts = raw.texts
    for part, strip in zip(("headers", "footers", "quotes"), _strippers()):
        if part in REMOVE[protocol]:
            texts = [strip(text) for text in texts]
    order = np.arange(len(raw.target))
    np.random.RandomState(SKLEARN_SHUFFLE_SEED).shuffle(order)
    return _Subset([texts[i] for i in order], raw.target[order], [raw.doc_ids[i] for i in order],
                   list(_raw_corpus(home, key).target_names))


def _strippers():
    from sklearn.datasets._twenty_newsgroups import (strip_newsgroup_footer, strip_newsgroup_header,
                                                     strip_newsgroup_quoting)

    return strip_newsgroup_header, strip_newsgroup_footer, strip_newsgroup_quoting


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


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise DataError(f"protocol: unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def load_dataset(protocol: str = "seed", data_home: str | os.PathLike | None = None, seed: int = 42,
                 val_size: float = 0.2, min_content_words: int = 5, limit_train: int = 0) -> Dataset:
    """Train/val/test of the given protocol (see the module docstring); cached per process.

    ``limit_train > 0`` keeps the first N training documents after the split. ``raw`` ignores
    ``min_content_words``. Raises DataMissingError when the corpus is absent, DataError on bad args.
    """
    check_protocol(protocol)
    if not 0 < val_size < 1:
        raise DataError(f"val_size: must be between 0 and 1 (exclusive), got {val_size!r}")
    if limit_train < 0 or min_content_words < 0:
        raise DataError("limit_train and min_content_words must be >= 0")
    home = resolve_data_home(data_home)
    min_words = int(min_content_words) if protocol == "seed" else 0
    return load_dataset_keyed(str(home), cache_key(home), protocol, int(seed), float(val_size), min_words,
                         int(limit_train))


@register_cache
@functools.lru_cache(maxsize=16)
def load_dataset_keyed(home: str, key: tuple[int, int], protocol: str, seed: int, val_size: float,
                  min_words: int, limit_train: int) -> Dataset:
    from sklearn.model_selection import train_test_split

    train_all = _kept(load_subset(home, key, "train", protocol), min_words)
    test_sub = load_subset(home, key, "test", protocol)
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
    check_protocol(protocol)
    home = resolve_data_home(data_home)
    index = _doc_index(str(home), cache_key(home), protocol)
    return {doc_id: index[doc_id] for doc_id in map(str, doc_ids) if doc_id in index}


@register_cache
@functools.lru_cache(maxsize=4)
def _doc_index(home: str, key: tuple[int, int], protocol: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for subset in ("train", "test"):
        sub = load_subset(home, key, subset, protocol)
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

