"""Ensemble weights on the simplex: the objective and its gradient, and fit_weights against reference
optimisers (scipy SLSQP from many starts with finite differences; brute force on a fine grid for two
members), including optima on a vertex and on an edge, where a softmax parametrisation stops short."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize

from newsclf.models.ensemble import combine_probs, log_loss
from newsclf.models.ensemble_weights import Objective, fit_weights, val_log_loss

TOL = 1e-6  # the bar: within 1e-6 of the reference optimiser's validation log-loss


def _probs(rng, y, skill, n_classes=5, noise=1.0):
    logits = rng.normal(scale=noise, size=(len(y), n_classes))
    logits[np.arange(len(y)), y] += skill
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _reference_slsqp(members, y, combine, starts=12, seed=0):
    """scipy SLSQP on the simplex, finite-difference gradients, tight tolerance, many starts (vertices,
    the centre, random points): the lowest validation log-loss found."""
    k = len(members)
    objective = Objective(members, y, combine)
    f = lambda w: objective.loss(np.clip(w, 0, None) / np.clip(w, 0, None).sum())  # noqa: E731
    rng = np.random.default_rng(seed)
    inits = [np.full(k, 1 / k), *np.eye(k) * 0.98 + 0.02 / k, *rng.dirichlet(np.ones(k), starts)]
    best = np.inf
    for w0 in inits:
        res = minimize(f, w0, method="SLSQP", bounds=[(0, 1)] * k, options={"ftol": 1e-14, "maxiter": 2000},
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}])
        best = min(best, f(res.x), *(f(v) for v in np.eye(k)))
    return best


def _reference_grid(members, y, combine, n=10001):
    """Two members: the lowest log-loss on a grid of n weights in [0, 1] (both ends included)."""
    f = Objective(members, y, combine).loss
    return min(f(np.array([t, 1 - t])) for t in np.linspace(0, 1, n))


def _softmax_lbfgs(members, y, combine):
    """The previous fit (softmax parametrisation, L-BFGS-B from equal weights), for the regression check."""
    k = len(members)

    def loss(theta):
        w = np.exp(theta - theta.max())
        return log_loss(combine_probs(members, w / w.sum(), combine).astype(np.float64), y)
    res = minimize(loss, np.zeros(k), method="L-BFGS-B", bounds=[(-10, 10)] * k)
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


@pytest.mark.parametrize("combine", ["mean", "logmean"])
def test_objective_is_the_log_loss_of_the_combination_and_its_gradient_is_exact(combine):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    members = [_probs(rng, y, 2.0), _probs(rng, y, 0.5), _probs(rng, y, 1.0)]
    f = Objective(members, y, combine)
    for w in (np.array([0.5, 0.2, 0.3]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.4, 0.6])):
        assert f.loss(w) == pytest.approx(log_loss(combine_probs(members, w, combine), y), abs=2e-6)
        numeric = approx_fprime(w, f.loss, 1e-7)
        assert np.allclose(f.loss_grad(w)[1], numeric, atol=1e-5)


@pytest.mark.parametrize("combine", ["mean", "logmean"])
def test_optimum_on_a_vertex_is_reached_exactly(combine):
    """A member that only adds noise: the optimum is weight 1 on the good member (a vertex); the
    softmax fit stops short of it by more than the tolerance."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 5, 600)
    members = [_probs(rng, y, 3.0), _probs(rng, y, 0.0, noise=2.0)]
    w = fit_weights(members, y, combine)
    assert w.tolist() == [1.0, 0.0]
    ours = val_log_loss(members, y, w, combine)
    assert ours <= _reference_grid(members, y, combine) + TOL
    assert ours <= _reference_slsqp(members, y, combine) + TOL
    assert val_log_loss(members, y, _softmax_lbfgs(members, y, combine), combine) > ours + TOL  # the old fit


@pytest.mark.parametrize("combine", ["mean", "logmean"])
def test_optimum_on_an_edge_of_three_members(combine):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 600)
    members = [_probs(rng, y, 2.0), _probs(rng, y, 0.0, noise=2.0), _probs(rng, y, 1.8)]
    w = fit_weights(members, y, combine)
    assert w[1] == 0.0 and w[0] > 0 and w[2] > 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    ours = val_log_loss(members, y, w, combine)
    assert ours <= _reference_slsqp(members, y, combine) + TOL
    assert val_log_loss(members, y, _softmax_lbfgs(members, y, combine), combine) > ours + TOL


@pytest.mark.parametrize("combine", ["mean", "logmean"])
def test_interior_optimum_of_two_members_matches_the_grid(combine):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 500)
    members = [_probs(rng, y, 1.5), _probs(rng, y, 1.4)]
    w = fit_weights(members, y, combine)
    assert 0 < w[0] < 1
    assert val_log_loss(members, y, w, combine) <= _reference_grid(members, y, combine) + TOL


def test_generated_cases_reach_the_reference_optimum():
    """Random member counts (2-4), skills (useless to strong), class counts and sizes, both rules."""
    rng = np.random.default_rng(5)
    for case in range(16):
        k, c, n = int(rng.integers(2, 5)), int(rng.integers(2, 8)), int(rng.integers(40, 400))
        y = rng.integers(0, c, n)
        members = [_probs(rng, y, float(rng.choice([0.0, 0.5, 1.5, 3.0])), c, float(rng.uniform(0.5, 2.5)))
                   for _ in range(k)]
        combine = ("mean", "logmean")[case % 2]
        w = fit_weights(members, y, combine)
        assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
        ours = val_log_loss(members, y, w, combine)
        ref = _reference_grid(members, y, combine, 4001) if k == 2 else _reference_slsqp(members, y, combine, 4, case)
        assert ours <= ref + TOL, (case, k, combine, ours, ref)


def test_degenerate_inputs():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 50)
    p = _probs(rng, y, 1.0, 3)
    assert fit_weights([p], y).tolist() == [1.0]
    assert fit_weights([p, p], y[:0]).tolist() == [0.5, 0.5]  # no validation documents: equal weights
    same = fit_weights([p, p], y, "logmean")  # identical members: any weights are optimal, still on the simplex
    assert same.sum() == pytest.approx(1.0) and np.all(same >= 0)
    zero = p.copy()
    zero[np.arange(len(y)), y] = 0.0  # a member that gives the true class probability 0 (clipped, finite)
    w = fit_weights([p, zero], y, "mean")
    assert np.isfinite(val_log_loss([p, zero], y, w, "mean")) and w[0] > w[1]
