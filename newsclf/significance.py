"""Is run A really better than run B on the same documents? Paired tests that conclude.

    compare_runs(preds_a, preds_b, labels, n_boot=2000, seed=0) -> PairedComparison
    pairwise({name: Predictions}, labels) -> tidy DataFrame (one row per pair, Holm-adjusted p)

McNemar's exact test looks only at the discordant documents (b: A right and B wrong, c: the
reverse): under "equally accurate" b ~ Binomial(b + c, 1/2); two-sided p = min(1, 2 P(X <= min(b, c))).
The paired bootstrap resamples documents (the same resample for both runs) to give 95 %
percentile intervals of the accuracy and macro-F1 differences and of every class's F1 difference.
Seeded: the same inputs and seed give the same intervals. Compute only: no plotting here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from newsclf.store import Predictions

N_BOOT = 2000
PAIRWISE_COLUMNS = ("run_a", "run_b", "n", "acc_a", "acc_b", "acc_diff", "acc_diff_low", "acc_diff_high",
                    "f1_macro_a", "f1_macro_b", "f1_macro_diff", "f1_macro_diff_low", "f1_macro_diff_high",
                    "both_right", "only_a", "only_b", "both_wrong", "mcnemar_p", "mcnemar_p_holm", "verdict")
CHUNK = 250  # bootstrap resamples per vectorised block: (CHUNK, N) counts in memory


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % bootstrap interval."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass
class PairedComparison:
    """A vs B on one split. Differences are A minus B."""

    name_a: str
    name_b: str
    n: int
    acc_a: float
    acc_b: float
    f1_a: float
    f1_b: float
    both_right: int
    only_a: int  # A right, B wrong (McNemar's b)
    only_b: int  # B right, A wrong (McNemar's c)
    both_wrong: int
    mcnemar_p: float
    acc_diff: Interval
    f1_macro_diff: Interval
    per_class: list[dict] = field(default_factory=list)  # label, f1_a, f1_b, diff, low, high
    n_boot: int = N_BOOT
    seed: int = 0

    def significant(self, alpha: float = 0.05) -> bool:
        return self.mcnemar_p < alpha

    def verdict(self, alpha: float = 0.05) -> str:
        """One sentence a user can act on."""
        d = self.acc_diff
        p = "McNemar p < 1e-16" if self.mcnemar_p < 1e-16 else f"McNemar p = {self.mcnemar_p:.3g}"
        if not self.significant(alpha):
            ci = f"{d.estimate * 100:+.1f} points (95 % CI {d.low * 100:+.1f} to {d.high * 100:+.1f})"
            return (f"No significant accuracy difference between {self.name_a} and {self.name_b}: "
                    f"{self.name_a} - {self.name_b} = {ci}, {p} on {self.n} documents.")
        sign = 1 if d.estimate > 0 else -1  # state the difference from the better run's side
        better, worse = (self.name_a, self.name_b) if sign > 0 else (self.name_b, self.name_a)
        low, high = sorted((sign * d.low * 100, sign * d.high * 100))
        return (f"{better} is more accurate than {worse}: {sign * d.estimate * 100:+.1f} points "
                f"(95 % CI {low:+.1f} to {high:+.1f}), {p} on {self.n} documents.")

    def per_class_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.per_class, columns=["label", "f1_a", "f1_b", "diff", "low", "high"])

    def to_dict(self) -> dict:
        return asdict(self)

    def to_row(self) -> dict:
        """The flat row of `pairwise`."""
        return {"run_a": self.name_a, "run_b": self.name_b, "n": self.n, "acc_a": self.acc_a, "acc_b": self.acc_b,
                "acc_diff": self.acc_diff.estimate, "acc_diff_low": self.acc_diff.low, "acc_diff_high": self.acc_diff.high,
                "f1_macro_a": self.f1_a, "f1_macro_b": self.f1_b, "f1_macro_diff": self.f1_macro_diff.estimate,
                "f1_macro_diff_low": self.f1_macro_diff.low, "f1_macro_diff_high": self.f1_macro_diff.high,
                "both_right": self.both_right, "only_a": self.only_a, "only_b": self.only_b,
                "both_wrong": self.both_wrong, "mcnemar_p": self.mcnemar_p}


# ---- tests -----------------------------------------------------------------------------------
def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (1.0 when there are none)."""
    from scipy.stats import binom

    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(int(b), int(c)), n, 0.5)))


def macro_f1_counts(tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray) -> np.ndarray:
    """Per-class F1 from counts (..., C): 2 tp / (n_true + n_pred), 0 where a class is absent from both."""
    denom = n_true + n_pred
    return np.divide(2.0 * tp, denom, out=np.zeros(np.broadcast(tp, denom).shape), where=denom > 0)


def paired_bootstrap(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int,
                     n_boot: int = N_BOOT, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap distributions (n_boot,) of the accuracy and macro-F1 differences, and (n_boot, C) of the
    per-class F1 differences. Each resample draws N documents with replacement, shared by A and B.

    Classes absent from the whole split are left out of the macro average (as sklearn does with
    labels=present classes); within a resample, F1 of a class present in the split counts even if 0.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    eye = np.eye(n_classes)
    onehot_true = eye[y]  # (N, C)
    hit_a, hit_b = onehot_true * (pred_a == y)[:, None], onehot_true * (pred_b == y)[:, None]
    pa, pb = eye[pred_a], eye[pred_b]
    present = onehot_true.sum(0) + pa.sum(0) + pb.sum(0) > 0
    acc, f1, per = [], [], []
    for start in range(0, n_boot, CHUNK):
        size = min(CHUNK, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        flat = (np.arange(size)[:, None] * n + idx).ravel()
        w = np.bincount(flat, minlength=size * n).reshape(size, n).astype(np.float64)  # (B, N) multiplicities
        n_true = w @ onehot_true
        fa = macro_f1_counts(w @ hit_a, n_true, w @ pa)
        fb = macro_f1_counts(w @ hit_b, n_true, w @ pb)
        acc.append((w @ (pred_a == y) - w @ (pred_b == y)) / n)
        f1.append(fa[:, present].mean(1) - fb[:, present].mean(1))
        per.append(fa - fb)
    return np.concatenate(acc), np.concatenate(f1), np.concatenate(per)


def _interval(estimate: float, samples: np.ndarray) -> Interval:
    low, high = np.percentile(samples, [2.5, 97.5])
    return Interval(float(estimate), float(low), float(high))


def compare_predictions(y_true, pred_a, pred_b, label_names: Sequence[str] | None = None, n_boot: int = N_BOOT,
                        seed: int = 0, names: tuple[str, str] = ("A", "B")) -> PairedComparison:
    """Paired comparison of two prediction vectors on the same documents (same order)."""
    y, a, b = (np.asarray(v, dtype=np.int64) for v in (y_true, pred_a, pred_b))
    if not (y.shape == a.shape == b.shape) or y.ndim != 1 or len(y) == 0:
        raise ValueError("predictions: y_true, pred_a and pred_b must be non-empty vectors of one length")
    if n_boot < 1:
        raise ValueError("n_boot: must be at least 1")
    n_classes = int(max(y.max(), a.max(), b.max()) + 1) if label_names is None else len(label_names)
    names_ = list(label_names) if label_names is not None else [str(i) for i in range(n_classes)]
    ra, rb = a == y, b == y
    counts = [int(np.sum(ra & rb)), int(np.sum(ra & ~rb)), int(np.sum(~ra & rb)), int(np.sum(~ra & ~rb))]
    acc_s, f1_s, per_s = paired_bootstrap(y, a, b, n_classes, n_boot, seed)
    eye = np.eye(n_classes)
    n_true = eye[y].sum(0)
    fa = macro_f1_counts((eye[y] * ra[:, None]).sum(0), n_true, eye[a].sum(0))
    fb = macro_f1_counts((eye[y] * rb[:, None]).sum(0), n_true, eye[b].sum(0))
    present = n_true + eye[a].sum(0) + eye[b].sum(0) > 0
    per_class = []
    for c in range(n_classes):
        ci = _interval(fa[c] - fb[c], per_s[:, c])
        per_class.append({"label": names_[c], "f1_a": float(fa[c]), "f1_b": float(fb[c]), "diff": ci.estimate,
                          "low": ci.low, "high": ci.high})
    return PairedComparison(
        names[0], names[1], len(y), float(ra.mean()), float(rb.mean()), float(fa[present].mean()),
        float(fb[present].mean()), *counts, mcnemar_exact(counts[1], counts[2]),
        _interval(ra.mean() - rb.mean(), acc_s), _interval(fa[present].mean() - fb[present].mean(), f1_s),
        per_class, n_boot, seed)


def align(preds_a: Predictions, preds_b: Predictions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, pred_a, pred_b) of two runs' predictions on the same documents, matched by doc id.

    ValueError when the document sets or their true labels differ (not the same split)."""
    ids_a, ids_b = np.asarray(preds_a.doc_id).astype(str), np.asarray(preds_b.doc_id).astype(str)
    if len(ids_a) != len(ids_b) or len(set(ids_a)) != len(ids_a) or set(ids_a) != set(ids_b):
        raise ValueError("predictions: the two runs were not scored on the same documents")
    oa, ob = np.argsort(ids_a, kind="stable"), np.argsort(ids_b, kind="stable")
    if not np.array_equal(np.asarray(preds_a.y_true)[oa], np.asarray(preds_b.y_true)[ob]):
        raise ValueError("predictions: the two runs disagree on the true labels of the same documents")
    return np.asarray(preds_a.y_true)[oa], np.asarray(preds_a.y_pred)[oa], np.asarray(preds_b.y_pred)[ob]


def compare_runs(preds_a: Predictions, preds_b: Predictions, labels: Sequence[str] | None = None,
                 n_boot: int = N_BOOT, seed: int = 0, names: tuple[str, str] = ("A", "B")) -> PairedComparison:
    """Paired comparison of two runs' stored predictions of one split (matched by doc id)."""
    y, a, b = align(preds_a, preds_b)
    return compare_predictions(y, a, b, labels, n_boot=n_boot, seed=seed, names=names)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error over all pairs)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def pairwise(runs: Mapping[str, Predictions], labels: Sequence[str] | None = None, n_boot: int = N_BOOT,
             seed: int = 0) -> pd.DataFrame:
    """One row per pair of runs (in the given order): PairedComparison.to_row() plus `mcnemar_p_holm`
    (adjusted over all pairs) and `verdict`."""
    comparisons = [compare_runs(runs[a], runs[b], labels, n_boot=n_boot, seed=seed, names=(a, b))
                   for a, b in combinations(list(runs), 2)]
    frame = pd.DataFrame([c.to_row() for c in comparisons], columns=list(PAIRWISE_COLUMNS[:-2]))
    if frame.empty:
        return pd.DataFrame(columns=list(PAIRWISE_COLUMNS))
    frame["mcnemar_p_holm"] = holm(frame["mcnemar_p"].to_numpy())
    frame["verdict"] = [c.verdict() for c in comparisons]
    return frame
