"""One imported corpus on disk, ``<data_home>/corpora/<name>.npz``: plain numpy arrays, never a pickle.

The same rules as the 20 Newsgroups cache (newsclf.data.cache): the data home may be a shared drive,
so the file is opened without following a link and without blocking (regular files only), every
member's declared size is checked before anything is read (newsclf.safenpz, stored members only),
object arrays are refused, and a sha256 over the content must match before anything is used. It is
written to a temp file in the same folder, read back and verified, then linked in (a new name: an
existing corpus is never overwritten by a race) or os.replace-d (``--force``): a failed import leaves
the earlier file as it was. Arrays (N kept rows, in the source file's order; C classes):

    format        int64 ()      FORMAT_VERSION
    sha256        <U64 ()       the file's sha256: of meta, then of the data digest (`content_digest`)
    meta          uint8 (M,)    UTF-8 JSON (newsclf.data.corpusmeta): name, version, source, split rule,
                                and data_sha256, the sha256 of the arrays below (`data_digest`)
    text          uint8 (B,)    every text, UTF-8, concatenated
    offsets       int64 (N+1,)  row i is text[offsets[i]:offsets[i+1]], in *bytes*
    ids           uint8 (I,)    document ids, UTF-8, concatenated
    id_offsets    int64 (N+1,)
    target        int64 (N,)    index into target_names
    split         uint8 (N,)    0 train, 1 validation, 2 test
    order         int64 (N,)    load order: row indices, train rows first, then validation, then test
    target_names  <U (C,)       class names

Offsets count bytes, not characters as in the 20NG cache: a million-row corpus is decoded row by row
in C (pyarrow), never as one Python string as wide as its widest character.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import NamedTuple

import numpy as np

from newsclf.data.corpusmeta import CorpusMeta, meta_from_bytes
from newsclf.data.errors import DataError

FORMAT_VERSION = 1
MAX_CORPUS_BYTES = 4 << 30  # a corpus file newsclf reads; imports stop well before (ingest.MAX_TEXT_BYTES)
MAX_CLASSES = 1000
DATA_KEYS = ("text", "offsets", "ids", "id_offsets", "target", "split", "order", "target_names")
CONTENT_KEYS = ("meta", *DATA_KEYS)
KEYS = ("format", "sha256", *CONTENT_KEYS)
_DTYPES = {"format": "int64", "sha256": "U", "meta": "uint8", "text": "uint8", "offsets": "int64", "ids": "uint8",
           "id_offsets": "int64", "target": "int64", "split": "uint8", "order": "int64", "target_names": "U"}
_NDIM = {key: (0 if key in ("format", "sha256") else 1) for key in KEYS}


class StoredCorpus(NamedTuple):
    """A verified corpus file's arrays and metadata (treat as read-only)."""

    arrays: dict[str, np.ndarray]
    meta: CorpusMeta

    @property
    def sha256(self) -> str:
        return str(self.arrays["sha256"])

    @property
    def names(self) -> list[str]:
        return self.arrays["target_names"].tolist()


def _digest(arrays: dict[str, np.ndarray], keys: tuple[str, ...], digest=None):
    digest = digest or hashlib.sha256()
    for key in keys:
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        digest.update(memoryview(a).cast("B"))
    return digest


def data_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over each DATA_KEYS array's name, dtype, shape and bytes: the documents, labels, ids and
    splits, not the metadata. Two imports of the same table with the same split rule share it."""
    return _digest(arrays, DATA_KEYS).hexdigest()


def content_digest(arrays: dict[str, np.ndarray], data_sha256: str | None = None) -> str:
    """The file's sha256: over the meta array, then the data digest (hashing the texts once)."""
    digest = _digest(arrays, ("meta",))
    digest.update(f"data:{data_sha256 or data_digest(arrays)}".encode())
    return digest.hexdigest()


def seal(arrays: dict[str, np.ndarray], data_sha256: str) -> dict[str, np.ndarray]:
    """Add the format and sha256 entries to content arrays (in place) and return them."""
    arrays["format"] = np.array(FORMAT_VERSION, dtype=np.int64)
    arrays["sha256"] = np.array(content_digest(arrays, data_sha256))
    return arrays


def strings(blob: np.ndarray, offsets: np.ndarray, rows: np.ndarray | None = None) -> list[str]:
    """The UTF-8 strings blob[offsets[i]:offsets[i+1]] for `rows` (all when None), decoded in C."""
    import pyarrow as pa

    arr = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(blob))
    if rows is not None:
        arr = arr.take(pa.array(rows, type=pa.int64()))
    return arr.to_pylist()


def verify(arrays: dict[str, np.ndarray], what: str) -> StoredCorpus:
    """Check every array (types, shapes, checksum, ranges, UTF-8) and the metadata; DataError naming `what`."""
    def bad(detail: str) -> DataError:
        return DataError(f"{what} is damaged ({detail}): import the table again with --force")

    for key in KEYS:
        dtype, want = arrays[key].dtype, _DTYPES[key]
        if not (dtype.kind == "U" and dtype.isnative if want == "U" else dtype == np.dtype(want)):
            raise bad(f"{key} has dtype {dtype}")
        if arrays[key].ndim != _NDIM[key]:
            raise bad(f"{key} has {arrays[key].ndim} dimensions")
    if int(arrays["format"]) != FORMAT_VERSION:
        raise bad(f"format {int(arrays['format'])}, expected {FORMAT_VERSION}")
    n = len(arrays["target"])
    if any(len(arrays[k]) != n + 1 for k in ("offsets", "id_offsets")) or any(
            len(arrays[k]) != n for k in ("split", "order")):
        raise bad("array shapes disagree")
    data_sha256 = data_digest(arrays)
    if str(arrays["sha256"]) != content_digest(arrays, data_sha256):
        raise bad("checksum mismatch")
    meta = meta_from_bytes(arrays["meta"].tobytes(), bad)
    if meta.data_sha256 != data_sha256:
        raise bad("its metadata names other data")
    _check_ranges(arrays, n, bad)
    sizes = np.bincount(arrays["split"], minlength=3).tolist()
    if [meta.sizes.get(k) for k in ("train", "val", "test")] != sizes or meta.n_classes != len(arrays["target_names"]):
        raise bad("its metadata disagrees with its arrays")
    return StoredCorpus(arrays, meta)


def _check_ranges(arrays: dict[str, np.ndarray], n: int, bad) -> None:
    import pyarrow as pa

    for blob, offs in (("text", "offsets"), ("ids", "id_offsets")):
        o = arrays[offs]
        if o[0] != 0 or o[-1] != len(arrays[blob]) or (np.diff(o) < 0).any():
            raise bad(f"{offs} out of range")
        try:  # UTF-8 of every row, checked in C
            pa.LargeStringArray.from_buffers(n, pa.py_buffer(o), pa.py_buffer(arrays[blob])).validate(full=True)
        except pa.ArrowInvalid:
            raise bad(f"{blob} is not UTF-8") from None
    names = arrays["target_names"].tolist()
    if not 2 <= len(names) <= MAX_CLASSES or len(set(names)) != len(names) or not all(names):
        raise bad("its class names are not 2 to 1,000 distinct names")
    target, split, order = arrays["target"], arrays["split"], arrays["order"]
    if n == 0 or target.min() < 0 or target.max() >= len(names) or split.max() > 2:
        raise bad("labels or splits out of range")
    if order.min() < 0 or order.max() >= n or (np.bincount(order, minlength=n) != 1).any() or \
            (np.diff(split[order].astype(np.int8)) < 0).any():
        raise bad("its load order is not a permutation, train then validation then test")


# ---- files ----------------------------------------------------------------------------------------
def read_file(path: Path, what: str, *, meta_only: bool = False,
              dir_fd: int | None = None) -> StoredCorpus | tuple[CorpusMeta, str]:
    """Load and verify a corpus file (see the module docstring), or, `meta_only`, just read its metadata
    and recorded sha256 (not verified against the content: for listings; loading verifies). Never
    follows a link or unpickles.
    `dir_fd`: `path` is relative to this open folder.

    FileNotFoundError passes through; anything else wrong is a DataError naming `what`.
    """
    from newsclf.safeio import UnsafePathError, open_regular
    from newsclf.safenpz import NpzError, load_npz

    try:
        fh = open_regular(path, nofollow=True, dir_fd=dir_fd)
    except UnsafePathError as exc:
        raise DataError(f"{what} cannot be read ({exc})") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_CORPUS_BYTES:
            raise DataError(f"{what} is damaged ({size:,} bytes, more than a corpus file holds)")
        try:
            arrays = load_npz(fh, KEYS, size, stored_only=True, only=("meta", "sha256") if meta_only else None)
        except NpzError as exc:
            raise DataError(f"{what} is damaged ({str(exc).splitlines()[0][:160]})") from None
        except MemoryError:
            raise DataError(f"{what} is damaged (MemoryError)") from None
    if meta_only:
        meta, sha = arrays["meta"], arrays["sha256"]
        if meta.dtype != np.uint8 or meta.ndim != 1 or sha.dtype.kind != "U" or sha.ndim != 0:
            raise DataError(f"{what} is damaged (its meta or sha256 entry has the wrong type)")
        return meta_from_bytes(meta.tobytes(), lambda d: DataError(f"{what} is damaged ({d})")), str(sha)[:64]
    return verify(arrays, what)


def write_file(folder: Path, name: str, arrays: dict[str, np.ndarray], *, replace: bool) -> Path:
    """Write sealed `arrays` as ``folder/<name>.npz`` via a verified temp file (module docstring).

    `arrays` is emptied once written (the caller's last reference to the texts), so that reading
    the file back for verification does not hold the corpus twice. Without `replace`, an existing
    file makes this a DataError (checked atomically by os.link). OSError passes through.
    """
    from newsclf.safeio import dir_fd, open_regular, real_dir

    folder = real_dir(folder, create=True)
    target = f"{name}.npz"
    expected = str(arrays["sha256"])
    with dir_fd(folder) as dfd:
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o644)  # colleagues may share the data home
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            arrays.clear()
            back = read_file(Path(tmp), f"the written {target}", dir_fd=dfd)
            if back.sha256 != expected:
                raise DataError(f"import: the written {target} does not read back correctly")
            del back
            if replace:
                os.replace(tmp, target, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                try:
                    os.link(tmp, target, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                except FileExistsError:
                    raise DataError(f"a corpus named {name!r} already exists: add --force to replace it") from None
            with contextlib.suppress(OSError):
                os.fsync(dfd)  # the rename itself reaches the disk
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
    return folder / target
