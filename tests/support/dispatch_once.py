"""One dispatcher pass in a process of its own, for tests that kill it mid-send (a crash):

python -m tests.support.dispatch_once DATABASE_URL GATEWAY_URL API_KEY
"""

from __future__ import annotations

import asyncio
import sys

from hub.services.notify import Dispatcher
from hub.services.sms import HttpSmsGateway
from storage.pool import create_pool


async def main(database_url: str, gateway_url: str, api_key: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    gateway = HttpSmsGateway(gateway_url, api_key, timeout=60)
    try:
        await Dispatcher(gateway).run_once(pool)
    finally:
        await gateway.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
