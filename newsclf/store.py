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
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsclf import runfiles, runschema
from newsclf.errors import RunNotFoundError
from newsclf.metrics_log import MetricsWriter, read_metrics  # noqa: F401 - part of this module's API
from newsclf.metrics_log import encode_line as _encode_line  # noqa: F401
from newsclf.runfiles import (PICKLE_SUFFIXES, UnsafeRunFileError, append_inside, check_model_dir,  # noqa: F401
                              inside_run, json_default as _json_default, open_inside, read_json_inside,
                              recover_checkpoint, run_json, swap_in, write_json_inside)
from newsclf.runpreds import PREDICTIONS, load_predictions, read_predictions, save_predictions  # noqa: F401
from newsclf.runschema import Predictions  # noqa: F401 - part of this module's API
from newsclf.runstatus import (STATES, STATUS, STATUS_LOCK, file_lock, read_json, read_status,  # noqa: F401
                               update_status)

CONFIG = "config.json"
LABELS = "labels.json"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
LOG = "train.log"
BEST = "best"
LAST = "last"
STOP = "STOP"
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


# ---- listing and finished runs: every file parsed once ------------------------------------
@dataclass
class RunInfo:
    """What a listing needs to know about one run; `problem` says why a run is "damaged" (one line)."""

    run_id: str
    path: Path
    config: dict[str, Any]
    status: dict[str, Any]
    results: dict[str, Any] | None
    problem: str | None = None

    @property
    def state(self) -> str:
        return "damaged" if self.problem else self.status.get("state", "unknown")

    @property
    def model(self) -> str:
        return str(self.config.get("model", "?"))

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
    except (ValueError, TypeError, AttributeError):
        return str(config.get("model", "?"))[:40]


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.json, validated (RunConfig: known fields, types, choices, finite numbers in range);
    DamagedError (one line) when it is missing, unreadable or invalid. Nothing is resolved (no file read)."""
    from newsclf.config import ConfigError, RunConfig

    config = read_json_inside(run_dir, CONFIG)
    if not isinstance(config, dict):
        raise runschema.DamagedError(f"run {Path(run_dir).name}: config.json is missing or unreadable")
    try:
        RunConfig.from_dict(config).validate()
    except (ConfigError, TypeError, ValueError) as exc:
        raise runschema.DamagedError(f"run {Path(run_dir).name}: config.json: {str(exc)[:200]}") from None
    return config


def read_run(path: Path) -> RunInfo | None:
    """One run for listings, parsed once: config validated (RunConfig), status and results checked
    (runschema). None for a folder that is not a run (no readable config.json); a bad value makes the
    run "damaged" with a one-line `problem`, its bad file's content left out."""
    from newsclf.config import ConfigError, RunConfig

    config = run_json(path, CONFIG)
    if not isinstance(config, dict):
        return None
    status, problem = read_status(path), None
    try:
        RunConfig.from_dict(config).validate()
    except (ConfigError, TypeError, ValueError) as exc:
        problem = f"config.json: {str(exc)[:200]}"
        config = {"model": config["model"]} if isinstance(config.get("model"), str) else {}
    results = run_json(path, RESULTS)
    try:
        results = runschema.parse_results(results) if isinstance(results, dict) else None
    except runschema.DamagedError as exc:
        problem, results = problem or str(exc), None
    if status["state"] == "damaged":
        problem = problem or status["reason"]
    return RunInfo(path.name, path, config, status, results, problem)


def list_runs(runs_dir: str | os.PathLike) -> list[RunInfo]:
    """Every run directory (newest first); half-written or foreign folders are skipped, linked ones too
    (a linked run dir could lead anywhere: only real folders are runs)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    paths = [p for p in root.iterdir() if RUN_ID_RE.match(p.name) and not p.is_symlink() and p.is_dir()]
    runs = [r for r in map(read_run, paths) if r is not None]
    runs.sort(key=lambda r: r.run_id, reverse=True)
    return runs


def finished_runs(runs_dir: str | os.PathLike) -> list[RunInfo]:
    """Runs with state finished (not damaged), a results.json holding every RESULT_KEY, and a registered
    model family (a run naming an unknown family is listed by `list_runs` but cannot be compared or loaded)."""
    from newsclf.models import family_names

    known = set(family_names())
    return [r for r in list_runs(runs_dir)
            if r.state == "finished" and r.model in known and r.results and all(k in r.results for k in RESULT_KEYS)]


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
    """Read a finished run for comparisons and ensembles, every file parsed once (config validated,
    results and predictions checked against its class names); RunNotFoundError (one line) when it is
    not finished, lacks results, or is damaged."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    state = info.state if info else "unknown"
    if info is None or info.problem:
        detail = f"damaged: {info.problem}" if info and info.problem else "config.json missing or unreadable"
        raise runschema.DamagedError(f"run {run_dir.name}: {detail}")
    if state != "finished" or info.results is None or any(k not in info.results for k in RESULT_KEYS):
        raise RunNotFoundError(f"run {run_dir.name}: not a finished run (state: {state}); only finished runs can be used")
    labels = load_labels(run_dir)
    preds = {}
    for split in ("val", "test"):
        try:
            preds[split] = read_predictions(run_dir, split, len(labels))
        except (OSError, runschema.DamagedError) as exc:
            detail = str(exc).removeprefix(f"run {run_dir.name}: ") if isinstance(exc, runschema.DamagedError) \
                else f"predictions_{split}.npz is missing or unreadable"
            raise RunNotFoundError(f"run {run_dir.name}: {detail}; run `python -m newsclf evaluate {run_dir.name}`") from None
    return FinishedRun(run_dir.name, run_dir, info.config, info.results, labels, preds["val"], preds["test"])
