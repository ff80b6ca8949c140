"""The running app in a real browser: Debian Chromium driven by Playwright.

Starts `streamlit run app.py` headless on a free localhost port with a temporary runs dir
(copies of the tiny tfidf and BiLSTM runs) and the tiny imported corpus; deep-links to every page
on the freshly started server, launches a TF-IDF job from the Train page and watches it finish in
the live panel (an ensemble of two of them is present throughout), then classifies pasted text in the Playground with two runs. Any exception shown
in a page fails the test. A full-page screenshot of every page is saved (into $NEWSCLF_SCREENSHOTS
when set, else the test's tmp folder) and checked to be a real PNG.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers.app import (CHROMIUM, CHROMIUM_ARGS, browser_available, copy_runs, page_exceptions, start_server,
                          stop_server, wait_for_app)

pytestmark = [pytest.mark.browser, pytest.mark.integration]
_SKIP = browser_available()

PAGES = {"Dataset": "Dataset", "Train": "Train", "Results": "Results", "Playground": "Playground",
         "Errors": "Errors", "Compare": "Compare", "": "newsclf — 20 Newsgroups classifiers"}  # Dataset first: the first request deep-links


@pytest.fixture
def server(tmp_path, tiny_runs, fixture_data_home):
    from newsclf.ensemble import build_ensemble

    runs_dir = copy_runs(tiny_runs, tmp_path / "runs", kinds=("tfidf", "bilstm", "transformer"))
    # an ensemble is present: every page lists it like any run
    build_ensemble([tiny_runs["tfidf"].name, tiny_runs["bilstm"].name], runs_dir, name="browser-ensemble")
    env = {"NEWSCLF_RUNS_DIR": str(runs_dir), "NEWSCLF_DATA_HOME": str(fixture_data_home), "NEWSCLF_GPUS": "none"}
    log = tmp_path / "streamlit.log"
    proc, url = start_server(env, log)
    yield {"url": url, "runs_dir": runs_dir, "log": log,
           "shots": Path(os.environ.get("NEWSCLF_SCREENSHOTS") or tmp_path / "screenshots")}
    stop_server(proc)
    from newsclf import jobs

    for job in jobs.list_jobs(runs_dir):  # never leave a worker behind
        if not job.terminal:
            jobs.cancel(job.id, runs_dir, timeout=5, grace=2, wait=True)


SHOTS: dict[str, Path] = {}


def _check(page, where: str, shots: Path | None = None) -> None:
    if shots is not None:  # a full-page screenshot of each checked page
        shots.mkdir(parents=True, exist_ok=True)
        path = shots / f"{where.replace('/', '_')}.png"
        page.screenshot(path=str(path), full_page=True)
        SHOTS[where] = path
    errors = page_exceptions(page)
    assert not errors, f"{where}: exception shown in the page: {errors[:1]}"


@pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
def test_app_in_chromium(server):
    from playwright.sync_api import sync_playwright

    url = server["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # ---- every page by deep link, each in a new session --------------------------------
            for path, title in PAGES.items():
                page = browser.new_page(viewport={"width": 1400, "height": 1800})
                page.goto(f"{url}/{path}")
                wait_for_app(page, 120_000)
                page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
                assert page.locator('[data-testid="stSidebar"]').get_by_text("Runs dir").count() == 1
                _check(page, path or "Home", server["shots"])
                page.close()

            # ---- a job from the Train page, followed to the end in the live panel --------------------
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{url}/Train")
            wait_for_app(page, 120_000)
            name = page.get_by_label("name", exact=True)
            name.fill("browserjob")
            name.press("Enter")
            wait_for_app(page)
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Queued job").wait_for(timeout=60_000)
            _check(page, "Train-queued")
            finished = page.locator('[data-testid="stExpander"] summary', has_text="browserjob").filter(has_text="finished")
            finished.first.wait_for(timeout=150_000)  # the fragment polls the run dir by itself
            # all jobs terminal: the panel is rebuilt without its timer (polling stops)
            page.get_by_text("refreshing live").wait_for(state="detached", timeout=60_000)
            wait_for_app(page)
            assert page.get_by_role("button", name="Cancel").count() == 0
            _check(page, "Train", server["shots"])
            page.close()

            # ---- pasted text classified by two runs ---------------------------------------------
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{url}/Playground")
            wait_for_app(page, 120_000)
            area = page.get_by_label("Text to classify")
            area.fill("NASA delayed the shuttle launch; the orbit of the satellite <script>alert(1)</script>")
            area.press("Control+Enter")
            deadline = time.time() + 90
            metrics = page.locator('[data-testid="stMetric"]', has_text="Predicted class")
            while metrics.count() < 2 and time.time() < deadline:
                page.wait_for_timeout(500)
            assert metrics.count() >= 2, "two runs' predictions did not appear"
            assert page.get_by_text("runs agree").count() + page.get_by_text("runs disagree").count() >= 1
            _check(page, "Playground", server["shots"])
            page.close()
        finally:
            browser.close()
    for where in [*(p or "Home" for p in PAGES), "Train", "Playground"]:
        data = SHOTS[where].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, where
