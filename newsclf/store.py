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
import fcntl
import json
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from newsclf.errors import RunNotFoundError
from newsclf.metrics_log import MetricsWriter, read_metrics  # noqa: F401 - part of this module's API
from newsclf.metrics_log import encode_line as _encode_line, json_default as _json_default  # noqa: F401
from newsclf.runfiles import (PICKLE_SUFFIXES, UnsafeRunFileError, check_model_dir, inside_run,  # noqa: F401
                              open_inside, read_json_inside, recover_checkpoint, run_json, swap_in)

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

STATES = ("queued", "running", "finished", "failed", "cancelled")
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
    """Map a run id (or a path) to a run directory inside `runs_dir`, refusing traversal and links out.

    Accepts a full id (`20261126-...-tfidf`), a unique part of one (its name, or its ending, as git
    accepts an abbreviated hash), or a path that resolves inside runs_dir.
    """
    runs_root = Path(runs_dir).resolve()
    text = str(run)
    if not text or "\x00" in text:
        raise RunNotFoundError("run: empty or invalid run id")
    if RUN_ID_RE.match(text) and not text.startswith(".."):
        candidate = (runs_root / text).resolve()
        if not (candidate / CONFIG).is_file():
            candidate = _unique_match(text, runs_root) or candidate
    else:
        candidate = Path(text).expanduser().resolve()
    if candidate.parent != runs_root:
        raise RunNotFoundError(f"run: {text!r} is not a run inside the runs dir {runs_root}")
    if not (candidate / CONFIG).is_file():
        raise RunNotFoundError(f"run: no run {candidate.name!r} in {runs_root}")
    return candidate


def _unique_match(part: str, runs_root: Path) -> Path | None:
    """The one run whose id ends with `part` (or with `-part`); RunNotFoundError when several do."""
    try:
        names = [p.name for p in runs_root.iterdir() if RUN_ID_RE.match(p.name) and (p / CONFIG).is_file()]
    except OSError:
        return None
    hits = sorted(n for n in names if n.endswith("-" + part)) or sorted(n for n in names if n.endswith(part))
    if len(hits) > 1:
        raise RunNotFoundError(f"run: {part!r} matches {len(hits)} runs ({', '.join(hits[:3])}"
                               f"{', ...' if len(hits) > 3 else ''}); give more of the id")
    return (runs_root / hits[0]).resolve() if hits else None


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
    """Read JSON; a missing, empty or corrupt file gives `default` instead of an exception."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        return default


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `path`, created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ---- status -------------------------------------------------------------------------------
def read_status(run_dir: Path) -> dict[str, Any]:
    """The status dict; a missing or corrupt status.json reads as state 'unknown'."""
    status = run_json(run_dir, STATUS)
    if not isinstance(status, dict) or status.get("state") not in STATES:
        return {"state": "unknown", "reason": "status.json missing or unreadable"}
    return status


def update_status(run_dir: Path, **updates: Any) -> dict[str, Any]:
    """Read-modify-write status.json under a lock; returns the new status."""
    run_dir = Path(run_dir)
    with file_lock(run_dir / STATUS_LOCK):
        status = read_json(run_dir / STATUS, default={})
        if not isinstance(status, dict):
            status = {}
        status.update(updates)
        status["updated"] = time.time()
        write_json_atomic(run_dir / STATUS, status)
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
    path = Path(run_dir) / PREDICTIONS.format(split=split)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, doc_id=np.asarray(preds.doc_id, dtype=str), y_true=preds.y_true.astype(np.int64),
                        y_pred=preds.y_pred.astype(np.int64), probs=preds.probs.astype(np.float32))
    os.replace(tmp, path)


def load_predictions(run_dir: Path, split: str) -> Predictions | None:
    """The stored predictions, or None when absent or unreadable (never unpickles)."""
    try:
        with open_inside(run_dir, PREDICTIONS.format(split=split)) as fh, np.load(fh, allow_pickle=False) as data:
            return Predictions(doc_id=data["doc_id"], y_true=data["y_true"], y_pred=data["y_pred"], probs=data["probs"])
    except (FileNotFoundError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnsafeRunFileError):
        return None


# ---- listing --------------------------------------------------------------------------------
@dataclass
class RunInfo:
    """What a listing needs to know about one run."""

    run_id: str
    path: Path
    config: dict[str, Any]
    status: dict[str, Any]
    results: dict[str, Any] | None

    @property
    def state(self) -> str:
        return self.status.get("state", "unknown")

    @property
    def model(self) -> str:
        return self.config.get("model", "?")

    @property
    def detail(self) -> str:
        """The model family's short description of this run's configuration (e.g. "tfidf / cnb")."""
        return describe_config(self.config)

    @property
    def label(self) -> str:
        """A short human label: id plus model detail."""
        return f"{self.run_id} ({self.detail})"


def describe_config(config: dict[str, Any]) -> str:
    """A run config's short label from its model family (newsclf.models registry); "?" when unknown."""
    from newsclf.models import get_family

    try:
        return get_family(config.get("model", "?")).describe(config)
    except ValueError:
        return str(config.get("model", "?"))[:40]


def list_runs(runs_dir: str | os.PathLike) -> list[RunInfo]:
    """Every run directory (newest first); half-written or foreign folders are skipped."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if path.is_symlink() or not path.is_dir() or not RUN_ID_RE.match(path.name):
            continue  # a linked run dir could lead anywhere: only real folders are runs
        config = run_json(path, CONFIG)
        if not isinstance(config, dict):
            continue
        results = run_json(path, RESULTS)
        runs.append(RunInfo(path.name, path, config, read_status(path), results if isinstance(results, dict) else None))
    runs.sort(key=lambda r: r.run_id, reverse=True)
    return runs


def finished_runs(runs_dir: str | os.PathLike) -> list[RunInfo]:
    """Runs with state finished, a results.json holding every RESULT_KEY, and a registered model family
    (a run naming an unknown family is listed by `list_runs` but cannot be compared or loaded)."""
    from newsclf.models import family_names

    known = set(family_names())
    return [r for r in list_runs(runs_dir)
            if r.state == "finished" and r.model in known and r.results and all(k in r.results for k in RESULT_KEYS)]


def load_labels(run_dir: Path) -> list[str]:
    labels = read_json_inside(run_dir, LABELS)
    if not isinstance(labels, list):
        raise RunNotFoundError(f"run {Path(run_dir).name}: labels.json missing or unreadable")
    return labels


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP).exists()


def request_stop(run_dir: Path) -> None:
    (Path(run_dir) / STOP).write_text(str(time.time()))


@dataclass
class FinishedRun:
    """A finished run's stored facts: config, results, class names and val/test predictions (checked)."""

    run_id: str
    path: Path
    config: dict[str, Any]
    results: dict[str, Any]
    labels: list[str]
    val: Predictions
    test: Predictions

    @property
    def detail(self) -> str:
        return describe_config(self.config)


def load_finished(run_dir: Path) -> FinishedRun:
    """Read a finished run for comparisons and ensembles; RunNotFoundError (one line) when it is not
    finished, lacks results, or its predictions are missing or inconsistent with its class names."""
    run_dir = Path(run_dir)
    config = read_json_inside(run_dir, CONFIG)
    results = read_json_inside(run_dir, RESULTS)
    state = read_status(run_dir).get("state")
    if state != "finished" or not isinstance(config, dict) or not isinstance(results, dict) \
            or any(k not in results for k in RESULT_KEYS):
        raise RunNotFoundError(f"run {run_dir.name}: not a finished run (state: {state}); only finished runs can be used")
    labels = load_labels(run_dir)
    preds = {split: load_predictions(run_dir, split) for split in ("val", "test")}
    for split, p in preds.items():
        if p is None or p.probs.ndim != 2 or p.probs.shape != (len(p.doc_id), len(labels)) \
                or len(p.y_true) != len(p.doc_id) or len(p.y_pred) != len(p.doc_id) \
                or not np.all(np.isfinite(p.probs)):
            raise RunNotFoundError(f"run {run_dir.name}: predictions_{split}.npz is missing or damaged; "
                                   f"run `python -m newsclf evaluate {run_dir.name}`")
    return FinishedRun(run_dir.name, run_dir, config, results, labels, preds["val"], preds["test"])
