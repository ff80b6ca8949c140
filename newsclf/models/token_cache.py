"""The transformer's token cache in the data home: `<data home>/token_cache/tokens-<tokenizer>-<texts>.npz`.

Tokenizing the corpus with a Rust tokenizer takes seconds; the ids are kept as two flat arrays (no
pickle) per (tokenizer, max_len, truncation, texts). The data home may be shared, so the cache is
untrusted input (issue 21): see `cached_encode`.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np


def cached_encode(encoder, texts: Sequence[str]) -> list[list[int]]:
    """Tokenize once per (tokenizer, max_len, truncation, texts); stored as flat arrays (no pickle).

    The data home may be shared: token_cache/ must be a real folder (a planted link is neither read
    nor written through: the texts are then simply tokenized again); the cache is read with its sizes
    checked before reading (stored arrays only, bounded by the file) and its content checked (ids in the
    vocabulary, one row per text, no row longer than max_len) before use; it is written through a temp
    file replaced in, relative to the folder opened without following links.
    """
    from newsclf.safeio import UnsafePathError, real_dir, replace_file

    digest = hashlib.sha1("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    path = Path(encoder.cache_dir) / f"tokens-{encoder.fingerprint()}-{digest}.npz"
    try:
        real_dir(path.parent, create=True)
    except (UnsafePathError, OSError):
        return encoder._encode(texts)  # a linked (or unusable) token_cache: no cache at all
    cached = _read_cache(path, len(texts), len(encoder.tokenizer), encoder.max_len)
    if cached is not None:
        return cached
    ids = encoder._encode(texts)
    offsets = np.cumsum([0] + [len(x) for x in ids])
    flat = np.fromiter((t for x in ids for t in x), dtype=np.int32, count=int(offsets[-1]))
    try:
        replace_file(path, lambda fh: np.savez(fh, ids=flat, offsets=offsets))
    except (UnsafePathError, OSError):
        pass  # a read-only data home only costs speed
    return ids


def _read_cache(path: Path, n_texts: int, vocab_size: int, max_len: int) -> list[list[int]] | None:
    from newsclf.runfiles import UnsafeRunFileError, open_inside
    from newsclf.safenpz import NpzError, load_npz

    try:
        with open_inside(path.parent, path.name) as fh:
            data = load_npz(fh, ("ids", "offsets"), os.fstat(fh.fileno()).st_size, stored_only=True)
    except (FileNotFoundError, OSError, NpzError, UnsafeRunFileError):
        return None
    flat, offsets = data["ids"], data["offsets"]
    if not _valid_cache(flat, offsets, n_texts, vocab_size, max_len):
        return None
    return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


def _valid_cache(flat: np.ndarray, offsets: np.ndarray, n_texts: int, vocab_size: int, max_len: int) -> bool:
    if flat.ndim != 1 or offsets.ndim != 1 or flat.dtype.kind not in "iu" or offsets.dtype.kind not in "iu" \
            or len(offsets) != n_texts + 1 or int(offsets[0]) != 0 or int(offsets[-1]) != len(flat):
        return False
    lengths = np.diff(offsets)
    return bool(np.all(lengths >= 0) and np.all(lengths <= max_len)) and \
        (len(flat) == 0 or (int(flat.min()) >= 0 and int(flat.max()) < vocab_size))
