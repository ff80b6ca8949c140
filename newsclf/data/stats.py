"""Corpus statistics: DatasetStats, compute_stats, precompute_stats, top_words.

Stats are cached in process and as ``<data_home>/newsclf_stats_<protocol>.json`` (plain JSON,
read without following a link), keyed on the corpus cache's identity (mtime_ns, size), top_k and
STATS_VERSION: a re-import invalidates them.
`newsclf data import` precomputes both protocols, so a cold dashboard reads JSON (milliseconds)
instead of parsing the corpus (seconds).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from newsclf.config import PROTOCOLS, resolve_data_home
from newsclf.data.corpus import cache_key, register_cache
from newsclf.data.dataset import Split, check_protocol, load_dataset_keyed, load_subset, content_words
from newsclf.runschema import DamagedError, parse_stats
from newsclf.safeio import read_capped

STATS_FILE = "newsclf_stats_{protocol}.json"
STATS_VERSION = 3  # 3: keyed on newsclf_corpus.npz (2 was keyed on sklearn's .pkz)
MAX_STATS_BYTES = 1 << 20  # the real file is ~10 kB


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
    check_protocol(protocol)
    home = resolve_data_home(data_home)
    return _compute_stats(str(home), cache_key(home), protocol, int(top_k))


def precompute_stats(data_home: str | os.PathLike | None = None, top_k: int = 10) -> dict[str, DatasetStats]:
    """compute_stats of every protocol, so that a cold dashboard page only reads JSON (run after an import)."""
    return {protocol: compute_stats(data_home, protocol, top_k) for protocol in PROTOCOLS}


@register_cache
@functools.lru_cache(maxsize=8)
def _compute_stats(home: str, key: tuple[int, int], protocol: str, top_k: int) -> DatasetStats:
    from newsclf.store import write_json_atomic

    path = Path(home) / STATS_FILE.format(protocol=protocol)
    stamp = [STATS_VERSION, *key, top_k]
    cached = _read_json_here(path)
    if isinstance(cached, dict) and cached.get("key") == stamp:
        with contextlib.suppress(DamagedError):  # a crafted or stale cache is recomputed and replaced
            stats = parse_stats(cached.get("stats"))
            if stats["protocol"] == protocol:
                return DatasetStats(**stats)
    stats = _stats_from_corpus(home, key, protocol, top_k)
    with contextlib.suppress(OSError):  # a read-only data home still gets its stats
        write_json_atomic(path, {"key": stamp, "stats": stats.to_dict()})
    return stats


def _read_json_here(path: Path) -> Any:
    """JSON of a regular file in the data home, opened without following a link; None if anything is off.

    The data home is untrusted: a link is not followed, a huge file not read, bad JSON ignored
    (the stats are then recomputed and the file replaced, never written through).
    """
    try:
        return json.loads(read_capped(path, MAX_STATS_BYTES, nofollow=True))  # never blocks on a FIFO
    except (OSError, ValueError, RecursionError):
        return None


def _stats_from_corpus(home: str, key: tuple[int, int], protocol: str, top_k: int) -> DatasetStats:
    subsets = [load_subset(home, key, s, protocol) for s in ("train", "test")]
    names = subsets[0].label_names
    texts = [t for sub in subsets for t in sub.texts]
    labels = np.concatenate([sub.labels for sub in subsets])
    counts = np.bincount(labels, minlength=len(names))
    words = np.array([len(t.split()) for t in texts], dtype=np.int64)
    data = load_dataset_keyed(home, key, protocol, 42, 0.2, 5 if protocol == "seed" else 0, 0)
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
