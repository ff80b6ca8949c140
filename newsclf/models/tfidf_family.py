"""Registry entry of the TF-IDF baseline (implementation: newsclf.models.tfidf, scikit-learn, no torch)."""
from __future__ import annotations

from pathlib import Path

from newsclf.models.base import ExplainMethod, ModelFamily


def _impl():
    from newsclf.models import tfidf

    return tfidf


class TfidfFamily(ModelFamily):
    name = "tfidf"
    title = "TF-IDF + linear classifier"
    explain_methods = (ExplainMethod(
        "contributions", "Exact contributions", signed=True,
        help="TF-IDF has no attention: each word's exact weight x tf-idf value explains it."),)
    method_aliases = {"ig": "contributions"}  # for a linear model, IG from a zero baseline IS this

    def describe(self, config) -> str:
        return f"tfidf / {config.get('classifier', '')}"

    def uses_gpu(self, cfg) -> bool:
        return False

    def fit(self, cfg, data):
        return _impl().fit(cfg, data.train.texts, data.train.labels, len(data.label_names),
                           data.val.texts, data.val.labels)

    def save(self, model, encoder, directory: Path) -> None:
        _impl().save(model, directory)

    def load(self, directory: Path, device: str = "cpu"):
        return _impl().load(directory), None

    def count_params(self, model) -> tuple[int, int]:
        return model.params, model.params

    def predict_proba(self, model, encoder, texts, device: str = "cpu", batch_size: int = 64):
        return model.predict_proba(list(texts))


FAMILY = TfidfFamily()
