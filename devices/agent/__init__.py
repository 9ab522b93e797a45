"""The device agent (``hallhub agent --config agent.toml``): the hall PC's or kiosk's devices
as peers of the hub. Entry points in :mod:`devices.agent.main`; docs/devices/agent.md."""
