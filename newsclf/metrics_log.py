"""metrics.jsonl: the training events of a run, one JSON object per line (newsclf.store re-exports this).

Written by `MetricsWriter` (buffered: one write + flush per batch of lines) as training goes, read back
incrementally by `read_metrics` (only complete lines; never follows a link out of the run directory).
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any


from newsclf.runfiles import UnsafeRunFileError, append_inside, json_default, open_inside


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

        path = Path(path)  # appended without following a link (a resumed run dir may hold a planted one)
        self._fh = io.TextIOWrapper(append_inside(path.parent, path.name), encoding="utf-8")
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


MAX_LINE_BYTES = 64 << 10  # an event is ~250 bytes; a longer "line" is not one of ours and is skipped
MAX_STEP_EVENTS = 20_000  # beyond this, step events are thinned evenly (a curve needs no more points)


def read_metrics(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events appended since byte `offset`, and the offset to pass next time.

    Only complete lines are consumed: a half-written last line is left for the next call. Each line
    is parsed once and checked (runschema.parse_event: known fields typed, numbers finite); a line
    that is not one of our events, or longer than MAX_LINE_BYTES, is skipped. The file is read in
    chunks, never whole, and more than MAX_STEP_EVENTS step events are thinned evenly, so a huge or
    sparse metrics.jsonl costs bounded memory.
    """
    from newsclf.runschema import parse_event

    path = Path(path)
    kept = _Thinner()
    consumed = offset
    try:
        with open_inside(path.parent, path.name) as fh:
            fh.seek(offset)
            for line, end in _complete_lines(fh, offset):
                consumed = end
                try:
                    event = parse_event(json.loads(line)) if line else None
                except (ValueError, RecursionError):
                    continue
                if event is not None:
                    kept.add(event)
    except (FileNotFoundError, NotADirectoryError, UnsafeRunFileError):
        return [], offset
    return kept.events(), consumed


def _complete_lines(fh, offset: int):
    """(line bytes, offset after it) of each complete line from `offset`; an over-long line gives b""."""
    pending, start, skipping = b"", offset, False
    while chunk := fh.read(1 << 20):
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line, pending = pending[:end], pending[end + 1:]
            start += end + 1
            yield (b"" if skipping or len(line) > MAX_LINE_BYTES else line), start
            skipping = False
        if len(pending) > MAX_LINE_BYTES:  # drop the rest of an over-long line as it streams by
            start += len(pending)
            pending, skipping = b"", True


class _Thinner:
    """Events in order, with step events thinned as they come: once more than 2 x MAX_STEP_EVENTS are
    kept, every other one is dropped and only every (2 x stride)-th step is kept from then on. Memory stays
    bounded whatever the file holds. A step skipped just before another event (an epoch's last step) or
    at the end (the latest progress) is kept."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.stride, self.steps, self.kept = 1, 0, 0
        self.skipped: dict[str, Any] | None = None

    def add(self, event: dict[str, Any]) -> None:
        if event.get("type") != "step":
            self._flush()
            self.out.append(event)
            return
        self.steps += 1
        if (self.steps - 1) % self.stride:
            self.skipped = event
            return
        self.skipped = None
        self._keep(event)

    def _keep(self, event: dict[str, Any]) -> None:
        self.out.append(event)
        self.kept += 1
        if self.kept > 2 * MAX_STEP_EVENTS:
            odd, thinned = False, []
            for e in self.out:
                odd = not odd if e.get("type") == "step" else odd
                if e.get("type") != "step" or odd:
                    thinned.append(e)
            self.out, self.stride, self.kept = thinned, self.stride * 2, (self.kept + 1) // 2

    def _flush(self) -> None:
        if self.skipped is not None:
            self.out.append(self.skipped)
            self.kept += 1
            self.skipped = None

    def events(self) -> list[dict[str, Any]]:
        self._flush()
        return self.out
