"""Pure figure builders: data in, plotly Figure (or HTML markup) out. No Streamlit, no torch, no file I/O.

    dataset.py   the corpus: classes, lengths, top words, splits
    results.py   training curves, confusion matrices, per-class F1, efficiency, top-k probabilities
    explain.py   explanations: highlighted text, legend, summary lines, top attributed words
    compare.py   comparisons: metrics, pairwise differences with intervals, per-class differences,
                 reliability, accuracy by length (imported as newsclf.plots.compare)
    base.py      the shared layout and `label`, through which every untrusted string enters a figure

Every figure builder is called `plot_<what>`; the tables they draw come from newsclf.compare.
The explanation builders are imported from newsclf.plots.explain (not re-exported here: they need
newsclf.explain, which imports torch, and the dataset and results figures must stay light).
"""
from newsclf.plots.base import label, neutralise_bidi
from newsclf.plots.dataset import plot_class_distribution, plot_length_histogram, plot_split_sizes, plot_top_words
from newsclf.plots.results import (log_ticks, normalise_rows, plot_agreement, plot_confusion, plot_confusion_difference, plot_curves,
                                   plot_efficiency, plot_live_curves, plot_per_class_f1, plot_top_k, smooth)

__all__ = ["label", "log_ticks", "neutralise_bidi", "normalise_rows", "plot_agreement", "plot_confusion_difference", "smooth", "plot_class_distribution", "plot_confusion", "plot_curves",
           "plot_efficiency", "plot_length_histogram", "plot_live_curves", "plot_per_class_f1", "plot_split_sizes",
           "plot_top_k", "plot_top_words"]
