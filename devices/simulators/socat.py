"""``socat`` joining two pseudo-terminals, like a null-modem cable: for ``hallhub simulate``
(devices/simulators/cli.py), the demo's simulated hardware (hub/demo_devices.py) and the
tests' serial links (tests/support/ptys.py).

``socat -d -d pty,raw,echo=0 pty,raw,echo=0`` creates two ptys and copies bytes between them;
at its ``-d -d`` log level it prints each ``PTY is /dev/pts/N`` on stderr, then ``starting data
transfer loop`` once both ends are ready. Linux and macOS.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import deque

__all__ = ["Socat", "SocatError"]

_PTY_RE = re.compile(r"PTY is (\S+)")
_READY = "starting data transfer loop"
_START_TIMEOUT = 10.0
_LOG_LINES = 100


class SocatError(Exception):
    """socat is missing or did not start; the message says why."""


def _die_with_parent() -> None:  # pragma: no cover (runs in the forked child)
    """In the forked child, before exec (Linux): SIGTERM when this process dies, however it
    dies, so a killed parent leaves no socat behind (prctl PR_SET_PDEATHSIG); and a process
    group of its own, so that Ctrl-C in a terminal stops the parent, which then stops its
    cables in order (a socat gone first would look like an unplugged device)."""
    import ctypes
    import os

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    os.setpgrp()


class Socat:
    """One socat process joining ``addresses`` (two ``pty,…`` addresses): started, its two pty
    names read from stderr, stderr drained so socat never blocks on a full pipe.

    Args:
        addresses: socat's two addresses (``pty,raw,echo=0`` with ``,link=PATH`` for a
            symlink).
        die_with_parent: on Linux, socat gets SIGTERM when the thread that started it ends,
            and runs in its own process group (no Ctrl-C from the terminal).
    """

    def __init__(self, *addresses: str, die_with_parent: bool = False) -> None:
        self._addresses = addresses
        self._die_with_parent = die_with_parent and sys.platform == "linux"
        self.proc: asyncio.subprocess.Process | None = None
        self.ptys: list[str] = []
        self.log: deque[str] = deque(maxlen=_LOG_LINES)
        """socat's last lines on stderr."""
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, str]:
        """Start socat; its two ptys (``/dev/pts/N``), in the order of the addresses.

        Raises:
            SocatError: socat is not installed, exited, did not start within 10 s, or did not
                report two ptys (it is stopped then).
        """
        program = shutil.which("socat")
        if program is None:
            raise SocatError("socat not found")
        self.proc = await asyncio.create_subprocess_exec(
            program, "-d", "-d", *self._addresses,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent if self._die_with_parent else None,
        )  # fmt: skip
        stderr = self.proc.stderr
        assert stderr is not None
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                while True:
                    raw = await stderr.readline()
                    if not raw:
                        raise SocatError("socat exited: " + " | ".join(list(self.log)[-3:]))
                    line = raw.decode(errors="replace").rstrip()
                    self.log.append(line)
                    if m := _PTY_RE.search(line):
                        self.ptys.append(m.group(1))
                    if _READY in line:
                        break
        except TimeoutError:
            await self.stop()
            raise SocatError(f"socat did not start within {_START_TIMEOUT:.0f} s") from None
        except BaseException:
            await self.stop()
            raise
        if len(self.ptys) != 2:
            await self.stop()
            raise SocatError("socat did not report two ptys: " + " | ".join(list(self.log)[-3:]))
        self._drain = asyncio.create_task(self._read_rest(stderr))
        return self.ptys[0], self.ptys[1]

    async def _read_rest(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            self.log.append(raw.decode(errors="replace").rstrip())

    async def wait(self) -> None:
        """Return when socat has exited."""
        if self.proc is not None:
            await self.proc.wait()

    @property
    def exited(self) -> bool:
        """socat ended by itself (killed, or its ptys failed)."""
        return self.proc is not None and self.proc.returncode is not None

    async def stop(self) -> None:
        """SIGTERM (socat removes its symlinks), wait; SIGKILL after 5 s."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        drain, self._drain = self._drain, None
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
