"""Evaluate a run directory: metrics on val and test, predictions, latency -> results.json.

`evaluate_run(run_dir)` (also `newsclf evaluate RUN`, and the end of every training run) loads
best/ through the model registry and scores it; results.json holds store.RESULT_KEYS at least.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from newsclf import runschema, store
from newsclf.models import get_family

ProgressSink = Callable[[dict[str, Any]], None]
EVAL_CHUNKS = 20  # progress events per split (at least EVAL_CHUNK_MIN documents each)
EVAL_CHUNK_MIN = 64


def evaluate_run(run_dir: Path, device: str = "cpu", train_seconds: float | None = None,
                 params: tuple[int, int] | None = None, data=None, data_home: str | None = None,
                 on_progress: ProgressSink | None = None) -> dict:
    """Score best/ on val and test; write predictions_*.npz and results.json; return results.

    The corpus comes from `data_home` (the caller's: flag, $NEWSCLF_DATA_HOME or data/), never
    from the data home a run's config names: a run directory is untrusted input.

    `on_progress` (the runner passes its event sink, which appends to metrics.jsonl) receives
    `{"type": "eval", "split": "val"|"test"|"latency", "done", "total", "overall_done",
    "overall_total", "eta_s", "time"}` events: one as each split starts, then one per chunk of
    documents (about EVAL_CHUNKS per split), so a live view shows evaluation instead of a
    training bar stuck at 100 %. Without it the splits are scored in one call each.
    """
    from newsclf.data import load_dataset
    from newsclf.metrics import compute_report, measure_latency
    from newsclf.predict import Predictor, load_model_dir
    from newsclf.prepare import stored_config

    run_dir = Path(run_dir)
    cfg = stored_config(run_dir)
    config = cfg.to_dict()
    if data is None:
        data = load_dataset(cfg.protocol, data_home, seed=cfg.seed, limit_train=cfg.limit_train)
    family = get_family(cfg.model)
    model, encoder = load_model_dir(cfg.model, run_dir / store.BEST, device)
    predictor = Predictor(run_dir, cfg.model, list(data.label_names), config, model, encoder, device,
                          cfg.eval_batch_size)
    previous = runschema.clean(runschema.RESULTS, store.run_json(run_dir, store.RESULTS))  # bad values dropped
    results: dict[str, Any] = {"model": cfg.model, "run_id": run_dir.name, "protocol": cfg.protocol}
    sync = cuda_sync(device) or (lambda: None)
    batched_ms = 0.0
    meter = _EvalMeter(on_progress, [data.val.texts, data.test.texts], max_chars=8 * int(cfg.max_len or 0) or None)
    for split in ("val", "test"):  # val first: it also warms the model up for the timed test pass
        part = getattr(data, split)
        sync()
        start = time.perf_counter()
        probs = meter.predict(predictor.predict_proba, part.texts, split)  # texts in -> probabilities out, batched
        sync()
        batched_ms = (time.perf_counter() - start) * 1000 / max(len(part.texts), 1)
        y_pred = probs.argmax(1) if len(probs) else np.zeros(0, dtype=np.int64)
        store.save_predictions(run_dir, split, store.Predictions(np.asarray(part.doc_ids), part.labels, y_pred, probs))
        report = compute_report(part.labels, y_pred, data.label_names)
        results[f"{split}_acc"] = report.accuracy
        results[f"{split}_report"] = report.to_dict()
    test = results["test_report"]
    results.update({k: test[k] for k in ("f1_macro", "f1_weighted", "precision_macro", "recall_macro")})
    meter.emit("latency", 0, min(20, len(data.test.texts)))
    latency = measure_latency(predictor.predict_proba, data.test.texts[:20], sync=sync)  # single documents
    results.update(inference_ms_per_doc=batched_ms, inference_ms_single=latency.single_ms)
    if params is None:
        params = previous.get("params"), previous.get("trainable_params")
        if params[0] is None:
            params = family.count_params(model)
    results.update(params=int(params[0]), trainable_params=int(params[1]))
    results["train_seconds"] = float(train_seconds if train_seconds is not None else previous.get("train_seconds", 0.0))
    state = runschema.clean({"best_epoch": runschema.COUNT}, store.run_json(run_dir / store.LAST, "state.json"))
    results["best_epoch"] = int(previous.get("best_epoch") or state.get("best_epoch") or best_epoch_from_metrics(run_dir))
    results["device"] = device_name(device)
    results["n_train"], results["n_val"], results["n_test"] = len(data.train.texts), len(data.val.texts), len(data.test.texts)
    results["label_names"] = list(data.label_names)
    results.update(getattr(family, "results_extra", lambda _model: {})(model))  # e.g. the BiLSTM's embeddings
    store.write_json_atomic(run_dir / store.RESULTS, results)
    return results


class _EvalMeter:
    """Scores a split in length-sorted chunks and reports progress.

    The ETA comes from the cost scored so far, a document costing its characters up to `max_chars`
    (a model reading at most max_len tokens pays nothing for the rest) plus a fixed overhead."""

    OVERHEAD_CHARS = 200

    def __init__(self, sink: ProgressSink | None, splits: Sequence[Sequence[str]], max_chars: int | None = None):
        self.sink = sink
        self.max_chars = max_chars
        self.total_docs = sum(len(texts) for texts in splits)
        self.total_chars = sum(self.cost(t) for texts in splits for t in texts) or 1
        self.docs = self.chars = 0
        self.started = time.perf_counter()

    def cost(self, text: str) -> int:
        return min(len(text), self.max_chars or len(text)) + self.OVERHEAD_CHARS

    def emit(self, split: str, done: int, total: int) -> None:
        if self.sink is None:
            return
        elapsed = time.perf_counter() - self.started
        rate = self.chars / elapsed if elapsed > 0 and self.chars else None
        eta = (self.total_chars - self.chars) / rate if rate else None
        self.sink({"type": "eval", "split": split, "done": int(done), "total": int(total),
                   "overall_done": self.docs, "overall_total": self.total_docs,
                   "eta_s": None if eta is None else round(max(eta, 0.0), 1), "time": time.time()})

    def predict(self, predict_proba: Callable, texts: Sequence[str], split: str) -> np.ndarray:
        """predict_proba(texts), in chunks of similar length when reporting (same padding as one call)."""
        n = len(texts)
        if self.sink is None or n == 0:
            return predict_proba(texts)
        self.emit(split, 0, n)
        order = np.argsort([len(t) for t in texts], kind="stable")
        size = max(EVAL_CHUNK_MIN, -(-n // EVAL_CHUNKS))
        out = None
        for start in range(0, n, size):
            idx = order[start:start + size]
            chunk = [texts[i] for i in idx]
            probs = np.asarray(predict_proba(chunk))
            if out is None:
                out = np.zeros((n, probs.shape[1]), dtype=probs.dtype)
            out[idx] = probs
            self.docs += len(chunk)
            self.chars += sum(self.cost(t) for t in chunk)
            self.emit(split, min(start + size, n), n)
        return out


def best_epoch_from_metrics(run_dir: Path) -> int:
    events, _ = store.read_metrics(run_dir / store.METRICS)
    best = [e for e in events if e.get("type") == "epoch" and e.get("is_best")]
    return int(best[-1]["epoch"]) if best else 0


def device_name(device) -> str:
    text = str(device)
    if text.startswith("cuda"):
        import torch

        return f"{text} ({torch.cuda.get_device_name(torch.device(text))})"
    return "cpu"


def cuda_sync(device: str):
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return None
