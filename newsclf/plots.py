"""Pure figure builders: data in, plotly Figure out. No Streamlit, no torch, no file I/O.

Every builder takes plain Python / numpy / pandas data (what metrics.py, store.py and
data.py return) and returns a `plotly.graph_objects.Figure`; ui/pages decide where to draw it.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_HEIGHT = 380
_MARGIN = dict(l=10, r=10, t=50, b=10)


def _layout(fig: go.Figure, title: str, height: int = _HEIGHT, **kw: Any) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0), height=height, margin=_MARGIN, **kw)
    return fig


# ---- dataset ------------------------------------------------------------------------------------
def plot_class_distribution(class_counts: Mapping[str, int], title: str = "Documents per class") -> go.Figure:
    """Horizontal bars, one per class, in the given (label) order."""
    names = list(class_counts)
    fig = go.Figure(go.Bar(x=[class_counts[n] for n in names], y=names, orientation="h",
                           hovertemplate="%{y}: %{x} documents<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(_HEIGHT, 22 * len(names) + 80), xaxis_title="documents")


def plot_length_histogram(lengths_by_split: Mapping[str, Sequence[int]], n_bins: int = 40,
                          title: str = "Document length (words, log scale)") -> go.Figure:
    """Overlaid histograms of words per document on a log x axis (log-spaced bins; 0 counts as 1)."""
    all_values = [max(int(v), 1) for vals in lengths_by_split.values() for v in vals]
    fig = go.Figure()
    if not all_values:
        return _layout(fig, title + " (no documents)")
    top = max(all_values)
    edges = np.unique(np.logspace(0, math.log10(max(top, 2)) + 1e-9, n_bins + 1))
    centers = np.sqrt(edges[:-1] * edges[1:])
    for split, values in lengths_by_split.items():
        counts, _ = np.histogram(np.maximum(np.asarray(values, dtype=float), 1.0), bins=edges)
        fig.add_trace(go.Bar(x=centers, y=counts, width=np.diff(edges), name=str(split), opacity=0.65,
                             customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                             hovertemplate="%{customdata[0]:.0f}-%{customdata[1]:.0f} words: %{y}<extra>" + str(split) + "</extra>"))
    fig.update_xaxes(type="log", title="words per document")
    fig.update_yaxes(title="documents")
    return _layout(fig, title, barmode="overlay")


def plot_top_words(words: Sequence[Sequence[Any]], title: str) -> go.Figure:
    """Bars of [word, count] pairs, most frequent on top."""
    pairs = [(str(w), int(c)) for w, c in words]
    fig = go.Figure(go.Bar(x=[c for _, c in pairs], y=[w for w, _ in pairs], orientation="h"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(300, 24 * len(pairs) + 80), xaxis_title="count")


def plot_split_sizes(sizes: Mapping[str, int], title: str = "Split sizes") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(sizes), y=list(sizes.values()), text=list(sizes.values()), textposition="auto"))
    return _layout(fig, title, height=300, yaxis_title="documents")


# ---- training curves ----------------------------------------------------------------------------
def epoch_frame(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """metrics.jsonl events -> one row per epoch event (epoch, train_loss, val_loss, val_acc)."""
    rows = [{k: e.get(k) for k in ("epoch", "train_loss", "val_loss", "val_acc", "phase")}
            for e in events if e.get("type") == "epoch"]
    return pd.DataFrame(rows, columns=["epoch", "train_loss", "val_loss", "val_acc", "phase"])


def step_frame(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    rows = [{"step": e.get("step"), "loss": e.get("loss")} for e in events if e.get("type") == "step"]
    return pd.DataFrame(rows, columns=["step", "loss"])


def plot_curves(curves: Mapping[str, pd.DataFrame], metric: str, title: str | None = None) -> go.Figure:
    """Overlaid per-epoch curves of `metric` (a column of epoch_frame) for several runs."""
    fig = go.Figure()
    for name, frame in curves.items():
        if frame is None or frame.empty or metric not in frame:
            continue
        data = frame.dropna(subset=[metric])
        if data.empty:
            continue
        fig.add_trace(go.Scatter(x=data["epoch"], y=data[metric], mode="lines+markers", name=str(name)))
    fig.update_xaxes(title="epoch", dtick=1)
    fig.update_yaxes(title=metric.replace("_", " "))
    return _layout(fig, title or metric.replace("_", " "), height=320, legend=dict(orientation="h", y=-0.25))


def plot_live_curves(events: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """One job's training loss per step and validation accuracy per epoch (second y axis)."""
    steps, epochs = step_frame(events), epoch_frame(events)
    fig = go.Figure()
    if not steps.empty:
        fig.add_trace(go.Scatter(x=steps["step"], y=steps["loss"], mode="lines+markers" if len(steps) < 30 else "lines",
                                 name="train loss (step)"))
    if not epochs.empty and epochs["val_acc"].notna().any():
        total = steps["step"].max() if not steps.empty else None
        n_ep = max(int(epochs["epoch"].max()), 1)
        x = epochs["epoch"] * (total / n_ep) if total else epochs["epoch"]
        fig.add_trace(go.Scatter(x=x, y=epochs["val_acc"], mode="lines+markers", name="val acc (epoch)",
                                 yaxis="y2"))
    fig.update_layout(yaxis=dict(title="loss"), yaxis2=dict(title="val acc", overlaying="y", side="right",
                                                            range=[0, 1]),
                      xaxis=dict(title="step"), legend=dict(orientation="h", y=-0.3))
    return _layout(fig, title, height=280)


# ---- results --------------------------------------------------------------------------------------
def normalise_rows(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Row-normalised copy (rows = true class); all-zero rows stay zero."""
    m = np.asarray(matrix, dtype=float)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def plot_confusion(matrix: Sequence[Sequence[float]], labels: Sequence[str], title: str,
                   normalise: bool = False) -> go.Figure:
    """Heatmap (rows true, cols predicted) with a transparent marker per cell so cells are clickable.

    Each marker's customdata is [true index, predicted index, count].
    """
    counts = np.asarray(matrix, dtype=float)
    z = normalise_rows(counts) if normalise else counts
    short = [_short_label(l) for l in labels]
    n = len(labels)
    fig = go.Figure(go.Heatmap(z=z, x=short, y=short, colorscale="Blues", showscale=False, hoverinfo="skip",
                               zmin=0, zmax=1 if normalise else None))
    ti, pi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    text = [f"{z[i, j]:.2f}" if normalise else f"{int(counts[i, j])}" for i, j in zip(ti.ravel(), pi.ravel())]
    fig.add_trace(go.Scatter(
        x=[short[j] for j in pi.ravel()], y=[short[i] for i in ti.ravel()], mode="markers+text" if n <= 20 else "markers",
        text=[t if counts[i, j] else "" for t, i, j in zip(text, ti.ravel(), pi.ravel())],
        textfont=dict(size=9), marker=dict(symbol="square", size=max(6, 360 // max(n, 1)), opacity=0.0),
        customdata=np.stack([ti.ravel(), pi.ravel(), counts.ravel()], axis=1),
        hovertemplate="true %{y}<br>predicted %{x}<br>count %{customdata[2]:.0f}<extra></extra>", showlegend=False))
    fig.update_yaxes(autorange="reversed", title="true", tickfont=dict(size=9))
    fig.update_xaxes(title="predicted", tickangle=-45, tickfont=dict(size=9))
    return _layout(fig, title, height=max(420, 24 * n + 160), clickmode="event+select", dragmode=False)


def _short_label(label: str) -> str:
    """`comp.sys.ibm.pc.hardware` -> `c.s.i.pc.hardware`: shortened but still unique."""
    parts = str(label).split(".")
    if len(parts) <= 2:
        return str(label)
    return ".".join([p[0] for p in parts[:-2]] + parts[-2:])


def plot_per_class_f1(per_class: Mapping[str, Sequence[Mapping[str, Any]]], title: str = "F1 per class") -> go.Figure:
    """Grouped bars: one group per class, one bar per run; per_class is EvalReport.per_class."""
    fig = go.Figure()
    for run, rows in per_class.items():
        fig.add_trace(go.Bar(x=[r["label"] for r in rows], y=[r["f1"] for r in rows], name=str(run)))
    fig.update_yaxes(range=[0, 1], title="F1")
    fig.update_xaxes(tickangle=-45)
    return _layout(fig, title, height=440, barmode="group", legend=dict(orientation="h", y=1.12))


def plot_efficiency(table: pd.DataFrame, x: str, y: str = "test acc", label: str = "run",
                    title: str | None = None) -> go.Figure:
    """Scatter of accuracy against a cost column (params or latency) on a log x axis."""
    data = table.dropna(subset=[x, y])
    data = data[data[x] > 0]
    fig = go.Figure(go.Scatter(x=data[x], y=data[y], mode="markers+text", text=data[label].map(_short_run),
                               textposition="top center", marker=dict(size=12),
                               hovertemplate="%{text}<br>" + x + " %{x:.4g}<br>" + y + " %{y:.4f}<extra></extra>"))
    fig.update_xaxes(type="log", title=x)
    fig.update_yaxes(title=y)
    return _layout(fig, title or f"{y} against {x}", height=360)


def _short_run(run_id: str) -> str:
    """Drop the `YYYYmmdd-HHMMSS-mmm-` prefix of a run id for chart labels."""
    parts = str(run_id).split("-", 3)
    return parts[3] if len(parts) == 4 and parts[0].isdigit() else str(run_id)


def plot_top_k(top: Sequence[tuple[str, float]], title: str = "") -> go.Figure:
    """Horizontal probability bars of (label, probability), most probable on top."""
    fig = go.Figure(go.Bar(x=[p for _, p in top], y=[l for l, _ in top], orientation="h",
                           text=[f"{p:.1%}" for _, p in top], textposition="auto"))
    fig.update_xaxes(range=[0, 1], title="probability")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=60 + 34 * max(len(top), 1))
