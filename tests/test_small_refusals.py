"""The smaller items of issue 21 (class 9): overflowing ensemble weights, requests that must be refused in
one line before a run dir exists (a GPU that is not there, a damaged corpus cache, an embedding table
smaller than its tokenizer), and the folder a killed `ensemble` leaves. (A key file others can read or
write: tests/test_queue_strangers.py.)"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from newsclf import store
from newsclf.cli import main
from newsclf.ensemble import BUILDING, OWNER, clean_orphans
from tests.test_ensemble import fake_run, _probs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def pair(tmp_path):
    rng = np.random.default_rng(1)
    y_val, y_test = rng.integers(0, 3, 120), rng.integers(0, 3, 80)
    a = fake_run(tmp_path, "a", _probs(y_val, 2.0, rng), _probs(y_test, 2.0, rng), y_val, y_test)
    b = fake_run(tmp_path, "b", _probs(y_val, 1.0, rng), _probs(y_test, 1.0, rng), y_val, y_test)
    return tmp_path, a, b


@pytest.mark.parametrize("weights,stored", [("1e308,1e308", [0.5, 0.5]), ("1.7e308,1.7e308", [0.5, 0.5]),
                                            ("1e308,0", [1.0, 0.0]), ("3e307,1e307", [0.75, 0.25]),
                                            ("1e-320,1e-320", [0.5, 0.5])])
def test_huge_or_tiny_weights_are_normalised_without_overflow(pair, weights, stored, capsys):
    runs, a, b = pair
    assert main(["ensemble", a.name, b.name, "--weights", weights, "--name", "w", "--runs-dir", str(runs)]) == 0
    (ens,) = [p for p in runs.iterdir() if p.name.endswith("-w")]
    spec = json.loads((ens / "best" / "ensemble.json").read_text())
    assert spec["weights"] == pytest.approx(stored)
    preds = store.read_predictions(ens, "test")
    assert np.isfinite(preds.probs).all() and np.allclose(preds.probs.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("weights", [[1e308, 1e308], [1.7e308, 1e308], [0, 1e300]])
def test_a_stored_spec_with_huge_weights_predicts_finite_probabilities(weights):
    from newsclf.models.ensemble import combine_probs

    probs = combine_probs([np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])], weights)
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("weights", ["inf,1", "nan,1", "-1,2", "0,0", "1e309,1", "x,1", "1"])
def test_unusable_weights_are_one_line(pair, weights, capsys):
    runs, a, b = pair
    assert main(["ensemble", a.name, b.name, f"--weights={weights}", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: weights") and len(err.strip().splitlines()) == 1, err


def _no_new_run(runs: Path) -> bool:
    return not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("argv", [["--model", "tfidf"], ["--model", "bilstm", "--epochs", "1"]])
def test_cuda_without_a_gpu_is_refused_before_a_run_dir(argv, tmp_path, fixture_data_home, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    runs = tmp_path / "runs"
    code = main(["train", *argv, "--device", "cuda", "--runs-dir", str(runs), "--data-home", str(fixture_data_home)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: device") and len(err.strip().splitlines()) == 1, err
    assert _no_new_run(runs)


CACHE_DAMAGE = {
    "garbage": lambda p: p.write_bytes(b"PK\x03\x04garbage"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "checksum": lambda p: _resave(p, lambda a: a.update(target=a["target"][::-1].copy())),
    "missing-array": lambda p: _resave(p, lambda a: a.pop("split")),
    "label-out-of-range": lambda p: _resave(p, lambda a: a.update(target=a["target"] + 100)),
    "deflated": lambda p: _resave(p, lambda a: None, compressed=True),
}


def _resave(path: Path, edit, compressed: bool = False) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    path.unlink()
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


@pytest.mark.parametrize("damage", sorted(CACHE_DAMAGE))
def test_a_damaged_corpus_cache_is_refused_by_train_before_a_run_dir(damage, tmp_path, fixture_data_home, capsys):
    from newsclf import data

    home = tmp_path / "home"
    shutil.copytree(fixture_data_home, home)
    CACHE_DAMAGE[damage](home / "newsclf_corpus.npz")
    data.clear_caches()
    runs = tmp_path / "runs"
    code = main(["train", "--model", "tfidf", "--runs-dir", str(runs), "--data-home", str(home)])
    err = capsys.readouterr().err
    data.clear_caches()
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert _no_new_run(runs)


@pytest.mark.parametrize("rows", [5, 40])
def test_an_embedding_table_smaller_than_its_tokenizer_is_refused_before_a_run_dir(rows, tiny_model_dirs, tmp_path,
                                                                                fixture_data_home, capsys):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dirs["distilbert"], folder)
    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    weights[key] = weights[key][:rows].copy()
    save_file(weights, str(folder / "model.safetensors"))
    runs = tmp_path / "runs"
    code = main(["train", "--model", "bilstm", "--embeddings", str(folder), "--runs-dir", str(runs),
                 "--data-home", str(fixture_data_home)])
    err = capsys.readouterr().err
    assert code == 2 and "tokenizer" in err and len(err.strip().splitlines()) == 1, err
    assert _no_new_run(runs)


KILL_AT = {"after-predictions": "store.swap_in", "after-best": "store.write_json_atomic"}


@pytest.mark.parametrize("where", sorted(KILL_AT))
def test_a_killed_ensemble_leaves_no_run_and_its_folder_is_cleaned(pair, where, capsys):
    """SIGKILL in the middle of `ensemble` (a real kill, in a subprocess): no half run is ever listed, and
    the hidden folder it leaves is removed by the next `runs list` (its owner is gone)."""
    runs, a, b = pair
    before = sorted(p.name for p in runs.iterdir())
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from newsclf import store, ensemble
target = {KILL_AT[where]!r}.split(".")[1]
original = getattr(store, target)
def die(*a, **k):
    if target != "write_json_atomic" or str(a[0]).endswith("results.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*a, **k)
setattr(store, target, die)
ensemble.build_ensemble([{a.name!r}, {b.name!r}], {str(runs)!r}, name="killed")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    left = [p.name for p in runs.iterdir() if p.name not in before]
    assert left and all(n.startswith(BUILDING) for n in left)  # hidden: never a run
    assert [r.run_id for r in store.list_runs(runs)] == [r.run_id for r in store.list_runs(runs)
                                                         if not r.run_id.endswith("-killed")]
    assert main(["runs", "list", "--runs-dir", str(runs)]) == 0
    assert sorted(p.name for p in runs.iterdir()) == before


def test_a_live_builder_is_left_alone_and_an_ownerless_leftover_waits_a_minute(tmp_path):
    from newsclf.jobs import process_identity

    live = tmp_path / f"{BUILDING}20990101-000000-000-live"
    live.mkdir()
    (live / OWNER).write_text(json.dumps(process_identity(os.getpid())))
    fresh = tmp_path / f"{BUILDING}20990101-000000-001-fresh"
    fresh.mkdir()
    old = tmp_path / f"{BUILDING}20990101-000000-002-old"
    old.mkdir()
    os.utime(old, (1.0, 1.0))
    link = tmp_path / f"{BUILDING}20990101-000000-003-link"
    link.symlink_to(tmp_path / "elsewhere")
    assert clean_orphans(tmp_path) == [old.name]
    assert live.is_dir() and fresh.is_dir() and link.is_symlink()
