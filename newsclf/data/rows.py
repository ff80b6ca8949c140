"""Collecting the rows of a table import, batch by batch, with every per-row rule checked on the way.

`Rows.add(batch)` keeps a row when it has a text (not empty or whitespace only) and a label (see
newsclf.data.values); other rows are dropped and counted (`dropped_empty_text`, then
`dropped_missing_label`), with the first few row numbers kept for the message. Kept texts and ids
are appended as UTF-8 bytes to one growing buffer each, labels and splits as small integer arrays:
no Python object per row, so a million rows cost their bytes plus ~25 bytes each.

Refused with one line naming the row: a text over MAX_DOC_BYTES, a class name over MAX_NAME_CHARS or
holding a control character, more than MAX_CLASSES distinct labels (stopped at the first extra one),
a split value other than train/validation/test (values.SPLIT_CODES), an empty or over-long id, and
more than MAX_TEXT_BYTES of text in all. Duplicate ids are refused at the end (`check_ids`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from newsclf.data.corpusfile import MAX_CLASSES
from newsclf.data.errors import DataError
from newsclf.data.tables import Batch
from newsclf.data.values import SPLIT_CODES

MAX_DOC_BYTES = 1_000_000
MAX_TEXT_BYTES = 3 << 30
MAX_NAME_CHARS = 200
CONTROL = r"[\x00-\x1f\x7f]"
EXAMPLES = 5


class Rows:
    """The kept rows so far (module docstring). `label` is the source's name, for messages."""

    def __init__(self, label: str, has_split: bool, has_ids: bool, unit: str = "row"):
        self.label, self.has_split, self.has_ids, self.unit = label, has_split, has_ids, unit
        self.text, self.ids = bytearray(), bytearray()
        self.text_lengths: list[np.ndarray] = []
        self.id_lengths: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.splits: list[np.ndarray] = []
        self.names: dict[str, int] = {}
        self.rows_read = self.dropped_empty_text = self.dropped_missing_label = 0
        self.examples: dict[str, list[int]] = {"empty_text": [], "missing_label": []}

    def add(self, batch: Batch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(batch.text)
        self.rows_read += n
        where = np.asarray(batch.lines) if batch.lines is not None else batch.first_row + np.arange(n)
        empty = pc.fill_null(pc.or_(pc.equal(pc.binary_length(batch.text), 0), pc.utf8_is_space(batch.text)), True)
        missing = pc.and_(pc.invert(empty), pc.is_null(batch.label))
        self._count(empty, "empty_text", where)
        self._count(missing, "missing_label", where)
        keep = pc.invert(pc.or_(empty, missing))
        kept_at = where[np.asarray(keep)]
        text, labels = batch.text.filter(keep), batch.label.filter(keep)
        self._check_texts(text, kept_at)
        self.codes.append(self._codes(labels, kept_at))
        if self.has_split:
            self.splits.append(self._split_codes(batch.split.filter(keep), kept_at))
        if self.has_ids:
            ids = batch.ids.filter(keep)
            self._check_names(ids, kept_at, "--id: {row}: the id {value!r}", allow_empty=False)
        else:  # row-<N>, N counting the source's data rows from 1 (dropped ones included)
            numbers = pa.array(np.arange(batch.first_row, batch.first_row + n)).cast(pa.large_string())
            ids = pc.binary_join_element_wise(pa.scalar("row-", pa.large_string()), numbers,
                                              pa.scalar("", pa.large_string())).filter(keep)
        _append(self.text, self.text_lengths, text)
        _append(self.ids, self.id_lengths, ids)
        if len(self.text) > MAX_TEXT_BYTES:
            raise DataError(f"{self.label}: more than {MAX_TEXT_BYTES >> 30} GB of text by {self.unit} {int(where[-1]):,}, "
                            f"the most newsclf keeps in one corpus; import a sample")

    def _count(self, mask: Any, kind: str, where: np.ndarray) -> None:
        hits = np.flatnonzero(np.asarray(mask))
        setattr(self, f"dropped_{kind}", getattr(self, f"dropped_{kind}") + len(hits))
        room = EXAMPLES - len(self.examples[kind])
        self.examples[kind] += [int(where[i]) for i in hits[:max(room, 0)]]

    def _check_texts(self, text: Any, at: np.ndarray) -> None:
        import pyarrow.compute as pc

        sizes = np.asarray(pc.binary_length(text))
        if len(sizes) and sizes.max() > MAX_DOC_BYTES:
            i = int(np.argmax(sizes > MAX_DOC_BYTES))
            raise DataError(f"--text: {self.unit} {int(at[i]):,} holds {int(sizes[i]):,} bytes of text, more than the "
                            f"{MAX_DOC_BYTES:,} newsclf keeps per document (a quote left open?)")

    def _check_names(self, values: Any, at: np.ndarray, what: str, allow_empty: bool = True) -> None:
        import pyarrow.compute as pc

        long = pc.greater(pc.utf8_length(values), MAX_NAME_CHARS)
        control = pc.match_substring_regex(values, CONTROL)
        bad = pc.or_(long, control) if allow_empty else pc.or_(pc.or_(long, control), pc.equal(
            pc.utf8_length(pc.utf8_trim_whitespace(values)), 0))
        bad = pc.fill_null(bad, True)
        if pc.any(bad).as_py():
            i = pc.index(bad, True).as_py()
            value = values[i].as_py()
            why = ("is empty" if not (value or "").strip() else f"is longer than {MAX_NAME_CHARS} characters"
                   if len(value) > MAX_NAME_CHARS else "holds a control character (a tab, a line break...)")
            raise DataError(what.format(row=f"{self.unit} {int(at[i]):,}", value=(value or "")[:60]) + f" {why}")

    def _codes(self, labels: Any, at: np.ndarray) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._check_names(labels, at, "--label: {row}: the label {value!r}")
        for value in pc.unique(labels).to_pylist():
            if value not in self.names:
                self.names[value] = len(self.names)
                if len(self.names) > MAX_CLASSES:
                    first = pc.index(labels, value).as_py()
                    raise DataError(f"--label: more than {MAX_CLASSES:,} distinct labels by {self.unit} {int(at[first]):,}: "
                                    f"newsclf trains on 2 to {MAX_CLASSES:,} classes (is it the right column?)")
        known = pa.array(list(self.names), pa.large_string())
        return np.asarray(pc.index_in(labels, value_set=known), dtype=np.int64)

    def _split_codes(self, values: Any, at: np.ndarray) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        codes = pc.index_in(values, value_set=pa.array(list(SPLIT_CODES), pa.large_string()))
        unknown = pc.is_null(codes)
        if pc.any(unknown).as_py():
            i = pc.index(unknown, True).as_py()
            raise DataError(f"--split: {self.unit} {int(at[i]):,} has the split {(values[i].as_py() or '')[:60]!r}; the split "
                            f"column holds train, validation (or val, dev) and test")
        return np.asarray(list(SPLIT_CODES.values()), dtype=np.uint8)[np.asarray(codes)]

    def check_ids(self) -> None:
        """Refuse duplicate ids (only a user's --id column can have them)."""
        import pyarrow.compute as pc

        if not self.has_ids or not self.id_lengths:
            return
        ids = _strings(self.ids, self.id_lengths)
        if pc.count_distinct(ids).as_py() != len(ids):
            counts = pc.value_counts(ids)
            dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0]
            raise DataError(f"--id: the id {dup['values'].as_py()[:60]!r} appears {dup['counts'].as_py()} times; "
                            f"ids must be unique (or leave out --id to number the rows)")

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(text bytes, text offsets, id bytes, id offsets) without copying the text buffer."""
        return (np.frombuffer(self.text, np.uint8), _offsets(self.text_lengths),
                np.frombuffer(self.ids, np.uint8), _offsets(self.id_lengths))


def _append(buffer: bytearray, lengths: list[np.ndarray], values: Any) -> None:
    """Append a large_string array's UTF-8 bytes to `buffer` and its row lengths to `lengths`."""
    import pyarrow as pa

    values = values.cast(pa.large_string())
    if len(values) == 0:
        return
    offsets = np.frombuffer(values.buffers()[1], np.int64)[values.offset:values.offset + len(values) + 1]
    data = values.buffers()[2]
    if data is not None and offsets[-1] > offsets[0]:
        buffer += memoryview(data)[int(offsets[0]):int(offsets[-1])]
    lengths.append(np.diff(offsets))


def _offsets(lengths: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64) if lengths else \
        np.zeros(1, np.int64)


def _strings(buffer: bytearray, lengths: list[np.ndarray]) -> Any:
    import pyarrow as pa

    offsets = _offsets(lengths)
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(bytes(buffer)))
