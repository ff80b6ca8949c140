"""The study's BiLSTM with attention pooling over TF-IDF-weighted embeddings.

embeddings (GloVe 300d or random) x per-token TF-IDF weight -> dropout -> 2-layer BiLSTM
(128 per direction, dropout between layers) -> attention pooling (Linear 2H->1, softmax over
real tokens only) -> dropout -> Linear 2H->C. Saved as safetensors + vocab JSON + arch JSON.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from newsclf.config import ConfigError
from newsclf.models.lstm_cpu import masked_bilstm
from newsclf.models.output import ClassifierOutput
from newsclf.text import PAD_ID, Vocab, WordEncoder

WEIGHTS = "model.safetensors"
ARCH = "bilstm_config.json"


@dataclass
class BiLSTMArch:
    vocab_size: int
    num_labels: int
    embed_dim: int = 300
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.3
    tfidf_weighting: bool = True
    embeddings: str = "random"  # "random" or "glove" (recorded for the run's config)


class TfidfWeighting(nn.Module):
    """Per-token weight (1 + log tf) * idf within each document, normalised to mean 1 over real tokens."""

    def __init__(self, idf: torch.Tensor):
        super().__init__()
        self.register_buffer("idf", idf.float(), persistent=True)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        maskf = mask.float()  # (B, T)
        # term frequency of each position's token inside its own document
        same = (input_ids.unsqueeze(2) == input_ids.unsqueeze(1)).float() * maskf.unsqueeze(1)  # (B, T, T)
        tf = same.sum(-1).clamp(min=1.0)  # (B, T)
        weight = (1.0 + torch.log(tf)) * self.idf[input_ids] * maskf
        mean = weight.sum(1, keepdim=True) / maskf.sum(1, keepdim=True).clamp(min=1.0)
        return weight / mean.clamp(min=1e-6)  # (B, T)


class BiLSTMAttention(nn.Module):
    """forward(input_ids (B,T), attention_mask (B,T)) -> ClassifierOutput(logits (B,C), attentions=((B,T),))."""

    def __init__(self, arch: BiLSTMArch, idf: torch.Tensor | None = None):
        super().__init__()
        self.arch = arch
        self.embedding = nn.Embedding(arch.vocab_size, arch.embed_dim, padding_idx=PAD_ID)
        self.weighting = TfidfWeighting(idf if idf is not None else torch.ones(arch.vocab_size))
        self.embed_dropout = nn.Dropout(arch.dropout)
        self.lstm = nn.LSTM(arch.embed_dim, arch.hidden_size, num_layers=arch.num_layers, batch_first=True,
                            bidirectional=True, dropout=arch.dropout if arch.num_layers > 1 else 0.0)
        self.attention = nn.Linear(2 * arch.hidden_size, 1)
        self.dropout = nn.Dropout(arch.dropout)
        self.classifier = nn.Linear(2 * arch.hidden_size, arch.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> ClassifierOutput:
        if attention_mask is None:
            attention_mask = (input_ids != PAD_ID).long()
        x = self.embedding(input_ids)  # (B, T, E)
        if self.arch.tfidf_weighting:
            x = x * self.weighting(input_ids, attention_mask).unsqueeze(-1)
        x = self.embed_dropout(x)
        h = self._encode(x, attention_mask)  # (B, T, 2H)
        scores = self.attention(h).squeeze(-1)  # (B, T)
        real = attention_mask.bool()
        real = real | (~real.any(1, keepdim=True) & _first_position(real))  # an empty doc attends to slot 0
        scores = scores.masked_fill(~real, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T), zero on padding
        pooled = torch.bmm(weights.unsqueeze(1), h).squeeze(1)  # (B, 2H)
        logits = self.classifier(self.dropout(pooled))
        return ClassifierOutput(logits=logits, attentions=(weights,))

    def _encode(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """cuDNN on packed sequences on CUDA; the masked CPU LSTM (same math, same weights) elsewhere.

        pack_padded_sequence needs the lengths on the host: the caller's `batching.host_lengths`
        gives them without a device sync; only a call without it copies them back from the device.
        """
        if x.is_cuda:
            from newsclf.batching import current_host_lengths

            host = current_host_lengths(x.size(0))
            lengths = host.clamp(min=1) if host is not None else attention_mask.sum(1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
        return masked_bilstm(self.lstm, x, attention_mask, self.lstm.dropout, self.training)

    def input_embeddings(self) -> nn.Module:
        return self.embedding

    def head_parameter_names(self) -> list[str]:
        return ["attention.weight", "attention.bias", "classifier.weight", "classifier.bias"]


def _first_position(mask: torch.Tensor) -> torch.Tensor:
    first = torch.zeros_like(mask)
    first[:, 0] = True
    return first


# ---- building, GloVe, save/load --------------------------------------------------------------
def build(cfg, train_texts: Sequence[str], label_names: Sequence[str]) -> tuple[BiLSTMAttention, WordEncoder]:
    """A fresh model and encoder; the vocabulary comes from the training split only."""
    num_labels = len(label_names)
    vocab = Vocab.build(train_texts, cfg.vocab_size)
    arch = BiLSTMArch(vocab_size=len(vocab), num_labels=num_labels, embed_dim=cfg.embed_dim,
                      hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, dropout=cfg.dropout,
                      tfidf_weighting=cfg.tfidf_weighting, embeddings="glove" if cfg.glove else "random")
    model = BiLSTMAttention(arch, torch.from_numpy(vocab.idf))
    if cfg.glove:
        load_glove_into(model.embedding, vocab, Path(cfg.glove))
    return model, WordEncoder(vocab, cfg.max_len)


def load_glove_into(embedding: nn.Embedding, vocab: Vocab, path: Path) -> int:
    """Copy GloVe vectors (the official .txt or .zip) into `embedding` for words in `vocab`; returns hits."""
    dim = embedding.embedding_dim
    hits = 0
    weight = embedding.weight.data
    for word, vector in _iter_glove(path, dim):
        idx = vocab.stoi.get(word)
        if idx is not None and idx > 1:
            weight[idx] = torch.from_numpy(vector)
            hits += 1
    if hits == 0:
        raise ValueError(f"glove: no word of the vocabulary found in {path} (is it GloVe {dim}d?)")
    return hits


def _iter_glove(path: Path, dim: int):
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(f"{dim}d.txt")] or [n for n in zf.namelist() if n.endswith(".txt")]
            if not names:
                raise ValueError(f"glove: no .txt file inside {path}")
            with zf.open(names[0]) as fh:
                yield from _parse_glove_lines((line.decode("utf-8", "replace") for line in fh), dim)
    else:
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from _parse_glove_lines(fh, dim)


def _parse_glove_lines(lines, dim: int):
    for line in lines:
        parts = line.rstrip().split(" ")
        if len(parts) != dim + 1:
            continue
        yield parts[0], np.asarray(parts[1:], dtype=np.float32)


def save(model: BiLSTMAttention, encoder: WordEncoder, directory: Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    (directory / ARCH).write_text(json.dumps(asdict(model.arch), indent=2), encoding="utf-8")
    encoder.save(directory)


def load(directory: Path, device: str | torch.device = "cpu") -> tuple[BiLSTMAttention, WordEncoder]:
    directory = Path(directory)
    arch = BiLSTMArch(**json.loads((directory / ARCH).read_text(encoding="utf-8")))
    model = BiLSTMAttention(arch)
    model.load_state_dict(load_file(str(directory / WEIGHTS), device="cpu"))
    return model.to(device).eval(), WordEncoder.load(directory)


def check_glove(path: Path, dim: int, lines: int = 1000) -> None:
    """Refuse a file that holds no `dim`-d word vector in its first lines (ConfigError on `glove`)."""
    try:
        for i, _ in enumerate(_iter_glove(path, dim)):
            return
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeError) as exc:
        raise ConfigError("glove", f"cannot read {path}: {exc}") from None
    raise ConfigError("glove", f"{path} holds no {dim}-d word vectors (expected GloVe lines: word v1 ... v{dim})")
