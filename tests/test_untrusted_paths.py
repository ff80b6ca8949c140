"""Writes never go through links (issue 21, class 4) and no open of a user-given or shared path hangs on a
FIFO or a device (class 6).

Generated over every file name the report writes, every run-dir file newsclf writes or appends, the
data home's caches and the token cache; and over every path a user names (an archive or folder to
import, a vectors file, a text file, the key file) and every shared file newsclf reads (corpus and
stats caches, queue and lock files, status, metrics, log, labels, meta, job and study files).
Each FIFO case runs under a timeout: a blocking open fails the test instead of hanging it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from newsclf import store
from newsclf.cli import main
from newsclf.report import FILES

pytestmark = pytest.mark.timeout(120)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "victim.txt").write_text("do not overwrite me")
    return out


@pytest.fixture()
def two_runs(tiny_runs, tmp_path: Path, fixture_data_home, monkeypatch) -> tuple[Path, list[str]]:
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    runs = tmp_path / "runs"
    for kind in ("tfidf", "bilstm"):
        shutil.copytree(tiny_runs[kind], runs / tiny_runs[kind].name)
    return runs, [tiny_runs["tfidf"].name, tiny_runs["bilstm"].name]


# ---- class 4: writes through links ---------------------------------------------------------------------
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("target", ["file", "dir", "dangling"])
def test_report_force_replaces_a_planted_link_instead_of_writing_through_it(two_runs, outside, tmp_path, name,
                                                                         target, capsys):
    runs, ids = two_runs
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("not empty")
    aim = {"file": outside / "victim.txt", "dir": outside, "dangling": outside / "missing"}[target]
    (out / name).symlink_to(aim)
    before = _digest(outside / "victim.txt")
    code = main(["report", *ids, "--out", str(out), "--force", "--n-boot", "1000", "--runs-dir", str(runs)])
    assert code == 0, capsys.readouterr().err
    assert _digest(outside / "victim.txt") == before and sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert not (out / name).is_symlink() and (out / name).is_file()


RUN_FILE_LINKS = {  # (file planted as a link, command that writes it)
    "metrics.jsonl": lambda r, run: ["train", "--resume", run, *r],
    "STOP": lambda r, run: ["jobs", "cancel", run, *r],
    "status.json": lambda r, run: ["evaluate", run, *r],
    "results.json": lambda r, run: ["evaluate", run, *r],
    "predictions_test.npz": lambda r, run: ["evaluate", run, *r],
    "calibration.json": lambda r, run: ["calibrate", run, *r],
    "best.tmp": lambda r, run: ["train", "--resume", run, *r],
    "meta.json": lambda r, run: ["runs", "rename", run, "x", *r],
}


@pytest.mark.parametrize("name", sorted(RUN_FILE_LINKS))
def test_run_dir_writes_never_go_through_a_planted_link(two_runs, outside, name, capsys, monkeypatch, tmp_path):
    runs, ids = two_runs
    run = runs / ids[1]  # the BiLSTM (it has last/ for --resume)
    if name == "STOP":  # cancel writes STOP only for a running job: make it one of ours, running
        store.update_status(run, state="running")
    path = run / name
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(outside / "victim.txt")
    before = _digest(outside / "victim.txt")
    code = main(RUN_FILE_LINKS[name](["--runs-dir", str(runs)], run.name))
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err, err
    assert _digest(outside / "victim.txt") == before, f"{name} was written through"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_a_linked_token_cache_is_neither_read_nor_written(tiny_model_dirs, tmp_path, outside):
    from newsclf.models.transformer import HFEncoder, load_backbone

    _, tok = load_backbone(str(tiny_model_dirs["distilbert"]), ["a", "b"])
    home = tmp_path / "home"
    home.mkdir()
    (home / "token_cache").symlink_to(outside, target_is_directory=True)
    texts = [f"space shuttle launch number {i}" for i in range(300)]
    enc = HFEncoder(tok, 32, cache_dir=home / "token_cache")
    assert enc.encode(texts) == enc._encode(texts)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    # a real cache folder: a link planted under the cache file's name is replaced, never followed
    (home / "token_cache").unlink()
    (home / "token_cache").mkdir()
    enc.encode(texts)
    (cache_file,) = list((home / "token_cache").iterdir())
    cache_file.unlink()
    cache_file.symlink_to(outside / "victim.txt")
    before = _digest(outside / "victim.txt")
    assert enc.encode(texts) == enc._encode(texts)
    assert _digest(outside / "victim.txt") == before and not cache_file.is_symlink()


@pytest.mark.parametrize("bad", ["id-out-of-vocab", "row-too-long", "offsets-decreasing", "deflated", "object"])
def test_a_crafted_token_cache_is_ignored(tiny_model_dirs, tmp_path, bad):
    import numpy as np

    from newsclf.models.transformer import HFEncoder, load_backbone

    _, tok = load_backbone(str(tiny_model_dirs["distilbert"]), ["a", "b"])
    texts = [f"orbit {i}" for i in range(300)]
    enc = HFEncoder(tok, 32, cache_dir=tmp_path / "cache")
    good = enc.encode(texts)
    (path,) = list((tmp_path / "cache").iterdir())
    with np.load(path) as data:
        ids, offsets = data["ids"].copy(), data["offsets"].copy()
    if bad == "id-out-of-vocab":
        ids[0] = 10**6
    elif bad == "row-too-long":
        offsets[1:] = offsets[1:] + 100
        ids = np.concatenate([ids, np.zeros(100, ids.dtype)])
    elif bad == "offsets-decreasing":
        offsets[1] = offsets[2] + 1
    if bad == "deflated":
        np.savez_compressed(path, ids=ids, offsets=offsets)
    elif bad == "object":
        np.savez(path, ids=np.array([None] * 3, dtype=object), offsets=offsets)
    else:
        np.savez(path, ids=ids, offsets=offsets)
    assert enc.encode(texts) == good


# ---- class 6: non-regular files --------------------------------------------------------------------------
def _fifo(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)


def _one_line(code: int, err: str) -> None:
    """Exit 2 and one `error:` line (after `data import`'s own progress lines, which start with "[")."""
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)


@pytest.mark.parametrize("kind", ["archive", "member-of-folder", "vectors-file", "vectors-gz", "text-file",
                                  "corpus-cache"])
def test_a_fifo_given_as_a_path_is_refused_without_hanging(kind, tmp_path, fixture_archive, fixture_data_home,
                                                          tiny_runs, capsys, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(fixture_data_home, home)
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(home))
    runs = ["--runs-dir", str(tmp_path / "runs")]
    if kind == "archive":
        _fifo(tmp_path / "20news-bydate.tar.gz")
        argv = ["data", "import", str(tmp_path / "20news-bydate.tar.gz")]
    elif kind == "member-of-folder":
        import tarfile

        with tarfile.open(fixture_archive) as tar:
            tar.extractall(tmp_path / "extracted", filter="data")
        doc = next((tmp_path / "extracted").rglob("*/sci.space/*"))
        _fifo(doc)
        argv = ["data", "import", str(tmp_path / "extracted")]
    elif kind in ("vectors-file", "vectors-gz"):
        fifo = tmp_path / ("vectors.txt" if kind == "vectors-file" else "vectors.txt.gz")
        _fifo(fifo)
        argv = ["train", "--model", "bilstm", "--embeddings", str(fifo), *runs]
    elif kind == "text-file":
        _fifo(tmp_path / "text.txt")
        shutil.copytree(tiny_runs["tfidf"], tmp_path / "runs" / tiny_runs["tfidf"].name)
        argv = ["predict", tiny_runs["tfidf"].name, "--file", str(tmp_path / "text.txt"), *runs]
    else:
        _fifo(home / "newsclf_corpus.npz")
        argv = ["train", "--model", "tfidf", *runs]
    code = main(argv)
    _one_line(code, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()) or kind == "text-file"


SHARED_FIFOS = ["status.json", "metrics.jsonl", "train.log", "labels.json", "meta.json", "config.json",
                "results.json", "calibration.json", "job.json", ".status.lock", "best/model.safetensors",
                "best/newsclf_tfidf.json"]


@pytest.mark.parametrize("name", SHARED_FIFOS)
def test_a_fifo_in_a_run_dir_never_hangs_a_command(two_runs, name, capsys):
    runs, ids = two_runs
    run = runs / ids[0]
    _fifo(run / name)
    r = ["--runs-dir", str(runs)]
    for argv in (["runs", "list", *r], ["jobs", "list", *r], ["jobs", "status", run.name, *r],
                 ["jobs", "logs", run.name, *r], ["predict", run.name, "--text", "space", *r],
                 ["runs", "tag", run.name, "x", *r], ["calibrate", run.name, *r]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize("name", [".queue.json", ".queue.lock", ".study-20990101-000000-abcdef.json"])
def test_a_fifo_among_the_queue_files_never_hangs(tmp_path, name, capsys, monkeypatch):
    monkeypatch.setenv("NEWSCLF_JOB_KEY_FILE", str(tmp_path / "key" / "job.key"))
    runs = tmp_path / "runs"
    runs.mkdir()
    os.mkfifo(runs / name)
    for argv in (["jobs", "list", "--runs-dir", str(runs)], ["study", "status", "--runs-dir", str(runs)],
                 ["runs", "list", "--runs-dir", str(runs)]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (argv, err)
        if code == 2:
            _one_line(code, err)


@pytest.mark.parametrize("name", ["newsclf_stats_seed.json", "newsclf_stats_raw.json"])
def test_a_fifo_stats_cache_is_recomputed(tmp_path, fixture_data_home, name, capsys, monkeypatch):
    from newsclf import data

    home = tmp_path / "home"
    shutil.copytree(fixture_data_home, home)
    _fifo(home / name)
    data.clear_caches()
    assert main(["data", "stats", "--data-home", str(home)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    data.clear_caches()
    json.dumps(str(home))
