"""Ensembles of finished runs: combination rules, weight fitting on validation, the best/ spec, explanations.

An ensemble's model is the list of its members (other finished runs in the same runs dir) and
their weights. Nothing is copied: best/ensemble.json names the members by run id; loading
resolves each id inside the ensemble's own runs dir (store.resolve_run: no paths, no links out)
and loads it with newsclf.predict.load_predictor. Members are never ensembles (no nesting).

    combine_probs(member_probs, weights, combine)   (N, C) from K x (N, C)
    fit_weights(val_probs, y_val, combine)           weights minimising validation log-loss (on the simplex)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from newsclf import store
from newsclf.models.ensemble_weights import EPS, combine64, fit_weights  # noqa: F401  (fit_weights: re-exported)

SPEC = "ensemble.json"
MAX_MEMBERS = 16


@dataclass
class Member:
    run_id: str
    weight: float
    predictor: Any  # newsclf.predict.Predictor


@dataclass
class EnsembleModel:
    """Members with weights (sum 1) and the combination rule (mean | logmean)."""

    members: list[Member]
    combine: str

    @property
    def weights(self) -> np.ndarray:
        return np.array([m.weight for m in self.members], dtype=np.float64)

    @property
    def max_len(self) -> int | None:
        lens = [m.predictor.max_len for m in self.members if m.predictor.max_len is not None]
        return max(lens) if lens else None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return combine_probs([m.predictor.predict_proba(texts) for m in self.members], self.weights, self.combine)


# ---- combination and weights (newsclf.models.ensemble_weights: float64 rules, the simplex fit) -----------
def combine_probs(member_probs: Sequence[np.ndarray], weights: Sequence[float], combine: str = "mean") -> np.ndarray:
    """Weighted mean of K (N, C) probability arrays, or (logmean) the renormalised weighted geometric mean;
    computed in float64, stored as float32. The weights are normalised first without overflow (`normalised`:
    1e308, 1e308 is 0.5, 0.5, not inf/inf)."""
    return combine64(member_probs, normalised(weights), combine).astype(np.float32)


def normalised(weights: Sequence[float]) -> np.ndarray:
    """Weights scaled to sum 1, divided by their largest first so that huge values (1e308, 1e308) do not
    overflow to inf (and 1/inf to 0): ValueError unless finite, non-negative and not all zero."""
    w = np.asarray(weights, dtype=np.float64)
    top = float(w.max()) if w.size else 0.0
    if not np.all(np.isfinite(w)) or np.any(w < 0) or top <= 0:
        raise ValueError("weights: must be finite, non-negative and not all zero")
    w = w / top
    return w / w.sum()


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(np.asarray(probs, dtype=np.float64)[np.arange(len(y)), y], EPS, 1.0)).mean()) \
        if len(y) else 0.0


def parse_weights(spec: str, n_members: int) -> tuple[str, np.ndarray | None]:
    """("auto" | "equal" | "given", weights or None for auto). ValueError (one line) on a bad spec."""
    text = str(spec).strip().lower()
    if text in ("auto", ""):
        return "auto", None
    if text == "equal":
        return "equal", np.full(n_members, 1.0 / n_members)
    try:
        values = np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        raise ValueError(f"weights: expected auto, equal or {n_members} comma-separated numbers, got {spec!r}") from None
    if len(values) != n_members:
        raise ValueError(f"weights: {len(values)} weights given for {n_members} members")
    return "given", normalised(values)


def round_weights(w: np.ndarray) -> np.ndarray:
    """Weights rounded to 6 decimals (what config.json and best/ensemble.json store), still summing to 1."""
    r = np.round(np.asarray(w, dtype=np.float64), 6)
    r[int(np.argmax(r))] += 1.0 - r.sum()
    return np.round(r, 6)


# ---- best/ensemble.json ---------------------------------------------------------------------------
def save_spec(directory: Path, run_ids: Sequence[str], weights: Sequence[float], combine: str,
              weights_from: str) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = {"members": list(run_ids), "weights": [float(w) for w in weights], "combine": combine,
            "weights_from": weights_from, "format": 1}
    (directory / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")


def read_spec(directory: Path) -> dict[str, Any]:
    """The validated spec of a best/ folder; ValueError naming what is wrong."""
    spec = store.read_json_inside(directory, SPEC)
    if not isinstance(spec, dict):
        raise ValueError(f"{SPEC} is missing or unreadable")
    ids, weights = spec.get("members"), spec.get("weights")
    if not isinstance(ids, list) or not 2 <= len(ids) <= MAX_MEMBERS \
            or not all(isinstance(i, str) and store.RUN_ID_RE.match(i) and not i.startswith("..") for i in ids):
        raise ValueError(f"{SPEC}: members must be 2 to {MAX_MEMBERS} run ids")
    if not isinstance(weights, list) or len(weights) != len(ids) \
            or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and np.isfinite(w) and w >= 0 for w in weights) \
            or max(weights) <= 0:
        raise ValueError(f"{SPEC}: weights must be one non-negative number per member")
    if spec.get("combine") not in ("mean", "logmean"):
        raise ValueError(f"{SPEC}: combine must be mean or logmean")
    return spec


def load(directory: Path, device: str = "cpu") -> EnsembleModel:
    """Load every member named in best/ensemble.json from the ensemble's own runs dir.

    store.RunNotFoundError (one line) when a member is missing, unfinished, not loadable, an
    ensemble itself, or has other class names than the ensemble."""
    from newsclf.predict import load_predictor

    directory = Path(directory)
    run_dir = directory.resolve().parent
    runs_dir, name = run_dir.parent, run_dir.name
    spec = read_spec(directory)
    labels = store.load_labels(run_dir)
    members = []
    for run_id, weight in zip(spec["members"], spec["weights"]):
        if not (runs_dir / run_id / store.CONFIG).is_file():
            raise store.RunNotFoundError(f"run {name}: member run {run_id} is missing from {runs_dir} "
                                         "(deleted or moved?); the ensemble cannot predict without it")
        try:
            path = store.resolve_run(run_id, runs_dir)
            if path.name != run_id:
                raise store.RunNotFoundError(f"run: {run_id!r} is not a run id")
            check_member_config(store.read_json(path / store.CONFIG))
            predictor = load_predictor(path, runs_dir, device=device)
        except store.RunNotFoundError as exc:
            raise store.RunNotFoundError(f"run {name}: member {run_id}: {exc}") from None
        if list(predictor.label_names) != list(labels):
            raise store.RunNotFoundError(f"run {name}: member {run_id} has other class names than the ensemble")
        members.append(Member(run_id, float(weight), predictor))
    for m, w in zip(members, normalised([m.weight for m in members])):
        m.weight = float(w)
    return EnsembleModel(members, spec["combine"])


def check_member_config(config: Any) -> None:
    """Refuse a member that is itself an ensemble (no nesting) or has an unreadable config."""
    from newsclf.models import get_family

    if not isinstance(config, dict):
        raise store.RunNotFoundError("config.json is missing or unreadable")
    if getattr(get_family(config.get("model", "")), "combines_runs", False):
        raise store.RunNotFoundError("an ensemble cannot be a member of another ensemble")


def count_params(model: EnsembleModel) -> tuple[int, int]:
    total = trainable = 0
    for m in model.members:
        t, tr = m.predictor.family.count_params(m.predictor.model)
        total, trainable = total + t, trainable + tr
    return total, trainable


# ---- explanation -------------------------------------------------------------------------------
def explain_combined(predictor, text: str, method: str, target: int | None, **options):
    """The weighted combination of the members' word attributions for one target class.

    Every member explains `target` (default: the ensemble's predicted class) with its own version
    of `method` (TF-IDF answers "ig" with its exact contributions); all attributions lie on the
    same words (newsclf.text.word_spans), so word i's score is sum_k w_k * score_k[i]. A word no
    member saw scores None; a member that did not see a word adds 0 for it.
    """
    from newsclf.errors import InputError
    from newsclf.explain import Attribution, explain

    model: EnsembleModel = predictor.model
    probs = model.predict_proba([text])[0]
    target = int(np.argmax(probs)) if target is None else int(target)
    records = []
    for m in model.members:
        family = m.predictor.family
        try:
            member_method = family.explain_method(method).name
        except KeyError:
            raise InputError(f"method: member {m.run_id} ({family.name}) has no {method!r} explanation; "
                             f"it offers: {', '.join(family.method_names())}") from None
        records.append(explain(m.predictor, text, member_method, target, **options))
    w = model.weights
    words = records[0].words
    seen = [any(r.seen[i] for r in records) for i in range(len(words))]
    scores = [float(sum(wk * (r.scores[i] or 0.0) for wk, r in zip(w, records))) if seen[i] else None
              for i in range(len(words))]
    unseen_spans = [span for span in records[0].unseen_spans if all(span in r.unseen_spans for r in records)]
    weighted = lambda key: None if any(getattr(r, key) is None for r in records) \
        else float(sum(wk * getattr(r, key) for wk, r in zip(w, records)))  # noqa: E731
    notes = ["weighted sum of the members' scores: " + ", ".join(
        f"{m.run_id} ({m.weight:.3f} x {r.method})" for m, r in zip(model.members, records)),
        "member scores explain each member's target score (logit or decision score); the ensemble "
        f"combines probabilities ({model.combine}), so the sum is a summary, not an exact decomposition"]
    notes += [f"{m.run_id}: {n}" for m, r in zip(model.members, records) for n in r.notes]
    return Attribution(
        run_id=predictor.run_id, model=predictor.kind, method=method, target=target,
        label_names=list(predictor.label_names), probabilities=[float(p) for p in probs], words=words,
        offsets=list(records[0].offsets), scores=scores, seen=seen, delta=weighted("delta"),
        f_input=weighted("f_input"), f_baseline=weighted("f_baseline"),
        unaligned=float(sum(wk * r.unaligned for wk, r in zip(w, records))),
        n_steps=options.get("n_steps") if method == "ig" else None, layer=records[-1].layer, head=records[-1].head,
        n_tokens=max(r.n_tokens for r in records), max_len=model.max_len, unseen_spans=unseen_spans, notes=notes)
