"""Registry entry of the BiLSTM with attention (implementation: newsclf.models.bilstm).

Pretrained embeddings (newsclf.embeddings) train in two phases when `embed_freeze_epochs` > 0: the
embeddings frozen first (the network learns to read them), then fine-tuned at `lr x embed_lr_scale`
beside the rest at `lr`, without weight decay on the table (it would pull pretrained vectors to 0).
"""
from __future__ import annotations

from pathlib import Path

from newsclf.models.base import ExplainMethod, Phase, split_decay
from newsclf.models.torch_family import TorchFamily

FROZEN = "frozen-embeddings"


def _impl():
    from newsclf.models import bilstm

    return bilstm


def _pretrained(cfg) -> bool:
    return bool(cfg.embeddings) and cfg.embeddings != "random"


class BiLSTMFamily(TorchFamily):
    name = "bilstm"
    title = "BiLSTM + attention"
    explain_methods = (
        ExplainMethod("ig", "Integrated gradients", signed=True,
                      help="Captum IG on the token embeddings (sub-words summed onto words)."),
        ExplainMethod("attention", "Attention", signed=False, help="The attention-pooling weight of each word."),
    )

    def preflight(self, cfg) -> None:
        from newsclf import embeddings
        from newsclf.config import ConfigError, resolve_data_home

        if _pretrained(cfg):
            try:
                embeddings.check(cfg.embeddings, cfg.embed_dim, resolve_data_home(cfg.data_home or None))
            except embeddings.EmbeddingsError as exc:
                raise ConfigError("embeddings", str(exc).removeprefix("embeddings: ")) from None

    def describe(self, config) -> str:
        from newsclf import embeddings

        spec = config.get("embeddings") or config.get("glove") or "random"
        label = "glove" if config.get("glove") else embeddings.describe(spec) if spec else "random"
        return f"bilstm / {label} {config.get('embed_dim') or ''}d".rstrip()

    def build(self, cfg, train_texts, label_names):
        return _impl().build(cfg, train_texts, label_names)

    # ---- phases: pretrained embeddings frozen first, then fine-tuned at a lower rate ----------
    def phases(self, cfg) -> list[Phase]:
        frozen = (cfg.embed_freeze_epochs or 0) if _pretrained(cfg) else 0
        if 0 < frozen < cfg.epochs:
            return [Phase(FROZEN, frozen), Phase("all", cfg.epochs - frozen)]
        return [Phase("all", cfg.epochs)]

    def set_phase(self, model, cfg, phase: Phase) -> None:
        for p in model.parameters():
            p.requires_grad_(True)
        model.embedding.weight.requires_grad_(phase.name != FROZEN)

    def param_groups(self, model, cfg, phase: Phase):
        rest = [(n, p) for n, p in model.named_parameters() if not n.startswith("embedding.")]
        groups = split_decay(rest, cfg.lr, cfg.weight_decay)
        table = model.embedding.weight
        if table.requires_grad:
            if _pretrained(cfg):
                scale = cfg.embed_lr_scale if cfg.embed_lr_scale is not None else 1.0
                groups.append({"params": [table], "lr": cfg.lr * scale, "weight_decay": 0.0})
            else:  # random embeddings learn at the full rate, with weight decay (the study)
                groups += split_decay([("embedding.weight", table)], cfg.lr, cfg.weight_decay)
        return groups

    def save(self, model, encoder, directory: Path) -> None:
        _impl().save(model, encoder, directory)

    def load(self, directory: Path, device: str = "cpu"):
        return _impl().load(directory, device)

    def results_extra(self, model) -> dict:
        """What a run's results.json records beside the metrics: the embeddings and their coverage."""
        arch = model.arch
        info = arch.embeddings_info or {"source": arch.embeddings, "dim": arch.embed_dim,
                                        "vocab_coverage": None, "token_coverage": None}
        return {"embeddings": {**info, "tokens": arch.tokens}}

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
        notes = ["attention does not depend on the class: the same weights serve every target"]
        if model.arch.pooling == "attention+max":
            notes.append("max pooling feeds the classifier too: attention shows only the attention-pooled half")
        return scores, probs, {"notes": notes}


FAMILY = BiLSTMFamily()
