"""Waiting on a condition with a timeout: tests never sleep to synchronise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], limit_s: float = 15.0, every_s: float = 0.05
) -> float:
    """Poll ``check`` until it is true; returns the seconds it took, fails after ``limit_s``."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(every_s)
    return time.monotonic() - start
