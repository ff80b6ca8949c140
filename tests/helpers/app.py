"""Fixtures and helpers for the dashboard tests (AppTest and the real browser).

Import the fixtures into a test module: ``from tests.helpers.app import app_env, empty_env  # noqa: F401``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]  # every page
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def clear_streamlit_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def copy_runs(tiny_runs: dict, dest: Path, kinds=("tfidf", "bilstm", "transformer")) -> Path:
    """A private, writable copy of some tiny runs (the session fixture is read-only)."""
    dest.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        shutil.copytree(tiny_runs[kind], dest / Path(tiny_runs[kind]).name)
    return dest


@pytest.fixture
def app_env(monkeypatch, tmp_path, tiny_runs, fixture_data_home):
    """NEWSCLF_RUNS_DIR = a copy of the tiny runs, NEWSCLF_DATA_HOME = the fixture corpus; caches cleared."""
    runs_dir = copy_runs(tiny_runs, tmp_path / "runs")
    monkeypatch.setenv("NEWSCLF_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    monkeypatch.setenv("NEWSCLF_GPUS", "none")
    monkeypatch.chdir(ROOT)
    clear_streamlit_caches()
    yield {"runs_dir": runs_dir, "data_home": fixture_data_home}
    clear_streamlit_caches()


@pytest.fixture
def empty_env(monkeypatch, tmp_path):
    """No corpus and no runs."""
    monkeypatch.setenv("NEWSCLF_RUNS_DIR", str(tmp_path / "no_runs"))
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(tmp_path / "no_data"))
    monkeypatch.setenv("NEWSCLF_GPUS", "none")
    monkeypatch.chdir(ROOT)
    clear_streamlit_caches()
    yield {"runs_dir": tmp_path / "no_runs", "data_home": tmp_path / "no_data"}
    clear_streamlit_caches()


# ---- a real server ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict[str, str], log_path: Path, port: int | None = None,
                 timeout: float = 90.0) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` headless on a free localhost port; waits for /_stcore/health."""
    port = port or free_port()
    env = {**os.environ, **env_extra, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true",
           "--server.fileWatcherType=none", "--server.address=127.0.0.1", f"--server.port={port}",
           "--browser.gatherUsageStats=false"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError("streamlit did not become healthy in time")


def stop_server(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


def browser_available() -> str | None:
    """None when Chromium and Playwright are usable, else the reason to skip."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing (pip install playwright)"
    return None


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until the Streamlit script run is over (no running indicator, app view present)."""
    page.wait_for_selector('[data-testid="stSidebar"] >> text=Runs dir', timeout=timeout_ms)
    page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms)
    page.wait_for_timeout(300)


def page_exceptions(page) -> list[str]:
    return [e.inner_text() for e in page.query_selector_all('[data-testid="stException"]')]


# ---- AppTest ------------------------------------------------------------------------------------
def open_page(path: str, query: dict | None = None, timeout: float = 60, check: bool = True):
    """AppTest of `path` entered through app.py (as `streamlit run app.py` does), with URL query parameters;
    `check` asserts the run raised no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if path != "app.py":
        at.switch_page(path)  # the entrypoint stays app.py
    at.run()
    if check:
        assert not at.exception, [e.value for e in at.exception]
    return at
