"""Reproduce the study in one go: queue its grid as jobs, then ensemble the best run of each group.

    plan_study(pretrained_small, pretrained_large) -> [StudyEntry]     (the grid, validated, nothing written)
    queue_study(runs_dir, ...) -> StudyRecord                           (jobs.submit each; <runs_dir>/.study-<id>.json)
    reconcile_study(runs_dir) -> [StudyRecord]                          (builds each study's ensemble once, when due)
    study_table(runs, record) -> DataFrame                              (our numbers beside the published ones)

The published table itself (model x strategy, NOT_GIVEN where the study gives no figure) and the exact
binomial interval live in newsclf.study_published; each run is compared with the row of its own
model and strategy.

The grid: the TF-IDF baseline, the BiLSTM study preset, and the freeze/hybrid/full presets of a
small (DistilBERT) and a large (BERT-base) pretrained model; the ids are editable (a local folder
works offline). A study record lists its job ids; it is written atomically and read without
following links. When every job is terminal and at least two groups have a finished run, the best
run of each group by VALIDATION accuracy is combined (newsclf.ensemble) once, under a file lock.

No Streamlit here.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from newsclf import store
from newsclf.config import PRESETS, ConfigError, RunConfig, resolve_runs_dir
from newsclf.errors import UserError
from newsclf.study_published import (NOT_GIVEN, PUBLISHED, Published, binomial_ci,  # noqa: F401  (re-exported)
                                     given, published_frame, published_gap)

STUDY_FILE = ".study-{id}.json"
STUDY_LOCK = ".study-{id}.lock"
SMALL, LARGE = "distilbert-base-uncased", "bert-base-uncased"
ENSEMBLE_NAME = "study-ensemble"

# (group, preset, which pretrained id replaces the preset's: "small" | "large" | None)
GRID: tuple[tuple[str, str, str | None], ...] = (
    ("TF-IDF", "TF-IDF + complement NB (baseline)", None),
    ("BiLSTM", "BiLSTM + attention (study)", None),
    ("DistilBERT", "DistilBERT freeze", "small"), ("DistilBERT", "DistilBERT hybrid", "small"),
    ("DistilBERT", "DistilBERT full", "small"),
    ("BERT-base", "BERT-base freeze", "large"), ("BERT-base", "BERT-base hybrid", "large"),
    ("BERT-base", "BERT-base full", "large"),
)


@dataclass
class StudyEntry:
    group: str
    preset: str
    config: dict[str, Any]
    job: str | None = None  # the job id once queued


@dataclass
class StudyRecord:
    id: str
    created: float
    pretrained_small: str
    pretrained_large: str
    entries: list[StudyEntry] = field(default_factory=list)
    ensemble: str | None = None  # the ensemble's run id once built
    ensemble_error: str | None = None  # why it could not be built (it is not retried)

    @property
    def job_ids(self) -> list[str]:
        return [e.job for e in self.entries if e.job]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the grid and its record ----------------------------------------------------------------------------
def plan_study(pretrained_small: str = SMALL, pretrained_large: str = LARGE, check: bool = True) -> list[StudyEntry]:
    """The study grid as resolved configs; with `check`, every config passes the same preflight as
    `train` (an unavailable model id raises ConfigError naming the field) before anything is queued."""
    from newsclf.prepare import preflight

    ids = {"small": str(pretrained_small).strip(), "large": str(pretrained_large).strip()}
    for which, value in ids.items():
        if not value:
            raise ConfigError(f"pretrained_{which}", "give a hub id or a local folder")
    out = []
    for group, preset, which in GRID:
        values = dict(PRESETS[preset])
        if which:
            values["pretrained"] = ids[which]
        cfg = RunConfig(**values).resolved()
        if check:
            preflight(cfg)
        out.append(StudyEntry(group, preset, cfg.to_dict()))
    return out


def _path(runs_dir: Path, study_id: str) -> Path:
    return runs_dir / STUDY_FILE.format(id=study_id)


def write_record(runs_dir: str | Path, record: StudyRecord) -> Path:
    path = _path(Path(runs_dir), record.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(path, record.to_dict())
    return path


def read_record(runs_dir: str | Path, study_id: str) -> StudyRecord | None:
    """A study record, or None when missing, corrupt, linked or not a regular file."""
    from newsclf.runfiles import run_json

    from newsclf.runschema import DamagedError, parse_study

    try:  # every field checked (job ids are run ids: never a path), a damaged record is left out
        data = parse_study(run_json(Path(runs_dir), STUDY_FILE.format(id=study_id)))
    except DamagedError:
        return None
    entries = [StudyEntry(e["group"], e["preset"], e["config"], e.get("job")) for e in data["entries"]]
    return StudyRecord(data["id"], data["created"], data["pretrained_small"], data["pretrained_large"], entries,
                       data.get("ensemble") or None, data.get("ensemble_error") or None)


def list_records(runs_dir: str | Path | None = None) -> list[StudyRecord]:
    """Every readable study record of the runs dir, newest first."""
    root = resolve_runs_dir(runs_dir)
    if not root.is_dir():
        return []
    ids = [p.name[len(".study-"):-len(".json")] for p in root.glob(".study-*.json")]
    records = [r for r in (read_record(root, i) for i in ids) if r is not None and r.id in ids]
    return sorted(records, key=lambda r: -r.created)


def queue_study(runs_dir: str | Path | None = None, pretrained_small: str = SMALL, pretrained_large: str = LARGE,
                *, dry_run: bool = False, start: bool = True, gpus: str | None = None) -> StudyRecord:
    """Check the whole grid, then submit each config (jobs.submit) and write the study record.
    `dry_run`: only the checked plan (no job, no file)."""
    from newsclf import jobs

    entries = plan_study(pretrained_small, pretrained_large)
    record = StudyRecord(time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6], time.time(),
                         pretrained_small, pretrained_large, entries)
    if dry_run:
        return record
    root = resolve_runs_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        for entry in entries:
            entry.job = jobs.submit(entry.config, root, gpus=gpus, start=start).id
    finally:
        if record.job_ids:  # what was queued is recorded even when a later submit failed
            write_record(root, record)
    return record


# ---- reconcile: the ensemble, once ----------------------------------------------------------------------
def _job_states(root: Path, record: StudyRecord) -> dict[str, str]:
    from newsclf.jobs import files

    states = {}
    for job in record.job_ids:
        run_dir = root / job
        states[job] = "missing" if run_dir.is_symlink() or not run_dir.is_dir() else files.read_status(run_dir)["state"]
    return states


def best_per_group(root: Path, record: StudyRecord) -> dict[str, str]:
    """{group: run id} of the finished run with the highest VALIDATION accuracy in each group."""
    best: dict[str, tuple[float, str]] = {}
    finished = {r.run_id: r for r in store.finished_runs(root)}
    for entry in record.entries:
        run = finished.get(entry.job or "")
        if run is None:
            continue
        val = float(run.results.get("val_acc") or 0.0)
        if entry.group not in best or val > best[entry.group][0]:
            best[entry.group] = (val, run.run_id)
    return {g: run_id for g, (_, run_id) in best.items()}


def study_state(root: Path, record: StudyRecord) -> str:
    """pending (jobs still queued/running) | ensembled | failed (ensemble refused) | too few (under two groups finished)."""
    if record.ensemble:
        return "ensembled"
    if record.ensemble_error:
        return "failed"
    if any(s not in store.TERMINAL_STATES and s != "missing" for s in _job_states(root, record).values()):
        return "pending"
    return "too few" if len(best_per_group(root, record)) < 2 else "due"


def reconcile_study(runs_dir: str | Path | None = None) -> list[StudyRecord]:
    """For every study whose jobs are all terminal with at least two groups finished: build the
    ensemble of each group's best run, once (file lock + re-read; a refusal is recorded, not retried)."""
    from newsclf.ensemble import build_ensemble

    root = resolve_runs_dir(runs_dir)
    out = []
    for record in list_records(root):
        if study_state(root, record) == "due":
            with store.file_lock(root / STUDY_LOCK.format(id=record.id)):
                fresh = read_record(root, record.id)
                if fresh is not None and study_state(root, fresh) == "due":
                    members = list(best_per_group(root, fresh).values())
                    try:
                        fresh.ensemble = build_ensemble(members, root, name=ENSEMBLE_NAME).name
                    except UserError as exc:
                        fresh.ensemble_error = str(exc)
                    write_record(root, fresh)
                record = fresh or record
        out.append(record)
    return out


# ---- the table beside the published numbers ---------------------------------------------------------------
TABLE_COLUMNS = ["study row", "strategy", "published test %", "our run", "our test %", "95 % CI (exact binomial)",
                 "gap (points)", "published outside our CI", "published macro-F1 %", "our macro-F1 %",
                 "published train s", "our train s", "published ms/doc", "our ms/doc", "published params",
                 "our params", "note"]


def study_table(runs: Sequence[store.RunInfo], record: StudyRecord | None = None) -> pd.DataFrame:
    """One row per published row (model x strategy): our best run by validation accuracy among the runs
    of the SAME model and strategy — those of the study record, or, without one, every finished run
    whose config matches that row's grid preset apart from the pretrained id —, its test accuracy with
    the exact 95 % interval, and whether the published value lies outside it. Cells the study does
    not give read NOT_GIVEN (and then no gap is computed)."""
    finished = {r.run_id: r for r in runs if r.results}
    pool: list[tuple[str, str, store.RunInfo]] = []  # (group, preset, run)
    if record is not None:
        pool = [(e.group, e.preset, finished[e.job]) for e in record.entries if e.job in finished]
    else:
        for run in finished.values():
            match = _matching_preset(run.config)
            if match:
                pool.append((*match, run))
    rows = []
    for pub in PUBLISHED:
        cands = [r for g, p, r in pool if g == pub.model and p == pub.preset]
        run = max(cands, key=lambda r: float(r.results.get("val_acc") or 0.0), default=None)
        rows.append(_row(pub, run))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _row(pub: Published, run: store.RunInfo | None) -> dict[str, Any]:
    row: dict[str, Any] = {"study row": pub.label, "strategy": pub.strategy or "-",
                           "published test %": given(pub.test_acc), "published macro-F1 %": given(pub.macro_f1),
                           "published train s": given(pub.train_seconds), "published ms/doc": given(pub.inference_ms),
                           "published params": given(pub.params), "note": _note(pub, run)}
    if run is None:
        return row
    res = run.results
    acc, n = float(res["test_acc"]), int(res.get("n_test") or 0)
    f1 = res.get("f1_macro")
    row.update({"our run": run.run_id, "our test %": acc * 100, "our train s": res.get("train_seconds"),
                "our macro-F1 %": float(f1) * 100 if isinstance(f1, (int, float)) else None,
                "our ms/doc": res.get("inference_ms_per_doc"), "our params": res.get("params")})
    if n > 0:
        low, high = binomial_ci(int(round(acc * n)), n)
        row["95 % CI (exact binomial)"] = f"{low * 100:.2f}–{high * 100:.2f} % (n={n})"
        if pub.test_acc is not None:
            gap = published_gap(acc, n, pub.test_acc / 100)
            row.update({"gap (points)": gap["gap_points"], "published outside our CI": "yes" if gap["outside"] else "no"})
    return row


def _note(pub: Published, run: store.RunInfo | None) -> str:
    """How like-with-like the row is: an inferred strategy, and what our run does differently."""
    notes = [] if pub.strategy_stated else [f"strategy {pub.strategy} {pub.strategy_note}"]
    embeddings = str((run.config if run is not None else {}).get("embeddings") or "")
    if pub.strategy is None and run is not None and not embeddings.startswith("glove"):
        notes.append(f"our embeddings: {embeddings or 'random'} (the study: GloVe)")
    return "; ".join(notes)


_MATCH_KEYS = ("model", "protocol", "strategy", "classifier", "embed_dim", "hidden_size", "max_len")


def _matching_preset(config: dict[str, Any]) -> tuple[str, str] | None:
    """(group, preset) of the grid whose resolved config matches on the defining keys (pretrained ids
    matched by the group's default model name)."""
    for group, preset, which in GRID:
        want = RunConfig(**PRESETS[preset]).resolved().to_dict()
        if any(config.get(k) != want.get(k) for k in _MATCH_KEYS):
            continue
        if which and Path(str(config.get("pretrained", ""))).name != Path(str(want.get("pretrained", ""))).name:
            continue
        return group, preset
    return None
