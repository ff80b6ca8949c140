"""A comparison report of finished runs: one offline HTML page, CSVs and a Markdown summary.

    report = compute_comparison(load_runs(["tfidf", "bilstm"], runs_dir), data_home=...)
    write_report(runs, out_dir)   # `python -m newsclf report RUN... --out DIR`

Files: report.html (plotly's JS inlined once, no external script), metrics.csv, per_class.csv,
predictions.csv (test split), pairwise.csv, calibration.csv, length_slices.csv, confusions.csv,
summary.md. Everything comes from the runs' stored predictions (no model is loaded); length
slices also need the corpus (skipped with a note when it is absent). Compute here, figures in
newsclf.plots.compare, rendering below: three steps.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from newsclf import store
from newsclf.config import resolve_runs_dir
from newsclf.errors import UserError

FILES = ("report.html", "summary.md", "metrics.csv", "per_class.csv", "predictions.csv", "pairwise.csv",
         "calibration.csv", "length_slices.csv", "confusions.csv")


RunData = store.FinishedRun  # a compared run: its stored config, results, class names and predictions


@dataclass
class Comparison:
    """Everything the report shows, as tables (figures are built from these)."""

    runs: list[RunData]
    metrics: pd.DataFrame
    per_class: pd.DataFrame
    predictions: pd.DataFrame
    pairwise: pd.DataFrame
    calibration: pd.DataFrame
    lengths: pd.DataFrame
    confusions: pd.DataFrame
    reliability: list = field(default_factory=list)  # calibration.Reliability per run (test split)
    confusion_diffs: list = field(default_factory=list)  # (name_a, name_b, (C, C) array) per adjacent pair
    notes: list[str] = field(default_factory=list)


def load_runs(runs: Sequence[str | Path], runs_dir: str | Path | None = None) -> list[RunData]:
    """Finished runs with stored val and test predictions and the same class names; UserError otherwise."""
    root = resolve_runs_dir(runs_dir)
    out: list[RunData] = []
    for run in runs:
        try:
            out.append(store.load_finished(store.resolve_run(run, root)))
        except store.RunNotFoundError as exc:
            raise UserError(str(exc)) from None
    if len({r.run_id for r in out}) != len(out):
        raise UserError("runs: a run is given twice")
    if any(r.labels != out[0].labels for r in out):
        raise UserError("runs: the runs have different class names; compare runs of one label set")
    return out


def compute_comparison(runs: Sequence[RunData], data_home: str | None = None, n_boot: int = 2000,
                       seed: int = 0) -> Comparison:
    """All tables of the report (test split; temperatures fitted on validation)."""
    from newsclf.calibration import calibrate, reliability
    from newsclf.metrics import compute_report
    from newsclf.slices import top_confusions

    if not runs:
        raise UserError("runs: give at least one run")
    labels = runs[0].labels
    notes: list[str] = []
    metric_rows, class_rows, cal_rows, conf_frames, pred_frames, rel = [], [], [], [], [], []
    for r in runs:
        rep = compute_report(r.test.y_true, r.test.y_pred, labels)
        cal = calibrate(r.val, r.test)
        res = r.results
        metric_rows.append({"run": r.run_id, "model": r.config.get("model", "?"), "detail": r.detail,
                            "val_acc": float(res.get("val_acc", np.nan)), "test_acc": rep.accuracy,
                            "f1_macro": rep.f1_macro, "f1_weighted": rep.f1_weighted,
                            "precision_macro": rep.precision_macro, "recall_macro": rep.recall_macro,
                            "ece_test": cal.ece_test, "n_test": rep.n, "params": res.get("params"),
                            "train_seconds": res.get("train_seconds"),
                            "inference_ms_per_doc": res.get("inference_ms_per_doc")})
        class_rows += [{"run": r.run_id, **c} for c in rep.per_class]
        cal_rows.append({"run": r.run_id, **cal.to_dict()})
        rel.append(reliability(r.test.probs, r.test.y_true, r.run_id))
        conf_frames.append(top_confusions(r.test, labels, k=10).assign(run=r.run_id))
        probs = r.test.probs
        pred_frames.append(pd.DataFrame({
            "run": r.run_id, "doc_id": r.test.doc_id.astype(str), "true": [labels[i] for i in r.test.y_true],
            "predicted": [labels[i] for i in r.test.y_pred], "correct": r.test.y_true == r.test.y_pred,
            "confidence": probs.max(1) if len(probs) else [], "p_true": probs[np.arange(len(probs)), r.test.y_true]}))
    pairs, diffs = _pairs(runs, labels, n_boot, seed, notes)
    return Comparison(list(runs), pd.DataFrame(metric_rows), pd.DataFrame(class_rows), pd.concat(pred_frames),
                      pairs, pd.DataFrame(cal_rows), _lengths(runs, data_home, notes),
                      pd.concat(conf_frames)[["run", "true", "predicted", "count", "share_of_true"]],
                      rel, diffs, notes)


def _pairs(runs, labels, n_boot, seed, notes):
    from newsclf.significance import pairwise
    from newsclf.slices import confusion_difference

    by_docs: dict[tuple, dict[str, store.Predictions]] = {}
    for r in runs:
        by_docs.setdefault(tuple(sorted(r.test.doc_id.astype(str))), {})[r.run_id] = r.test
    if len(by_docs) > 1:
        notes.append("the runs were not all scored on the same test documents: only runs of one document set are paired")
    frames = [pairwise(group, labels, n_boot=n_boot, seed=seed) for group in by_docs.values() if len(group) > 1]
    frame = pd.concat(frames, ignore_index=True) if frames else pairwise({}, labels)
    diffs = []
    for group in by_docs.values():
        names = list(group)
        for a, b in zip(names, names[1:]):
            diffs.append((a, b, confusion_difference(group[a], group[b], len(labels))))
    return frame, diffs


def _lengths(runs: Sequence[RunData], data_home: str | None, notes: list[str]) -> pd.DataFrame:
    from newsclf.data import DataError, get_documents
    from newsclf.slices import length_frame, length_slices, run_max_len, unseen_shares, word_counts

    slices = {}
    for r in runs:
        ids = r.test.doc_id.astype(str)
        try:
            docs = get_documents(ids, r.config.get("protocol", "seed"), data_home)
        except DataError as exc:
            notes.append(f"length slices skipped: the corpus is not available ({str(exc).splitlines()[0][:120]})")
            return length_frame({})
        keep = np.array([i in docs for i in ids])
        if not keep.all():
            notes.append(f"{r.run_id}: {int((~keep).sum())} test documents not found in the corpus, left out of length slices")
        texts = [docs[i] for i in ids[keep]]
        correct = (r.test.y_true == r.test.y_pred)[keep]
        unseen = unseen_shares(texts, run_max_len(r.config))
        slices[r.run_id] = length_slices(word_counts(texts), correct, unseen)
    notes.append("unseen share: words beyond a model's max_len tokens, approximated from words "
                 "(sub-word models see fewer words, so this is a lower bound)")
    return length_frame(slices)


# ---- figures and rendering ----------------------------------------------------------------------
def build_figures(cmp: Comparison) -> list[tuple[str, Any]]:
    """(title, plotly Figure) in report order."""
    from newsclf.plots import compare as pc

    figs = [("Metrics", pc.plot_metrics(cmp.metrics))]
    if not cmp.pairwise.empty:
        figs.append(("Paired accuracy differences", pc.plot_pairwise(cmp.pairwise, "acc_diff")))
        figs.append(("Paired macro-F1 differences", pc.plot_pairwise(cmp.pairwise, "f1_macro_diff")))
    figs.append(("Calibration", pc.plot_reliability(cmp.reliability)))
    if not cmp.lengths.empty:
        figs.append(("Accuracy by length", pc.plot_length_accuracy(cmp.lengths)))
    for a, b, diff in cmp.confusion_diffs:
        figs.append((f"Confusion difference {a} - {b}", pc.plot_confusion_difference(diff, cmp.runs[0].labels, a, b)))
    return figs


def render_html(cmp: Comparison, figures: Sequence[tuple[str, Any]]) -> str:
    """One self-contained page: the first figure carries plotly.js inline, the others reuse it."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>newsclf comparison</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
             "</head><body><h1>Run comparison</h1>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in summary_lines(cmp)]
    parts += [f"<p><em>note: {html.escape(n)}</em></p>" for n in cmp.notes]
    parts.append("<h2>Metrics (test)</h2>" + cmp.metrics.to_html(index=False, float_format=lambda v: f"{v:.4f}"))
    if not cmp.pairwise.empty:
        parts.append("<h2>Pairwise tests (test)</h2>" + cmp.pairwise.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    parts.append("<h2>Calibration</h2>" + cmp.calibration.to_html(index=False, float_format=lambda v: f"{v:.4f}"))
    for i, (title, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), include_mathjax=False))
    parts.append("<h2>Top confusions</h2>" + cmp.confusions.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def summary_lines(cmp: Comparison) -> list[str]:
    lines = []
    best = cmp.metrics.sort_values("test_acc", ascending=False).iloc[0]
    lines.append(f"Best test accuracy: {best['run']} ({best['detail']}) at {best['test_acc']:.4f}.")
    lines += list(cmp.pairwise.get("verdict", []))
    for _, row in cmp.calibration.iterrows():
        lines.append(f"{row['run']}: ECE {row['ece_test']:.3f} on test; temperature {row['temperature']:.2f} "
                     f"(fitted on validation) gives {row['ece_test_scaled']:.3f}.")
    return lines


def render_markdown(cmp: Comparison) -> str:
    cols = ["run", "detail", "val_acc", "test_acc", "f1_macro", "ece_test", "params", "train_seconds"]
    out = ["# Run comparison", "", *[f"- {line}" for line in summary_lines(cmp)], ""]
    out += [f"> note: {n}" for n in cmp.notes] + ([""] if cmp.notes else [])
    out += ["## Metrics (test)", "", _md_table(cmp.metrics[cols]), ""]
    if not cmp.pairwise.empty:
        pcols = ["run_a", "run_b", "acc_diff", "acc_diff_low", "acc_diff_high", "f1_macro_diff", "f1_macro_diff_low",
                 "f1_macro_diff_high", "only_a", "only_b", "mcnemar_p", "mcnemar_p_holm"]
        out += ["## Pairwise tests (test)", "", _md_table(cmp.pairwise[pcols]), ""]
    return "\n".join(out)


def _md_table(df: pd.DataFrame) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v).replace("|", "\\|")  # noqa: E731
    rows = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    rows += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(rows)


def prepare_out_dir(out: str | Path, force: bool = False) -> Path:
    """Create `out`; refuse an existing non-empty folder (or a file) unless `force`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"out: {out} is not empty; choose another folder or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_report(runs: Sequence[str | Path], out: str | Path, runs_dir: str | Path | None = None,
                 data_home: str | None = None, force: bool = False, n_boot: int = 2000, seed: int = 0) -> dict[str, Path]:
    """Compute, draw and write the report; returns {file name: path}."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"out: {out} is not empty; choose another folder or pass --force")
    cmp = compute_comparison(load_runs(runs, runs_dir), data_home, n_boot, seed)
    page = render_html(cmp, build_figures(cmp))
    from newsclf.csvsafe import write_csv
    from newsclf.safeio import replace_bytes

    out = prepare_out_dir(out, force)
    paths = {name: out / name for name in FILES}
    # each file is written to a temp file and replaced in: a link planted in `out` is replaced, never followed
    replace_bytes(paths["report.html"], page.encode("utf-8"))
    replace_bytes(paths["summary.md"], render_markdown(cmp).encode("utf-8"))
    for name, frame in (("metrics.csv", cmp.metrics), ("per_class.csv", cmp.per_class),
                        ("predictions.csv", cmp.predictions), ("pairwise.csv", cmp.pairwise),
                        ("calibration.csv", cmp.calibration), ("length_slices.csv", cmp.lengths),
                        ("confusions.csv", cmp.confusions)):
        write_csv(frame, paths[name])  # cells that would start a spreadsheet formula are neutralised
    return paths
