"""Numbers and shapes from run files and the data home, on the dashboard pages (issue 21, class 8).

The damaged runs are made the ones each page shows and picks (the newest runs; deep links where a page
has them), in small batches so every damage of tests/helpers/hostile.py's NUMBERS is seen by every
page: Results, Compare, Playground (a text classified and explained), Errors and Train (the jobs panel,
with the damaged runs turned into jobs). The Dataset page gets crafted stats and length caches. A page
must render without an exception; a damaged run is either left out of the comparison pages or shown
with one line, never a traceback.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.app import app_env, clear_streamlit_caches, open_page  # noqa: F401
from tests.helpers.hostile import NUMBERS, _with_job

pytestmark = pytest.mark.app
TIMEOUT = 90
RUN_DAMAGES = sorted(k for k in NUMBERS if not k.startswith("job-"))
BATCH = 6


def _batches(names: list[str], size: int = BATCH) -> list[tuple[str, ...]]:
    return [tuple(names[i:i + size]) for i in range(0, len(names), size)]


def _plant(app_env, names, tmp_path: Path, as_jobs: bool = False) -> list[str]:
    """Damaged copies of the tiny runs, named to be the newest (so pages pick them by default)."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    runs = app_env["runs_dir"]
    sources = sorted(p for p in runs.iterdir() if p.is_dir())
    ids = []
    for i, name in enumerate(names):
        source = sources[i % len(sources)]
        run = runs / f"29991231-2359{i:02d}-000-{source.name.split('-', 3)[-1]}"
        shutil.copytree(source, run)
        NUMBERS[name](run, outside)
        if as_jobs:
            _with_job(run)
        ids.append(run.name)
    return ids


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("names", _batches(RUN_DAMAGES))
@pytest.mark.parametrize("page", ["pages/3_Results.py", "pages/6_Compare.py", "pages/5_Errors.py",
                                  "pages/4_Playground.py"])
def test_comparison_pages_survive_damaged_numbers(app_env, page, names, tmp_path):
    ids = _plant(app_env, names, tmp_path)
    query = {"runs": ids} if page.endswith(("Compare.py", "Playground.py")) else None
    at = open_page(page, query, TIMEOUT, check=False)
    _ok(at)
    if page.endswith("Playground.py") and at.text_area:
        at.text_area(key="playground.text").input("nasa orbit shuttle launch")
        at.run()
        _ok(at)
    if page.endswith("Results.py"):  # every picked run's matrix and the split toggle
        for option in at.selectbox(key="results.cm_run").options:
            at.selectbox(key="results.cm_run").set_value(option.split(" ", 1)[0]).run()
            _ok(at)
        at.radio(key="results.split").set_value("val").run()
        _ok(at)


@pytest.mark.parametrize("names", _batches(sorted(NUMBERS), 10))
def test_the_train_page_jobs_panel_survives_damaged_jobs(app_env, names, tmp_path):
    """Each damaged run becomes a (stranger's) job: the panel renders its state, progress, ETA, epoch,
    curves and log from the damaged files."""
    _plant(app_env, [n for n in names if not n.startswith("job-")], tmp_path, as_jobs=True)
    outside = tmp_path / "outside"
    for name in (n for n in names if n.startswith("job-")):  # job.json damages keep their own job.json
        source = next(p for p in app_env["runs_dir"].iterdir() if p.is_dir())
        run = app_env["runs_dir"] / f"29991231-235999-000-{name}"
        shutil.copytree(source, run)
        NUMBERS[name](run, outside)
    at = open_page("pages/2_Train.py", None, TIMEOUT, check=False)
    _ok(at)
    at.run()  # the panel polls: a second pass reads the same files again
    _ok(at)


def _dataset_home(app_env, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the fixture data home with its stats and length caches already written."""
    home = tmp_path / "home"
    shutil.copytree(app_env["data_home"], home)
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(home))
    clear_streamlit_caches()
    from newsclf import data

    data.clear_caches()
    _ok(open_page("pages/1_Dataset.py", None, TIMEOUT, check=False))  # writes the caches
    data.clear_caches()
    clear_streamlit_caches()
    return home


def _stats(home: Path, edit) -> None:
    path = home / "newsclf_stats_seed.json"
    cached = json.loads(path.read_text())
    edit(cached["stats"])
    path.write_text(json.dumps(cached))


STATS_DAMAGE = {
    "class-counts-list": lambda s: s.update(class_counts=[1, 2]),
    "class-counts-text": lambda s: s["class_counts"].update({next(iter(s["class_counts"])): "x"}),
    "class-counts-nan": lambda s: s["class_counts"].update({next(iter(s["class_counts"])): float("nan")}),
    "n-docs-huge": lambda s: s.update(n_docs=1e400),
    "words-per-doc-text": lambda s: s["words_per_doc"].update(mean="x"),
    "count-stats-missing-class": lambda s: s["class_count_stats"].update(min_class="nope"),
    "splits-negative": lambda s: s.update(splits={"train": -1}),
    "top-words-bad-pairs": lambda s: s.update(top_words={next(iter(s["class_counts"])): [[1, "x"], ["a"]]}),
    "top-words-unknown-class": lambda s: s.update(top_words={"nope": [["a", 1]]}),
    "stats-not-dict": lambda s: s.clear(),
}
CACHE_FILES = {
    "stats-fifo": lambda h: ((h / "newsclf_stats_seed.json").unlink(), os.mkfifo(h / "newsclf_stats_seed.json")),
    "stats-link-out": lambda h: ((h / "newsclf_stats_seed.json").unlink(),
                                 (h / "newsclf_stats_seed.json").symlink_to("/etc/passwd")),
    "stats-huge": lambda h: (h / "newsclf_stats_seed.json").write_bytes(b" " * (2 << 20)),
    "lengths-fifo": lambda h: ((h / "newsclf_lengths_seed.json").unlink(), os.mkfifo(h / "newsclf_lengths_seed.json")),
    "lengths-bad": lambda h: _lengths(h, {"train": ["x"], "val": [-1], "test": [1e300]}),
    "lengths-not-lists": lambda h: _lengths(h, {"train": 5, "val": {}, "test": None}),
}


def _lengths(home: Path, lengths) -> None:
    path = home / "newsclf_lengths_seed.json"
    cached = json.loads(path.read_text())
    cached["lengths"] = lengths
    path.write_text(json.dumps(cached))


@pytest.mark.parametrize("damage", sorted(STATS_DAMAGE) + sorted(CACHE_FILES))
def test_the_dataset_page_survives_a_crafted_stats_or_lengths_cache(app_env, damage, tmp_path, monkeypatch):
    home = _dataset_home(app_env, tmp_path, monkeypatch)
    if damage in STATS_DAMAGE:
        _stats(home, STATS_DAMAGE[damage])
    else:
        CACHE_FILES[damage](home)
    at = open_page("pages/1_Dataset.py", None, TIMEOUT, check=False)
    _ok(at)
    counts = [m.value for m in at.metric if m.label == "Classes"]
    assert counts == ["20"], counts  # recomputed from the corpus, not taken from the crafted cache
    if damage.startswith("stats-") and damage != "stats-not-dict":
        assert (home / "newsclf_stats_seed.json").is_symlink() or \
            not (home / "newsclf_stats_seed.json").exists() or (home / "newsclf_stats_seed.json").is_file()
