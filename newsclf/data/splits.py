"""Train/validation/test assignment of an imported corpus, and the order its splits load in.

The rule (SPLIT_RULE, also recorded in each corpus's metadata): every class is split on its own.
Its rows are shuffled with the seed; the first ``floor(n * test_size + 0.5)`` go to test, the next
``floor(n * val_size + 0.5)`` to validation, the rest to train; when those shares would leave the class
no training row, validation gives way first, then test. So a class too small for a share (fewer than
``1 / (2 * share)`` rows) has no row in that split, and every class keeps at least one training row.
With a given split column (train / validation / test per row) the column is used as is; when it has
no validation rows, validation is carved out of train by the same rule (``test_size`` 0).

Load order: each split's rows in a seeded random order (as 20 Newsgroups' order is sklearn's seeded
shuffle), so ``limit_train`` takes a random sample of the training rows, not the file's first lines.
Everything is vectorised (argsort/lexsort), so a million rows and a thousand classes take well under
a second. Random numbers come from ``numpy.random.default_rng(seed)`` (PCG64).
"""
from __future__ import annotations

import numpy as np

from newsclf.data.errors import DataError

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")
SPLIT_RULE = ("stratified per class with the seed: floor(n*test+0.5) rows of each class to test, "
              "floor(n*val+0.5) to validation, the rest (at least one) to train")
CARVE_RULE = ("split column as given; validation carved per class out of train with the seed: "
              "floor(n*val+0.5) rows of each class, at least one left in train")
GIVEN_RULE = "split column as given"


def check_sizes(val_size: float, test_size: float) -> None:
    """DataError unless 0 < val_size, 0 <= test_size and val_size + test_size < 1."""
    for flag, value, low in (("--val-size", val_size, 0.0), ("--test-size", test_size, 0.0)):
        if not isinstance(value, (int, float)) or not np.isfinite(value) or not low <= value < 1:
            raise DataError(f"{flag}: must be a fraction in [0, 1), got {value!r}")
    if val_size <= 0:
        raise DataError(f"--val-size: must be more than 0 (a validation split is needed), got {val_size!r}")
    if val_size + test_size >= 1:
        raise DataError(f"--val-size + --test-size must be below 1 (train needs rows), got {val_size + test_size:g}")


def stratified(codes: np.ndarray, n_classes: int, val_size: float, test_size: float,
               rng: np.random.Generator) -> np.ndarray:
    """Split codes (TRAIN/VAL/TEST, uint8) of rows with class `codes`, by the module's rule."""
    n = len(codes)
    keys = rng.random(n)
    by_class = np.lexsort((keys, codes))  # class-major, random within a class
    counts = np.bincount(codes, minlength=n_classes).astype(np.int64)
    n_test = np.floor(counts * test_size + 0.5).astype(np.int64)
    n_val = np.floor(counts * val_size + 0.5).astype(np.int64)
    excess = np.maximum(n_test + n_val - (counts - 1), 0)  # rows the shares take beyond "one left in train"
    from_val = np.minimum(excess, n_val)
    n_val -= from_val
    n_test -= excess - from_val
    n_test = np.maximum(n_test, 0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_codes = codes[by_class]
    rank = np.arange(n, dtype=np.int64) - starts[sorted_codes]  # position of each row within its class
    out = np.full(n, TRAIN, dtype=np.uint8)
    out[by_class[rank < n_test[sorted_codes] + n_val[sorted_codes]]] = VAL
    out[by_class[rank < n_test[sorted_codes]]] = TEST
    return out


def assign(codes: np.ndarray, n_classes: int, given: np.ndarray | None, seed: int, val_size: float,
           test_size: float) -> tuple[np.ndarray, np.ndarray, str]:
    """(split codes, load order, the rule applied in words) for the kept rows.

    `given`: the split column's codes (or None: a stratified split). The load order lists row indices,
    train first, then validation, then test, each in a seeded random order.
    """
    rng = np.random.default_rng(seed)
    codes = np.asarray(codes, dtype=np.int64)
    if given is None:
        split, rule = stratified(codes, n_classes, val_size, test_size, rng), SPLIT_RULE
    else:
        split, rule = np.asarray(given, dtype=np.uint8).copy(), GIVEN_RULE
        if not (split == VAL).any():
            train = np.flatnonzero(split == TRAIN)
            carved = stratified(codes[train], n_classes, val_size, 0.0, rng)
            split[train[carved == VAL]] = VAL
            rule = CARVE_RULE
    order = np.lexsort((rng.random(len(codes)), split)).astype(np.int64)
    return split, order, rule


def check_assignment(codes: np.ndarray, split: np.ndarray, names: list[str], given: bool) -> dict[str, int]:
    """Refuse a split a model cannot be trained and evaluated on; return how many classes lack val/test rows.

    Every split must hold rows, and every class a training row (a classifier only predicts the
    classes it was trained on).
    """
    sizes = np.bincount(split, minlength=3)
    for code, name in ((TRAIN, "training"), (VAL, "validation"), (TEST, "test")):
        if sizes[code] == 0:
            how = ("the split column has no such rows" if given and code != VAL else
                   "no class has enough rows for its share: raise --val-size/--test-size or add rows")
            raise DataError(f"the {name} split is empty ({how})")
    per = np.zeros((3, len(names)), dtype=np.int64)
    np.add.at(per, (split.astype(np.int64), codes), 1)
    untrained = np.flatnonzero(per[TRAIN] == 0)
    if len(untrained):
        raise DataError(f"class {names[int(untrained[0])]!r} has no training row ({len(untrained)} such classes; "
                        f"a model can only predict classes it was trained on): put some of its rows in train")
    return {"classes_without_val": int((per[VAL] == 0).sum()), "classes_without_test": int((per[TEST] == 0).sum())}
