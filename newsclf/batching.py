"""Datasets, samplers and collation for token-id sequences.

Dynamic padding to a multiple of 8 per batch (a coarser bucket, e.g. 32, under torch.compile);
length-grouped batches on one process (sorting inside shuffled mega-chunks cuts padding waste);
DistributedSampler under torchrun. The order of every epoch depends only on (seed, epoch), which is
what makes `--resume` exact.

Training does not collate per step: `PaddedTokens` pads every sequence once into one table that
lives on the training device (when it is small enough), and a batch is a row gather of it, cut to
the batch's padded length (known on the host, so no device sync). `TrainBatches` yields the same
batches, in the same order, as a DataLoader over `Collator` would.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from newsclf.text import pad_batch


class TokenDataset(Dataset):
    def __init__(self, ids: Sequence[Sequence[int]], labels: np.ndarray):
        self.ids = ids
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[Sequence[int], int]:
        return self.ids[i], int(self.labels[i])


class Collator:
    """(ids, label) items -> {"input_ids", "attention_mask", "labels"} tensors, padded to a multiple of 8."""

    def __init__(self, pad_id: int, multiple_of: int = 8):
        self.pad_id = pad_id
        self.multiple_of = multiple_of

    def __call__(self, items: list[tuple[Sequence[int], int]]) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([seq for seq, _ in items], self.pad_id, self.multiple_of)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.tensor([y for _, y in items], dtype=torch.long)}


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of similar length: shuffle, cut into chunks of `batch_size * group`,
    sort each chunk by length, split into batches, shuffle the batches."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group = group
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batch_arrays():
            yield batch.tolist()

    def batch_arrays(self) -> list[np.ndarray]:
        """This epoch's batches, in order, as int64 index arrays (what `iter` yields as lists)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.group
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        return [batches[j] for j in rng.permutation(len(batches))]


def train_loader(ids, labels, batch_size: int, pad_id: int, seed: int, world: int, rank: int,
                 num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    dataset = TokenDataset(ids, labels)
    collate = Collator(pad_id)
    common = dict(collate_fn=collate, num_workers=num_workers, pin_memory=pin_memory,
                  persistent_workers=num_workers > 0)
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **common)
    sampler = LengthGroupedBatchSampler([len(x) for x in ids], batch_size, seed)
    return DataLoader(dataset, batch_sampler=sampler, **common)


# ---- real lengths known on the host ----------------------------------------------------------------
_HOST = threading.local()


@contextlib.contextmanager
def host_lengths(lengths) -> Iterator[None]:
    """Around ONE model call: the real token count of each row of its batch, as the host knows it.

    A model that needs lengths on the host (the BiLSTM's packed sequences on CUDA) reads them with
    `current_host_lengths` instead of copying `attention_mask.sum(1)` back from the device, which
    would make the host wait for the device on every batch. Other models ignore it.
    """
    previous = getattr(_HOST, "lengths", None)
    _HOST.lengths = lengths  # as given; a tensor only when a model asks (most never do)
    try:
        yield
    finally:
        _HOST.lengths = previous


def current_host_lengths(batch_size: int) -> torch.Tensor | None:
    """The CPU int64 lengths (B,) given by the enclosing `host_lengths`, if any and of this batch size."""
    lengths = getattr(_HOST, "lengths", None)
    if lengths is None or len(lengths) != batch_size:
        return None
    return torch.as_tensor(np.asarray(lengths), dtype=torch.int64)


def host_batch_unpadded(batch_size: int, width: int) -> bool:
    """True when the enclosing `host_lengths` says every row of this batch fills all `width` positions
    (answered on the host; False when no lengths are given)."""
    lengths = getattr(_HOST, "lengths", None)
    if lengths is None or len(lengths) != batch_size or batch_size == 0:
        return False
    return int(np.min(lengths)) >= width


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device`: from pinned memory without blocking on CUDA (the host never waits)."""
    device = torch.device(device)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


# ---- pre-padded tables (training and validation: padded once, gathered per batch) ------------------
DEVICE_TABLE_LIMIT = 1 << 30  # bytes: a larger table stays in host memory and batches are copied per step


def padded_length(longest: int, multiple_of: int) -> int:
    """The padded width of a batch whose longest sequence has `longest` tokens (as `pad_batch`)."""
    longest = longest or 1
    return int(math.ceil(longest / multiple_of) * multiple_of) if multiple_of > 1 else longest


class PaddedTokens:
    """All sequences padded once: ids (N, W) int64 with `pad_id`, lengths (N,) on the host and the device.

    `batch(idx)` equals `Collator(pad_id, multiple_of)` applied to the same rows: ids and mask of width
    `padded_length(max length in the batch)`, labels when given.
    """

    def __init__(self, ids: Sequence[Sequence[int]], pad_id: int, device: torch.device, multiple_of: int = 8,
                 labels: np.ndarray | None = None):
        self.device = torch.device(device)
        self.multiple_of = multiple_of
        self.lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))  # (N,) host
        width = padded_length(int(self.lengths.max(initial=0)), multiple_of)
        table = np.full((len(ids), width), pad_id, dtype=np.int64)
        for i, seq in enumerate(ids):
            table[i, : len(seq)] = seq
        on_device = table.nbytes <= DEVICE_TABLE_LIMIT or self.device.type == "cpu"
        self.store = self.device if on_device else torch.device("cpu")
        mask = (np.arange(width)[None, :] < self.lengths[:, None]).astype(np.int64)
        self.ids = torch.from_numpy(table).to(self.store)  # (N, W)
        self.mask = torch.from_numpy(mask).to(self.store)  # (N, W)
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long).to(self.store)
        self._columns: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # width -> the first `width` columns

    def __len__(self) -> int:
        return len(self.lengths)

    def index(self, idx: np.ndarray) -> torch.Tensor:
        """Row indices as a tensor where the table lives (one small non-blocking copy on CUDA)."""
        return to_device(torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64)), self.store)

    def batch(self, idx: np.ndarray, idx_t: torch.Tensor | None = None, longest: int | None = None,
              with_labels: bool = True) -> dict[str, torch.Tensor]:
        """The batch of rows `idx` (host array); `idx_t` = the same indices already where the table lives,
        `longest` = their longest length (both computed here when not given)."""
        longest = int(self.lengths[idx].max(initial=0)) if longest is None else longest
        width = padded_length(longest, self.multiple_of)  # known on the host: no device sync
        idx_t = self.index(idx) if idx_t is None else idx_t
        ids, mask = self._columns.get(width) or self._columns.setdefault(
            width, (self.ids.narrow(1, 0, width), self.mask.narrow(1, 0, width)))
        out = {"input_ids": ids.index_select(0, idx_t), "attention_mask": mask.index_select(0, idx_t)}  # (B, T)
        if self.labels is not None and with_labels:
            out["labels"] = self.labels.index_select(0, idx_t)
        if self.store != self.device:  # a table too big for the device: copy this batch over
            out = {k: to_device(v, self.device) for k, v in out.items()}
        return out


class TrainBatches:
    """The training batches of one process, from a pre-padded table (no DataLoader, no per-step collation).

    Same sampler and order as `train_loader`: length-grouped batches on one process, DistributedSampler
    batches of `batch_size` under torchrun. The indices of a whole epoch go to the device in one copy, its
    labels are gathered once, and batches are gathered `GATHER_AHEAD` at a time.
    """

    GATHER_AHEAD = 8

    def __init__(self, ids, labels, batch_size: int, pad_id: int, seed: int, world: int, rank: int,
                 device: torch.device, multiple_of: int = 8):
        self.table = PaddedTokens(ids, pad_id, device, multiple_of, labels=labels)
        self.batch_size = batch_size
        if world > 1:
            self.sampler = DistributedSampler(range(len(ids)), num_replicas=world, rank=rank, shuffle=True, seed=seed)
            self.batch_sampler = None
        else:
            self.sampler = None
            self.batch_sampler = LengthGroupedBatchSampler(self.table.lengths, batch_size, seed)

    def set_epoch(self, epoch: int) -> None:
        (self.sampler or self.batch_sampler).set_epoch(epoch)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return math.ceil(len(self.sampler) / self.batch_size)

    def batches(self) -> list[np.ndarray]:
        """This epoch's batches as host index arrays."""
        if self.batch_sampler is not None:
            return self.batch_sampler.batch_arrays()
        order = np.asarray(list(self.sampler), dtype=np.int64)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        # A DataLoader iterator draws one number from the global torch RNG (its workers' base seed);
        # drawing it here too keeps every seed's dropout masks, and so its results, as they were.
        torch.empty((), dtype=torch.int64).random_()
        batches = self.batches()
        if not batches:
            return
        table = self.table
        order = np.concatenate(batches)
        sizes = [len(b) for b in batches]
        flat = table.index(order)  # one host->device copy per epoch
        rows = flat.split(sizes)  # each batch's row indices, where the table lives
        labels = table.labels.index_select(0, flat)  # this epoch's labels: one gather
        if table.store != table.device:  # a table kept in host memory: the labels go over once per epoch
            labels = to_device(labels, table.device)
        labels = labels.split(sizes)
        starts = np.cumsum([0] + sizes[:-1])
        longest = np.maximum.reduceat(table.lengths[order], starts).tolist()  # per batch, one call
        self.last_lengths = None  # host lengths of the batch last yielded (for `host_lengths`)
        for first in range(0, len(batches), self.GATHER_AHEAD):
            # gather a few batches in a burst, then hand them out (less host work between two steps)
            ahead = []
            for j in range(first, min(first + self.GATHER_AHEAD, len(batches))):
                batch = table.batch(batches[j], rows[j], longest[j], with_labels=False)
                batch["labels"] = labels[j]
                ahead.append((batch, table.lengths[batches[j]]))
            for batch, lengths in ahead:
                self.last_lengths = lengths
                yield batch


def eval_batches(ids: Sequence[Sequence[int]], batch_size: int, pad_id: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Batches sorted by length (for speed); yields (original indices, tensors)."""
    order = np.argsort([-len(x) for x in ids], kind="stable")
    collate = Collator(pad_id)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, collate([(ids[i], 0) for i in idx])
