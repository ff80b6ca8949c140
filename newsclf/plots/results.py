"""Figures of training and results: curves, confusion matrices, per-class F1, efficiency, top-k."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from newsclf import compare
from newsclf.plots.base import label, labels, layout


# ---- training curves ----------------------------------------------------------------------------
def plot_curves(curves: Mapping[str, pd.DataFrame], metric: str, title: str | None = None) -> go.Figure:
    """Overlaid per-epoch curves of `metric` (a column of compare.epoch_frame) for several runs."""
    fig = go.Figure()
    for name, frame in curves.items():
        if frame is None or frame.empty or metric not in frame:
            continue
        data = frame.dropna(subset=[metric])
        if data.empty:
            continue
        fig.add_trace(go.Scatter(x=data["epoch"], y=data[metric], mode="lines+markers", name=label(name)))
    fig.update_xaxes(title="epoch", dtick=1)
    fig.update_yaxes(title=metric.replace("_", " "))
    return layout(fig, title or metric.replace("_", " "), height=320, legend=dict(orientation="h", y=-0.25))


def plot_live_curves(events: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """One job's training loss per step and validation accuracy per epoch (second y axis)."""
    steps, epochs = compare.step_frame(events), compare.epoch_frame(events)
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
    return layout(fig, title, height=280)


# ---- results --------------------------------------------------------------------------------------
def normalise_rows(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Row-normalised copy (rows = true class); all-zero rows stay zero."""
    m = np.asarray(matrix, dtype=float)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def plot_confusion(matrix: Sequence[Sequence[float]], class_names: Sequence[str], title: str,
                   normalise: bool = False) -> go.Figure:
    """Heatmap (rows true, cols predicted) with a transparent marker per cell so cells are clickable.

    Each marker's customdata is [true index, predicted index, count].
    """
    counts = np.asarray(matrix, dtype=float)
    z = normalise_rows(counts) if normalise else counts
    short = labels(_short_label(name) for name in class_names)
    n = len(class_names)
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
    return layout(fig, title, height=max(420, 24 * n + 160), clickmode="event+select", dragmode=False)


def _short_label(name: str) -> str:
    """`comp.sys.ibm.pc.hardware` -> `c.s.i.pc.hardware`: shortened but still unique."""
    parts = str(name).split(".")
    if len(parts) <= 2:
        return str(name)
    return ".".join([p[0] for p in parts[:-2]] + parts[-2:])


def plot_per_class_f1(per_class: Mapping[str, Sequence[Mapping[str, Any]]], title: str = "F1 per class") -> go.Figure:
    """Grouped bars: one group per class, one bar per run; per_class is EvalReport.per_class."""
    fig = go.Figure()
    for run, rows in per_class.items():
        fig.add_trace(go.Bar(x=labels(r["label"] for r in rows), y=[r["f1"] for r in rows], name=label(run)))
    fig.update_yaxes(range=[0, 1], title="F1")
    fig.update_xaxes(tickangle=-45)
    return layout(fig, title, height=440, barmode="group", legend=dict(orientation="h", y=1.12))


def plot_efficiency(table: pd.DataFrame, x: str = compare.PARAMS, y: str = compare.TEST_ACC,
                    run_column: str = compare.RUN, title: str | None = None) -> go.Figure:
    """Scatter of accuracy against a cost column (compare.PARAMS or compare.LATENCY) on a log x axis.

    `table` is compare.comparison_table (or any frame with those columns).
    """
    data = table.dropna(subset=[x, y])
    data = data[data[x] > 0]
    fig = go.Figure(go.Scatter(x=data[x], y=data[y], mode="markers+text",
                               text=[label(_short_run(r)) for r in data[run_column]],
                               textposition="top center", marker=dict(size=12),
                               hovertemplate="%{text}<br>" + label(x) + " %{x:.4g}<br>" + label(y)
                                             + " %{y:.4f}<extra></extra>"))
    fig.update_xaxes(type="log", title=label(x))
    fig.update_yaxes(title=label(y))
    return layout(fig, title or f"{y} against {x}", height=360)


def _short_run(run_id: str) -> str:
    """Drop the `YYYYmmdd-HHMMSS-mmm-` prefix of a run id for chart labels."""
    parts = str(run_id).split("-", 3)
    return parts[3] if len(parts) == 4 and parts[0].isdigit() else str(run_id)


def plot_top_k(top: Sequence[tuple[str, float]], title: str = "") -> go.Figure:
    """Horizontal probability bars of (class name, probability), most probable on top."""
    fig = go.Figure(go.Bar(x=[p for _, p in top], y=labels(name for name, _ in top), orientation="h",
                           text=[f"{p:.1%}" for _, p in top], textposition="auto"))
    fig.update_xaxes(range=[0, 1], title="probability")
    fig.update_yaxes(autorange="reversed")
    return layout(fig, title, height=60 + 34 * max(len(top), 1))
