"""Registry entry of the study's BiLSTM with attention (implementation: newsclf.models.bilstm)."""
from __future__ import annotations

from pathlib import Path

from newsclf.models.base import ExplainMethod
from newsclf.models.torch_family import TorchFamily


def _impl():
    from newsclf.models import bilstm

    return bilstm


class BiLSTMFamily(TorchFamily):
    name = "bilstm"
    title = "BiLSTM + attention"
    explain_methods = (
        ExplainMethod("ig", "Integrated gradients", signed=True, help="Captum IG on the word embeddings."),
        ExplainMethod("attention", "Attention", signed=False, help="The attention-pooling weight of each word."),
    )

    def preflight(self, cfg) -> None:
        if cfg.glove:
            _impl().check_glove(Path(cfg.glove), cfg.embed_dim)

    def describe(self, config) -> str:
        return f"bilstm / {'glove' if config.get('glove') else 'random'} {config.get('embed_dim', '')}d"

    def build(self, cfg, train_texts, label_names):
        return _impl().build(cfg, train_texts, label_names)

    def save(self, model, encoder, directory: Path) -> None:
        _impl().save(model, encoder, directory)

    def load(self, directory: Path, device: str = "cpu"):
        return _impl().load(directory, device)

    # ---- explanation hooks ----------------------------------------------------------------
    def explain_tokens(self, encoder, text: str):
        ids, spans = encoder.encode_with_spans(text)
        return ids, spans, spans

    def ig_layer(self, model):
        return model.embedding

    def attention_scores(self, model, input_ids, mask, method, layer, head):
        import torch

        with torch.no_grad():
            out = model(input_ids=input_ids, attention_mask=mask)
        probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
        scores = out.attentions[0][0].double().cpu().numpy()  # (T,) pooling weights, sum 1
        return scores, probs, {"notes": ["attention does not depend on the class: the same weights serve every target"]}


FAMILY = BiLSTMFamily()
