"""The run-directory contract.

A run directory describes itself::

    <runs_dir>/<run_id>/
        config.json        resolved RunConfig
        labels.json        class names, index = label id
        status.json        {"state": queued|running|finished|failed|cancelled, ...} (atomic writes)
        metrics.jsonl      one JSON event per line, appended and flushed as training goes
        results.json       final metrics (RESULT_KEYS at least)
        predictions_val.npz / predictions_test.npz   doc_id, y_true, y_pred, probs (no pickle)
        train.log          the worker's stdout/stderr
        best/              the kept model (safetensors / JSON / save_pretrained)
        last/              resume checkpoint (torch models)
        STOP               present = a graceful stop was requested

Nothing here imports torch; loading a run never unpickles.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from newsclf import runfiles, runschema
from newsclf.errors import RunNotFoundError
from newsclf.safeio import read_capped
from newsclf.metrics_log import MetricsWriter, read_metrics  # noqa: F401 - part of this module's API
from newsclf.metrics_log import encode_line as _encode_line, json_default as _json_default  # noqa: F401
from newsclf.runfiles import (PICKLE_SUFFIXES, UnsafeRunFileError, append_inside, check_model_dir,  # noqa: F401
                              inside_run, open_inside, read_json_inside, recover_checkpoint, run_json, swap_in,
                              write_json_inside)

CONFIG = "config.json"
LABELS = "labels.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
LOG = "train.log"
BEST = "best"
LAST = "last"
STOP = "STOP"
PREDICTIONS = "predictions_{split}.npz"
STATUS_LOCK = ".status.lock"

STATES = runschema.STATES  # what newsclf writes; readers also see "unknown" (unreadable) and "damaged"
MAX_JSON_BYTES = runfiles.MAX_JSON_BYTES
TERMINAL_STATES = ("finished", "failed", "cancelled")
RESULT_KEYS = ("model", "val_acc", "test_acc", "f1_macro", "f1_weighted", "precision_macro", "recall_macro",
               "train_seconds", "inference_ms_per_doc", "params", "trainable_params", "best_epoch", "device")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# ---- ids and paths --------------------------------------------------------------------------
def new_run_id(name: str) -> str:
    """`20261126-104512-123-name`: sortable by creation time, unique within a millisecond."""
    now = _dt.datetime.now()
    stamp = now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"
    return f"{stamp}-{name}"


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """Make a new, empty run directory (exclusive: never reuses an existing one)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        path = runs_dir / new_run_id(name)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            time.sleep(0.002)
    raise RuntimeError(f"could not create a unique run directory in {runs_dir}")


def resolve_run(run: str | os.PathLike, runs_dir: str | os.PathLike) -> Path:
    """Map a run id (or a path) to a run directory inside `runs_dir`: the entry itself, never a link.

    THE resolution rule of every command and page, whether it reads, changes or removes a run: the
    run is the folder entry `<runs_dir>/<id>` itself. An entry that is a symbolic link is refused
    (RunNotFoundError), whatever it points to (another run, a folder elsewhere, nothing), so no
    command can act on a link's target; the runs dir itself is yours and may be a link.
    Accepts a full id (`20261126-...-tfidf`), a unique ending of one (as git accepts an abbreviated
    hash), or a path whose folder is runs_dir (the last component is not resolved).
    """
    runs_root = Path(runs_dir).resolve()
    text = str(run)
    if not text or "\x00" in text:
        raise RunNotFoundError("run: empty or invalid run id")
    if RUN_ID_RE.match(text):
        entry = runs_root / text
        if not os.path.lexists(entry):
            entry = _unique_match(text, runs_root) or entry
    else:
        entry = Path(os.path.abspath(Path(text).expanduser()))  # lexical: the last component is the entry
        if entry.parent.resolve() != runs_root or not RUN_ID_RE.match(entry.name):
            raise RunNotFoundError(f"run: {text!r} is not a run inside the runs dir {runs_root}")
        entry = runs_root / entry.name
    if entry.is_symlink():
        raise RunNotFoundError(f"run {entry.name}: the run folder is a symbolic link; newsclf never acts on "
                               "what a link points to (remove the link, or use the real run id)")
    if not entry.is_dir() or not (entry / CONFIG).is_file():
        raise RunNotFoundError(f"run: no run {entry.name!r} in {runs_root}")
    return entry


def _unique_match(part: str, runs_root: Path) -> Path | None:
    """The one entry whose id ends with `part` (or with `-part`); RunNotFoundError when several do.
    Links are candidates too (so a link is refused by name, never skipped in favour of a lookalike)."""
    try:
        names = [p.name for p in runs_root.iterdir() if RUN_ID_RE.match(p.name)
                 and (p.is_symlink() or (p / CONFIG).is_file())]
    except OSError:
        return None
    hits = sorted(n for n in names if n.endswith("-" + part)) or sorted(n for n in names if n.endswith(part))
    if len(hits) > 1:
        raise RunNotFoundError(f"run: {part!r} matches {len(hits)} runs ({', '.join(hits[:3])}"
                               f"{', ...' if len(hits) > 3 else ''}); give more of the id")
    return runs_root / hits[0] if hits else None


# ---- atomic JSON --------------------------------------------------------------------------
def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then os.replace (readers never see half)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=_json_default)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """Read JSON; a missing, empty, corrupt, oversized, linked or non-regular file gives `default`.
    (Opened without blocking and without following a link: a FIFO or a planted link is never read.)"""
    try:
        return json.loads(read_capped(path, MAX_JSON_BYTES, nofollow=True))
    except (OSError, ValueError, RecursionError):
        return default


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `path`, created if needed; a link or a non-regular file in
    its place is refused (UnsafeRunFileError), never followed or blocked on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENXIO):
            raise UnsafeRunFileError(f"{path} is a link or not a regular file; remove it") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeRunFileError(f"{path} is not a regular file; remove it")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---- status -------------------------------------------------------------------------------
def read_status(run_dir: Path) -> dict[str, Any]:
    """The status, every field checked (newsclf.runschema): missing, unreadable or refused (a link, a
    FIFO) reads as state 'unknown', a value newsclf did not write as state 'damaged', each with a reason."""
    try:
        raw = read_json_inside(run_dir, STATUS)
    except UnsafeRunFileError as exc:
        return {"state": "unknown", "reason": f"{STATUS} refused: {exc}"}
    except OSError:
        raw = None
    if not isinstance(raw, dict) or raw.get("state") not in STATES:
        return {"state": "unknown", "reason": "status.json missing or unreadable"}
    try:
        return runschema.parse_status(raw)
    except runschema.DamagedError as exc:
        return {"state": "damaged", "reason": str(exc)}


def update_status(run_dir: Path, **updates: Any) -> dict[str, Any]:
    """Read-modify-write status.json under a lock; returns the new status. Fields that fail their check
    are dropped on the way (the file is repaired), and the write replaces the file in the run folder
    itself (never through a link)."""
    run_dir = Path(run_dir)
    with file_lock(run_dir / STATUS_LOCK):
        status = runschema.clean(runschema.STATUS, read_json(run_dir / STATUS, default={}))
        status.update(updates)
        status["updated"] = time.time()
        write_json_inside(run_dir, STATUS, status)
    return status


# ---- predictions ----------------------------------------------------------------------------
@dataclass
class Predictions:
    """Per-document predictions of one split."""

    doc_id: np.ndarray  # (N,) str
    y_true: np.ndarray  # (N,) int
    y_pred: np.ndarray  # (N,) int
    probs: np.ndarray  # (N, C) float32


def save_predictions(run_dir: Path, split: str, preds: Predictions) -> None:
    """Write predictions_{split}.npz (compressed) through a temp file replaced in (never through a link)."""
    from newsclf.safeio import replace_file

    replace_file(Path(run_dir) / PREDICTIONS.format(split=split), lambda fh: np.savez_compressed(
        fh, doc_id=np.asarray(preds.doc_id, dtype=str), y_true=preds.y_true.astype(np.int64),
        y_pred=preds.y_pred.astype(np.int64), probs=preds.probs.astype(np.float32)))


def read_predictions(run_dir: Path, split: str, n_classes: int | None = None) -> Predictions:
    """The stored predictions of `split`, every array checked (runschema.parse_predictions: shapes, dtypes,
    labels in range, finite probabilities); sizes are checked before anything is inflated (safenpz), and
    nothing is unpickled. FileNotFoundError when absent, DamagedError (one line) when not usable."""
    from newsclf.safenpz import NpzError, budget, load_npz

    name = PREDICTIONS.format(split=split)
    try:
        with open_inside(run_dir, name) as fh:
            arrays = load_npz(fh, ("doc_id", "y_true", "y_pred", "probs"), budget(os.fstat(fh.fileno()).st_size))
        return runschema.parse_predictions(arrays, n_classes)
    except (NpzError, runschema.DamagedError) as exc:
        raise runschema.DamagedError(f"run {Path(run_dir).name}: {name}: {exc}") from None


def load_predictions(run_dir: Path, split: str) -> Predictions | None:
    """read_predictions, or None when absent, refused or damaged."""
    try:
        return read_predictions(run_dir, split)
    except (OSError, runschema.DamagedError):
        return None


def load_labels(run_dir: Path) -> list[str]:
    """labels.json: 1 to runschema.MAX_CLASSES class names, each a non-empty text of at most 200 characters."""
    labels = read_json_inside(run_dir, LABELS)
    if not isinstance(labels, list):
        raise RunNotFoundError(f"run {Path(run_dir).name}: labels.json missing or unreadable")
    if not 0 < len(labels) <= runschema.MAX_CLASSES or \
            not all(isinstance(n, str) and 0 < len(n) <= 200 for n in labels):
        raise runschema.DamagedError(f"run {Path(run_dir).name}: labels.json must list the class names as short texts")
    return labels


def stop_requested(run_dir: Path) -> bool:
    return os.path.lexists(Path(run_dir) / STOP)


def request_stop(run_dir: Path) -> None:
    """Write STOP (appended without following a link planted in its place)."""
    with append_inside(run_dir, STOP) as fh:
        fh.write(str(time.time()).encode())


# listings and finished runs, parsed once (newsclf.runlist builds on the readers above)
from newsclf.runlist import (FinishedRun, RunInfo, describe_config, finished_runs, list_runs,  # noqa: E402,F401
                             load_finished, read_config, read_run)
