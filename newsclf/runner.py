"""run(cfg, run_dir): train one model into a run directory, then evaluate it.

Consumes the Trainer's events: appends metrics.jsonl, saves best/ and last/, keeps
status.json current, honours a STOP request. Under torchrun only rank 0 writes files.
`evaluate_run()` (also `newsclf evaluate RUN`) scores best/ on val and test.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from newsclf import store
from newsclf.config import RunConfig

log = logging.getLogger("newsclf")
EventSink = Callable[[dict[str, Any]], None]


# ---- public -----------------------------------------------------------------------------------
def run(cfg: RunConfig, run_dir: Path, resume: bool = False, on_event: EventSink | None = None) -> dict | None:
    """Train `cfg` into `run_dir` (created by the caller; config.json may already be there).

    Returns results (rank 0) or None (other ranks / cancelled). Raises on failure after
    recording state "failed" with a reason and the traceback in status.json.
    """
    from newsclf.train import StopRequested, select_device, setup_distributed

    run_dir = Path(run_dir)
    dist = setup_distributed(cfg.device)
    main = dist.is_main
    handler = _attach_log(run_dir) if main else None
    try:
        device = select_device(cfg.device, dist)
        if main:
            store.write_json_atomic(run_dir / store.CONFIG, cfg.to_dict())
            store.update_status(run_dir, state="running", trainer_pid=os.getpid(), started=time.time(),
                                world_size=dist.world, device=_device_name(device), reason=None, error=None)
        from newsclf.data import load_dataset

        data = load_dataset(cfg.protocol, cfg.data_home or None, seed=cfg.seed, limit_train=cfg.limit_train)
        if main:
            store.write_json_atomic(run_dir / store.LABELS, list(data.label_names))
            log.info("run %s: %s on %s, %d/%d/%d documents", run_dir.name, cfg.model, _device_name(device),
                     len(data.train.texts), len(data.val.texts), len(data.test.texts))
        sink = _event_sink(run_dir, main, on_event)
        if cfg.model == "tfidf":
            train_seconds, params = _train_tfidf(cfg, data, run_dir, sink) if main else (0.0, (0, 0))
        else:
            train_seconds, params = _train_torch(cfg, data, run_dir, device, dist, resume, sink)
        results = None
        if main:
            results = evaluate_run(run_dir, device=str(device), train_seconds=train_seconds, params=params, data=data)
            sink({"type": "done", "test_acc": results["test_acc"], "val_acc": results["val_acc"], "time": time.time()})
            store.update_status(run_dir, state="finished", ended=time.time())
            log.info("finished: val acc %.4f, test acc %.4f -> %s", results["val_acc"], results["test_acc"], run_dir)
        _barrier(dist)
        return results
    except StopRequested:
        if main:
            store.update_status(run_dir, state="cancelled", ended=time.time(), reason="stopped on request")
            log.info("stopped on request")
        return None
    except BaseException as exc:
        if main:
            store.update_status(run_dir, state="failed", ended=time.time(), reason=failure_reason(exc),
                                error=traceback.format_exc())
            log.error("failed: %s", failure_reason(exc))
        raise
    finally:
        if handler is not None:
            logging.getLogger("newsclf").removeHandler(handler)
            handler.close()
        _teardown(dist)


def failure_reason(exc: BaseException) -> str:
    """One line a user can act on."""
    from newsclf.data import DataError

    text = str(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text.lower():
        return "out of memory: try a smaller --batch-size or --max-len (or --grad-accum to keep the batch)"
    if isinstance(exc, DataError):
        return f"bad data: {text}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {text}"[:500]


def evaluate_run(run_dir: Path, device: str = "cpu", train_seconds: float | None = None,
                 params: tuple[int, int] | None = None, data=None) -> dict:
    """Score best/ on val and test; write predictions_*.npz and results.json; return results."""
    from newsclf.data import load_dataset
    from newsclf.metrics import compute_report, count_params, measure_latency
    from newsclf.predict import load_model_dir, Predictor

    run_dir = Path(run_dir)
    config = store.read_json(run_dir / store.CONFIG)
    cfg = RunConfig.from_dict(config)
    if data is None:
        data = load_dataset(cfg.protocol, cfg.data_home or None, seed=cfg.seed, limit_train=cfg.limit_train)
    model, encoder = load_model_dir(cfg.model, run_dir / store.BEST, device)
    predictor = Predictor(run_dir, cfg.model, list(data.label_names), config, model, encoder, device,
                          cfg.eval_batch_size)
    previous = store.read_json(run_dir / store.RESULTS) or {}
    results: dict[str, Any] = {"model": cfg.model, "run_id": run_dir.name, "protocol": cfg.protocol}
    sync = _cuda_sync(device) or (lambda: None)
    batched_ms = 0.0
    for split in ("val", "test"):  # val first: it also warms the model up for the timed test pass
        part = getattr(data, split)
        sync()
        start = time.perf_counter()
        probs = predictor.predict_proba(part.texts)  # texts in -> probabilities out, batched
        sync()
        batched_ms = (time.perf_counter() - start) * 1000 / max(len(part.texts), 1)
        y_pred = probs.argmax(1) if len(probs) else np.zeros(0, dtype=np.int64)
        store.save_predictions(run_dir, split, store.Predictions(np.asarray(part.doc_ids), part.labels, y_pred, probs))
        report = compute_report(part.labels, y_pred, data.label_names)
        results[f"{split}_acc"] = report.accuracy
        results[f"{split}_report"] = report.to_dict()
    test = results["test_report"]
    results.update({k: test[k] for k in ("f1_macro", "f1_weighted", "precision_macro", "recall_macro")})
    latency = measure_latency(predictor.predict_proba, data.test.texts[:20], sync=sync)  # single documents
    results.update(inference_ms_per_doc=batched_ms, inference_ms_single=latency.single_ms)
    if params is None:
        params = previous.get("params"), previous.get("trainable_params")
        if params[0] is None:
            total = model.params if cfg.model == "tfidf" else count_params(model)[0]
            params = (total, total)
    results.update(params=int(params[0]), trainable_params=int(params[1]))
    results["train_seconds"] = float(train_seconds if train_seconds is not None else previous.get("train_seconds", 0.0))
    state = store.read_json(run_dir / store.LAST / "state.json") or {}
    results["best_epoch"] = int(previous.get("best_epoch") or state.get("best_epoch") or _best_epoch(run_dir))
    results["device"] = _device_name(device)
    results["n_train"], results["n_val"], results["n_test"] = len(data.train.texts), len(data.val.texts), len(data.test.texts)
    results["label_names"] = list(data.label_names)
    store.write_json_atomic(run_dir / store.RESULTS, results)
    return results


# ---- training per family ------------------------------------------------------------------
def _train_tfidf(cfg: RunConfig, data, run_dir: Path, sink: EventSink) -> tuple[float, tuple[int, int]]:
    from newsclf.models import tfidf

    sink({"type": "start", "epochs": 1, "total_steps": 1, "n_train": len(data.train.texts), "world_size": 1})
    start = time.perf_counter()
    model = tfidf.fit(cfg, data.train.texts, data.train.labels, len(data.label_names), data.val.texts, data.val.labels)
    seconds = time.perf_counter() - start
    val_probs = model.predict_proba(data.val.texts)
    val_acc = float((val_probs.argmax(1) == data.val.labels).mean()) if len(data.val.labels) else 0.0
    val_loss = float(-np.log(np.clip(val_probs[np.arange(len(val_probs)), data.val.labels], 1e-12, 1)).mean()) \
        if len(val_probs) else float("nan")
    sink({"type": "step", "step": 1, "total_steps": 1, "epoch": 1, "loss": val_loss, "lr": cfg.lr,
          "samples_per_s": len(data.train.texts) / max(seconds, 1e-9), "eta_s": 0.0, "time": time.time()})
    _save_swap(lambda d: tfidf.save(model, d), run_dir / store.BEST)
    sink({"type": "epoch", "epoch": 1, "epochs": 1, "phase": "all", "train_loss": None, "val_loss": val_loss,
          "val_acc": val_acc, "is_best": True, "time": time.time()})
    store.write_json_atomic(run_dir / store.RESULTS, {"best_epoch": 1})
    return seconds, (model.params, model.params)


def _train_torch(cfg: RunConfig, data, run_dir: Path, device, dist, resume: bool, sink: EventSink):
    from newsclf import resume as resume_mod
    from newsclf.metrics import count_params
    from newsclf.models import get_family
    from newsclf.train import Trainer, set_seed

    family = get_family(cfg.model)
    set_seed(cfg.seed)
    model, encoder = family.build(cfg, data.train.texts, list(data.label_names))
    train_ids, val_ids = encoder.encode(data.train.texts), encoder.encode(data.val.texts)
    trainer = Trainer(model, family, cfg, train_ids, data.train.labels, val_ids, data.val.labels, encoder.pad_id,
                      device, dist, len(data.label_names),
                      should_stop=lambda: store.stop_requested(run_dir))
    last = run_dir / store.LAST
    if resume:
        _restore(trainer, last, resume_mod)
        if dist.is_main:
            (run_dir / store.STOP).unlink(missing_ok=True)  # the stop request that interrupted it is served
    seconds_before = float(trainer.state.__dict__.get("train_seconds", 0.0))
    start = time.perf_counter()
    for event in trainer.fit():
        sink(event)
        if event["type"] == "epoch" and dist.is_main:
            if event["is_best"]:
                _save_swap(lambda d: family.save(model, encoder, d), run_dir / store.BEST)
            state = {**trainer.state.__dict__, "train_seconds": seconds_before + time.perf_counter() - start}
            resume_mod.save_last(last, model, trainer.optimizer, trainer.scheduler.last_epoch,
                                 {"train_state": state, "fingerprint": cfg.fingerprint(),
                                  "best_epoch": trainer.state.best_epoch})
            store.update_status(run_dir, epoch=event["epoch"], best_val_acc=trainer.state.best_val_acc)
    seconds = seconds_before + time.perf_counter() - start
    return seconds, count_params(model)


def _restore(trainer, last: Path, resume_mod) -> None:
    """Load last/ into the trainer: weights, train state, optimizer/schedule of the phase, RNG."""
    from newsclf.train import TrainState

    if not (last / resume_mod.STATE).is_file():
        raise ValueError("resume: this run has no last/ checkpoint (it never finished an epoch)")
    meta = resume_mod.load_state(last)
    resume_mod.load_model_weights(last, trainer.model)
    saved = dict(meta["train_state"])
    train_seconds = saved.pop("train_seconds", 0.0)
    trainer.state = TrainState(**saved)
    trainer.state.__dict__["train_seconds"] = train_seconds
    phase_now, _ = trainer.phase_of_epoch(trainer.state.epoch)
    trainer.start_phase(phase_now)
    if phase_now == saved["phase_index"]:  # else a new phase starts with a fresh optimizer, as uninterrupted
        resume_mod.restore_optimizer(last, trainer.optimizer, meta)
        trainer.scheduler.last_epoch = int(meta["scheduler_step"])
        trainer.scheduler._last_lr = [g["lr"] for g in trainer.optimizer.param_groups]
    resume_mod.restore_rng(last, meta)  # always: dropout of the next epoch draws from it
    trainer.state.phase_index = phase_now


# ---- plumbing --------------------------------------------------------------------------------
def _save_swap(save: Callable[[Path], None], target: Path) -> None:
    """Save into a sibling temp folder, then swap it in: best/ is never half-written."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _event_sink(run_dir: Path, main: bool, on_event: EventSink | None) -> EventSink:
    writer = store.MetricsWriter(run_dir / store.METRICS) if main else None

    def sink(event: dict[str, Any]) -> None:
        if writer is None:
            return
        writer.write(event)
        if event["type"] == "step":
            store.update_status(run_dir, progress={k: event[k] for k in (
                "step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s")}) \
                if _every(event, 10) else None
        elif event["type"] == "epoch":
            log.info("epoch %d/%d: train loss %s, val loss %.4f, val acc %.4f%s", event["epoch"], event["epochs"],
                     _fmt(event["train_loss"]), event["val_loss"], event["val_acc"], " (best)" if event["is_best"] else "")
        if on_event is not None:
            on_event(event)
    return sink


def _every(event: dict[str, Any], n: int) -> bool:
    return event["step"] % n == 0 or event["step"] == event["total_steps"] or event["step"] == 1


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (pytest and tqdm swap it), never to a closed old stream."""

    def __init__(self):
        self._override = None
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return self._override if self._override is not None else sys.stderr

    @stream.setter
    def stream(self, value):  # setStream() (the progress bar routes log lines above itself)
        self._override = None if value is sys.stderr else value


def _attach_log(run_dir: Path) -> logging.Handler | None:
    """Log to train.log, unless stdout already is train.log (a job worker redirects it there)."""
    path = run_dir / store.LOG
    logger = logging.getLogger("newsclf")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        console = _StderrHandler()
        console.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(console)
    try:
        if path.exists() and os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(path)):
            return None
    except (OSError, ValueError, AttributeError):
        pass
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    return handler


def _best_epoch(run_dir: Path) -> int:
    events, _ = store.read_metrics(run_dir / store.METRICS)
    best = [e for e in events if e.get("type") == "epoch" and e.get("is_best")]
    return int(best[-1]["epoch"]) if best else 0


def _device_name(device) -> str:
    text = str(device)
    if text.startswith("cuda"):
        import torch

        return f"{text} ({torch.cuda.get_device_name(torch.device(text))})"
    return "cpu"


def _cuda_sync(device: str):
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return None


def _barrier(dist) -> None:
    if dist.enabled:
        import torch.distributed as torch_dist

        torch_dist.barrier()


def _teardown(dist) -> None:
    if dist.enabled:
        import torch.distributed as torch_dist

        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
