"""The SMS gateway adapter (H6): one HTTP call per message, its outcome in three kinds.

``POST {url}/messages`` with the JSON ``{"id": key, "to": phone, "text": text}`` and the
headers ``Authorization: Bearer <api key>`` (when one is set) and ``Idempotency-Key: <key>``.
The gateway accepts each key once; that is what makes a repeated send harmless
(hub/services/notify.py).

| answer | outcome |
|---|---|
| 2xx | ``sent``; the gateway's message id from the response's ``id`` |
| 409 | ``sent``: the gateway already accepted this key (an earlier attempt whose answer was lost) |
| 408, 429, 5xx, timeout, connection error | ``retry`` |
| any other status | ``failed``: the gateway refuses the message itself (bad number, bad auth) |

One ``httpx.AsyncClient`` per gateway object, i.e. per process; :meth:`HttpSmsGateway.aclose`
closes it (``Hub.stop``).
"""

from __future__ import annotations

from typing import Literal, Protocol

import httpx
import msgspec

SendOutcome = Literal["sent", "retry", "failed"]

_RETRY_STATUSES = frozenset({408, 429})
_ERROR_MAX = 200


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one send: ``sent`` (with the gateway's id when it gave one), ``retry``
    (try again later) or ``failed`` (never retry); ``error`` says why for the last two."""

    outcome: SendOutcome
    gateway_id: str | None = None
    error: str | None = None


class SmsGateway(Protocol):
    """Sends one text message; idempotent per ``key``."""

    async def send(self, key: str, to: str, text: str) -> SendResult:
        """Send ``text`` to the mobile number ``to`` (11 digits) under the idempotency ``key``.
        Never raises for a gateway or network failure: the result says what happened."""
        ...


class _Answer(msgspec.Struct):
    id: str | int | None = None


class HttpSmsGateway:
    """The HTTP SMS gateway of the module docstring.

    Args:
        url: the gateway's base URL (``http://sms.example:8080/v1``).
        api_key: sent as a bearer token; empty: no ``Authorization`` header.
        timeout: seconds for the whole call (connect, send, answer).
        transport: an httpx transport, for a proxy or a test; default: a plain connection pool.

    Raises:
        ValueError: the URL is not ``http://`` or ``https://``.
    """

    def __init__(
        self,
        url: str,
        api_key: str = "",
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the SMS gateway URL starts with http:// or https://")
        self.url = url.rstrip("/") + "/messages"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers, timeout=timeout, transport=transport, follow_redirects=False
        )

    async def send(self, key: str, to: str, text: str) -> SendResult:
        try:
            response = await self._client.post(
                self.url,
                content=msgspec.json.encode({"id": key, "to": to, "text": text}),
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            )
        except httpx.TimeoutException:
            return SendResult(outcome="retry", error="timeout")
        except httpx.HTTPError as exc:
            return SendResult(outcome="retry", error=f"{type(exc).__name__}: {exc}"[:_ERROR_MAX])
        status = response.status_code
        if 200 <= status < 300 or status == 409:
            return SendResult(outcome="sent", gateway_id=_gateway_id(response.content))
        error = f"http {status}: {response.text.strip()}"[:_ERROR_MAX]
        if status >= 500 or status in _RETRY_STATUSES:
            return SendResult(outcome="retry", error=error)
        return SendResult(outcome="failed", error=error)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _gateway_id(content: bytes) -> str | None:
    # The id is a convenience for operators (to find a message in the gateway's records);
    # an answer without one, or that is not JSON, still means "accepted".
    try:
        answer = msgspec.json.decode(content, type=_Answer)
    except msgspec.DecodeError:
        return None
    return None if answer.id is None else str(answer.id)
