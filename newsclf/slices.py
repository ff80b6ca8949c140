"""Where do runs fail? Error slices on stored predictions.

    length_slices(texts, correct, unseen)          accuracy by document length (words) + unseen share
    unseen_shares(texts, max_len, family, encoder)  the share of each document a model never saw
    disagreement(preds_a, preds_b)                   the 2x2 (both right / only A / only B / both wrong), doc ids per cell
    confusion_difference(preds_a, preds_b, C)        confusion matrix of A minus that of B
    top_confusions(preds, label_names, k)            the most frequent (true, predicted) mistakes

Compute only (dataclasses and DataFrames); figures live in newsclf.plots.compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from newsclf.store import Predictions
from newsclf.text import word_spans

LENGTH_EDGES = (0, 50, 100, 200, 400, 800)  # words; the last bucket is open-ended


# ---- length --------------------------------------------------------------------------------------
def word_counts(texts: Sequence[str]) -> np.ndarray:
    return np.array([len(word_spans(t)) for t in texts], dtype=np.int64)


def run_max_len(config: dict[str, Any]) -> int | None:
    """The tokens a run's model reads (torch families' max_len); None when it reads everything."""
    from newsclf.models import get_family

    try:
        family = get_family(config.get("model", ""))
    except ValueError:
        return None
    max_len = config.get("max_len")
    return int(max_len) if family.trained_by_loop and isinstance(max_len, int) and max_len > 0 else None


def unseen_shares(texts: Sequence[str], max_len: int | None = None, family=None, encoder=None) -> np.ndarray:
    """(N,) share of each document's words the model never saw (truncation).

    Exact when a torch family and its loaded encoder are given (the family's `explain_tokens` says
    which characters the model reads); otherwise approximated from words: a model reading `max_len`
    tokens sees about the first `max_len` words (sub-word tokenisers see fewer, so this is a lower bound).
    """
    texts = list(texts)
    tokens = getattr(family, "explain_tokens", None)
    if tokens is not None and encoder is not None:
        from newsclf.explain import align_to_words

        out = np.zeros(len(texts))
        for i, text in enumerate(texts):
            words = word_spans(text)
            if words:
                seen_spans = tokens(encoder, text)[2]  # character spans of the tokens the model reads
                _, hit, _ = align_to_words(words, seen_spans, np.zeros(len(seen_spans)))
                out[i] = 1.0 - hit.mean()
        return out
    n = word_counts(texts).astype(np.float64)
    if max_len is None:
        return np.zeros(len(texts))
    return np.divide(np.clip(n - max_len, 0, None), n, out=np.zeros_like(n), where=n > 0)


@dataclass
class LengthSlice:
    bucket: str  # e.g. "100-199"
    low: int
    high: int | None  # exclusive; None = open-ended
    n: int
    accuracy: float
    unseen_share: float  # mean share of the documents' words never seen


def bucket_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high - 1}"


def length_slices(n_words: np.ndarray, correct: np.ndarray, unseen: np.ndarray | None = None,
                  edges: Sequence[int] = LENGTH_EDGES) -> list[LengthSlice]:
    """Accuracy per length bucket [edges[i], edges[i+1]) in words; empty buckets are kept (n 0, NaN)."""
    n_words, correct = np.asarray(n_words), np.asarray(correct, dtype=np.float64)
    unseen = np.zeros(len(n_words)) if unseen is None else np.asarray(unseen, dtype=np.float64)
    out = []
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        mask = (n_words >= low) & ((n_words < high) if high is not None else True)
        k = int(mask.sum())
        out.append(LengthSlice(bucket_label(low, high), int(low), high, k,
                               float(correct[mask].mean()) if k else float("nan"),
                               float(unseen[mask].mean()) if k else float("nan")))
    return out


def length_frame(slices_by_run: dict[str, list[LengthSlice]]) -> pd.DataFrame:
    """Tidy: run, bucket, low, high, n, accuracy, unseen_share."""
    rows = [{"run": run, **s.__dict__} for run, slices in slices_by_run.items() for s in slices]
    return pd.DataFrame(rows, columns=["run", "bucket", "low", "high", "n", "accuracy", "unseen_share"])


# ---- two runs --------------------------------------------------------------------------------------
@dataclass
class Disagreement:
    """Documents of one split by who got them right; differences are A vs B."""

    name_a: str
    name_b: str
    both_right: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    both_wrong: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("both_right", "only_a", "only_b", "both_wrong")}

    def table(self) -> pd.DataFrame:
        """The 2x2 as a DataFrame: rows A right/wrong, columns B right/wrong."""
        c = self.counts
        return pd.DataFrame([[c["both_right"], c["only_a"]], [c["only_b"], c["both_wrong"]]],
                            index=[f"{self.name_a} right", f"{self.name_a} wrong"],
                            columns=[f"{self.name_b} right", f"{self.name_b} wrong"])


def disagreement(preds_a: Predictions, preds_b: Predictions, names: tuple[str, str] = ("A", "B")) -> Disagreement:
    from newsclf.significance import align

    y, a, b = align(preds_a, preds_b)
    ids = np.sort(np.asarray(preds_a.doc_id).astype(str), kind="stable")
    ra, rb = a == y, b == y
    return Disagreement(names[0], names[1], ids[ra & rb].tolist(), ids[ra & ~rb].tolist(),
                        ids[~ra & rb].tolist(), ids[~ra & ~rb].tolist())


def confusion(preds: Predictions, n_classes: int) -> np.ndarray:
    """(C, C) counts: rows = true class, columns = predicted."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(preds.y_true), np.asarray(preds.y_pred)), 1)
    return m


def confusion_difference(preds_a: Predictions, preds_b: Predictions, n_classes: int) -> np.ndarray:
    """confusion(A) - confusion(B) on the same documents: negative off-diagonal cells are mistakes A avoids."""
    from newsclf.significance import align

    align(preds_a, preds_b)  # the same documents, or ValueError
    return confusion(preds_a, n_classes) - confusion(preds_b, n_classes)


def top_confusions(preds: Predictions, label_names: Sequence[str], k: int = 10) -> pd.DataFrame:
    """The k most frequent mistakes: true, predicted, count, share of the true class's documents."""
    m = confusion(preds, len(label_names))
    support = m.sum(1)
    off = [(m[i, j], i, j) for i in range(len(m)) for j in range(len(m)) if i != j and m[i, j] > 0]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    rows = [{"true": label_names[i], "predicted": label_names[j], "count": int(c),
             "share_of_true": float(c / support[i]) if support[i] else 0.0} for c, i, j in off[:k]]
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true"])
