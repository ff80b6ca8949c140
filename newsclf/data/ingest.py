"""`import_table`: a user's CSV/TSV/JSON Lines/Parquet table -> a named corpus in the data home.

Steps: check the name (newsclf.data.corpora.NAME_RULE; ``20newsgroups`` is reserved) and that it is
free (or --force); open the file as a regular file, never through a link and never blocking (a FIFO
is refused); stream the mapped columns in batches (newsclf.data.tables), hashing the file and checking
UTF-8 as it goes; keep or drop each row and check its values (newsclf.data.rows); sort the class
names (numerically when every name is an integer); split (newsclf.data.splits); write the corpus
file atomically and verified (newsclf.data.corpusfile). Any problem is one DataError line, raised
before anything is renamed into place: nothing is half-imported and an earlier corpus of that name
is untouched.

Row rules, decided once: a row whose text is empty or whitespace only, or whose label is missing
(newsclf.data.values.MISSING_LABELS), is dropped and counted (the counts and the first row numbers
are reported, and recorded in the metadata); everything else that is wrong refuses the import.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from newsclf.config import resolve_data_home
from newsclf.data.corpora import DEFAULT_CORPUS, check_name, corpora_dir, corpus_path
from newsclf.data.corpus import clear_caches
from newsclf.data.corpusfile import data_digest, read_file, seal, write_file
from newsclf.data.corpusmeta import SOURCE_FORMATS, CorpusMeta, meta_to_bytes
from newsclf.data.errors import DataError
from newsclf.data.rows import Rows
from newsclf.data.splits import assign, check_assignment, check_sizes
from newsclf.data.parquet import read_parquet_batches
from newsclf.data.tables import Columns, detect_format, read_text_batches

DEFAULT_VAL_SIZE = 0.1
DEFAULT_TEST_SIZE = 0.2
Progress = Callable[[float, str], None]
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class ImportResult:
    path: Path
    meta: CorpusMeta
    sha256: str
    seconds: float
    dropped_rows: dict[str, list[int]]  # the first row (JSON Lines: line) numbers of each kind dropped


def import_table(path: str | os.PathLike, name: str, text: str, label: str, split: str | None = None,
                 id: str | None = None, *, data_home: str | os.PathLike | None = None, fmt: str | None = None,
                 seed: int = 42, val_size: float = DEFAULT_VAL_SIZE, test_size: float | None = None,
                 force: bool = False, progress: Progress | None = None) -> ImportResult:
    """Import a table as corpus `name` (module docstring); DataError for anything the user can fix.

    `text`/`label`/`split`/`id` name the columns (JSON keys). Without `split`, rows are split by
    newsclf.data.splits' stratified rule with `seed`, `val_size` and `test_size` (default 0.2);
    with it, `test_size` must stay None. ``progress(fraction, message)`` follows the reading.
    """
    start = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    check_name(name)
    if name == DEFAULT_CORPUS:
        raise DataError(f"--name: {DEFAULT_CORPUS!r} is the built-in corpus; choose another name")
    columns = _columns(text, label, split, id)
    if split is not None and test_size is not None:
        raise DataError("--test-size: the split column decides which rows are test rows; leave --test-size out")
    test = DEFAULT_TEST_SIZE if split is None and test_size is None else (test_size or 0.0)
    check_sizes(val_size, test)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 32:
        raise DataError(f"--seed: must be an integer from 0 to 2**32-1, got {seed!r}")
    if fmt is not None and fmt not in SOURCE_FORMATS:
        raise DataError(f"--format: choose one of {', '.join(SOURCE_FORMATS)}")
    home = resolve_data_home(data_home)
    version = _next_version(corpus_path(name, home), name, force)
    source = Path(path).expanduser()
    fmt = detect_format(source, fmt)
    rows, source_sha, source_bytes = _read(source, fmt, columns, report)
    report(0.9, "splitting and writing the corpus")
    arrays, meta = _assemble(rows, name, version, source, fmt, columns, source_sha, source_bytes, seed, val_size,
                             None if split is not None else test)
    examples = rows.examples
    del rows  # the arrays now own the only reference to the text buffer (write_file empties them)
    sha = str(arrays["sha256"])
    target = write_file(corpora_dir(home), name, arrays, replace=force)
    clear_caches()
    report(1.0, f"imported into {target}")
    return ImportResult(target, meta, sha, time.perf_counter() - start, examples)


def _columns(text: str, label: str, split: str | None, ident: str | None) -> Columns:
    for flag, value in (("--text", text), ("--label", label), ("--split", split), ("--id", ident)):
        if value is not None and (not isinstance(value, str) or not value):
            raise DataError(f"{flag}: give a column name")
    return Columns(text, label, split, ident)


def _next_version(target: Path, name: str, force: bool) -> int:
    """1 for a new name; the previous version + 1 with --force (1 when the old file cannot be read)."""
    if not os.path.lexists(target):
        return 1
    if not force:
        raise DataError(f"a corpus named {name!r} already exists: add --force to replace it (a new version)")
    try:
        meta, _ = read_file(target, str(target), meta_only=True)
        return meta.version + 1
    except (DataError, OSError):
        return 1


def _read(source: Path, fmt: str, columns: Columns, report: Progress) -> tuple[Rows, str, int]:
    """Stream the table into Rows; (rows, the file's sha256, its size)."""
    from newsclf.safeio import UnsafePathError, open_regular

    try:
        fh = open_regular(source, nofollow=True)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"{source} does not exist") from None
    except UnsafePathError as exc:
        raise DataError(f"{exc}{_folder_hint(source)}") from None
    except OSError as exc:
        raise DataError(f"{source}: {exc.strerror or exc}") from None
    with fh:
        before = os.fstat(fh.fileno())
        size = before.st_size
        report(0.0, f"reading {source.name} ({fmt}, {size:,} bytes)")
        marks = iter(range(1, 10))
        mark = [next(marks)]

        def on_read(done: int) -> None:
            if size and done * 10 >= mark[0] * size:
                report(0.85 * done / size, f"read {done:,} of {size:,} bytes")
                mark[0] = next(marks, 11)

        rows = Rows(source.name, columns.split is not None, columns.id is not None,
                    unit="line" if fmt == "jsonl" else "row")
        if fmt == "parquet":
            batches, digest = read_parquet_batches(fh, columns, source.name)
        else:
            batches, digest = read_text_batches(fh, fmt, columns, source.name, on_read)
        for batch in batches:
            rows.add(batch)
        after = os.fstat(fh.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise DataError(f"{source} changed while it was read; import it again once it is complete")
        return rows, digest(), size


def _folder_hint(source: Path) -> str:
    if any((source / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json")):
        return ("; this looks like a Hugging Face `datasets` folder: save it as a table first, e.g. "
                "`load_from_disk(PATH).to_parquet('data.parquet')` (per split for a DatasetDict)")
    return ""


def _class_order(names: list[str]) -> list[str]:
    """Class names sorted; numerically when every name is an integer ("2" before "10")."""
    if all(_INTEGER.fullmatch(n) for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names)


def _assemble(rows: Rows, name: str, version: int, source: Path, fmt: str, columns: Columns, source_sha: str,
              source_bytes: int, seed: int, val_size: float, test_size: float | None) -> tuple[dict, CorpusMeta]:
    kept = sum(len(c) for c in rows.codes)
    if rows.rows_read == 0:
        raise DataError(f"{source.name} holds no data rows")
    if kept == 0:
        raise DataError(f"{source.name}: no row has both a text and a label ({rows.dropped_empty_text:,} with an empty "
                        f"text, {rows.dropped_missing_label:,} without a label, of {rows.rows_read:,} rows)")
    names = _class_order(list(rows.names))
    remap = np.empty(len(names), np.int64)
    for new, value in enumerate(names):
        remap[rows.names[value]] = new
    codes = remap[np.concatenate(rows.codes)]
    if len(names) < 2:
        raise DataError(f"--label: one class only ({names[0][:60]!r}, {kept:,} rows): a classifier needs at least two")
    rows.check_ids()
    given = np.concatenate(rows.splits) if columns.split is not None else None
    split, order, rule = assign(codes, len(names), given, seed, val_size, test_size or 0.0)
    missing = check_assignment(codes, split, names, given is not None)
    sizes = np.bincount(split, minlength=3).tolist()
    text, offsets, ids, id_offsets = rows.arrays()
    arrays = {"text": text, "offsets": offsets, "ids": ids, "id_offsets": id_offsets, "target": codes,
              "split": split, "order": order, "target_names": np.array(names, dtype=str)}
    data_sha256 = data_digest(arrays)
    meta = CorpusMeta(
        name=name, version=version, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        data_sha256=data_sha256,
        source_file=source.name[:1000], source_sha256=source_sha, source_bytes=source_bytes, source_format=fmt,
        text_column=columns.text[:1000], label_column=columns.label[:1000],
        split_column=columns.split[:1000] if columns.split else None, id_column=columns.id[:1000] if columns.id else None,
        split_rule=rule, seed=seed, val_size=float(val_size), test_size=test_size,
        sizes=dict(zip(("train", "val", "test"), sizes)), n_classes=len(names), rows_read=rows.rows_read,
        dropped_empty_text=rows.dropped_empty_text, dropped_missing_label=rows.dropped_missing_label, **missing)
    arrays["meta"] = np.frombuffer(meta_to_bytes(meta), np.uint8)
    return seal(arrays, data_sha256), meta
