"""The library imports without Streamlit (rule 1 of the architecture)."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORE = ["newsclf", "newsclf.config", "newsclf.store", "newsclf.text", "newsclf.batching", "newsclf.metrics",
        "newsclf.predict", "newsclf.runner", "newsclf.train", "newsclf.data", "newsclf.jobs", "newsclf.resume",
        "newsclf.cli"]


def _model_modules() -> list[str]:
    import newsclf.models

    return ["newsclf.models"] + [f"newsclf.models.{m.name}" for m in pkgutil.iter_modules(newsclf.models.__path__)]


def test_every_core_module_imports_without_streamlit():
    modules = CORE + _model_modules()
    assert {"newsclf.models.tfidf", "newsclf.models.bilstm", "newsclf.models.lstm_cpu"} <= set(modules)
    code = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "from newsclf.cli import build_parser; build_parser()\n"  # every command group imports too
        "print(json.dumps({'streamlit': sorted(k for k in sys.modules if k == 'streamlit' or k.startswith('streamlit.')),"
        " 'loaded': [m for m in mods if m in sys.modules]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == modules
    assert report["streamlit"] == []
