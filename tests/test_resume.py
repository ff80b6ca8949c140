"""`newsclf train --resume RUN` continues from last/ and ends exactly where an uninterrupted run ends."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.torch import load_file

from newsclf import store
from newsclf.config import RunConfig
from newsclf.runner import run

SMALL = dict(model="transformer", strategy="hybrid", epochs=3, head_epochs=1, batch_size=8, max_len=32,
             limit_train=64, lr=2e-3, head_lr=1e-2, warmup=0.2)


def _cfg(pretrained, data_home) -> RunConfig:
    return RunConfig(pretrained=str(pretrained), data_home=str(data_home), **SMALL).resolved()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_dirs, fixture_data_home):
    run_dir = store.create_run_dir(tmp_path_factory.mktemp("resume_ref"), "ref")
    run(_cfg(tiny_model_dirs["distilbert"], fixture_data_home), run_dir)
    return run_dir


def _interrupted(runs_dir, cfg, stop_after_epoch: int):
    """Train until the epoch-`stop_after_epoch` event, then request a stop (as the dashboard's Stop button)."""
    run_dir = store.create_run_dir(runs_dir, "interrupted")

    def on_event(event):
        if event["type"] == "epoch" and event["epoch"] == stop_after_epoch:
            store.request_stop(run_dir)

    assert run(cfg, run_dir, on_event=on_event) is None
    assert store.read_status(run_dir)["state"] == "cancelled"
    assert store.read_json(run_dir / store.LAST / "state.json")["train_state"]["epoch"] == stop_after_epoch
    return run_dir


def _epochs(run_dir):
    events, _ = store.read_metrics(run_dir / store.METRICS)
    return {e["epoch"]: (e["val_acc"], e["val_loss"], e["train_loss"]) for e in events if e["type"] == "epoch"}


@pytest.mark.parametrize("stop_after_epoch", [1, 2], ids=["at-phase-boundary", "mid-phase"])
def test_resume_matches_uninterrupted_run(stop_after_epoch, tmp_path, uninterrupted, tiny_model_dirs,
                                          fixture_data_home, capsys):
    from newsclf.cli import main

    cfg = _cfg(tiny_model_dirs["distilbert"], fixture_data_home)
    run_dir = _interrupted(tmp_path, cfg, stop_after_epoch)
    assert main(["train", "--resume", str(run_dir), "--runs-dir", str(tmp_path),
                 "--data-home", str(fixture_data_home)]) == 0  # the real CLI path
    assert capsys.readouterr().out.strip().endswith(run_dir.name)
    assert store.read_status(run_dir)["state"] == "finished"
    assert not (run_dir / store.STOP).exists()
    ref, got = load_file(str(uninterrupted / store.LAST / "model.safetensors")), \
        load_file(str(run_dir / store.LAST / "model.safetensors"))
    assert ref.keys() == got.keys()
    for name in ref:
        assert np.array_equal(ref[name].numpy(), got[name].numpy()), name
    assert _epochs(run_dir) == _epochs(uninterrupted)
    a, b = store.read_json(uninterrupted / store.RESULTS), store.read_json(run_dir / store.RESULTS)
    assert (a["val_acc"], a["test_acc"], a["best_epoch"]) == (b["val_acc"], b["test_acc"], b["best_epoch"])
    np.testing.assert_array_equal(store.load_predictions(run_dir, "test").probs,
                                  store.load_predictions(uninterrupted, "test").probs)


def test_resume_with_a_different_config_is_refused(tmp_path, uninterrupted, capsys):
    from newsclf.cli import main

    run_dir = tmp_path / uninterrupted.name
    shutil.copytree(uninterrupted, run_dir)
    assert main(["train", "--resume", str(run_dir), "--runs-dir", str(tmp_path), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "resume: lr differs" in err
    assert main(["train", "--resume", str(run_dir), "--runs-dir", str(tmp_path), "--max-len", "64"]) == 2
    assert "max_len differs" in capsys.readouterr().err


def test_resume_without_checkpoint_is_refused(tmp_path, uninterrupted, capsys):
    from newsclf.cli import main

    run_dir = tmp_path / uninterrupted.name
    shutil.copytree(uninterrupted, run_dir)
    shutil.rmtree(run_dir / store.LAST)
    assert main(["train", "--resume", str(run_dir), "--runs-dir", str(tmp_path)]) == 2
    assert "no last/ checkpoint" in capsys.readouterr().err
