"""The ``hallhub`` command: serve, demo, migrate, and the administration a fresh hall needs.

    hallhub serve                  run the hub (HTTP API, pages, websocket gateway, jobs)
    hallhub demo                   embedded PostgreSQL, a simulated hall, the URLs to open
    hallhub migrate                apply the SQL migrations and exit
    hallhub device add …           register a device; its token is printed once
    hallhub staff add …            create a staff account with one role grant (first admin)
    hallhub agent --config F       the device agent of a hall PC or kiosk (agent.toml)
    hallhub simulate <kind> …      a simulated device on a pty (devices/simulators/cli.py)

Settings come from HALLHUB_* environment variables and ``--config FILE`` (TOML); see
docs/operations.md. Without HALLHUB_DATABASE_URL the hub runs an embedded PostgreSQL under
HALLHUB_DATA_DIR (./var).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, get_args

import structlog

from devices.simulators import cli as simulator_cli
from hub.config import ConfigError, Settings, load_settings
from hub.domain.access import DeviceKind, Role, ScopeKind
from hub.logs import configure_logging

log = structlog.get_logger("hub.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hallhub",
        description="Real-time operations hub for government service halls (政务服务大厅).",
        epilog="Settings: HALLHUB_* environment or --config FILE; see docs/operations.md.",
    )
    parser.add_argument("--config", help="TOML settings file (HALLHUB_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the hub: HTTP API, pages, gateway, jobs")
    serve.add_argument("--host", help="listen address (HALLHUB_HOST)")
    serve.add_argument("--http-port", type=int, help="HTTP port (HALLHUB_HTTP_PORT)")
    serve.add_argument("--gateway-port", type=int, help="websocket port (HALLHUB_GATEWAY_PORT)")

    demo = commands.add_parser(
        "demo", help="embedded PostgreSQL, a demo hall with simulated devices; prints the URLs"
    )
    demo.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    demo.add_argument("--gateway-port", type=int, help="websocket port (default 8081)")

    commands.add_parser("migrate", help="apply the SQL migrations and exit")

    device = commands.add_parser("device", help="device registry").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = device.add_parser("add", help="register a device and print its token (shown once)")
    add.add_argument("--hall", type=int, required=True, help="hall id")
    add.add_argument("--kind", required=True, choices=get_args(DeviceKind))
    add.add_argument("--name", required=True)

    staff = commands.add_parser("staff", help="staff accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    sadd = staff.add_parser("add", help="create a staff account with one role grant")
    sadd.add_argument("--staff-no", required=True)
    sadd.add_argument("--name", required=True)
    sadd.add_argument("--password", required=True)
    sadd.add_argument("--role", required=True, choices=get_args(Role))
    sadd.add_argument("--scope-kind", required=True, choices=get_args(ScopeKind))
    sadd.add_argument("--scope-id", type=int, required=True)

    agent = commands.add_parser(
        "agent", help="run the device agent: the hall PC's or kiosk's devices as hub peers"
    )
    # Its own dest: the global --config is the hub's settings file.
    agent.add_argument(
        "--config", dest="agent_config", required=True, metavar="FILE", help="agent.toml"
    )

    simulate = commands.add_parser(
        "simulate",
        help="simulate a device on a pseudo-terminal, scripted from stdin",
        description=(simulator_cli.__doc__ or "").partition("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulator_cli.add_arguments(simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {
        name: value
        for name in ("host", "http_port", "gateway_port")
        if (value := getattr(args, name, None)) is not None
    }
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as exc:
        sys.stderr.write(f"hallhub: invalid configuration: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_json)
    runners: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "serve": _serve,
        "demo": _demo,
        "migrate": _migrate,
        "device": _device,
        "staff": _staff,
        "simulate": _simulate,
    }
    if args.command == "agent":
        return _agent(args.agent_config)
    try:
        return asyncio.run(runners[args.command](settings, args))
    except KeyboardInterrupt:
        return 130


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from hub.server import run_server

    await run_server(settings)
    return 0


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    await run_demo(settings)
    return 0


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from hub.runtime import open_storage

    async with open_storage(settings) as (_pool, applied):
        log.info("migrated", applied=applied)
    return 0


async def _device(settings: Settings, args: argparse.Namespace) -> int:
    from hub.runtime import open_storage
    from hub.services import audit, auth

    async with open_storage(settings) as (pool, _applied):
        created = await auth.register_device(
            pool, audit.Actor.system("cli"), args.hall, args.kind, args.name
        )
    sys.stdout.write(
        f"device {created.device.id} ({created.device.kind}, hall {created.device.hall_id})\n"
        f"token (shown once): {created.token}\n"
    )
    return 0


async def _staff(settings: Settings, args: argparse.Namespace) -> int:
    from hub.runtime import open_storage
    from hub.services import audit
    from hub.services import staff as staff_service

    actor = audit.Actor.system("cli")
    async with open_storage(settings) as (pool, _applied):
        home = {"hall": "hall_id", "department": "department_id", "region": "region_id"}
        member = await staff_service.create_staff(
            pool,
            actor,
            staff_service.StaffNew(
                staff_no=args.staff_no,
                name=args.name,
                password=args.password,
                **{home[args.scope_kind]: args.scope_id},
            ),
        )
        await staff_service.create_grant(
            pool,
            actor,
            staff_service.GrantNew(
                staff_id=member.id,
                role=args.role,
                scope_kind=args.scope_kind,
                scope_id=args.scope_id,
            ),
        )
    sys.stdout.write(f"staff {member.id} {member.staff_no} {args.role} {args.scope_kind}\n")
    return 0


async def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    return await simulator_cli.run(args)


def _agent(config_path: str) -> int:
    """``devices.agent.main.run(config_path)``, imported only now: the agent is optional for
    the hub and its import pulls in the drivers. ``run`` may be a coroutine function or run
    its own event loop."""
    import importlib
    import inspect

    try:
        agent_main = importlib.import_module("devices.agent.main")
    except ModuleNotFoundError as exc:
        if exc.name is None or not "devices.agent.main".startswith(exc.name):
            raise  # a dependency of the agent is missing: show it
        sys.stderr.write("hallhub agent: the device agent (devices.agent.main) is not installed\n")
        return 2
    try:
        result = agent_main.run(config_path)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main())
