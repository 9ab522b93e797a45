"""The agent's ticket printer (D1, Q7): ``print_ticket`` in, ``print_done`` / ``print_failed``
and ``printer_status`` out.

- Jobs are printed one at a time, in the order they came. A job is remembered once handled
  (printed or failed), so a ``print_ticket`` delivered again (a replay after a reconnect) is
  not printed twice; ``print_done`` / ``print_failed`` carry the key ``print:<job>``, which the
  hub accepts once whichever way the job ended.
- ``printer_status`` is sent after every connect (the first status) and on every change after
  that; while the printer is unreachable the supervisor's ``device_state`` says so instead.
- Header and footer: the ticket's own when the hub sent them, else the printer's configured
  ones (agent.toml, or ``configure`` from the hub, D6).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from devices.agent.config import AgentConfig, PrinterConfig
from devices.agent.runner import BackoffFactory, DeviceRunner, DeviceSettings, Recent
from devices.codecs.escpos import PrintedTicket, PrinterStatus
from devices.drivers.link import HardwareInfo
from devices.drivers.printer import PrinterDriver
from devices.transport.serial import SerialPort
from realtime.messages import Event

__all__ = ["PrintJob", "PrinterRunner"]


class PrintJob(msgspec.Struct, frozen=True, kw_only=True):
    """A ``print_ticket`` event's data: its ``ticket`` has the fields of the paper ticket."""

    job: str
    ticket_id: int
    token: str = ""
    ticket: PrintedTicket


class PrinterRunner(DeviceRunner):
    """A printer device: its peer, supervisor and print queue."""

    part = "printer"

    def __init__(
        self, agent: AgentConfig, config: PrinterConfig, *, backoff: BackoffFactory | None = None
    ) -> None:
        super().__init__(agent, config, backoff=backoff)
        self.header = config.header
        self.footer = list(config.footer)
        self.driver = PrinterDriver(
            SerialPort(config.port, baudrate=config.baudrate),
            name=self.name,
            poll_seconds=config.poll_seconds,
            asb=config.asb,
            print_seconds=config.print_seconds,
            width_chars=config.width_chars,
            model=config.model,
            on_status=self._on_status,
        )
        self.supervise(self.driver)
        self.jobs: asyncio.Queue[PrintJob] = asyncio.Queue()
        self._handled = Recent()
        self._queued: set[str] = set()
        self._reported: PrinterStatus | None = None
        self._connected = False

    def workers(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._print_jobs(), name=f"print-{self.name}")]

    async def apply(self, settings: DeviceSettings) -> None:
        if settings.poll_seconds is not None:
            self.driver.poll_seconds = settings.poll_seconds
        if settings.header is not None:
            self.header = settings.header
        if settings.footer is not None:
            self.footer = list(settings.footer)
        if settings.width_chars is not None:
            self.driver.width_chars = settings.width_chars

    async def on_topic_event(self, event: Event) -> None:
        if event.topic != self.device_topic or event.name != "print_ticket":
            return
        job = msgspec.convert(event.data, PrintJob)
        if job.job in self._handled or job.job in self._queued:
            self.log.info("print_job_repeated", job=job.job)
            return
        self._queued.add(job.job)
        self.jobs.put_nowait(job)

    async def _print_jobs(self) -> None:
        while True:
            job = await self.jobs.get()
            try:
                await self._print(job)
            except Exception:
                self.log.exception("print_job_failed", job=job.job)
            finally:
                self._queued.discard(job.job)

    async def _print(self, job: PrintJob) -> None:
        fields = job.ticket
        ticket = msgspec.structs.replace(
            fields, header=fields.header or self.header, footer=fields.footer or self.footer
        )
        result = await self.driver.print_ticket(ticket)
        self._handled.add(job.job)
        data: dict[str, Any] = {"job": job.job, "ticket_id": job.ticket_id}
        if result.ok:
            self.log.info("print_done", job=job.job, number=fields.number)
            await self.emit("print_done", data, key=f"print:{job.job}")
        else:
            self.log.warning("print_failed", job=job.job, reason=result.reason)
            data["reason"] = result.reason
            await self.emit("print_failed", data, key=f"print:{job.job}")

    # --- status -----------------------------------------------------------------------------

    async def _on_status(self, status: PrinterStatus) -> None:
        if self._connected:
            await self._report(status)

    async def on_hardware(self, info: HardwareInfo) -> None:
        # The first status after a connect goes out after device_info, and always.
        self._connected = True
        self._reported = None
        if self.driver.status is not None:
            await self._report(self.driver.status)

    async def on_hardware_lost(self) -> None:
        self._connected = False

    async def _report(self, status: PrinterStatus) -> None:
        if status == self._reported:
            return
        self._reported = status
        await self.emit(
            "printer_status",
            {
                "online": status.online,
                "paper": status.paper,
                "cover_open": status.cover_open,
                "error": status.error,
            },
        )
