"""Calibration: ECE on known bins, temperature scaling fixes an overconfident toy model without
changing its decisions, and a run's temperature is stored and applied only when asked."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from newsclf import store
from newsclf.calibration import (CALIBRATION, apply_temperature, calibrate, calibrate_run, calibrated_proba,
                                 expected_calibration_error, fit_temperature, load_temperature, nll,
                                 plot_reliability, reliability)
from newsclf.errors import UserError


def test_ece_on_a_hand_made_example():
    # 4 docs at confidence 0.9 (3 right), 2 at 0.6 (1 right) -> |0.75-0.9|*4/6 + |0.5-0.6|*2/6
    probs = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 2)
    y = np.array([0, 0, 0, 1, 0, 1])
    assert expected_calibration_error(probs, y) == pytest.approx(0.15 * 4 / 6 + 0.1 * 2 / 6)
    rel = reliability(probs, y, "toy")
    assert sum(rel.count) == 6 and len(rel.edges) == 16 and rel.count[13] == 4 and rel.count[8] == 2
    assert rel.mce == pytest.approx(0.15) and rel.accuracy_overall == pytest.approx(4 / 6)
    perfect = np.array([[1.0, 0.0]] * 3)
    assert expected_calibration_error(perfect, np.zeros(3, int)) == 0.0


def _overconfident(n: int, seed: int):
    """A model 70 % accurate that says 99 %: sharpened probabilities of an honest model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    logits = rng.normal(size=(n, 5))
    logits[np.arange(n), y] += 2.0
    honest = np.exp(2 * logits) / np.exp(2 * logits).sum(1, keepdims=True)  # the true posterior of this model
    return apply_temperature(honest, 0.3), y


def test_temperature_scaling_lowers_ece_and_keeps_the_argmax():
    val_p, y_val = _overconfident(2000, 0)
    test_p, y_test = _overconfident(2000, 1)
    t = fit_temperature(val_p, y_val)
    assert 2.7 < t < 3.9  # undoes the 0.3 sharpening (1 / 0.3 = 3.33)
    scaled = apply_temperature(test_p, t)
    assert np.array_equal(scaled.argmax(1), test_p.argmax(1))
    before, after = expected_calibration_error(test_p, y_test), expected_calibration_error(scaled, y_test)
    assert before > 0.12 and after < 0.04
    ids = np.array([str(i) for i in range(2000)])
    cal = calibrate(store.Predictions(ids, y_val, val_p.argmax(1), val_p),
                    store.Predictions(ids, y_test, test_p.argmax(1), test_p))
    assert cal.temperature == pytest.approx(t) and cal.ece_test_scaled < cal.ece_test
    assert cal.nll_val_scaled < cal.nll_val
    fig = plot_reliability([reliability(test_p, y_test, "raw"), reliability(scaled, y_test, "scaled")])
    assert len(fig.data) == 3 and "ECE" in fig.data[1].name


def test_a_runs_temperature_is_stored_and_applied_only_when_asked(tiny_runs, tmp_path):
    from newsclf.predict import load_predictor

    run = tmp_path / tiny_runs["tfidf"].name
    shutil.copytree(tiny_runs["tfidf"], run)
    predictor = load_predictor(run.name, tmp_path)
    with pytest.raises(UserError, match="not calibrated"):
        calibrated_proba(predictor, ["a space shuttle"])
    cal = calibrate_run(run)
    assert load_temperature(run) == pytest.approx(cal.temperature)
    res = store.read_json(run / store.RESULTS)
    assert res["temperature"] == cal.temperature and "ece_test" in res
    assert all(k in res for k in store.RESULT_KEYS)
    texts = ["a space shuttle launch from nasa", "the goalie stopped the puck"]
    raw, scaled = predictor.predict_proba(texts), calibrated_proba(predictor, texts)
    assert np.array_equal(raw.argmax(1), scaled.argmax(1))
    assert np.allclose(predictor.predict_proba(texts), raw)  # plain prediction is untouched
    (run / CALIBRATION).write_text('{"temperature": "hot"}')
    assert load_temperature(run) is None


def test_calibrate_cli_stores_the_temperature(tiny_runs, tmp_path, capsys):
    from newsclf.cli import main

    run = tmp_path / tiny_runs["bilstm"].name
    shutil.copytree(tiny_runs["bilstm"], run)
    assert main(["calibrate", run.name, "--runs-dir", str(tmp_path), "--json"]) == 0
    out = __import__("json").loads(capsys.readouterr().out)[run.name]
    assert load_temperature(run) == pytest.approx(out["temperature"]) and out["fitted_on"] == "val"
    assert main(["calibrate", "no-such-run", "--runs-dir", str(tmp_path)]) == 2


# ---- the class never changes: near-ties ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_temperature_keeps_the_class_of_a_near_tie(dtype):
    probs = np.array([[0.4999999, 0.5000001]], dtype=dtype)
    for t in (50.0, 1e3, 0.02, 1.0):
        out = apply_temperature(probs, t)
        assert out.dtype == np.float64 and out.argmax(1).tolist() == [1], t
        assert out.sum() == pytest.approx(1.0, abs=1e-12)


def test_temperature_keeps_the_class_of_generated_near_ties():
    """Rows whose top two probabilities differ by 1 to 4 ulps (in both orders, with the top class anywhere,
    exact ties too, float32 and float64 inputs), at temperatures from 1e-3 to 1e3: never a changed class."""
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        for _ in range(400):
            c = int(rng.integers(2, 21))
            p = rng.dirichlet(np.ones(c)).astype(dtype) * dtype(0.5)
            i, j = rng.choice(c, 2, replace=False)
            base = dtype(rng.uniform(0.2, 0.5))
            p[i] = base
            p[j] = base
            for _ in range(int(rng.integers(0, 5))):
                p[j] = np.nextafter(p[j], dtype(1))
            rows.append((p.astype(np.float64) if dtype is np.float64 else p, dtype))
    for t in (1e-3, 0.3, 1.0 + 1e-9, 7.0, 50.0, 1e3):
        for p, dtype in rows:
            probs = p[None, :].astype(dtype)
            assert apply_temperature(probs, t).argmax(1)[0] == probs.argmax(1)[0]
    many = rng.dirichlet(np.ones(20), 2000) * 0.5  # a batch: 20 classes, a near-tie at the top of each row
    many[:, 3] = many[:, 11] = 0.45
    many[:, 11] = np.nextafter(many[:, 11], 1.0)
    for t in (1e-3, 50.0, 1e3):
        assert (apply_temperature(many, t).argmax(1) == 11).all()


def test_apply_temperature_refuses_a_bad_temperature():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            apply_temperature(np.array([[0.3, 0.7]]), bad)


# ---- one NLL: what is fitted is what is reported ------------------------------------------------------------
def test_the_fitted_temperature_minimises_the_reported_nll():
    """An underconfident model with a few confident mistakes: sharpening pushes their true-class
    probability below 1e-12, where a clipped NLL stops counting them (its optimum, T ~ 0.07, rewards
    the mistakes) and the log-space NLL does not (T ~ 0.42). The reported nll_val_scaled is the minimum,
    over T, of the very function that is reported (a fine grid cannot beat it), never above T = 1's."""
    rng = np.random.default_rng(3)
    n, c = 1500, 5
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += 4.0
    logits *= 0.3  # underconfident: sharpening helps...
    wrong = rng.random(n) < 0.02
    logits[wrong, (y[wrong] + 1) % c] += 10.0  # ...except on a few confident mistakes
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    ids = np.array([str(i) for i in range(n)])
    cal = calibrate(store.Predictions(ids, y, probs.argmax(1), probs))
    assert cal.nll_val_scaled == pytest.approx(nll(probs, y, cal.temperature), abs=1e-12)
    grid = np.exp(np.linspace(-5, 5, 4001))
    assert cal.nll_val_scaled <= min(nll(probs, y, t) for t in grid) + 1e-9
    assert cal.nll_val_scaled <= cal.nll_val == pytest.approx(nll(probs, y, 1.0))
    assert 0.3 < cal.temperature < 0.55  # the log-space optimum, not the clipped one
