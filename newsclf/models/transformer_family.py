"""Registry entry of any Hugging Face encoder fine-tuned three ways (implementation: newsclf.models.transformer)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from newsclf.models.base import ExplainMethod
from newsclf.models.torch_family import TorchFamily


def _impl():
    from newsclf.models import transformer

    return transformer


def model_name(pretrained: str) -> str:
    """A short name of a hub id or a local model directory (its last path part)."""
    return Path(str(pretrained).rstrip("/")).name or str(pretrained)


class TransformerFamily(TorchFamily):
    name = "transformer"
    title = "Hugging Face encoder, fine-tuned"
    explain_methods = (
        ExplainMethod("ig", "Integrated gradients", signed=True, help="Captum IG on the word embeddings."),
        ExplainMethod("attention", "Attention", signed=False, options=("layer", "head"),
                      help="The [CLS] token's attention in one layer (one head, or the mean of heads)."),
        ExplainMethod("rollout", "Attention rollout", signed=False,
                      help="Attention propagated through all layers (Abnar & Zuidema, 2020)."),
    )

    def preflight(self, cfg) -> None:
        _impl().preflight(cfg)

    def run_name(self, cfg) -> str:
        return f"{model_name(cfg.pretrained)}-{cfg.strategy}"

    def describe(self, config) -> str:
        return f"{model_name(config.get('pretrained', ''))} / {config.get('strategy', '')}"

    def build(self, cfg, train_texts, label_names):
        return _impl().build(cfg, train_texts, label_names)

    def phases(self, cfg):
        return _impl().phases(cfg)

    def set_phase(self, model, cfg, phase) -> None:
        _impl().set_phase(model, cfg, phase)

    def param_groups(self, model, cfg, phase):
        return _impl().param_groups(model, cfg, phase)

    def save(self, model, encoder, directory: Path) -> None:
        _impl().save(model, encoder, directory)

    def load(self, directory: Path, device: str = "cpu"):
        return _impl().load(directory, device)

    # ---- explanation hooks ----------------------------------------------------------------
    def explain_options(self, model) -> dict[str, Any]:
        layers, heads = _impl().layers_and_heads(model)
        return {"layers": layers, "heads": heads}

    def needs_eager_attention(self, method: str) -> bool:
        return method in ("attention", "rollout")  # sdpa returns no attention weights

    def explain_tokens(self, encoder, text: str):
        return _impl().transformer_tokens(encoder, text)

    def ig_layer(self, model):
        return model.get_input_embeddings()

    def ig_baseline(self, input_ids, spans, encoder):
        import torch

        specials = torch.tensor([s == (0, 0) for s in spans], device=input_ids.device)
        return torch.where(specials, input_ids, torch.full_like(input_ids, encoder.pad_id))  # [CLS] PAD.. [SEP]

    def attention_scores(self, model, input_ids, mask, method, layer, head):
        import torch

        from newsclf.models.attention import select_attention

        with torch.no_grad():
            out = model(input_ids=input_ids, attention_mask=mask, output_attentions=True)
        probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
        stack = torch.stack([a[0].float() for a in out.attentions]).cpu()  # (L, H, T, T)
        att, layer, head = select_attention(stack, method, layer, head)
        return att.double().numpy(), probs, {
            "layer": layer, "head": head,
            "notes": ["attention does not depend on the class: the same weights serve every target"]}


FAMILY = TransformerFamily()
