"""Smoke: tfidf and bilstm train -> run dir (exact file set) -> load -> predict, on the fixture corpus."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from newsclf import store
from newsclf.data import CATEGORIES, load_dataset
from newsclf.predict import InputError, load_predictor, validate_text

RUN_FILES = {"config.json", "labels.json", "status.json", "metrics.jsonl", "results.json", "train.log",
             "predictions_val.npz", "predictions_test.npz", ".status.lock"}
BEST_FILES = {"tfidf": {"tfidf.json", "tfidf.safetensors"},
              "bilstm": {"model.safetensors", "bilstm_config.json", "vocab.json"}}
LAST_FILES = {"model.safetensors", "optimizer.safetensors", "state.json"}


def _tree(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}


@pytest.mark.parametrize("kind", ["tfidf", "bilstm"])
def test_run_directory_holds_exactly_the_contract(tiny_runs: dict, kind: str):
    run = tiny_runs[kind]
    expected = RUN_FILES | {f"best/{f}" for f in BEST_FILES[kind]}
    if kind == "bilstm":
        expected |= {f"last/{f}" for f in LAST_FILES}
    assert _tree(run) == expected
    assert store.read_status(run)["state"] == "finished"
    assert json.loads((run / store.LABELS).read_text()) == list(CATEGORIES)


@pytest.mark.parametrize("kind", ["tfidf", "bilstm"])
def test_results_hold_every_key_with_sane_values(tiny_runs: dict, fixture_data_home: Path, kind: str):
    results = json.loads((tiny_runs[kind] / store.RESULTS).read_text())
    assert set(store.RESULT_KEYS) <= set(results)
    assert results["model"] == kind and results["device"] == "cpu"
    assert (results["n_train"], results["n_val"], results["n_test"]) == (176, 44, 110)
    for key in ("val_acc", "test_acc", "f1_macro", "f1_weighted", "precision_macro", "recall_macro"):
        assert 0.0 <= results[key] <= 1.0
    assert results["params"] >= results["trainable_params"] > 0
    assert results["train_seconds"] > 0 and results["inference_ms_per_doc"] > 0 and results["inference_ms_single"] > 0
    assert results["best_epoch"] >= 1
    report = results["test_report"]
    assert len(report["per_class"]) == 20 and len(report["confusion"]) == 20
    assert sum(map(sum, report["confusion"])) == 110
    assert results["test_acc"] == pytest.approx(report["accuracy"])
    if kind == "tfidf":  # the fixture's classes are separable by their words (the tiny BiLSTM is not asked to learn)
        assert results["test_acc"] > 0.8


@pytest.mark.parametrize("kind", ["tfidf", "bilstm"])
def test_stored_predictions_match_the_reloaded_model(tiny_runs: dict, fixture_data_home: Path, kind: str):
    run = tiny_runs[kind]
    results = json.loads((run / store.RESULTS).read_text())
    data = load_dataset("seed", fixture_data_home)
    predictor = load_predictor(run.name, tiny_runs["runs_dir"])
    for split in ("val", "test"):
        preds = store.load_predictions(run, split)
        part = getattr(data, split)
        assert preds.doc_id.tolist() == list(part.doc_ids)
        np.testing.assert_array_equal(preds.y_true, part.labels)
        assert preds.probs.shape == (len(part.texts), 20) and preds.probs.dtype == np.float32
        np.testing.assert_allclose(preds.probs.sum(1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(preds.y_pred, preds.probs.argmax(1))
        assert (preds.y_pred == preds.y_true).mean() == pytest.approx(results[f"{split}_acc"])
        np.testing.assert_allclose(predictor.predict_proba(part.texts), preds.probs, atol=1e-5)


@pytest.mark.parametrize("kind", ["tfidf", "bilstm"])
def test_load_and_predict_top_classes(tiny_runs: dict, kind: str):
    predictor = load_predictor(tiny_runs[kind], tiny_runs["runs_dir"])
    assert predictor.kind == kind and predictor.label_names == list(CATEGORIES)
    top = predictor.top_k("The goalie stopped the puck and the hockey playoff went on, nhl rink penalty", k=3)
    assert len(top) == 3 and all(label in CATEGORIES for label, _ in top)
    assert top[0][1] >= top[1][1] >= top[2][1] >= 0 and top[0][1] > 0
    if kind == "tfidf":
        assert top[0][0] == "rec.sport.hockey"
    probs = predictor.predict_proba(["!!! ???", "x" * 50_000, "puck"])
    assert probs.shape == (3, 20) and np.isfinite(probs).all()
    assert predictor.predict_proba([]).shape == (0, 20)


@pytest.mark.parametrize("bad, message", [
    ("", "empty"), ("   \n\t ", "empty"), (b"\xff\xfe caf\xe9", "UTF-8"), ("a" * 2_000_001, "characters"), (None, "expected text"),
    ("!!! ???", "no words"), ("\u200b\u200c\u200d", "no words"),
], ids=["empty", "whitespace", "not-utf8", "too-long", "none", "punctuation-only", "zero-width-only"])
def test_validate_text_refuses_bad_input(bad, message):
    with pytest.raises(InputError, match=message) as err:
        validate_text(bad, "text")
    assert str(err.value).startswith("text:")
    assert validate_text("café".encode()) == "café"


def test_a_run_without_a_model_cannot_be_loaded(tmp_path: Path):
    run = tmp_path / "20260101-000000-000-x"
    run.mkdir()
    (run / store.CONFIG).write_text('{"model": "bilstm"}')
    store.update_status(run, state="running")
    with pytest.raises(store.RunNotFoundError, match="no trained model"):
        load_predictor(run.name, tmp_path)


# ---- evaluation metrics -------------------------------------------------------------------------
def test_compute_report_on_a_toy_case():
    from newsclf.metrics import EvalReport, compute_report

    report = compute_report(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert report.accuracy == pytest.approx(0.6) and report.n == 5
    assert [c["f1"] for c in report.per_class] == pytest.approx([0.5, 0.8, 0.0])
    assert [c["precision"] for c in report.per_class] == pytest.approx([0.5, 2 / 3, 0.0])
    assert [c["support"] for c in report.per_class] == [2, 2, 1]
    assert report.f1_macro == pytest.approx(1.3 / 3)
    assert report.f1_weighted == pytest.approx((0.5 * 2 + 0.8 * 2) / 5)
    assert report.precision_macro == pytest.approx((0.5 + 2 / 3) / 3)
    assert report.recall_macro == pytest.approx(0.5)
    assert report.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert EvalReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    empty = compute_report(np.array([], dtype=int), np.array([], dtype=int), ["a", "b"])
    assert empty.n == 0 and empty.accuracy == 0.0 and empty.confusion == [[0, 0], [0, 0]]


def test_measure_latency_and_count_params():
    import torch

    from newsclf.metrics import count_params, measure_latency

    calls = []
    latency = measure_latency(lambda texts: calls.append(len(texts)) or np.zeros((len(texts), 2)),
                              ["a"] * 30, n_single=5)
    assert calls == [2, 30, 1, 1, 1, 1, 1]  # warm-up, the batch, then single documents
    assert latency.n_docs == 30 and latency.batched_ms_per_doc >= 0 and latency.single_ms >= 0
    assert measure_latency(lambda t: np.zeros((0, 2)), []).n_docs == 0
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == (26, 14)
