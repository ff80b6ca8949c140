"""Listing runs and reading finished ones, every file parsed once (config validated, status, results and
predictions checked by newsclf.runschema). A bad value makes a run "damaged" with a one-line reason
(`RunInfo.problem`): it is listed as such and refused by comparisons, never an exception in a page.
Re-exported by newsclf.store (part of the run-directory contract).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsclf import runschema, store

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

    config = store.read_json_inside(run_dir, store.CONFIG)
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

    config = store.run_json(path, store.CONFIG)
    if not isinstance(config, dict):
        return None
    status, problem = store.read_status(path), None
    try:
        RunConfig.from_dict(config).validate()
    except (ConfigError, TypeError, ValueError) as exc:
        problem = f"config.json: {str(exc)[:200]}"
        config = {"model": config["model"]} if isinstance(config.get("model"), str) else {}
    results = store.run_json(path, store.RESULTS)
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
    paths = [p for p in root.iterdir() if store.RUN_ID_RE.match(p.name) and not p.is_symlink() and p.is_dir()]
    runs = [r for r in map(read_run, paths) if r is not None]
    runs.sort(key=lambda r: r.run_id, reverse=True)
    return runs


def finished_runs(runs_dir: str | os.PathLike) -> list[RunInfo]:
    """Runs with state finished (not damaged), a results.json holding every RESULT_KEY, and a registered
    model family (a run naming an unknown family is listed by `list_runs` but cannot be compared or loaded)."""
    from newsclf.models import family_names

    known = set(family_names())
    return [r for r in list_runs(runs_dir)
            if r.state == "finished" and r.model in known and r.results and all(k in r.results for k in store.RESULT_KEYS)]


@dataclass
class FinishedRun:
    """A finished run's stored facts: config, results, class names and val/test predictions (checked)."""

    run_id: str
    path: Path
    config: dict[str, Any]
    results: dict[str, Any]
    labels: list[str]
    val: store.Predictions
    test: store.Predictions

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
    if state != "finished" or info.results is None or any(k not in info.results for k in store.RESULT_KEYS):
        raise store.RunNotFoundError(f"run {run_dir.name}: not a finished run (state: {state}); only finished runs can be used")
    labels = store.load_labels(run_dir)
    preds = {}
    for split in ("val", "test"):
        try:
            preds[split] = store.read_predictions(run_dir, split, len(labels))
        except (OSError, runschema.DamagedError) as exc:
            detail = str(exc).removeprefix(f"run {run_dir.name}: ") if isinstance(exc, runschema.DamagedError) \
                else f"predictions_{split}.npz is missing or unreadable"
            raise store.RunNotFoundError(f"run {run_dir.name}: {detail}; run `python -m newsclf evaluate {run_dir.name}`") from None
    return FinishedRun(run_dir.name, run_dir, info.config, info.results, labels, preds["val"], preds["test"])
