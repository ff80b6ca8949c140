"""Cached loaders of the dashboard: runs, predictions, metrics, loaded models, corpus statistics, documents.

Cache keys always include the file's modification time, so a re-trained, re-evaluated or
re-imported artefact is reloaded; entries of deleted runs simply stop being asked for.
Loaded models are `st.cache_resource` objects shared by every session: the functions here that
use one take its per-run lock themselves (`model_lock`), so pages never handle locks.
"""
from __future__ import annotations

import functools
import os
import platform
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from newsclf import data, store
from newsclf.config import resolve_data_home, resolve_runs_dir

# Errors a half-written or vanished run can raise while a page reads it.
RUN_ERRORS = (store.RunNotFoundError, OSError, ValueError, KeyError, TypeError, IndexError)
_MODEL_LOCKS: dict[str, threading.Lock] = defaultdict(threading.Lock)
_LOCKS_GUARD = threading.Lock()


# ---- locations ------------------------------------------------------------------------------
def runs_dir() -> Path:
    return resolve_runs_dir()


def data_home() -> Path:
    return resolve_data_home()


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


# ---- machine --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def device_info() -> dict[str, Any]:
    """CPU name and the GPUs jobs may use (ids and names from newsclf.devices; never imports torch)."""
    from newsclf.devices import nvidia_smi_gpus, visible_gpus

    names = {line.split(":", 1)[0].removeprefix("GPU ").strip(): line.split(":", 1)[1].strip()
             for _, line in nvidia_smi_gpus() if ":" in line}
    gpus = [f"{gid}: {names.get(gid, 'GPU')}" for gid in visible_gpus()]
    return {"cpu": _cpu_name(), "gpus": gpus, "gpu_ids": visible_gpus(), "gpu_names": names}


# ---- runs -----------------------------------------------------------------------------------
def finished() -> list[store.RunInfo]:
    """Finished runs with complete results (fresh on every call: cheap JSON reads)."""
    try:
        return store.finished_runs(runs_dir())
    except OSError:
        return []


@st.cache_data(max_entries=64, show_spinner=False)
def _predictions(run_dir: str, split: str, stamp: int) -> store.Predictions | None:
    return store.load_predictions(Path(run_dir), split)


def load_predictions(run_id: str, split: str) -> store.Predictions | None:
    """Cached predictions of a run (keyed by the npz's mtime); None when absent or unreadable."""
    try:
        run_dir = store.resolve_run(run_id, runs_dir())
    except store.RunNotFoundError:
        return None
    path = run_dir / store.PREDICTIONS.format(split=split)
    return _predictions(str(run_dir), split, _mtime(path))


@st.cache_data(max_entries=64, show_spinner=False)
def _metrics(path: str, stamp: int, size: int) -> list[dict[str, Any]]:
    events, _ = store.read_metrics(Path(path))
    return events


def load_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every metrics.jsonl event (cached while the file does not change)."""
    path = Path(run_dir) / store.METRICS
    try:
        st_ = path.stat()
    except OSError:
        return []
    return _metrics(str(path), st_.st_mtime_ns, st_.st_size)


# ---- loaded models --------------------------------------------------------------------------
def ui_torch_threads() -> int:
    """Intra-op threads for inference in the app: $NEWSCLF_UI_TORCH_THREADS, else half the cores (1-4).

    One text at a time is latency-bound; on a small shared CPU, one thread per core spin-waits
    behind other processes (benchmarks/RESULTS.md, dashboard section: 5-50x slower BiLSTM, 2x slower DistilBERT).
    """
    try:
        value = int(os.environ.get("NEWSCLF_UI_TORCH_THREADS", "0"))
    except ValueError:
        value = 0
    return value if value > 0 else max(1, min(4, (os.cpu_count() or 2) // 2))


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _predictor(root: str, run_id: str, stamp: int):
    import torch  # only the server process: training jobs run in their own processes

    from newsclf.predict import load_predictor

    torch.set_num_threads(ui_torch_threads())
    return load_predictor(run_id, root)


def model_lock(predictor) -> threading.Lock:
    """The lock of a run's shared (cached) model: held while it predicts or a private copy is made."""
    with _LOCKS_GUARD:
        return _MODEL_LOCKS[str(predictor.run_dir)]


def get_predictor(run_id: str):
    """The loaded Predictor of a finished run, once per (run, mtime of best/); raises RUN_ERRORS."""
    root = runs_dir()
    run_dir = store.resolve_run(run_id, root)
    return _predictor(str(root), run_dir.name, _mtime(run_dir / store.BEST))


@st.cache_data(max_entries=128, show_spinner=False)
def _proba(root: str, run_id: str, stamp: int, text: str) -> tuple[list[float], float]:
    predictor = _predictor(root, run_id, stamp)
    start = time.perf_counter()
    with model_lock(predictor):
        probs = predictor.predict_proba([text])[0]
    return [float(p) for p in probs], (time.perf_counter() - start) * 1000


def predict_text(run_id: str, text: str) -> tuple[Any, list[float], float]:
    """(predictor, class probabilities, milliseconds of the first computation) for one text.

    Probabilities are cached per (run, mtime of best/, text), so reruns of the page caused by
    other widgets do not classify the same text again. Raises RUN_ERRORS.
    """
    root = runs_dir()
    run_dir = store.resolve_run(run_id, root)
    stamp = _mtime(run_dir / store.BEST)
    predictor = _predictor(str(root), run_dir.name, stamp)
    probs, ms = _proba(str(root), run_dir.name, stamp, text)
    return predictor, probs, ms


# ---- dataset --------------------------------------------------------------------------------
def _corpus_stamp(home: Path) -> int:
    return _mtime(home / data.CACHE_FILE)


@st.cache_data(max_entries=4, show_spinner="Computing corpus statistics…")
def _stats(home: str, protocol: str, stamp: int) -> dict[str, Any]:
    return data.compute_stats(home, protocol).to_dict()


def corpus_stats(protocol: str) -> dict[str, Any]:
    """DatasetStats.to_dict() of the protocol (raises data.DataError when the corpus is missing/bad)."""
    home = data_home()
    return _stats(str(home), protocol, _corpus_stamp(home))


LENGTHS_FILE = "newsclf_lengths_{protocol}.json"  # beside the corpus cache: measured once per corpus


@st.cache_data(max_entries=4, show_spinner="Measuring document lengths…")
def _lengths(home: str, protocol: str, stamp: int) -> dict[str, list[int]]:
    """Words per document per split: from LENGTHS_FILE when it belongs to this corpus cache (its
    values are checked: the data home is a shared place), else measured and written there."""
    path = Path(home) / LENGTHS_FILE.format(protocol=protocol)
    cached = store.read_json(path) if not path.is_symlink() else None
    if isinstance(cached, dict) and cached.get("stamp") == stamp and isinstance(cached.get("lengths"), dict):
        lengths = cached["lengths"]
        if set(lengths) == {"train", "val", "test"} and all(
                isinstance(v, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v)
                for v in lengths.values()):
            return lengths
    ds = data.load_dataset(protocol, home)
    lengths = {name: [len(t.split()) for t in ds.split(name).texts] for name in ("train", "val", "test")}
    try:
        store.write_json_atomic(path, {"stamp": stamp, "lengths": lengths})
    except OSError:
        pass  # a read-only data home: measured again next time the server starts
    return lengths


def doc_lengths(protocol: str) -> dict[str, list[int]]:
    home = data_home()
    return _lengths(str(home), protocol, _corpus_stamp(home))


@st.cache_data(max_entries=4, show_spinner=False)
def _test_docs(home: str, protocol: str, stamp: int, n: int) -> list[tuple[str, str]]:
    import numpy as np

    ds = data.load_dataset(protocol, home)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(ds.test), size=min(n, len(ds.test)), replace=False)
    return [(ds.test.doc_ids[i], ds.label_names[int(ds.test.labels[i])]) for i in sorted(idx)]


def sample_test_docs(protocol: str = "seed", n: int = 60) -> list[tuple[str, str]]:
    """(doc_id, true label) of a fixed random sample of test documents; [] without a corpus."""
    home = data_home()
    if not data.corpus_available(home):
        return []
    try:
        return _test_docs(str(home), protocol, _corpus_stamp(home), n)
    except data.DataError:
        return []


def documents(doc_ids: Sequence[str], protocol: str = "seed") -> dict[str, str]:
    """Texts of doc ids ({} when the corpus is missing or unreadable)."""
    try:
        return data.get_documents(doc_ids, protocol, data_home())
    except data.DataError:
        return {}


@st.cache_data(max_entries=6, show_spinner="Reading the documents…")
def _split_texts(home: str, protocol: str, split: str, stamp: int) -> dict[str, str]:
    part = data.load_dataset(protocol, home).split(split)
    return dict(zip((str(d) for d in part.doc_ids), part.texts))


def split_texts(split: str, protocol: str = "seed") -> dict[str, str]:
    """{doc_id: text} of a whole split, for text search ({} without a readable corpus)."""
    home = data_home()
    if not data.corpus_available(home):
        return {}
    try:
        return _split_texts(str(home), protocol, split, _corpus_stamp(home))
    except data.DataError:
        return {}


MAX_BATCH_TEXTS = 500


def predict_batch(run_id: str, texts: Sequence[str]) -> tuple[list[str], list[list[float]]]:
    """(class names, probabilities per text) of a run for many texts at once (under the model's lock)."""
    predictor = get_predictor(run_id)
    with model_lock(predictor):
        probs = predictor.predict_proba(list(texts))
    return list(predictor.label_names), [[float(p) for p in row] for row in probs]


# ---- comparisons of runs (keyed on the predictions files' mtimes) --------------------------------------
def _pred_key(run_id: str, split: str) -> tuple[str, int]:
    """(run dir, mtime of its predictions of `split`); raises store.RunNotFoundError."""
    run_dir = store.resolve_run(run_id, runs_dir())
    return str(run_dir), _mtime(run_dir / store.PREDICTIONS.format(split=split))


def _load(key: tuple[str, int], split: str) -> store.Predictions:
    preds = store.load_predictions(Path(key[0]), split)
    if preds is None:
        raise ValueError(f"run {Path(key[0]).name}: its {split} predictions are missing or unreadable")
    return preds


@st.cache_data(max_entries=32, show_spinner="Paired test (McNemar + bootstrap)…")
def _paired(a: tuple[str, int], b: tuple[str, int], split: str, names: tuple[str, str]):
    from newsclf.significance import compare_runs

    return compare_runs(_load(a, split), _load(b, split), store.load_labels(Path(a[0])), names=names)


def paired(run_a: str, run_b: str, split: str):
    """significance.PairedComparison of two runs on `split` (A - B); raises RUN_ERRORS (ValueError when
    the runs were not scored on the same documents)."""
    return _paired(_pred_key(run_a, split), _pred_key(run_b, split), split, (run_a, run_b))


@st.cache_data(max_entries=16, show_spinner="Pairwise tests…")
def _pairwise(keys: tuple[tuple[str, int], ...], split: str):
    from newsclf.significance import pairwise as pairwise_

    return pairwise_({Path(k[0]).name: _load(k, split) for k in keys}, store.load_labels(Path(keys[0][0])))


def pairwise(run_ids: Sequence[str], split: str):
    """significance.pairwise of the runs (Holm-adjusted McNemar p per pair); raises RUN_ERRORS."""
    return _pairwise(tuple(_pred_key(r, split) for r in run_ids), split)


@st.cache_data(max_entries=64, show_spinner=False)
def _reliability(key: tuple[str, int], split: str):
    from newsclf.calibration import reliability as reliability_

    preds = _load(key, split)
    return reliability_(preds.probs, preds.y_true, Path(key[0]).name)


def reliability(run_id: str, split: str = "test"):
    """calibration.Reliability of a run's stored probabilities; raises RUN_ERRORS."""
    return _reliability(_pred_key(run_id, split), split)


@st.cache_data(max_entries=16, show_spinner="Measuring accuracy by length…")
def _lengths_by_run(keys: tuple[tuple[str, int], ...], split: str, home: str, corpus: int):
    import numpy as np

    from newsclf.slices import length_frame, length_slices, run_max_len, unseen_shares, word_counts

    out = {}
    for key in keys:
        run_dir = Path(key[0])
        config = store.read_config(run_dir)
        preds = _load(key, split)
        ids = preds.doc_id.astype(str)
        docs = data.get_documents(ids, config.get("protocol", "seed"), home)
        keep = np.array([i in docs for i in ids], dtype=bool)
        texts = [docs[i] for i in ids[keep]]
        correct = (preds.y_true == preds.y_pred)[keep]
        out[run_dir.name] = length_slices(word_counts(texts), correct, unseen_shares(texts, run_max_len(config)))
    return length_frame(out)


def length_slices(run_ids: Sequence[str], split: str = "test"):
    """slices.length_frame of the runs (tidy: run, bucket, n, accuracy, unseen_share); raises RUN_ERRORS
    or data.DataError without a corpus."""
    home = data_home()
    return _lengths_by_run(tuple(_pred_key(r, split) for r in run_ids), split, str(home), _corpus_stamp(home))


HEADER_SAMPLE = 20  # test documents explained per run for the header-leakage share (bounded work)


@st.cache_data(max_entries=16, show_spinner="Explaining a sample of test documents…")
def _header_share(root: str, run_id: str, stamp: int, home: str, corpus: int, n: int) -> dict[str, Any]:
    import numpy as np

    from newsclf import explain as ex
    from newsclf.leakage import header_attribution_share

    predictor = _predictor(root, run_id, stamp)
    protocol = store.read_config(Path(root) / run_id).get("protocol", "seed")
    test = data.load_dataset(protocol, home).split("test")
    idx = sorted(np.random.default_rng(0).choice(len(test.texts), size=min(n, len(test.texts)), replace=False))
    shares = []
    for i in idx:
        attr = ex.explain_locked(predictor, test.texts[i], lock=model_lock(predictor))
        share = header_attribution_share(attr.offsets, attr.scores, test.texts[i])
        if share is not None:
            shares.append(share)
    return {"n": len(idx), "with_header": len(shares), "mean": float(np.mean(shares)) if shares else None,
            "method": ex.resolve_method(predictor.kind, None)}


def header_share(run_id: str, n: int = HEADER_SAMPLE) -> dict[str, Any]:
    """Mean share of |attribution| on header lines over `n` fixed test documents of the run's protocol
    (the run's default explanation method); raises RUN_ERRORS or data.DataError."""
    root, home = runs_dir(), data_home()
    run_dir = store.resolve_run(run_id, root)
    return _header_share(str(root), run_dir.name, _mtime(run_dir / store.BEST), str(home), _corpus_stamp(home), n)


@st.cache_data(max_entries=4, show_spinner="Building the report…")
def _report_zip(keys: tuple[tuple[str, int], ...], root: str, home: str, corpus: int) -> bytes:
    import io
    import tempfile
    import zipfile

    from newsclf.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_report([Path(k[0]).name for k in keys], Path(tmp) / "report", root, home)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, path in paths.items():
                zf.write(path, f"newsclf-report/{name}")
    return buf.getvalue()


def report_zip(run_ids: Sequence[str]) -> bytes:
    """The files of `python -m newsclf report RUN...` for the runs, zipped in memory; raises RUN_ERRORS or UserError."""
    home = data_home()
    return _report_zip(tuple(_pred_key(r, "test") + _pred_key(r, "val")[1:] for r in run_ids), str(runs_dir()),
                       str(home), _corpus_stamp(home))
