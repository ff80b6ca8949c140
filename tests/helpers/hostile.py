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


# ---- numbers and shapes (issue 21, class 8): values newsclf never writes, in every file it reads ------------
def _edit_json(run: Path, name: str, path: tuple, value) -> None:
    """Set `path` (keys / indexes) in the run's JSON file `name` to `value` (written with NaN/Infinity as is)."""
    file = run / name
    data = json.loads(file.read_text()) if file.exists() else {}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    file.write_text(json.dumps(data))


def _raw_number(run: Path, name: str, key: str, literal: str) -> None:
    """A number JSON can spell but Python cannot hold as a float (1e400 -> inf) or a bare NaN."""
    file = run / name
    data = json.loads(file.read_text())
    data[key] = "@@"
    file.write_text(json.dumps(data).replace('"@@"', literal))


def _npz(run: Path, split: str, **changes) -> None:
    import numpy as np

    path = run / f"predictions_{split}.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, fn in changes.items():
        if fn is None:
            arrays.pop(key)
        else:
            arrays[key] = fn(arrays.get(key))
    path.unlink()
    np.savez_compressed(path, **arrays)


def _metrics_line(run: Path, line: str) -> None:
    with open(run / store.METRICS, "a") as fh:
        fh.write(line + "\n")


def _with_job(run: Path, **spec) -> None:
    """Make the run a (stranger's) job with a job.json holding `spec`."""
    base = {"id": run.name, "submitted": 1.0, "slot": "cpu", "gpu_count": 0, "gpus": None, "nproc_per_node": 1,
            "torchrun": False, "resume": False, "attempt": 1}
    (run / "job.json").write_text(json.dumps({**base, **spec}))


_BAD = {"huge": 1e300, "nan": float("nan"), "inf": float("inf"), "negative": -5, "text": "abc", "list": [1],
        "object": {"a": 1}, "bool": True}
_STATUS_FIELDS = ("started", "ended", "updated", "created")
NUMBERS: dict[str, Callable[[Path, Path], None]] = {}
for i, (kind, value) in enumerate(sorted(_BAD.items())):
    NUMBERS[f"status-{_STATUS_FIELDS[i % 4]}-{kind}"] = lambda r, o, v=value, f=_STATUS_FIELDS[i % 4]: \
        _edit_json(r, store.STATUS, (f,), v)
NUMBERS.update({
    "status-eta-inf": lambda r, o: _edit_json(r, store.STATUS, ("progress", "eta_s"), float("inf")),
    "status-progress-step-text": lambda r, o: _edit_json(r, store.STATUS, ("progress", "step"), "x"),
    "status-progress-not-dict": lambda r, o: _edit_json(r, store.STATUS, ("progress",), [1, 2]),
    "status-trainer-pid-text": lambda r, o: _edit_json(r, store.STATUS, ("trainer", "pid"), "1"),
    "status-running-trainer-pid-1": lambda r, o: (_edit_json(r, store.STATUS, ("state",), "running"),
                                                  _edit_json(r, store.STATUS, ("trainer",), {"pid": 1})),
    "status-exit-code-huge": lambda r, o: _edit_json(r, store.STATUS, ("exit_code",), 10**30),
    "status-reason-not-text": lambda r, o: _edit_json(r, store.STATUS, ("reason",), {"x": 1}),
    "results-val-acc-text": lambda r, o: _edit_json(r, store.RESULTS, ("val_acc",), "abc"),
    "results-test-acc-above-1": lambda r, o: _edit_json(r, store.RESULTS, ("test_acc",), 1.5),
    "results-train-seconds-list": lambda r, o: _edit_json(r, store.RESULTS, ("train_seconds",), [1]),
    "results-params-negative": lambda r, o: _edit_json(r, store.RESULTS, ("params",), -3),
    "results-n-test-1e400": lambda r, o: _raw_number(r, store.RESULTS, "n_test", "1e400"),
    "results-latency-nan": lambda r, o: _raw_number(r, store.RESULTS, "inference_ms_per_doc", "NaN"),
    "results-best-epoch-text": lambda r, o: _edit_json(r, store.RESULTS, ("best_epoch",), "x"),
    "results-label-names-numbers": lambda r, o: _edit_json(r, store.RESULTS, ("label_names",), [1, 2]),
    "results-confusion-ragged": lambda r, o: _edit_json(r, store.RESULTS, ("test_report", "confusion"), [[1, 2], [3]]),
    "results-per-class-bad": lambda r, o: _edit_json(r, store.RESULTS, ("test_report", "per_class"), [{"label": 5}]),
    "results-report-not-dict": lambda r, o: _edit_json(r, store.RESULTS, ("val_report",), "x"),
    "results-not-dict": lambda r, o: (r / store.RESULTS).write_text("[1, 2]"),
    "predictions-label-999": lambda r, o: _npz(r, "test", y_true=lambda a: a * 0 + 999),
    "predictions-pred-12345": lambda r, o: _npz(r, "val", y_pred=lambda a: a * 0 + 12345),
    "predictions-negative-label": lambda r, o: _npz(r, "test", y_pred=lambda a: a * 0 - 1),
    "predictions-probs-nan": lambda r, o: _npz(r, "test", probs=lambda a: a * float("nan")),
    "predictions-probs-wrong-width": lambda r, o: _npz(r, "test", probs=lambda a: a[:, :3]),
    "predictions-probs-3d": lambda r, o: _npz(r, "val", probs=lambda a: a[None]),
    "predictions-short-y": lambda r, o: _npz(r, "test", y_true=lambda a: a[:2]),
    "predictions-float-labels": lambda r, o: _npz(r, "test", y_true=lambda a: a.astype("float64")),
    "predictions-int-doc-ids": lambda r, o: _npz(r, "test", doc_id=lambda a: __import__("numpy").arange(len(a))),
    "predictions-missing-array": lambda r, o: _npz(r, "val", probs=None),
    "predictions-inflate-bomb": lambda r, o: _npz(r, "test", probs=lambda a: __import__("numpy").zeros(
        (10_000_000, 1), dtype="float32")),
    "metrics-bad-values": lambda r, o: [_metrics_line(r, line) for line in (
        '{"type": "step", "step": "x", "loss": "abc", "eta_s": Infinity, "epoch": [1], "time": NaN}',
        '{"type": "epoch", "epoch": "x", "val_acc": "abc", "train_loss": {}, "val_loss": []}',
        '{"type": "eval", "done": "1", "total": 1e400, "overall_done": -1, "overall_total": NaN}',
        '[1, 2]', '"text"', '{"type": 7}', "[" * 50_000 + "]" * 50_000, '{"type": "step", "step": 1e300}')],
    "metrics-long-line": lambda r, o: _metrics_line(r, '{"type": "step", "x": "' + "y" * 300_000 + '"}'),
    "labels-empty-names": lambda r, o: (r / store.LABELS).write_text(json.dumps([""] * 20)),
    "labels-too-many": lambda r, o: (r / store.LABELS).write_text(json.dumps([f"c{i}" for i in range(20_000)])),
    "calibration-bad": lambda r, o: (r / "calibration.json").write_text('{"temperature": "x", "ece_val": NaN}'),
    "meta-bad-types": lambda r, o: (r / "meta.json").write_text('{"display_name": 5, "tags": "x", "updated": NaN}'),
    "job-attempt-text": lambda r, o: _with_job(r, attempt="x", submitted=float("nan")),
    "job-launch-junk": lambda r, o: _with_job(r, launch={"started": "x", "gpus": "0", "supervisor": {"pid": "1"}}),
    "job-not-dict": lambda r, o: (r / "job.json").write_text("[1]"),
    "last-state-bad": lambda r, o: ((r / store.LAST).mkdir(exist_ok=True),
                                    (r / store.LAST / "state.json").write_text('{"best_epoch": "x"}')),
})
