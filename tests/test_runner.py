"""runner.run: a diverged run fails with that reason; a direct trainer records who it is."""
from __future__ import annotations

import pytest
import torch

from newsclf import store
from newsclf.config import RunConfig
from newsclf.runner import NonFiniteLossError, run


def test_a_loss_that_becomes_nan_fails_the_run(tmp_path, fixture_data_home, monkeypatch):
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    cfg = RunConfig(model="bilstm", epochs=1, batch_size=16, embed_dim=8, hidden_size=4, max_len=32, vocab_size=200,
                    data_home=str(fixture_data_home)).resolved()
    run_dir = store.create_run_dir(tmp_path, "nan")
    with pytest.raises(NonFiniteLossError):
        run(cfg, run_dir)
    status = store.read_status(run_dir)
    assert status["state"] == "failed" and "loss became nan" in status["reason"]
    assert not (run_dir / store.RESULTS).exists()


def test_a_direct_run_records_its_process_identity(tmp_path, fixture_data_home):
    cfg = RunConfig(model="tfidf", data_home=str(fixture_data_home)).resolved()
    run_dir = store.create_run_dir(tmp_path, "who")
    run(cfg, run_dir)
    trainer = store.read_status(run_dir)["trainer"]
    assert trainer["pid"] > 0 and "start" in trainer
