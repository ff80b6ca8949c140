"""The training loop's overhead guards (no GPU needed): host syncs and metrics writes per reporting
interval, buffered metrics that survive a crash, bounded stop latency, batches and values unchanged."""
from __future__ import annotations

import gc
import json
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from newsclf import batching, runner, store
from newsclf import train as train_mod
from newsclf.models.base import ModelFamily
from newsclf.models.output import ClassifierOutput
from newsclf.train import DistInfo, StopRequested, Trainer

SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


class TinyModel(nn.Module):
    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(100, 8, padding_idx=0)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(8, 4)
        self.delay = delay

    def forward(self, input_ids, attention_mask=None):
        if self.delay:
            time.sleep(self.delay)
        mask = attention_mask.unsqueeze(-1).float()  # (B, T, 1)
        pooled = (self.embedding(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, 8)
        return ClassifierOutput(logits=self.classifier(self.dropout(pooled)))


class TinyFamily(ModelFamily):
    name = "tiny"
    trained_by_loop = True


def _data(n: int = 320, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, 100, size=int(rng.integers(1, 40))).tolist() for _ in range(n)]
    return ids, rng.integers(0, 4, size=n)


def _trainer(n=320, epochs=1, batch_size=8, grad_accum=1, delay=0.0, should_stop=lambda: False, **report):
    ids, labels = _data(n)
    cfg = SimpleNamespace(lr=1e-2, weight_decay=0.01, warmup=0.1, grad_clip=1.0, grad_accum=grad_accum,
                          batch_size=batch_size, eval_batch_size=16, seed=0, compile=False,
                          class_balance=True, epochs=epochs, label_smoothing=0.0, patience=0)
    torch.manual_seed(0)
    trainer = Trainer(TinyModel(delay), TinyFamily(), cfg, ids, labels, ids[:40], labels[:40], 0,
                      torch.device("cpu"), DistInfo(), 4, should_stop=should_stop)
    for key, value in report.items():
        setattr(trainer, key, value)
    return trainer


class _SyncCounter:
    """Counts Tensor methods that sync with a device when they are called from newsclf code."""

    def __init__(self, monkeypatch):
        self.count = 0
        for name in SYNC_METHODS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._spy(original))

    def _spy(self, original):
        def wrapper(tensor, *args, **kwargs):
            if "newsclf" in Path(sys._getframe(1).f_code.co_filename).parts:
                self.count += 1
            return original(tensor, *args, **kwargs)
        return wrapper


# ---- (a) host syncs ----------------------------------------------------------------------------
def test_the_hot_loop_syncs_once_per_reporting_interval_not_per_step(monkeypatch):
    trainer = _trainer(report_every=8, report_seconds=float("inf"))
    trainer.evaluate = lambda: (1.0, 0.5)  # the hot loop only (validation runs once per epoch)
    counter = _SyncCounter(monkeypatch)
    events = list(trainer.fit())
    steps = [e for e in events if e["type"] == "step"]
    intervals = sum(e["interval_end"] for e in steps)
    assert len(steps) == 40
    assert intervals == 1 + 5  # the first step alone, then 8 steps per interval; the epoch's last step ends one
    assert counter.count <= intervals < len(steps) / 4
    assert [e["step"] for e in steps] == list(range(1, 41))


def test_validation_reads_the_device_once(monkeypatch):
    trainer = _trainer()
    counter = _SyncCounter(monkeypatch)
    trainer.evaluate()
    assert counter.count == 1  # 40 documents in 3 batches: one transfer of the totals


def test_every_reporting_schedule_gives_the_same_events():
    """Reading every loss at once (an interval of one step) or once per interval: the same values."""
    def run(**report):
        trainer = _trainer(epochs=2, grad_accum=3, **report)
        return [{k: v for k, v in e.items() if k not in ("time", "samples_per_s", "eta_s", "interval_end")}
                for e in trainer.fit()]

    every_step = run(report_every=1)
    grouped = run(report_every=7, report_seconds=float("inf"))
    assert every_step == grouped
    assert sum(e["type"] == "step" for e in grouped) == 2 * 14  # 40 batches / 3 per step, rounded up


# ---- (b) file writes ---------------------------------------------------------------------------
class _CountingFile:
    def __init__(self, fh, counts):
        self._fh, self._counts = fh, counts

    def write(self, text):
        self._counts["write"] += 1
        return self._fh.write(text)

    def flush(self):
        self._counts["flush"] += 1
        return self._fh.flush()

    def __getattr__(self, name):
        return getattr(self._fh, name)


def test_metrics_and_status_are_written_once_per_interval_not_per_step(tmp_path, monkeypatch):
    counts = {"write": 0, "flush": 0, "status": 0}
    real_open, real_update = open, store.update_status

    def counting_open(path, *args, **kwargs):
        fh = real_open(path, *args, **kwargs)
        appending = (args[0] if args else kwargs.get("mode", "r")).startswith("a")
        return _CountingFile(fh, counts) if str(path).endswith(store.METRICS) and appending else fh

    def counting_update(*args, **kwargs):
        counts["status"] += 1
        return real_update(*args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    monkeypatch.setattr(store, "update_status", counting_update)
    sink = runner._event_sink(tmp_path, True, None)
    trainer = _trainer(report_every=10, report_seconds=float("inf"))
    events = list(trainer.fit())
    for event in events:
        sink(event)
    steps = [e for e in events if e["type"] == "step"]
    intervals = sum(e["interval_end"] for e in steps)
    others = len(events) - len(steps)  # start, epoch: flushed at once
    assert len(steps) == 40 and intervals == 1 + 4
    assert counts["write"] <= intervals + others and counts["flush"] <= intervals + others
    assert counts["status"] == intervals
    written, _ = store.read_metrics(tmp_path / store.METRICS)
    assert [e["type"] for e in written] == [e["type"] for e in events]
    assert [e["step"] for e in written if e["type"] == "step"] == list(range(1, 41))
    assert json.loads((tmp_path / store.STATUS).read_text())["progress"]["step"] == 40  # the last interval's step


def test_metrics_writer_buffers_steps_inside_an_interval(tmp_path):
    path = tmp_path / store.METRICS
    writer = store.MetricsWriter(path, flush_seconds=3600)
    writer.write({"type": "start"})
    writer.write({"type": "step", "step": 1, "interval_end": False})
    assert [e["type"] for e in store.read_metrics(path)[0]] == ["start"]  # the step waits in the buffer
    writer.write({"type": "step", "step": 2, "interval_end": True})
    assert [e.get("step") for e in store.read_metrics(path)[0]] == [None, 1, 2]
    writer.write({"type": "step", "step": 3, "interval_end": False})
    del writer  # dropped (a crash elsewhere): the finalizer writes what is buffered
    gc.collect()
    assert [e.get("step") for e in store.read_metrics(path)[0]] == [None, 1, 2, 3]


# ---- crash mid-epoch -----------------------------------------------------------------------------
def test_events_handed_to_the_sink_survive_an_error_mid_interval(tmp_path):
    def on_event(event):
        if event["type"] == "step" and event["step"] == 5:
            raise RuntimeError("consumer failed")

    sink = runner._event_sink(tmp_path, True, on_event)
    trainer = _trainer(report_every=1000, report_seconds=float("inf"))
    with pytest.raises(RuntimeError, match="consumer failed"):
        for event in trainer.fit():
            sink(event)  # steps 2..40 come in one burst at the end of the epoch
    written, _ = store.read_metrics(tmp_path / store.METRICS)  # the sink is still alive: flushed on the error
    assert [e.get("step") for e in written] == [None, 1, 2, 3, 4, 5]


def test_a_run_that_crashes_mid_epoch_keeps_its_delivered_events(tmp_path, fixture_data_home, monkeypatch):
    from newsclf.config import RunConfig

    monkeypatch.setattr(train_mod, "REPORT_EVERY", 3)
    monkeypatch.setattr(train_mod, "REPORT_SECONDS", float("inf"))
    calls = {"n": 0}
    real_loss = Trainer._loss

    def failing_loss(self, batch):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_loss(self, batch)

    monkeypatch.setattr(Trainer, "_loss", failing_loss)
    cfg = RunConfig(model="bilstm", data_home=str(fixture_data_home), epochs=2, batch_size=16, embed_dim=8,
                    hidden_size=4, max_len=32, vocab_size=300).resolved()
    run_dir = store.create_run_dir(tmp_path, "crash")
    with pytest.raises(RuntimeError, match="illegal memory access"):
        runner.run(cfg, run_dir)
    events, _ = store.read_metrics(run_dir / store.METRICS)
    steps = [e["step"] for e in events if e["type"] == "step"]
    # reported: step 1 alone, then 2-4 and 5-7; step 8 ran but was never reported, step 9 crashed
    assert events[0]["type"] == "start" and steps == [1, 2, 3, 4, 5, 6, 7]
    status = store.read_status(run_dir)
    assert status["state"] == "failed" and status["progress"]["step"] == 7


# ---- stop requests ---------------------------------------------------------------------------
def test_a_stop_request_is_honoured_within_the_stop_interval():
    """No report for a long time (slow steps, long interval): the hot loop still checks every stop_seconds."""
    requested = threading.Event()
    trainer = _trainer(n=2000, delay=0.01, should_stop=requested.is_set, report_every=10_000,
                       report_seconds=float("inf"), stop_seconds=0.1)
    events = trainer.fit()
    assert next(events)["type"] == "start"
    timer = threading.Timer(0.3, requested.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        for _ in events:
            pass
    latency = time.monotonic() - started - 0.3
    assert trainer.state.global_step < 250  # far from the end of the epoch
    assert latency < 5.0  # bounded: stop_seconds plus one step here (generous on a loaded machine)


def test_a_stop_asked_while_handling_an_event_ends_before_the_next_one():
    flag = {"stop": False}
    trainer = _trainer(should_stop=lambda: flag["stop"], report_every=1000, report_seconds=float("inf"))
    seen = []
    with pytest.raises(StopRequested):
        for event in trainer.fit():
            seen.append(event.get("step"))
            if event.get("step") == 3:  # in the middle of a burst of step events
                flag["stop"] = True
    assert seen == [None, 1, 2, 3]


def test_a_stop_asked_at_an_epoch_event_starts_no_new_epoch():
    flag = {"stop": False}
    trainer = _trainer(epochs=3, should_stop=lambda: flag["stop"])
    with pytest.raises(StopRequested):
        for event in trainer.fit():
            if event["type"] == "epoch":
                flag["stop"] = True
    assert trainer.state.epoch == 1 and trainer.state.global_step == 40


# ---- batches -------------------------------------------------------------------------------------
@pytest.mark.parametrize("world,rank", [(1, 0), (2, 1)])
def test_train_batches_equal_the_dataloader_batches(world, rank):
    ids, labels = _data(203)
    ours = batching.TrainBatches(ids, labels, 16, 0, seed=3, world=world, rank=rank, device=torch.device("cpu"))
    loader = batching.train_loader(ids, labels, 16, 0, seed=3, world=world, rank=rank)
    assert len(ours) == len(loader)
    for epoch in (0, 1):
        ours.set_epoch(epoch)
        (loader.sampler if world > 1 else loader.batch_sampler).set_epoch(epoch)
        torch.manual_seed(epoch)
        a = list(ours)
        rng_after_ours = torch.rand(1)
        torch.manual_seed(epoch)
        b = list(loader)
        assert torch.equal(rng_after_ours, torch.rand(1))  # the same draws from the global RNG
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert x.keys() == y.keys()
            for key in x:
                assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), key
                assert x[key].is_contiguous()


def test_compile_buckets_give_few_shapes():
    ids, labels = _data(500)
    batches = batching.TrainBatches(ids, labels, 8, 0, seed=0, world=1, rank=0, device=torch.device("cpu"),
                                    multiple_of=32)
    widths = {b["input_ids"].shape[1] for b in batches}
    assert widths <= {32, 64}  # sequences of 1-39 tokens: two buckets, not one shape per batch


def test_an_empty_sequence_gets_one_padded_position():
    table = batching.PaddedTokens([[], [5, 6]], 0, torch.device("cpu"), labels=np.array([1, 2]))
    batch = table.batch(np.array([0]))
    assert batch["input_ids"].shape == (1, 8) and batch["attention_mask"].sum() == 0


# ---- accuracy unchanged --------------------------------------------------------------------------
# Epoch values of tests/conftest.py's tiny BiLSTM run, recorded BEFORE the loop was reworked for speed
# (one host sync per step, per-step DataLoader collation): the new loop must reproduce them.
PRE_CHANGE_BILSTM_EPOCHS = [(1, 3.0161267627369273, 2.994523828679865, 2 / 44),
                            (2, 2.9950485662980513, 2.986058321866122, 2 / 44)]


def test_the_tiny_bilstm_run_reproduces_the_pre_change_epochs(tiny_runs):
    events, _ = store.read_metrics(tiny_runs["bilstm"] / store.METRICS)
    epochs = [(e["epoch"], e["train_loss"], e["val_loss"], e["val_acc"]) for e in events if e["type"] == "epoch"]
    assert len(epochs) == 2
    for got, want in zip(epochs, PRE_CHANGE_BILSTM_EPOCHS):
        assert got[0] == want[0] and got[3] == pytest.approx(want[3], abs=1e-12)
        assert got[1] == pytest.approx(want[1], rel=1e-6) and got[2] == pytest.approx(want[2], rel=1e-6)


# ---- host lengths (the BiLSTM's packed sequences on CUDA need them without a device sync) ---------
class _LengthSpy(TinyModel):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, input_ids, attention_mask=None):
        host = batching.current_host_lengths(input_ids.shape[0])
        self.seen.append(host is not None and torch.equal(host, attention_mask.sum(1)))
        return super().forward(input_ids, attention_mask)


def test_every_model_call_of_training_evaluation_and_inference_gets_the_host_lengths():
    from newsclf.models.torch_family import torch_predict_proba

    trainer = _trainer()
    spy = _LengthSpy()
    trainer.model = trainer.ddp_model = spy
    trainer.start_phase = lambda index: setattr(trainer, "optimizer", torch.optim.SGD(spy.parameters(), lr=0.1)) or \
        setattr(trainer, "scheduler", torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda s: 1.0))
    list(trainer.fit())
    ids, _ = _data(50, seed=1)
    probs = torch_predict_proba(spy, ids, 0, "cpu", batch_size=16)
    assert len(spy.seen) == 40 + 3 + 4 and all(spy.seen)  # 40 steps, 3 validation and 4 inference batches
    assert batching.current_host_lengths(16) is None  # nothing left behind
    with torch.no_grad():
        x, m = batching.Collator(0)([(ids[7], 0)])["input_ids"], batching.Collator(0)([(ids[7], 0)])["attention_mask"]
        assert np.allclose(probs[7], torch.softmax(spy(x, m).logits, -1)[0].numpy(), atol=1e-6)  # rows in input order


def test_a_table_kept_in_host_memory_still_gives_batches_on_the_device(monkeypatch):
    """A padded table above DEVICE_TABLE_LIMIT stays on the host; every tensor of a batch (labels included)
    must still reach the training device. ("meta" stands in for a GPU here.)"""
    monkeypatch.setattr(batching, "DEVICE_TABLE_LIMIT", 0)
    ids, labels = _data(50)
    batches = batching.TrainBatches(ids, labels, 8, 0, seed=0, world=1, rank=0, device=torch.device("meta"))
    assert batches.table.store == torch.device("cpu")
    seen = list(batches)
    assert len(seen) == 7
    for batch in seen:
        assert {k: v.device.type for k, v in batch.items()} == {"input_ids": "meta", "attention_mask": "meta",
                                                                 "labels": "meta"}
