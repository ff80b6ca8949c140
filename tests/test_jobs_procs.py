"""Process identity and trees (newsclf.jobs.procs); the package imports neither torch nor streamlit."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from newsclf import jobs
from newsclf.jobs import procs
from tests.helpers.jobs import PROJECT_ROOT, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def test_import_pulls_neither_torch_nor_streamlit():
    code = ("import sys, newsclf.jobs, newsclf.commands.jobs, newsclf.devices, newsclf.jobs.supervisor; "
            "bad = [m for m in ('torch', 'streamlit') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT, timeout=30)


def test_pid_reuse_guard():
    me = jobs.process_identity(os.getpid())
    assert jobs.process_alive(me)
    assert not jobs.process_alive({**me, "start": me["start"] + 1})  # same pid, another process
    assert not jobs.process_alive({**me, "boot": "another-boot"})  # recorded before a reboot
    assert not jobs.process_alive(None) and not jobs.process_alive({"pid": 0})
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = jobs.process_identity(zombie.pid)
    wait_for(lambda: procs.proc_stat(zombie.pid) is None or procs.proc_stat(zombie.pid)[0] == "Z", what="exit")
    assert not jobs.process_alive(ident)  # a zombie is dead (and gets reaped)
    zombie.wait()

