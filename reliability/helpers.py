"""Small tools shared by the reliability tests."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from langchain_core.outputs import Generation

LLM = "model=reliability-1"


def answer(text: str) -> list[Generation]:
    return [Generation(text=text)]


def value_for(prompt: str) -> list[Generation]:
    """The one answer every writer stores for `prompt` (so races cannot differ)."""
    return answer(f"answer to {prompt}")


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.5
) -> float:
    """Poll `condition` until true; return seconds waited. Fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - start


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def sigkill(pid: int) -> None:
    """SIGKILL `pid` (a process this suite started) and wait until it is gone."""
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 60, f"pid {pid} to die", every=0.05)


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """Freeze `pid` with SIGSTOP for the block: it accepts connections, answers none."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spread(seconds: list[float]) -> str:
    """`seconds` as "median x s, max y s"."""
    if not seconds:
        return "no calls"
    return f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"
