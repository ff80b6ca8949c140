"""GPU discovery shared by the job scheduler and the dashboard (never imports torch).

The GPUs jobs may use come from $NEWSCLF_GPUS, else $CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`;
names for display come from `nvidia-smi -L` only.
"""
from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache

ENV_GPUS = "NEWSCLF_GPUS"  # comma-separated GPU ids; "" or "none" = no GPU


def split_ids(text: str) -> list[str]:
    """GPU ids from a CUDA_VISIBLE_DEVICES-style list; stops at "-1"/"none" as CUDA does."""
    ids = []
    for part in text.split(","):
        part = part.strip()
        if part in ("-1", "none", "None"):
            break  # CUDA hides every device after an invalid id
        if part:
            ids.append(part)
    return ids


@lru_cache(maxsize=1)
def nvidia_smi_gpus() -> tuple[tuple[str, str], ...]:
    """((id, "GPU 0: NVIDIA H100 ..."), ...) from `nvidia-smi -L`; empty without a driver (never torch)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    if out.returncode != 0:
        return ()
    return tuple((m.group(1), m.group(0).split(" (UUID")[0].strip())
                 for m in re.finditer(r"^GPU (\d+):.*$", out.stdout, re.M))


def visible_gpus() -> list[str]:
    """GPU ids jobs may use: $NEWSCLF_GPUS > $CUDA_VISIBLE_DEVICES > `nvidia-smi -L` (never torch)."""
    for name in (ENV_GPUS, "CUDA_VISIBLE_DEVICES"):
        if name in os.environ:
            return split_ids(os.environ[name])
    return [gpu_id for gpu_id, _ in nvidia_smi_gpus()]
