"""Typed parsing at the boundary: every value newsclf reads from a run dir or a data home is checked once,
where it is read, and nowhere else.

A runs dir and a data home are shared places (a colleague's copied run, a team drive): their files
are untrusted input. Each file kind has a schema here (a field -> checker table): types, finiteness,
ranges, shapes, index bounds. A parser returns only fields that passed, so the rest of newsclf uses
them without checking again; a bad value raises DamagedError, one line naming the file and the field,
which readers turn into a run marked "damaged" (never an exception in a command or a page).

    parse_status(raw)       status.json  -> dict       (strict: DamagedError on the first bad field)
    parse_results(raw)      results.json -> dict
    parse_event(raw)        one metrics.jsonl line -> dict | None (bad lines are skipped, as torn ones are)
    parse_predictions(...)  predictions_{split}.npz arrays -> store.Predictions (shapes, labels in range)
    parse_job(raw)          job.json numbers and lists (the signed parts are checked by jobs.spec)
    clean(schema, raw)      the lenient form: bad fields dropped (writers repairing a file, re-evaluation)

Designed to fold into the one run-directory module (issue 19): the schemas become the `Status`,
`Results` and `JobSpec` dataclasses' parsers. Nothing here reads files or imports torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from newsclf.errors import RunNotFoundError

STATES = ("queued", "running", "finished", "failed", "cancelled")
MAX_TIME = 4_102_444_800.0  # 2100-01-01: any later (or negative) timestamp is not one we wrote
MAX_SECONDS = 1e9  # durations and ETAs (30 years)
MAX_COUNT = 10**13  # documents, steps, parameters
MAX_TEXT = 100_000  # reasons, tracebacks
MAX_CLASSES = 10_000
MAX_DOCS = 50_000_000
MAX_DOC_ID = 512


@dataclass
class Predictions:
    """Per-document predictions of one split."""

    doc_id: np.ndarray  # (N,) str
    y_true: np.ndarray  # (N,) int
    y_pred: np.ndarray  # (N,) int
    probs: np.ndarray  # (N, C) float32


class DamagedError(RunNotFoundError):
    """A file of a run dir or data home holds a value newsclf did not write: one line for the user."""


Check = Callable[[Any, str], Any]


def _bad(field: str, what: str, value: Any) -> DamagedError:
    shown = repr(value)
    return DamagedError(f"{field}: expected {what}, got {shown[:60]}{'...' if len(shown) > 60 else ''}")


# ---- field checkers: (value, field name) -> the value, or DamagedError -----------------------------------
def number(low: float = -math.inf, high: float = math.inf, *, integer: bool = False, optional: bool = True,
           nan: bool = False) -> Check:
    """A finite int/float in [low, high] (with `integer`, an int or an integral float, returned as int);
    None passes when `optional`. `nan` also lets NaN and +-inf through (a diverged loss is a true value)."""
    what = f"{'an integer' if integer else 'a number'} in [{low:g}, {high:g}]"

    def check(value: Any, field: str) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(field, what, value)
        if integer and isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer() and low <= value <= high):
                raise _bad(field, what, value)
            return int(value)
        if isinstance(value, float) and not math.isfinite(value):
            if nan:
                return value
            raise _bad(field, what, value)
        if not low <= value <= high:
            raise _bad(field, what, value)
        return value
    return check


def text(max_len: int = 200, *, optional: bool = True) -> Check:
    def check(value: Any, field: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str) or len(value) > max_len:
            raise _bad(field, f"text of at most {max_len:,} characters", value)
        return value
    return check


def flag(value: Any, field: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raise _bad(field, "true or false", value)


def one_of(*choices: str) -> Check:
    def check(value: Any, field: str) -> Any:
        if value is None or value in choices:
            return value
        raise _bad(field, f"one of {', '.join(choices)}", value)
    return check


def list_of(item: Check, max_len: int = MAX_CLASSES, *, optional: bool = True) -> Check:
    def check(value: Any, field: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, list) or len(value) > max_len:
            raise _bad(field, f"a list of at most {max_len:,} items", value)
        return [item(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return check


def mapping(schema: Mapping[str, Check], *, optional: bool = True) -> Check:
    """A JSON object checked field by field (unknown keys dropped)."""
    def check(value: Any, field: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, dict):
            raise _bad(field, "an object", value)
        return parse(schema, value, prefix=f"{field}.")
    return check


def dict_of(item: Check, max_len: int = MAX_CLASSES) -> Check:
    """An object with text keys and checked values (e.g. {run id: accuracy})."""
    def check(value: Any, field: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or len(value) > max_len or not all(isinstance(k, str) for k in value):
            raise _bad(field, "an object", value)
        return {k[:200]: item(v, f"{field}.{k[:40]}") for k, v in value.items()}
    return check


def matrix(max_side: int = MAX_CLASSES) -> Check:
    """A square matrix of counts (a confusion matrix)."""
    count = number(0, MAX_DOCS, integer=True, optional=False)

    def check(value: Any, field: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > max_side or \
                not all(isinstance(row, list) and len(row) == len(value) for row in value):
            raise _bad(field, "a square matrix", value)
        return [[count(v, field) for v in row] for row in value]
    return check


def parse(schema: Mapping[str, Check], raw: Any, prefix: str = "") -> dict[str, Any]:
    """The fields of `schema` present in `raw`, each checked; DamagedError on the first bad one."""
    if not isinstance(raw, dict):
        raise DamagedError(f"{prefix.rstrip('.') or 'file'}: expected a JSON object")
    return {key: check(raw[key], prefix + key) for key, check in schema.items() if key in raw}


def clean(schema: Mapping[str, Check], raw: Any) -> dict[str, Any]:
    """The lenient parse: fields that fail their check are dropped, unknown keys kept as they are."""
    if not isinstance(raw, dict):
        return {}
    out = dict(raw)
    for key, check in schema.items():
        if key in out:
            try:
                out[key] = check(out[key], key)
            except DamagedError:
                del out[key]
    return out


# ---- schemas ------------------------------------------------------------------------------------------
TIME = number(0, MAX_TIME)
SECONDS = number(0, MAX_SECONDS)
SHARE = number(0, 1)
COUNT = number(0, MAX_COUNT, integer=True)
LOSS = number(nan=True)
IDENTITY = mapping({"pid": number(1, 2**31 - 1, integer=True, optional=False), "start": COUNT,
                    "boot": text(64), "host": text(255), "pgid": number(1, 2**31 - 1, integer=True),
                    "log_offset": number(-2**62, 2**62, integer=True)})
PROGRESS = {"step": COUNT, "total_steps": COUNT, "epoch": COUNT, "loss": LOSS, "lr": number(0, 1e6),
            "samples_per_s": number(0, 1e12), "eta_s": SECONDS, "time": TIME}
JOB_PUBLIC = {"submitted": TIME, "slot": one_of("cpu", "gpu"), "gpu_count": number(0, 4096, integer=True),
              "gpus": list_of(text(8), 4096), "nproc_per_node": number(1, 4096, integer=True),
              "torchrun": flag, "resume": flag, "attempt": number(1, 10_000, integer=True)}
STATUS: dict[str, Check] = {
    "state": one_of(*STATES), "created": TIME, "started": TIME, "ended": TIME, "updated": TIME,
    "reason": text(MAX_TEXT), "error": text(MAX_TEXT), "phase": text(40), "device": text(200),
    "trainer_pid": number(1, 2**31 - 1, integer=True), "pid": number(1, 2**31 - 1, integer=True),
    "trainer": IDENTITY, "worker": IDENTITY, "supervisor": IDENTITY, "trainer_sig": text(128),
    "worker_sig": text(128), "released": flag, "exit_code": number(-255, 255, integer=True),
    "cancel": mapping({"requested": TIME, "timeout": SECONDS, "grace": SECONDS, "deadline": TIME}),
    "job": mapping(JOB_PUBLIC), "progress": mapping(PROGRESS), "epoch": COUNT, "best_val_acc": number(-1, 1),
    "world_size": number(1, 65_536, integer=True),
}
CLASS_ROW = mapping({"label": text(500), "precision": SHARE, "recall": SHARE, "f1": SHARE,
                     "support": COUNT}, optional=False)
REPORT = mapping({"accuracy": SHARE, "f1_macro": SHARE, "f1_weighted": SHARE, "precision_macro": SHARE,
                  "recall_macro": SHARE, "n": COUNT, "confusion": matrix(),
                  "per_class": list_of(CLASS_ROW)})
RESULTS: dict[str, Check] = {
    "model": text(40, optional=False), "val_acc": SHARE, "test_acc": SHARE, "f1_macro": SHARE,
    "f1_weighted": SHARE, "precision_macro": SHARE, "recall_macro": SHARE, "train_seconds": SECONDS,
    "inference_ms_per_doc": SECONDS, "inference_ms_single": SECONDS, "params": COUNT, "trainable_params": COUNT,
    "best_epoch": COUNT, "device": text(200), "n_train": COUNT, "n_val": COUNT, "n_test": COUNT,
    "label_names": list_of(text(500)), "protocol": text(40), "run_id": text(200),
    "val_report": REPORT, "test_report": REPORT,
    "embeddings": mapping({"source": text(4096), "dim": COUNT, "vocab_coverage": SHARE, "token_coverage": SHARE}),
    "members": list_of(text(200), 64), "weights": list_of(number(0, 1, optional=False), 64),
    "weights_from": text(40), "combine": text(40), "val_log_loss": number(0, 1e6), "fit_seconds": SECONDS,
    "member_val_acc": dict_of(SHARE, 64), "member_test_acc": dict_of(SHARE, 64),
    "temperature": number(1e-3, 1e3), "ece_val": SHARE, "ece_test": SHARE, "ece_test_scaled": SHARE,
}
EVENT: dict[str, Check] = {
    "type": text(20, optional=False), **PROGRESS, "epochs": COUNT, "n_train": COUNT, "world_size": COUNT,
    "resumed_from_epoch": COUNT, "interval_end": flag, "phase": text(40), "train_loss": LOSS, "val_loss": LOSS,
    "val_acc": SHARE, "test_acc": SHARE, "is_best": flag, "early_stop": flag, "seconds": SECONDS, "split": text(20), "done": COUNT, "total": COUNT,
    "overall_done": COUNT, "overall_total": COUNT, "stage": text(40),
}
JOB: dict[str, Check] = {"id": text(200, optional=False), "submitted": TIME, "slot": text(8),
                         "attempt": number(1, 10_000, integer=True), "torchrun": flag,
                         "launch": mapping({"started": TIME, "gpus": list_of(text(8), 4096),
                                            "supervisor": IDENTITY, "attempt": COUNT, "nonce": text(64)})}


def _word_or_count(value: Any, field: str) -> Any:
    if isinstance(value, str) and len(value) <= 200:
        return value
    return number(0, MAX_COUNT, integer=True, optional=False)(value, field)


STATS: dict[str, Check] = {  # <data home>/newsclf_stats_<protocol>.json (a cache: a bad one is recomputed)
    "protocol": text(40, optional=False), "n_docs": COUNT, "total_words": COUNT, "total_chars": COUNT,
    "class_counts": dict_of(number(0, MAX_DOCS, integer=True, optional=False)),
    "class_count_stats": mapping({"min": COUNT, "max": COUNT, "mean": number(0, MAX_DOCS), "std": number(0, MAX_DOCS),
                                  "min_class": text(500), "max_class": text(500)}, optional=False),
    "words_per_doc": mapping({k: number(0, MAX_COUNT) for k in ("mean", "median", "std", "min", "max", "q25", "q75")},
                             optional=False),
    "splits": dict_of(COUNT, 3),
    "top_words": dict_of(list_of(list_of(_word_or_count, 2, optional=False), 1000, optional=False)),
}


def parse_stats(raw: Any) -> dict[str, Any]:
    """A stats cache, every field checked (class names consistent across its tables); DamagedError otherwise."""
    stats = _named("stats cache", lambda: parse(STATS, raw))
    if set(stats) != set(STATS):
        raise DamagedError(f"stats cache: missing {sorted(set(STATS) - set(stats))[:3]}")
    names = set(stats["class_counts"])
    ccs = stats["class_count_stats"]
    if not names or ccs.get("min_class") not in names or ccs.get("max_class") not in names \
            or not set(stats["top_words"]) <= names or not set(stats["splits"]) <= {"train", "val", "test"} \
            or any(len(pair) != 2 or not isinstance(pair[0], str) or not isinstance(pair[1], int)
                   for rows in stats["top_words"].values() for pair in rows):
        raise DamagedError("stats cache: its tables do not agree on the class names")
    return stats


RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # store.RUN_ID_RE


def run_id(*, optional: bool = True) -> Check:
    import re

    def check(value: Any, field: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not re.match(RUN_ID, value):
            raise _bad(field, "a run id", value)
        return value
    return check


STUDY: dict[str, Check] = {  # <runs dir>/.study-<id>.json
    "id": text(64, optional=False), "created": number(0, MAX_TIME, optional=False),
    "pretrained_small": text(4096, optional=False), "pretrained_large": text(4096, optional=False),
    "entries": list_of(mapping({"group": text(40, optional=False), "preset": text(200, optional=False),
                                "config": mapping({}, optional=False), "job": run_id()}, optional=False), 64,
                       optional=False),
    "ensemble": run_id(), "ensemble_error": text(MAX_TEXT),
}


def parse_study(raw: Any) -> dict[str, Any]:
    """A study record, every field checked (job and ensemble ids are run ids, never paths)."""
    study = _named("study record", lambda: parse(STUDY, raw))
    missing = [k for k in ("id", "created", "pretrained_small", "pretrained_large", "entries") if k not in study]
    if missing:
        raise DamagedError(f"study record: no {missing[0]}")
    for entry, raw_entry in zip(study["entries"], raw["entries"]):
        entry["config"] = dict(raw_entry["config"])  # submitted configs are validated again by jobs.submit
        if "group" not in entry or "preset" not in entry:
            raise DamagedError("study record: an entry without group or preset")
    return study


def _named(what: str, parser: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return parser()
    except DamagedError as exc:
        raise DamagedError(f"{what}: {exc}") from None


def parse_status(raw: Any) -> dict[str, Any]:
    """status.json, every known field checked (state must be one of STATES)."""
    status = _named("status.json", lambda: parse(STATUS, raw))
    if status.get("state") is None:
        raise DamagedError("status.json: no state")
    return status


def parse_results(raw: Any) -> dict[str, Any]:
    """results.json, every known field checked (model, accuracies in [0, 1], costs finite and >= 0, ...)."""
    return _named("results.json", lambda: parse(RESULTS, raw))


def parse_job(raw: Any) -> dict[str, Any]:
    """job.json's informational fields, checked; the signed plan (slot, GPUs, processes, attempt, nonce)
    is checked by jobs.spec.validate_plan. Unknown keys are kept: the signature covers them as written."""
    checked = _named("job.json", lambda: parse(JOB, raw))
    return {**raw, **checked}


def parse_event(raw: Any) -> dict[str, Any] | None:
    """One metrics.jsonl event with its known fields checked; None for a line that is not one of ours."""
    try:
        return parse(EVENT, raw)
    except DamagedError:
        return None


def parse_predictions(arrays: Mapping[str, np.ndarray], n_classes: int | None = None):
    """store.Predictions from the arrays of a predictions npz: doc_id (N,) text, y_true/y_pred (N,)
    integers in [0, C), probs (N, C) finite floats in [0, 1]; C = `n_classes` when known."""
    doc_id, y_true, y_pred, probs = (arrays[k] for k in ("doc_id", "y_true", "y_pred", "probs"))
    n = len(doc_id) if doc_id.ndim == 1 else -1
    if not (doc_id.ndim == 1 and doc_id.dtype.kind in "US" and doc_id.dtype.itemsize <= 4 * MAX_DOC_ID):
        raise DamagedError("doc_id: expected a list of document ids")
    if n > MAX_DOCS:
        raise DamagedError(f"{n:,} documents is more than newsclf handles")
    if probs.ndim != 2 or probs.dtype.kind != "f" or len(probs) != n or not 1 <= probs.shape[1] <= MAX_CLASSES:
        raise DamagedError(f"probs: expected ({n}, C) floats, got {probs.dtype} {probs.shape}")
    classes = probs.shape[1]
    if n_classes is not None and classes != n_classes:
        raise DamagedError(f"probs: {classes} classes where labels.json names {n_classes}")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != n:
            raise DamagedError(f"{name}: expected ({n},) integers, got {labels.dtype} {labels.shape}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            raise DamagedError(f"{name}: class {int(labels.max()) if labels.max() >= classes else int(labels.min())} "
                               f"is out of range (0..{classes - 1})")
    if n and not (np.isfinite(probs).all() and probs.min() >= 0.0 and probs.max() <= 1.0 + 1e-4):
        raise DamagedError("probs: expected finite probabilities in [0, 1]")
    return Predictions(doc_id=doc_id, y_true=y_true.astype(np.int64), y_pred=y_pred.astype(np.int64),
                       probs=probs.astype(np.float32, copy=False))
