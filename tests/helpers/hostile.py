"""Ways a shared run directory can be damaged or hostile (each: a function of (run_dir, outside_dir))."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from newsclf import store


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _weights(run: Path) -> Path:
    return next(p for p in (run / store.BEST).iterdir() if p.suffix == ".safetensors")


DAMAGE: dict[str, Callable[[Path, Path], None]] = {
    "truncated-weights": lambda run, out: _truncate(_weights(run)),
    "garbage-model-json": lambda run, out: [p.write_text("{not json") for p in (run / store.BEST).glob("*.json")],
    "garbage-config": lambda run, out: (run / store.CONFIG).write_text('{"model": 7, "epochs": "x"}'),
    "config-not-a-dict": lambda run, out: (run / store.CONFIG).write_text("[1, 2, 3]"),
    "unknown-family": lambda run, out: (run / store.CONFIG).write_text(json.dumps({"model": "svm"})),
    "short-labels": lambda run, out: (run / store.LABELS).write_text(json.dumps(["only", "two"])),
    "labels-not-text": lambda run, out: (run / store.LABELS).write_text(json.dumps([{"a": 1}] * 20)),
    "pickle-in-best": lambda run, out: (run / store.BEST / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01."),
    "best-links-out": lambda run, out: (shutil.rmtree(run / store.BEST), (run / store.BEST).symlink_to(out)),
    "weights-link-out": lambda run, out: (_weights(run).unlink(), (run / store.BEST / "model.safetensors").symlink_to(out / "x")),
    "labels-link-out": lambda run, out: ((run / store.LABELS).unlink(), (run / store.LABELS).symlink_to(out / "secret.json")),
    "config-link-out": lambda run, out: ((run / store.CONFIG).unlink(), (run / store.CONFIG).symlink_to(out / "secret.json")),
    "log-link-out": lambda run, out: ((run / store.LOG).unlink(missing_ok=True), (run / store.LOG).symlink_to(out / "secret.json")),
    "status-garbage": lambda run, out: (run / store.STATUS).write_text("\x00\x01"),
    "no-best": lambda run, out: shutil.rmtree(run / store.BEST),
    "predictions-garbage": lambda run, out: (run / "predictions_test.npz").write_bytes(b"PK\x03\x04garbage"),
}
