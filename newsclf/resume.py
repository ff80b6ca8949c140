"""The last/ checkpoint for `--resume`, without pickle.

Tensors (model weights, optimizer moments, RNG states) go to safetensors; scalars and
optimizer hyper-parameters to JSON. Restoring all of them makes a resumed run end exactly
where an uninterrupted one would (on the same device).
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

MODEL = "model.safetensors"
OPTIM = "optimizer.safetensors"
STATE = "state.json"


def save_last(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              scheduler_step: int, state: dict[str, Any]) -> None:
    """Write last/ whole through store.swap_in (a crash never leaves a half checkpoint, nor a blocking leftover)."""
    from newsclf.store import swap_in

    swap_in(lambda tmp: _write_last(tmp, model, optimizer, scheduler_step, state), Path(directory))


def _write_last(tmp: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler_step: int, state: dict[str, Any]) -> None:
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(_dedupe(weights), str(tmp / MODEL))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"torch_cuda_{i}"] = s
    save_file({**opt_tensors, **{f"rng.{k}": v for k, v in rng.items()}}, str(tmp / OPTIM))
    np_state = np.random.get_state()
    meta = {**state, "scheduler_step": scheduler_step, "optimizer": opt_meta,
            "python_random": _to_json(random.getstate()),
            "numpy_random": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    (tmp / STATE).write_text(json.dumps(meta), encoding="utf-8")


def load_state(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / STATE).read_text(encoding="utf-8"))


def load_model_weights(directory: Path, model: torch.nn.Module) -> None:
    weights = load_file(str(Path(directory) / MODEL), device="cpu")
    model.load_state_dict(weights, strict=False)
    missing = set(model.state_dict()) - set(weights)
    tied = {k for k in missing if _is_tied(model, k, weights)}
    if missing - tied:
        raise ValueError(f"last/ checkpoint lacks weights: {sorted(missing - tied)[:3]}")


def restore_optimizer(directory: Path, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """Moments, step counts and group hyper-parameters of the phase that was running."""
    tensors = load_file(str(Path(directory) / OPTIM), device="cpu")
    _unflatten_optimizer(optimizer, tensors, meta["optimizer"])


def restore_rng(directory: Path, meta: dict[str, Any]) -> None:
    """torch (CPU and CUDA), numpy and Python RNG states as they were when last/ was written.

    Needed even when a new phase starts on resume: dropout draws from the torch RNG.
    """
    tensors = load_file(str(Path(directory) / OPTIM), device="cpu")
    torch.set_rng_state(tensors["rng.torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.torch_cuda_")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    random.setstate(_from_json(meta["python_random"]))
    kind, keys, pos, has_gauss, cached = meta["numpy_random"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# ---- helpers ---------------------------------------------------------------------------------
def _dedupe(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied embeddings): keep the first name of each storage."""
    seen: dict[tuple[int, int], str] = {}
    out = {}
    for name, tensor in weights.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen and tensor.numel() > 0:
            continue
        seen[key] = name
        out[name] = tensor.clone() if tensor.numel() else tensor
    return out


def _is_tied(model: torch.nn.Module, name: str, weights: dict[str, torch.Tensor]) -> bool:
    target = model.state_dict()[name]
    return any(v.data_ptr() == target.data_ptr() for k, v in model.state_dict().items() if k in weights)


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_from_json(v) for v in value["__tuple__"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
