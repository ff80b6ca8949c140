"""Ensemble weights on the simplex: the combination rules in float64, the validation log-loss with its
gradient, and the weights that minimise it.

    combine64(member_probs, weights, combine) -> (N, C) float64   (mean | logmean, renormalised)
    val_log_loss(member_probs, y, weights, combine) -> float       (the one objective, float64)
    fit_weights(val_probs, y_val, combine) -> weights              (its minimiser on the simplex)

The objective is exactly the log-loss of the stored combination (probabilities clipped at EPS), in
float64. It is convex in the weights for both rules — mean: -log of a linear function of w;
logmean: log-sum-exp of an affine function of w minus an affine function — so a point where no
feasible direction descends is the global minimum. The optimum often lies on an edge or a vertex
(a member that adds nothing gets weight 0), where a softmax parametrisation cannot arrive (its
gradient vanishes as a weight goes to 0) and stops short. Hence the fit works on the simplex
itself: SLSQP with the analytic gradient and a tight tolerance, started from equal weights and
from the best vertex; every vertex and every edge (a bounded 1-D search, the objective being
convex along it) is tried as well, weights below 1e-9 are set to 0, and the lowest loss wins.
Only validation predictions go in: the weights never see a test label.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

EPS = 1e-12
SNAP = 1e-9  # weights below this are set to 0 (then renormalised) when that does not raise the loss
_LOG_EPS = float(np.log(EPS))


def _stack(member_probs: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])  # (K, N, C)


def _simplex(weights: Sequence[float]) -> np.ndarray:
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    return w / w.sum()


def combine64(member_probs: Sequence[np.ndarray] | np.ndarray, weights: Sequence[float],
              combine: str = "mean") -> np.ndarray:
    """Weighted mean of K (N, C) probability arrays, or (logmean) the renormalised weighted geometric
    mean; weights are normalised to sum 1. float64 throughout."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    stack = member_probs if isinstance(member_probs, np.ndarray) and member_probs.ndim == 3 else _stack(member_probs)
    if combine == "mean":
        out = np.tensordot(w, stack, axes=1)
    elif combine == "logmean":
        z = np.tensordot(w, np.log(np.clip(stack, EPS, 1.0)), axes=1)
        z -= z.max(axis=1, keepdims=True)
        out = np.exp(z)
    else:
        raise ValueError(f"combine: unknown rule {combine!r}; choose mean or logmean")
    return out / np.clip(out.sum(axis=1, keepdims=True), EPS, None)


class Objective:
    """The validation log-loss of the combination as a function of the weights, with its gradient."""

    def __init__(self, member_probs: Sequence[np.ndarray], y: np.ndarray, combine: str):
        if combine not in ("mean", "logmean"):
            raise ValueError(f"combine: unknown rule {combine!r}; choose mean or logmean")
        self.combine = combine
        self.stack = _stack(member_probs)
        self.y = np.asarray(y, dtype=np.int64)
        rows = np.arange(len(self.y))
        if combine == "mean":
            self.true = self.stack[:, rows, self.y]  # (K, N): each member's probability of the true class
            self.sums = self.stack.sum(axis=2)  # (K, N): row sums (1 up to rounding; combine renormalises)
        else:
            self.logs = np.log(np.clip(self.stack, EPS, 1.0))  # (K, N, C)
            self.true = self.logs[:, rows, self.y]

    def loss(self, w: np.ndarray) -> float:
        return self._evaluate(np.asarray(w, dtype=np.float64), gradient=False)[0]

    def loss_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        return self._evaluate(np.asarray(w, dtype=np.float64), gradient=True)

    def _evaluate(self, w: np.ndarray, gradient: bool) -> tuple[float, np.ndarray | None]:
        n = max(len(self.y), 1)
        if self.combine == "mean":
            a, s = w @ self.true, np.clip(w @ self.sums, EPS, None)  # (N,)
            q = a / s
            loss = float(-np.log(np.clip(q, EPS, 1.0)).sum() / n)
            if not gradient:
                return loss, None
            live = q > EPS  # a clipped document contributes a constant
            grad = -(self.true / np.where(live, a, 1.0) - self.sums / s) @ live.astype(np.float64)
        else:
            z = np.tensordot(w, self.logs, axes=1)  # (N, C)
            zmax = z.max(axis=1, keepdims=True)
            e = np.exp(z - zmax)
            logq = w @ self.true - (zmax[:, 0] + np.log(e.sum(axis=1)))
            loss = float(-np.maximum(logq, _LOG_EPS).sum() / n)
            if not gradient:
                return loss, None
            live = logq > _LOG_EPS
            expected = np.einsum("knc,nc->kn", self.logs, e / e.sum(axis=1, keepdims=True))  # E_p[log p_k]
            grad = -(self.true - expected) @ live.astype(np.float64)
        return loss, grad / n


def val_log_loss(member_probs: Sequence[np.ndarray], y: np.ndarray, weights: Sequence[float],
                 combine: str = "mean") -> float:
    """The log-loss (mean negative log-likelihood, probabilities clipped at EPS) of the weighted
    combination on (y); float64. The objective that fit_weights minimises."""
    return Objective(member_probs, y, combine).loss(_simplex(weights))


def fit_weights(val_probs: Sequence[np.ndarray], y_val: np.ndarray, combine: str = "mean") -> np.ndarray:
    """Weights on the simplex minimising the validation log-loss of the combination (see the module
    docstring: SLSQP from two starts, every vertex and edge, small weights snapped to 0)."""
    k = len(val_probs)
    y_val = np.asarray(y_val, dtype=np.int64)
    if k == 1 or len(y_val) == 0:
        return np.full(k, 1.0 / k)
    f = Objective(val_probs, y_val, combine)
    candidates = [np.full(k, 1.0 / k), *np.eye(k)]
    best_vertex = min(np.eye(k), key=f.loss)
    candidates += [_slsqp(f, start) for start in (np.full(k, 1.0 / k), best_vertex)]
    candidates += [_edge(f, i, j) for i, j in itertools.combinations(range(k), 2)]
    candidates += [_snapped(w) for w in candidates]
    return min(candidates, key=f.loss)


def _slsqp(f: Objective, start: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    k = len(start)
    res = minimize(f.loss_grad, start, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * k,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(k)}],
                   options={"ftol": 1e-15, "maxiter": 1000})
    return _simplex(res.x) if np.all(np.isfinite(res.x)) and res.x.max() > 0 else start


def _edge(f: Objective, i: int, j: int) -> np.ndarray:
    """The best point on the edge between vertices i and j (the objective is convex along it)."""
    from scipy.optimize import minimize_scalar

    def point(t: float) -> np.ndarray:
        w = np.zeros(f.stack.shape[0])
        w[i], w[j] = t, 1.0 - t
        return w
    res = minimize_scalar(lambda t: f.loss(point(t)), bounds=(0.0, 1.0), method="bounded",
                          options={"xatol": 1e-10})
    return point(float(res.x))


def _snapped(w: np.ndarray) -> np.ndarray:
    w = np.where(w < SNAP, 0.0, w)
    return _simplex(w)
