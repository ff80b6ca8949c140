"""General statistics of any corpus's train/val/test splits: `dataset_stats`, and `corpus_stats` for an
imported corpus (cached as ``<data_home>/corpora/<name>.stats.json``, keyed on its file's sha256).

The Dataset page's questions for a corpus someone brings: how balanced are the classes (per split),
how long are the texts, which words mark each class, how many texts are very short, and are there
duplicates, inside a split, across splits (a test text also in train inflates test scores), or with
conflicting labels. 20 Newsgroups keeps its own `compute_stats` (newsclf.data.stats: the whole corpus
before the protocol's dropping, the study's exact numbers); `dataset_stats` works on its Dataset too.

Definitions: words are whitespace tokens (``str.split()``), as in newsclf.data.stats, summarised by
the same `_describe`; a text is *very short* below SHORT_WORDS words; duplicates compare texts
lowercased with whitespace collapsed; top words are content words (newsclf.data.dataset.content_words,
2+ letters) per class over the training split, a seeded sample of TOP_WORDS_DOCS documents when it
is larger (said in `top_words_docs`).
"""
from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from newsclf.config import resolve_data_home
from newsclf.data.corpora import corpora_dir, corpus_path, file_key, load_corpus
from newsclf.data.corpusfile import read_file
from newsclf.data.dataset import Dataset, Split
from newsclf.data.stats import _describe

STATS_VERSION = 1
SHORT_WORDS = 5
TOP_WORDS_DOCS = 20_000
EXAMPLES = 5
MAX_STATS_BYTES = 32 << 20  # 1,000 classes of top words and counts stay far below
SPLITS = ("train", "val", "test")


@dataclass
class CorpusStats:
    """Statistics of a corpus's three splits (module docstring). `class_counts[name][split]`."""

    corpus: str
    n_docs: int
    n_classes: int
    splits: dict[str, int]
    class_counts: dict[str, dict[str, int]]
    class_balance: dict[str, Any]
    words_per_doc: dict[str, float | int]
    chars_per_doc: dict[str, float | int]
    short_docs: dict[str, Any]
    duplicates: dict[str, Any]
    dropped: dict[str, int]
    top_words: dict[str, list[list[Any]]]
    top_words_docs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dataset_stats(data: Dataset, corpus: str = "", top_k: int = 10, dropped: dict[str, int] | None = None,
                  seed: int = 0) -> CorpusStats:
    """CorpusStats of a Dataset's splits (module docstring); `dropped` comes from the import's metadata."""
    parts = [data.split(s) for s in SPLITS]
    names = list(data.label_names)
    per = np.zeros((3, len(names)), np.int64)
    for i, part in enumerate(parts):
        per[i] = np.bincount(part.labels, minlength=len(names))
    totals = per.sum(axis=0)
    texts = [t for part in parts for t in part.texts]
    words, keys = np.empty(len(texts), np.int64), []
    for i, text in enumerate(texts):  # one split per text serves the word count and the duplicate key
        tokens = text.split()
        words[i] = len(tokens)
        keys.append(hash(" ".join(tokens).lower()))
    chars = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    bounds = np.cumsum([0] + [len(p) for p in parts]).tolist()
    return CorpusStats(
        corpus=corpus, n_docs=len(texts), n_classes=len(names), splits=dict(zip(SPLITS, map(len, parts))),
        class_counts={n: {**dict(zip(SPLITS, per[:, i].tolist())), "total": int(totals[i])} for i, n in enumerate(names)},
        class_balance=_balance(totals, names), words_per_doc=_describe(words), chars_per_doc=_describe(chars),
        short_docs=_short(parts, words),
        duplicates=_duplicates(parts, [keys[bounds[k]:bounds[k + 1]] for k in range(3)]), dropped=dict(dropped or {}),
        top_words_docs=min(len(parts[0]), TOP_WORDS_DOCS),
        top_words=class_top_words(_sample(parts[0], TOP_WORDS_DOCS, seed), names, top_k))


def class_top_words(split: Split, names: list[str], top_k: int = 10, chunk: int = 2000) -> dict[str, list[list[Any]]]:
    """newsclf.data.stats.top_words, the same result, counted faster: each class's texts are lowercased
    and tokenised a chunk at a time (joined with a space, so no word spans two texts) and counted in C;
    stop words and one-letter words are removed from the counts, not from every token."""
    from newsclf.data.dataset import _WORD_RE, _stop_words

    stop = _stop_words()
    labels = np.asarray(split.labels)
    out = {}
    for code, name in enumerate(names):
        rows = np.flatnonzero(labels == code)
        counter: Counter = Counter()
        for start in range(0, len(rows), chunk):
            counter.update(_WORD_RE.findall(" ".join(split.texts[i] for i in rows[start:start + chunk]).lower()))
        words = ((w, c) for w, c in counter.items() if len(w) > 1 and w not in stop)
        out[name] = [[w, int(c)] for w, c in sorted(words, key=lambda kv: (-kv[1], kv[0]))[:top_k]]
    return out


def _balance(totals: np.ndarray, names: list[str]) -> dict[str, Any]:
    low, high = int(totals.argmin()), int(totals.argmax())
    return dict(min=int(totals[low]), max=int(totals[high]), mean=float(totals.mean()),
                std=float(totals.std(ddof=1)) if len(totals) > 1 else 0.0, min_class=names[low], max_class=names[high],
                ratio=float(totals[high] / max(totals[low], 1)))


def _short(parts: list[Split], words: np.ndarray) -> dict[str, Any]:
    short = words < SHORT_WORDS
    bounds = np.cumsum([0] + [len(p) for p in parts])
    ids = [i for part in parts for i in part.doc_ids]
    return {"threshold_words": SHORT_WORDS, "count": int(short.sum()),
            "by_split": {s: int(short[bounds[k]:bounds[k + 1]].sum()) for k, s in enumerate(SPLITS)},
            "examples": [ids[i] for i in np.flatnonzero(short)[:EXAMPLES]]}


def _duplicates(parts: list[Split], keys: list[list[int]]) -> dict[str, Any]:
    """Exact duplicates after lowercasing and collapsing whitespace (`keys`: 64-bit hashes, in process)."""
    within = {s: len(k) - len(set(k)) for s, k in zip(SPLITS, keys)}
    sets = [set(k) for k in keys]
    across = {f"{SPLITS[a]}-{SPLITS[b]}": sum(1 for k in keys[b] if k in sets[a]) for a, b in ((0, 1), (0, 2), (1, 2))}
    first: dict[int, int] = {}
    conflicts: set[int] = set()
    for part, part_keys in zip(parts, keys):
        for key, label in zip(part_keys, part.labels.tolist()):
            if first.setdefault(key, label) != label:
                conflicts.add(key)
    examples = [parts[b].doc_ids[j] for b in (1, 2) for j, k in enumerate(keys[b]) if k in sets[0]][:EXAMPLES]
    return {"within_split": within, "across_splits": across, "conflicting_labels": len(conflicts),
            "examples_also_in_train": examples}


def _sample(split: Split, n: int, seed: int) -> Split:
    if len(split) <= n:
        return split
    return split.take(np.sort(np.random.default_rng(seed).choice(len(split), size=n, replace=False)))


# ---- an imported corpus, with its JSON cache ------------------------------------------------------------
def corpus_stats(name: str, data_home: str | os.PathLike | None = None, top_k: int = 10) -> CorpusStats:
    """CorpusStats of an imported corpus; cached beside it, keyed on [version, file sha256, inode, mtime,
    size, top_k] (the file is verified when the stats are computed, not when they are read back)."""
    from newsclf.safeio import read_capped, replace_bytes

    home = resolve_data_home(data_home)
    path = corpus_path(name, home)
    key = file_key(path, name)
    meta, sha = read_file(path, f"the corpus file {path}", meta_only=True)
    cache = corpora_dir(home) / f"{name}.stats.json"
    stamp = [STATS_VERSION, sha, *key, int(top_k)]  # a rewritten file (damaged, replaced) is loaded again
    with contextlib.suppress(OSError, ValueError, RecursionError, TypeError):
        cached = json.loads(read_capped(cache, MAX_STATS_BYTES, nofollow=True))
        if isinstance(cached, dict) and cached.get("key") == stamp:
            return _parse(cached.get("stats"))
    data = load_corpus(name, home)
    if data.checksum != meta.data_sha256:  # replaced between the two reads: describe what was loaded
        stamp = [STATS_VERSION, "", 0, 0, 0, int(top_k)]
    stats = dataset_stats(data, name, top_k, {"empty_text": meta.dropped_empty_text,
                                              "missing_label": meta.dropped_missing_label})
    with contextlib.suppress(OSError):  # a read-only data home still gets its stats
        replace_bytes(cache, json.dumps({"key": stamp, "stats": stats.to_dict()}).encode())
    return stats


def _schema() -> dict[str, Any]:
    from newsclf.runschema import MAX_COUNT, dict_of, list_of, mapping, number, text

    count = number(0, MAX_COUNT, integer=True, optional=False)
    real = number(0, MAX_COUNT, optional=False)
    ids = list_of(text(1000, optional=False), EXAMPLES, optional=False)
    word = list_of(lambda v, f: text(200, optional=False)(v, f) if isinstance(v, str) else count(v, f), 2,
                   optional=False)
    return {
        "corpus": text(64, optional=False), "n_docs": count, "n_classes": count, "top_words_docs": count,
        "splits": dict_of(count, 3), "class_counts": dict_of(dict_of(count, 4)), "dropped": dict_of(count, 4),
        "class_balance": mapping({"min": count, "max": count, "mean": real, "std": real, "ratio": real,
                                  "min_class": text(500, optional=False), "max_class": text(500, optional=False)},
                                 optional=False),
        "words_per_doc": mapping({k: real for k in DESCRIBED}, optional=False),
        "chars_per_doc": mapping({k: real for k in DESCRIBED}, optional=False),
        "short_docs": mapping({"threshold_words": count, "count": count, "by_split": dict_of(count, 3),
                               "examples": ids}, optional=False),
        "duplicates": mapping({"within_split": dict_of(count, 3), "across_splits": dict_of(count, 3),
                               "conflicting_labels": count, "examples_also_in_train": ids}, optional=False),
        "top_words": dict_of(list_of(word, 1000, optional=False)),
    }


DESCRIBED = ("mean", "median", "std", "min", "max", "q25", "q75")
_NESTED = {"class_balance": ("min", "max", "mean", "std", "ratio", "min_class", "max_class"),
           "words_per_doc": DESCRIBED, "chars_per_doc": DESCRIBED,
           "short_docs": ("threshold_words", "count", "by_split", "examples"),
           "duplicates": ("within_split", "across_splits", "conflicting_labels", "examples_also_in_train")}


def _parse(obj: Any) -> CorpusStats:
    """CorpusStats from the cached JSON, every field checked (runschema); ValueError when it is not one
    (the stats are then recomputed and the file replaced)."""
    from newsclf.runschema import DamagedError, parse

    schema = _schema()
    try:
        stats = parse(schema, obj)
    except DamagedError as exc:
        raise ValueError(str(exc)) from None
    if set(stats) != set(schema) or any(v is None for v in stats.values()) or any(
            set(stats[k]) != set(keys) or any(v is None for v in stats[k].values()) for k, keys in _NESTED.items()):
        raise ValueError("incomplete stats cache")
    return CorpusStats(**stats)
