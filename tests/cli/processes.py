"""Running the CLI as a real process tree in tests: started in its own process group (so a test can send
SIGINT to the group, as a terminal's Ctrl-C does), every process it starts marked through an environment
variable, and the survivors found afterwards by that mark in /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-c", "from cli.app import main; main()"]
CLEAN = ("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_", "PREFECT_")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any hub or Prefect setting, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(CLEAN)}, **extra}


class CliProcess:
    """`journeyhub …` running in the background; its output collected line by line."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]) -> None:
        self.mark = uuid.uuid4().hex
        self.process = subprocess.Popen([*CLI, *args], cwd=cwd, env={**env, "JOURNEYHUB_TEST_MARK": self.mark},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.process.poll() is None, f"exited ({self.process.returncode}) before {what}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{self.output}"
            time.sleep(0.1)

    def wait_for_line(self, text: str, timeout: float = 120) -> None:
        self.wait_for(lambda: any(text in line for line in self.stdout), timeout, repr(text))

    def children(self) -> list[int]:
        return marked_processes(self.mark, exclude=self.process.pid)

    def interrupt(self, signum: int, *, group: bool) -> None:
        """The signal to the CLI alone (`kill`), or to its whole process group (a terminal's Ctrl-C)."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    @property
    def output(self) -> str:
        return "".join(self.stdout) + "\n--- stderr\n" + "".join(self.stderr)

    def kill(self) -> None:
        """Test cleanup: nothing of this run may outlive the test, whatever happened."""
        for pid in [self.process.pid, *marked_processes(self.mark)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def marked_processes(mark: str, exclude: int | None = None) -> list[int]:
    """Live processes (zombies do not count) whose environment carries `JOURNEYHUB_TEST_MARK=mark`."""
    found = []
    needle = f"JOURNEYHUB_TEST_MARK={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            found.append(int(entry.name))
    return found


def survivors(mark: str, timeout: float = 5) -> list[int]:
    """The marked processes still alive `timeout` seconds after the CLI exited (none, when it stopped well)."""
    deadline = time.monotonic() + timeout
    while (alive := marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive
