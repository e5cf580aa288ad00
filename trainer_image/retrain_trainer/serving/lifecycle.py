"""Serving until SIGTERM, then draining: a pod that stopped at once would refuse the requests still sent to it.

Endpoints, kube-proxy, a mesh or a gateway learn that a terminating pod is gone some time after the
kubelet sends SIGTERM; until then they route to it. So on SIGTERM the server first answers not ready
(/readyz and /v2/health/ready: 503), keeps answering everything else for `drain` seconds, then stops
(and the capture flushes what it holds). `drain` stays below the pod's terminationGracePeriodSeconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .keys import DRAINING

log = logging.getLogger(__name__)
DRAIN_SECONDS = 5.0


async def serve(app: web.Application, host: str, port: int, drain: float = DRAIN_SECONDS) -> None:
    stopping = asyncio.Event()
    app[DRAINING] = stopping
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        log.info("stopping: not ready from now on, answering for %gs more", drain)
        await asyncio.sleep(drain)
    finally:
        await runner.cleanup()


def run(app: web.Application, host: str, port: int, drain: float = DRAIN_SECONDS) -> None:
    asyncio.run(serve(app, host, port, drain))
