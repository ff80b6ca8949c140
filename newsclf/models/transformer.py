"""Any Hugging Face encoder (DistilBERT, BERT, MiniLM, ...) with its own classification head.

Strategies (the study's): `freeze` trains the head only; `hybrid` trains the head alone for
`head_epochs`, then everything with layer-wise learning rates; `full` trains everything with
layer-wise learning rates from the start. No weight decay on biases and LayerNorm.
best/ is written with save_pretrained (model with id2label + tokenizer), so plain
`AutoModelForSequenceClassification.from_pretrained(run/best)` loads it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from newsclf.config import ConfigError
from newsclf.errors import InputError
from newsclf.models.base import NO_DECAY_HINTS, Phase, split_decay
from newsclf.models.hf_folder import ModelFolderError, cached_hub_folder, check_folder
from newsclf.models.hf_masks import use_prepared_masks

ENCODER_FILE = "newsclf_encoder.json"
LAYER_RE = re.compile(r"\.(?:layer|layers|block)\.(\d+)\.")


class ModelLoadError(ConfigError):
    """The pretrained model cannot be loaded; the message says how to use a local directory.

    A ConfigError on field `pretrained`, so the CLI prints it as a one-line error (exit code 2).
    """

    def __init__(self, message: str):
        super().__init__("pretrained", message)


# ---- loading ---------------------------------------------------------------------------------
def _load_error(name: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"cannot load {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
        "Without access to the Hugging Face hub, download the model once elsewhere "
        "(e.g. `AutoModelForSequenceClassification.from_pretrained(name).save_pretrained(DIR)` plus the tokenizer) "
        "and pass --pretrained DIR, a local directory with config.json and the weights")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no", "off")


def looks_like_path(name: str) -> bool:
    """A hub id is `name` or `org/name`; anything else (absolute, ./, ~, a/b/c) is meant as a directory."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub endpoint (or the HTTPS proxy) within `timeout` seconds.

    Without it, a download attempt retries for about a minute before failing.
    """
    import socket
    from urllib.parse import urlparse

    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)),
                                      timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(loader, name: str, **kwargs):
    """Load from a local dir, else from the local HF cache, else (unless offline) from the hub.

    A folder (local, or the cached snapshot of a hub id) is checked first (models.hf_folder: no remote
    code, no file outside it, no FIFO); transformers is then called with trust_remote_code=False."""
    kwargs["trust_remote_code"] = False
    if Path(name).expanduser().is_dir():
        _checked(Path(name).expanduser(), name)
        try:
            return loader.from_pretrained(str(Path(name).expanduser()), local_files_only=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - no config.json, broken weights, unknown architecture
            raise _load_error(name, exc) from None
    if looks_like_path(name):
        raise _load_error(name, FileNotFoundError(f"no such directory: {Path(name).expanduser()}"))
    cached = cached_hub_folder(name)
    if cached is not None:
        _checked(cached, name)
    try:
        return loader.from_pretrained(name, local_files_only=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - transformers raises OSError/ValueError/EnvironmentError variants
        if _offline():
            raise _load_error(name, exc) from None
        if not hub_reachable():
            raise _load_error(name, ConnectionError("the Hugging Face hub is unreachable and the model is not cached")) from None
    try:
        return loader.from_pretrained(name, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise _load_error(name, exc) from None


def _checked(folder: Path, name: str) -> None:
    try:
        check_folder(folder)
    except ModelFolderError as exc:
        raise ModelLoadError(f"refusing {name!r}: {exc}") from None


def _quiet() -> None:
    """No progress bars from transformers in logs (our own bar or epoch lines say enough)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_backbone(name: str, label_names: Sequence[str], attn_implementation: str = "sdpa"):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _quiet()
    tokenizer = _from_pretrained(AutoTokenizer, name)
    model = _from_pretrained(
        AutoModelForSequenceClassification, name, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        dtype=torch.float32, attn_implementation=attn_implementation, ignore_mismatched_sizes=True,
        use_safetensors=True)
    return model, tokenizer


def position_limit(model) -> int:
    limit = getattr(model.config, "max_position_embeddings", None)
    return int(limit) if limit else 512


# ---- encoder ---------------------------------------------------------------------------------
class HFEncoder:
    """A HF tokenizer as an Encoder: truncation to `max_len` keeping the head (or head and tail)."""

    def __init__(self, tokenizer, max_len: int, truncation: str = "head", cache_dir: Path | None = None):
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.truncation = truncation
        self.cache_dir = cache_dir
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self.cache_dir is not None and len(texts) >= 256:
            from newsclf.models.token_cache import cached_encode

            return cached_encode(self, texts)
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        tok = self.tokenizer
        if self.truncation == "head":
            return tok(list(texts), truncation=True, max_length=self.max_len)["input_ids"]
        prefix, suffix = self._special_frame()
        body = self.max_len - len(prefix) - len(suffix)
        head = body // 4  # 128 head + 382 tail at 512 (Sun et al., 2019)
        out = []
        for ids in tok(list(texts), add_special_tokens=False)["input_ids"]:
            if len(ids) > body:
                ids = ids[:head] + ids[len(ids) - (body - head):]
            out.append(prefix + ids + suffix)
        return out

    def _special_frame(self) -> tuple[list[int], list[int]]:
        """Special tokens around one sequence ([CLS] ... [SEP] for BERT), read off the tokenizer's own template.

        transformers 5 tokenizers no longer have build_inputs_with_special_tokens.
        """
        tok = self.tokenizer
        full = tok("hello")["input_ids"]
        bare = tok("hello", add_special_tokens=False)["input_ids"]
        for i in range(len(full) - len(bare) + 1):
            if full[i:i + len(bare)] == bare:
                return full[:i], full[i + len(bare):]
        return [], []

    def fingerprint(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        vocab = backend.to_str() if backend is not None else json.dumps(sorted(self.tokenizer.get_vocab().items()))
        return hashlib.sha1(f"{vocab}|{self.max_len}|{self.truncation}".encode()).hexdigest()[:16]

    def save(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(str(directory))
        (Path(directory) / ENCODER_FILE).write_text(json.dumps({"max_len": self.max_len, "truncation": self.truncation}))
        # plain `transformers` loading must truncate as newsclf does: the run's max_len, not the model's 512
        config_path = Path(directory) / "tokenizer_config.json"
        if config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            config["model_max_length"] = self.max_len
            config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


# ---- family interface ------------------------------------------------------------------------
def preflight(cfg) -> None:
    """Refuse an unloadable model or a too-long max_len from the model's config alone (seconds, no weights),
    before a run directory exists. Raises ConfigError (ModelLoadError) naming the field."""
    from transformers import AutoConfig

    config = _from_pretrained(AutoConfig, cfg.pretrained)
    limit = getattr(config, "max_position_embeddings", None)
    if limit and cfg.max_len > int(limit):
        raise ConfigError("max_len", f"{cfg.max_len} is above what {cfg.pretrained} can take ({int(limit)} tokens)")


def build(cfg, train_texts: Sequence[str], label_names: Sequence[str]):
    model, tokenizer = load_backbone(cfg.pretrained, label_names)
    limit = position_limit(model)
    if cfg.max_len > limit:
        raise ConfigError("max_len", f"{cfg.max_len} is above what {cfg.pretrained} can take ({limit} tokens)")
    from newsclf.config import resolve_data_home

    cache = resolve_data_home(cfg.data_home or None) / "token_cache"
    use_prepared_masks(model)
    return model, HFEncoder(tokenizer, cfg.max_len, cfg.truncation, cache_dir=cache)


def save(model, encoder: HFEncoder, directory: Path) -> None:
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    model.save_pretrained(str(directory), safe_serialization=True)
    encoder.save(directory)


def load(directory: Path, device: str | torch.device = "cpu", attn_implementation: str = "sdpa"):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _quiet()
    directory = check_folder(Path(directory))  # a run's best/ is untrusted too: no auto_map, nothing outside
    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory), dtype=torch.float32, attn_implementation=attn_implementation, local_files_only=True,
        trust_remote_code=False, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
    meta = _encoder_meta(directory, position_limit(model))
    encoder = HFEncoder(tokenizer, meta["max_len"], meta["truncation"])
    use_prepared_masks(model)
    return model.to(device).eval(), encoder


def _encoder_meta(directory: Path, limit: int) -> dict[str, Any]:
    """newsclf_encoder.json of a saved model, checked: max_len an int in 1..limit, a known truncation."""
    from newsclf.runfiles import read_json_inside

    meta = read_json_inside(directory, ENCODER_FILE, default={})
    meta = meta if isinstance(meta, dict) else {}
    max_len, truncation = meta.get("max_len", min(512, limit)), meta.get("truncation", "head")
    if not isinstance(max_len, int) or isinstance(max_len, bool) or not 1 <= max_len <= max(limit, 1):
        raise ValueError(f"{ENCODER_FILE}: max_len must be an integer in 1..{limit}, got {str(max_len)[:40]}")
    if truncation not in ("head", "head_tail"):
        raise ValueError(f"{ENCODER_FILE}: unknown truncation {str(truncation)[:40]!r}")
    return {"max_len": max_len, "truncation": truncation}


def phases(cfg) -> list[Phase]:
    if cfg.strategy == "freeze":
        return [Phase("head", cfg.epochs)]
    if cfg.strategy == "hybrid":
        return [Phase("head", cfg.head_epochs), Phase("all", cfg.epochs - cfg.head_epochs)]
    return [Phase("all", cfg.epochs)]


def is_head(model, name: str) -> bool:
    """The classification head: everything outside the base model, plus a pooler feeding it."""
    prefix = getattr(model, "base_model_prefix", "")
    return not name.startswith(prefix + ".") or ".pooler." in name


def set_phase(model, cfg, phase: Phase) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(phase.name == "all" or is_head(model, name))


def num_layers(model) -> int:
    cfg = model.config
    return int(getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None) or 12)


def layer_depth(model, name: str, n_layers: int) -> int:
    """0 for embeddings, i+1 for encoder layer i, n_layers+1 for the head."""
    if is_head(model, name):
        return n_layers + 1
    match = LAYER_RE.search(name)
    if match:
        return int(match.group(1)) + 1
    return 0 if "embed" in name else n_layers


def effective_layer_decay(model, cfg) -> float:
    if cfg.layer_decay is not None:
        return float(cfg.layer_decay)
    return 0.9 if num_layers(model) <= 6 else 0.95


def param_groups(model, cfg, phase: Phase) -> list[dict[str, Any]]:
    """Head-only: one lr (head_lr). All: lr x decay^(distance from the head), per depth; no decay on biases/norms."""
    if phase.name == "head":
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return split_decay(named, cfg.head_lr, cfg.weight_decay)
    n_layers = num_layers(model)
    decay = effective_layer_decay(model, cfg)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        depth = layer_depth(model, name, n_layers)
        no_decay = p.ndim < 2 or any(h in name.lower() for h in NO_DECAY_HINTS)
        group = groups.setdefault((depth, no_decay), {
            "params": [], "lr": cfg.lr * decay ** (n_layers + 1 - depth),
            "weight_decay": 0.0 if no_decay else cfg.weight_decay, "name": f"depth{depth}{'-nd' if no_decay else ''}"})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


# ---- explanation -------------------------------------------------------------------------------
def transformer_tokens(encoder: HFEncoder, text: str) -> tuple[list[int], list[tuple[int, int]], list[tuple[int, int]]]:
    """(input ids with special tokens, char span per id ((0, 0) for specials), spans of the body tokens
    the model sees), truncated as HFEncoder does (head, or head and tail)."""
    tok = encoder.tokenizer
    if not getattr(tok, "is_fast", False):
        raise InputError("model: explanations need a fast (Rust) tokenizer with offset mapping")
    body = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = list(body["input_ids"]), [tuple(o) for o in body["offset_mapping"]]
    if not ids:
        raise InputError("text: tokenizes to nothing for this model")
    template = tok("a", return_special_tokens_mask=True)
    first = template["special_tokens_mask"].index(0)
    prefix, suffix = template["input_ids"][:first], template["input_ids"][first + 1:]
    room = encoder.max_len - len(prefix) - len(suffix)
    keep = list(range(len(ids)))
    if len(ids) > room:
        if getattr(encoder, "truncation", "head") == "head_tail":
            head = room // 4  # as HFEncoder: 128 head + 382 tail at 512
            keep = keep[:head] + keep[len(ids) - (room - head):]
        else:
            keep = keep[:room]
    seen = [offsets[i] for i in keep]
    full_ids = prefix + [ids[i] for i in keep] + suffix
    full_spans = [(0, 0)] * len(prefix) + seen + [(0, 0)] * len(suffix)
    return full_ids, full_spans, seen


def layers_and_heads(model) -> tuple[int, int]:
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None) or 1
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_heads", None) or 1
    return int(layers), int(heads)


def model_name(pretrained: str) -> str:
    """A short name of a hub id or a local model directory (its last path part)."""
    return Path(str(pretrained).rstrip("/")).name or str(pretrained)
