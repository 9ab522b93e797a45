"""Serial links for tests: two pseudo-terminals joined by socat, like a null-modem cable.

``socat -d -d pty,raw,echo=0 pty,raw,echo=0`` creates two ptys and copies bytes between them;
at its ``-d -d`` log level it prints each ``PTY is /dev/pts/N`` on stderr, then ``starting data
transfer loop`` once both ends are ready. Linux only (tests only: the agent itself has no
socat dependency).

- :func:`pty_pair`: ``async with pty_pair() as (a, b):`` the two ``/dev/pts/N`` paths.
- :class:`PtyLink`: the same, but at stable symlink paths (``<dir>/a``, ``<dir>/b``) and with
  :meth:`PtyLink.unplug` / :meth:`PtyLink.replug`: unplug kills socat, so whoever holds a pty
  open sees it hang up (read returns EOF or EIO, writes fail); replug starts a new socat whose
  fresh ptys appear at the same two paths, as a USB-serial adapter comes back under its
  ``/dev/serial/by-id`` name.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

_PTY_RE = re.compile(r"PTY is (\S+)")
_READY = "starting data transfer loop"
_START_TIMEOUT = 10.0


class _Socat:
    """One socat process: started, its two pty names read from stderr, stderr drained."""

    def __init__(self, *addresses: str) -> None:
        self._addresses = addresses
        self.proc: asyncio.subprocess.Process | None = None
        self.ptys: list[str] = []
        self.log: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, str]:
        self.proc = await asyncio.create_subprocess_exec(
            "socat", "-d", "-d", *self._addresses,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                while True:
                    raw = await self.proc.stderr.readline()
                    if not raw:
                        raise RuntimeError("socat exited: " + " | ".join(self.log))
                    line = raw.decode(errors="replace").rstrip()
                    self.log.append(line)
                    if m := _PTY_RE.search(line):
                        self.ptys.append(m.group(1))
                    if _READY in line:
                        break
        except BaseException:
            await self.stop()
            raise
        # Keep reading stderr so socat never blocks on a full pipe.
        self._drain = asyncio.create_task(self._read_rest(self.proc.stderr))
        return self.ptys[0], self.ptys[1]

    async def _read_rest(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            self.log.append(raw.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """Terminate socat (SIGTERM: it removes its symlinks) and wait for it."""
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
        if self._drain is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None


@contextlib.asynccontextmanager
async def pty_pair() -> AsyncIterator[tuple[str, str]]:
    """Two linked ptys, as their ``/dev/pts/N`` paths; socat is stopped on exit."""
    socat = _Socat("pty,raw,echo=0", "pty,raw,echo=0")
    pair = await socat.start()
    try:
        yield pair
    finally:
        await socat.stop()


class PtyLink:
    """A socat pty pair at stable paths that can be unplugged and plugged back.

    Use as ``async with PtyLink() as link:`` then open ``link.a`` and ``link.b``.

    Args:
        directory: where the ``a`` and ``b`` symlinks go; a fresh temporary folder if None.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ptylink-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.a = str(self.directory / "a")
        self.b = str(self.directory / "b")
        self._socat: _Socat | None = None

    @property
    def plugged(self) -> bool:
        return self._socat is not None

    @property
    def ptys(self) -> tuple[str, str] | None:
        """The current ``/dev/pts/N`` behind ``a`` and ``b``, or None while unplugged."""
        return None if self._socat is None else (self._socat.ptys[0], self._socat.ptys[1])

    async def replug(self) -> None:
        """Start socat (again); ``a`` and ``b`` point at the new ptys once this returns."""
        if self._socat is not None:
            return
        for path in (self.a, self.b):  # left behind if a socat was SIGKILLed
            Path(path).unlink(missing_ok=True)  # noqa: ASYNC240 (a local symlink: instant)
        socat = _Socat(f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}")
        await socat.start()
        self._socat = socat

    async def unplug(self) -> None:
        """Stop socat: both ptys hang up and the two paths disappear until :meth:`replug`."""
        socat, self._socat = self._socat, None
        if socat is not None:
            await socat.stop()

    async def __aenter__(self) -> PtyLink:
        await self.replug()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.unplug()
        if self._tmp is not None:
            self._tmp.cleanup()
