"""Predictor(run): `predict_proba(texts)` for any model family, loaded from best/ without pickle.

The family (newsclf.models registry) knows how to load and score its models; a run directory is
untrusted input, so every failure to load it becomes one line (RunLoadError), never a traceback."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from newsclf import store
from newsclf.text import word_spans
from newsclf.config import MAX_TEXT_CHARS
from newsclf.errors import InputError
from newsclf.models import ModelFamily, get_family
from newsclf.models.torch_family import torch_predict_proba  # noqa: F401 - re-exported


def validate_text(text: Any, field: str = "text") -> str:
    """Return `text` if it can be classified, else raise InputError naming `field`."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{field}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    if not isinstance(text, str):
        raise InputError(f"{field}: expected text, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{field}: is empty; give some text to classify")
    if not word_spans(text):
        raise InputError(f"{field}: has no words (letters or digits) to classify")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"{field}: {len(text):,} characters is more than the {MAX_TEXT_CHARS:,} accepted; "
                         "shorten it (models only read the first few hundred tokens anyway)")
    return text


class RunLoadError(store.RunNotFoundError):
    """A run's model, labels or config cannot be read (corrupt, missing, hostile): one line for the user."""


@dataclass
class Predictor:
    """A loaded run: `kind` names its model family; torch models live on `device`."""

    run_dir: Path
    kind: str
    label_names: list[str]
    config: dict
    model: Any  # TfidfClassifier or torch.nn.Module
    encoder: Any = None  # torch models only
    device: str = "cpu"
    batch_size: int = 64

    @property
    def family(self) -> ModelFamily:
        return get_family(self.kind)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def max_len(self) -> int | None:
        return getattr(self.encoder, "max_len", None)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) float32 class probabilities."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return self.family.predict_proba(self.model, self.encoder, texts, self.device, self.batch_size)

    def top_k(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable classes of one (validated) text."""
        return top_classes(self.predict_proba([validate_text(text)])[0], self.label_names, k)


def top_classes(probs: Sequence[float], label_names: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """[(class name, probability)] of the k most probable classes, most probable first."""
    order = np.argsort(-np.asarray(probs, dtype=np.float64), kind="stable")[:k]
    return [(label_names[i], float(probs[i])) for i in order]


def load_model_dir(kind: str, directory: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, encoder) from a best/ folder; encoder is None for one-shot families. Raises RunLoadError."""
    family = get_family(kind)
    directory = Path(directory)
    try:
        store.check_model_dir(directory)
        return family.load(directory, device)
    except store.RunNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt or hostile best/ is reported, never raised through
        first = (str(exc).splitlines() or [""])[0][:200]
        raise RunLoadError(f"run {directory.parent.name}: cannot load its model from {directory.name}/ "
                           f"({type(exc).__name__}: {first}); the run directory is damaged") from None


def load_predictor(run: str | Path, runs_dir: str | Path | None = None, device: str = "cpu") -> Predictor:
    """Load a finished run's best/ model. `run` is an id, a unique part of one, or a path inside `runs_dir`."""
    from newsclf.config import ConfigError, resolve_runs_dir

    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", "cuda requested but torch sees no GPU here; use --device cpu")
    run_dir = store.resolve_run(run, resolve_runs_dir(runs_dir))
    config = store.read_config(run_dir)  # validated once here; DamagedError (one line) otherwise
    best = run_dir / store.BEST
    if not best.is_dir():
        state = store.read_status(run_dir).get("state", "unknown")
        raise store.RunNotFoundError(f"run {run_dir.name}: no trained model yet (state: {state})")
    kind = config.get("model", "")
    try:
        get_family(kind)
    except ConfigError:
        raise RunLoadError(f"run {run_dir.name}: config.json names an unknown model family {kind!r}") from None
    model, encoder = load_model_dir(kind, best, device)
    labels = store.load_labels(run_dir)
    if not labels or not all(isinstance(name, str) and 0 < len(name) <= 200 for name in labels):
        raise RunLoadError(f"run {run_dir.name}: labels.json must list the class names as short texts")
    batch = config.get("eval_batch_size", 64)
    batch = batch if isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= 8192 else 64
    predictor = Predictor(run_dir, kind, labels, config, model, encoder, device, batch)
    try:
        n_classes = predictor.predict_proba(["probe text"]).shape[1]
    except Exception as exc:  # noqa: BLE001 - a model that cannot score a text is a damaged run
        raise RunLoadError(f"run {run_dir.name}: its model cannot score text ({type(exc).__name__}); "
                           "the run directory is damaged") from None
    if n_classes != len(labels):
        raise RunLoadError(f"run {run_dir.name}: labels.json names {len(labels)} classes but the model "
                           f"has {n_classes}; the run directory is damaged")
    return predictor
