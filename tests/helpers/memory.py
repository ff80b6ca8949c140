"""Measuring how much memory newsclf takes for one input, in a fresh subprocess (peak RSS growth).

`peak_growth(setup, action)` runs `setup` (imports, paths), records the peak resident set size
(getrusage's ru_maxrss), runs `action` (an expression or statement; an exception is a refusal, as
newsclf is expected to refuse), and returns (peak growth in MB, what happened). The baseline is
taken after the imports, so the figure is the memory the input cost, not the interpreter's.

Bombs are built by streaming (`write_bomb_member`), so making a 1 GB-inflating file costs the test
no memory either.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import resource, sys
{setup}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    {action}
    outcome = "accepted"
except BaseException as exc:
    outcome = f"refused {{type(exc).__name__}}: {{str(exc).splitlines()[0][:160] if str(exc) else ''}}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT", (peak - base) / 1024.0, outcome)
"""


def peak_growth(setup: str, action: str, timeout: float = 300) -> tuple[float, str]:
    code = SCRIPT.format(setup=textwrap.dedent(setup).strip().replace("\n", "\n"), action=action)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, proc.stdout + proc.stderr
    _, growth, outcome = line.split(" ", 2)
    return float(growth), outcome


def write_bomb_member(zf: zipfile.ZipFile, name: str, header: bytes, total: int, fill: bytes = b"\0") -> None:
    """A deflated zip member of `header` then `total` bytes of `fill`, written in chunks."""
    chunk = fill * (1 << 20)
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED  # a ZipInfo is stored unless told otherwise
    with zf.open(info, "w", force_zip64=True) as fh:
        fh.write(header)
        left = total
        while left > 0:
            fh.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


def npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The .npy v1.0 header of an array of `dtype` and `shape` (what np.save writes before the data)."""
    import io

    import numpy as np
    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic included
