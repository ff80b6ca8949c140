"""ONE training loop for every torch model.

`Trainer.fit()` yields events and owns no I/O; `newsclf.runner.run()` consumes them (writes
metrics.jsonl, saves best/ and last/, updates status.json, checks for a stop request).
AdamW (fused on CUDA), linear warm-up then linear decay per phase, gradient clipping and
accumulation, bf16 autocast on CUDA, class-balanced loss, DDP under torchrun.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as torch_dist
import torch.nn.functional as F

from newsclf import batching
from newsclf.models import Phase


class StopRequested(Exception):
    """A graceful stop was requested between steps."""


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_pref: str) -> DistInfo:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    use_cuda = device_pref != "cpu" and torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank)


def select_device(pref: str, dist: DistInfo) -> torch.device:
    if pref == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA GPU is visible")
    if pref in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: np.ndarray, num_labels: int) -> torch.Tensor:
    """Inverse-frequency weights, mean 1 over the classes present."""
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


@dataclass
class TrainState:
    """Where training stands; saved in last/state.json."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_val_acc: float = -1.0
    best_epoch: int = 0
    phase_index: int = 0
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Owns model, optimizer and schedule; `fit()` yields events (dicts with a "type")."""

    def __init__(self, model, family, cfg, train_ids, train_labels, val_ids, val_labels, pad_id: int,
                 device: torch.device, dist: DistInfo, num_labels: int,
                 should_stop: Callable[[], bool] = lambda: False):
        self.model = model.to(device)
        self.family, self.cfg, self.device, self.dist = family, cfg, device, dist
        self.val_ids, self.val_labels, self.pad_id = val_ids, np.asarray(val_labels), pad_id
        self.should_stop = should_stop
        self.phases: list[Phase] = family.phases(cfg)
        self.state = TrainState()
        self.train_seconds = 0.0  # training time of earlier sessions of this run (resume)
        self.step_lr = cfg.lr
        self.use_cuda = device.type == "cuda"
        if self.use_cuda:
            torch.backends.cuda.matmul.allow_tf32 = True  # the few fp32 matmuls outside autocast
        self.loader = batching.train_loader(
            train_ids, train_labels, cfg.batch_size, pad_id, cfg.seed, dist.world, dist.rank,
            num_workers=cfg.num_workers if cfg.num_workers is not None else (2 if self.use_cuda else 0),
            pin_memory=self.use_cuda)
        weight = class_weights(np.asarray(train_labels), num_labels) if cfg.class_balance else None
        self.loss_weight = weight.to(device) if weight is not None else None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.ddp_model = None
        self.n_train = len(train_ids)

    # ---- phases -----------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.loader) / self.cfg.grad_accum)

    def total_steps(self) -> int:
        return self.steps_per_epoch() * sum(p.epochs for p in self.phases)

    def start_phase(self, index: int) -> None:
        """Set trainable parameters, (re)build the DDP wrapper, optimizer and schedule for a phase."""
        phase = self.phases[index]
        self.family.set_phase(self.model, self.cfg, phase)
        groups = self.family.param_groups(self.model, self.cfg, phase)
        for g in groups:
            g["initial_lr"] = g["lr"]
        fused = self.use_cuda and all(p.is_cuda for g in groups for p in g["params"])
        self.optimizer = torch.optim.AdamW(groups, lr=self.cfg.lr, fused=fused or None)
        steps = self.steps_per_epoch() * phase.epochs
        warmup = int(round(self.cfg.warmup * steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_schedule(warmup, steps))
        self.ddp_model = self.model
        if self.dist.enabled:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.use_cuda else None,
                find_unused_parameters=False)
        if self.cfg.compile and self.use_cuda:
            self.ddp_model = torch.compile(self.ddp_model, dynamic=True)

    def phase_of_epoch(self, epoch: int) -> tuple[int, int]:
        """(phase index, epoch index inside it) of global epoch `epoch` (0-based)."""
        start = 0
        for i, p in enumerate(self.phases):
            if epoch < start + p.epochs:
                return i, epoch - start
            start += p.epochs
        return len(self.phases) - 1, self.phases[-1].epochs

    # ---- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The train state saved in last/state.json (JSON values only)."""
        return {**asdict(self.state), "train_seconds": self.train_seconds}

    def restore(self, last) -> None:
        """Continue from a last/ checkpoint: weights, train state, the phase's optimizer and schedule, RNG.

        A resumed run then ends exactly where an uninterrupted one would (same device).
        """
        from newsclf import resume as resume_mod

        meta = resume_mod.load_state(last)
        resume_mod.load_model_weights(last, self.model)
        saved = dict(meta["train_state"])
        self.train_seconds = float(saved.pop("train_seconds", 0.0))
        self.state = TrainState(**saved)
        phase_now, _ = self.phase_of_epoch(self.state.epoch)
        self.start_phase(phase_now)
        if phase_now == saved["phase_index"]:  # else a new phase starts with a fresh optimizer, as uninterrupted
            resume_mod.restore_optimizer(last, self.optimizer, meta)
            self.scheduler.load_state_dict({**self.scheduler.state_dict(), "last_epoch": int(meta["scheduler_step"]),
                                            "_last_lr": [g["lr"] for g in self.optimizer.param_groups]})
        resume_mod.restore_rng(last, meta)  # always: dropout of the next epoch draws from it
        self.state.phase_index = phase_now

    # ---- loop -------------------------------------------------------------------------------
    def fit(self) -> Iterator[dict[str, Any]]:
        total_epochs = sum(p.epochs for p in self.phases)
        total_steps = self.total_steps()
        yield {"type": "start", "epochs": total_epochs, "total_steps": total_steps, "n_train": self.n_train,
               "world_size": self.dist.world, "resumed_from_epoch": self.state.epoch}
        started = time.perf_counter()
        steps_at_start = self.state.global_step
        for epoch in range(self.state.epoch, total_epochs):
            phase_index, _ = self.phase_of_epoch(epoch)
            if self.optimizer is None or phase_index != self.state.phase_index:
                self.state.phase_index = phase_index
                self.start_phase(phase_index)
            self.loader_set_epoch(epoch)
            self.model.train()
            losses = []
            for step_loss in self._epoch_steps():
                losses.append(step_loss)
                self.state.global_step += 1
                elapsed = time.perf_counter() - started
                done = self.state.global_step - steps_at_start
                rate = done * self.cfg.batch_size * self.cfg.grad_accum * self.dist.world / max(elapsed, 1e-9)
                eta = (total_steps - self.state.global_step) * elapsed / max(done, 1)
                yield {"type": "step", "step": self.state.global_step, "total_steps": total_steps,
                       "epoch": epoch + 1, "loss": step_loss, "lr": self.step_lr,
                       "samples_per_s": rate, "eta_s": eta, "time": time.time()}
                if self._stop_agreed():
                    raise StopRequested()
            val_loss, val_acc = self.evaluate()
            train_loss = self._mean_across_ranks(float(np.mean(losses)) if losses else float("nan"))
            self.state.epoch = epoch + 1
            is_best = val_acc > self.state.best_val_acc
            if is_best:
                self.state.best_val_acc, self.state.best_epoch = val_acc, epoch + 1
            event = {"type": "epoch", "epoch": epoch + 1, "epochs": total_epochs,
                     "phase": self.phases[phase_index].name, "train_loss": train_loss, "val_loss": val_loss,
                     "val_acc": val_acc, "is_best": is_best, "time": time.time()}
            patience = self.cfg.patience or 0  # early stopping; the best epoch is kept either way
            event["early_stop"] = bool(patience) and self.state.epoch - self.state.best_epoch >= patience
            self.state.history.append({k: event[k] for k in ("epoch", "train_loss", "val_loss", "val_acc")})
            yield event
            if event["early_stop"]:
                return

    def loader_set_epoch(self, epoch: int) -> None:
        sampler = self.loader.sampler if self.dist.enabled else self.loader.batch_sampler
        sampler.set_epoch(epoch)

    def _epoch_steps(self) -> Iterator[float]:
        """Run one epoch; yield the mean loss of every optimizer step."""
        accum = self.cfg.grad_accum
        running, micro = 0.0, 0
        n_batches = len(self.loader)
        for i, batch in enumerate(self.loader):
            last = i + 1 == n_batches
            sync_now = (micro + 1 == accum) or last
            ctx = self.ddp_model.no_sync() if (self.dist.enabled and not sync_now and hasattr(self.ddp_model, "no_sync")) else _null()
            with ctx:
                loss = self._loss(batch)
                (loss / accum).backward()
            running += float(loss.detach())
            micro += 1
            if sync_now:
                if self.cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                self.optimizer.step()
                self.step_lr = self.scheduler.get_last_lr()[0]  # the rate this step used
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                yield running / micro
                running, micro = 0.0, 0

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.use_cuda):
            logits = self.ddp_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return F.cross_entropy(logits.float(), batch["labels"], weight=self.loss_weight,
                               label_smoothing=self.cfg.label_smoothing or 0.0)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Validation (loss, accuracy): each rank scores a shard, sums are all-reduced (exact)."""
        self.model.eval()
        shard = list(range(self.dist.rank, len(self.val_ids), self.dist.world))
        ids = [self.val_ids[i] for i in shard]
        labels = torch.as_tensor(self.val_labels[shard], dtype=torch.long)
        loss_sum = correct = 0.0
        for idx, batch in batching.eval_batches(ids, self.cfg.eval_batch_size, self.pad_id):
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.use_cuda):
                logits = self.model(input_ids=batch["input_ids"].to(self.device),
                                    attention_mask=batch["attention_mask"].to(self.device)).logits.float()
            y = labels[idx].to(self.device)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += float((logits.argmax(-1) == y).sum())
        totals = torch.tensor([loss_sum, correct, float(len(ids))], dtype=torch.float64, device=self.device)
        if self.dist.enabled:
            torch_dist.all_reduce(totals)
        loss_sum, correct, n = totals.tolist()
        self.model.train()
        return loss_sum / max(n, 1), correct / max(n, 1)

    def _mean_across_ranks(self, value: float) -> float:
        if not self.dist.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return float(t) / self.dist.world

    def _stop_agreed(self) -> bool:
        flag = 1.0 if (self.dist.is_main and self.should_stop()) else 0.0
        if not self.dist.enabled:
            return bool(flag)
        t = torch.tensor([flag], device=self.device)
        torch_dist.all_reduce(t)
        return bool(t.item() > 0)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
