"""ONE training loop for every torch model.

`Trainer.fit()` yields events and owns no I/O; `newsclf.runner.run()` consumes them (writes
metrics.jsonl, saves best/ and last/, updates status.json, checks for a stop request).
AdamW (fused on CUDA), linear warm-up then linear decay per phase, gradient clipping (foreach)
and accumulation, bf16 autocast on CUDA, class-balanced loss, DDP under torchrun.

The hot loop never waits for the device: batches are row gathers of token tables padded once
(newsclf.batching.TrainBatches), step losses stay on the device, and they are read back in ONE
transfer per reporting interval (`report_seconds` apart, at most `report_every` steps; also the
first step of a run and the last step of every epoch). Then the step events of the interval are yielded
together, each with its own loss, in order; the last one carries `interval_end: True` (consumers
flush and update status there). The stop request is checked after every delivered event (a
consumer may have asked for it while handling one), in the hot loop every `stop_seconds`, and
before each new epoch. Under torchrun the reporting interval is counted in steps only and the stop
is agreed (one all-reduce) at each report and epoch start, so every rank takes the same decisions.
Epoch events and their values are exactly those of a loop that reads every loss at once.
"""
from __future__ import annotations

import contextlib
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


REPORT_SECONDS = 1.0  # reporting interval of a single process (status.json and metrics.jsonl follow it)
REPORT_EVERY = 500  # ... but at most this many steps (bounds the losses held on the device)
DDP_REPORT_EVERY = 50  # under torchrun: steps per reporting interval (ranks must agree without a clock)
STOP_SECONDS = 0.5  # stop-request check in the hot loop (single process)


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
        self.report_every = DDP_REPORT_EVERY if dist.enabled else REPORT_EVERY
        self.report_seconds, self.stop_seconds = REPORT_SECONDS, STOP_SECONDS
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
        # torch.compile: coarser length buckets, so few distinct shapes reach the compiled graph
        self.pad_multiple = 32 if (cfg.compile and self.use_cuda) else 8
        self.loader = batching.TrainBatches(train_ids, train_labels, cfg.batch_size, pad_id, cfg.seed, dist.world,
                                            dist.rank, device, multiple_of=self.pad_multiple)
        self._val_table: batching.PaddedTokens | None = None
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
        clock = _Clock(time.perf_counter(), self.state.global_step, total_steps,
                       self.cfg.batch_size * self.cfg.grad_accum * self.dist.world)
        first_epoch = self.state.epoch
        for epoch in range(self.state.epoch, total_epochs):
            if epoch > first_epoch and self._stop_agreed():  # asked for while the epoch event was handled
                raise StopRequested()
            phase_index, _ = self.phase_of_epoch(epoch)
            if self.optimizer is None or phase_index != self.state.phase_index:
                self.state.phase_index = phase_index
                self.start_phase(phase_index)
            self.loader_set_epoch(epoch)
            self.model.train()
            losses: list[float] = []
            pending: list[tuple] = []  # (step, lr, micro-batch losses on the device, perf time, wall time)
            last_report = last_stop_check = time.perf_counter()
            for micro_losses, epoch_end in self._epoch_steps():
                self.state.global_step += 1
                now = time.perf_counter()
                pending.append((self.state.global_step, self.step_lr, micro_losses, now, time.time()))
                if self._report_due(len(pending), now - last_report, epoch_end, clock):
                    yield from self._report(pending, epoch + 1, losses, clock)
                    pending = []
                    last_report = last_stop_check = time.perf_counter()
                elif not self.dist.enabled and now - last_stop_check >= self.stop_seconds:
                    last_stop_check = now
                    if self.should_stop():
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

    def _report_due(self, n_pending: int, since_report: float, epoch_end: bool, clock: "_Clock") -> bool:
        """End a reporting interval here? Under torchrun by step count only (the same on every rank)."""
        if epoch_end or n_pending >= self.report_every or self.state.global_step == clock.steps_at_start + 1:
            return True
        return not self.dist.enabled and since_report >= self.report_seconds

    def _report(self, pending: list[tuple], epoch: int, losses: list[float], clock: "_Clock") -> Iterator[dict]:
        """Read the interval's losses in one transfer, then yield one step event per optimizer step."""
        flat = [loss for _, _, micro, _, _ in pending for loss in micro]
        values = iter(torch.stack(flat).tolist())  # the one host sync of the interval
        for i, (step, lr, micro, t_perf, t_wall) in enumerate(pending):
            running = 0.0
            for _ in micro:  # the same float arithmetic as reading each micro-batch loss at once
                running += next(values)
            step_loss = running / len(micro)
            losses.append(step_loss)
            elapsed = t_perf - clock.started
            done = step - clock.steps_at_start
            yield {"type": "step", "step": step, "total_steps": clock.total_steps, "epoch": epoch,
                   "loss": step_loss, "lr": lr, "samples_per_s": done * clock.samples_per_step / max(elapsed, 1e-9),
                   "eta_s": (clock.total_steps - step) * elapsed / max(done, 1), "time": t_wall,
                   "interval_end": i + 1 == len(pending)}
            if not self.dist.enabled and self.should_stop():
                raise StopRequested()
        if self.dist.enabled and self._stop_agreed():
            raise StopRequested()

    def loader_set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def _epoch_steps(self) -> Iterator[tuple[list[torch.Tensor], bool]]:
        """Run one epoch; per optimizer step yield (its micro-batch losses, still on the device; last step?)."""
        accum = self.cfg.grad_accum
        micro: list[torch.Tensor] = []
        n_batches = len(self.loader)
        clip_foreach = True if self.use_cuda else None  # one fused norm over all gradients on CUDA
        can_skip_sync = self.dist.enabled and hasattr(self.ddp_model, "no_sync")
        for i, batch in enumerate(self.loader):
            last = i + 1 == n_batches
            sync_now = (len(micro) + 1 == accum) or last
            with self.ddp_model.no_sync() if (can_skip_sync and not sync_now) else _NULL:
                loss = self._loss(batch)
                (loss / accum if accum > 1 else loss).backward()
            micro.append(loss.detach())
            if sync_now:
                if self.cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip, foreach=clip_foreach)
                self.optimizer.step()
                self.step_lr = self.scheduler.get_last_lr()[0]  # the rate this step used
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                yield micro, last
                micro = []

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of a batch already on the device (a row gather of the padded table)."""
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16) if self.use_cuda else _NULL, \
                batching.host_lengths(self.loader.last_lengths):
            logits = self.ddp_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return F.cross_entropy(logits.float(), batch["labels"], weight=self.loss_weight,
                               label_smoothing=self.cfg.label_smoothing or 0.0)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Validation (loss, accuracy): each rank scores a shard, sums are all-reduced (exact).

        Sums stay on the device in float64 (the same additions, in the same order, as summing
        the per-batch floats on the host): one transfer per evaluation.
        """
        self.model.eval()
        if self._val_table is None:  # this rank's shard, padded once
            shard = np.arange(self.dist.rank, len(self.val_ids), self.dist.world)
            self._val_table = batching.PaddedTokens([self.val_ids[i] for i in shard], self.pad_id, self.device,
                                                    labels=self.val_labels[shard])
        table = self._val_table
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss sum, correct, n
        totals[2] = float(len(table))
        order = np.argsort(-table.lengths, kind="stable")  # longest first, as eval_batches
        for start in range(0, len(order), self.cfg.eval_batch_size):
            rows = order[start:start + self.cfg.eval_batch_size]
            batch = table.batch(rows)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.use_cuda), \
                    batching.host_lengths(table.lengths[rows]):
                logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            y = batch["labels"]
            totals[0] += F.cross_entropy(logits, y, reduction="sum").double()
            totals[1] += (logits.argmax(-1) == y).sum().double()
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


@dataclass
class _Clock:
    """What the step events' rate and ETA are measured against (this session of the run)."""

    started: float
    steps_at_start: int
    total_steps: int
    samples_per_step: int


_NULL = contextlib.nullcontext()  # reusable: entered once per step where no context is needed
