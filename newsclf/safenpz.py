"""Reading an .npz from a shared place with bounded memory: sizes are checked before anything is decompressed.

`np.load` of an .npz trusts the archive: a 3 MB file whose deflated member declares 3 GB of zeros
is inflated in full before anyone looks at it, and an .npy header may declare a shape far larger
than its data. `load_npz` checks, before reading a byte of array data:

- the members are exactly the expected arrays, stored (`stored_only`, what np.savez writes) or deflated;
- the sizes the zip declares add up to at most `max_bytes` (and a stored member lies inside the file);
- each .npy header is version 1 or 2, holds no Python objects, and its shape times its item size is
  exactly the member's size;

then reads each array into a buffer of that size, 16 MB at a time (the zip's CRC is checked at the end of
each member). Memory use is bounded by `max_bytes` whatever the file claims, plus one chunk.
Errors are NpzError (a ValueError).
"""
from __future__ import annotations

import math
import os
import zipfile
import zlib
from typing import BinaryIO, Iterable

import numpy as np
from numpy.lib import format as npformat

MAX_HEADER = 10_000  # an .npy header of a few arrays is ~100 bytes
READ_CHUNK = 16 << 20


class NpzError(ValueError):
    """The file is not the expected .npz, or declares more data than allowed."""


def budget(file_size: int, floor: int = 16 << 20, ratio: int = 16) -> int:
    """A decompressed-size allowance for a compressed file: `floor` plus `ratio` times its size."""
    return floor + ratio * max(int(file_size), 0)


def load_npz(fh: BinaryIO, keys: Iterable[str], max_bytes: int, *, stored_only: bool = False,
             only: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays `keys` of the .npz open in `fh` (see the module docstring); NpzError when anything is off.

    `only`: read just these of the `keys` (a listing reads a corpus's small metadata arrays, not its
    texts); the members are still required to be exactly `keys`, and every declared size is checked.
    """
    keys = list(keys)
    wanted = keys if only is None else [k for k in keys if k in set(only)]
    size = os.fstat(fh.fileno()).st_size
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = {info.filename: info for info in zf.infolist()}
            if sorted(infos) != sorted(f"{k}.npy" for k in keys):
                raise NpzError(f"expected the arrays {', '.join(keys)}, found {', '.join(sorted(infos))[:200]}")
            _check_sizes(infos.values(), size, max_bytes, stored_only)
            return {k: _read_member(zf, infos[f"{k}.npy"]) for k in wanted}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise NpzError(f"not a readable .npz ({type(exc).__name__}: {str(exc)[:120]})") from None


def _check_sizes(infos: Iterable[zipfile.ZipInfo], size: int, max_bytes: int, stored_only: bool) -> None:
    total = 0
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or \
                (stored_only and info.compress_type != zipfile.ZIP_STORED):
            raise NpzError(f"{info.filename} is compressed ({info.compress_type}); newsclf writes this file uncompressed")
        if info.flag_bits & 0x1:
            raise NpzError(f"{info.filename} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and (info.file_size != info.compress_size
                                                         or info.header_offset + info.compress_size > size):
            raise NpzError(f"{info.filename}: its declared size does not fit the file")
        total += info.file_size
    if total > max_bytes:
        raise NpzError(f"its arrays declare {total:,} bytes, more than the {max_bytes:,} allowed for this file")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as fp:
        try:
            version = npformat.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = npformat.read_array_header_1_0(fp, max_header_size=MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = npformat.read_array_header_2_0(fp, max_header_size=MAX_HEADER)
            else:
                raise NpzError(f"{info.filename}: .npy format {version} is not supported")
        except ValueError as exc:
            raise NpzError(f"{info.filename}: {str(exc)[:120]}") from None
        if dtype.hasobject or dtype.itemsize == 0:
            raise NpzError(f"{info.filename}: holds Python objects or empty items; refused (never unpickled)")
        header = fp.tell()
        count = math.prod(shape)
        if count * dtype.itemsize != info.file_size - header:
            raise NpzError(f"{info.filename}: its header declares {count:,} items of {dtype.itemsize} bytes "
                           f"but it holds {info.file_size - header:,} bytes")
        out = np.empty(count, dtype=dtype)
        view = memoryview(out.view(np.uint8)) if count else memoryview(b"")
        got = 0
        while got < len(view):  # in chunks: ZipExtFile.readinto reads into a temporary of the size asked
            n = fp.readinto(view[got:got + READ_CHUNK])
            if not n:
                raise NpzError(f"{info.filename} is cut short")
            got += n
        fp.read(1)  # at the end: the zip's CRC of this member is checked now
    return out.reshape(shape, order="F" if fortran else "C")
