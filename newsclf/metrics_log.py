"""metrics.jsonl: the training events of a run, one JSON object per line (newsclf.store re-exports this).

Written by `MetricsWriter` (buffered: one write + flush per batch of lines) as training goes, read back
incrementally by `read_metrics` (only complete lines; never follows a link out of the run directory).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from newsclf.runfiles import UnsafeRunFileError, open_inside


def json_default(value: Any) -> Any:
    """numpy scalars and arrays, and paths, as JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _line_encoder():
    """json.dumps(event, default=json_default), with the C encoder made once rather than per line."""
    from json import encoder

    if getattr(encoder, "c_make_encoder", None) is None:
        return json.JSONEncoder(default=json_default).encode
    encode = encoder.c_make_encoder(None, json_default, encoder.encode_basestring_ascii, None, ": ", ", ",
                                    False, False, True)
    return lambda event: "".join(encode(event, 0))


encode_line = _line_encoder()


class MetricsWriter:
    """Appends one JSON event per line, buffered: one write + flush per batch of lines.

    A line is buffered until an event that ends a batch: any non-step event (start, epoch, done),
    a step event with `interval_end` True (the training loop's reporting interval), or the first
    event `flush_seconds` after the last flush. `flush()` / `close()` write what is buffered; so
    does a finalizer when the writer is garbage-collected or the interpreter exits, so lines handed
    to `write` are not lost when a run crashes.
    """

    def __init__(self, path: Path, flush_seconds: float = 1.0):
        import weakref

        self._fh = open(path, "a", encoding="utf-8")
        self._lines: list[str] = []
        self.flush_seconds = flush_seconds
        self._last_flush = time.monotonic()
        self._finalizer = weakref.finalize(self, MetricsWriter._drain, self._fh, self._lines, True)

    def write(self, event: dict[str, Any]) -> None:
        self._lines.append(encode_line(event) + "\n")
        if (event.get("type") != "step" or event.get("interval_end", True)
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        if self._lines and not self._fh.closed:
            MetricsWriter._drain(self._fh, self._lines, False)
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self._finalizer()

    @staticmethod
    def _drain(fh, lines: list[str], close: bool) -> None:
        if fh.closed:
            return
        if lines:
            fh.write("".join(lines))
            lines.clear()
            fh.flush()
        if close:
            fh.close()


def read_metrics(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events appended since byte `offset`, and the offset to pass next time.

    Only complete lines are consumed: a half-written last line is left for the next call;
    an unparseable complete line is skipped.
    """
    path = Path(path)
    try:
        with open_inside(path.parent, path.name) as fh:
            fh.seek(offset)
            chunk = fh.read()
    except (FileNotFoundError, NotADirectoryError, UnsafeRunFileError):
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for line in chunk[: end + 1].splitlines():
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + end + 1
