"""agent.toml: which hub, and which devices this hall PC or kiosk owns.

The file (docs/devices/agent.md has the reference)::

    hub = "ws://127.0.0.1:8000/ws"          # the gateway URL
    http = "http://127.0.0.1:8000"          # for scanner uploads
    buffer = 1000                           # device events kept while the hub is unreachable

    [[device]]
    kind = "printer"                        # printer | id_reader | code_reader | evaluator |
    token = "…"                             #   window_display | scanner
    port = "/dev/ttyUSB0"                   # COM3 on Windows
    baudrate = 9600
    poll_seconds = 2.0

Each ``[[device]]`` is a table whose ``kind`` selects its Struct (a msgspec tagged union), so a
field that does not belong to the kind, a missing one or a wrong type is an error that names
its place: ``$.device[1].port``. The token comes from ``token`` or from ``token_file`` (a path
relative to agent.toml, read once at load), exactly one of them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeAlias

import msgspec

__all__ = [
    "AgentConfig",
    "CodeReaderConfig",
    "ConfigError",
    "DeviceConfig",
    "EvaluatorConfig",
    "IdReaderConfig",
    "PrinterConfig",
    "ScannerConfig",
    "WindowDisplayConfig",
    "load_config",
    "parse_config",
]

Positive = Annotated[float, msgspec.Meta(gt=0)]
Baudrate = Annotated[int, msgspec.Meta(ge=300, le=4_000_000)]
Id = Annotated[int, msgspec.Meta(ge=1)]
MAX_SCAN_BYTES = 20 * 1024 * 1024  # the hub's limit (POST /api/devices/scans)


class ConfigError(Exception):
    """agent.toml cannot be used; the message names the file and the field."""


class _Device(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    token: str | None = None
    token_file: str | None = None
    name: str = ""
    """How logs name the device; defaults to ``<kind>-<n>`` (its place in the file)."""

    def __post_init__(self) -> None:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of `token` and `token_file`")
        if self.token is not None and not self.token.strip():
            raise ValueError("`token` is empty")

    @property
    def kind(self) -> str:
        """The device kind, as registered in the hub (the peer kind of its hello)."""
        tag = self.__struct_config__.tag
        assert isinstance(tag, str)
        return tag


class PrinterConfig(_Device, frozen=True, tag="printer", tag_field="kind"):
    """A thermal ticket printer (D1) on a serial port (docs/devices/printer.md)."""

    port: str
    baudrate: Baudrate = 9600
    poll_seconds: Positive = 2.0
    asb: bool = True
    width_chars: Annotated[int, msgspec.Meta(ge=16, le=96)] = 42
    print_seconds: Positive = 1.0
    header: str = ""
    footer: list[str] = []
    model: str = "ESC/POS"


class IdReaderConfig(_Device, frozen=True, tag="id_reader", tag_field="kind"):
    """A SAM ID card reader (D2) on a serial port (docs/devices/id-reader.md)."""

    port: str
    baudrate: Baudrate = 115200
    poll_seconds: Positive = 2.0
    auto_read: bool = False
    window_id: Id | None = None


class CodeReaderConfig(_Device, frozen=True, tag="code_reader", tag_field="kind"):
    """A serial-mode QR/barcode reader (D5) (docs/devices/code-reader.md)."""

    port: str
    baudrate: Baudrate = 9600
    suffix: Literal["cr", "lf", "crlf"] = "cr"
    prefix: str = ""
    encoding: Literal["auto", "utf-8", "gb18030"] = "auto"


class EvaluatorConfig(_Device, frozen=True, tag="evaluator", tag_field="kind"):
    """An evaluation pad (D4), wired (``port``) or Bluetooth LE (``address``)."""

    link: Literal["serial", "ble"] = "serial"
    port: str | None = None
    address: str | None = None
    baudrate: Baudrate = 9600
    window_id: Id | None = None
    poll_seconds: Positive = 10.0
    timeout_s: Annotated[int, msgspec.Meta(ge=1, le=600)] = 30
    grace: Annotated[float, msgspec.Meta(ge=0)] = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.link == "serial" and not self.port:
            raise ValueError("a wired evaluator (link = 'serial') needs `port`")
        if self.link == "ble" and not self.address:
            raise ValueError("a Bluetooth evaluator (link = 'ble') needs `address`")


class WindowDisplayConfig(_Device, frozen=True, tag="window_display", tag_field="kind"):
    """An LED window panel (D5) at ``address`` on the RS-485 line at ``port``; panels of one
    line share the port (docs/devices/led-panel.md)."""

    port: str
    address: Annotated[int, msgspec.Meta(ge=1, le=247)]
    window_id: Id | None = None
    hall_id: Id | None = None
    baudrate: Baudrate = 9600
    poll_seconds: Positive = 30.0
    brightness: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None


class ScannerConfig(_Device, frozen=True, tag="scanner", tag_field="kind"):
    """A document camera (D3) that drops its images in ``folder``."""

    folder: str
    poll_seconds: Positive = 1.0
    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=MAX_SCAN_BYTES)] = MAX_SCAN_BYTES
    window_id: Id | None = None


DeviceConfig: TypeAlias = (
    PrinterConfig
    | IdReaderConfig
    | CodeReaderConfig
    | EvaluatorConfig
    | WindowDisplayConfig
    | ScannerConfig
)


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole agent.toml. After :func:`load_config` every device has its ``token``."""

    hub: str
    http: str | None = None
    buffer: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    device: list[DeviceConfig] = []

    def __post_init__(self) -> None:
        if not self.hub.startswith(("ws://", "wss://")):
            raise ValueError("`hub` is the gateway's ws:// or wss:// URL")
        if self.http is not None and not self.http.startswith(("http://", "https://")):
            raise ValueError("`http` is the hub's http:// or https:// URL")
        if self.http is None and any(isinstance(d, ScannerConfig) for d in self.device):
            raise ValueError("a scanner uploads over HTTP: set `http`")


def parse_config(data: dict[str, object], *, base: Path | None = None) -> AgentConfig:
    """Check a parsed agent.toml and resolve every ``token_file`` (relative to ``base``).

    Raises:
        ConfigError: the first problem, with its path (``$.device[1].port``).
    """
    try:
        config = msgspec.convert(data, AgentConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(str(exc)) from None
    devices: list[DeviceConfig] = []
    for index, device in enumerate(config.device):
        if device.token_file is not None:
            path = Path(device.token_file)
            if not path.is_absolute() and base is not None:
                path = base / path
            try:
                token = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read token file {str(path)!r}: {exc.strerror or exc}"
                    f" - at `$.device[{index}].token_file`"
                ) from None
            if not token:
                raise ConfigError(f"token file {str(path)!r} is empty - at `$.device[{index}]`")
            device = msgspec.structs.replace(device, token=token, token_file=None)
        if not device.name:
            device = msgspec.structs.replace(device, name=f"{device.kind}-{index + 1}")
        devices.append(device)
    _check_ports(devices)
    return msgspec.structs.replace(config, device=devices)


def _check_ports(devices: list[DeviceConfig]) -> None:
    """A port has one owner, except an RS-485 line, which its panels share (at one speed,
    each at its own address). Port names compare without case (Windows: COM3 is com3)."""
    owners: dict[str, tuple[int, DeviceConfig]] = {}
    for index, device in enumerate(devices):
        port = getattr(device, "port", None)
        if not port:
            continue
        here = f" - at `$.device[{index}].port`"
        first = owners.setdefault(port.casefold(), (index, device))
        if first[0] == index:
            continue
        other = first[1]
        if not (isinstance(device, WindowDisplayConfig) and isinstance(other, WindowDisplayConfig)):
            raise ConfigError(f"port {port!r} is already used by $.device[{first[0]}]{here}")
        if device.baudrate != other.baudrate:
            raise ConfigError(f"panels on {port!r} must share one baudrate{here}")
        if any(
            isinstance(d, WindowDisplayConfig)
            and d.address == device.address
            and d.port.casefold() == port.casefold()
            for d in devices[:index]
        ):
            raise ConfigError(f"two panels at address {device.address} on {port!r}{here}")


def load_config(path: str | Path) -> AgentConfig:
    """Read and check agent.toml at ``path``.

    Raises:
        ConfigError: the file is missing, not TOML, or not a valid agent configuration; the
            message names the file and the field.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return parse_config(data, base=file.parent)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
