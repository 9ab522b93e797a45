from tests.hub.queue.world import clock, qworld
from tests.hub.ratings.conftest import api

__all__ = ["api", "clock", "qworld"]
