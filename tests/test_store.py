"""The run-directory contract: safe run resolution, atomic JSON, torn metrics lines, predictions, listing."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from newsclf import store


def _make_run(runs_dir: Path, run_id: str, state: str = "finished", results: dict | None = None) -> Path:
    run = runs_dir / run_id
    run.mkdir(parents=True)
    store.write_json_atomic(run / store.CONFIG, {"model": "tfidf"})
    store.update_status(run, state=state)
    if results is not None:
        store.write_json_atomic(run / store.RESULTS, results)
    return run


# ---- resolve_run ----------------------------------------------------------------------------
@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    runs_dir = tmp_path / "runs"
    _make_run(runs_dir, "20260101-000000-000-tfidf")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / store.CONFIG).write_text('{"model": "tfidf"}')  # looks like a run, but is not in runs_dir
    return runs_dir


def test_resolve_run_accepts_an_id_and_a_path_inside(runs: Path):
    run = runs / "20260101-000000-000-tfidf"
    assert store.resolve_run("20260101-000000-000-tfidf", runs) == run.resolve()
    assert store.resolve_run(str(run), runs) == run.resolve()
    assert store.resolve_run(run, runs) == run.resolve()


@pytest.mark.parametrize("bad", ["..", "../outside", "../../etc", "20260101-000000-000-tfidf/..",
                                 "20260101-000000-000-tfidf/best", "no-such-run", "", "a\x00b", "."])
def test_resolve_run_refuses_traversal_and_unknown_ids(runs: Path, bad: str):
    with pytest.raises(store.RunNotFoundError):
        store.resolve_run(bad, runs)


def test_resolve_run_refuses_absolute_paths_outside(runs: Path, tmp_path: Path):
    with pytest.raises(store.RunNotFoundError, match="not a run inside"):
        store.resolve_run(str(tmp_path / "outside"), runs)
    with pytest.raises(store.RunNotFoundError):
        store.resolve_run("/etc", runs)
    with pytest.raises(store.RunNotFoundError):
        store.resolve_run(str(runs / ".." / "outside"), runs)


def test_resolve_run_refuses_a_symlink_leading_outside(runs: Path, tmp_path: Path):
    (runs / "20260101-000000-001-link").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(store.RunNotFoundError):
        store.resolve_run("20260101-000000-001-link", runs)


def test_resolve_run_needs_a_config(runs: Path):
    (runs / "20260101-000000-002-empty").mkdir()
    with pytest.raises(store.RunNotFoundError, match="no run"):
        store.resolve_run("20260101-000000-002-empty", runs)


# ---- atomic JSON ----------------------------------------------------------------------------
def test_write_json_atomic_keeps_the_old_file_when_serialisation_fails(tmp_path: Path):
    path = tmp_path / "results.json"
    store.write_json_atomic(path, {"val_acc": 0.5, "arr": np.arange(3), "n": np.int64(7)})
    before = path.read_bytes()
    assert json.loads(before) == {"val_acc": 0.5, "arr": [0, 1, 2], "n": 7}
    with pytest.raises(TypeError):
        store.write_json_atomic(path, {"val_acc": 0.9, "bad": object()})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temp file left behind


def test_read_json_tolerates_missing_empty_and_corrupt_files(tmp_path: Path):
    assert store.read_json(tmp_path / "missing.json", default={}) == {}
    (tmp_path / "empty.json").write_text("")
    assert store.read_json(tmp_path / "empty.json") is None
    (tmp_path / "torn.json").write_text('{"state": "runn')
    assert store.read_json(tmp_path / "torn.json", default=1) == 1


def test_update_status_merges_and_read_status_flags_corruption(tmp_path: Path):
    store.update_status(tmp_path, state="running", epoch=1)
    status = store.update_status(tmp_path, epoch=2)
    assert status["state"] == "running" and status["epoch"] == 2
    assert store.read_status(tmp_path)["epoch"] == 2
    (tmp_path / store.STATUS).write_text("{not json")
    assert store.read_status(tmp_path)["state"] == "unknown"


# ---- metrics.jsonl --------------------------------------------------------------------------
def test_read_metrics_leaves_a_torn_last_line_for_later(tmp_path: Path):
    path = tmp_path / store.METRICS
    writer = store.MetricsWriter(path)
    writer.write({"type": "step", "step": 1})
    writer.write({"type": "step", "step": 2})
    writer.close()
    with open(path, "a") as fh:
        fh.write('{"type": "step", "st')  # a writer caught mid-line
    events, offset = store.read_metrics(path)
    assert [e["step"] for e in events] == [1, 2]
    assert offset == len(path.read_bytes()) - len('{"type": "step", "st')
    with open(path, "a") as fh:
        fh.write('ep": 3}\nnot json at all\n{"type": "epoch", "epoch": 1}\n')
    more, offset2 = store.read_metrics(path, offset)
    assert [e.get("step", e.get("epoch")) for e in more] == [3, 1]  # the garbage line is skipped
    assert offset2 == len(path.read_bytes())
    assert store.read_metrics(path, offset2) == ([], offset2)
    assert store.read_metrics(tmp_path / "missing.jsonl") == ([], 0)


# ---- predictions ----------------------------------------------------------------------------
def test_predictions_round_trip_without_pickle(tmp_path: Path):
    probs = np.random.default_rng(0).dirichlet(np.ones(4), size=3).astype(np.float32)
    preds = store.Predictions(np.array(["train/a/1", "train/b/2", "test/c/3"]), np.array([0, 1, 2]),
                              probs.argmax(1), probs)
    store.save_predictions(tmp_path, "val", preds)
    path = tmp_path / "predictions_val.npz"
    with np.load(path, allow_pickle=False) as data:  # would raise on an object (pickled) array
        assert data["doc_id"].dtype.kind == "U"
    back = store.load_predictions(tmp_path, "val")
    assert back is not None and back.doc_id.tolist() == preds.doc_id.tolist()
    np.testing.assert_array_equal(back.probs, probs)
    assert store.load_predictions(tmp_path, "test") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions_val.npz"]


# ---- listing ----------------------------------------------------------------------------------
def test_list_runs_newest_first_and_skips_foreign_folders(tmp_path: Path):
    from newsclf.store import RESULT_KEYS

    full = {k: 1 for k in RESULT_KEYS if k not in ("model", "device")} | {"model": "tfidf", "device": "cpu"}
    _make_run(tmp_path, "20260101-000000-000-a", results=full)
    _make_run(tmp_path, "20260102-000000-000-b", state="running")
    _make_run(tmp_path, "20260103-000000-000-c", results={"val_acc": 0.1})  # incomplete results
    (tmp_path / "20260104-000000-000-noconfig").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "stray.txt").write_text("x")
    assert [r.run_id for r in store.list_runs(tmp_path)] == [
        "20260103-000000-000-c", "20260102-000000-000-b", "20260101-000000-000-a"]
    assert [r.run_id for r in store.finished_runs(tmp_path)] == ["20260101-000000-000-a"]
    assert store.list_runs(tmp_path / "missing") == []


def test_create_run_dir_never_reuses_a_folder(tmp_path: Path):
    made = {store.create_run_dir(tmp_path, "x") for _ in range(5)}
    assert len(made) == 5 and all(p.is_dir() and not any(p.iterdir()) for p in made)
    assert all(store.RUN_ID_RE.match(p.name) and p.name.endswith("-x") for p in made)


def test_stop_request(tmp_path: Path):
    assert not store.stop_requested(tmp_path)
    store.request_stop(tmp_path)
    assert store.stop_requested(tmp_path)
    assert os.path.isfile(tmp_path / store.STOP)


# ---- folder swaps survive crashes and leftovers ---------------------------------------------------
def _write(folder: Path, value: str) -> None:
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(value)


def test_a_stale_old_folder_never_blocks_a_swap(tmp_path: Path):
    target = tmp_path / "last"
    _write(target, "1")
    _write(tmp_path / "last.old", "stale")  # left by a crash after the first rename, before the cleanup
    (tmp_path / "last.old" / "extra").write_text("x")
    store.swap_in(lambda d: _write(d, "2"), target)
    assert (target / "state.json").read_text() == "2"
    assert not (tmp_path / "last.old").exists() and not (tmp_path / "last.tmp").exists()


def test_a_kill_between_the_two_renames_is_recovered(tmp_path: Path):
    target = tmp_path / "last"
    _write(tmp_path / "last.old", "1")  # target renamed away ...
    _write(tmp_path / "last.tmp", "2")  # ... the complete new copy not yet renamed in
    assert store.recover_checkpoint(target, "state.json")
    assert (target / "state.json").read_text() == "2" and not (tmp_path / "last.old").exists()


def test_a_lone_half_written_tmp_is_not_taken_for_a_checkpoint(tmp_path: Path):
    (tmp_path / "last.tmp").mkdir()
    assert not store.recover_checkpoint(tmp_path / "last", "state.json")
    store.swap_in(lambda d: _write(d, "3"), tmp_path / "last")
    assert (tmp_path / "last" / "state.json").read_text() == "3"


def test_swapped_folders_have_one_file_mode(tmp_path: Path):
    def save(d: Path) -> None:
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
        (d / "model.safetensors").chmod(0o600)
        (d / "config.json").write_text("{}")
    store.swap_in(save, tmp_path / "best")
    modes = {(p.stat().st_mode & 0o777) for p in (tmp_path / "best").iterdir()}
    assert len(modes) == 1 and modes.pop() & 0o044  # group/others can read like every other run file


# ---- links out of a run dir are never followed ------------------------------------------------------
def test_listing_and_readers_refuse_symlinked_run_files(runs: Path, tmp_path: Path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"state": "finished", "model": "tfidf", "leak": "yes"}')
    run = _make_run(runs, "20260101-000000-000-linked")
    (run / store.STATUS).unlink()
    (run / store.STATUS).symlink_to(secret)
    (run / store.LABELS).symlink_to(secret)
    (run / store.METRICS).symlink_to(tmp_path / "secret.json")
    assert store.read_status(run)["state"] == "unknown"
    assert store.read_metrics(run / store.METRICS) == ([], 0)
    with pytest.raises(store.RunNotFoundError, match="symlink"):
        store.load_labels(run)
    linked_config = _make_run(runs, "20260101-000000-001-cfg")
    (linked_config / store.CONFIG).unlink()
    (linked_config / store.CONFIG).symlink_to(secret)
    outside = tmp_path / "elsewhere"
    _make_run(outside, "20260101-000000-002-out")
    (runs / "20260101-000000-002-out").symlink_to(outside / "20260101-000000-002-out")
    ids = {r.run_id for r in store.list_runs(runs)}
    assert "20260101-000000-001-cfg" not in ids and "20260101-000000-002-out" not in ids


def test_resolve_run_accepts_a_unique_name_or_suffix(runs: Path):
    run = _make_run(runs, "20260101-120000-000-alpha")
    _make_run(runs, "20260101-120000-001-beta")
    _make_run(runs, "20260102-120000-001-beta")
    assert store.resolve_run("alpha", runs) == run.resolve()
    assert store.resolve_run("000-alpha", runs) == run.resolve()
    with pytest.raises(store.RunNotFoundError, match="matches 2 runs"):
        store.resolve_run("beta", runs)


def test_metrics_lines_are_what_json_dumps_writes():
    import json as json_mod
    import math

    event = {"type": "step", "step": 3, "loss": 2.5, "lr": float("nan"), "n": np.float32(1.5), "k": np.int64(7),
             "text": "é\n\"", "ok": True, "none": None, "nested": {"a": [1, 2.0]}}
    line = store._encode_line(event)
    assert line == json_mod.dumps(event, default=store._json_default)
    back = json_mod.loads(line)
    assert math.isnan(back["lr"]) and back["n"] == 1.5 and back["k"] == 7 and back["text"] == "é\n\""
