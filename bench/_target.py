"""What the fan-out harness drives: a :class:`Target` (one server under test), and helpers
for child processes (:class:`Lines`, :class:`BenchError`). The reference target lives in
fanout.py, the hub target in _hub.py."""

from __future__ import annotations

import abc
import queue
import threading
from typing import IO


class BenchError(Exception):
    """The benchmark could not complete a phase (a process died, a deadline passed)."""


class Target(abc.ABC):
    """One server under test, as the harness drives it.

    Attributes:
        name: the figure prefix (``ref``, ``hub``).
        url: the websocket URL clients connect to.
        pid: the process whose CPU time and RSS are measured.
        hello: the text frame each client sends once connected (None: nothing).
        resume_hello: the hello of a reconnecting client that has seen a position, as a
            ``string.Template`` with ``$epoch`` and ``$seq`` (None: ``hello`` again).
        await_welcome: a client counts as connected once the server's first frame after the
            hello has arrived (the hub's ``welcome``: subscribed again), not at the handshake.
    """

    name: str
    url: str
    pid: int
    hello: str | None = None
    resume_hello: str | None = None
    await_welcome: bool = False

    @abc.abstractmethod
    def publish(self, messages: int, rate: float, size: int) -> None:
        """Publish ``messages`` frames of about ``size`` bytes at ``rate`` per second to all
        connected clients; return when the last one has been sent. Each frame carries its
        publish time as ``t`` (``time.time_ns()``), at the top level or in ``data``, or
        else as ``ts`` (seconds)."""

    @abc.abstractmethod
    def restart(self) -> int:
        """Stop the server process and start it again on the same port and settings; return
        ``time.time_ns()`` of the moment it accepts connections again. The reference is
        killed (SIGKILL); the hub is restarted as an operator would, with SIGTERM (its peers
        are closed with 1012)."""

    def accepted_at(self, count: int, within: float) -> int | None:
        """``time.time_ns()`` at which the server, since its last (re)start, had accepted
        ``count`` connections; None if this target cannot tell."""
        return None

    def details(self) -> dict[str, tuple[float, str]]:
        """Figures only this target can give (name → (value, unit)), read after the
        restart phase; printed after the common ones, never compared."""
        return {}

    @abc.abstractmethod
    def stop(self) -> None:
        """End the server process. Never hangs."""


class Lines:
    """A child's stdout, read by a thread so that every wait has a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.strip())
        self._queue.put(None)

    def next(self, within: float, what: str) -> str:
        try:
            line = self._queue.get(timeout=within)
        except queue.Empty:
            raise BenchError(f"no {what} within {within:.0f} s") from None
        if line is None:
            raise BenchError(f"the server exited while waiting for {what}")
        return line
