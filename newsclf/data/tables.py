"""Reading a user's table (CSV, TSV, JSON Lines, Parquet) in bounded batches of the mapped columns only.

`read_text_batches` (and newsclf.data.parquet's `read_parquet_batches`) yield `Batch`es: the text,
label, split and id columns of a few thousand rows as pyarrow arrays of text (labels normalised by
newsclf.data.values), never the whole file and never a column that is not mapped. Memory is bounded whatever the file holds:

- CSV/TSV: pyarrow's streaming reader in blocks of BLOCK_BYTES; a record longer than a block (a 2 GB
  line, an unclosed quote) is refused when the block ends. Quoted fields may span lines
  (RFC 4180, "" for a quote; TSV the same, as pandas writes it). Every value is read as text.
- JSON Lines: one object per line, each line read with a limit (BLOCK_BYTES); blank lines skipped.
- Parquet: record batches of the mapped columns, row group by row group; a row group whose mapped
  columns exceed MAX_ROW_GROUP_BYTES is refused before it is read.

Text files pass through a `Tap` that hashes every byte (the source's sha256, in the same pass) and
checks UTF-8 as it goes: the first invalid byte stops the import with its offset and line. A Parquet
file (read by random access) is checked first (footer, columns, row group sizes), hashed at the end.
Rows are numbered from 1, the first record after the header (a JSON Lines row is a non-blank line;
messages there give its line number).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple

from newsclf.data.errors import DataError
from newsclf.data.values import label_arrays, label_value, split_strings, text_array

BLOCK_BYTES = 8 << 20  # also the longest record (a text is at most 1 MB: rows.MAX_DOC_BYTES)
BATCH_ROWS = 50_000  # JSON Lines and Parquet rows per batch
MAX_ROW_GROUP_BYTES = 1 << 30
HEADER_PEEK = 1 << 20
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".7z")


class Columns(NamedTuple):
    text: str
    label: str
    split: str | None = None
    id: str | None = None

    def mapped(self) -> list[str]:
        return [c for c in self if c is not None]


class Batch(NamedTuple):
    """Rows first_row .. first_row + len - 1: large_string arrays (label None = missing, normalised)."""

    first_row: int
    text: Any
    label: Any
    split: Any | None
    ids: Any | None
    lines: Any | None = None  # JSON Lines: the line number of each row (messages name lines there)


def detect_format(path: Path, given: str | None) -> str:
    """The table format from --format or the file's extension; DataError when neither says."""
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix in COMPRESSED:
        raise DataError(f"{path.name} is compressed: decompress it first (newsclf reads CSV, TSV, JSON Lines "
                        f"and Parquet files as they are)")
    if suffix == ".json":
        raise DataError(f"{path.name}: a .json file may be one JSON document, not JSON Lines; if it holds one "
                        f"object per line, add --format jsonl")
    if suffix not in EXTENSIONS:
        raise DataError(f"{path.name}: cannot tell the format from {suffix or 'no extension'!r}; "
                        f"add --format csv, tsv, jsonl or parquet")
    return EXTENSIONS[suffix]


class Tap(io.RawIOBase):
    """A raw reader over `fh` that hashes every byte read and checks it is UTF-8 (DataError naming the
    first bad byte's offset and line); `on_read(bytes_so_far)` reports progress."""

    def __init__(self, fh: BinaryIO, label: str, on_read: Callable[[int], None] | None = None):
        self.fh, self.label, self.on_read = fh, label, on_read
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.fh.readinto(buffer)
        if n:
            block = memoryview(buffer)[:n]  # no copy: hashed and checked where pyarrow reads it
            self._check(block, final=False)
            self.sha256.update(block)
            self.bytes += n
            if self.on_read:
                self.on_read(self.bytes)
        else:
            self._check(b"", final=True)
        return n

    def _check(self, block, final: bool) -> None:
        if self.bytes == 0:
            check_start(bytes(block[:4]), self.label)
        pending = len(self._decoder.getstate()[0])
        try:
            self._decoder.decode(block, final)
        except UnicodeDecodeError as exc:
            at = max(self.bytes - pending + exc.start, 0)
            byte = exc.object[exc.start] if exc.start < len(exc.object) else 0
            raise DataError(f"{self.label} is not UTF-8: byte 0x{byte:02X} at offset {at:,} (line "
                            f"{self._line_at(at, bytes(block)):,}); newsclf reads UTF-8 text only: convert the file, "
                            f"e.g. from Latin-1 with `iconv -f latin1 -t utf-8 IN > OUT`") from None

    def _line_at(self, offset: int, block: bytes) -> int:
        """The line number of byte `offset` (counted again from the file's start: only on an error)."""
        try:
            lines, done = 1, 0
            while done < offset:
                chunk = os.pread(self.fh.fileno(), min(1 << 20, offset - done), done)
                if not chunk:
                    break
                lines, done = lines + chunk.count(b"\n"), done + len(chunk)
            return lines
        except (OSError, AttributeError, io.UnsupportedOperation):  # not a real file (a header peek)
            return block[:offset].count(b"\n") + 1


def check_start(head: bytes, label: str) -> None:
    """Refuse a file that starts with a UTF-16 or UTF-32 byte order mark (one line, with the fix)."""
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                      (b"\xfe\xff", "UTF-16")):
        if head.startswith(bom):
            raise DataError(f"{label} is {name} text: newsclf reads UTF-8 only; convert it, e.g. "
                            f"`iconv -f {name.lower()} -t utf-8 IN > OUT`")


def check_utf8_prefix(head: bytes, label: str, complete: bool) -> None:
    """The UTF-8 check of `Tap` on the first bytes of a file (`complete`: they are the whole file)."""
    Tap(io.BytesIO(b""), label)._check(head, final=complete)


def read_text_batches(fh: BinaryIO, fmt: str, columns: Columns, label: str,
                      on_read: Callable[[int], None] | None = None) -> tuple[Iterator[Batch], Callable[[], str]]:
    """(batches, sha256()) of the CSV, TSV or JSON Lines table open in `fh`; sha256() is the whole
    file's once the batches are consumed (newsclf.data.parquet reads Parquet)."""
    tap = Tap(fh, label, on_read)
    batches = _csv_batches(fh, tap, fmt, columns, label) if fmt in ("csv", "tsv") else \
        _jsonl_batches(tap, columns, label)
    return batches, lambda: tap.sha256.hexdigest()


# ---- CSV / TSV ----------------------------------------------------------------------------------------
def _header(fh: BinaryIO, fmt: str, label: str) -> list[str]:
    """The header row (read from the first HEADER_PEEK bytes without moving the file position)."""
    head = os.pread(fh.fileno(), HEADER_PEEK, 0)
    check_utf8_prefix(head, label, len(head) < HEADER_PEEK)
    text = head.decode("utf-8", "ignore").lstrip("\ufeff")  # "ignore": only a character cut at the end
    last: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            last[:] = [line]
            yield line

    try:
        names = next(csv.reader(lines(), delimiter="\t" if fmt == "tsv" else ","), [])
    except csv.Error as exc:
        raise DataError(f"{label}: its header row cannot be read as {fmt.upper()} ({exc})") from None
    complete = len(head) < HEADER_PEEK or bool(last) and last[0].endswith(("\n", "\r"))
    if not names or not complete:
        raise DataError(f"{label}: no header row within its first {HEADER_PEEK:,} bytes (an empty file, "
                        f"a single giant line, or not a {fmt.upper()} table?)")
    return names


def check_columns(available: list[str], columns: Columns, label: str) -> None:
    """Every mapped column exists once in `available`, and no column is mapped twice."""
    mapped = columns.mapped()
    if len(set(mapped)) != len(mapped):
        raise DataError(f"the same column is mapped twice ({', '.join(map(repr, mapped))}): "
                        f"--text, --label, --split and --id need different columns")
    shown = ", ".join(repr(c) for c in available[:30]) + (" ..." if len(available) > 30 else "")
    for flag, name in zip(("--text", "--label", "--split", "--id"), columns):
        if name is not None and name not in available:
            raise DataError(f"{flag}: {label} has no column {name!r}; its columns are {shown}")
        if name is not None and available.count(name) > 1:
            raise DataError(f"{flag}: {label} has {available.count(name)} columns named {name!r}; rename them")


def _csv_batches(fh: BinaryIO, tap: Tap, fmt: str, columns: Columns, label: str) -> Iterator[Batch]:
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    check_columns(_header(fh, fmt, label), columns, label)
    mapped = columns.mapped()
    try:
        reader = pa_csv.open_csv(
            tap, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(include_columns=mapped, column_types={c: pa.large_string() for c in mapped},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowException as exc:
        raise DataError(f"{label}: {_arrow_message(exc, 0)}") from None
    row = 1
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowException as exc:
            raise DataError(f"{label}: {_arrow_message(exc, row - 1)}") from None
        text, labels = text_array(batch.column(columns.text), "--text", row), label_arrays(batch.column(columns.label))
        yield Batch(row, text, labels, _opt(batch, columns.split, split_strings), _opt(batch, columns.id, None))
        row += batch.num_rows


def _opt(batch: Any, name: str | None, convert: Callable | None) -> Any:
    if name is None:
        return None
    return convert(batch.column(name)) if convert else batch.column(name)


def _arrow_message(exc: Exception, rows_done: int) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "straddl" in text:
        return (f"a record after row {rows_done:,} is longer than {BLOCK_BYTES >> 20} MB, the most newsclf reads at "
                f"once (a quote left open, or not a table?)")
    return f"cannot read it as a table after row {rows_done:,} ({text[:200]})"


# ---- JSON Lines ---------------------------------------------------------------------------------------
def _jsonl_batches(tap: Tap, columns: Columns, label: str) -> Iterator[Batch]:
    reader = io.BufferedReader(tap, buffer_size=1 << 20)
    rows: list[list[Any]] = [[], [], [], [], []]  # text, label, split, id, line
    row, line_no = 0, 0
    while True:
        line = reader.readline(BLOCK_BYTES + 1)
        if not line:
            break
        line_no += 1
        if len(line) > BLOCK_BYTES:
            raise DataError(f"{label}: line {line_no:,} is longer than {BLOCK_BYTES >> 20} MB, the most newsclf "
                            f"reads at once (not JSON Lines?)")
        if line_no == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            continue
        row += 1
        values = _json_row(line, line_no, row, columns, label)
        for bucket, value in zip(rows, (*values, line_no)):
            bucket.append(value)
        if len(rows[0]) >= BATCH_ROWS:
            yield _json_batch(rows, row - len(rows[0]) + 1, columns, label)
            rows = [[], [], [], [], []]
    if rows[0]:
        yield _json_batch(rows, row - len(rows[0]) + 1, columns, label)


def _json_row(line: bytes, line_no: int, row: int, columns: Columns, label: str) -> tuple:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{label}: line {line_no:,} is not JSON ({str(exc)[:120]})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{label}: line {line_no:,} is not a JSON object (JSON Lines holds one object per line)")
    if row == 1:  # a key absent from the first object is a missing column; later, a missing value
        check_columns(list(obj), columns, f"{label} (its first object)")
    where = f"{label}: line {line_no:,}"
    text = obj.get(columns.text)
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: the text is {_kind(text)}, not text (is --text the right key?)")
    split = obj.get(columns.split) if columns.split else None
    if split is not None and not isinstance(split, str):
        raise DataError(f"{where}: the split is {_kind(split)}, not train/validation/test")
    ident = obj.get(columns.id) if columns.id else None
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (str, int))):
        raise DataError(f"{where}: the id is {_kind(ident)}, not text or an integer")
    return text, label_value(obj.get(columns.label), where), split, None if ident is None else str(ident)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "true/false"}.get(type(value), "a number")


def _json_batch(rows: list[list[Any]], first_row: int, columns: Columns, label: str) -> Batch:
    import pyarrow as pa

    arrays = []
    for i, values in enumerate(rows[:4]):
        try:
            arrays.append(pa.array(values, type=pa.large_string()))
        except (pa.ArrowException, UnicodeEncodeError):
            bad = next(j for j, v in enumerate(values) if v is not None and not _encodes(v))
            raise DataError(f"{label}: line {rows[4][bad]:,}: the {('text', 'label', 'split', 'id')[i]} holds an "
                            f"unpaired surrogate escape (e.g. \\ud800), which is not valid Unicode") from None
    return Batch(first_row, arrays[0], label_arrays(arrays[1]), split_strings(arrays[2]) if columns.split else None,
                 arrays[3] if columns.id else None, rows[4])


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
