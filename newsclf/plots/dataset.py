"""Figures of the corpus: documents per class, document lengths, top words, split sizes."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from newsclf.plots.base import HEIGHT, label, labels, layout


def plot_class_distribution(class_counts: Mapping[str, int], title: str = "Documents per class") -> go.Figure:
    """Horizontal bars, one per class, in the given (label) order."""
    names = list(class_counts)
    fig = go.Figure(go.Bar(x=[class_counts[n] for n in names], y=labels(names), orientation="h",
                           hovertemplate="%{y}: %{x} documents<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return layout(fig, title, height=max(HEIGHT, 22 * len(names) + 80), xaxis_title="documents")


def plot_length_histogram(lengths_by_split: Mapping[str, Sequence[int]], n_bins: int = 40,
                          title: str = "Document length (words, log scale)") -> go.Figure:
    """Overlaid histograms of words per document on a log x axis (log-spaced bins; 0 counts as 1)."""
    all_values = [max(int(v), 1) for vals in lengths_by_split.values() for v in vals]
    fig = go.Figure()
    if not all_values:
        return layout(fig, title + " (no documents)")
    top = max(all_values)
    edges = np.unique(np.logspace(0, math.log10(max(top, 2)) + 1e-9, n_bins + 1))
    centers = np.sqrt(edges[:-1] * edges[1:])
    for split, values in lengths_by_split.items():
        counts, _ = np.histogram(np.maximum(np.asarray(values, dtype=float), 1.0), bins=edges)
        fig.add_trace(go.Bar(x=centers, y=counts, width=np.diff(edges), name=label(split), opacity=0.65,
                             customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                             hovertemplate="%{customdata[0]:.0f}-%{customdata[1]:.0f} words: %{y}<extra>"
                                           + label(split) + "</extra>"))
    from newsclf.plots.results import log_ticks

    fig.update_xaxes(type="log", title="words per document", **log_ticks([1, top]))
    fig.update_yaxes(title="documents")
    return layout(fig, title, barmode="overlay")


def plot_top_words(words: Sequence[Sequence[Any]], title: str) -> go.Figure:
    """Bars of [word, count] pairs, most frequent on top."""
    pairs = [(str(w), int(c)) for w, c in words]
    fig = go.Figure(go.Bar(x=[c for _, c in pairs], y=labels(w for w, _ in pairs), orientation="h"))
    fig.update_yaxes(autorange="reversed")
    return layout(fig, title, height=max(300, 24 * len(pairs) + 80), xaxis_title="count")


def plot_split_sizes(sizes: Mapping[str, int], title: str = "Split sizes") -> go.Figure:
    fig = go.Figure(go.Bar(x=labels(sizes), y=list(sizes.values()), text=list(sizes.values()), textposition="auto"))
    return layout(fig, title, height=300, yaxis_title="documents")
