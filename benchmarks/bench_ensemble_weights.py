"""Ensemble weights on finished runs: the previous fit (softmax parametrisation, L-BFGS-B) against the
simplex fit (newsclf.models.ensemble_weights.fit_weights) and a reference (scipy SLSQP, many starts).

    python benchmarks/bench_ensemble_weights.py --runs-dir DIR RUN RUN [RUN ...] [--combine mean logmean]

Only validation predictions are read (what an `auto` ensemble fits on). For every non-empty subset of
two or more of the given runs and each rule, prints the weights, the validation log-loss (float64,
the objective both fits minimise) and the seconds each fit took.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def softmax_lbfgs(members, y, combine):
    """The fit before issue 22: softmax weights, L-BFGS-B from equal weights."""
    from scipy.optimize import minimize

    from newsclf.models.ensemble_weights import Objective

    f = Objective(members, y, combine)
    k = len(members)

    def loss(theta):
        w = np.exp(theta - theta.max())
        return f.loss(w / w.sum())
    res = minimize(loss, np.zeros(k), method="L-BFGS-B", bounds=[(-10, 10)] * k)
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def reference(members, y, combine, starts=20):
    """scipy SLSQP, finite differences, ftol 1e-14, from the centre, near each vertex and random points."""
    from scipy.optimize import minimize

    from newsclf.models.ensemble_weights import Objective

    f = Objective(members, y, combine)
    k = len(members)
    inits = [np.full(k, 1 / k), *(np.eye(k) * 0.98 + 0.02 / k), *np.random.default_rng(0).dirichlet(np.ones(k), starts)]
    best = min(np.eye(k), key=f.loss)
    for w0 in inits:
        res = minimize(lambda w: f.loss(np.clip(w, 0, None) / np.clip(w, 0, None).sum()), w0, method="SLSQP",
                       bounds=[(0, 1)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                       options={"ftol": 1e-14, "maxiter": 2000})
        w = np.clip(res.x, 0, None) / np.clip(res.x, 0, None).sum()
        best = min(best, w, key=f.loss)
    return best


def main(argv: list[str] | None = None) -> int:
    from newsclf import store
    from newsclf.models.ensemble_weights import fit_weights, val_log_loss

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--runs-dir", required=True)
    ap.add_argument("--combine", nargs="+", default=["mean", "logmean"], choices=["mean", "logmean"])
    args = ap.parse_args(argv)
    root = Path(args.runs_dir)
    preds = {}
    for run in args.runs:
        path = store.resolve_run(run, root)
        preds[path.name] = store.load_predictions(path, "val")
    names = list(preds)
    y = preds[names[0]].y_true
    fits = (("softmax L-BFGS-B (before)", softmax_lbfgs), ("simplex fit (after)", fit_weights),
            ("reference SLSQP", reference))
    for size in range(2, len(names) + 1):
        for subset in itertools.combinations(names, size):
            members = [preds[n].probs for n in subset]
            for combine in args.combine:
                print(f"\n{' + '.join(subset)}  [{combine}]")
                for label, fit in fits:
                    t0 = time.perf_counter()
                    w = fit(members, y, combine)
                    secs = time.perf_counter() - t0
                    print(f"  {label:<27} weights {' / '.join(f'{x:.4f}' for x in w)}  "
                          f"val log-loss {val_log_loss(members, y, w, combine):.6f}  ({secs:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
