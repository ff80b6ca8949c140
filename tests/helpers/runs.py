"""Real tiny training runs on the fixture corpus (the session fixtures build on this)."""
from __future__ import annotations

from pathlib import Path


def train_tiny_run(runs_dir: Path, data_home: Path, **overrides) -> Path:
    """Train one small real run through newsclf.runner.run; returns its run directory."""
    from newsclf import store
    from newsclf.config import RunConfig
    from newsclf.runner import run

    small = dict(bilstm=dict(epochs=2, batch_size=16, embed_dim=16, hidden_size=8, max_len=64, lr=5e-3, vocab_size=500),
                 transformer=dict(epochs=4, batch_size=8, max_len=32, lr=4e-3, warmup=0.1),
                 tfidf=dict())
    model = overrides.get("model", "tfidf")
    values = {**small[model], "data_home": str(data_home), **overrides}
    cfg = RunConfig(**values).resolved()
    run_dir = store.create_run_dir(runs_dir, overrides.get("name") or model)
    run(cfg, run_dir)
    return run_dir
