"""Serial links for tests: two pseudo-terminals joined by socat, like a null-modem cable
(:class:`devices.simulators.socat.Socat`, which ``hallhub simulate`` runs too). Linux only
(tests and simulators only: the agent itself has no socat dependency).

- :func:`pty_pair`: ``async with pty_pair() as (a, b):`` the two ``/dev/pts/N`` paths.
- :class:`PtyLink`: the same, but at stable symlink paths (``<dir>/a``, ``<dir>/b``) and with
  :meth:`PtyLink.unplug` / :meth:`PtyLink.replug`: unplug kills socat, so whoever holds a pty
  open sees it hang up (read returns EOF or EIO, writes fail); replug starts a new socat whose
  fresh ptys appear at the same two paths, as a USB-serial adapter comes back under its
  ``/dev/serial/by-id`` name.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

from devices.simulators.socat import Socat


@contextlib.asynccontextmanager
async def pty_pair() -> AsyncIterator[tuple[str, str]]:
    """Two linked ptys, as their ``/dev/pts/N`` paths; socat is stopped on exit."""
    socat = Socat("pty,raw,echo=0", "pty,raw,echo=0")
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
        self._socat: Socat | None = None

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
        socat = Socat(f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}")
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
