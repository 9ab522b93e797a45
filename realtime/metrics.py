"""Prometheus metrics of the realtime layer; hub/metrics.py re-exports them with the hub's own.

Names are stable: dashboards and alerts depend on them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

PEERS_CONNECTED = Gauge(
    "hallhub_peers_connected", "Peers connected to this process", ["kind"], registry=REGISTRY
)
MESSAGES_DELIVERED = Counter(
    "hallhub_messages_delivered_total",
    "Event frames written to peers",
    registry=REGISTRY,
)
RESYNCS = Counter(
    "hallhub_resyncs_total", "Resyncs sent to peers that fell behind", registry=REGISTRY
)
PEERS_CLOSED = Counter(
    "hallhub_peers_closed_total",
    "Peers closed by the hub, by close code",
    ["code"],
    registry=REGISTRY,
)
BUS_LAG = Histogram(
    "hallhub_bus_lag_seconds",
    "Time from commit to arrival through the bus at another process",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
BUS_HEALTHY = Gauge("hallhub_bus_healthy", "1 while cross-process fan-out works", registry=REGISTRY)
GAP_FILLS = Counter(
    "hallhub_gap_fills_total", "Event gaps filled from PostgreSQL", registry=REGISTRY
)
