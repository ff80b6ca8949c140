"""The unchanged CLI under torchrun: 2 CPU processes (gloo), one complete run directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from newsclf import store

pytestmark = [pytest.mark.distributed, pytest.mark.integration]


def test_torchrun_two_processes_write_one_complete_run(tmp_path, tiny_model_dirs, fixture_data_home):
    runs = tmp_path / "runs"
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(fixture_data_home), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "newsclf", "train", "--model", "transformer", "--pretrained", str(tiny_model_dirs["distilbert"]),
           "--strategy", "hybrid", "--epochs", "2", "--head-epochs", "1", "--batch-size", "8", "--max-len", "32",
           "--limit-train", "64", "--device", "cpu", "--runs-dir", str(runs)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(runs.iterdir())  # exactly one run directory: rank 0 made it, rank 1 was told
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
    for name in (store.CONFIG, store.LABELS, store.STATUS, store.METRICS, store.RESULTS, store.LOG,
                 "predictions_val.npz", "predictions_test.npz"):
        assert (run_dir / name).is_file(), name
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (run_dir / store.BEST / name).is_file(), name
    assert (run_dir / store.LAST / "state.json").is_file()
    status = store.read_status(run_dir)
    assert status["state"] == "finished" and status["world_size"] == 2
    events, _ = store.read_metrics(run_dir / store.METRICS)
    start = next(e for e in events if e["type"] == "start")
    assert start["world_size"] == 2
    # 64 documents over 2 ranks in batches of 8: 4 steps per epoch per rank
    assert start["total_steps"] == 8
    assert [e["phase"] for e in events if e["type"] == "epoch"] == ["head", "all"]
    results = json.loads((run_dir / store.RESULTS).read_text())
    assert results["n_train"] == 64 and 0 <= results["test_acc"] <= 1
    assert not any(p.name.endswith((".tmp", ".old")) for p in run_dir.iterdir())
