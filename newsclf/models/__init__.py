"""Registry of model families.

`tfidf` is scikit-learn based (no torch loop). Torch families are modules exposing
``build(cfg, train_texts, label_names) -> (model, encoder)``, ``save(model, encoder, dir)``,
``load(dir, device) -> (model, encoder)`` and optionally ``phases(cfg)`` and
``param_groups(model, cfg, phase)``; defaults below cover what a family leaves out.
Every torch model takes ``input_ids, attention_mask`` and returns an object with ``.logits``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

TORCH_FAMILIES = {"bilstm": "newsclf.models.bilstm", "transformer": "newsclf.models.transformer"}
NO_DECAY_HINTS = ("bias", "norm", "layernorm", "layer_norm", "ln_")


@dataclass
class Phase:
    """A stretch of training with one set of trainable parameters (hybrid has two)."""

    name: str
    epochs: int


def get_family(name: str) -> ModuleType:
    if name not in TORCH_FAMILIES:
        raise ValueError(f"model: {name!r} is not a torch model family ({', '.join(TORCH_FAMILIES)})")
    return importlib.import_module(TORCH_FAMILIES[name])


def phases(family: ModuleType, cfg) -> list[Phase]:
    if hasattr(family, "phases"):
        return family.phases(cfg)
    return [Phase("all", cfg.epochs)]


def param_groups(family: ModuleType, model, cfg, phase: Phase) -> list[dict[str, Any]]:
    """Optimizer groups for this phase; frozen parameters are left out."""
    if hasattr(family, "param_groups"):
        return family.param_groups(model, cfg, phase)
    return split_decay(model.named_parameters(), cfg.lr, cfg.weight_decay)


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
