"""Are a run's probabilities honest? Expected calibration error, reliability data, temperature scaling.

    expected_calibration_error(probs, y, n_bins=15) -> float
    reliability(probs, y, name) -> Reliability            (what a reliability diagram draws)
    fit_temperature(val_probs, y_val) -> T                 (validation only; minimises nll(probs, y, T))
    nll(probs, y, T=1)                                     (the one NLL: fitted and reported alike)
    calibrate_run(run_dir) -> Calibration                  (stores calibration.json + results.json keys)
    calibrated_proba(predictor, texts)                     (applies a stored T; only when asked)

Confidence = the top probability. ECE: documents binned by confidence into 15 equal-width bins
over [0, 1]; ECE = sum_b (n_b / N) |accuracy_b - mean confidence_b|. Temperature scaling divides
the log-probabilities by T and renormalises in float64: the argmax never changes (kept by
construction, near-ties included), only the confidence.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf import runschema, store
from newsclf.errors import UserError

N_BINS = 15
CALIBRATION = "calibration.json"  # a run's fitted temperature and its ECE before/after
EPS = 1e-12


@dataclass
class Reliability:
    """Per-bin data of a reliability diagram (bins with no document have count 0 and NaN means)."""

    name: str
    edges: list[float]  # n_bins + 1
    confidence: list[float]  # mean confidence per bin
    accuracy: list[float]  # accuracy per bin
    count: list[int]
    ece: float
    mce: float  # maximum calibration error over non-empty bins
    accuracy_overall: float
    confidence_overall: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Calibration:
    """A temperature fitted on validation, and what it does to ECE and log-loss on val and test."""

    temperature: float
    n_bins: int
    ece_val: float
    ece_val_scaled: float
    ece_test: float
    ece_test_scaled: float
    nll_val: float
    nll_val_scaled: float
    nll_test: float
    nll_test_scaled: float
    fitted_on: str = "val"

    def to_dict(self) -> dict:
        return asdict(self)


def _bins(conf: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)  # (0, 1/15] -> bin 0


def reliability(probs: np.ndarray, y: np.ndarray, name: str = "", n_bins: int = N_BINS) -> Reliability:
    """Reliability-diagram data of (N, C) probabilities against true labels (N,)."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.int64)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(1) == y).astype(np.float64) if len(probs) else np.zeros(0)
    b = _bins(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, conf, minlength=n_bins) / count
        acc = np.bincount(b, correct, minlength=n_bins) / count
    gap = np.abs(acc - mean_conf)
    used = count > 0
    ece = float(np.sum(count[used] / max(len(y), 1) * gap[used]))
    return Reliability(name, np.linspace(0, 1, n_bins + 1).tolist(), mean_conf.tolist(), acc.tolist(),
                       count.astype(int).tolist(), ece, float(gap[used].max()) if used.any() else 0.0,
                       float(correct.mean()) if len(y) else 0.0, float(conf.mean()) if len(y) else 0.0)


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    return reliability(probs, y, n_bins=n_bins).ece


def scaled_log_probs(probs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """log softmax(log p / T) in float64 (p clipped at EPS first, so a zero probability stays finite)."""
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature: must be a finite number > 0, got {temperature!r}")
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) in float64: T > 1 softens, T < 1 sharpens. The class never changes, by
    construction: each row's argmax is the input's (first maximum). Scaling is monotone, but rounding
    can tie or swap two near-equal probabilities; such a row gets its input's top class set to the
    next float above the row's maximum (a change of a few ulps)."""
    probs = np.asarray(probs, dtype=np.float64)
    out = np.exp(scaled_log_probs(probs, temperature))
    if out.size:
        top = probs.argmax(axis=1)
        rows = np.flatnonzero(out.argmax(axis=1) != top)
        out[rows, top[rows]] = np.nextafter(out[rows].max(axis=1), np.inf)
    return out


def nll(probs: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under softmax(log p / T), computed in log space
    (scaled_log_probs). The one definition: fit_temperature minimises it and calibrate reports it."""
    y = np.asarray(y, dtype=np.int64)
    if not len(y):
        return 0.0
    return float(-scaled_log_probs(probs, temperature)[np.arange(len(y)), y].mean())


def fit_temperature(val_probs: np.ndarray, y_val: np.ndarray) -> float:
    """The T in [e^-5, e^5] minimising the validation `nll` (never worse than T = 1)."""
    from scipy.optimize import minimize_scalar

    probs, y = np.asarray(val_probs, dtype=np.float64), np.asarray(y_val, dtype=np.int64)
    if not len(y):
        return 1.0
    t = float(np.exp(minimize_scalar(lambda log_t: nll(probs, y, np.exp(log_t)), bounds=(-5.0, 5.0),
                                     method="bounded", options={"xatol": 1e-8}).x))
    return t if nll(probs, y, t) <= nll(probs, y, 1.0) else 1.0


def calibrate(val: store.Predictions, test: store.Predictions | None = None, n_bins: int = N_BINS) -> Calibration:
    """Fit T on `val`; report ECE and log-loss before/after on val and (if given) test."""
    t = fit_temperature(val.probs, val.y_true)
    ece = lambda p, y: expected_calibration_error(p, y, n_bins)  # noqa: E731
    vs = apply_temperature(val.probs, t)
    if test is None:
        test = store.Predictions(val.doc_id[:0], val.y_true[:0], val.y_pred[:0], val.probs[:0])
    ts = apply_temperature(test.probs, t)
    return Calibration(t, n_bins, ece(val.probs, val.y_true), ece(vs, val.y_true), ece(test.probs, test.y_true),
                       ece(ts, test.y_true), nll(val.probs, val.y_true), nll(val.probs, val.y_true, t),
                       nll(test.probs, test.y_true), nll(test.probs, test.y_true, t))


def calibrate_run(run_dir: str | Path) -> Calibration:
    """Fit a temperature on a run's validation predictions; store calibration.json and add
    `temperature`, `ece_val`, `ece_test`, `ece_test_scaled` to results.json (re-evaluating a run
    rewrites results.json; calibration.json stays). Prediction is unchanged unless asked."""
    run_dir = Path(run_dir)
    val, test = store.load_predictions(run_dir, "val"), store.load_predictions(run_dir, "test")
    if val is None or test is None:
        raise UserError(f"run {run_dir.name}: has no stored predictions to calibrate on; evaluate it first")
    cal = calibrate(val, test)
    store.write_json_inside(run_dir, CALIBRATION, cal.to_dict())
    results = store.read_json(run_dir / store.RESULTS)
    if isinstance(results, dict):
        results = runschema.clean(runschema.RESULTS, results)  # a bad stored value is dropped, not kept
        results.update(temperature=cal.temperature, ece_val=cal.ece_val, ece_test=cal.ece_test,
                       ece_test_scaled=cal.ece_test_scaled)
        store.write_json_inside(run_dir, store.RESULTS, results)
    return cal


def load_temperature(run_dir: str | Path) -> float | None:
    """The stored temperature of a run, or None when it was never calibrated (or the file is bad)."""
    data = store.read_json_inside(run_dir, CALIBRATION)
    t = data.get("temperature") if isinstance(data, dict) else None
    ok = isinstance(t, (int, float)) and not isinstance(t, bool) and np.isfinite(t) and 1e-3 <= t <= 1e3
    return float(t) if ok else None


def with_stored_temperature(run_dir: str | Path, probs: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(probabilities scaled by the run's stored temperature, that temperature); unchanged and None when
    the run was never calibrated. `probs` is (N, C); the argmax never changes."""
    t = load_temperature(run_dir)
    return (probs, None) if t is None else (apply_temperature(np.asarray(probs, dtype=np.float64), t), t)


def calibrated_proba(predictor, texts: Sequence[str]) -> np.ndarray:
    """The predictor's probabilities with its run's stored temperature applied; UserError when none is stored."""
    t = load_temperature(predictor.run_dir)
    if t is None:
        raise UserError(f"run {predictor.run_id}: not calibrated yet; run `python -m newsclf calibrate "
                        f"{predictor.run_id}` first")
    return apply_temperature(predictor.predict_proba(texts), t)


def plot_reliability(diagrams: Sequence[Reliability]):
    """A plotly reliability diagram: accuracy vs mean confidence per bin, one line per run, the diagonal
    for perfect calibration; the legend carries each run's ECE. Pure: data in, Figure out."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dot", color="gray")))
    for d in diagrams:
        pts = [(c, a, n) for c, a, n in zip(d.confidence, d.accuracy, d.count) if n > 0]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=f"{d.name} (ECE {d.ece:.3f})", customdata=[p[2] for p in pts],
                                 hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} docs"))
    fig.update_layout(title="Reliability (test split, 15 bins)", xaxis_title="mean confidence",
                      yaxis_title="accuracy", xaxis_range=[0, 1], yaxis_range=[0, 1.02], height=420)
    return fig
