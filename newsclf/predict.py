"""Predictor(run): `predict_proba(texts)` for any run kind, loaded from best/ without pickle."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from newsclf import store
from newsclf.config import MAX_TEXT_CHARS


class InputError(ValueError):
    """User text that cannot be classified; the message names the field."""


def validate_text(text: Any, field: str = "text") -> str:
    """Return `text` if it can be classified, else raise InputError naming `field`."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{field}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    if not isinstance(text, str):
        raise InputError(f"{field}: expected text, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{field}: is empty; give some text to classify")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"{field}: {len(text):,} characters is more than the {MAX_TEXT_CHARS:,} accepted; "
                         "shorten it (models only read the first few hundred tokens anyway)")
    return text


@dataclass
class Predictor:
    """A loaded run: `kind` is tfidf, bilstm or transformer; torch models live on `device`."""

    run_dir: Path
    kind: str
    label_names: list[str]
    config: dict
    model: Any  # TfidfClassifier or torch.nn.Module
    encoder: Any = None  # torch models only
    device: str = "cpu"
    batch_size: int = 64

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def max_len(self) -> int | None:
        return getattr(self.encoder, "max_len", None)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) float32 class probabilities."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        if self.kind == "tfidf":
            return self.model.predict_proba(texts)
        return torch_predict_proba(self.model, self.encoder.encode(texts), self.encoder.pad_id,
                                   self.device, self.batch_size)

    def top_k(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable classes of one (validated) text."""
        probs = self.predict_proba([validate_text(text)])[0]
        order = np.argsort(-probs)[:k]
        return [(self.label_names[i], float(probs[i])) for i in order]


def torch_predict_proba(model, ids: Sequence[Sequence[int]], pad_id: int, device, batch_size: int = 64) -> np.ndarray:
    """Batched, length-sorted inference in eval mode (bf16 autocast on CUDA); rows in input order."""
    import torch

    from newsclf.batching import eval_batches

    device = torch.device(device)
    model.eval()
    out: np.ndarray | None = None
    with torch.inference_mode():
        for idx, batch in eval_batches(ids, batch_size, pad_id):
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            if out is None:
                out = np.zeros((len(ids), probs.shape[1]), dtype=np.float32)
            out[idx] = probs
    return out


def load_model_dir(kind: str, directory: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, encoder) from a best/ folder; encoder is None for tfidf."""
    if kind == "tfidf":
        from newsclf.models import tfidf

        return tfidf.load(directory), None
    from newsclf.models import get_family

    return get_family(kind).load(directory, device)


def load_predictor(run: str | Path, runs_dir: str | Path | None = None, device: str = "cpu") -> Predictor:
    """Load a finished run's best/ model. `run` is an id or a path inside `runs_dir`."""
    from newsclf.config import resolve_runs_dir

    run_dir = store.resolve_run(run, resolve_runs_dir(runs_dir))
    config = store.read_json(run_dir / store.CONFIG) or {}
    best = run_dir / store.BEST
    if not best.is_dir():
        state = store.read_status(run_dir).get("state", "unknown")
        raise store.RunNotFoundError(f"run {run_dir.name}: no trained model yet (state: {state})")
    kind = config.get("model", "")
    model, encoder = load_model_dir(kind, best, device)
    return Predictor(run_dir, kind, store.load_labels(run_dir), config, model, encoder, device,
                     int(config.get("eval_batch_size", 64)))
