"""Pure figure builders (newsclf.plots) and the comparison tables they draw (newsclf.compare)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from newsclf import compare, plots, store


def test_plots_and_compare_do_not_import_streamlit():
    import subprocess

    code = "import sys, newsclf.plots, newsclf.plots.explain, newsclf.ui, newsclf.compare; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dataset_figures():
    fig = plots.plot_class_distribution({"a": 3, "b": 5})
    assert isinstance(fig, go.Figure) and list(fig.data[0].x) == [3, 5]
    hist = plots.plot_length_histogram({"train": [0, 1, 10, 100, 1000], "test": [5, 50]})
    assert hist.layout.xaxis.type == "log"
    assert sum(hist.data[0].y) == 5 and sum(hist.data[1].y) == 2
    assert plots.plot_length_histogram({}).data == ()
    assert list(plots.plot_top_words([["space", 9], ["nasa", 4]], "t").data[0].y) == ["space", "nasa"]
    assert list(plots.plot_split_sizes({"train": 3, "val": 1}).data[0].y) == [3, 1]


def test_curves_from_events():
    events = [{"type": "start"}, {"type": "step", "step": 1, "loss": 2.0}, {"type": "step", "step": 2, "loss": 1.0},
              {"type": "epoch", "epoch": 1, "train_loss": 1.5, "val_loss": 1.2, "val_acc": 0.5, "phase": "all"},
              {"type": "epoch", "epoch": 2, "train_loss": None, "val_loss": 1.0, "val_acc": 0.7, "phase": "all"}]
    frame = compare.epoch_frame(events)
    assert list(frame["val_acc"]) == [0.5, 0.7]
    fig = plots.plot_curves({"run-a": frame, "empty": compare.epoch_frame([])}, "train_loss")
    assert len(fig.data) == 1 and list(fig.data[0].y) == [1.5]
    live = plots.plot_live_curves(events)
    assert [t.name for t in live.data] == ["train loss (step)", "val acc (epoch)"]
    assert len(plots.plot_live_curves([]).data) == 0


def test_confusion_normalise_and_clickable_cells():
    m = [[3, 1], [0, 0]]
    assert np.allclose(plots.normalise_rows(m), [[0.75, 0.25], [0, 0]])
    fig = plots.plot_confusion(m, ["sci.space", "comp.sys.ibm.pc.hardware"], "cm", normalise=True)
    heat, cells = fig.data
    assert heat.type == "heatmap" and cells.type == "scatter"
    assert cells.customdata.shape == (4, 3)
    assert list(cells.customdata[1]) == [0, 1, 1]  # true 0, predicted 1, count 1
    assert "comp.sys.ibm.pc.hardware" in heat.x  # full class names: one large matrix has room for them


def test_results_figures():
    per_class = {"a": [{"label": "x", "f1": 0.5}, {"label": "y", "f1": 1.0}], "b": [{"label": "x", "f1": 0.2}, {"label": "y", "f1": 0.1}]}
    assert len(plots.plot_per_class_f1(per_class).data) == 2
    table = pd.DataFrame({"run": ["20260101-000000-000-tfidf", "r2"], "test acc": [0.8, 0.9], "params": [10, 0],
                          "inference ms/doc": [0.1, 2.0]})
    eff = plots.plot_efficiency(table, "params")
    assert list(eff.data[0].text) == ["tfidf"]  # zero params cannot sit on a log axis
    top = plots.plot_top_k([("sci.space", 0.9), ("sci.med", 0.05)])
    assert list(top.data[0].text) == ["90.0%", "5.0%"]


def _run(run_id, model, val, test, params, extra=None):
    config = {"model": model, "pretrained": "/x/distilbert", "strategy": "freeze", "classifier": "cnb", **(extra or {})}
    results = {"val_acc": val, "test_acc": test, "f1_macro": test - 0.01, "train_seconds": 10.0,
               "inference_ms_per_doc": 2.0 if model == "transformer" else 0.1, "params": params,
               "trainable_params": params // 2}
    return store.RunInfo(run_id, None, config, {"state": "finished"}, results)


def test_comparison_strategies_and_ratios():
    runs = [_run("a", "tfidf", 0.8, 0.7, 1000), _run("b", "transformer", 0.9, 0.85, 66_000_000)]
    table = compare.comparison_table(runs)
    assert list(table.columns) == compare.COMPARISON_COLUMNS and list(table["model"]) == ["tfidf / cnb", "distilbert / freeze"]
    strat = compare.strategies_table(runs)
    assert list(strat["run"]) == ["b"] and strat["trainable %"][0] == 50.0
    ratios = compare.efficiency_ratios(table, "b", "a").set_index("quantity")
    assert ratios.loc["params", "A / B"] == 66_000
    assert round(ratios.loc["test acc", "A - B (points)"], 6) == 15.0


def _preds(y_true, y_pred, conf):
    n = len(y_true)
    probs = np.full((n, 3), 0.0, dtype=np.float32)
    for i, (p, c) in enumerate(zip(y_pred, conf)):
        probs[i] = (1 - c) / 2
        probs[i, p] = c
    return store.Predictions(np.array([f"test/x/{i}" for i in range(n)]), np.array(y_true), np.array(y_pred), probs)


def test_errors_disagreement_and_cells():
    labels = ["a", "b", "c"]
    a = compare.predictions_frame(_preds([0, 1, 2, 0], [1, 1, 0, 0], [0.9, 0.8, 0.4, 0.7]), labels)
    b = compare.predictions_frame(_preds([0, 1, 2, 0], [0, 2, 0, 0], [0.6, 0.5, 0.9, 0.9]), labels)
    errs = compare.errors_frame(a)
    assert list(errs["doc_id"]) == ["test/x/0", "test/x/2"]  # most confident first
    assert list(compare.errors_frame(a, true=["c"])["doc_id"]) == ["test/x/2"]
    assert list(compare.errors_frame(a, predicted=["b"], confidence=(0.0, 0.5))["doc_id"]) == []
    dis = compare.disagreement_frame(a, b)
    assert list(dis["doc_id"]) == ["test/x/0", "test/x/1"] and list(dis["right"]) == ["B", "A"]
    preds = _preds([0, 0, 1], [1, 1, 1], [0.6, 0.9, 0.8])
    assert [d for d, _ in compare.cell_documents(preds, 0, 1)] == ["test/x/1", "test/x/0"]
    assert compare.confusion_pairs([[1, 2], [0, 3]], ["a", "b"]) == [(0, 1, 2), (1, 1, 3), (0, 0, 1)]


def test_cell_from_point():
    assert compare.cell_from_point({"customdata": [2, 3, 7]}, 20) == (2, 3)
    assert compare.cell_from_point({"customdata": {"0": 4, "1": 1, "2": 9}}, 20) == (4, 1)
    assert compare.cell_from_point({"curve_number": 1, "point_index": 21}, 20) == (1, 1)
    assert compare.cell_from_point({"curve_number": 0, "point_index": 3}, 20) is None


EVIL = ["[x](javascript:alert(1))", "<b>bold</b>", "a & b"]


def test_figures_escape_untrusted_labels():
    figs = [plots.plot_confusion([[1, 0, 0], [0, 1, 0], [0, 0, 1]], EVIL, "<i>run</i>"),
            plots.plot_top_k([(EVIL[1], 0.9), (EVIL[2], 0.1)], "<b>t</b>"),
            plots.plot_per_class_f1({"<b>run</b>": [{"label": n, "f1": 0.5} for n in EVIL]}),
            plots.plot_class_distribution({n: 1 for n in EVIL}),
            plots.plot_curves({"<b>run</b>": compare.epoch_frame([{"type": "epoch", "epoch": 1, "val_acc": 0.5}])},
                              "val_acc")]
    for fig in figs:
        dumped = json.dumps(json.loads(fig.to_json()))  # every string of the figure, \u escapes decoded
        assert "<b>" not in dumped and "<i>" not in dumped, dumped[:300]
        assert "&lt;" in dumped
    cm = figs[0]
    assert "&lt;b&gt;bold&lt;/b&gt;" in cm.data[0].x and "a &amp; b" in cm.data[0].y
    assert cm.layout.title.text == "&lt;i&gt;run&lt;/i&gt;"
    assert list(figs[1].data[0].y) == ["&lt;b&gt;bold&lt;/b&gt;", "a &amp; b"]
    assert figs[2].data[0].name == "&lt;b&gt;run&lt;/b&gt;"


def test_labels_neutralise_bidi_controls():
    assert plots.label("abc\u202edef\u2066") == "abc[U+202E]def[U+2066]"
    assert plots.neutralise_bidi("x\u200fy") == "x[U+200F]y"


def test_efficiency_figure_reads_the_comparison_table_columns():
    runs = [_run("20260101-000000-000-tfidf", "tfidf", 0.8, 0.7, 1000), _run("b", "transformer", 0.9, 0.85, 66_000)]
    table = compare.comparison_table(runs)
    fig = plots.plot_efficiency(table)  # defaults: compare.PARAMS against compare.TEST_ACC
    assert list(fig.data[0].x) == [1000, 66_000] and list(fig.data[0].text) == ["tfidf", "b"]
    lat = plots.plot_efficiency(table, compare.LATENCY)
    assert lat.layout.xaxis.title.text == compare.LATENCY


def test_strategies_table_keeps_the_runs_that_use_a_strategy():
    runs = [_run("a", "bilstm", 0.8, 0.7, 1000), _run("b", "transformer", 0.9, 0.85, 100),
            _run("c", "no-such-family", 0.9, 0.85, 100)]
    assert list(compare.strategies_table(runs)["run"]) == ["b"]


def test_ratio_rows_leave_the_other_column_empty():
    runs = [_run("a", "tfidf", 0.8, 0.7, 1000), _run("b", "transformer", 0.9, 0.85, 66_000_000)]
    ratios = compare.efficiency_ratios(compare.comparison_table(runs), "b", "a").set_index("quantity")
    assert pd.isna(ratios.loc["params", "A - B (points)"]) and pd.isna(ratios.loc["test acc", "A / B"])


# ---- cosmetics and the new views -------------------------------------------------------------------
def test_log_axes_have_readable_ticks_not_5_1_2_5():
    hist = plots.plot_length_histogram({"train": [1, 10, 100, 3000]})
    ticks = list(hist.layout.xaxis.ticktext)
    assert ticks[:5] == ["0.1", "1", "10", "100", "1k"] and "5" not in ticks
    table = pd.DataFrame({"run": ["a", "b"], "params": [2e4, 6.6e7], "test acc": [0.7, 0.8]})
    eff = plots.plot_efficiency(table)
    assert "1M" in eff.layout.xaxis.ticktext and "10M" in eff.layout.xaxis.ticktext


def test_points_with_the_same_parameter_count_get_different_label_positions():
    table = pd.DataFrame({"run": ["x-1", "x-2", "y"], "params": [1e6, 1e6, 5e6], "test acc": [0.8, 0.8, 0.6]})
    positions = list(plots.plot_efficiency(table).data[0].textposition)
    assert positions[0] != positions[1]


def test_confusion_text_colour_follows_cell_darkness_and_difference_is_centred():
    fig = plots.plot_confusion([[9, 1], [0, 10]], ["a.long.class.name", "b"], "t")
    assert list(fig.data[0].x) == ["a.long.class.name", "b"]  # full names
    assert list(fig.data[1].textfont.color) == ["white", "#1b1b1b", "#1b1b1b", "white"]
    assert list(fig.data[1].text) == ["90%", "10%", "", "100%"]
    counts = plots.plot_confusion([[9, 1], [0, 10]], ["a", "b"], "t", normalise=False, zmax=40)
    assert counts.data[0].zmax == 40  # a scale shared with other runs
    diff = plots.plot_confusion_difference([[9, 1], [0, 10]], [[5, 5], [0, 10]], ["a", "b"], "A - B")
    assert diff.data[0].zmid == 0 and np.allclose(diff.data[0].z, [[0.4, -0.4], [0, 0]])


def test_live_chart_right_axis_is_a_percentage_and_empty_curves_say_why():
    events = [{"type": "step", "step": 1, "loss": 2.0, "time": 100.0},
              {"type": "epoch", "epoch": 1, "val_loss": 1.0, "val_acc": 0.5, "time": 101.0}]
    live = plots.plot_live_curves(events)
    assert live.layout.yaxis2.tickformat == ".0%" and list(live.layout.yaxis2.tickvals) == [0, 0.25, 0.5, 0.75, 1.0]
    empty = plots.plot_curves({"tfidf": compare.epoch_frame([])}, "train_loss", empty_note="no per-step loss for this model")
    assert not empty.data and "no per-step loss" in empty.layout.annotations[0].text
    frame = compare.epoch_frame(events)
    assert frame["step"].tolist() == [1] and frame["time_s"].tolist() == [1.0]
    steps = compare.step_frame(events)
    smooth = plots.plot_curves({"r": steps.assign(loss=[2.0])}, "loss", x="time_s", smoothing=0.5, log_y=True)
    assert smooth.layout.yaxis.type == "log"
    assert np.allclose(plots.smooth([1.0, 3.0], 0.5), [1.0, 1 / 3 + 2 / 3 * 3.0 - 0.0])


def test_agreement_table_and_search():
    a = pd.DataFrame({"doc_id": ["1", "2", "3", "4"], "true": ["x"] * 4, "predicted": ["x", "x", "y", "y"],
                      "confidence": [0.9] * 4, "correct": [True, True, False, False]})
    b = a.assign(predicted=["x", "y", "x", "y"], correct=[True, False, True, False])
    agree = compare.agreement_frame(a, b)
    assert compare.agreement_counts(agree).tolist() == [[1, 1], [1, 1]]
    fig = plots.plot_agreement(compare.agreement_counts(agree))
    assert [c[:2] for c in fig.data[1].customdata] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    found = compare.search_documents(agree, {"1": "NASA launch", "2": "nasa orbit", "3": "hockey"}, "nasa")
    assert found["doc_id"].tolist() == ["1", "2"]
    assert compare.config_diff({"a": 1, "b": 2}, {"a": 1, "b": 3})["field"].tolist() == ["b"]
