"""The metadata of an imported corpus: what it is, where it came from, how it was split.

Stored as UTF-8 JSON inside the corpus file (so it is covered by the file's checksum and replaced
with it, atomically) and parsed here once, field by field, into a frozen `CorpusMeta`: a value of the
wrong type, a negative count or an oversized string makes the file "damaged" (one line), never an
exception further on. Unknown keys are ignored, so a newer newsclf may add some.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

MAX_META_BYTES = 1 << 20
MAX_META_TEXT = 1000  # characters of a file or column name kept in the metadata
SOURCE_FORMATS = ("csv", "tsv", "jsonl", "parquet")


@dataclass(frozen=True)
class CorpusMeta:
    """One corpus's metadata. `version` counts imports under this name (1, then +1 per --force);
    `created` is ISO 8601 UTC; `data_sha256` identifies the documents, labels, ids and splits (what
    runs record: the same table imported twice the same way has the same one, whatever its version);
    sizes are the kept rows per split; `dropped_*` the rows not kept."""

    name: str
    version: int
    created: str
    data_sha256: str
    source_file: str
    source_sha256: str
    source_bytes: int
    source_format: str
    text_column: str
    label_column: str
    split_column: str | None
    id_column: str | None
    split_rule: str
    seed: int
    val_size: float
    test_size: float | None
    sizes: dict[str, int]
    n_classes: int
    rows_read: int
    dropped_empty_text: int
    dropped_missing_label: int
    classes_without_val: int
    classes_without_test: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def n_docs(self) -> int:
        return sum(self.sizes.values())


def meta_to_bytes(meta: CorpusMeta) -> bytes:
    return json.dumps(meta.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8")


def meta_from_bytes(raw: bytes, bad: Callable[[str], Exception]) -> CorpusMeta:
    """Parse and check the stored JSON; raise ``bad(detail)`` for anything off."""
    if len(raw) > MAX_META_BYTES:
        raise bad("its metadata is too large")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("its metadata is not JSON") from None
    if not isinstance(obj, dict):
        raise bad("its metadata is not an object")
    values = {}
    for f in fields(CorpusMeta):
        if f.name not in obj:
            raise bad(f"its metadata lacks {f.name!r}")
        values[f.name] = _check(f.name, obj[f.name], bad)
    return CorpusMeta(**values)


_TEXT = ("name", "created", "data_sha256", "source_file", "source_sha256", "text_column", "label_column", "split_rule")
_OPTIONAL_TEXT = ("split_column", "id_column")
_COUNTS = ("version", "source_bytes", "n_classes", "rows_read", "dropped_empty_text", "dropped_missing_label",
           "classes_without_val", "classes_without_test", "seed")


def _check(name: str, value: Any, bad: Callable[[str], Exception]) -> Any:
    def text(v: Any) -> str:
        if not isinstance(v, str) or len(v) > MAX_META_TEXT:
            raise bad(f"its metadata field {name!r} is not a short text")
        return v

    if name in _TEXT:
        return text(value)
    if name in _OPTIONAL_TEXT:
        return None if value is None else text(value)
    if name in _COUNTS:
        if not _is_int(value) or value < 0:
            raise bad(f"its metadata field {name!r} is not a count")
        return int(value)
    if name == "source_format":
        if value not in SOURCE_FORMATS:
            raise bad("its metadata names an unknown source format")
        return value
    if name in ("val_size", "test_size"):
        if value is None and name == "test_size":
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0 <= value < 1:
            raise bad(f"its metadata field {name!r} is not a fraction")
        return float(value)
    if name == "sizes":
        if not isinstance(value, dict) or sorted(value) != ["test", "train", "val"] or \
                not all(_is_int(v) and v >= 0 for v in value.values()):
            raise bad("its metadata field 'sizes' is not train/val/test counts")
        return {k: int(value[k]) for k in ("train", "val", "test")}
    raise bad(f"its metadata field {name!r} is unknown")  # a field added to CorpusMeta without a check


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
