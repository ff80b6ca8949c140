"""What a cell of a user's table means to newsclf: texts, labels, split names (pyarrow arrays or JSON values).

Labels are text or integers, normalised to class names: text is stripped of surrounding whitespace;
integers (and floats that are whole numbers, as pandas stores an integer column with gaps, and the
text "3.0", as pandas then writes it to a CSV) become their decimal digits (3, 3.0, "3.0" and "3" are
one class); true/false become "true"/"false". A label is
*missing* when it is null, empty, whitespace, or one of MISSING_LABELS (what pandas, numpy and SQL
exports write for a missing value; "None" and "NA" stay class names). A fractional, infinite or
nested label is refused: it is not a class. Texts must be text (a CSV cell always is).
"""
from __future__ import annotations

import math
from typing import Any

from newsclf.data.errors import DataError

MISSING_LABELS = ("", "nan", "NaN", "<NA>", "null", "NULL")
SPLIT_CODES = {"train": 0, "training": 0, "validation": 1, "val": 1, "valid": 1, "dev": 1, "test": 2, "testing": 2}


def _decoded(arr: Any) -> Any:
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def text_array(arr: Any, flag: str, first_row: int) -> Any:
    """The column as large_string (nulls kept); DataError when it does not hold text."""
    import pyarrow as pa

    arr = _decoded(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.large_string())
    if not _is_text(arr.type):
        raise DataError(f"{flag}: the column holds {arr.type} values, not text (rows from {first_row:,})")
    return arr.cast(pa.large_string())


def label_arrays(arr: Any, first_row: int = 1) -> Any:
    """Class names as large_string, null where the label is missing (module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _decoded(arr)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.large_string())
    if _is_text(t):  # "3.0" is how pandas writes 3 from a float column (an integer column with gaps)
        trimmed = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr.cast(pa.large_string())),
                                             pattern=r"^(-?[0-9]+)\.0+$", replacement=r"\1")
        return pc.if_else(pc.is_in(trimmed, value_set=pa.array(MISSING_LABELS, pa.large_string())),
                          pa.scalar(None, pa.large_string()), trimmed)
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return arr.cast(pa.large_string())
    if pa.types.is_floating(t):
        arr = arr.cast(pa.float64())
        nan = pc.fill_null(pc.is_nan(arr), False)
        whole = pc.fill_null(pc.and_(pc.equal(pc.floor(arr), arr), pc.less(pc.abs(arr), 2.0 ** 53)), True)
        bad = pc.and_(pc.invert(whole), pc.invert(nan))
        if pc.any(bad).as_py():
            i = pc.index(bad, True).as_py()
            raise DataError(f"--label: row {first_row + i:,} has the label {arr[i].as_py()!r}: labels are text "
                            f"or whole numbers")
        ints = pc.if_else(nan, pa.scalar(None, pa.float64()), arr).cast(pa.int64())
        return ints.cast(pa.large_string())
    raise DataError(f"--label: the column holds {t} values; labels are text or integers")


def label_value(value: Any, where: str) -> str | None:
    """One JSON value as text for `label_arrays` (None when missing): numbers and true/false as they
    would be in a typed column; text as is (then stripped and checked there)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer() or abs(value) >= 2.0 ** 53:
            raise DataError(f"{where}: the label {value!r} is not text or a whole number")
        return str(int(value))
    if isinstance(value, str):
        return value  # stripped and checked for a missing value by `label_arrays`, as any text label
    raise DataError(f"{where}: the label is {'an object' if isinstance(value, dict) else 'a list'}, "
                    f"not text or an integer")


def split_strings(arr: Any) -> Any:
    """Split names, lowercased and stripped (large_string; nulls kept); DataError when not text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _decoded(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.large_string())
    if not _is_text(arr.type):
        raise DataError(f"--split: the column holds {arr.type} values, not train/validation/test")
    return pc.utf8_lower(pc.utf8_trim_whitespace(arr.cast(pa.large_string())))


def id_strings(arr: Any) -> Any:
    """Document ids as large_string (text or integers; nulls kept); DataError otherwise."""
    import pyarrow as pa

    arr = _decoded(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.large_string())
    if not (_is_text(arr.type) or pa.types.is_integer(arr.type)):
        raise DataError(f"--id: the column holds {arr.type} values; ids are text or integers")
    return arr.cast(pa.large_string())
