"""Registry entry of ensembles of finished runs (implementation: newsclf.models.ensemble).

An ensemble is never trained from a config: `python -m newsclf ensemble RUN RUN...` (newsclf.ensemble)
builds its run directory from finished member runs. Afterwards it is a run like any other: listed,
loaded (its members are loaded from the same runs dir), evaluated, explained.
"""
from __future__ import annotations

from pathlib import Path

from newsclf.config import ConfigError
from newsclf.models.base import ExplainMethod, ModelFamily


def _impl():
    from newsclf.models import ensemble

    return ensemble


class EnsembleFamily(ModelFamily):
    name = "ensemble"
    title = "Ensemble of finished runs"
    trainable = False  # built by `newsclf ensemble`, not by `newsclf train` (the train form should skip it)
    combines_runs = True  # its model is other runs: never a member of another ensemble
    explain_methods = (
        ExplainMethod("ig", "Combined attributions", signed=True,
                      help="The members' IG (TF-IDF: exact contributions) on the same words, summed with the ensemble weights."),
        ExplainMethod("attention", "Combined attention", signed=False, options=("layer", "head"),
                      help="The members' attention weights, averaged with the ensemble weights (every member needs attention)."),
    )
    method_aliases = {"contributions": "ig"}

    def preflight(self, cfg) -> None:
        raise ConfigError("model", "an ensemble is built from finished runs, not trained: "
                                   "python -m newsclf ensemble RUN RUN ...")

    def describe(self, config) -> str:
        members = [m for m in str(config.get("members", "")).split(",") if m]
        return f"ensemble / {len(members)} runs, {config.get('combine', 'mean')}, {config.get('weights_from', '')}"

    def uses_gpu(self, cfg) -> bool:
        return False

    def save(self, model, encoder, directory: Path) -> None:
        _impl().save_spec(directory, [m.run_id for m in model.members], model.weights, model.combine, "given")

    def load(self, directory: Path, device: str = "cpu"):
        return _impl().load(directory, device), None

    def count_params(self, model) -> tuple[int, int]:
        return _impl().count_params(model)

    def predict_proba(self, model, encoder, texts, device: str = "cpu", batch_size: int = 64):
        return model.predict_proba(list(texts))

    def explain_run(self, predictor, text: str, method: str, target: int | None, **options):
        """newsclf.explain.explain calls this hook instead of its own paths: the members explain."""
        return _impl().explain_combined(predictor, text, method, target, **options)


FAMILY = EnsembleFamily()
