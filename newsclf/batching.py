"""Datasets, samplers and collation for token-id sequences.

Dynamic padding to a multiple of 8 per batch; length-grouped batches on one process
(sorting inside shuffled mega-chunks cuts padding waste); DistributedSampler under torchrun.
The order of every epoch depends only on (seed, epoch), which is what makes `--resume` exact.
"""
from __future__ import annotations

import math
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
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.group
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i:i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size)]
        for j in rng.permutation(len(batches)):
            yield batches[j]


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


def eval_batches(ids: Sequence[Sequence[int]], batch_size: int, pad_id: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Batches sorted by length (for speed); yields (original indices, tensors)."""
    order = np.argsort([-len(x) for x in ids], kind="stable")
    collate = Collator(pad_id)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, collate([(ids[i], 0) for i in idx])
