"""`newsclf report`: the files, an offline HTML page (plotly inlined, no external script), refusals."""
from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from newsclf.cli import main
from newsclf.report import FILES


@pytest.fixture(scope="module")
def runs_copy(tiny_runs, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("report_runs")
    for kind in ("tfidf", "bilstm", "transformer"):
        shutil.copytree(tiny_runs[kind], runs_dir / tiny_runs[kind].name)
    return runs_dir, [tiny_runs[k].name for k in ("tfidf", "bilstm", "transformer")]


def test_report_writes_every_file_and_an_offline_page(runs_copy, fixture_data_home, tmp_path, capsys):
    runs_dir, names = runs_copy
    out = tmp_path / "rep"
    assert main(["report", *names, "--out", str(out), "--runs-dir", str(runs_dir),
                 "--data-home", str(fixture_data_home), "--n-boot", "1000"]) == 0
    printed = capsys.readouterr().out
    assert "Best test accuracy" in printed and "McNemar p" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    page = (out / "report.html").read_text()
    assert "plotly.js v" in page or "Plotly" in page[:4_000_000]
    assert len(page) > 1_000_000  # plotly.js itself is inlined
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)  # no external script
    assert page.count("<div id=") >= 4
    pairs = pd.read_csv(out / "pairwise.csv")
    assert len(pairs) == 3 and {"mcnemar_p", "acc_diff_low", "acc_diff_high", "mcnemar_p_holm"} <= set(pairs.columns)
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.run) == names and {"test_acc", "f1_macro", "ece_test"} <= set(metrics.columns)
    assert len(pd.read_csv(out / "predictions.csv")) == 3 * 110
    assert len(pd.read_csv(out / "per_class.csv")) == 3 * 20
    lengths = pd.read_csv(out / "length_slices.csv")
    assert set(lengths.run) == set(names) and lengths.groupby("run").n.sum().tolist() == [110] * 3
    assert "temperature" in pd.read_csv(out / "calibration.csv").columns
    assert (out / "summary.md").read_text().startswith("# Run comparison")


def test_report_refuses_a_non_empty_out_dir_unless_forced(runs_copy, tmp_path, capsys):
    runs_dir, names = runs_copy
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["report", *names[:2], "--out", str(out), "--runs-dir", str(runs_dir), "--data-home", str(tmp_path / "none")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--force"]) == 0
    assert (out / "keep.txt").read_text() == "mine" and (out / "report.html").is_file()
    assert "length slices skipped" in (out / "summary.md").read_text()
    assert main(["report", names[0], "no-such-run", "--out", str(tmp_path / "x"), "--runs-dir", str(runs_dir)]) == 2
    assert not (tmp_path / "x").exists()
    assert main(["report", names[0], "--out", str(tmp_path / "y"), "--runs-dir", str(runs_dir), "--n-boot", "10"]) == 2


def test_a_single_run_report_has_no_pairs(runs_copy, tmp_path):
    runs_dir, names = runs_copy
    assert main(["report", names[0], "--out", str(tmp_path / "one"), "--runs-dir", str(runs_dir)]) == 0
    assert pd.read_csv(tmp_path / "one" / "pairwise.csv").empty
