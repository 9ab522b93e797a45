from tests.hub.api.conftest import client
from tests.hub.queue.world import clock, qworld

__all__ = ["client", "clock", "qworld"]
