"""Figures of training and results: curves, confusion matrices, per-class F1, efficiency, top-k."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from newsclf import compare
from newsclf.plots.base import label, labels, layout


# ---- training curves ----------------------------------------------------------------------------
def smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """TensorBoard-style exponential moving average (weight 0 = raw), debiased at the start."""
    out, last, norm = [], 0.0, 0.0
    for v in np.asarray(values, dtype=float):
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(last / norm if norm else v)
    return np.asarray(out)


def plot_curves(curves: Mapping[str, pd.DataFrame], metric: str, title: str | None = None, x: str = "epoch",
                smoothing: float = 0.0, log_y: bool = False, empty_note: str | None = None) -> go.Figure:
    """Overlaid curves of `metric` for several runs against column `x` (epoch, step or wall-clock
    seconds "time_s"); `smoothing` is an EMA weight in [0, 1) (the raw curve stays, faint).
    Runs without the metric are left out; with none left the figure says `empty_note`."""
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    for i, (name, frame) in enumerate(curves.items()):
        if frame is None or frame.empty or metric not in frame or x not in frame:
            continue
        data = frame.dropna(subset=[metric, x])
        if data.empty:
            continue
        colour = palette[i % len(palette)]
        mode = "lines+markers" if len(data) < 30 else "lines"
        if smoothing > 0 and len(data) > 2:
            fig.add_trace(go.Scatter(x=data[x], y=data[metric], mode="lines", line=dict(color=colour, width=1),
                                     opacity=0.3, showlegend=False, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=data[x], y=smooth(data[metric], smoothing), mode=mode, name=label(name),
                                     line=dict(color=colour)))
        else:
            fig.add_trace(go.Scatter(x=data[x], y=data[metric], mode=mode, name=label(name), line=dict(color=colour)))
    fig.update_xaxes(title=AXIS_TITLES.get(x, x), **({"dtick": 1} if x == "epoch" else {}))
    fig.update_yaxes(title=metric.replace("_", " "), type="log" if log_y else "linear")
    if not fig.data:
        fig.add_annotation(text=label(empty_note or "no data for these runs"), showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=13, color="#666"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return layout(fig, title or metric.replace("_", " "), height=320, legend=dict(orientation="h", y=-0.25))


AXIS_TITLES = {"epoch": "epoch", "step": "optimizer step", "time_s": "wall-clock seconds since the start"}


def plot_live_curves(events: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """One job's training loss per step and validation accuracy per epoch (second y axis, 0-100 %)."""
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
    fig.update_layout(yaxis=dict(title="loss", rangemode="tozero"),
                      yaxis2=dict(title="val acc", overlaying="y", side="right", range=[0, 1], tickformat=".0%",
                                  tickvals=[0, 0.25, 0.5, 0.75, 1.0], showgrid=False),
                      xaxis=dict(title="step"), legend=dict(orientation="h", y=-0.3))
    return layout(fig, title, height=280)


# ---- results --------------------------------------------------------------------------------------
def normalise_rows(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Row-normalised copy (rows = true class); all-zero rows stay zero."""
    m = np.asarray(matrix, dtype=float)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def _text_colours(z: np.ndarray, zmin: float, zmax: float, diverging: bool = False) -> list[str]:
    """Black or white per cell so labels stay readable on light and dark cells."""
    span = (zmax - zmin) or 1.0
    level = np.abs(z) / (max(abs(zmin), abs(zmax)) or 1.0) if diverging else (z - zmin) / span
    return ["white" if v > 0.55 else "#1b1b1b" for v in level.ravel()]


def plot_confusion(matrix: Sequence[Sequence[float]], class_names: Sequence[str], title: str,
                   normalise: bool = True, zmax: float | None = None, short_labels: bool = False) -> go.Figure:
    """One large heatmap (rows true, columns predicted), full class names, a label in every non-empty
    cell in black or white by cell darkness, and a transparent marker per cell so cells are clickable.

    normalise: each row divided by its total (recall on the diagonal), colour scale 0-1; else counts
    on a scale up to `zmax` (pass the largest count of all compared runs so their colours compare).
    Each marker's customdata is [true index, predicted index, count].
    """
    counts = np.asarray(matrix, dtype=float)
    z = normalise_rows(counts) if normalise else counts
    top = 1.0 if normalise else float(zmax if zmax is not None else (counts.max() if counts.size else 1.0)) or 1.0
    names = labels(_short_label(n) if short_labels else n for n in class_names)
    n = len(class_names)
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", zmin=0, zmax=top, hoverinfo="skip",
                               colorbar=dict(title="share of row" if normalise else "documents", thickness=12,
                                             tickformat=".0%" if normalise else "d")))
    ti, pi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    text = [(f"{z[i, j]:.0%}" if normalise else f"{int(counts[i, j])}") if counts[i, j] else ""
            for i, j in zip(ti.ravel(), pi.ravel())]
    fig.add_trace(go.Scatter(
        x=[names[j] for j in pi.ravel()], y=[names[i] for i in ti.ravel()], mode="markers+text", text=text,
        textfont=dict(size=10, color=_text_colours(z, 0.0, top)),
        marker=dict(symbol="square", size=max(8, 640 // max(n, 1)), opacity=0.0),
        customdata=np.stack([ti.ravel(), pi.ravel(), counts.ravel()], axis=1),
        hovertemplate="true %{y}<br>predicted %{x}<br>count %{customdata[2]:.0f}<extra></extra>", showlegend=False))
    fig.update_yaxes(autorange="reversed", title="true class", tickfont=dict(size=11), automargin=True)
    fig.update_xaxes(title="predicted class", tickangle=-40, tickfont=dict(size=11), automargin=True, side="bottom")
    return layout(fig, title, height=max(520, 30 * n + 260), clickmode="event+select", dragmode=False)


def plot_confusion_difference(matrix_a: Sequence[Sequence[float]], matrix_b: Sequence[Sequence[float]],
                              class_names: Sequence[str], title: str, normalise: bool = True) -> go.Figure:
    """A minus B, cell by cell (row shares when `normalise`, else counts), on a diverging scale
    centred on 0: red where A puts more documents than B, blue where fewer."""
    a, b = np.asarray(matrix_a, dtype=float), np.asarray(matrix_b, dtype=float)
    if normalise:
        a, b = normalise_rows(a), normalise_rows(b)
    d = a - b
    top = float(np.abs(d).max()) or 1.0
    names = labels(class_names)
    n = len(class_names)
    text = [[(f"{d[i, j]:+.0%}" if normalise else f"{int(d[i, j]):+d}") if abs(d[i, j]) > 1e-9 else ""
             for j in range(n)] for i in range(n)]
    fig = go.Figure(go.Heatmap(z=d, x=names, y=names, colorscale="RdBu_r", zmid=0, zmin=-top, zmax=top,
                               text=text, texttemplate="%{text}", textfont=dict(size=10),
                               hovertemplate="true %{y}<br>predicted %{x}<br>A - B %{z:.3g}<extra></extra>",
                               colorbar=dict(title="A - B", thickness=12, tickformat=".0%" if normalise else "d")))
    fig.update_yaxes(autorange="reversed", title="true class", automargin=True)
    fig.update_xaxes(title="predicted class", tickangle=-40, automargin=True)
    return layout(fig, title, height=max(520, 30 * n + 260))


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
                               textposition=label_positions(data[x].tolist(), data[y].tolist()), marker=dict(size=12),
                               hovertemplate="%{text}<br>" + label(x) + " %{x:.4g}<br>" + label(y)
                                             + " %{y:.4f}<extra></extra>"))
    fig.update_xaxes(type="log", title=label(x), **log_ticks(data[x].tolist()))
    fig.update_yaxes(title=label(y))
    return layout(fig, title or f"{y} against {x}", height=360)


POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left")


def label_positions(xs: Sequence[float], ys: Sequence[float], rel: float = 0.02) -> list[str]:
    """A text position per point; points that (nearly) coincide get different positions so their labels do not overlap."""
    out: list[str] = []
    seen: list[tuple[float, float]] = []
    yspan = (max(ys) - min(ys)) if len(ys) > 1 else 1.0
    for x, y in zip(xs, ys):
        near = sum(1 for px, py in seen if abs(np.log10(px) - np.log10(x)) < 0.05
                   and abs(py - y) <= max(rel * (yspan or 1.0), 1e-9) * 5)
        out.append(POSITIONS[near % len(POSITIONS)])
        seen.append((x, y))
    return out


def log_ticks(values: Sequence[float]) -> dict[str, Any]:
    """Tick values for a log axis: 1-2-5 steps with readable labels (1k, 2M, 0.5) instead of Plotly's "5 1 2 5"."""
    values = [v for v in values if v and v > 0]
    if not values:
        return {}
    lo, hi = np.floor(np.log10(min(values))) - 1, np.ceil(np.log10(max(values))) + 1
    ticks = [m * 10.0 ** e for e in range(int(lo), int(hi) + 1) for m in (1, 2, 5)]
    per_decade = 3 if hi - lo <= 4 else 1
    ticks = [t for t in ticks if per_decade == 3 or str(int(round(t / 10 ** np.floor(np.log10(t)))))[0] == "1"]
    return {"tickvals": ticks, "ticktext": [_si(t) for t in ticks], "tickmode": "array"}


def _si(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


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


def plot_agreement(counts: Sequence[Sequence[int]], name_a: str = "A", name_b: str = "B",
                   title: str = "Where the two runs agree") -> go.Figure:
    """The 2x2 agreement table as a clickable heatmap: rows A right / A wrong, columns B right / B wrong.

    Cell markers carry customdata [row, column, count] (row 0 = A right, column 0 = B right)."""
    c = np.asarray(counts, dtype=float)
    # rows: A right, A wrong; columns: B right, B wrong (counts come as [[RR, A only], [B only, WW]])
    grid = np.array([[c[0, 0], c[0, 1]], [c[1, 0], c[1, 1]]])
    xs, ys = [f"{label(name_b)} right", f"{label(name_b)} wrong"], [f"{label(name_a)} right", f"{label(name_a)} wrong"]
    names = [["both right", "only A right"], ["only B right", "both wrong"]]
    fig = go.Figure(go.Heatmap(z=grid, x=xs, y=ys, colorscale="Blues", showscale=False, hoverinfo="skip"))
    top = grid.max() or 1.0
    fig.add_trace(go.Scatter(
        x=[xs[j] for i in range(2) for j in range(2)], y=[ys[i] for i in range(2) for j in range(2)],
        mode="markers+text", text=[f"{names[i][j]}<br>{int(grid[i, j])}" for i in range(2) for j in range(2)],
        textfont=dict(size=14, color=["white" if grid[i, j] / top > 0.55 else "#1b1b1b" for i in range(2) for j in range(2)]),
        marker=dict(symbol="square", size=90, opacity=0.0),
        customdata=[[i, j, int(grid[i, j])] for i in range(2) for j in range(2)],
        hovertemplate="%{text}<extra></extra>", showlegend=False))
    fig.update_yaxes(autorange="reversed")
    return layout(fig, title, height=300, clickmode="event+select", dragmode=False)
