"""Evaluation: classification report, confusion matrix, parameter counts, latency.

Compute only: returns dataclasses; plots.py draws them.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


@dataclass
class EvalReport:
    """Metrics of one split."""

    accuracy: float
    f1_macro: float
    f1_weighted: float
    precision_macro: float
    recall_macro: float
    n: int
    per_class: list[dict] = field(default_factory=list)  # label, precision, recall, f1, support
    confusion: list[list[int]] = field(default_factory=list)  # rows = true, cols = predicted

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EvalReport":
        return cls(**data)


def compute_report(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> EvalReport:
    labels = list(range(len(label_names)))
    if len(y_true) == 0:  # sklearn refuses empty arrays; an empty split scores 0 with an all-zero confusion
        return EvalReport(0.0, 0.0, 0.0, 0.0, 0.0, 0,
                          [{"label": name, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for name in label_names],
                          [[0] * len(labels) for _ in labels])
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    _, _, fw, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    per_class = [{"label": name, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                  "support": int(s[i])} for i, name in enumerate(label_names)]
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return EvalReport(accuracy=float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
                      f1_macro=float(fm), f1_weighted=float(fw), precision_macro=float(pm),
                      recall_macro=float(rm), n=int(len(y_true)), per_class=per_class, confusion=cm.tolist())


def count_params(model) -> tuple[int, int]:
    """(total, trainable) parameter counts of a torch module."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(total), int(trainable)


@dataclass
class Latency:
    batched_ms_per_doc: float  # whole split, batched, texts in -> probabilities out
    single_ms: float  # median over single documents
    n_docs: int


def measure_latency(predict_proba: Callable[[list[str]], np.ndarray], texts: Sequence[str],
                    n_single: int = 20, sync: Callable[[], None] | None = None) -> Latency:
    """Time `predict_proba` on all `texts` at once and on `n_single` documents one by one.

    `sync` (e.g. torch.cuda.synchronize) is called before reading the clock.
    """
    sync = sync or (lambda: None)
    texts = list(texts)
    if not texts:
        return Latency(0.0, 0.0, 0)
    predict_proba(texts[:2])  # warm-up
    sync()
    start = time.perf_counter()
    predict_proba(texts)
    sync()
    batched = (time.perf_counter() - start) * 1000 / len(texts)
    singles = []
    for text in texts[:n_single]:
        start = time.perf_counter()
        predict_proba([text])
        sync()
        singles.append((time.perf_counter() - start) * 1000)
    return Latency(batched, statistics.median(singles), len(texts))
