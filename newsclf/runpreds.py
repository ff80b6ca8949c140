"""predictions_{split}.npz of a run: written through a temp file, read with sizes checked before anything is
inflated (newsclf.safenpz) and every array checked (runschema.parse_predictions); never unpickled.
Re-exported by newsclf.store.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from newsclf import runschema
from newsclf.runfiles import open_inside
from newsclf.runschema import Predictions

PREDICTIONS = "predictions_{split}.npz"


def save_predictions(run_dir: Path, split: str, preds: Predictions) -> None:
    """Write predictions_{split}.npz (compressed) through a temp file replaced in (never through a link)."""
    from newsclf.safeio import replace_file

    replace_file(Path(run_dir) / PREDICTIONS.format(split=split), lambda fh: np.savez_compressed(
        fh, doc_id=np.asarray(preds.doc_id, dtype=str), y_true=preds.y_true.astype(np.int64),
        y_pred=preds.y_pred.astype(np.int64), probs=preds.probs.astype(np.float32)))


def read_predictions(run_dir: Path, split: str, n_classes: int | None = None) -> Predictions:
    """The stored predictions of `split`, every array checked (runschema.parse_predictions: shapes, dtypes,
    labels in range, finite probabilities); sizes are checked before anything is inflated (safenpz), and
    nothing is unpickled. FileNotFoundError when absent, DamagedError (one line) when not usable."""
    from newsclf.safenpz import NpzError, budget, load_npz

    name = PREDICTIONS.format(split=split)
    try:
        with open_inside(run_dir, name) as fh:
            arrays = load_npz(fh, ("doc_id", "y_true", "y_pred", "probs"), budget(os.fstat(fh.fileno()).st_size))
        return runschema.parse_predictions(arrays, n_classes)
    except (NpzError, runschema.DamagedError) as exc:
        raise runschema.DamagedError(f"run {Path(run_dir).name}: {name}: {exc}") from None


def load_predictions(run_dir: Path, split: str) -> Predictions | None:
    """read_predictions, or None when absent, refused or damaged."""
    try:
        return read_predictions(run_dir, split)
    except (OSError, runschema.DamagedError):
        return None
