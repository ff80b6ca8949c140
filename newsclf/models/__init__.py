"""THE registry of model families: `get_family(name)` answers every family-specific question.

Each family has a light registry entry `newsclf/models/<name>_family.py` defining `FAMILY`, an
instance of a `newsclf.models.base.ModelFamily` subclass (see that module for the interface), and
an implementation module it imports on first real use: tfidf (scikit-learn, fitted once), bilstm
and transformer (torch, trained by the shared loop in newsclf.train). Asking a family for its
name, label, GPU need or explanation methods imports neither torch nor scikit-learn. Code outside `newsclf.models` asks the family
instead of comparing family names.
"""
from __future__ import annotations

import importlib

from newsclf.config import MODELS, ConfigError
from newsclf.models.base import ExplainMethod, Loaded, ModelFamily, Phase, split_decay

__all__ = ["ExplainMethod", "Loaded", "ModelFamily", "Phase", "family_names", "get_family", "split_decay"]

_MODULES = {name: f"newsclf.models.{name}_family" for name in MODELS}


def family_names() -> tuple[str, ...]:
    """The registered families, in the order the UI lists them."""
    return tuple(_MODULES)


def get_family(name: str) -> ModelFamily:
    """The family called `name`; ConfigError (field `model`) for an unknown one."""
    module = _MODULES.get(str(name))
    if module is None:
        raise ConfigError("model", f"unknown model {name!r}; choose one of {', '.join(_MODULES)}")
    return importlib.import_module(module).FAMILY
