"""GPU discovery (newsclf.devices): environment precedence, CUDA's id-list rules, no driver."""
from __future__ import annotations

import pytest

from newsclf import devices


def test_split_ids_stops_where_cuda_stops():
    assert devices.split_ids("0, 1,,2") == ["0", "1", "2"]
    assert devices.split_ids("0,-1,1") == ["0"] and devices.split_ids("none") == [] and devices.split_ids("") == []


def test_visible_gpus_precedence(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv(devices.ENV_GPUS, "1")
    assert devices.visible_gpus() == ["1"]
    monkeypatch.delenv(devices.ENV_GPUS)
    assert devices.visible_gpus() == ["2", "3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(devices, "nvidia_smi_gpus", lambda: (("0", "GPU 0: Test"),))
    assert devices.visible_gpus() == ["0"]


def test_no_driver_means_no_gpu(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    devices.nvidia_smi_gpus.cache_clear()
    try:
        assert devices.nvidia_smi_gpus() == ()
    finally:
        devices.nvidia_smi_gpus.cache_clear()
