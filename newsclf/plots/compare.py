"""Pure plotly figure builders for run comparisons: data (DataFrames, dataclasses) in, Figure out, no st.*.

The data come from newsclf.significance, newsclf.slices and newsclf.calibration
(`plot_reliability` lives there and is re-exported here).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from newsclf.calibration import plot_reliability  # noqa: F401 - part of this module's API
from newsclf.plots.base import label, labels as _labels  # every untrusted string enters a figure escaped


def plot_metrics(metrics: pd.DataFrame):
    """Grouped bars: test accuracy and macro-F1 per run (columns run, test_acc, f1_macro)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for col, name in (("test_acc", "test accuracy"), ("f1_macro", "macro-F1")):
        fig.add_trace(go.Bar(x=_labels(metrics["run"]), y=metrics[col], name=name, text=[f"{v:.3f}" for v in metrics[col]],
                             textposition="outside"))
    fig.update_layout(title="Test accuracy and macro-F1", barmode="group", yaxis_range=[0, 1.08], height=400)
    return fig


def plot_pairwise(pairs: pd.DataFrame, metric: str = "acc_diff"):
    """Forest plot: each pair's difference (A - B) with its 95 % bootstrap interval and McNemar p."""
    import plotly.graph_objects as go

    labels = [label(f"{a} - {b}") for a, b in zip(pairs["run_a"], pairs["run_b"])]
    est, low, high = (pairs[c].to_numpy() * 100 for c in (metric, f"{metric}_low", f"{metric}_high"))
    fig = go.Figure(go.Scatter(
        x=est, y=labels, mode="markers", marker=dict(size=10),
        error_x=dict(type="data", symmetric=False, array=high - est, arrayminus=est - low),
        customdata=pairs["mcnemar_p"], hovertemplate="%{y}: %{x:+.2f} points<br>McNemar p = %{customdata:.3g}"))
    fig.add_vline(x=0, line_dash="dot", line_color="gray")
    what = "accuracy" if metric == "acc_diff" else "macro-F1"
    fig.update_layout(title=f"Paired {what} differences (points, 95 % bootstrap CI)", xaxis_title="A - B (points)",
                      height=max(250, 60 * len(labels) + 120))
    return fig


def plot_per_class_diff(per_class: pd.DataFrame, name_a: str, name_b: str):
    """Per-class F1 difference (A - B) with intervals, sorted by the difference."""
    import plotly.graph_objects as go

    df = per_class.sort_values("diff")
    fig = go.Figure(go.Bar(x=df["diff"], y=_labels(df["label"]), orientation="h",
                           error_x=dict(type="data", symmetric=False, array=df["high"] - df["diff"],
                                        arrayminus=df["diff"] - df["low"])))
    fig.update_layout(title=label(f"Per-class F1: {name_a} - {name_b}"), height=max(300, 22 * len(df) + 120))
    return fig


def plot_length_accuracy(lengths: pd.DataFrame):
    """Accuracy per length bucket (lines, one per run); hover shows documents and the unseen share."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for run, df in lengths.groupby("run", sort=False):
        fig.add_trace(go.Scatter(x=df["bucket"], y=df["accuracy"], mode="lines+markers", name=label(run),
                                 customdata=np.stack([df["n"], df["unseen_share"] * 100], axis=1),
                                 hovertemplate="%{x} words: accuracy %{y:.3f}<br>%{customdata[0]} docs, "
                                               "%{customdata[1]:.0f} % of words unseen"))
    fig.update_layout(title="Accuracy by document length (words)", xaxis_title="words", yaxis_title="accuracy",
                      yaxis_range=[0, 1.02], height=400)
    return fig


def plot_confusion_difference(diff: np.ndarray, label_names: Sequence[str], name_a: str, name_b: str):
    """Heatmap of confusion(A) - confusion(B); off the diagonal, blue = A makes fewer of these mistakes."""
    import plotly.graph_objects as go

    m = np.asarray(diff)
    bound = max(1, int(np.abs(m).max()))
    fig = go.Figure(go.Heatmap(z=m, x=_labels(label_names), y=_labels(label_names), colorscale="RdBu_r",
                               zmin=-bound, zmax=bound, hovertemplate="true %{y}<br>predicted %{x}<br>A - B: %{z}"))
    fig.update_layout(title=label(f"Confusion difference: {name_a} - {name_b}"), xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed", height=600)
    return fig
