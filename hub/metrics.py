"""Prometheus metrics of one hub process, served at ``/metrics`` (item 8).

The registry and the realtime metrics live in realtime/metrics.py (realtime must not import
hub); the hub's own metrics are added here to the same registry.
"""

from realtime.metrics import (
    BUS_HEALTHY,
    BUS_LAG,
    GAP_FILLS,
    MESSAGES_DELIVERED,
    PEERS_CLOSED,
    PEERS_CONNECTED,
    REGISTRY,
    RESYNCS,
)

__all__ = [
    "BUS_HEALTHY",
    "BUS_LAG",
    "GAP_FILLS",
    "MESSAGES_DELIVERED",
    "PEERS_CLOSED",
    "PEERS_CONNECTED",
    "REGISTRY",
    "RESYNCS",
]
