"""Clean stops: Ctrl-C (SIGINT) or SIGTERM at any point of any command.

The signal becomes `Interrupted` in the main thread, so the work unwinds the ordinary way: open database
transactions roll back (every page committed before stays, with its cursor), Prefect marks its runs
crashed. Then `finish` marks this process's unfinished run rows failed, terminates every child process
(the emulators, the Prefect servers, the mapping worker — whatever this process started, found through
/proc), prints one line saying what was stopped and what is safe, and exits 130 (SIGINT) or 143 (SIGTERM)
without waiting for threads still blocked on the network. If unwinding takes longer than `GRACE` seconds
(a Prefect client retrying a server that is already gone), or a second signal comes, it finishes at once.

SIGINT is blocked in every thread and taken by one watcher thread, which wakes the main thread (SIGUSR1).
A blocked signal stays blocked in the processes this one starts, so a terminal's Ctrl-C — sent to the
whole process group — reaches only this process: its children do not die half-way printing tracebacks,
they are stopped in order (a Prefect server only after the runs it records were marked).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from cli.context import errors

GRACE = 5.0
NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, so no `except Exception` in the work swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_state = {"command": "journeyhub", "safe": ""}
_received: list[int] = []
_finishing = threading.Event()
_lock = threading.Lock()
_finish_lock = threading.Lock()


def on_stop(command: str, safe: str) -> None:
    """What the stop line says for the current command: what was stopped, and what is safe. Long commands
    call it before their work starts."""
    _state.update(command=command, safe=safe)
    if threading.current_thread() is threading.main_thread() and not _state.get("tracker"):
        # multiprocessing's resource tracker unblocks SIGINT in the thread that first starts it (CPython
        # bpo-33613's mask is removed, not restored): start it now, then block SIGINT again, so the pools
        # started later (the mapping worker, the tagger's) inherit the blocked signal too. It is told not to
        # warn: after a stop it removes the semaphores of the stopped pools, as it should, in silence.
        from multiprocessing import resource_tracker

        quiet = "ignore::UserWarning:multiprocessing.resource_tracker"  # the tracker's -W option
        sys.warnoptions.append(quiet)
        try:
            resource_tracker.ensure_running()
        finally:
            sys.warnoptions.remove(quiet)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        _state["tracker"] = "started"


def install() -> None:
    """Route SIGINT and SIGTERM into `Interrupted` in the main thread (call it first, from the main thread,
    before any thread or child process starts)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)  # in case something unblocks SIGINT in the main thread after all
    signal.signal(signal.SIGUSR1, _on_wake)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    threading.Thread(target=_watch_sigint, name="sigint-watcher", daemon=True).start()


def _first(signum: int) -> bool:
    """Records a signal; True for the first one (which starts the deadline)."""
    with _lock:
        _received.append(signum)
        first = len(_received) == 1
    if first:
        threading.Thread(target=_deadline, args=(signum,), name="stop-deadline", daemon=True).start()
    return first


def _on_signal(signum: int, frame: object) -> None:
    if _finishing.is_set():
        return
    if not _first(signum):
        finish(signum)
    raise Interrupted(signum)


def _on_wake(signum: int, frame: object) -> None:
    if _received and not _finishing.is_set():
        raise Interrupted(_received[0])


def _watch_sigint() -> None:
    while True:
        signal.sigwait({signal.SIGINT})
        if _finishing.is_set():
            continue
        if not _first(signal.SIGINT):
            finish(signal.SIGINT)  # a second Ctrl-C: no more waiting for the main thread
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)  # type: ignore[arg-type]


def _deadline(signum: int) -> None:
    time.sleep(GRACE)
    finish(signum)


def _close_runs(signum: int, timeout: float = 3.0) -> None:
    """Mark the run rows this process left open failed; given up after `timeout` seconds (when the work
    that holds the database is what does not stop)."""
    from journeyhub.runs import close_unfinished

    def close() -> None:
        with contextlib.suppress(Exception):  # the database may be what failed: the stop goes on
            close_unfinished(f"interrupted ({NAMES.get(signum, signum)})")

    closing = threading.Thread(target=close, name="close-runs", daemon=True)
    closing.start()
    closing.join(timeout)


def finish(signum: int) -> NoReturn:
    """Mark unfinished runs, terminate the children, say what stopped, exit 128 + signal number."""
    _finishing.set()
    with _finish_lock:  # whichever thread comes first finishes; the others wait here until the process exits
        _close_runs(signum)
        terminate_children()
        safe = f"; {_state['safe']}" if _state["safe"] else ""
        errors.print(f"stopped: {_state['command']} ({NAMES.get(signum, f'signal {signum}')}){safe}",
                     soft_wrap=True, highlight=False, markup=False)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(128 + signum)


# ---------------------------------------------------------------------------------------------- children
def _stat(pid: str) -> tuple[int, str] | None:
    """(parent pid, state) of a process from /proc/<pid>/stat (None when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and brackets
    return int(fields[1]), fields[0]


def descendants(root: int | None = None) -> list[int]:
    """Every live process below `root` (default: this one), children first."""
    root = os.getpid() if root is None else root
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit() and (stat := _stat(entry.name)) is not None and stat[1] != "Z":
            parents.setdefault(stat[0], []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in parents.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def end_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a child this process started: SIGTERM, SIGKILL after `timeout` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def alive(pid: int) -> bool:
    stat = _stat(str(pid))
    return stat is not None and stat[1] != "Z"


def ignores_sigterm(pid: int) -> bool:
    """True for a process that ignores SIGTERM (multiprocessing's resource tracker: it exits by itself once
    its parent is gone, after cleaning up what the parent left)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), "0")
    return bool(int(ignored, 16) & (1 << (signal.SIGTERM - 1)))


def terminate_children(timeout: float = 5.0) -> None:
    """SIGTERM to every descendant, SIGKILL to those still there after `timeout` seconds (processes that
    ignore SIGTERM are left to end with this one)."""
    pids = [pid for pid in descendants() if not ignores_sigterm(pid)]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        for pid in pids:  # reap our own children so they do not linger as zombies
            with contextlib.suppress(OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
