"""The one CSV writer of newsclf: every CSV it writes (report files, the dashboard's downloads) goes through
here, so that no cell can start a spreadsheet formula.

Texts, class names, run names and document ids come from users and shared run dirs. A cell such as
`=HYPERLINK("http://evil", "click")`, `+cmd|' /C calc'!A0`, `@SUM(A1)` or `-2+3` is executed by Excel,
LibreOffice and Google Sheets when the CSV is opened. As OWASP recommends, a text cell (or header)
whose first character — after any leading spaces or control characters, which some importers trim —
is one of `= + - @` (or their full-width forms), or that starts with a tab, carriage return or line
feed, is prefixed with a single quote `'`: spreadsheets then show it as text. Numbers stay numbers;
every text cell is quoted, so a line break inside a cell cannot start an unchecked row.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRIGGERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")  # and the full-width forms some spreadsheets accept
_LEADING = " \t\r\n\x0b\x0c\x00\u00a0\u3000"


def neutralise(value: Any) -> Any:
    """`value` with a leading ' when it is text a spreadsheet would read as a formula; anything else as is."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "\t\r\n" or value.lstrip(_LEADING)[:1] in TRIGGERS:
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names are neutralised (numeric columns untouched)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise)
        elif pd.api.types.is_float_dtype(out[column]) and np.isinf(out[column].to_numpy()).any():
            out[column] = out[column].map(lambda v: neutralise(str(v)) if np.isinf(v) else v)  # "-inf" too
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV bytes (no index), every cell neutralised and every text cell quoted (a
    carriage return inside a cell would otherwise start a new row, whose first cell is not checked)."""
    return safe_frame(frame).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the frame as a neutralised CSV file, through a temp file replaced in (never through a link
    planted under `path`)."""
    from newsclf.safeio import replace_bytes

    return replace_bytes(Path(path), to_csv_bytes(frame))
