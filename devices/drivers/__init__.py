"""Drivers: request/response over a transport, locks, health (one module per device kind)."""
