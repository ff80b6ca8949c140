"""Error slices: length buckets with the unseen share, the disagreement 2x2, confusion differences."""
from __future__ import annotations

import numpy as np
import pytest

from newsclf.slices import (confusion_difference, disagreement, length_frame, length_slices, run_max_len,
                            top_confusions, unseen_shares, word_counts)
from newsclf.store import Predictions


def test_length_buckets_in_words():
    texts = ["word " * 10, "word " * 60, "word " * 150, "word " * 150, "word " * 1000]
    n = word_counts(texts)
    assert n.tolist() == [10, 60, 150, 150, 1000]
    correct = np.array([1, 0, 1, 0, 1])
    unseen = unseen_shares(texts, max_len=100)
    assert unseen.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 3, 0.9])
    slices = {s.bucket: s for s in length_slices(n, correct, unseen)}
    assert list(slices) == ["0-49", "50-99", "100-199", "200-399", "400-799", "800+"]
    assert (slices["0-49"].n, slices["0-49"].accuracy) == (1, 1.0)
    assert (slices["100-199"].n, slices["100-199"].accuracy) == (2, 0.5)
    assert slices["100-199"].unseen_share == pytest.approx(1 / 3)
    assert slices["200-399"].n == 0 and np.isnan(slices["200-399"].accuracy)
    assert slices["800+"].unseen_share == pytest.approx(0.9)
    frame = length_frame({"r": list(slices.values())})
    assert list(frame.columns) == ["run", "bucket", "low", "high", "n", "accuracy", "unseen_share"] and len(frame) == 6
    assert unseen_shares(texts).tolist() == [0] * 5  # a model that reads everything (TF-IDF)
    assert run_max_len({"model": "bilstm", "max_len": 64}) == 64
    assert run_max_len({"model": "tfidf", "max_len": 100000}) is None


def test_unseen_share_from_a_loaded_encoder(tiny_runs):
    from newsclf.predict import load_predictor

    p = load_predictor(tiny_runs["bilstm"].name, tiny_runs["runs_dir"])
    texts = ["space " * 10, "space " * 128]
    exact = unseen_shares(texts, p.max_len, p.family, p.encoder)
    assert exact[0] == 0.0 and exact[1] == pytest.approx(1 - p.max_len / 128, abs=0.02)


def _preds(y, pred, ids=None):
    ids = np.array(ids if ids is not None else [f"d{i}" for i in range(len(y))])
    return Predictions(ids, np.array(y), np.array(pred), np.zeros((len(y), 3), dtype=np.float32))


def test_disagreement_cells_hold_doc_ids():
    y = [0, 1, 2, 0, 1]
    a = _preds(y, [0, 1, 0, 1, 1])
    b = _preds(y, [0, 0, 2, 2, 1])
    d = disagreement(a, b, ("A", "B"))
    assert d.both_right == ["d0", "d4"] and d.only_a == ["d1"] and d.only_b == ["d2"] and d.both_wrong == ["d3"]
    assert d.counts == {"both_right": 2, "only_a": 1, "only_b": 1, "both_wrong": 1}
    assert d.table().loc["A right", "B wrong"] == 1
    diff = confusion_difference(a, b, 3)
    assert diff.sum() == 0 and diff[1, 0] == -1 and diff[2, 0] == 1
    top = top_confusions(b, ["x", "y", "z"], k=5)
    assert len(top) == 2 and set(top["count"]) == {1}
    assert top.iloc[0].to_dict() == {"true": "x", "predicted": "z", "count": 1, "share_of_true": 0.5}
