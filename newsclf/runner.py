"""run(cfg, run_dir): train one model into a run directory, then evaluate it.

The model family (newsclf.models registry) decides how: fitted once (TF-IDF), or the shared torch
loop (newsclf.train.Trainer), whose events this module consumes: appends metrics.jsonl, saves best/
and last/ (swapped in whole), keeps status.json current, honours a STOP request. Under torchrun
only rank 0 writes files. Run preparation lives in newsclf.prepare, evaluation in newsclf.evaluate.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from newsclf import store
from newsclf.config import RunConfig
from newsclf.evaluate import device_name as _device_name
from newsclf.evaluate import evaluate_run
from newsclf.models import get_family

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
            trainer = _process_identity()
            store.update_status(run_dir, state="running", trainer_pid=os.getpid(), started=time.time(),
                                trainer=trainer, trainer_sig=_sign_trainer(run_dir, trainer),
                                world_size=dist.world, device=_device_name(device), reason=None, error=None)
        from newsclf.data import load_dataset

        data = load_dataset(cfg.protocol, cfg.data_home or None, seed=cfg.seed, limit_train=cfg.limit_train)
        if main:
            store.write_json_atomic(run_dir / store.LABELS, list(data.label_names))
            log.info("run %s: %s on %s, %d/%d/%d documents", run_dir.name, cfg.model, _device_name(device),
                     len(data.train.texts), len(data.val.texts), len(data.test.texts))
        sink = _event_sink(run_dir, main, on_event)
        family = get_family(cfg.model)
        if family.trained_by_loop:
            train_seconds, params = _train_loop(family, cfg, data, run_dir, device, dist, resume, sink)
        else:
            train_seconds, params = _train_once(family, cfg, data, run_dir, sink) if main else (0.0, (0, 0))
        results = None
        if main:
            results = evaluate_run(run_dir, device=str(device), train_seconds=train_seconds, params=params,
                                   data=data, data_home=cfg.data_home or None, on_progress=sink)
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


# ---- training: one-shot families and the torch loop -----------------------------------------------
def _train_once(family, cfg: RunConfig, data, run_dir: Path, sink: EventSink) -> tuple[float, tuple[int, int]]:
    """A family fitted in one go (TF-IDF): one step and one epoch event, best/ saved."""
    sink({"type": "start", "epochs": 1, "total_steps": 1, "n_train": len(data.train.texts), "world_size": 1})
    start = time.perf_counter()
    model = family.fit(cfg, data)
    seconds = time.perf_counter() - start
    val_probs = family.predict_proba(model, None, data.val.texts)
    val_acc = float((val_probs.argmax(1) == data.val.labels).mean()) if len(data.val.labels) else 0.0
    val_loss = float(-np.log(np.clip(val_probs[np.arange(len(val_probs)), data.val.labels], 1e-12, 1)).mean()) \
        if len(val_probs) else float("nan")
    sink({"type": "step", "step": 1, "total_steps": 1, "epoch": 1, "loss": val_loss, "lr": cfg.lr,
          "samples_per_s": len(data.train.texts) / max(seconds, 1e-9), "eta_s": 0.0, "time": time.time()})
    store.swap_in(lambda d: family.save(model, None, d), run_dir / store.BEST)
    sink({"type": "epoch", "epoch": 1, "epochs": 1, "phase": "all", "train_loss": None, "val_loss": val_loss,
          "val_acc": val_acc, "is_best": True, "time": time.time()})
    store.write_json_atomic(run_dir / store.RESULTS, {"best_epoch": 1})
    return seconds, family.count_params(model)


def _train_loop(family, cfg: RunConfig, data, run_dir: Path, device, dist, resume: bool, sink: EventSink):
    """A torch family through the shared Trainer: best/ on every better epoch, last/ after every epoch."""
    import math

    from newsclf import resume as resume_mod
    from newsclf.train import Trainer, set_seed

    set_seed(cfg.seed)
    model, encoder = family.build(cfg, data.train.texts, list(data.label_names))
    train_ids, val_ids = encoder.encode(data.train.texts), encoder.encode(data.val.texts)
    trainer = Trainer(model, family, cfg, train_ids, data.train.labels, val_ids, data.val.labels, encoder.pad_id,
                      device, dist, len(data.label_names),
                      should_stop=_stop_file_check(run_dir))
    last = run_dir / store.LAST
    if resume:
        trainer.restore(last)
        if dist.is_main:
            (run_dir / store.STOP).unlink(missing_ok=True)  # the stop request that interrupted it is served
    seconds_before = trainer.train_seconds
    start = time.perf_counter()
    for event in trainer.fit():
        if event["type"] == "epoch" and not all(math.isfinite(event[k]) for k in ("train_loss", "val_loss")):
            raise NonFiniteLossError(
                f"the loss became {event['train_loss']} (val {event['val_loss']}) at epoch {event['epoch']}: "
                "try a smaller --lr, or --grad-clip 1")
        sink(event)
        if event["type"] == "epoch" and dist.is_main:
            if event["is_best"]:
                store.swap_in(lambda d: family.save(model, encoder, d), run_dir / store.BEST)
            trainer.train_seconds = seconds_before + time.perf_counter() - start
            resume_mod.save_last(last, model, trainer.optimizer, trainer.scheduler.last_epoch,
                                 {"train_state": trainer.state_dict(), "fingerprint": cfg.fingerprint(),
                                  "best_epoch": trainer.state.best_epoch})
            store.update_status(run_dir, epoch=event["epoch"], best_val_acc=trainer.state.best_val_acc)
    seconds = seconds_before + time.perf_counter() - start
    return seconds, family.count_params(model)


def _stop_file_check(run_dir: Path) -> Callable[[], bool]:
    """store.stop_requested for this run, with the path built once (it is asked after every step event)."""
    stop = os.fsencode(run_dir / store.STOP)
    return lambda: os.access(stop, os.F_OK)  # os.path.exists without raising (and catching) an exception


class NonFiniteLossError(ArithmeticError):
    """Training diverged: the loss is NaN or infinite."""


# ---- plumbing --------------------------------------------------------------------------------
def _event_sink(run_dir: Path, main: bool, on_event: EventSink | None) -> EventSink:
    """The consumer of train events on rank 0: metrics.jsonl (buffered), status.json progress, log lines.

    Step events come in bursts, one per reporting interval of the training loop (newsclf.train);
    metrics.jsonl is written and flushed once per interval (store.MetricsWriter) and status.json's
    `progress` is updated once per interval, from its last step. Lines already handed to the writer
    are flushed before an exception of `on_event` propagates, and when the sink is dropped or the
    interpreter exits (a crash elsewhere in the run).
    """
    import weakref

    writer = store.MetricsWriter(run_dir / store.METRICS) if main else None

    def sink(event: dict[str, Any]) -> None:
        if writer is None:
            return
        writer.write(event)
        if event["type"] == "step":
            if _every(event):
                store.update_status(run_dir, progress={k: event[k] for k in (
                    "step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s")})
        elif event["type"] == "epoch":
            log.info("epoch %d/%d: train loss %s, val loss %.4f, val acc %.4f%s", event["epoch"], event["epochs"],
                     _fmt(event["train_loss"]), event["val_loss"], event["val_acc"], " (best)" if event["is_best"] else "")
        if on_event is not None:
            try:
                on_event(event)
            except BaseException:
                writer.flush()
                raise

    if writer is not None:
        weakref.finalize(sink, writer.close)
    return sink


def _every(event: dict[str, Any]) -> bool:
    """Update status.json from this step event? At the end of each reporting interval (and the last step)."""
    return bool(event.get("interval_end", True)) or event["step"] == event["total_steps"]


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


def _barrier(dist) -> None:
    if dist.enabled:
        import torch.distributed as torch_dist

        torch_dist.barrier()


def _teardown(dist) -> None:
    if dist.enabled:
        import torch.distributed as torch_dist

        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _sign_trainer(run_dir: Path, trainer: dict | None) -> str | None:
    """This installation's signature of the trainer record: only a signed record can make a run count as
    alive (a stranger's folder claiming a live pid must not block `runs delete`). None without a key."""
    from newsclf.jobs.outcome import sign_trainer

    return sign_trainer(run_dir.name, trainer)


def _process_identity() -> dict | None:
    """pid + start time + boot id of this trainer, so a reader can tell a dead run from a live one."""
    try:
        from newsclf.jobs import process_identity
    except ImportError:
        return None
    return process_identity(os.getpid())
