"""Tiny random DistilBERT / BERT checkpoints built locally (no hub): config + a vocabulary we make.

Words of the fixture corpus are whole-word tokens; a few stems get `##` continuations so that
some words split into several sub-words (word alignment tests need that).
"""
from __future__ import annotations

from pathlib import Path

from tests.helpers.corpus import CLASS_WORDS, SHARED_WORDS

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Weights drawn with std 0.2 (HF's default is 0.02): a random 32-wide model then learns the fixture
# corpus in ~150 steps instead of ~1000 (at 0.02 the [CLS] vector barely sees the words at first).
INIT_STD = 0.2
PIECES = ["##s", "##ing", "##ed", "##er", "##ly", "##a", "##e", "##i", "##o", "##n", "##t", "##r", "##l"]


def tiny_vocab() -> dict[str, int]:
    words = set(SHARED_WORDS.split() if isinstance(SHARED_WORDS, str) else SHARED_WORDS)
    for ws in CLASS_WORDS.values():
        words.update(ws)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punct = list(".,!?;:'\"()-<>/&@#$%*=+[]_")
    tokens = SPECIALS + sorted(w for w in words if w.isalpha()) + letters + punct + PIECES
    seen: dict[str, int] = {}
    for t in tokens:
        seen.setdefault(t, len(seen))
    return seen


def _save(model, tokenizer, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def _tokenizer(max_len: int):
    from transformers import BertTokenizer

    # BertTokenizer(vocab_file=...) silently ignores the file in transformers 5: pass vocab=
    return BertTokenizer(vocab=tiny_vocab(), do_lower_case=True, model_max_length=max_len)


def make_tiny_distilbert(directory: Path, max_len: int = 128, layers: int = 2, seed: int = 0,
                         init_std: float = INIT_STD) -> Path:
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    cfg = DistilBertConfig(vocab_size=len(tiny_vocab()), dim=32, hidden_dim=64, n_layers=layers, n_heads=2,
                           max_position_embeddings=max_len, num_labels=2, pad_token_id=0,
                           initializer_range=init_std)
    return _save(DistilBertForSequenceClassification(cfg), _tokenizer(max_len), Path(directory))


def make_tiny_bert(directory: Path, max_len: int = 128, layers: int = 2, seed: int = 0, init_std: float = INIT_STD) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tiny_vocab()), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                     num_attention_heads=2, max_position_embeddings=max_len, num_labels=2, pad_token_id=0,
                           initializer_range=init_std)
    return _save(BertForSequenceClassification(cfg), _tokenizer(max_len), Path(directory))
