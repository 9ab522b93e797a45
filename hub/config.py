"""Settings from the environment (``HALLHUB_*``) and an optional TOML file.

Every setting has a default that works on one machine (H4). Precedence, lowest first:
defaults, the TOML file (``HALLHUB_CONFIG`` or ``--config``), the environment.
An invalid value raises :class:`ConfigError` naming the setting.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

ENV_PREFIX = "HALLHUB_"


class ConfigError(Exception):
    """A setting is missing, of the wrong type or out of range; the message names it."""


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Runtime settings of one hub process."""

    # Storage: empty database_url means the embedded PostgreSQL under data_dir (H4).
    database_url: str = ""
    data_dir: str = "var"
    db_pool_min: int = 2
    db_pool_max: int = 10
    # Bus: empty redis_url means the in-process MemoryBus (single process only).
    redis_url: str = ""
    redis_prefix: str = "hallhub"
    # Network.
    host: str = "127.0.0.1"
    http_port: int = 8080
    gateway_port: int = 8081
    # The port pages should open the gateway on, when a proxy or load balancer fronts it;
    # 0: the gateway's own port.
    gateway_public_port: int = 0
    # Origins allowed to open a gateway websocket from a browser; empty means the
    # hub's own HTTP origin(s). Peers without an Origin header (devices) are allowed.
    allowed_origins: list[str] = []
    # Realtime.
    tick_seconds: float = 5.0
    heartbeat_timeout_seconds: float = 15.0
    history_keep: int = 1000
    peer_buffer_bytes: int = 256 * 1024
    slow_peer_grace_seconds: float = 1.0
    max_frame_bytes: int = 64 * 1024
    reconcile_seconds: float = 2.0
    bus_heartbeat_seconds: float = 1.0
    bus_deaf_seconds: float = 5.0
    process_lease_seconds: float = 10.0
    # Security.
    session_hours: float = 12.0
    id_hmac_key: str = "change-me-in-production"
    public_rate_per_minute: int = 120
    # Workers and blobs.
    worker_processes: int = 2
    # Spawn the workers at start (in the background) rather than with the first job.
    worker_prestart: bool = True
    blob_dir: str = ""
    # Voice announcements (Q5): the espeak-ng program, its speed in words per minute (80-450),
    # and the memory for synthesized audio kept per process.
    speech_command: str = "espeak-ng"
    speech_speed: int = 150
    speech_cache_bytes: int = 32 * 1024 * 1024
    # Notifications (H6): the HTTP SMS gateway (empty URL: SMS disabled, notifications wait
    # in the outbox), its bearer key, per-call timeout, the signature put before every text,
    # and the period of the dispatch job.
    sms_gateway_url: str = ""
    sms_api_key: str = ""
    sms_timeout_seconds: float = 10.0
    sms_sign: str = "【政务服务中心】"
    notify_period_seconds: float = 2.0
    # `hallhub demo`: how fast its simulated staff and citizens act (1.0: a call every 20-60 s
    # per window; 10: ten times as fast).
    demo_speed: float = 1.0
    # Logging.
    log_level: str = "info"
    log_json: bool | None = None

    def __post_init__(self) -> None:
        for name in ("http_port", "gateway_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()}: port {port} is out of range 0-65535"
                )
        for name in ("tick_seconds", "heartbeat_timeout_seconds", "reconcile_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: must be greater than 0")
        if self.db_pool_min < 1 or self.db_pool_max < self.db_pool_min:
            raise ConfigError(f"{ENV_PREFIX}DB_POOL_MAX: must be >= DB_POOL_MIN >= 1")
        if self.history_keep < 1:
            raise ConfigError(f"{ENV_PREFIX}HISTORY_KEEP: must be at least 1")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"{ENV_PREFIX}LOG_LEVEL: one of debug, info, warning, error")
        if self.sms_gateway_url and not self.sms_gateway_url.startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_PREFIX}SMS_GATEWAY_URL: an http:// or https:// URL")
        for name in ("sms_timeout_seconds", "notify_period_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: must be greater than 0")
        if not 80 <= self.speech_speed <= 450:
            raise ConfigError(f"{ENV_PREFIX}SPEECH_SPEED: words per minute, 80 to 450")
        if not 0 < self.demo_speed <= 100:
            raise ConfigError(f"{ENV_PREFIX}DEMO_SPEED: greater than 0, at most 100")

    @property
    def blob_path(self) -> Path:
        return Path(self.blob_dir) if self.blob_dir else Path(self.data_dir) / "blobs"


_FIELDS = {f.name: f for f in msgspec.structs.fields(Settings)}


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _FIELDS:
            raise ConfigError(f"{key}: unknown setting")
        raw[name] = value
    return raw


def load_settings(
    config_file: str | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, TOML, environment and keyword overrides.

    Raises:
        ConfigError: a value cannot be read as its setting's type, or a setting is unknown.
    """
    env = dict(os.environ if environ is None else environ)
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    merged: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                merged.update(tomllib.load(fh))
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: {path} is not valid TOML: {exc}") from exc
    for name in merged:
        if name not in _FIELDS:
            raise ConfigError(f"{path}: unknown setting {name!r}")
    merged.update(_from_env(env))
    merged.update(overrides)
    for name, value in merged.items():
        if _FIELDS[name].type == list[str] and isinstance(value, str):
            merged[name] = [v.strip() for v in value.split(",") if v.strip()]
    try:
        # strict=False: environment values are strings ("8080" → 8080, "true" → True).
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc)) from exc


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int`, got `str` - at `$.http_port`".
    text = str(exc)
    if "at `$." in text:
        detail, _, where = text.rpartition(" - at `$.")
        return f"{ENV_PREFIX}{where.rstrip('`').upper()}: {detail}"
    return text
