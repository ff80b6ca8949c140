"""Comparison of finished runs as tables: data in, pandas DataFrames out (no Streamlit, no figures).

The study's comparison table, the fine-tuning strategies table, efficiency ratios between two
runs, per-document prediction / error / disagreement frames, confusion-matrix helpers and the
per-epoch curves of metrics.jsonl. The column names are constants of this module: newsclf.plots
draws these frames by importing them, so renaming a column here renames it everywhere.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from newsclf import store
from newsclf.config import uses_field
from newsclf.models.transformer_family import model_name

# ---- column names of the comparison tables (plots.plot_efficiency reads them) -----------------
RUN = "run"
MODEL = "model"
VAL_ACC = "val acc"
TEST_ACC = "test acc"
MACRO_F1 = "macro F1"
TRAIN_S = "train s"
LATENCY = "inference ms/doc"
PARAMS = "params"
TRAINABLE = "trainable params"
TRAINABLE_PCT = "trainable %"
COMPARISON_COLUMNS = [RUN, MODEL, VAL_ACC, TEST_ACC, MACRO_F1, TRAIN_S, LATENCY, PARAMS, TRAINABLE]
STRATEGY_COLUMNS = ["pretrained", "strategy", RUN, VAL_ACC, TEST_ACC, MACRO_F1, TRAIN_S, TRAINABLE, TRAINABLE_PCT]
RATIO_COLUMNS = ["quantity", "A", "B", "A / B", "A - B (points)"]
CURVE_COLUMNS = ["epoch", "train_loss", "val_loss", "val_acc", "phase"]

_RESULT_OF = {VAL_ACC: "val_acc", TEST_ACC: "test_acc", MACRO_F1: "f1_macro", TRAIN_S: "train_seconds",
              LATENCY: "inference_ms_per_doc", PARAMS: "params", TRAINABLE: "trainable_params"}


# ---- how a run is named -------------------------------------------------------------------------
_GENERIC = re.compile(r"^(model|models|best|last|final|output|outputs|checkpoint(-\d+)?|pretrained|hf|weights)$", re.I)


def _local_path(pretrained: str) -> bool:
    """Whether `pretrained` names a folder rather than a hub id ("name" or "org/name")."""
    return pretrained.startswith(("/", ".", "~")) or pretrained.count("/") > 1 or "\\" in pretrained


def saved_model_name(run_dir: Path | None) -> str | None:
    """The model's own name from the run's best/config.json (Hugging Face config): its `_name_or_path`
    when that is a hub id, else `<model_type>-<layers>L-<width>H` (e.g. "bert-6L-384H"); None when
    there is no such file. Read inside the run without following links; values are not trusted."""
    if run_dir is None:
        return None
    cfg = store.run_json(Path(run_dir) / store.BEST, "config.json", None)
    if not isinstance(cfg, dict):
        return None
    for key in ("_name_or_path", "name_or_path"):
        value = cfg.get(key)
        if isinstance(value, str) and value and not _local_path(value) and len(value) <= 100:
            return value.rsplit("/", 1)[-1]
    kind = cfg.get("model_type")
    if not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", kind):
        arch = cfg.get("architectures")
        arch = arch[0] if isinstance(arch, list) and arch and isinstance(arch[0], str) else ""
        kind = re.sub(r"For[A-Z]\w*$|Model$", "", arch)[:40] or None
    if kind is None:
        return None
    layers = next((cfg[k] for k in ("num_hidden_layers", "n_layers", "num_layers") if isinstance(cfg.get(k), int)), None)
    width = next((cfg[k] for k in ("hidden_size", "dim", "d_model") if isinstance(cfg.get(k), int)), None)
    return kind + (f"-{layers}L" if layers else "") + (f"-{width}H" if width else "")


def run_detail(run: store.RunInfo) -> str:
    """The family's short description of the run; a pretrained model given as a local folder is named
    by the model's own name (saved_model_name), so a folder called "model" does not label the run."""
    config = run.config
    pretrained = config.get("pretrained")
    if uses_field(str(config.get("model", "")), "pretrained") and isinstance(pretrained, str) and pretrained:
        if _local_path(pretrained) or _GENERIC.match(model_name(pretrained)):
            own = saved_model_name(run.path)
            if own:
                config = {**config, "pretrained": own}
    return store.describe_config(config)


def pretrained_label(run: store.RunInfo) -> str:
    """The pretrained model's short name, as run_detail names it."""
    pretrained = str(run.config.get("pretrained", ""))
    if _local_path(pretrained) or _GENERIC.match(model_name(pretrained)):
        return saved_model_name(run.path) or model_name(pretrained)
    return model_name(pretrained)


def run_label(run: store.RunInfo, display_name: str | None = None) -> str:
    """A one-line label: the user's display name (newsclf.manage) or the run id, with run_detail."""
    if display_name:
        return f"{display_name} · {run.run_id} ({run_detail(run)})"
    return f"{run.run_id} ({run_detail(run)})"


# ---- one run's stored results -----------------------------------------------------------------
def split_report(run: store.RunInfo, split: str) -> dict[str, Any]:
    """The run's evaluation report of `split` (per_class, confusion, ...); {} when absent."""
    report = (run.results or {}).get(f"{split}_report")
    return report if isinstance(report, dict) else {}


def class_names(run: store.RunInfo, split: str = "test") -> list[str]:
    """The run's class names: results.json, else labels.json, else the report's per-class rows; [] if none."""
    names = (run.results or {}).get("label_names")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    try:
        return [str(n) for n in store.load_labels(run.path)]
    except (store.RunNotFoundError, OSError, TypeError):
        return [str(r.get("label", "")) for r in split_report(run, split).get("per_class", [])]


# ---- tables -----------------------------------------------------------------------------------
def comparison_table(runs: Sequence[store.RunInfo]) -> pd.DataFrame:
    """The study's comparison table: one row per finished run."""
    rows = []
    for r in runs:
        res = r.results or {}
        rows.append({RUN: r.run_id, MODEL: run_detail(r),
                     **{col: res.get(key) for col, key in _RESULT_OF.items()}})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def strategies_table(runs: Sequence[store.RunInfo]) -> pd.DataFrame:
    """Fine-tuning strategies: the runs whose family has a `strategy`, by pretrained model and strategy."""
    rows = []
    for r in runs:
        if not uses_field(str(r.config.get("model", "")), "strategy"):
            continue
        res = r.results or {}
        params, trainable = res.get("params") or 0, res.get("trainable_params") or 0
        rows.append({"pretrained": pretrained_label(r),
                     "strategy": r.config.get("strategy"), RUN: r.run_id, VAL_ACC: res.get("val_acc"),
                     TEST_ACC: res.get("test_acc"), MACRO_F1: res.get("f1_macro"),
                     TRAIN_S: res.get("train_seconds"), TRAINABLE: trainable,
                     TRAINABLE_PCT: 100.0 * trainable / params if params else None})
    return pd.DataFrame(rows, columns=STRATEGY_COLUMNS).sort_values(["pretrained", "strategy"]).reset_index(drop=True)


def efficiency_ratios(table: pd.DataFrame, run_a: str, run_b: str) -> pd.DataFrame:
    """Efficiency of run A against run B: ratios A / B of the cost columns, A - B in points of accuracy.

    A row fills either "A / B" or "A - B (points)"; the other cell is NaN (a display shows it blank).
    """
    a = table.set_index(RUN).loc[run_a]
    b = table.set_index(RUN).loc[run_b]
    rows = []
    for col in (PARAMS, LATENCY, TRAIN_S):
        ratio = float(a[col]) / float(b[col]) if b[col] and not pd.isna(b[col]) else np.nan
        rows.append({"quantity": col, "A": a[col], "B": b[col], "A / B": ratio})
    for col in (TEST_ACC, MACRO_F1):
        rows.append({"quantity": col, "A": a[col], "B": b[col], "A - B (points)": 100 * (a[col] - b[col])})
    return pd.DataFrame(rows, columns=RATIO_COLUMNS)


# ---- per-document frames ----------------------------------------------------------------------
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


# ---- confusion matrices -----------------------------------------------------------------------
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


# ---- training curves --------------------------------------------------------------------------
def _start_time(events: Sequence[Mapping[str, Any]]) -> float | None:
    times = [e.get("time") for e in events if isinstance(e.get("time"), (int, float)) and not isinstance(e.get("time"), bool)]
    return min(times) if times else None


def _with_time(frame: pd.DataFrame, times: list[Any], start: float | None) -> pd.DataFrame:
    frame["time_s"] = [t - start if isinstance(t, (int, float)) and start is not None else np.nan for t in times]
    return frame


def epoch_frame(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """metrics.jsonl events -> one row per epoch event (epoch, train_loss, val_loss, val_acc, phase,
    step: the last logged step before it, time_s: seconds since the run's first event)."""
    chosen, steps, last = [], [], None
    for e in events:
        if e.get("type") == "step":
            last = e.get("step")
        elif e.get("type") == "epoch":
            chosen.append(e)
            steps.append(last)
    rows = [{k: e.get(k) for k in CURVE_COLUMNS} for e in chosen]
    frame = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    frame["step"] = steps  # the last optimizer step logged before the epoch ended
    return _with_time(frame, [e.get("time") for e in chosen], _start_time(events))


def step_frame(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """metrics.jsonl events -> one row per logged optimizer step (step, loss, epoch, time_s)."""
    chosen = [e for e in events if e.get("type") == "step"]
    frame = pd.DataFrame([{"step": e.get("step"), "loss": e.get("loss"), "epoch": e.get("epoch")} for e in chosen],
                         columns=["step", "loss", "epoch"])
    return _with_time(frame, [e.get("time") for e in chosen], _start_time(events))


# ---- per-class metrics, config diff, agreement --------------------------------------------------
PER_CLASS_COLUMNS = ["class", "precision", "recall", "F1", "support"]


def per_class_table(run: store.RunInfo, split: str, other: store.RunInfo | None = None) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support of a run (class names in full); with `other`, its F1
    and the difference "F1 A - B" as two more columns. Sortable by any column in a display."""
    rows = split_report(run, split).get("per_class", [])
    frame = pd.DataFrame([{"class": str(r.get("label")), "precision": r.get("precision"), "recall": r.get("recall"),
                           "F1": r.get("f1"), "support": r.get("support")} for r in rows], columns=PER_CLASS_COLUMNS)
    if other is not None and not frame.empty:
        theirs = {str(r.get("label")): r.get("f1") for r in split_report(other, split).get("per_class", [])}
        frame["F1 B"] = [theirs.get(c) for c in frame["class"]]
        frame["F1 A - B"] = [a - b if isinstance(b, (int, float)) and isinstance(a, (int, float)) else None
                             for a, b in zip(frame["F1"], frame["F1 B"])]
    return frame


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any], only_different: bool = True) -> pd.DataFrame:
    """Two configs side by side as text (field, A, B), the differing fields first."""
    keys = sorted(set(a) | set(b), key=lambda k: (a.get(k) == b.get(k), k))
    rows = [{"field": k, "A": _config_text(a.get(k)), "B": _config_text(b.get(k))} for k in keys
            if not only_different or a.get(k) != b.get(k)]
    return pd.DataFrame(rows, columns=["field", "A", "B"])


def _config_text(value: Any) -> str:
    return "–" if value is None or value == "" else str(value)


AGREEMENT_CELLS = {("right", "right"): "both right", ("right", "wrong"): "only A right",
                   ("wrong", "right"): "only B right", ("wrong", "wrong"): "both wrong"}


def agreement_frame(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Every document both runs predicted: doc_id, true, A predicted/conf, B predicted/conf and `cell`
    (both right, only A right, only B right, both wrong) of the 2x2 agreement table."""
    m = a.merge(b, on="doc_id", suffixes=(" A", " B"))
    cell = [AGREEMENT_CELLS[("right" if ca else "wrong", "right" if cb else "wrong")]
            for ca, cb in zip(m["correct A"], m["correct B"])]
    return pd.DataFrame({"doc_id": m["doc_id"], "true": m["true A"], "A predicted": m["predicted A"],
                         "A conf": m["confidence A"], "B predicted": m["predicted B"], "B conf": m["confidence B"],
                         "cell": cell})


def agreement_counts(frame: pd.DataFrame) -> np.ndarray:
    """The 2x2 counts [[both right, only A right], [only B right, both wrong]] (rows: A right / wrong... see AGREEMENT_CELLS)."""
    counts = frame["cell"].value_counts() if len(frame) else pd.Series(dtype=int)
    return np.array([[int(counts.get("both right", 0)), int(counts.get("only A right", 0))],
                     [int(counts.get("only B right", 0)), int(counts.get("both wrong", 0))]])


def search_documents(frame: pd.DataFrame, texts: Mapping[str, str], query: str) -> pd.DataFrame:
    """Rows of `frame` whose document text contains every word of `query` (case-insensitive)."""
    words = [w.lower() for w in str(query).split() if w.strip()]
    if not words:
        return frame
    keep = [all(w in texts.get(d, "").lower() for w in words) for d in frame["doc_id"]]
    return frame[keep].reset_index(drop=True)


# ---- calibration and ensembles (header leakage: newsclf.leakage) --------------------------------------------------------
CALIBRATION_COLUMNS = ["run", "ECE", "accuracy", "mean confidence", "calibration", "temperature (val)"]
CONFIDENCE_TOLERANCE = 0.01  # |mean confidence - accuracy| within this reads as well calibrated


def confidence_verdict(accuracy: float, confidence: float) -> str:
    """Over-confident when the mean top probability exceeds the accuracy, under-confident when below."""
    gap = confidence - accuracy
    if abs(gap) <= CONFIDENCE_TOLERANCE:
        return "well calibrated"
    return f"{'over' if gap > 0 else 'under'}-confident by {abs(gap) * 100:.1f} points"


def calibration_frame(diagrams: Sequence[Any], temperatures: Mapping[str, float | None]) -> pd.DataFrame:
    """One row per calibration.Reliability (named by run id): ECE, accuracy, mean confidence, the verdict,
    and the stored temperature (None when never fitted)."""
    rows = [{"run": d.name, "ECE": d.ece, "accuracy": d.accuracy_overall, "mean confidence": d.confidence_overall,
             "calibration": confidence_verdict(d.accuracy_overall, d.confidence_overall),
             "temperature (val)": temperatures.get(d.name)} for d in diagrams]
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def combines_runs(run: store.RunInfo) -> bool:
    """Whether the run's model is other runs (an ensemble): it cannot be an ensemble member itself."""
    from newsclf.models import get_family

    try:
        return bool(getattr(get_family(run.model), "combines_runs", False))
    except ValueError:
        return False


def ensemble_members(run: store.RunInfo) -> list[str]:
    """The member run ids of a run that combines runs ([] for any other run)."""
    if not combines_runs(run):
        return []
    members = (run.results or {}).get("members") or str(run.config.get("members", "")).split(",")
    return [str(m) for m in members if m]
