"""Why did a model decide as it did: attributions aligned to the words of the original text.

    explain(predictor, text, method=None, target=None, ...) -> Attribution

Methods per model family (`available_methods`; the registry in newsclf.models lists them):
  tfidf        contributions  exact weight x tf-idf value per feature (for a linear model this IS
                              Integrated Gradients from an all-zero baseline, so "ig" is accepted)
  bilstm       ig, attention  Captum LayerIntegratedGradients on `model.embedding` (baseline: PAD
                              ids, real mask); the attention-pooling weights
  transformer  ig, attention, rollout
                              LayerIntegratedGradients on the word embeddings (baseline
                              [CLS] PAD ... PAD [SEP], real mask); [CLS] attention of one layer and
                              head (or the mean of heads); attention rollout across layers
IG explains the target class's logit (TF-IDF: its decision score), so the scores sum to
f(input) - f(baseline) up to the reported convergence `delta`.

Alignment: every model's token scores are summed onto `text.word_spans(text)` words by
character overlap (a token spanning several words is split in proportion to the characters it
covers), so explanations of all models line up. Scores of tokens on no word (special tokens,
punctuation) are summed in `unaligned`. Words the model never saw (truncation) get score None
and `seen` False. TF-IDF: each occurrence of a feature gets contribution / count; a bigram's
share is split equally over its two words; stop words and out-of-vocabulary words get 0.

Shared (cached) models are never mutated: Captum hooks and the eager attention implementation
live on a private module copy that shares the weights, guarded by its own lock.
"""
from __future__ import annotations

import bisect
import copy
import threading
import weakref
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from newsclf.errors import InputError
from newsclf.models import get_family
from newsclf.models.attention import attention_rollout  # noqa: F401 - part of this module's API
from newsclf.ig import completeness_note, integrated_gradients
from newsclf.predict import Predictor
from newsclf.text import word_spans

SIGNED_METHODS = ("ig", "contributions")
METHOD_NAMES = {"ig": "Integrated gradients", "attention": "Attention", "rollout": "Attention rollout",
                "contributions": "Exact contributions"}
DEFAULT_STEPS = 32
MAX_STEPS = 1024  # IG integration steps: more only costs time (completeness is reported as delta)


@dataclass
class Attribution:
    """One explanation: `scores[i]` belongs to `words[i]` at `offsets[i]` of the original text.

    `scores` are None for words the model never saw. For signed methods (ig, contributions)
    positive means "pushes towards `target`"; attention scores are non-negative weights.
    """

    run_id: str
    model: str  # run kind: tfidf | bilstm | transformer
    method: str  # ig | attention | rollout | contributions
    target: int
    label_names: list[str]
    probabilities: list[float]
    words: list[str]
    offsets: list[tuple[int, int]]
    scores: list[float | None]
    seen: list[bool]
    delta: float | None = None  # IG convergence delta: sum(attributions) - (f(input) - f(baseline))
    f_input: float | None = None  # explained score (target logit / decision score) on the input
    f_baseline: float | None = None  # ... on the baseline (TF-IDF: the intercept)
    unaligned: float = 0.0  # score on tokens that lie on no word ([CLS], [SEP], punctuation)
    n_steps: int | None = None
    layer: int | None = None  # attention: 0-based layer
    head: int | None = None  # attention: head, None = mean over heads
    n_tokens: int = 0  # tokens the model read (special tokens included)
    max_len: int | None = None
    unseen_spans: list[tuple[int, int]] = field(default_factory=list)  # character ranges never seen
    notes: list[str] = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return self.method in SIGNED_METHODS

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def target_label(self) -> str:
        return self.label_names[self.target]

    @property
    def predicted_label(self) -> str:
        return self.label_names[self.predicted]

    def score_array(self) -> np.ndarray:
        """Scores as float64 with NaN for unseen words."""
        return np.array([np.nan if s is None else s for s in self.scores], dtype=np.float64)

    def top_words(self, k: int = 10, sign: int = 1) -> list[tuple[str, float]]:
        """The k strongest word forms (lower-cased, summed over occurrences); sign -1 = most negative."""
        totals: dict[str, float] = {}
        for w, s in zip(self.words, self.scores):
            if s is not None:
                totals[w.lower()] = totals.get(w.lower(), 0.0) + s
        items = [(w, s) for w, s in totals.items() if s * sign > 0]
        return sorted(items, key=lambda kv: -kv[1] * sign)[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field plus target_label, predicted, predicted_label."""
        d = asdict(self)
        d["offsets"] = [list(o) for o in self.offsets]
        d["unseen_spans"] = [list(o) for o in self.unseen_spans]
        d.update(target_label=self.target_label, predicted=self.predicted, predicted_label=self.predicted_label)
        return d


# ---- entry points ----------------------------------------------------------------------------
def available_methods(kind: str) -> tuple[str, ...]:
    """The explanation methods of model family `kind` (the first is the default)."""
    try:
        return get_family(kind).method_names()
    except ValueError:
        return ()


def resolve_method(kind: str, method: str | None) -> str:
    """The method to run for this family: the default when None; aliases (TF-IDF's "ig") resolved."""
    try:
        family = get_family(kind)
    except ValueError:
        raise InputError(f"model: cannot explain a {kind!r} run") from None
    if not family.explain_methods:
        raise InputError(f"model: cannot explain a {kind!r} run")
    try:
        return family.explain_method(method).name
    except KeyError:
        raise InputError(f"method: a {kind} run has no {method!r} explanation; "
                         f"it offers: {', '.join(family.method_names())}") from None


def resolve_target(target: int | str | None, label_names: Sequence[str]) -> int | None:
    """A class index from an index, a numeric string or a class name (case-insensitive); None stays None."""
    if target is None or (isinstance(target, str) and not target.strip()):
        return None
    if isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.strip().isdigit()):
        idx = int(target)
        if not 0 <= idx < len(label_names):
            raise InputError(f"target: class index {idx} is out of range (0..{len(label_names) - 1})")
        return idx
    lowered = [n.lower() for n in label_names]
    if str(target).strip().lower() in lowered:
        return lowered.index(str(target).strip().lower())
    raise InputError(f"target: {target!r} is not a class of this run (classes: {', '.join(label_names)})")


def explain(predictor: Predictor, text: str, method: str | None = None, target: int | str | None = None, *,
            layer: int | None = None, head: int | None = None, n_steps: int = DEFAULT_STEPS,
            internal_batch_size: int | None = None) -> Attribution:
    """Explain `predictor`'s decision on `text` for `target` (default: the predicted class).

    Raises InputError for empty text, text with no words, an unknown method/target/layer/head.
    `layer` (default: last) and `head` (default: mean of heads) apply to transformer attention.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("text: is empty; give some text to explain")
    if not word_spans(text):
        raise InputError("text: has no words (letters or digits) to explain")
    method = resolve_method(predictor.kind, method)
    target_idx = resolve_target(target, predictor.label_names)
    if not isinstance(n_steps, int) or not 1 <= n_steps <= MAX_STEPS:
        raise InputError(f"steps: must be an integer from 1 to {MAX_STEPS}")
    if internal_batch_size is not None and not 1 <= int(internal_batch_size) <= MAX_STEPS:
        raise InputError(f"batch-size: must be an integer from 1 to {MAX_STEPS}")
    own = predictor.family.explain_run(predictor, text, method, target_idx, layer=layer, head=head,
                                       n_steps=n_steps, internal_batch_size=internal_batch_size)
    if own is not None:  # a family whose model is other runs (ensembles): its members explain
        return own
    if method == "contributions":
        return _explain_contributions(predictor, text, target_idx)
    return _explain_torch(predictor, text, method, target_idx, layer, head, n_steps, internal_batch_size)


# ---- alignment -------------------------------------------------------------------------------
def align_to_words(words: Sequence[tuple[str, int, int]], token_spans: Sequence[tuple[int, int]],
                   token_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray, float]:
    """Sum token scores onto words by character overlap: (word scores (W,), word hit (W,) bool, unaligned)."""
    starts = [s for _, s, _ in words]
    scores = np.zeros(len(words), dtype=np.float64)
    hit = np.zeros(len(words), dtype=bool)
    unaligned = 0.0
    for (ts, te), value in zip(token_spans, token_scores):
        overlaps = []
        j = max(bisect.bisect_right(starts, ts) - 1, 0)
        while te > ts and j < len(words) and words[j][1] < te:
            ov = min(te, words[j][2]) - max(ts, words[j][1])
            if ov > 0:
                overlaps.append((j, ov))
            j += 1
        if not overlaps:
            unaligned += float(value)
            continue
        total = sum(ov for _, ov in overlaps)
        for j, ov in overlaps:
            scores[j] += float(value) * ov / total
            hit[j] = True
    return scores, hit, unaligned


def _record(predictor: Predictor, text: str, method: str, target: int, probs: np.ndarray,
            token_spans, token_scores, seen_spans, **extra) -> Attribution:
    """Align token scores to the words of `text`; words overlapping no span in `seen_spans` are unseen."""
    words = word_spans(text)
    scores, _, unaligned = align_to_words(words, token_spans, token_scores)
    _, seen, _ = align_to_words(words, seen_spans, np.zeros(len(seen_spans)))
    unseen_spans: list[tuple[int, int]] = []
    for i, (_, s, e) in enumerate(words):
        if not seen[i]:
            if i > 0 and not seen[i - 1]:
                unseen_spans[-1] = (unseen_spans[-1][0], e)
            else:
                unseen_spans.append((s, e))
    notes = list(extra.pop("notes", []))
    if unseen_spans:
        n_unseen = int((~seen).sum())
        notes.append(f"{n_unseen} of {len(words)} words lie beyond the model's {predictor.max_len}-token limit "
                     "and were never seen")
    return Attribution(
        run_id=predictor.run_id, model=predictor.kind, method=method, target=int(target),
        label_names=list(predictor.label_names), probabilities=[float(p) for p in probs],
        words=[w for w, _, _ in words], offsets=[(s, e) for _, s, e in words],
        scores=[float(v) if ok else None for v, ok in zip(scores, seen)], seen=[bool(x) for x in seen],
        unaligned=float(unaligned), unseen_spans=unseen_spans, notes=notes, max_len=predictor.max_len, **extra)


# ---- exact contributions (linear models) -------------------------------------------------------
def _explain_contributions(predictor: Predictor, text: str, target: int | None) -> Attribution:
    """Contrastive exact contributions: class `target`'s score minus its strongest rival's.

    Word scores + unaligned + f_baseline (the bias difference) == f_input (the decision difference).
    """
    from newsclf.models.tfidf import contrast_class, token_contributions

    model = predictor.model
    decision = model.decision_function([text])[0]
    probs = predictor.predict_proba([text])[0]
    target = int(np.argmax(decision)) if target is None else target
    versus = contrast_class(decision, target)
    spans, scores, unaligned, bias = token_contributions(model, text, target, versus)
    everything = [(0, len(text))]
    gap = float(decision[target] - (decision[versus] if versus is not None else 0.0))
    rec = _record(predictor, text, "contributions", target, probs, spans, scores, everything,
                  f_input=gap, f_baseline=bias)
    rec.unaligned += unaligned
    names = predictor.label_names
    if versus is not None:
        rival = "the runner-up" if target == int(np.argmax(decision)) else "the predicted class"
        rec.notes.append(f"contrastive: scores are {names[target]} minus {names[versus]} ({rival}); positive words "
                         f"favour {names[target]}, negative words favour {names[versus]}; they and the bias "
                         f"difference add up to the decision-score difference {gap:.4g}")
    if not spans and not unaligned:
        rec.notes.append("no word of this text is in the model's vocabulary: only the bias decides")
    return rec


# ---- torch models: private copies, guards ---------------------------------------------------
_COPIES: "weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, threading.Lock]]]" = weakref.WeakKeyDictionary()
_COPIES_GUARD = threading.Lock()


def private_copy(model, attn_implementation: str | None = None, lock: Any = None):
    """(copy, lock): a module copy sharing `model`'s weights (no extra weight memory), in eval mode,
    with its own attention implementation; hooks on it never touch the shared model."""
    with _COPIES_GUARD:
        entry = _COPIES.setdefault(model, {})
        key = attn_implementation or "same"
        if key not in entry:
            with lock if lock is not None else nullcontext():
                memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
                clone = copy.deepcopy(model, memo).eval()
            if attn_implementation:
                clone.set_attn_implementation(attn_implementation)
            entry[key] = (clone, threading.Lock())
        return entry[key]


def _prepared(predictor: Predictor, ids: list[int], attn_implementation: str | None = None):
    """(private model copy, its lock, input ids (1, T), mask (1, T)) on the model's device."""
    import torch

    model, copy_lock = private_copy(predictor.model, attn_implementation)
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    return model, copy_lock, input_ids, torch.ones_like(input_ids)


def _attn_implementation(predictor: Predictor, method: str | None) -> str | None:
    return "eager" if method and predictor.family.needs_eager_attention(method) else None


def _explain_torch(predictor: Predictor, text: str, method: str, target: int | None, layer: int | None,
                   head: int | None, n_steps: int, internal_batch_size: int | None) -> Attribution:
    """IG or an attention method through the family's hooks (newsclf.models.torch_family.TorchFamily)."""
    family = predictor.family
    ids, spans, seen = family.explain_tokens(predictor.encoder, text)
    model, copy_lock, input_ids, mask = _prepared(predictor, ids, _attn_implementation(predictor, method))
    extra: dict[str, Any] = {"n_tokens": len(ids)}
    with copy_lock:
        if method == "ig":
            baseline = family.ig_baseline(input_ids, spans, predictor.encoder)
            scores, delta, probs, f_in, f_base, target = integrated_gradients(
                model, family.ig_layer(model), input_ids, baseline, mask, target, n_steps, internal_batch_size)
            extra.update(delta=delta, f_input=f_in, f_baseline=f_base, n_steps=n_steps)
            note = completeness_note(delta, f_in, f_base, n_steps)
            if note:
                extra["notes"] = [note]
        else:
            scores, probs, more = family.attention_scores(model, input_ids, mask, method, layer, head)
            target = int(probs.argmax()) if target is None else target
            extra.update(more)
    return _record(predictor, text, method, target, probs, spans, scores, seen, **extra)


def explain_locked(predictor: Predictor, text: str, lock: Any = None, **kwargs) -> Attribution:
    """`explain` where creating the private model copy happens under `lock` (a shared model's lock)."""
    if lock is not None and predictor.family.trained_by_loop:
        method = resolve_method(predictor.kind, kwargs.get("method"))
        private_copy(predictor.model, _attn_implementation(predictor, method), lock=lock)
    return explain(predictor, text, **kwargs)
