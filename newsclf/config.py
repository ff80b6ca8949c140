"""Typed run configuration: the ONLY home of defaults.

`RunConfig` is flat on purpose: every field is a JSON value, becomes one CLI flag
(`--batch-size`) and one form widget, and is documented by its ``help`` metadata.
Fields left as ``None`` take the per-model default from `MODEL_DEFAULTS` when the
config is resolved, so a BiLSTM and a transformer get sensible, different defaults
from the same dataclass. This module never imports torch (the job queue validates
configs with it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MODELS = ("tfidf", "bilstm", "transformer")
PROTOCOLS = ("seed", "raw")
STRATEGIES = ("freeze", "hybrid", "full")
TRUNCATIONS = ("head", "head_tail")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_PRETRAINED = "distilbert-base-uncased"
PRETRAINED_PRESETS = ("distilbert-base-uncased", "bert-base-uncased")
MAX_TEXT_CHARS = 2_000_000  # pasted/imported text above this is refused (or truncated by the UI)
BILSTM_MAX_LEN_LIMIT = 4096


class ConfigError(ValueError):
    """A config value is invalid; `field` names the offending field."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class RunConfig:
    """Everything needed to reproduce one training run."""

    model: str = _f("tfidf", "model family", choices=MODELS)
    name: str = _f("", "run name (part of the run id); empty -> the model name")
    # data
    protocol: str = _f("seed", "seed: headers/footers/quotes removed, short docs dropped; raw: headers kept, nothing dropped", choices=PROTOCOLS)
    data_home: str = _f("", "dataset cache folder; empty -> $NEWSCLF_DATA_HOME or data/")
    limit_train: int = _f(0, "use only the first N training documents (0 = all)")
    seed: int = _f(42, "random seed for weights, shuffling and dropout")
    device: str = _f("auto", "auto picks CUDA when available", choices=DEVICES)
    # optimisation (None -> MODEL_DEFAULTS[model])
    epochs: int | None = _f(None, "training epochs (the best epoch by val accuracy is kept)")
    batch_size: int | None = _f(None, "documents per optimizer step (per process under torchrun)")
    lr: float | None = _f(None, "peak learning rate (AdamW); unused by tfidf")
    weight_decay: float | None = _f(None, "AdamW weight decay (not applied to biases and LayerNorm)")
    warmup: float | None = _f(None, "fraction of optimizer steps for linear warm-up")
    grad_clip: float = _f(1.0, "max gradient norm (0 disables clipping)")
    grad_accum: int = _f(1, "gradient accumulation steps")
    max_len: int | None = _f(None, "tokens per document (longer ones are truncated)")
    class_balance: bool | None = _f(None, "weight the loss by inverse class frequency")
    eval_batch_size: int = _f(64, "documents per batch at evaluation")
    num_workers: int | None = _f(None, "DataLoader workers (None -> 2 on CUDA, 0 on CPU)")
    # tfidf
    max_features: int = _f(200_000, "tfidf: vocabulary size of the vectorizer")
    ngram_max: int = _f(2, "tfidf: longest word n-gram")
    classifier: str = _f("cnb", "tfidf: cnb (complement naive Bayes) or logreg (logistic regression)", choices=("cnb", "logreg"))
    alpha: float = _f(0.3, "tfidf: smoothing of complement naive Bayes, or inverse regularisation C of logreg")
    # bilstm
    glove: str = _f("", "bilstm: path to GloVe 6B 300d (.txt or .zip); empty -> random embeddings")
    vocab_size: int = _f(50_000, "bilstm: max vocabulary (PAD=0, UNK=1 included)")
    embed_dim: int = _f(300, "bilstm: embedding size (must be 300 with --glove)")
    hidden_size: int = _f(128, "bilstm: LSTM units per direction")
    num_layers: int = _f(2, "bilstm: stacked BiLSTM layers")
    dropout: float = _f(0.3, "bilstm: dropout on embeddings, between LSTM layers and before the classifier")
    tfidf_weighting: bool = _f(True, "bilstm: scale each token embedding by its TF-IDF weight")
    # transformer
    pretrained: str = _f(DEFAULT_PRETRAINED, "transformer: hub id or local directory")
    strategy: str = _f("full", "transformer: freeze (head only), hybrid (head, then all), full", choices=STRATEGIES)
    layer_decay: float | None = _f(None, "transformer: layer-wise LR decay (None -> 0.9 for <=6 layers, 0.95 deeper)")
    head_lr: float = _f(1e-3, "transformer: learning rate of head-only training (freeze, and hybrid's first phase)")
    head_epochs: int = _f(1, "transformer hybrid: epochs training the head alone before unfreezing")
    truncation: str = _f("head", "transformer: keep the head, or head and tail, of long documents", choices=TRUNCATIONS)
    compile: bool = _f(False, "transformer: torch.compile the model (CUDA)")

    # ---- derived -------------------------------------------------------------------
    def resolved(self) -> "RunConfig":
        """A copy with every None replaced by the model default, then validated."""
        if self.model not in MODELS:
            raise ConfigError("model", f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        defaults = MODEL_DEFAULTS[self.model]
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in defaults.items():
            if values.get(key) is None:
                values[key] = value
        cfg = RunConfig(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        _check_choice(self, "model", MODELS)
        _check_choice(self, "protocol", PROTOCOLS)
        _check_choice(self, "device", DEVICES)
        _check_choice(self, "strategy", STRATEGIES)
        _check_choice(self, "truncation", TRUNCATIONS)
        for name in ("epochs", "batch_size", "max_len", "eval_batch_size", "grad_accum",
                     "max_features", "ngram_max", "vocab_size", "embed_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ConfigError(name, f"must be a positive integer, got {value!r}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError("lr", f"must be a positive number, got {self.lr!r}")
        for name, low, high in (("dropout", 0.0, 0.95), ("warmup", 0.0, 0.9), ("weight_decay", 0.0, 1.0)):
            value = getattr(self, name)
            if value is not None and not (low <= value <= high):
                raise ConfigError(name, f"must be between {low} and {high}, got {value!r}")
        if self.layer_decay is not None and not (0 < self.layer_decay <= 1):
            raise ConfigError("layer_decay", f"must be in (0, 1], got {self.layer_decay!r}")
        if self.head_lr <= 0:
            raise ConfigError("head_lr", f"must be a positive number, got {self.head_lr!r}")
        if self.alpha <= 0:
            raise ConfigError("alpha", f"must be a positive number, got {self.alpha!r}")
        _check_choice(self, "classifier", ("cnb", "logreg"))
        if self.grad_clip < 0:
            raise ConfigError("grad_clip", f"must be >= 0, got {self.grad_clip!r}")
        if self.limit_train < 0:
            raise ConfigError("limit_train", f"must be >= 0, got {self.limit_train!r}")
        if self.head_epochs < 0:
            raise ConfigError("head_epochs", f"must be >= 0, got {self.head_epochs!r}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError("num_workers", f"must be >= 0, got {self.num_workers!r}")
        if self.vocab_size is not None and self.vocab_size < 3:
            raise ConfigError("vocab_size", "must be at least 3 (PAD, UNK and one word)")
        if self.model == "bilstm" and self.max_len is not None and self.max_len > BILSTM_MAX_LEN_LIMIT:
            raise ConfigError("max_len", f"the BiLSTM takes at most {BILSTM_MAX_LEN_LIMIT} tokens, got {self.max_len}")
        if self.model == "bilstm" and self.glove:
            if not Path(self.glove).is_file():
                raise ConfigError("glove", f"file not found: {self.glove}")
            if self.embed_dim != 300:
                raise ConfigError("embed_dim", "must be 300 when GloVe 6B 300d embeddings are used")
        if self.model == "transformer" and self.strategy == "hybrid" and self.epochs is not None \
                and self.head_epochs >= self.epochs:
            raise ConfigError("head_epochs", f"hybrid needs head_epochs < epochs ({self.head_epochs} >= {self.epochs})")
        if self.model == "transformer" and not str(self.pretrained).strip():
            raise ConfigError("pretrained", "give a hub id (e.g. distilbert-base-uncased) or a local model directory")
        if self.name and not _safe_name(self.name):
            raise ConfigError("name", "use letters, digits, '-', '_' and '.' only (max 64 characters)")

    # ---- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], "unknown config field")
        return cls(**data)

    def fingerprint(self) -> dict[str, Any]:
        """Fields that must match for `--resume` (everything but epochs-independent niceties)."""
        skip = {"name", "device", "num_workers", "eval_batch_size", "data_home", "compile"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}


MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "tfidf": dict(epochs=1, batch_size=1, lr=1.0, weight_decay=0.0, warmup=0.0, max_len=100_000,
                  class_balance=False),
    "bilstm": dict(epochs=10, batch_size=64, lr=2e-3, weight_decay=1e-4, warmup=0.05, max_len=256,
                   class_balance=True),
    "transformer": dict(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup=0.1, max_len=512,
                        class_balance=False),
}

# Presets shown by the dashboard (the study's configurations) and used by the quick start.
PRESETS: dict[str, dict[str, Any]] = {
    "TF-IDF + complement NB (baseline)": dict(model="tfidf"),
    "TF-IDF + logistic regression": dict(model="tfidf", classifier="logreg", alpha=0.1, name="tfidf-logreg"),
    "BiLSTM + attention (study)": dict(model="bilstm"),
    "BiLSTM small (CPU quick start)": dict(model="bilstm", embed_dim=100, hidden_size=64, epochs=3,
                                           max_len=128, name="bilstm-small"),
    "DistilBERT freeze": dict(model="transformer", pretrained="distilbert-base-uncased", strategy="freeze"),
    "DistilBERT hybrid": dict(model="transformer", pretrained="distilbert-base-uncased", strategy="hybrid",
                              epochs=4, head_epochs=1),
    "DistilBERT full": dict(model="transformer", pretrained="distilbert-base-uncased", strategy="full"),
    "BERT-base freeze": dict(model="transformer", pretrained="bert-base-uncased", strategy="freeze",
                             layer_decay=0.95),
    "BERT-base hybrid": dict(model="transformer", pretrained="bert-base-uncased", strategy="hybrid",
                             epochs=4, head_epochs=1, layer_decay=0.95),
    "BERT-base full": dict(model="transformer", pretrained="bert-base-uncased", strategy="full",
                           layer_decay=0.95),
}


def _check_choice(cfg: RunConfig, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in choices:
        raise ConfigError(name, f"unknown value {value!r}; choose one of {', '.join(choices)}")


def _safe_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name))


# ---- locations ---------------------------------------------------------------------------
def resolve_data_home(path: str | os.PathLike | None = None) -> Path:
    """Explicit path > $NEWSCLF_DATA_HOME > ./data."""
    return Path(path or os.environ.get("NEWSCLF_DATA_HOME") or "data").expanduser().resolve()


def resolve_runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Explicit path > $NEWSCLF_RUNS_DIR > ./checkpoints."""
    return Path(path or os.environ.get("NEWSCLF_RUNS_DIR") or "checkpoints").expanduser().resolve()


# ---- CLI flags generated from the dataclass -------------------------------------------------
def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--flag` per RunConfig field; unspecified flags stay None (-> defaults)."""
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(f)
        kwargs: dict[str, Any] = dict(dest=f.name, default=None, help=f.metadata.get("help", ""))
        if kind is bool:
            kwargs.update(type=_bool, nargs="?", const=True, metavar="BOOL")
        else:
            kwargs["type"] = kind
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kwargs)


def _field_type(f: dataclasses.Field) -> type:
    text = str(f.type)
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if text.startswith(name):
            return kind
    return str


def config_from_namespace(ns: argparse.Namespace) -> RunConfig:
    values = {f.name: getattr(ns, f.name) for f in fields(RunConfig) if getattr(ns, f.name, None) is not None}
    return RunConfig(**values).resolved()


def parse_train_args(argv: list[str]) -> RunConfig:
    """Parse train options (as given to `newsclf train`) into a resolved, validated config.

    Raises ConfigError naming the field; used by the job queue at submit time.
    """
    parser = _RaisingParser(prog="newsclf train", add_help=False)
    add_config_arguments(parser)
    ns, extra = parser.parse_known_args(argv)
    if extra:
        raise ConfigError(extra[0].lstrip("-").replace("-", "_") or "arguments", f"unrecognised option {extra[0]!r}")
    return config_from_namespace(ns)


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        field_name = "arguments"
        if "argument --" in message:
            field_name = message.split("argument --", 1)[1].split(":", 1)[0].split("/")[0].replace("-", "_")
        raise ConfigError(field_name, message)


def config_to_args(cfg: RunConfig) -> list[str]:
    """The inverse of parse_train_args: flags for every field that differs from the dataclass default."""
    base = RunConfig()
    args: list[str] = []
    for f in fields(RunConfig):
        value = getattr(cfg, f.name)
        if value == getattr(base, f.name) or value is None:
            continue
        args += ["--" + f.name.replace("_", "-"), str(value)]
    return args
