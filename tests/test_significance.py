"""Paired significance: McNemar's exact test on known tables, seeded bootstrap intervals, pairwise tables."""
from __future__ import annotations

import numpy as np
import pytest

from newsclf.significance import (align, compare_predictions, compare_runs, holm, mcnemar_exact, pairwise)
from newsclf.store import Predictions


def _pair(b: int, c: int, both_right: int = 50, both_wrong: int = 5):
    """y all 0; A right on both_right + b docs, B right on both_right + c docs."""
    n = both_right + b + c + both_wrong
    y = np.zeros(n, dtype=int)
    a = np.ones(n, dtype=int)
    bb = np.ones(n, dtype=int)
    a[:both_right + b] = 0
    bb[:both_right] = 0
    bb[both_right + b:both_right + b + c] = 0
    return y, a, bb


def test_mcnemar_exact_matches_known_values():
    assert mcnemar_exact(10, 2) == pytest.approx(0.03857, abs=1e-4)  # 2 * 79 / 4096
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert "McNemar p < 1e-16" in compare_predictions(*_pair(200, 0), n_boot=100).verdict()
    y, a, b = _pair(10, 2)
    cmp = compare_predictions(y, a, b, names=("bert", "distilbert"))
    assert (cmp.both_right, cmp.only_a, cmp.only_b, cmp.both_wrong) == (50, 10, 2, 5)
    assert cmp.mcnemar_p == pytest.approx(0.0386, abs=1e-4) and cmp.significant()
    assert cmp.verdict().startswith("bert is more accurate than distilbert: +11.9 points (95 % CI +")
    flipped = compare_predictions(y, b, a, names=("distilbert", "bert"))
    assert flipped.verdict().startswith("bert is more accurate than distilbert: +11.9 points (95 % CI +")


def test_bootstrap_interval_contains_the_true_difference_and_is_seeded():
    rng = np.random.default_rng(3)
    n, classes = 2000, 4
    y = rng.integers(0, classes, n)
    a = np.where(rng.random(n) < 0.80, y, rng.integers(0, classes, n))  # ~85 % accurate
    b = np.where(rng.random(n) < 0.70, y, rng.integers(0, classes, n))  # ~77.5 % accurate
    cmp = compare_predictions(y, a, b, ["w", "x", "y", "z"], n_boot=1000, seed=0)
    true_diff = 0.80 * 0.75 + 0.25 - (0.70 * 0.75 + 0.25)  # 0.075
    assert cmp.acc_diff.low < true_diff < cmp.acc_diff.high and cmp.acc_diff.excludes_zero
    assert cmp.acc_diff.low < cmp.acc_diff.estimate < cmp.acc_diff.high
    assert cmp.f1_macro_diff.low < cmp.f1_macro_diff.estimate < cmp.f1_macro_diff.high
    assert cmp.acc_diff.estimate == pytest.approx((a == y).mean() - (b == y).mean())
    assert len(cmp.per_class) == 4 and all(r["low"] <= r["diff"] <= r["high"] for r in cmp.per_class)
    assert compare_predictions(y, a, b, n_boot=1000, seed=0).acc_diff == cmp.acc_diff  # deterministic
    assert compare_predictions(y, a, b, n_boot=1000, seed=1).acc_diff != cmp.acc_diff
    from sklearn.metrics import f1_score

    assert cmp.f1_a == pytest.approx(f1_score(y, a, average="macro"))
    same = compare_predictions(y, a, a, n_boot=200)
    assert same.mcnemar_p == 1.0 and same.acc_diff.low == same.acc_diff.high == 0.0
    assert "No significant" in same.verdict()


def test_runs_are_matched_by_doc_id_and_refused_when_not_the_same_split():
    y, a, b = _pair(10, 2)
    ids = np.array([f"d{i}" for i in range(len(y))])
    probs = np.zeros((len(y), 2), dtype=np.float32)
    pa = Predictions(ids, y, a, probs)
    perm = np.random.default_rng(0).permutation(len(y))
    pb = Predictions(ids[perm], y[perm], b[perm], probs)
    assert compare_runs(pa, pb, ["x", "y"], n_boot=100).mcnemar_p == pytest.approx(0.0386, abs=1e-4)
    with pytest.raises(ValueError, match="same documents"):
        align(pa, Predictions(ids[:-1], y[:-1], b[:-1], probs[:-1]))
    with pytest.raises(ValueError, match="true labels"):
        align(pa, Predictions(ids, 1 - y, b, probs))


def test_pairwise_is_a_tidy_table_with_holm_adjustment():
    y, a, b = _pair(10, 2)
    ids = np.array([f"d{i}" for i in range(len(y))])
    probs = np.zeros((len(y), 2), dtype=np.float32)
    runs = {"r1": Predictions(ids, y, a, probs), "r2": Predictions(ids, y, b, probs),
            "r3": Predictions(ids, y, y, probs)}
    table = pairwise(runs, ["x", "y"], n_boot=200)
    assert list(zip(table.run_a, table.run_b)) == [("r1", "r2"), ("r1", "r3"), ("r2", "r3")]
    assert {"mcnemar_p", "mcnemar_p_holm", "acc_diff_low", "acc_diff_high", "verdict"} <= set(table.columns)
    assert (table.mcnemar_p_holm >= table.mcnemar_p).all()
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert pairwise({"only": runs["r1"]}).empty


def test_pairwise_columns_are_stable():
    from newsclf.significance import PAIRWISE_COLUMNS

    y, a, b = _pair(3, 1)
    ids = np.array([f"d{i}" for i in range(len(y))])
    probs = np.zeros((len(y), 2), dtype=np.float32)
    full = pairwise({"x": Predictions(ids, y, a, probs), "y": Predictions(ids, y, b, probs)}, n_boot=100)
    assert tuple(full.columns) == PAIRWISE_COLUMNS == tuple(pairwise({}).columns)
