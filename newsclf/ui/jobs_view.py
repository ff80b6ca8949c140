"""The live job panel: every job's state, progress, ETA, curves, log tail and Cancel.

Job state lives only in the run directories (newsclf.jobs reads it); the panel is an
`st.fragment(run_every=...)` that polls those files while any job is queued or running and
asks for one full rerun (which re-creates it without a timer) once they are all terminal.
"""
from __future__ import annotations

import re
import time
from typing import Any

import pandas as pd
import streamlit as st

from newsclf import jobs, plots, store
from newsclf.config import ConfigError
from newsclf.errors import UserError
from newsclf.plots.base import neutralise_bidi
from newsclf.ui.cache import load_metrics, runs_dir
from newsclf.ui.frame import BLANK, plain

POLL_S = 1.5
ACTIVE = ("queued", "running")
_STATE_ICON = {"queued": ":material/hourglass_empty:", "running": ":material/sync:", "finished": ":material/check_circle:", "failed": ":material/cancel:", "cancelled": ":material/block:", "unknown": ":material/help:",
               "damaged": ":material/report:"}


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_log(text: str) -> str:
    """A log as plain lines: ANSI escape sequences removed, a carriage-return redraw (progress
    bars) reduced to its last state, other control characters and bidi controls dropped."""
    lines = []
    for line in _ANSI.sub("", text or "").split("\n"):
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        lines.append(neutralise_bidi(_CONTROL.sub("", line.replace("\t", "    "))))
    return "\n".join(lines)


def list_jobs_safe() -> list[jobs.JobInfo]:
    try:
        return jobs.list_jobs(runs_dir())
    except (OSError, ValueError) as exc:
        st.warning(f"Could not read the job queue: {exc}")
        return []


def queue_summary(infos: list[jobs.JobInfo]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.state] = counts.get(info.state, 0) + 1
    return counts


def render_queue_glance(limit: int = 5) -> None:
    """Home's compact view: counts per state and the active jobs."""
    infos = list_jobs_safe()
    if not infos:
        st.caption("No jobs yet.")
        return
    counts = queue_summary(infos)
    st.markdown(" · ".join(f"{_STATE_ICON.get(k, '')} {plain(k)}: **{v}**" for k, v in sorted(counts.items())))
    rows = [{"job": i.id, "model": i.model, "state": i.state, "progress": _percent(i.progress.get("percent")),
             "queue position": str(i.queue_position) if i.queue_position else BLANK} for i in infos[:limit]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _percent(value: Any) -> str:
    return f"{value:.0f}%" if isinstance(value, (int, float)) else BLANK


def _fmt_eta(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return BLANK
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60:02d}s"


def _render_job(info: jobs.JobInfo, expanded: bool) -> None:
    icon = _STATE_ICON.get(info.state, "")
    # job ids are run ids (letters, digits, ".", "_", "-": nothing markdown acts on mid-line)
    with st.expander(f"{icon} {info.id} — {plain(info.model)} — {info.state}", expanded=expanded):
        prog = info.progress or {}
        percent = float(prog.get("percent") or (100.0 if info.state == "finished" else 0.0))
        evaluating = info.state == "running" and prog.get("stage") == "evaluating"
        if evaluating:
            ev = prog.get("eval") or {}
            done, total = int(ev.get("overall_done") or 0), int(ev.get("overall_total") or 0)
            st.progress(min(done / total, 1.0) if total else 0.0,
                        text=f"Training done · evaluating {plain(ev.get('split', ''))}: "
                             f"{ev.get('done', 0):,} of {ev.get('total', 0):,} documents")
        else:
            st.progress(min(max(percent / 100.0, 0.0), 1.0), text=f"{percent:.0f}%")
        cols = st.columns(4)
        cols[0].metric("State", "evaluating" if evaluating else info.state)
        cols[1].metric("ETA", _fmt_eta(prog.get("eta_s")) if info.state == "running" else BLANK)
        last = prog.get("last_epoch") or {}
        cols[2].metric("Epoch", str(prog.get("epoch") or last.get("epoch") or BLANK))
        val_acc = last.get("val_acc")
        cols[3].metric("Val acc", f"{val_acc:.3f}" if isinstance(val_acc, (int, float)) else BLANK)
        if info.queue_position:
            st.caption(f"Position {info.queue_position} in the queue ({info.slot} slot).")
        if info.reason and info.state == "failed":
            st.error(f"Reason: {plain(info.reason)}")
        elif info.reason and info.state == "cancelled":
            st.caption(f"Reason: {plain(info.reason)}")
        events = load_metrics(info.path)
        if events:
            st.plotly_chart(plots.plot_live_curves(events), width="stretch", key=f"live-{info.id}")
        try:
            tail = clean_log(jobs.tail_log(info.id, 15, runs_dir())) or "(no log yet)"
        except store.RunNotFoundError as exc:  # e.g. a train.log that is a link: refused, and said so
            tail = f"(log not shown: {exc})"
        except OSError:
            tail = "(no log yet)"
        st.code(tail, language=None, wrap_lines=True)
        if info.state in ("failed", "cancelled"):
            _retry_buttons(info)
        if not info.terminal:
            if info.cancel_requested:
                st.caption("Cancel requested; the job stops at the next step.")
            elif st.button("Cancel", key=f"cancel-{info.id}", type="secondary"):
                try:
                    jobs.cancel(info.id, runs_dir())
                    st.toast(f"Cancel requested for {info.id}")
                except (store.RunNotFoundError, OSError, ValueError) as exc:
                    st.error(f"Could not cancel: {exc}")


def _retry_buttons(info: jobs.JobInfo) -> None:
    """Resume from last/ when the run has one, else restart with the same config (a new run); clone."""
    c1, c2 = st.columns(2)
    can_resume = (info.path / store.LAST).is_dir()
    label = "Resume from the last checkpoint" if can_resume else "Restart with the same config"
    if c1.button(label, key=f"retry-{info.id}", icon=":material/replay:"):
        try:
            if can_resume:
                new = jobs.resume(info.id, runs_dir())
            else:
                new = jobs.submit(_same_config(info), runs_dir(), gpus=info.gpus or None)
        except (jobs.JobError, ConfigError, UserError, store.RunNotFoundError, OSError, ValueError) as exc:
            st.error(f"Could not {'resume' if can_resume else 'restart'}: {plain(exc)}")
        else:
            st.toast(f"{'Resumed' if can_resume else 'Restarted as'} {new.id}")
            st.rerun(scope="app")
    if c2.button("Clone config into the form", key=f"clone-{info.id}", icon=":material/content_copy:"):
        config = files_config(info)
        if config:
            st.session_state["train.clone"] = config
            st.session_state["train.clone_n"] = int(st.session_state.get("train.clone_n", 0)) + 1
            st.rerun(scope="app")


def files_config(info: jobs.JobInfo) -> dict[str, Any]:
    from newsclf.prepare import stored_config

    try:
        return stored_config(info.path).to_dict()
    except (UserError, OSError):
        return {}


def _same_config(info: jobs.JobInfo):
    """The run's validated config, with the installation's own data home (never the one a run names)."""
    import dataclasses

    from newsclf.prepare import stored_config

    return dataclasses.replace(stored_config(info.path), data_home="")


def _toast_transitions(infos: list[jobs.JobInfo]) -> None:
    """A toast when a job this session saw queued or running has finished, failed or been cancelled."""
    seen = st.session_state.setdefault("jobs.last_states", {})
    for info in infos:
        before = seen.get(info.id)
        if before in ACTIVE and info.terminal:
            icon = {"finished": ":material/check_circle:", "failed": ":material/error:"}.get(info.state, ":material/block:")
            st.toast(f"Job {info.id} {info.state}", icon=icon)
        seen[info.id] = info.state


def _panel_body(limit: int, was_polling: bool) -> None:
    infos = list_jobs_safe()
    _toast_transitions(infos)
    if not infos:
        st.info("No jobs yet: fill in the form and press **Start**.")
    for i, info in enumerate(infos[:limit]):
        _render_job(info, expanded=i < 3 or not info.terminal)
    if len(infos) > limit:
        st.caption(f"{len(infos) - limit} older jobs not shown.")
    active = any(i.state in ACTIVE for i in infos)
    st.caption(f"Updated {time.strftime('%H:%M:%S')}" + (" · refreshing live" if active else ""))
    if was_polling and not active:
        st.rerun(scope="app")  # all terminal: rebuild the panel without a timer


def render_jobs_panel(limit: int = 10) -> None:
    """The live panel; polls every POLL_S seconds only while some job is queued or running."""
    try:
        active = any(i.state in ACTIVE for i in jobs.list_jobs(runs_dir(), reconcile=False))
    except (OSError, ValueError):
        active = False
    polling = POLL_S if active else None

    @st.fragment(run_every=polling)
    def panel() -> None:
        _panel_body(limit, was_polling=polling is not None)

    panel()
