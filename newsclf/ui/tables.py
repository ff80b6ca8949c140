"""Pure data shaping for the pages (no Streamlit import): runs -> DataFrames, text limits."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from newsclf import store

MAX_PASTE_CHARS = 100_000  # pasted text beyond this is truncated (models read a few hundred tokens)
MAX_SHOW_CHARS = 20_000  # a document is shown up to this many characters

COMPARISON_COLUMNS = ["run", "model", "val acc", "test acc", "macro F1", "train s", "inference ms/doc",
                      "params", "trainable params"]


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """(text cut to `limit` characters, whether it was cut)."""
    text = "" if text is None else str(text)
    return (text[:limit], True) if len(text) > limit else (text, False)


def model_detail(config: dict[str, Any]) -> str:
    model = config.get("model", "?")
    if model == "transformer":
        return f"{Path(str(config.get('pretrained', ''))).name} / {config.get('strategy', '')}"
    if model == "tfidf":
        return f"tfidf / {config.get('classifier', '')}"
    return str(model)


def comparison_table(runs: Sequence[store.RunInfo]) -> pd.DataFrame:
    """The study's comparison table: one row per finished run."""
    rows = []
    for r in runs:
        res = r.results or {}
        rows.append({"run": r.run_id, "model": model_detail(r.config), "val acc": res.get("val_acc"),
                     "test acc": res.get("test_acc"), "macro F1": res.get("f1_macro"),
                     "train s": res.get("train_seconds"), "inference ms/doc": res.get("inference_ms_per_doc"),
                     "params": res.get("params"), "trainable params": res.get("trainable_params")})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def strategies_table(runs: Sequence[store.RunInfo]) -> pd.DataFrame:
    """Extension 1: transformer runs by pretrained model and fine-tuning strategy."""
    rows = []
    for r in runs:
        if r.config.get("model") != "transformer":
            continue
        res = r.results or {}
        params, trainable = res.get("params") or 0, res.get("trainable_params") or 0
        rows.append({"pretrained": Path(str(r.config.get("pretrained", ""))).name,
                     "strategy": r.config.get("strategy"), "run": r.run_id, "val acc": res.get("val_acc"),
                     "test acc": res.get("test_acc"), "macro F1": res.get("f1_macro"),
                     "train s": res.get("train_seconds"), "trainable params": trainable,
                     "trainable %": 100.0 * trainable / params if params else None})
    cols = ["pretrained", "strategy", "run", "val acc", "test acc", "macro F1", "train s", "trainable params",
            "trainable %"]
    return pd.DataFrame(rows, columns=cols).sort_values(["pretrained", "strategy"]).reset_index(drop=True)


def efficiency_ratios(table: pd.DataFrame, run_a: str, run_b: str) -> pd.DataFrame:
    """Ratios A / B of cost columns and the accuracy difference A - B (Extension 2)."""
    a = table.set_index("run").loc[run_a]
    b = table.set_index("run").loc[run_b]
    rows = []
    for col in ("params", "inference ms/doc", "train s"):
        ratio = float(a[col]) / float(b[col]) if b[col] and not pd.isna(b[col]) else None
        rows.append({"quantity": col, "A": a[col], "B": b[col], "A / B": ratio})
    for col in ("test acc", "macro F1"):
        rows.append({"quantity": col, "A": a[col], "B": b[col], "A - B (points)": 100 * (a[col] - b[col])})
    return pd.DataFrame(rows, columns=["quantity", "A", "B", "A / B", "A - B (points)"])


def predictions_frame(preds: store.Predictions, labels: Sequence[str]) -> pd.DataFrame:
    """One row per document: doc_id, true, predicted, confidence (prob of predicted), correct."""
    idx = np.arange(len(preds.y_pred))
    conf = preds.probs[idx, preds.y_pred] if len(idx) else np.zeros(0)
    names = np.asarray(list(labels), dtype=object)
    return pd.DataFrame({"doc_id": preds.doc_id.astype(str), "true": names[preds.y_true], "predicted": names[preds.y_pred],
                         "confidence": conf.astype(float), "correct": preds.y_true == preds.y_pred})


def errors_frame(frame: pd.DataFrame, true: Sequence[str] = (), predicted: Sequence[str] = (),
                 confidence: tuple[float, float] = (0.0, 1.0)) -> pd.DataFrame:
    """Misclassified rows filtered by true/predicted class (empty = all) and a confidence range."""
    out = frame[~frame["correct"]]
    if true:
        out = out[out["true"].isin(list(true))]
    if predicted:
        out = out[out["predicted"].isin(list(predicted))]
    lo, hi = confidence
    out = out[(out["confidence"] >= lo) & (out["confidence"] <= hi)]
    return out.sort_values("confidence", ascending=False).drop(columns="correct").reset_index(drop=True)


def disagreement_frame(a: pd.DataFrame, b: pd.DataFrame, name_a: str = "A", name_b: str = "B") -> pd.DataFrame:
    """Documents (in both frames) where the two runs predict different classes."""
    merged = a.merge(b, on="doc_id", suffixes=(" A", " B"))
    merged = merged[merged["predicted A"] != merged["predicted B"]]
    out = pd.DataFrame({"doc_id": merged["doc_id"], "true": merged["true A"],
                        f"{name_a} predicted": merged["predicted A"], f"{name_a} conf": merged["confidence A"],
                        f"{name_b} predicted": merged["predicted B"], f"{name_b} conf": merged["confidence B"]})
    out["right"] = np.select([merged["correct A"].to_numpy(), merged["correct B"].to_numpy()], [name_a, name_b],
                             default="neither")
    return out.reset_index(drop=True)


def cell_documents(preds: store.Predictions, true_idx: int, pred_idx: int) -> list[tuple[str, float]]:
    """(doc_id, confidence) of the documents in one confusion-matrix cell, most confident first."""
    mask = (preds.y_true == true_idx) & (preds.y_pred == pred_idx)
    ids = preds.doc_id[mask].astype(str)
    conf = preds.probs[mask, pred_idx] if mask.any() else np.zeros(0)
    order = np.argsort(-conf)
    return [(ids[i], float(conf[i])) for i in order]


def confusion_pairs(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> list[tuple[int, int, int]]:
    """Non-empty (true, predicted, count) cells, errors first by count, then the diagonal."""
    m = np.asarray(matrix)
    cells = [(i, j, int(m[i, j])) for i in range(m.shape[0]) for j in range(m.shape[1]) if m[i, j] > 0]
    return sorted(cells, key=lambda c: (c[0] == c[1], -c[2], c[0], c[1]))


def cell_from_point(point: dict[str, Any], n_classes: int) -> tuple[int, int] | None:
    """(true, predicted) of a clicked confusion-matrix point as st.plotly_chart reports it.

    Uses the marker's customdata ([true, predicted, count]; a list or an index-keyed dict),
    else the point index of the cell-marker trace (row-major over the n x n grid).
    """
    data = point.get("customdata")
    if isinstance(data, dict):
        data = [data[k] for k in sorted(data, key=lambda k: int(k))]
    if isinstance(data, (list, tuple)) and len(data) >= 2:
        return int(data[0]), int(data[1])
    index = point.get("point_index", point.get("point_number"))
    if point.get("curve_number") == 1 and isinstance(index, int) and 0 <= index < n_classes * n_classes:
        return divmod(index, n_classes)
    return None
