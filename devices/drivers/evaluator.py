"""What the agent asks of an evaluation pad (评价器, D4/O9), wired or Bluetooth LE.

:class:`RatingPrompt` is one prompt as the agent knows it (from the hub's ``rating_requested``);
:class:`~devices.drivers.ble_evaluator.GradeResult` is how it ended, for both links.
:class:`Evaluator` is the interface of both drivers
(:class:`~devices.drivers.evaluator_serial.SerialEvaluator`,
:class:`~devices.drivers.ble_pad.BlePad`), so the agent does not care which link a pad uses.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from devices.drivers.ble_evaluator import GradeResult
from devices.drivers.link import Driver

__all__ = ["Evaluator", "GradeResult", "RatingPrompt", "fit_text"]


class RatingPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """One prompt to show: ``request_id`` (u32, chosen by the agent, echoed by the pad) links
    the answer; the strings are display text only (the hub links the rating by ticket)."""

    request_id: int
    window_number: int
    timeout_s: int
    staff_name: str = ""
    staff_no: str = ""
    ticket_number: str = ""


def fit_text(text: str, limit: int, encoding: str, errors: str = "strict") -> str:
    """``text`` cut to at most ``limit`` bytes in ``encoding``, at a character boundary: the
    strings of a prompt are display text, and a long name must not cost the citizen the
    prompt. A character that does not encode (with ``errors``) is left out."""
    out, used = [], 0
    for ch in text:
        try:
            size = len(ch.encode(encoding, errors))
        except UnicodeEncodeError:
            continue
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out)


class Evaluator(Driver, Protocol):
    """A pad the supervisor keeps connected and the agent prompts."""

    grace: float

    async def prompt(self, prompt: RatingPrompt) -> GradeResult:
        """Show ``prompt`` and wait for the citizen (``timeout_s`` plus ``grace``).

        Returns:
            The grade, or unrated with its cause, once the prompt was shown.

        Raises:
            DeviceOffline, DeviceTimeout, DeviceRefused, EncodeError: the prompt was not shown.
        """
        ...
