"""Reading the mapped columns of a Parquet file in record batches (see newsclf.data.tables).

Parquet is read by random access (footer first); the whole file is hashed once its rows are read,
so a file that is not Parquet is refused before it is read through. Memory is bounded by a row
group: each row group's mapped columns must declare at most MAX_ROW_GROUP_BYTES uncompressed, checked
in the footer before any is read. Parquet strings should be UTF-8 but nothing enforces it: every
text column of every batch is validated.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, BinaryIO, Callable, Iterator

from newsclf.data.errors import DataError
from newsclf.data.tables import BATCH_ROWS, MAX_ROW_GROUP_BYTES, Batch, Columns, check_columns
from newsclf.data.values import id_strings, label_arrays, split_strings, text_array


def read_parquet_batches(fh: BinaryIO, columns: Columns, label: str) -> tuple[Iterator[Batch], Callable[[], str]]:
    """(batches, sha256()) as tables.read_text_batches: the footer, columns and row group sizes are
    checked now, the file hashed once its rows are read."""
    return parquet_batches(fh, columns, label), lambda: _file_sha256(fh)


def _file_sha256(fh: BinaryIO) -> str:
    """sha256 of the whole open file, read with pread (the file position is not used)."""
    digest, offset = hashlib.sha256(), 0
    while True:
        block = os.pread(fh.fileno(), 1 << 20, offset)
        if not block:
            return digest.hexdigest()
        digest.update(block)
        offset += len(block)


def parquet_batches(fh: BinaryIO, columns: Columns, label: str) -> Iterator[Batch]:
    """The mapped columns in batches of BATCH_ROWS rows; DataError for anything unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh)
        names = pf.schema_arrow.names
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{label} is not a readable Parquet file ({_first_line(exc)})") from None
    check_columns(names, columns, label)
    _check_row_groups(pf, columns.mapped(), label)
    return _batches(pf, columns, label)


def _check_row_groups(pf: Any, mapped: list[str], label: str) -> None:
    meta = pf.metadata
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        size = sum(group.column(c).total_uncompressed_size for c in range(group.num_columns)
                   if group.column(c).path_in_schema.split(".")[0] in mapped)
        if size > MAX_ROW_GROUP_BYTES:
            raise DataError(f"{label}: row group {g} holds {size:,} bytes of the mapped columns, more than the "
                            f"{MAX_ROW_GROUP_BYTES >> 20:,} MB newsclf reads at once; rewrite it with smaller row "
                            f"groups (e.g. pandas `to_parquet(..., row_group_size=100_000)`)")


def _batches(pf: Any, columns: Columns, label: str) -> Iterator[Batch]:
    import pyarrow as pa

    row = 1
    it = pf.iter_batches(batch_size=BATCH_ROWS, columns=columns.mapped(), use_threads=False)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{label}: cannot read its rows after row {row - 1:,} ({_first_line(exc)})") from None
        for name in columns.mapped():
            _check_utf8(batch.column(name), name, row, label)
        yield Batch(row, text_array(batch.column(columns.text), "--text", row),
                    label_arrays(batch.column(columns.label), row),
                    split_strings(batch.column(columns.split)) if columns.split else None,
                    id_strings(batch.column(columns.id)) if columns.id else None)
        row += batch.num_rows


def _check_utf8(arr: Any, name: str, first_row: int, label: str) -> None:
    import pyarrow as pa

    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        for i in range(len(arr)):
            try:
                arr[i].as_py()
            except (UnicodeDecodeError, pa.ArrowException):
                raise DataError(f"{label}: row {first_row + i:,}, column {name!r}, is not UTF-8 text") from None
        raise DataError(f"{label}: column {name!r} is damaged in the rows from {first_row:,}") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
