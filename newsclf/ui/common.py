"""Shared page frame and cached resources: page setup, sidebar, predictors, results, datasets.

Cache keys always include the file's modification time, so a re-trained, re-evaluated or
re-imported artefact is reloaded; entries of deleted runs simply stop being asked for.
"""
from __future__ import annotations

import functools
import html
import os
import platform
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from newsclf import data, store
from newsclf.config import resolve_data_home, resolve_runs_dir

# Errors a half-written or vanished run can raise while a page reads it.
RUN_ERRORS = (store.RunNotFoundError, OSError, ValueError, KeyError, TypeError, IndexError)
_PREDICT_LOCKS: dict[str, threading.Lock] = defaultdict(threading.Lock)
_LOCKS_GUARD = threading.Lock()


PAGES = [("app.py", "Home", ":material/home:"), ("pages/1_Dataset.py", "Dataset", ":material/database:"), ("pages/2_Train.py", "Train", ":material/model_training:"),
         ("pages/3_Results.py", "Results", ":material/monitoring:"), ("pages/4_Playground.py", "Playground", ":material/science:"),
         ("pages/5_Errors.py", "Errors", ":material/search:")]


# ---- locations ------------------------------------------------------------------------------
def runs_dir() -> Path:
    return resolve_runs_dir()


def data_home() -> Path:
    return resolve_data_home()


# ---- page frame -----------------------------------------------------------------------------
def page_setup(title: str, icon: str = ":material/newspaper:") -> None:
    """st.set_page_config + the shared sidebar; call first in every page."""
    st.set_page_config(page_title=f"{title} · newsclf", page_icon=icon, layout="wide")
    render_sidebar()


def render_sidebar() -> None:
    home, root = data_home(), runs_dir()
    with st.sidebar:
        st.markdown("### newsclf")
        for path, label, icon in PAGES:
            nav_link(path, label, icon)
        st.divider()
        if data.corpus_available(home):
            st.success("Corpus: available", icon=":material/check_circle:")
        else:
            st.warning("Corpus: missing (see Home)", icon=":material/warning:")
        st.caption(f"Data home: `{home}`")
        dev = device_info()
        st.caption(f"CPU: {dev['cpu']}")
        st.caption("GPU: " + (", ".join(dev["gpus"]) if dev["gpus"] else "none visible"))
        runs = store.list_runs(root)
        n_done = sum(1 for r in runs if r.state == "finished")
        n_active = sum(1 for r in runs if r.state in ("queued", "running"))
        st.caption(f"Runs dir: `{root}`  \n{n_done} finished, {n_active} queued/running, {len(runs)} in all")


@functools.lru_cache(maxsize=1)
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def _gpu_names() -> tuple[str, ...]:
    """`GPU 0: NVIDIA H100 ...` lines from nvidia-smi (never imports torch)."""
    from newsclf.devices import nvidia_smi_gpus

    return tuple(name for _, name in nvidia_smi_gpus())


def device_info() -> dict[str, Any]:
    """CPU name and the GPUs jobs may use (ids and names from newsclf.devices)."""
    from newsclf.devices import visible_gpus

    names = {line.split(":", 1)[0].removeprefix("GPU ").strip(): line.split(":", 1)[1].strip()
             for line in _gpu_names() if ":" in line}
    gpus = [f"{gid}: {names.get(gid, 'GPU')}" for gid in visible_gpus()]
    return {"cpu": _cpu_name(), "gpus": gpus, "gpu_ids": visible_gpus(), "gpu_names": names}


# ---- runs -----------------------------------------------------------------------------------
def finished(root: Path | None = None) -> list[store.RunInfo]:
    """Finished runs with complete results (fresh on every call: cheap JSON reads)."""
    try:
        return store.finished_runs(root or runs_dir())
    except OSError:
        return []


def run_labels(runs: Sequence[store.RunInfo]) -> dict[str, str]:
    return {r.run_id: r.label for r in runs}


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


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


def get_predictor(run_id: str):
    """The loaded Predictor of a finished run, once per (run, mtime of best/); raises RUN_ERRORS."""
    root = runs_dir()
    run_dir = store.resolve_run(run_id, root)
    return _predictor(str(root), run_dir.name, _mtime(run_dir / store.BEST))


def predict_locked(predictor, texts: list[str]):
    """predict_proba under a per-run lock: cached models are shared by every session."""
    with _LOCKS_GUARD:
        lock = _PREDICT_LOCKS[str(predictor.run_dir)]
    with lock:
        return predictor.predict_proba(texts)


@st.cache_data(max_entries=128, show_spinner=False)
def _proba(root: str, run_id: str, stamp: int, text: str) -> tuple[list[float], float]:
    import time

    predictor = _predictor(root, run_id, stamp)
    start = time.perf_counter()
    probs = predict_locked(predictor, [text])[0]
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


def predictor_lock(predictor) -> threading.Lock:
    """The lock guarding a shared cached model (for explanation code that mutates it)."""
    with _LOCKS_GUARD:
        return _PREDICT_LOCKS[str(predictor.run_dir)]


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


@st.cache_data(max_entries=4, show_spinner="Measuring document lengths…")
def _lengths(home: str, protocol: str, stamp: int) -> dict[str, list[int]]:
    ds = data.load_dataset(protocol, home)
    return {name: [len(t.split()) for t in ds.split(name).texts] for name in ("train", "val", "test")}


def doc_lengths(protocol: str) -> dict[str, list[int]]:
    home = data_home()
    return _lengths(str(home), protocol, _corpus_stamp(home))


@st.cache_data(max_entries=4, show_spinner=False)
def _test_docs(home: str, protocol: str, stamp: int, n: int) -> list[tuple[str, str]]:
    ds = data.load_dataset(protocol, home)
    import numpy as np

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


# ---- rendering helpers ----------------------------------------------------------------------
def show_document(text: str, limit: int = 20_000, height: int | None = 320) -> None:
    """A document as plain text (never HTML), cut to `limit` characters with a notice."""
    from newsclf.ui.tables import truncate

    shown, cut = truncate(text, limit)
    st.code(shown or "(empty document)", language=None, wrap_lines=True, height=height)
    if cut:
        st.caption(f"Showing the first {limit:,} of {len(text):,} characters.")


def nav_link(path: str, label: str, icon: str | None = None) -> None:
    """st.page_link that degrades to plain text where the page registry is unknown (bare scripts)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(path, label=label, icon=icon)
    except StreamlitAPIException:
        st.caption(label)


def escape(text: Any) -> str:
    return html.escape(str(text))


def finished_by_id_or_stop(what: str) -> dict:
    """{run_id: RunInfo} of the finished runs; without any, the empty state and st.stop()."""
    runs = finished()
    if not runs:
        no_runs_message(what)
        st.stop()
    return {r.run_id: r for r in runs}


def no_runs_message(what: str = "this page") -> None:
    st.info(f"No finished runs yet in `{runs_dir()}`, so there is nothing to show on {what}. "
            "Start one on the **Train** page, or use the quick start on **Home**.", icon=":material/info:")
    nav_link("pages/2_Train.py", "Go to Train", ":material/model_training:")
