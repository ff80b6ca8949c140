"""The model-family interface every registry entry implements, and helpers the families share.

A *family* (tfidf, bilstm, transformer, ...) is one object (`ModelFamily` subclass) that knows,
for its runs: the extra config checks it needs before a run directory exists (`preflight`),
the run's default name (`run_name`), a short label (`describe`), whether it wants a GPU, how to
make a model (`fit` for one-shot estimators, `build` + `phases`/`param_groups` for the shared torch
training loop), how to save and load it (never pickle), how to score texts, and which explanation
methods it offers with their options. Callers outside `newsclf.models` ask the family; they never
compare family names.

This module imports neither torch nor scikit-learn: the job queue and the config checks use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

NO_DECAY_HINTS = ("bias", "norm", "layernorm", "layer_norm", "ln_")


@dataclass
class Phase:
    """A stretch of training with one set of trainable parameters (hybrid has two)."""

    name: str
    epochs: int


@dataclass(frozen=True)
class ExplainMethod:
    """One explanation method a family offers.

    `signed`: scores can push for or against a class (IG, exact contributions); attention is a
    non-negative weight. `options`: names of the extra choices it takes (e.g. layer, head).
    """

    name: str
    title: str
    signed: bool
    options: tuple[str, ...] = ()
    help: str = ""


@dataclass
class Loaded:
    """A model read back from a run's best/ folder: the model, its encoder (torch families) and the family."""

    family: "ModelFamily"
    model: Any
    encoder: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class ModelFamily:
    """Defaults for the family interface; subclasses override what differs.

    Contract of the torch families (`trained_by_loop` True): `build(cfg, train_texts, label_names)
    -> (model, encoder)` where the model takes `input_ids, attention_mask` and returns `.logits`
    (and `.attentions` where it has them), and `encoder.encode(texts) -> list[list[int]]`,
    `encoder.pad_id`, `encoder.max_len`. One-shot families implement `fit(cfg, data) -> model`.
    """

    name: str = ""
    title: str = ""  # a short human description, e.g. for labels and the train form
    trained_by_loop: bool = False  # trained by newsclf.train.Trainer (else `fit` once)
    trainable: bool = True  # trained by `newsclf train` from a RunConfig (an ensemble is built from runs instead)
    explain_methods: tuple[ExplainMethod, ...] = ()
    method_aliases: dict[str, str] = {}  # e.g. TF-IDF answers "ig" with its exact contributions

    # ---- config ---------------------------------------------------------------------------
    def preflight(self, cfg) -> None:
        """Checks that need more than the config alone (files, model ids): raise ConfigError naming the field."""

    def run_name(self, cfg) -> str:
        """The run name used when the user gives none (part of the run id)."""
        return self.name

    def describe(self, config: dict[str, Any]) -> str:
        """A short label of a run's configuration, e.g. "tfidf / cnb"."""
        return self.name

    def uses_gpu(self, cfg) -> bool:
        """Whether a job of this config should take a GPU slot when one is free."""
        return self.trained_by_loop and cfg.device != "cpu"

    # ---- training -------------------------------------------------------------------------
    def fit(self, cfg, data) -> Any:  # one-shot families
        raise NotImplementedError(f"{self.name} is trained by the torch loop, not fit()")

    def build(self, cfg, train_texts: Sequence[str], label_names: Sequence[str]) -> tuple[Any, Any]:
        raise NotImplementedError(f"{self.name} is fitted once, not built for the torch loop")

    def phases(self, cfg) -> list[Phase]:
        return [Phase("all", cfg.epochs)]

    def set_phase(self, model, cfg, phase: Phase) -> None:
        """Make the parameters of `phase` trainable (default: all of them)."""

    def param_groups(self, model, cfg, phase: Phase) -> list[dict[str, Any]]:
        """Optimizer groups for this phase; frozen parameters are left out."""
        return split_decay(model.named_parameters(), cfg.lr, cfg.weight_decay)

    # ---- storage and scoring --------------------------------------------------------------
    def save(self, model, encoder, directory: Path) -> None:
        raise NotImplementedError

    def load(self, directory: Path, device: str = "cpu") -> tuple[Any, Any]:
        """(model, encoder) from a best/ folder; never unpickles."""
        raise NotImplementedError

    def count_params(self, model) -> tuple[int, int]:
        """(total, trainable) parameters."""
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return int(total), int(trainable)

    def predict_proba(self, model, encoder, texts: Sequence[str], device: str = "cpu", batch_size: int = 64):
        """(N, C) float32 probabilities; torch families share the batched inference of newsclf.predict."""
        raise NotImplementedError

    # ---- explanation ----------------------------------------------------------------------
    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.explain_methods)

    def explain_method(self, name: str | None) -> ExplainMethod:
        """The method called `name` (or an alias of it); the first one when None. KeyError if unknown."""
        if name is None:
            return self.explain_methods[0]
        name = self.method_aliases.get(name, name)
        for m in self.explain_methods:
            if m.name == name:
                return m
        raise KeyError(name)

    def explain_options(self, model) -> dict[str, Any]:
        """Choices the explanation methods offer for this loaded model, e.g. {"layers": 6, "heads": 12}."""
        return {}

    def needs_eager_attention(self, method: str) -> bool:
        """Whether `method` needs a private copy of the model with eager (materialised) attention."""
        return False

    def explain_run(self, predictor, text: str, method: str | None, target, **options):
        """An explanation computed by the family itself (e.g. an ensemble combining its members'), or
        None to use newsclf.explain's own paths (exact contributions, IG, attention)."""
        return None


def split_decay(named_params, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: with weight decay, and without it for biases, norms and 1-d parameters."""
    decay, no_decay = [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        if p.ndim < 2 or any(h in name.lower() for h in NO_DECAY_HINTS):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
