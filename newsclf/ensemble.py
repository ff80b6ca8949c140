"""Build an ensemble run directory from finished runs (`python -m newsclf ensemble RUN RUN...`).

    build_ensemble(["tfidf", "bilstm"], runs_dir, weights="auto", combine="mean") -> run dir

Members must be finished runs of the same protocol with the same class names and the same
validation and test documents (doc ids and labels). Their stored predictions are combined: no
member is re-run. Weights are fitted on VALIDATION predictions only (`auto`), equal, or given;
the test split is scored once with the chosen weights. Everything is checked before the run
directory exists; it is written into a hidden `.building-*` folder of the runs dir and renamed into
place whole, so a refused ensemble leaves nothing and a killed one leaves only a hidden folder,
removed by the next `ensemble` or `runs list` (`clean_orphans`) once its process is gone.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from newsclf import store
from newsclf.config import ConfigError, RunConfig, resolve_runs_dir
from newsclf.errors import UserError
from newsclf.models import ensemble as impl
from newsclf.models import get_family
from newsclf.models.ensemble_weights import val_log_loss


BUILDING = ".building-"  # an ensemble being written (renamed into place whole when complete)
OWNER = "owner.json"  # the writing process's identity, so a leftover of a killed one can be recognised
MemberRun = store.FinishedRun  # a member is any finished run (its stored predictions are what is combined)


def load_member(run: str | Path, runs_dir: Path) -> MemberRun:
    """A finished, non-ensemble run with both prediction files and a best/ model; UserError (one line) otherwise."""
    path = store.resolve_run(run, runs_dir)
    try:
        impl.check_member_config(store.read_config(path))
        member = store.load_finished(path)
    except (store.RunNotFoundError, ConfigError) as exc:
        raise UserError(f"member {path.name}: {str(exc).removeprefix(f'run {path.name}: ')}") from None
    if not (path / store.BEST).is_dir():
        raise UserError(f"member {path.name}: has no best/ model")
    return member


def check_compatible(members: Sequence[MemberRun]) -> None:
    """Same protocol, class names, and val/test doc ids and labels (in the same order); UserError otherwise."""
    if len(members) < 2:
        raise UserError("runs: an ensemble needs at least 2 different runs")
    if len(members) > impl.MAX_MEMBERS:
        raise UserError(f"runs: at most {impl.MAX_MEMBERS} members")
    ids = [m.run_id for m in members]
    if len(set(ids)) != len(ids):
        raise UserError(f"runs: {next(i for i in ids if ids.count(i) > 1)} is given twice")
    first = members[0]
    for m in members[1:]:
        if m.config.get("protocol") != first.config.get("protocol"):
            raise UserError(f"member {m.run_id}: protocol {m.config.get('protocol')!r} differs from "
                            f"{first.run_id}'s {first.config.get('protocol')!r}")
        if m.labels != first.labels:
            raise UserError(f"member {m.run_id}: its class names differ from {first.run_id}'s")
        for split in ("val", "test"):
            a, b = getattr(first, split), getattr(m, split)
            if len(a.doc_id) != len(b.doc_id) or not np.array_equal(a.doc_id, b.doc_id) \
                    or not np.array_equal(a.y_true, b.y_true):
                raise UserError(f"member {m.run_id}: its {split} documents differ from {first.run_id}'s "
                                "(another limit, data version or split); re-evaluate both on the same data")


def choose_weights(members: Sequence[MemberRun], weights: str, combine: str) -> tuple[str, np.ndarray, float]:
    """(how chosen, weights summing to 1, seconds spent fitting); only validation predictions are used."""
    try:
        source, given = impl.parse_weights(weights, len(members))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    start = time.perf_counter()
    if given is None:
        given = impl.fit_weights([m.val.probs for m in members], members[0].val.y_true, combine)
    return source, impl.round_weights(given), time.perf_counter() - start


def build_ensemble(runs: Sequence[str | Path], runs_dir: str | Path | None = None, weights: str = "auto",
                   combine: str = "mean", name: str | None = None) -> Path:
    """Check the members, choose weights on validation, write a finished ensemble run; return its directory."""
    runs_dir = resolve_runs_dir(runs_dir)
    members = [load_member(r, runs_dir) for r in runs]
    check_compatible(members)
    source, w, fit_seconds = choose_weights(members, weights, combine)
    first = members[0]
    cfg = RunConfig(model="ensemble", name=name or "", protocol=first.config.get("protocol", "seed"),
                    seed=first.config.get("seed", 42), limit_train=first.config.get("limit_train", 0),
                    members=",".join(m.run_id for m in members), weights=",".join(f"{x:g}" for x in w),
                    weights_from=source, combine=combine).resolved()
    preds = {split: _combined(members, split, w, combine) for split in ("val", "test")}
    results = ensemble_results(members, preds, w, source, combine, fit_seconds)
    clean_orphans(runs_dir)
    run_id = store.new_run_id(cfg.name or get_family(cfg.model).run_name(cfg))
    work = runs_dir / f"{BUILDING}{run_id}"
    work.mkdir(parents=True)
    try:
        from newsclf.jobs import process_identity

        store.write_json_atomic(work / OWNER, process_identity(os.getpid()))
        started = time.time()
        store.write_json_atomic(work / store.LABELS, list(first.labels))
        for split, p in preds.items():
            store.save_predictions(work, split, p)
        store.swap_in(lambda d: impl.save_spec(d, [m.run_id for m in members], w, combine, source),
                      work / store.BEST)
        store.write_json_atomic(work / store.RESULTS, {**results, "run_id": run_id})
        store.update_status(work, state="finished", started=started, ended=time.time(), device="cpu",
                            reason=None, error=None)
        store.write_json_atomic(work / store.CONFIG, cfg.to_dict())
        (work / OWNER).unlink()
        run_dir = runs_dir / run_id
        os.rename(work, run_dir)  # whole, at once: a listing never sees half an ensemble
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return run_dir


def clean_orphans(runs_dir: str | Path) -> list[str]:
    """Remove `.building-*` folders left by a killed `ensemble` (their owner process is gone, or they
    record none and are over a minute old); returns their names. Never follows a link."""
    from newsclf.jobs import process_alive

    removed = []
    try:
        entries = [p for p in Path(runs_dir).iterdir() if p.name.startswith(BUILDING)]
    except OSError:
        return removed
    for path in entries:
        if path.is_symlink() or not path.is_dir():
            continue
        owner = store.run_json(path, OWNER)
        try:
            old = time.time() - path.stat().st_mtime > 60
        except OSError:
            continue
        if (isinstance(owner, dict) and not process_alive(owner)) or (owner is None and old):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _combined(members: Sequence[MemberRun], split: str, w: np.ndarray, combine: str) -> store.Predictions:
    base = getattr(members[0], split)
    probs = impl.combine_probs([getattr(m, split).probs for m in members], w, combine)
    y_pred = probs.argmax(1) if len(probs) else np.zeros(0, dtype=np.int64)
    return store.Predictions(base.doc_id, base.y_true, y_pred, probs)


def ensemble_results(members: Sequence[MemberRun], preds: dict[str, store.Predictions], w: np.ndarray,
                     source: str, combine: str, fit_seconds: float) -> dict[str, Any]:
    """results.json of an ensemble: every store.RESULT_KEYS key, costs summed over the members."""
    from newsclf.metrics import compute_report

    labels = members[0].labels
    res: dict[str, Any] = {"model": "ensemble", "protocol": members[0].config.get("protocol", "seed")}
    for split, p in preds.items():
        report = compute_report(p.y_true, p.y_pred, labels)
        res[f"{split}_acc"] = report.accuracy
        res[f"{split}_report"] = report.to_dict()
    res.update({k: res["test_report"][k] for k in ("f1_macro", "f1_weighted", "precision_macro", "recall_macro")})
    total = lambda key: sum(float(m.results.get(key) or 0.0) for m in members)  # noqa: E731
    singles = [m.results.get("inference_ms_single") for m in members]
    devices = sorted({str(m.results.get("device", "cpu")) for m in members})
    res.update(
        train_seconds=total("train_seconds") + fit_seconds, fit_seconds=fit_seconds,
        inference_ms_per_doc=total("inference_ms_per_doc"),
        inference_ms_single=sum(singles) if all(isinstance(s, (int, float)) for s in singles) else None,
        params=int(total("params")), trainable_params=int(total("trainable_params")), best_epoch=1,
        device=" + ".join(devices), n_train=int(members[0].results.get("n_train") or 0),
        n_val=len(preds["val"].y_true), n_test=len(preds["test"].y_true), label_names=list(labels),
        members=[m.run_id for m in members], weights=[float(x) for x in w], weights_from=source, combine=combine,
        val_log_loss=val_log_loss([m.val.probs for m in members], preds["val"].y_true, w, combine),
        member_val_acc={m.run_id: float(m.results["val_acc"]) for m in members},
        member_test_acc={m.run_id: float(m.results["test_acc"]) for m in members})
    return res
