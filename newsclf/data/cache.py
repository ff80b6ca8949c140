"""newsclf's corpus cache ``<data_home>/newsclf_corpus.npz``: plain numpy arrays, never a pickle.

A data home can be a shared drive, so the cache is untrusted input: it is opened without
following a link (regular files only), loaded with ``allow_pickle=False`` (an object array, or a
pickle disguised as .npz, is refused), its format version, dtypes and shapes are checked, and a
sha256 of its content must match. Anything wrong raises DataError "the corpus cache ... is
damaged (...): re-import ...".

Arrays (N documents, train first, each split in scikit-learn's cache order, i.e. ``load_files``:
folders and files sorted, then shuffled with RandomState(0)):

    format        int64 ()      FORMAT_VERSION
    sha256        <U64 ()       sha256 of the content arrays below (see `content_digest`)
    text          uint8 (B,)    every document's text concatenated, UTF-8
    offsets       int64 (N+1,)  document i is text[offsets[i]:offsets[i+1]] in *characters*
    target        int64 (N,)    index into target_names
    split         uint8 (N,)    0 train, 1 test
    doc_ids       <U (N,)       ``train/sci.space/61234``
    target_names  <U (20,)      the class folders, sorted

Why .npz and not JSON lines + gzip: one uncompressed blob decodes in a single C call and is
sliced into documents, ~0.1 s for the 35 MB corpus, while JSON parses 18.8k escaped strings and
gzip costs ~1 s to write and ~0.2 s to read; uncompressed costs ~40 MB of disk, which the data
home can afford. Texts are not stored as a numpy unicode array: that is fixed-width UCS-4 (the
longest post times 4 bytes for every document, gigabytes).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from newsclf.data.archive import SPLIT_FOLDERS, Corpus
from newsclf.data.errors import CACHE_FILE, DataError, DataMissingError, damaged_message, missing_message

FORMAT_VERSION = 1
MAX_CACHE_BYTES = 2 << 30  # the 20 Newsgroups cache is ~40 MB
SUBSETS = ("train", "test")
CONTENT_KEYS = ("text", "offsets", "target", "split", "doc_ids", "target_names")
KEYS = ("format", "sha256", *CONTENT_KEYS)
_DTYPES = {"format": "int64", "sha256": "U", "text": "uint8", "offsets": "int64", "target": "int64",
           "split": "uint8", "doc_ids": "U", "target_names": "U"}  # "U": native unicode, any width
_NDIM = {"format": 0, "sha256": 0, "text": 1, "offsets": 1, "target": 1, "split": 1, "doc_ids": 1,
         "target_names": 1}


class RawSubset(NamedTuple):
    """One bydate split as scikit-learn's cache holds it (no removal, cache order)."""

    texts: list[str]
    target: np.ndarray  # (N,) int64
    doc_ids: list[str]


class RawCorpus(NamedTuple):
    train: RawSubset
    test: RawSubset
    target_names: list[str]

    def subset(self, name: str) -> RawSubset:
        return self.train if name == "train" else self.test


def build_raw(corpus: Corpus) -> RawCorpus:
    """The corpus in scikit-learn's cache order: ``load_files(<split folder>, encoding="latin1")``.

    Classes and files sorted as strings, then shuffled with RandomState(0), as load_files does.
    """
    subsets = {}
    target_names = sorted(corpus["train"])
    for split in SUBSETS:
        ids, target, bodies = [], [], []
        for label, name in enumerate(sorted(corpus[split])):
            docs = corpus[split][name]
            for file in sorted(docs):
                ids.append(f"{split}/{name}/{file}")
                bodies.append(docs[file])
                target.append(label)
        order = np.arange(len(ids))
        np.random.RandomState(0).shuffle(order)
        subsets[split] = RawSubset([bodies[i].decode("latin1") for i in order], np.asarray(target, np.int64)[order],
                                   [ids[i] for i in order])
    return RawCorpus(subsets["train"], subsets["test"], target_names)


def doc_id(filename: str) -> str:
    """`.../20news-bydate-train/sci.space/61234` -> `train/sci.space/61234`."""
    folder, label, name = Path(str(filename)).parts[-3:]
    return f"{SPLIT_FOLDERS.get(folder, folder)}/{label}/{name}"


# ---- arrays <-> corpus --------------------------------------------------------------------------
def to_arrays(raw: RawCorpus) -> dict[str, np.ndarray]:
    texts = raw.train.texts + raw.test.texts
    arrays = {
        "text": np.frombuffer("".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8),
        "offsets": np.cumsum([0] + [len(t) for t in texts], dtype=np.int64),
        "target": np.concatenate([raw.train.target, raw.test.target]).astype(np.int64),
        "split": np.repeat(np.array([0, 1], np.uint8), [len(raw.train.texts), len(raw.test.texts)]),
        "doc_ids": np.array(raw.train.doc_ids + raw.test.doc_ids, dtype=str),
        "target_names": np.array(raw.target_names, dtype=str),
    }
    arrays["format"] = np.array(FORMAT_VERSION, dtype=np.int64)
    arrays["sha256"] = np.array(content_digest(arrays))
    return arrays


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over each content array's name, dtype, shape and bytes, in CONTENT_KEYS order."""
    digest = hashlib.sha256()
    for key in CONTENT_KEYS:
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def from_arrays(arrays: dict[str, np.ndarray], home: Path) -> RawCorpus:
    """Check the arrays (format, dtypes, shapes, digest, ranges) and build the corpus; DataError if wrong."""
    def bad(detail: str) -> DataError:
        return DataError(damaged_message(home, detail))

    for key in KEYS:
        dtype, want = arrays[key].dtype, _DTYPES[key]
        if not (dtype.kind == "U" and dtype.isnative if want == "U" else dtype == np.dtype(want)):
            raise bad(f"{key} has dtype {dtype}")
        if arrays[key].ndim != _NDIM[key]:
            raise bad(f"{key} has {arrays[key].ndim} dimensions")
    if int(arrays["format"]) != FORMAT_VERSION:
        raise bad(f"format {int(arrays['format'])}, expected {FORMAT_VERSION}")
    n = len(arrays["target"])
    if len(arrays["offsets"]) != n + 1 or len(arrays["split"]) != n or len(arrays["doc_ids"]) != n:
        raise bad("array shapes disagree")
    if str(arrays["sha256"]) != content_digest(arrays):
        raise bad("checksum mismatch")
    try:
        blob = str(memoryview(arrays["text"]), "utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise bad("text is not UTF-8") from None
    offsets, target, split = arrays["offsets"], arrays["target"], arrays["split"]
    names = arrays["target_names"].tolist()
    if n and (offsets[0] != 0 or offsets[-1] != len(blob) or (np.diff(offsets) < 0).any()
              or target.min() < 0 or target.max() >= len(names) or split.max() > 1):
        raise bad("offsets, labels or splits out of range")
    bounds, ids = offsets.tolist(), arrays["doc_ids"].tolist()
    texts = [blob[bounds[i]:bounds[i + 1]] for i in range(n)]
    subsets = []
    for code in (0, 1):
        rows = np.flatnonzero(split == code).tolist()
        subsets.append(RawSubset([texts[i] for i in rows], target[rows].astype(np.int64), [ids[i] for i in rows]))
    return RawCorpus(subsets[0], subsets[1], names)


# ---- files --------------------------------------------------------------------------------------
def read_cache(home: Path) -> RawCorpus:
    """Load and verify ``<home>/newsclf_corpus.npz`` (see the module docstring); never unpickles.

    Raises DataMissingError when absent, DataError when it is a link, not a regular file or damaged.
    """
    return _load(Path(home) / CACHE_FILE, Path(home))


def _load(path: Path, home: Path) -> RawCorpus:
    """Open without following a link and without blocking (a FIFO is refused), check every member's size
    before reading it (stored arrays only, as np.savez writes them: a deflated "bomb" is refused before
    anything is inflated, and no array may claim more than the file holds), then verify (from_arrays)."""
    from newsclf.safeio import UnsafePathError, open_regular
    from newsclf.safenpz import NpzError, load_npz

    try:
        fh = open_regular(path, nofollow=True)
    except (FileNotFoundError, NotADirectoryError):
        raise DataMissingError(missing_message(home)) from None
    except UnsafePathError as exc:
        detail = "it is a symbolic link; links are never followed" if "symbolic link" in str(exc) else "not a regular file"
        raise DataError(damaged_message(home, detail)) from None
    except OSError as exc:
        raise DataError(damaged_message(home, exc.strerror or "unreadable")) from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_CACHE_BYTES:
            raise DataError(damaged_message(home, f"{size:,} bytes, more than a corpus cache holds"))
        try:
            arrays = load_npz(fh, KEYS, size, stored_only=True)
        except NpzError as exc:
            raise DataError(damaged_message(home, _short(exc))) from None
        except MemoryError:
            raise DataError(damaged_message(home, "MemoryError")) from None
    return from_arrays(arrays, home)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else "unreadable"


def write_cache(raw: RawCorpus, home: Path) -> Path:
    """Write the cache to a temp file in `home`, read it back and compare, then ``os.replace`` it in.

    An existing cache (or a link in its place) is replaced, never written through. OSError and a
    failed read-back raise DataError; an earlier cache is then untouched.
    """
    arrays = to_arrays(raw)
    fd, tmp_name = tempfile.mkstemp(prefix=".newsclf-corpus-", suffix=".npz", dir=home)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # not mkstemp's 0600: colleagues may share the data home
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            same = _same(_load(tmp, Path(home)), raw)
        except DataError:
            same = False
        if not same:
            raise DataError("import: the written corpus cache does not read back correctly")
        os.replace(tmp, Path(home) / CACHE_FILE)
    except OSError as exc:
        raise DataError(f"import: cannot write the corpus cache in {home} ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return Path(home) / CACHE_FILE


def _same(a: RawCorpus, b: RawCorpus) -> bool:
    return list(a.target_names) == list(b.target_names) and all(
        x.texts == y.texts and x.doc_ids == y.doc_ids and np.array_equal(x.target, y.target)
        for x, y in ((a.train, b.train), (a.test, b.test)))
