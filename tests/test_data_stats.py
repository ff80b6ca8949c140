"""newsclf.data.stats and `newsclf data stats` on the synthetic fixture corpus."""
from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import fetch_20newsgroups

from tests.helpers.corpus import CLASS_WORDS, make_fixture_archive
from newsclf import data

ROOT = Path(__file__).resolve().parents[1]
RAW_SIZES = {"train": 192, "val": 48, "test": 120}


# ---- stats ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uneven_home(tmp_path_factory) -> Path:
    """A corpus whose classes differ in size (class i has i % 4 extra train posts)."""
    tmp = tmp_path_factory.mktemp("uneven")
    home = tmp / "home"
    data.import_archive(make_fixture_archive(tmp, uneven=True), home)
    return home


def _expected_stats(home: Path) -> dict:
    """The figures recomputed here with sklearn + statistics, independently of newsclf.data."""
    bunch = fetch_20newsgroups(data_home=str(home), subset="all", remove=("headers", "footers", "quotes"),
                               download_if_missing=False)
    words = [len(t.split()) for t in bunch.data]
    counts = collections.Counter(bunch.target_names[y] for y in bunch.target)
    return dict(n_docs=len(bunch.data), total_words=sum(words), total_chars=sum(map(len, bunch.data)),
                counts=counts, words=words)


def test_stats_exact_on_fixture(uneven_home):
    stats = data.compute_stats(uneven_home, top_k=5)
    d = stats.to_dict()
    exp = _expected_stats(uneven_home)
    assert set(d) == {"protocol", "n_docs", "total_words", "total_chars", "class_counts", "class_count_stats",
                      "words_per_doc", "splits", "top_words"}
    assert (d["n_docs"], d["total_words"], d["total_chars"]) == (exp["n_docs"], exp["total_words"], exp["total_chars"])
    assert d["n_docs"] == sum(12 + i % 4 + 6 for i in range(20))
    assert d["class_counts"] == {name: exp["counts"][name] for name in data.CATEGORIES}
    values = list(exp["counts"].values())
    ccs = d["class_count_stats"]
    assert (ccs["min"], ccs["max"], ccs["min_class"], ccs["max_class"]) == (18, 21, "alt.atheism", "comp.sys.ibm.pc.hardware")
    assert ccs["mean"] == pytest.approx(statistics.mean(values)) and ccs["std"] == pytest.approx(statistics.stdev(values))
    w = exp["words"]
    q = statistics.quantiles(w, n=4, method="inclusive")  # = numpy's linear method
    assert d["words_per_doc"] == pytest.approx(dict(mean=statistics.mean(w), median=statistics.median(w),
                                                    std=statistics.stdev(w), min=min(w), max=max(w), q25=q[0], q75=q[2]))
    assert d["splits"] == data.load_dataset(data_home=uneven_home).sizes()
    assert json.loads(json.dumps(d)) == d


def test_stats_top_words_and_json_cache(fixture_data_home):
    stats = data.compute_stats(fixture_data_home, top_k=3)
    for name, pairs in stats.top_words.items():
        assert len(pairs) == 3 and pairs[0][0] in CLASS_WORDS[name]
        assert [c for _, c in pairs] == sorted((c for _, c in pairs), reverse=True)
    cached = fixture_data_home / "newsclf_stats_seed.json"
    assert cached.is_file()
    data.clear_caches()
    assert data.compute_stats(fixture_data_home, top_k=3) == stats  # read back from the JSON cache
    raw = data.compute_stats(fixture_data_home, protocol="raw")
    assert raw.protocol == "raw" and raw.total_words > stats.total_words and raw.splits == RAW_SIZES


def _cli_can_start() -> str:
    proc = subprocess.run([sys.executable, "-c", "import newsclf.cli as c; c.build_parser()"], cwd=ROOT,
                          capture_output=True, text=True)
    return "" if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


def test_cli_stats_json_subprocess(fixture_data_home):
    reason = _cli_can_start()
    if reason:
        pytest.skip(f"`python -m newsclf` cannot start yet (other command modules missing): {reason}")
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(fixture_data_home)}
    proc = subprocess.run([sys.executable, "-m", "newsclf", "data", "stats", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == data.compute_stats(fixture_data_home).to_dict()
    env["NEWSCLF_DATA_HOME"] = str(fixture_data_home / "missing")
    proc = subprocess.run([sys.executable, "-m", "newsclf", "data", "stats"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "data fetch" in proc.stderr


def test_cli_import_precomputes_stats_for_both_protocols(tmp_path, fixture_archive):
    """A cold dashboard then reads JSON instead of parsing the corpus."""
    import argparse

    from newsclf.commands import data as data_cmd

    parser = argparse.ArgumentParser(prog="newsclf")
    data_cmd.register(parser.add_subparsers(dest="command", required=True))
    home = tmp_path / "home"
    args = parser.parse_args(["data", "import", str(fixture_archive), "--data-home", str(home)])
    assert args.func(args) == 0
    for protocol in ("seed", "raw"):
        cached = json.loads((home / data.STATS_FILE.format(protocol=protocol)).read_text())
        assert cached["stats"] == data.compute_stats(home, protocol).to_dict()
